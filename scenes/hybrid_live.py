"""The live jamba-tiny: attention, Mamba and mixture-of-experts layers in one stack, bound to its scene.

Its Mamba layers show their scan token by token as mamba-tiny's do (scenes/ssm_live.py), its MoE layers
their routing as the small MoEs' do (scenes/moe_live.py: the MoE window, packets, heatmaps), its attention
layer its heads; the panel beside them compares the attention layer's growing key/value cache with the
Mamba layers' fixed state.
"""
from __future__ import annotations

from llmviz.scenes.live import TEXT_CONTEXT
from llmviz.scenes.moe_live import LiveRouted, RouterConfig
from llmviz.scenes.ssm_live import DEFAULT_TEXT, scene_arrays


class _TracedJamba:
    """The worker's model: `.weights()` and `.trace(tokens)` under the scene's ids; `attention_kernel` as NanoGPT's."""

    attention_kernel = None

    def __init__(self, weights_path=None):
        from llmviz.models.sim.jamba_model import load_jamba

        self.model = load_jamba(weights_path)
        self.n_layers = self.model.config.num_hidden_layers

    def weights(self):
        from llmviz.models.sim import jamba_trace

        return jamba_trace.weights(self.model)

    def trace(self, tokens):
        from llmviz.models.sim import jamba_trace

        return scene_arrays(jamba_trace.trace(self.model, tokens, self.attention_kernel), self.n_layers)


def cache_bytes(spec, tokens: int) -> tuple[int, int]:
    """(attention layers' key/value cache, Mamba layers' state) in float32 bytes after `tokens` tokens:
    the first grows by a key and a value per KV head per token, the second stays the same (models/cache.py)."""
    from llmviz.models.cache import kv_cache_values, recurrent_state_values

    arch = spec.architecture
    return 4 * kv_cache_values(arch, tokens), 4 * recurrent_state_values(arch)


class LiveJamba(LiveRouted):
    """jamba-tiny: Jamba's router (softmax over the experts, the top-k kept without renormalising) on its
    MoE layers, the scan on its Mamba layers."""

    kind = "hybrid"

    def __init__(self, scene, renderer, text: str = DEFAULT_TEXT, weights_path=None, top_k: int | None = None,
                 capacity_factor: float | None = None, play_interval: float = 0.4, autoplay: bool = False):
        self.spec = scene.spec
        arch = scene.spec.architecture
        super().__init__(scene, renderer, scene.spec.id, lambda: _TracedJamba(weights_path), TEXT_CONTEXT,
                         RouterConfig("softmax_topk", False, default_k=arch.moe.top_k), arch.moe_layer_indices(),
                         text, top_k, capacity_factor, play_interval, autoplay)

    def memory_lines(self) -> list[str]:
        """What the layers keep from one token to the next, for the MoE window."""
        n = len(self.tokens)
        kv, state = cache_bytes(self.spec, n)
        per_token = cache_bytes(self.spec, 1)[0]
        return [f"attention layer: key/value cache {kv / 1024:.1f} KiB for these {n} characters, "
                f"{per_token} bytes more with each",
                f"Mamba layers: state {state / 1024:.1f} KiB, the same at any length"]
