"""Where every number of llava-tiny's scene comes from: its dataflow table (the CLIP tower under "vision.", the
projector, the Llama decoder whose first rows are the image tokens), the operations it adds (RoPE, a row taken
from another tensor), joined to dataflow.py's FAMILIES, OPS and INDEX_MAPS, so the hover explains every cell
from its sources with real numbers as it does nano-GPT's.

The tower's rules are written out per layer (its residual stream is not the decoder's blocks.{b}), for the
layers and heads llava-tiny has (LlavaTinyConfig). Numbers only: no torch here.
"""
from __future__ import annotations

import math

from llmviz.models.sim.llava_config import LlavaTinyConfig
from llmviz.scenes.dataflow import (DATAFLOW, FAMILIES, INDEX_MAPS, OPS, RESULT, Family, _B, _H, _layer_norm,
                                    _rms_norm, _term, format_number)
from llmviz.scenes.dataflow_recurrent import JAMBA_MLP

CONFIG = LlavaTinyConfig()
V = "vision."


def _vision_layer(b: int) -> list:
    p, x = f"{V}blocks.{b}", (f"{V}ln0.out" if b == 0 else f"{V}blocks.{b - 1}.resid2")
    h = f"{p}.attn.head.{{h}}"
    heads = [f"{p}.attn.head.{i}.out[t, :]" for i in range(CONFIG.vision_heads)]
    return [
        *_layer_norm(f"{p}.ln1", x),
        *[(f"{h}.{n}[t, d]", "linear", "b + dot(LN row, W row)",
           [f"{p}.ln1.out[t, :]", f"{h}.w{n}[d, :]", f"{h}.b{n}[d]"]) for n in "qkv"],
        (f"{h}.scores[t, t']", "scaled_dot", "q·k/√d", [f"{h}.q[t, :]", f"{h}.k[t', :]"]),
        (f"{h}.softmax[t, t']", "softmax", "softmax over row (no mask)", [f"{h}.scores[t, :]"]),
        (f"{h}.out[t, d]", "weighted_sum", "Σ softmax·v over every token", [f"{h}.softmax[t, :]", f"{h}.v[:, d]"]),
        (f"{p}.attn.proj[t, c]", "concat_projection", "b + Σ_heads dot(head row, W_O row)",
         [*heads, f"{p}.attn.proj.weight[c, :]", f"{p}.attn.proj.bias[c]"]),
        (f"{p}.resid1[t, c]", "residual_add", "X + Attention(X)", [f"{x}[t, c]", f"{p}.attn.proj[t, c]"]),
        *_layer_norm(f"{p}.ln2", f"{p}.resid1"),
        (f"{p}.mlp.fc[t, f]", "linear", "b + dot(LN row, W row)",
         [f"{p}.ln2.out[t, :]", f"{p}.mlp.fc.weight[f, :]", f"{p}.mlp.fc.bias[f]"]),
        (f"{p}.mlp.gelu[t, f]", "gelu", "GELU, exact", [f"{p}.mlp.fc[t, f]"]),
        (f"{p}.mlp.proj[t, c]", "linear", "b + dot(GELU row, W row)",
         [f"{p}.mlp.gelu[t, :]", f"{p}.mlp.proj.weight[c, :]", f"{p}.mlp.proj.bias[c]"]),
        (f"{p}.resid2[t, c]", "residual_add", "X + MLP(X)", [f"{p}.resid1[t, c]", f"{p}.mlp.proj[t, c]"]),
    ]


_LAST = f"{V}blocks.{CONFIG.vision_layers - 1}.resid2"
_READ = f"{V}blocks.{CONFIG.vision_layers + CONFIG.feature_layer}.resid2"   # the hidden state LLaVA reads

VISION = [
    (f"{V}patches[t, p]", "input", "pixel p of patch", []),
    (f"{V}embed.patch[t, c]", "unembed", "dot(patch pixels, W_patch row) (CLIP's patch conv has no bias)",
     [f"{V}patches[t, :]", f"{V}embed.patch.weight[c, :]"]),
    (f"{V}embed.pos[t, c]", "gather", "E_pos", [f"{V}embed.pos.weight[t, c]"]),
    # token t is patch t − 1 (t = 0: the [CLS] token)
    (f"{V}embed.out[t, c]", "add", "patch emb ([CLS] at t=0) + position emb",
     [f"{V}embed.patch[t-1, c] | {V}embed.cls[c]", f"{V}embed.pos[t, c]"]),
    *_layer_norm(f"{V}ln0", f"{V}embed.out"),
    *[rule for b in range(CONFIG.vision_layers) for rule in _vision_layer(b)],
    *_layer_norm(f"{V}ln_f", _LAST),   # CLIP's post_layernorm, on [CLS] alone (row 0)
    (f"{V}image_features[t, c]", "taken", f"vision_feature_layer {CONFIG.feature_layer}'s token t + 1 ([CLS] "
     f"dropped): {_READ}", [f"{_READ}[after_cls(t), c]"]),
    ("projector.fc1[t, c]", "linear", "b + dot(patch feature row, W1 row)",
     [f"{V}image_features[t, :]", "projector.fc1.weight[c, :]", "projector.fc1.bias[c]"]),
    ("projector.act1[t, c]", "gelu", "GELU, exact", ["projector.fc1[t, c]"]),
    ("projector.fc2[t, c]", "linear", "b + dot(GELU row, W2 row)",
     ["projector.act1[t, :]", "projector.fc2.weight[c, :]", "projector.fc2.bias[c]"]),
]

