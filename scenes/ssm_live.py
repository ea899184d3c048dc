"""The live small recurrent models (mamba-tiny, mamba2-tiny, rwkv-tiny): their traces on the scene's blocks, a Mamba's selective scan split into one block per token.

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

# The text a model opens on where the corpus's is not its task: mamba-copy reads a window of letters among dots
# and the marker, and generating copies the letters (held-out sequence 0 of models/sim/selective_copy.py).
OPENING_TEXT = {"mamba-copy": "F..D..B..B.G.B...H...B..|"}
# What each model was trained on where it is not the corpus of the small MoE models.
TRAINING_DATA = {"mamba-copy": "selective copying: 8 letters among 16 dots, then '|' and the letters"}

# Characters whose step size Δ the panel compares, per model: what the model should keep against what it should
# let pass (selective copying's letters and dots, models/sim/selective_copy.py's DATA and NOISE).
# Only the characters before the marker count: the answer's letters after it are the model's own output.
DELTA_CLASSES = {"mamba-copy": ((("letters", "ABCDEFGH"), ("dots", ".")), "|")}


def _per_token(out: dict, prefix: str, dA: np.ndarray, dBx: np.ndarray, h: np.ndarray, h_init) -> None:
    for t in range(dA.shape[0]):
        out[f"{prefix}.dA.{t}"], out[f"{prefix}.dBx.{t}"], out[f"{prefix}.h.{t}"] = dA[t], dBx[t], h[t]
    out[f"{prefix}.h_init"] = np.zeros_like(h[0]) if h_init is None else np.asarray(h_init, np.float32)


def _initial_ssm(state, layer: int, shape) -> np.ndarray | None:
    """Layer `layer`'s SSM state in `state` (batch row 0), reshaped to the scan's blocks; None for no state."""
    if state is None:
        return None
    return state.ssm[0, layer].detach().float().numpy().reshape(shape)


def _carry_conv(out: dict, prefix: str, state, layer: int) -> None:
    """Past the window, the conv inputs before it that its first positions still read, (channels, d_conv − 1)
    oldest first, under `prefix`.conv_init; without a state the window starts the text (zero padding)."""
    if state is not None:
        out[f"{prefix}.conv_init"] = state.conv[0, layer, :, 1:].detach().float().numpy()


def scene_arrays(trace, n_layers: int, state=None) -> dict[str, np.ndarray]:
    """A Mamba-1 trace under the scene's ids: every array as recorded, plus, on each Mamba layer (all of
    mamba-tiny's, three of jamba-tiny's four), the scan per token and α's mean."""
    out = dict(trace.items())
    for i in range(n_layers):
        p = f"blocks.{i}.mamba"
        if f"{p}.h" not in out:                        # a hybrid's attention layer
            continue
        x = out[f"{p}.conv_act"]                       # (T, d_inner): what the scan reads
        h = out[f"{p}.h"]
        _per_token(out, p, out[f"{p}.dA"], out[f"{p}.dB"] * x[:, :, None], h, _initial_ssm(state, i, h.shape[1:]))
        _carry_conv(out, p, state, i)
        out[f"{p}.alpha"] = out[f"{p}.alpha"].mean(axis=0)   # (T, T): row t, how much each s feeds y_t
    return out


