"""Where every number of whisper-tiny's scene comes from: its dataflow table (the audio encoder under "audio.":
the log-mel cells, the two convolutions, the sinusoidal positions, the encoder layers; the text decoder with
its cross-attention over the encoder's frames), the operations it adds (a convolution of kernel 3, the mel
cell's frequency band and time, a sum over every encoder frame), joined to dataflow.py's FAMILIES, OPS and
INDEX_MAPS, so the hover explains every cell from its sources with real numbers.

The encoder's rules are written out per layer (its residual stream is not the decoder's blocks.{b}), for the
layers and heads whisper-tiny has (WhisperTinyConfig). Keys have no bias, GELU is exact. Numbers only.
"""
from __future__ import annotations

import numpy as np

from llmviz.models.sim.audio_features import HOP, N_FFT, SAMPLE_RATE, mel_band
from llmviz.models.sim.whisper_config import WhisperTinyConfig
from llmviz.scenes.dataflow import (DATAFLOW, FAMILIES, INDEX_MAPS, OPS, RESULT, Family, _B, _layer_norm, _sum_text,
                                    _term, format_number)

CONFIG = WhisperTinyConfig()
A = "audio."
_C = "blocks.{b}.cross_attn.head.{h}"


def _attention(p: str, x_ln: str, n_heads: int, causal: bool) -> list:
    """One self-attention sublayer's rules under prefix p (…attn), its queries and keys from x_ln."""
    h = f"{p}.head.{{h}}"
    rules = [(f"{h}.q[t, d]", "linear", "b + dot(LN row, W row)", [f"{x_ln}[t, :]", f"{h}.wq[d, :]", f"{h}.bq[d]"]),
             (f"{h}.k[t, d]", "unembed", "k = dot(LN row, W_k row) (no key bias)", [f"{x_ln}[t, :]", f"{h}.wk[d, :]"]),
             (f"{h}.v[t, d]", "linear", "b + dot(LN row, W row)", [f"{x_ln}[t, :]", f"{h}.wv[d, :]", f"{h}.bv[d]"]),
             (f"{h}.scores[t, t']", "scaled_dot", "q·k/√d", [f"{h}.q[t, :]", f"{h}.k[t', :]"])]
    if causal:
        return rules + [(f"{h}.scores_masked[t, t']", "causal_mask", "causal mask", [f"{h}.scores[t, t']"]),
                        (f"{h}.softmax[t, t']", "softmax", "softmax over row", [f"{h}.scores_masked[t, :]"]),
                        (f"{h}.out[t, d]", "weighted_sum", "Σ softmax·v", [f"{h}.softmax[t, ..t]", f"{h}.v[..t, d]"])]
    return rules + [(f"{h}.softmax[t, t']", "softmax", "softmax over row (no mask)", [f"{h}.scores[t, :]"]),
                    (f"{h}.out[t, d]", "frames_sum", "Σ softmax·v over every frame", [f"{h}.softmax[t, :]", f"{h}.v[:, d]"])]


def _projection(p: str, n_heads: int) -> tuple:
    return (f"{p}.proj[t, c]", "concat_projection", "b + Σ_heads dot(head row, W_O row)",
            [*[f"{p}.head.{i}.out[t, :]" for i in range(n_heads)], f"{p}.proj.weight[c, :]", f"{p}.proj.bias[c]"])


def _mlp(p: str, x: str) -> list:
    return [*_layer_norm(f"{p}.ln2", x),
            (f"{p}.mlp.fc[t, f]", "linear", "b + dot(LN row, W row)",
             [f"{p}.ln2.out[t, :]", f"{p}.mlp.fc.weight[f, :]", f"{p}.mlp.fc.bias[f]"]),
            (f"{p}.mlp.gelu[t, f]", "gelu", "GELU, exact", [f"{p}.mlp.fc[t, f]"]),
            (f"{p}.mlp.proj[t, c]", "linear", "b + dot(GELU row, W row)",
             [f"{p}.mlp.gelu[t, :]", f"{p}.mlp.proj.weight[c, :]", f"{p}.mlp.proj.bias[c]"]),
            (f"{p}.resid2[t, c]", "residual_add", "X + MLP(X)", [f"{x}[t, c]", f"{p}.mlp.proj[t, c]"])]


def _encoder_layer(b: int) -> list:
    p, x = f"{A}blocks.{b}", (f"{A}embed.out" if b == 0 else f"{A}blocks.{b - 1}.resid2")
    return [*_layer_norm(f"{p}.ln1", x), *_attention(f"{p}.attn", f"{p}.ln1.out", CONFIG.n_heads, False),
            _projection(f"{p}.attn", CONFIG.n_heads),
            (f"{p}.resid1[t, c]", "residual_add", "X + Attention(X)", [f"{x}[t, c]", f"{p}.attn.proj[t, c]"]),
            *_mlp(p, f"{p}.resid1")]


