"""Where every number of clip-tiny's scene comes from: two dataflow families joined to dataflow.py's FAMILIES, OPS
and INDEX_MAPS, and `explain`, which routes a hovered cell to the right one, so the hover explains every cell
from its sources with real numbers as it does nano-GPT's.

The vision tower's ids carry the "vision." prefix; `explain` reads them through a view of the trace and the
weights without it, under "clip_vision": ViT's rules (no causal mask, exact GELU) with CLIP's bias-free patch
conv, its pre-LayerNorm (ln0, where the residual stream starts) and the pooled [CLS]. The text tower and the
shared space are "clip_text": nano-GPT's causal rules with exact GELU, the pooled <end> token, both
projections, the unit embeddings and the scaled cosine. Numbers only: no torch here.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from llmviz.models.sim import clip_vocab
from llmviz.scenes import dataflow
from llmviz.scenes.dataflow import (DATAFLOW, FAMILIES, INDEX_MAPS, OPS, RESULT, VIT_DATAFLOW, Family, _layer_norm,
                                    format_number)

VISION = "vision."
LN_EPS = 1e-5   # clip_model.ClipTinyConfig.ln_eps, CLIP's

CLIP_VISION: list[tuple[str, str, str, list[str]]] = [
    ("embed.patch[t, c]", "unembed", "dot(patch pixels, W_patch row) (CLIP's patch conv has no bias)",
     ["patches[t, :]", "embed.patch.weight[c, :]"]),
    *_layer_norm("ln0", "embed.out"),
    ("pool[c]", "read_at", "the post-LayerNorm's row of [CLS], t=0", ["ln_f.out[clip_cls(c), c]"]),
    ("proj[e]", "unembed", "image embedding = dot(pooled [CLS], W_proj row), no bias", ["pool[:]", "proj.weight[e, :]"]),
]

CLIP_TEXT: list[tuple[str, str, str, list[str]]] = [
    ("pool[c]", "read_at", "the final LayerNorm's row of the first <end>", ["ln_f.out[clip_end(c), c]"]),
    ("proj[e]", "unembed", "text embedding = dot(pooled <end>, W_proj row), no bias", ["pool[:]", "proj.weight[e, :]"]),
    ("contrast.image[e]", "unit", "image embedding / ‖image embedding‖", ["vision.proj[:]"]),
    ("contrast.text[e]", "unit", "text embedding / ‖text embedding‖", ["proj[:]"]),
    ("contrast.logits[k]", "scaled_cosine", "cos(image, text) · e^s",
     ["contrast.image[:]", "contrast.text[:]", "logit_scale[:]"]),
    *[rule for rule in VIT_DATAFLOW if rule[1] == "gelu"],     # exact GELU, as CLIP's hidden_act "gelu"
]


def _read_at(cell, vals):
    return float(vals[0]), f"{cell.label} = {RESULT}"


def _unit(cell, vals):
    x = vals[0]
    norm = float(np.sqrt(x @ x))
    return float(x[cell.row]) / norm, (f"{cell.label}: {format_number(x[cell.row])} / √(Σ x²) over {x.size} channels "
                                       f"= {format_number(x[cell.row])} / {format_number(norm)} = {RESULT}")


def _scaled_cosine(cell, vals):
    image, text, scale = vals[0], vals[1], float(np.ravel(vals[2])[0])
    cos = float(image @ text)
    return cos * math.exp(scale), (f"{cell.label} = (Σ unit image · unit text = {format_number(cos)}) · "
                                   f"e^{format_number(scale)} = {format_number(cos)} · {format_number(math.exp(scale))}"
                                   f" = {RESULT}")


def _end(trace, block, c):
    return int(np.flatnonzero(np.asarray(trace["tokens"]) == clip_vocab.END_ID)[0])


OPS.update({"read_at": _read_at, "unit": _unit, "scaled_cosine": _scaled_cosine})
INDEX_MAPS.update({"clip_cls": lambda trace, block, c: 0, "clip_end": _end})
FAMILIES.update({
    "clip_vision": Family(((None, CLIP_VISION), (None, VIT_DATAFLOW), (None, DATAFLOW)), first="ln0.out", eps=LN_EPS),
    "clip_text": Family(((None, CLIP_TEXT), (None, DATAFLOW)), eps=LN_EPS),
})


class Unprefixed(Mapping):
    """The entries of `source` whose ids start with `prefix`, under their ids without it."""

    def __init__(self, source: Mapping, prefix: str):
        self.source, self.prefix = source, prefix

    def __getitem__(self, key: str):
        return self.source[self.prefix + key]

    def __contains__(self, key) -> bool:
        return isinstance(key, str) and (self.prefix + key) in self.source

    def __iter__(self):
        n = len(self.prefix)
        return (k[n:] for k in self.source if k.startswith(self.prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def explain(tensor_id: str, row: int, col: int | None, trace: Mapping, weights: Mapping) -> dataflow.Explanation:
    """dataflow.explain for a clip-tiny trace: the vision tower's cells through the unprefixed view (their
    sources named again with the prefix, so the scene lights the right blocks), the rest as they are."""
    if not tensor_id.startswith(VISION):
        return dataflow.explain(tensor_id, row, col, trace, weights)
    inner = dataflow.explain(tensor_id[len(VISION):], row, col, Unprefixed(trace, VISION), Unprefixed(weights, VISION))
    return replace(inner, tensor_id=tensor_id,
                   sources=[s._replace(tensor_id=VISION + s.tensor_id) for s in inner.sources])
