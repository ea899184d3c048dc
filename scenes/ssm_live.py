"""The live mamba-tiny: its trace on the scene's blocks, the selective scan split into one block per token.

models/sim/mamba_trace.py records the scan as (T, d_inner, d_state) arrays; the scene draws it as a
table over time (scenes/layouts/mamba.py, scan_table): for each t the decay Ā_t, the input B̄_t x_t and
the state h_t, each d_inner × d_state. `scene_arrays` makes those per-token blocks from the trace, and
the hidden attention α (d_inner, T, T) into one T × T block, its mean over the channels.
"""
from __future__ import annotations

import numpy as np

from llmviz.scenes.live import TEXT_CONTEXT
from llmviz.scenes.text_live import LiveTextModel

DEFAULT_TEXT = "the old river runs "


def scene_arrays(trace, n_layers: int) -> dict[str, np.ndarray]:
    """The trace under the scene's ids: every array as recorded, plus the scan per token and α's mean."""
    out = dict(trace.items())
    for i in range(n_layers):
        p = f"blocks.{i}.mamba"
        x = out[f"{p}.conv_act"]                       # (T, d_inner): what the scan reads
        dA, dB, h = out[f"{p}.dA"], out[f"{p}.dB"], out[f"{p}.h"]
        dBx = dB * x[:, :, None]
        for t in range(dA.shape[0]):
            out[f"{p}.dA.{t}"], out[f"{p}.dBx.{t}"], out[f"{p}.h.{t}"] = dA[t], dBx[t], h[t]
        out[f"{p}.alpha"] = out[f"{p}.alpha"].mean(axis=0)   # (T, T): row t, how much each s feeds y_t
    return out


class _TracedMamba:
    """The worker's model: `.weights()` and `.trace(tokens)` under the scene's ids."""

    def __init__(self, weights_path=None):
        from llmviz.models.sim.mamba_model import load_mamba

        self.model = load_mamba(weights_path)
        self.n_layers = self.model.config.num_hidden_layers

    def weights(self):
        from llmviz.models.sim import mamba_trace

        return mamba_trace.weights(self.model)

    def trace(self, tokens):
        from llmviz.models.sim import mamba_trace

        return scene_arrays(mamba_trace.trace(self.model, tokens), self.n_layers)


def state_bytes(spec) -> int:
    """Bytes of mamba's recurrent state in float32, whatever the sequence length: per layer the SSM state
    (d_inner × d_state) and the convolution's window as transformers' cache keeps it (d_inner × d_conv)."""
    arch = spec.architecture
    ssm = arch.ssm
    inner = ssm.expand * arch.d_model
    return 4 * arch.n_layers * inner * (ssm.d_state + ssm.d_conv)


class LiveMamba(LiveTextModel):
    """mamba-tiny bound to its scene: text in, the scan's every term on the blocks, greedy generation."""

    kind = "ssm"

    def __init__(self, scene, renderer, text: str = DEFAULT_TEXT, weights_path=None,
                 play_interval: float = 0.4, autoplay: bool = False):
        self.spec = scene.spec if scene is not None else None
        super().__init__(scene, renderer, lambda: _TracedMamba(weights_path), TEXT_CONTEXT, text,
                         play_interval=play_interval, autoplay=autoplay)