ENCODER = [
    (f"{A}features[a, m]", "log_mel", "log-mel", []),
    (f"{A}embed.conv1[a, c]", "conv_s1", "conv1: b + Σ over 3 frames × 80 mel bins",
     [f"{A}features[conv_window1(a), :]", f"{A}embed.conv1.weight[c, :]", f"{A}embed.conv1.bias[c]"]),
    (f"{A}embed.conv1_act[a, c]", "gelu", "GELU, exact", [f"{A}embed.conv1[a, c]"]),
    (f"{A}embed.conv2[t, c]", "conv_s2", "conv2 (stride 2): b + Σ over 3 frames × 64 channels",
     [f"{A}embed.conv1_act[conv_window2(t), :]", f"{A}embed.conv2.weight[c, :]", f"{A}embed.conv2.bias[c]"]),
    (f"{A}embed.conv2_act[t, c]", "gelu", "GELU, exact", [f"{A}embed.conv2[t, c]"]),
    (f"{A}embed.out[t, c]", "add", "conv features + sinusoidal position (a fixed buffer)",
     [f"{A}embed.conv2_act[t, c]", f"{A}embed.pos[t, c]"]),
    *[rule for b in range(CONFIG.encoder_layers) for rule in _encoder_layer(b)],
    *_layer_norm(f"{A}ln_f", f"{A}blocks.{CONFIG.encoder_layers - 1}.resid2"),
]

DECODER = [
    *[rule for rule in _attention(f"{_B}.attn", f"{_B}.ln1.out", CONFIG.n_heads, True) if ".k[" in rule[0]],
    *_layer_norm(f"{_B}.ln_cross", f"{_B}.resid1"),
    (f"{_C}.q[t, d]", "linear", "b + dot(LN row, W row)", [f"{_B}.ln_cross.out[t, :]", f"{_C}.wq[d, :]", f"{_C}.bq[d]"]),
    (f"{_C}.k[s, d]", "unembed", "k = dot(encoder output row, W_k row) (no key bias)",
     [f"{A}ln_f.out[s, :]", f"{_C}.wk[d, :]"]),
    (f"{_C}.v[s, d]", "linear", "b + dot(encoder output row, W row)",
     [f"{A}ln_f.out[s, :]", f"{_C}.wv[d, :]", f"{_C}.bv[d]"]),
    (f"{_C}.scores[t, s]", "scaled_dot", "q·k/√d (a decoder token against an encoder frame)",
     [f"{_C}.q[t, :]", f"{_C}.k[s, :]"]),
    (f"{_C}.softmax[t, s]", "softmax", "softmax over the encoder frames of", [f"{_C}.scores[t, :]"]),
    (f"{_C}.out[t, d]", "frames_sum", "Σ softmax·v over every encoder frame", [f"{_C}.softmax[t, :]", f"{_C}.v[:, d]"]),
    (f"{_B}.cross_attn.proj[t, c]", "concat_projection", "b + Σ_heads dot(head row, W_O row)",
     [f"{_B}.cross_attn.head.{{h*}}.out[t, :]", f"{_B}.cross_attn.proj.weight[c, :]", f"{_B}.cross_attn.proj.bias[c]"]),
    (f"{_B}.resid_cross[t, c]", "residual_add", "X + CrossAttention(X, audio)",
     [f"{_B}.resid1[t, c]", f"{_B}.cross_attn.proj[t, c]"]),
    *_mlp(_B, f"{_B}.resid_cross"),
]


def _log_mel(cell, vals):
    """A log-mel cell: its filter's band and its 25 ms window's place in time."""
    low, peak, high = mel_band(CONFIG.n_mels, cell.col)
    centre = cell.row * HOP / SAMPLE_RATE
    half = N_FFT / 2 / SAMPLE_RATE
    return cell.value, (f"mel bin {cell.col}: {low:,.0f}-{high:,.0f} Hz (peak {peak:,.0f} Hz), frame {cell.row}: "
                        f"{max(0.0, centre - half):.3f}-{centre + half:.3f} s; (max(log10(mel power), max - 8) + 4)/4 "
                        f"= {RESULT}")


def _conv(stride: int):
    def op(cell, vals):
        x, w, b = vals
        first = stride * cell.row - 1               # the input row under tap 0 (padding 1 on each side)
        taps = np.arange(max(0, -first), max(0, -first) + x.shape[0])
        kernel = w.reshape(x.shape[1], -1)             # (in channels, kernel): torch's (out, in, k) row
        parts = [float(x[i] @ kernel[:, k]) for i, k in enumerate(taps)]
        rows = f"{first + taps[0]}..{first + taps[-1]}"
        return float(b) + sum(parts), (f"{cell.label} = {format_number(b)} + {_sum_text([_term(p) for p in parts])} "
                                       f"(input rows {rows}) = {RESULT}")
    return op


def _frames_sum(cell, vals):
    a, v = vals
    top = np.argsort(-a, kind="stable")[:3]
    terms = [f"{format_number(a[i])}·{_term(v[i])} (s={i})" for i in top]
    return float(a @ v), f"Σ over {a.size} frames softmax·v, largest: {' + '.join(terms)} + … = {RESULT}"


def _window(stride: int):
    def at(trace, block, i):
        n = trace[f"{A}embed.conv1" if stride == 1 else f"{A}embed.conv1_act"].shape[0]
        return range(max(0, stride * i - 1), min(n, stride * i + 2))
    return at


OPS.update({"log_mel": _log_mel, "conv_s1": _conv(1), "conv_s2": _conv(2), "frames_sum": _frames_sum})
INDEX_MAPS.update({"conv_window1": _window(1), "conv_window2": _window(2)})
FAMILIES["whisper"] = Family(((None, ENCODER), (None, DECODER), (None, DATAFLOW)), eps=CONFIG.ln_eps)