DECODER = [
    ("embed.image[t, c]", "taken", "image token t = the projector's output row t", ["projector.fc2[t, c]"]),
    ("tokens[t]", "input", "text token", []),
    ("embed.tok[t, c]", "gather", "E_token", ["tokens[t]", "embed.tok.weight[tokens[t], c]"]),
    ("embed.out[t, c]", "placed", "the sequence: image tokens first, then the text",
     ["embed.image[image_row(t), c]", "embed.tok[text_row(t), c]"]),
    *_rms_norm(f"{_B}.ln1", "{resid_in}"),
    *[(f"{_H}.{n}[t, d]", "unembed", f"{n} = dot(norm row, W_{n} row)",
       [f"{_B}.ln1.out[t, :]", f"{_H}.w{n}[d, :]"]) for n in "qkv"],
    *[(f"{_H}.{n}_rope[t, d]", "rope", f"RoPE({n})", [f"{_H}.{n}[t, :]"]) for n in "qk"],
    (f"{_H}.scores[t, t']", "scaled_dot", "RoPE(q)·RoPE(k)/√d", [f"{_H}.q_rope[t, :]", f"{_H}.k_rope[t', :]"]),
    (f"{_B}.attn.proj[t, c]", "concat_projection", "Σ_heads dot(head row, W_O row)",
     [f"{_B}.attn.head.{{h*}}.out[t, :]", f"{_B}.attn.proj.weight[c, :]"]),
    *_rms_norm(f"{_B}.ln2", f"{_B}.resid1"),
    *JAMBA_MLP,
    *_rms_norm("ln_f", "{resid_out}"),
]


def _taken(cell, vals):
    return float(vals[0]), f"{cell.label} = {RESULT}"


def _placed(cell, vals):
    """The row that applies of (image token, text token): the other's selection is empty."""
    image, text = vals
    if image.ndim == 0:
        return float(image), f"t={cell.row} is image token {cell.row}: the projector's row = {RESULT}"
    return float(text), f"t={cell.row} is a text token: its embedding = {RESULT}"


def _rope(cell, vals):
    """RoPE as transformers' Llama applies it: channel d pairs with d ± half, at angle t·θ^(−2i/n)."""
    row = vals[0]
    n, d, t = row.size, cell.col, cell.row
    half = n // 2
    i = d % half
    angle = t * CONFIG.rope_theta ** (-2 * i / n)
    c, s = math.cos(angle), math.sin(angle)
    if d < half:
        value, other, sign = row[d] * c - row[d + half] * s, row[d + half], "−"
    else:
        value, other, sign = row[d] * c + row[d - half] * s, row[d - half], "+"
    return float(value), (f"{cell.label} t={t}, d={d}: x_d·cos(tθ) {sign} x_pair·sin(tθ), θ = {CONFIG.rope_theta:g}^(−{2 * i}/{n}), "
                          f"= {format_number(row[d])}·{format_number(c)} {sign} {_term(other)}·{format_number(s)} = {RESULT}")


def _image_row(trace, block, t):
    return t if t < trace["embed.image"].shape[0] else range(0, 0)


def _text_row(trace, block, t):
    n = trace["embed.image"].shape[0]
    return t - n if t >= n else range(0, 0)


OPS.update({"taken": _taken, "placed": _placed, "rope": _rope})
INDEX_MAPS.update({"after_cls": lambda trace, block, t: t + 1, "image_row": _image_row, "text_row": _text_row})
# One ε for the family: the tower's LayerNorms and the decoder's RMSNorms share it in llava-tiny (1e-5).
assert CONFIG.rms_eps == CONFIG.vision_ln_eps
FAMILIES["llava"] = Family(((None, VISION), (None, DECODER), (None, DATAFLOW)), eps=CONFIG.rms_eps)
