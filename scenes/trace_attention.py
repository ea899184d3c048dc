"""Who computes a live trace's attention: engine/compute's WGSL kernel when the scene is drawn by the wgpu backend
(and the kernels run here), torch otherwise.

The scene picks (`for_renderer`); the choice is settled on the model's worker, where the kernels may block
(`TraceAttention.kernel()`, called once after the model is loaded, scenes/worker_session.traced_model_compute); the
model receives a plain function of arrays (models/sim/nanogpt.attention_sublayer's `kernel`), so models never
import the engine. `label` says on screen which one computed the numbers.
"""
from __future__ import annotations

TORCH = "torch"


class TraceAttention:
    """The wgpu backend's choice for one live session: the WGSL kernel, or torch with the reason."""

    def __init__(self):
        self.label = "attention: WGSL compute kernel (starting)"

    def attach(self, model) -> None:
        """On the worker, once the model is loaded: its `attention_kernel` set (a model without one: torch)."""
        if not hasattr(model, "attention_kernel"):
            self.label = f"attention: {TORCH} (this model's trace has no kernel path yet)"
            return
        model.attention_kernel = self.kernel()

    def kernel(self):
        """On the worker: the kernel function, or None (torch) where the kernels cannot run, `label` saying so."""
        from llmviz.engine.compute import attention

        problem = attention.compute_unavailable()
        if problem:
            self.label = f"attention: {TORCH} (the WGSL kernel cannot run: {problem})"
            return None
        self.label = f"attention: WGSL compute kernel on {attention.adapter_label()}"
        return causal_attention


def causal_attention(q, k, v, scale: float):
    """(probabilities, output) of causal attention of (N, Tq, d) over (N, Tk, d) float32 arrays by the WGSL kernel
    (key j allowed for query i when j <= i + Tk - Tq: a cache's keys come first)."""
    from llmviz.engine.compute import attention

    result = attention.head_attention(q, k, v, causal=True, scale=scale)
    return result.probs, result.output


def for_renderer(renderer) -> TraceAttention | None:
    """The kernel choice for a scene drawn by `renderer`: None (torch, nothing to say) unless it is the wgpu
    backend."""
    return TraceAttention() if getattr(renderer, "backend_name", None) == "wgpu" else None