def scene_arrays_mamba2(trace, n_layers: int, state=None) -> dict[str, np.ndarray]:
    """A Mamba-2 trace under the scene's ids: the scan per token as d_inner × d_state blocks (heads × head_dim
    rows), each head's one decay spread over its entries, the input Δ·x ⊗ B; and the same scan as one T × T
    matrix per head, its SSD form, over the window's characters."""
    from llmviz.models.sim.mamba2_trace import ssd_matrices   # on the worker: it brings torch

    out = dict(trace.items())
    for i in range(n_layers):
        p = f"blocks.{i}.mamba"
        h = out[f"{p}.h"]                              # (T, heads, head_dim, d_state)
        T, heads, head_dim, n = h.shape
        inner = heads * head_dim
        act, dt = out[f"{p}.conv_act"], out[f"{p}.dt"]     # (T, xBC width), (T, heads)
        groups = (act.shape[1] - inner) // (2 * n)
        x = act[:, :inner].reshape(T, heads, head_dim)
        B_group, C_group = (act[:, inner + k * groups * n:inner + (k + 1) * groups * n].reshape(T, groups, n)
                            for k in (0, 1))
        B = np.repeat(B_group, heads // groups, axis=1)           # each group's B serves its heads
        dBx = (dt[:, :, None] * x)[..., None] * B[:, :, None, :]   # (T, heads, head_dim, d_state)
        dA = np.broadcast_to(out[f"{p}.dA"][:, :, None, None], h.shape)
        _per_token(out, p, dA.reshape(T, inner, n), dBx.reshape(T, inner, n), h.reshape(T, inner, n),
                   _initial_ssm(state, i, (inner, n)))
        _carry_conv(out, p, state, i)
        ssd = ssd_matrices(dt, out[f"{p}.dA"], B_group, C_group)
        for head in range(heads):                      # the scan as one T × T matrix per head (SSD)
            out[f"{p}.ssd.{head}"] = ssd[head]
    return out


def scene_arrays_rwkv(trace, n_layers: int, state=None) -> dict[str, np.ndarray]:
    """An RWKV trace under the scene's ids, drawn as recorded, plus what each layer carried in from before the
    window (zeros from the start): both mixes' previous input and the WKV numerator and denominator (unscaled,
    num·e^max, as the trace records them), which the first position's shift and WKV read."""
    out = dict(trace.items())
    for i in range(n_layers):
        p = f"blocks.{i}"
        if state is None:
            zeros = np.zeros(out[f"{p}.time_mix.num"].shape[1], np.float32)
            carried = dict.fromkeys(("time_mix.shift", "channel_mix.shift", "time_mix.num", "time_mix.den"), zeros)
        else:
            layer = {name: getattr(state, name)[0, :, i].double()
                     for name in ("att_shift", "ffn_shift", "num", "den", "max")}
            scale = layer["max"].exp()                     # the state keeps num, den scaled by e^−max
            carried = {"time_mix.shift": layer["att_shift"], "channel_mix.shift": layer["ffn_shift"],
                       "time_mix.num": layer["num"] * scale, "time_mix.den": layer["den"] * scale}
        for name, value in carried.items():
            out[f"{p}.{name}_init"] = np.asarray(value, np.float32)
        out[f"{p}.time_mix.alpha"] = out[f"{p}.time_mix.alpha"].mean(axis=0)   # (T, T), rows sum to 1 from zero
    return out


# What each live state-space model is: its loader, its trace module and how its trace becomes scene arrays.
SSM_MODELS = {
    "mamba-tiny": ("llmviz.models.sim.mamba_model", "load_mamba", "llmviz.models.sim.mamba_trace", scene_arrays),
    # mamba-tiny's architecture trained on selective copying (Gu & Dao 2023): Δ follows the letters to keep.
    "mamba-copy": ("llmviz.models.sim.train_copy", "load_mamba_copy", "llmviz.models.sim.mamba_trace", scene_arrays),
    "mamba2-tiny": ("llmviz.models.sim.mamba2_model", "load_mamba2", "llmviz.models.sim.mamba2_trace",
                    scene_arrays_mamba2),
    # RWKV's state after each token (numerator, denominator, the shifted inputs) is (T, d): drawn as recorded,
    # with what was carried in before the window.
    "rwkv-tiny": ("llmviz.models.sim.rwkv_model", "load_rwkv", "llmviz.models.sim.rwkv_trace", scene_arrays_rwkv),
}


class _TracedSsm:
    """The worker's model: `.weights()` and `.trace(tokens)` under the scene's ids. A text longer than the
    scene's window is traced over its last TEXT_CONTEXT characters from the state the earlier ones left,
    which is carried forward token by token as the text grows (a stream costs the same at any length)."""

    def __init__(self, model_id: str, weights_path=None):
        import importlib

        model_module, loader, trace_module, self._arrays = SSM_MODELS[model_id]
        self.model = getattr(importlib.import_module(model_module), loader)(weights_path)
        self._trace = importlib.import_module(trace_module)
        self.n_layers = self.model.config.num_hidden_layers
        self._carried: tuple[list[int], object] = ([], None)  # tokens before the window, the state after them

    def weights(self):
        return self._trace.weights(self.model)

    def _state_after(self, tokens: list[int]):
        import torch

        if not tokens:
            return None
        done, state = self._carried
        if tokens[:len(done)] != done:      # a new text: start again from nothing
            done, state = [], None
        new = tokens[len(done):]
        if new:
            with torch.inference_mode():
                _, state = self._trace.forward(self.model, torch.tensor([new]), state)
        self._carried = (list(tokens), state)
        return state

    def trace(self, tokens):
        tokens = list(tokens)
        before = tokens[:-TEXT_CONTEXT] if len(tokens) > TEXT_CONTEXT else []
        state = self._state_after(before)
        window = tokens[len(before):]
        return self._arrays(self._trace.trace(self.model, window, state), self.n_layers, state)


def state_bytes(spec) -> int:
    """Bytes of a recurrent model's state in float32, whatever the sequence length, as transformers' cache
    keeps it (models/cache.py: a Mamba's SSM state and conv window, RWKV's shifts and WKV sums)."""
    from llmviz.models.cache import recurrent_state_values

    return 4 * recurrent_state_values(spec.architecture)


class LiveMamba(LiveTextModel):
    """A small recurrent model (SSM_MODELS: the Mambas, RWKV) bound to its scene: text in, its state's every
    term on the blocks, greedy generation."""

    kind = "ssm"
    streams = True  # past the window the state carries on: the scene shows the last TEXT_CONTEXT characters

    def __init__(self, scene, renderer, text: str | None = None, weights_path=None,
                 play_interval: float = 0.4, autoplay: bool = False):
        self.spec = scene.spec if scene is not None else None
        model_id = scene.spec.id if scene is not None else "mamba-tiny"
        text = OPENING_TEXT.get(model_id, DEFAULT_TEXT) if text is None else text
        super().__init__(scene, renderer, lambda: _TracedSsm(model_id, weights_path), TEXT_CONTEXT, text,
                         play_interval=play_interval, autoplay=autoplay)


def step_sizes(trace, tokens, alphabet: str, model_id: str | None, layer: int = 0):
    """Layer `layer`'s step size Δ per character of the window, the mean over its channels (Mamba) or heads
    (Mamba-2), and per DELTA_CLASSES class of `model_id` its mean Δ over the window (None for a class absent
    from the text); None for a model without Δ (RWKV). Large Δ writes the token into the state, small Δ lets
    it pass: selectivity."""
    dt = trace.get(f"blocks.{layer}.mamba.dt") if trace is not None else None
    if dt is None:
        return None
    per_char = np.asarray(dt, np.float64).mean(axis=1)
    text = "".join(alphabet[t] for t in tokens)
    declared, marker = DELTA_CLASSES.get(model_id, ((), None))
    end = text.find(marker) if marker else -1
    compared = len(text) if end < 0 else end            # positions before the marker (all without one)
    start = len(text) - len(per_char)                    # the window's first position in the text
    window = text[start:]
    classes = []
    for name, chars in declared:
        picked = np.array([ch in chars and start + i < compared for i, ch in enumerate(window)])
        classes.append((name, float(per_char[picked].mean()) if picked.any() else None))
    return per_char.astype(np.float32), classes
