"""Where every number of a live model's scene comes from (nano-GPT, the MoEs, the Mambas, RWKV, Jamba): one dependency table per family, and hover explanations.

DATAFLOW declares, once and as data, how cell [row, col] of each activation is computed: the
operation and the source cells, written the way a reader would, e.g.

    blocks.{b}.attn.head.{h}.q[t, d]  <-  blocks.{b}.ln1.out[t, :], ...wq[d, :], ...bq[d]

`resolve` turns a rule into concrete source ids for one tensor id; `explain` gathers the
source cells of one hovered cell from a trace and the weights, recomputes the cell with numpy,
and says how ("b + dot(row, W row) = 0.013 + 1.204 = 1.217"). Highlighting, tooltips and
animation pacing all read this one declaration, so they cannot disagree with each other, and
the tests prove the declaration right by recomputing every tensor from it.

Each model family (FAMILIES: nano-GPT, the MoEs, mamba-tiny here; mamba2-tiny, rwkv-tiny and jamba-tiny in
dataflow_recurrent.py) is a list of such tables, tried in order, the family detected from a trace's ids
(`model_shape`).

Numbers only: no torch here, so the hover path stays cheap (tens of microseconds a cell).
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np

LN_EPS = 1e-5  # GPT-2's layer_norm_epsilon, which the nano-GPT uses

# ---- the declaration -------------------------------------------------------------------------
#
# Each rule is (target[axes], operation kind, label shown in the formula, [source references]).
# Inside a reference's brackets, one selector per axis of the source tensor:
#   t, t', c, d, f, v   that index of the hovered cell (an axis name of the target)
#   :                   the whole axis
#   ..t                 positions 0..t, what causal attention lets position t see
#   tokens[t]           the index stored in another tensor at the hovered row (embedding lookup)
#   {e}                 the expert index bound by the target's id (a fixed column)
#   t-1                 the previous position; at t=0 the reference after " | " is read instead (the
#                       state carried in from before the window)
#   t:                  positions t.. to the end (the carried conv inputs the first positions still read)
#   name(i, n)          the index or range INDEX_MAPS[name] gives for those indices (a head's channels,
#                       a group's columns of a packed tensor)
# A reference ending in "?" may be absent from the trace, and is then read as no cells (the conv inputs
# carried in from before the window exist only past the text's start).
# Placeholders: {b} block, {h} head, {h*} every head of the block (one source each), {kv} head h's KV
# group, {g} a KV group, {e} expert, {e*} every expert of the block; {resid_in} is the residual stream
# entering block b, {resid_out} the one leaving the last block.


def _layer_norm(ln: str, x: str) -> list[tuple[str, str, str, list[str]]]:
    return [
        (f"{ln}.mean[t]", "ln_mean", "mean", [f"{x}[t, :]"]),
        (f"{ln}.std[t]", "ln_std", "σ", [f"{x}[t, :]", f"{ln}.mean[t]"]),
        (f"{ln}.out[t, c]", "ln_normalise", "(x − μ)/σ·γ + β",
         [f"{x}[t, c]", f"{ln}.mean[t]", f"{ln}.std[t]", f"{ln}.weight[c]", f"{ln}.bias[c]"]),
    ]


_B, _H = "blocks.{b}", "blocks.{b}.attn.head.{h}"

DATAFLOW: list[tuple[str, str, str, list[str]]] = [
    ("tokens[t]", "input", "input token", []),
    ("embed.tok[t, c]", "gather", "E_token", ["tokens[t]", "embed.tok.weight[tokens[t], c]"]),
    ("embed.pos[t, c]", "gather", "E_pos", ["embed.pos.weight[t, c]"]),
    ("embed.out[t, c]", "add", "token emb + position emb", ["embed.tok[t, c]", "embed.pos[t, c]"]),
    *_layer_norm(f"{_B}.ln1", "{resid_in}"),
    *[(f"{_H}.{n}[t, d]", "linear", "b + dot(LN row, W row)",
       [f"{_B}.ln1.out[t, :]", f"{_H}.w{n}[d, :]", f"{_H}.b{n}[d]"]) for n in "qkv"],
    (f"{_H}.scores[t, t']", "scaled_dot", "q·k/√d", [f"{_H}.q[t, :]", f"{_H}.k[t', :]"]),
    (f"{_H}.scores_masked[t, t']", "causal_mask", "causal mask", [f"{_H}.scores[t, t']"]),
    (f"{_H}.softmax[t, t']", "softmax", "softmax over row", [f"{_H}.scores_masked[t, :]"]),
    (f"{_H}.out[t, d]", "weighted_sum", "Σ softmax·v", [f"{_H}.softmax[t, ..t]", f"{_H}.v[..t, d]"]),
    (f"{_B}.attn.proj[t, c]", "concat_projection", "b + Σ_heads dot(head row, W_O row)",
     [f"{_B}.attn.head.{{h*}}.out[t, :]", f"{_B}.attn.proj.weight[c, :]", f"{_B}.attn.proj.bias[c]"]),
    (f"{_B}.resid1[t, c]", "residual_add", "X + Attention(X)", ["{resid_in}[t, c]", f"{_B}.attn.proj[t, c]"]),
    *_layer_norm(f"{_B}.ln2", f"{_B}.resid1"),
    (f"{_B}.mlp.fc[t, f]", "linear", "b + dot(LN row, W row)",
     [f"{_B}.ln2.out[t, :]", f"{_B}.mlp.fc.weight[f, :]", f"{_B}.mlp.fc.bias[f]"]),
    (f"{_B}.mlp.gelu[t, f]", "gelu_tanh", "GELU, tanh approximation", [f"{_B}.mlp.fc[t, f]"]),
    (f"{_B}.mlp.proj[t, c]", "linear", "b + dot(GELU row, W row)",
     [f"{_B}.mlp.gelu[t, :]", f"{_B}.mlp.proj.weight[c, :]", f"{_B}.mlp.proj.bias[c]"]),
    (f"{_B}.resid2[t, c]", "residual_add", "X + MLP(X)", [f"{_B}.resid1[t, c]", f"{_B}.mlp.proj[t, c]"]),
    *_layer_norm("ln_f", "{resid_out}"),
    ("logits[t, v]", "unembed", "dot(ln_f row, unembedding row)", ["ln_f.out[t, :]", "lm_head.weight[v, :]"]),
    ("probs[t, v]", "prob_softmax", "softmax over the logits of", ["logits[t, :]"]),
]


# The small MoE models (models/sim/moe_model.py) share everything above but the MLP: a Mixtral-style
# layer, a bias-free router, softmax over the top-k logits, SwiGLU experts without biases.
# Their rules are tried first when the trace has experts.
_M, _E = "blocks.{b}.moe", "blocks.{b}.moe.expert"

MOE_DATAFLOW: list[tuple[str, str, str, list[str]]] = [
    (f"{_M}.router[t, e]", "unembed", "router logit = dot(LN row, router row)",
     [f"{_B}.ln2.out[t, :]", f"{_M}.router.weight[e, :]"]),
    (f"{_M}.probs[t, e]", "prob_softmax", "softmax over the router logits of", [f"{_M}.router[t, :]"]),
    (f"{_M}.topk[t, k]", "topk_index", "the k-th best expert", [f"{_M}.router[t, :]", f"{_M}.topk[t, :]"]),
    (f"{_M}.gates[t, e]", "topk_gate", "softmax over the top-k logits", [f"{_M}.router[t, :]", f"{_M}.topk[t, :]"]),
    (f"{_E}.{{e}}.out[t, c]", "expert_contribution", "gate · SwiGLU_e(LN row)",
     [f"{_M}.gates[t, {{e}}]", f"{_B}.ln2.out[t, :]", f"{_E}.{{e}}[:, :]", f"{_E}.{{e}}.up.weight[:, :]",
      f"{_E}.{{e}}.down.weight[c, :]"]),
    (f"{_M}.out[t, c]", "moe_sum", "Σ over chosen experts gate · SwiGLU_e(LN row)",
     [f"{_M}.gates[t, :]", f"{_B}.ln2.out[t, :]", f"{_E}.{{e*}}[:, :]", f"{_E}.{{e*}}.up.weight[:, :]",
      f"{_E}.{{e*}}.down.weight[c, :]"]),
    (f"{_B}.resid2[t, c]", "residual_add", "X + MoE(X)", [f"{_B}.resid1[t, c]", f"{_M}.out[t, c]"]),
]


# The small Mamba (models/sim/mamba_trace.py): RMSNorm, no attention, no MLP; each layer is one mixer
# whose selective scan the scene draws per token ({s}: the step, so mamba.h.{s} is the state after token
# s). Its layers end at resid1, so the residual aliases read resid1 there. Tried first on a Mamba trace.
_S = "blocks.{b}.mamba"


# Models without positional embeddings read the token's row alone.
TOKEN_EMBEDDING = ("embed.out[t, c]", "gather", "E_token", ["tokens[t]", "embed.tok.weight[tokens[t], c]"])


def _rms_norm(ln: str, x: str) -> list[tuple[str, str, str, list[str]]]:
    return [
        (f"{ln}.rms[t]", "rms", "rms", [f"{x}[t, :]"]),
        (f"{ln}.out[t, c]", "rms_normalise", "x/rms·γ", [f"{x}[t, c]", f"{ln}.rms[t]", f"{ln}.weight[c]"]),
    ]


MAMBA_DATAFLOW: list[tuple[str, str, str, list[str]]] = [
    TOKEN_EMBEDDING,
    *_rms_norm(f"{_B}.ln1", "{resid_in}"),
    (f"{_S}.x[t, i]", "unembed", "x = dot(norm row, W_x row)", [f"{_B}.ln1.out[t, :]", f"{_S}.x.weight[i, :]"]),
    (f"{_S}.z[t, i]", "unembed", "z = dot(norm row, W_z row)", [f"{_B}.ln1.out[t, :]", f"{_S}.z.weight[i, :]"]),
    (f"{_S}.conv[t, i]", "causal_conv", "causal conv over the last positions",
     [f"{_S}.x[..t, i]", f"{_S}.conv.weight[i, :]", f"{_S}.conv.bias[i]", f"{_S}.conv_init[i, t:]?"]),
    (f"{_S}.conv_act[t, i]", "silu", "SiLU", [f"{_S}.conv[t, i]"]),
    (f"{_S}.dt_low[t, r]", "unembed", "Δ low-rank = dot(x row, W row)",
     [f"{_S}.conv_act[t, :]", f"{_S}.dt_low.weight[r, :]"]),
    (f"{_S}.B[t, n]", "unembed", "B = dot(x row, W_B row)", [f"{_S}.conv_act[t, :]", f"{_S}.B.weight[n, :]"]),
    (f"{_S}.C[t, n]", "unembed", "C = dot(x row, W_C row)", [f"{_S}.conv_act[t, :]", f"{_S}.C.weight[n, :]"]),
    (f"{_S}.dt[t, i]", "softplus_linear", "Δ = softplus(b + dot(Δ low-rank row, W row))",
     [f"{_S}.dt_low[t, :]", f"{_S}.dt.weight[i, :]", f"{_S}.dt.bias[i]"]),
    (f"{_S}.dA.{{s}}[i, n]", "ssm_decay", "exp(Δ·A), A = −exp(A_log)",
     [f"{_S}.dt[{{s}}, i]", f"{_S}.A_log[i, n]"]),
    (f"{_S}.dBx.{{s}}[i, n]", "ssm_input", "Δ·B·x", [f"{_S}.dt[{{s}}, i]", f"{_S}.B[{{s}}, n]", f"{_S}.conv_act[{{s}}, i]"]),
    (f"{_S}.h_init[i, n]", "carried", "the state before the first column: zeros, or what the characters "
     "before the window left", []),
    (f"{_S}.h.{{s}}[i, n]", "scan_step", "h = exp(ΔA)·h_prev + ΔB·x",
     [f"{_S}.dA.{{s}}[i, n]", f"{_S}.dBx.{{s}}[i, n]", f"{_S}.h.{{s-1}}[i, n]"]),   # h_init before the first
    (f"{_S}.y[t, i]", "ssm_output", "y = C·h + D·x",
     [f"{_S}.C[t, :]", f"{_S}.h[t, i, :]", f"{_S}.D[i]", f"{_S}.conv_act[t, i]"]),
    (f"{_S}.alpha[t, u]", "hidden_attention", "α = mean over channels of C_t·(Π exp(ΔA))·ΔB_u",
     [f"{_S}.C[t, :]", f"{_S}.dA[..t, :, :]", f"{_S}.dB[u, :, :]"]),
    (f"{_S}.gated[t, i]", "silu_gate", "y·SiLU(z)", [f"{_S}.y[t, i]", f"{_S}.z[t, i]"]),
    (f"{_S}.out[t, c]", "unembed", "dot(gated row, W_out row)", [f"{_S}.gated[t, :]", f"{_S}.out.weight[c, :]"]),
    (f"{_B}.resid1[t, c]", "residual_add", "X + Mamba(X)", ["{resid_in}[t, c]", f"{_S}.out[t, c]"]),
    *_rms_norm("ln_f", "{resid_out}"),
]


@dataclass(frozen=True)
class Family:
    """One model family's declaration: its rule tables, tried in order, each for every layer (kind None) or
    only for layers of one kind (LAYER_KINDS); where its residual stream starts (`first`: what enters block
    0) and ends in each layer (`last`: resid2, or resid1 where a layer is one mixer); its norms' ε."""
    tables: tuple[tuple[str | None, list], ...]
    last: str = "resid2"
    first: str = "embed.out"
    eps: float = LN_EPS


# vit-tiny (models/sim/vit_trace.py): nano-GPT's encoder layer without the causal mask and with exact GELU; its
# tokens are [CLS] then the patches, each patch's pixels times W_patch. Tried before nano-GPT's rules.
VIT_DATAFLOW: list[tuple[str, str, str, list[str]]] = [
    ("patches[t, p]", "input", "pixel p of patch", []),
    ("embed.patch[t, c]", "linear", "b + dot(patch pixels, W_patch row)",
     ["patches[t, :]", "embed.patch.weight[c, :]", "embed.patch.bias[c]"]),
    # token t is patch t − 1 (t = 0: the [CLS] token)
    ("embed.out[t, c]", "add", "patch emb ([CLS] at t=0) + position emb", ["embed.patch[t-1, c] | embed.cls[c]",
                                                                        "embed.pos[t, c]"]),
    (f"{_H}.softmax[t, t']", "softmax", "softmax over row (no mask)", [f"{_H}.scores[t, :]"]),
    (f"{_H}.out[t, d]", "weighted_sum", "Σ softmax·v over every token", [f"{_H}.softmax[t, :]", f"{_H}.v[:, d]"]),
    (f"{_B}.mlp.gelu[t, f]", "gelu", "GELU, exact", [f"{_B}.mlp.fc[t, f]"]),
]
VIT_LN_EPS = 1e-12  # ViT's layer_norm_eps

# dataflow_recurrent.py adds mamba2, rwkv and jamba.
FAMILIES: dict[str, Family] = {
    "gpt": Family(((None, DATAFLOW),)),
    "moe": Family(((None, MOE_DATAFLOW), (None, DATAFLOW))),
    "mamba": Family(((None, MAMBA_DATAFLOW), (None, DATAFLOW)), last="resid1"),
    "vit": Family(((None, VIT_DATAFLOW), (None, DATAFLOW)), eps=VIT_LN_EPS),
}

# How a trace says which family made it: the first of these ids it holds, else "gpt".
FAMILY_MARKERS = (("whisper", "audio.features"), ("clip_text", "contrast.logits"), ("clip_vision", "proj"), ("llava", "projector.fc2"),  # before jamba: llava-tiny's Llama has blocks.0.ln2.rms too
                  ("jamba", "blocks.0.ln2.rms"), ("rwkv", "blocks.0.time_mix.wkv"), ("mamba2", "blocks.0.mamba.xBC"),
                  ("mamba", "blocks.0.mamba.x"), ("moe", "blocks.0.moe.router"), ("vit", "embed.cls"))

# A hybrid's layers differ: what marks a block as holding each kind of part (Family tables may be kept to one).
LAYER_KINDS = {"attention": "attn.proj", "mamba": "mamba.out", "moe": "moe.out", "mlp": "mlp.down"}

# Index maps the `name(axes)` selectors call: (trace, block, *the cell's indices) -> an index or a range.
INDEX_MAPS: dict[str, object] = {}


def _alias(name: str, block: int | None, n_layers: int, family: Family) -> str:
    """The residual stream a rule reads, which depends on where its block sits."""
    if name == "resid_in":
        return family.first if block == 0 else f"blocks.{block - 1}.{family.last}"
    return f"blocks.{n_layers - 1}.{family.last}" if n_layers else family.first  # resid_out


# ---- parsing the table (once, at import) -------------------------------------------------------

class SourceSpec(NamedTuple):
    """One source tensor of a resolved rule and a selector per axis: ('at', axis), ('all',), ('upto', axis),
    ('via', index_tensor_id, axis), ('fixed', index), ('prev', axis), ('from', axis) or ('map', name, axes,
    block); `at_first`: what a 'prev' selector reads at the first position instead; `optional`: absent from
    some traces, then read as no cells."""
    tensor_id: str
    selectors: tuple[tuple, ...]
    at_first: "SourceSpec | None" = None
    optional: bool = False


@dataclass(frozen=True)
class Resolved:
    """A rule applied to one concrete tensor id."""
    tensor_id: str
    op: str
    label: str
    axes: tuple[str, ...]
    sources: tuple[SourceSpec, ...]
    eps: float = LN_EPS

    @property
    def source_ids(self) -> tuple[str, ...]:
        return tuple(s.tensor_id for s in self.sources)


_SELECTOR_COMMA = re.compile(r",(?![^()]*\))")  # a comma between selectors, not inside a map's arguments
_MAP = re.compile(r"(\w+)\((.*)\)$")


def _split_ref(ref: str) -> tuple[str, list[str]]:
    # Split at the first "[" so a nested selector such as tokens[t] stays whole.
    name, _, inner = ref.partition("[")
    return name, [s.strip() for s in _SELECTOR_COMMA.split(inner[:-1])]


def _selector(text: str, target_axes: tuple[str, ...]) -> tuple:
    if text == ":":
        return ("all",)
    if text.startswith("{"):  # an index bound by the target's id, fixed when the rule is resolved
        return ("param", text[1:-1])
    mapped = _MAP.match(text)
    if mapped:
        axes = tuple(a.strip() for a in mapped.group(2).split(",") if a.strip())
        # an argument in braces is an index bound by the target's id ({h}: the head of mamba.ssd.{h})
        if not {a for a in axes if not a.startswith("{")} <= set(target_axes):
            raise ValueError(f"selector {text!r} names axes {axes}, not all of {target_axes}")
        return ("map", mapped.group(1), axes)
    if text.endswith("-1"):
        kind, axis, tensor = "prev", text[:-2], None
    elif text.endswith(":"):
        kind, axis, tensor = "from", text[:-1], None
    elif text.startswith(".."):
        kind, axis, tensor = "upto", text[2:], None
    elif "[" in text:
        tensor, axes = _split_ref(text)
        kind, axis = "via", axes[0]
    else:
        kind, axis, tensor = "at", text, None
    if axis not in target_axes:
        raise ValueError(f"selector {text!r} names axis {axis!r}, not one of {target_axes}")
    return (kind, axis) if tensor is None else (kind, tensor, axis)


class _Rule(NamedTuple):
    pattern: re.Pattern
    op: str
    label: str
    axes: tuple[str, ...]
    sources: tuple[tuple[str, tuple[tuple, ...], tuple | None, bool], ...]  # (id, selectors, t-1's at t=0, optional)
    kind: str | None = None  # the layer kind the rule is kept to (LAYER_KINDS), None for any


def _compile(target: str, op: str, label: str, refs: list[str], kind: str | None = None) -> _Rule:
    name, axes = _split_ref(target)
    regex = re.escape(name)
    for key in "bhesg":
        regex = regex.replace(r"\{" + key + r"\}", rf"(?P<{key}>\d+)")

    def parsed(ref: str) -> tuple[str, tuple[tuple, ...]]:
        src, sels = _split_ref(ref)
        return src, tuple(_selector(s, tuple(axes)) for s in sels)

    sources = []
    for ref in refs:
        primary, _, at_first = ref.removesuffix("?").partition(" | ")
        sources.append((*parsed(primary), parsed(at_first) if at_first else None, ref.endswith("?")))
    return _Rule(re.compile(regex + "$"), op, label, tuple(axes), tuple(sources), kind)


@lru_cache(maxsize=None)
def _rules(family: str) -> tuple[_Rule, ...]:
    return tuple(_compile(*row, kind) for kind, table in FAMILIES[family].tables for row in table)


def _fill(src: str, sels: tuple[tuple, ...], bound: dict[str, str], block: int | None, n_layers: int,
          n_heads: int, n_kv_heads: int, family: Family) -> tuple[str, tuple[tuple, ...]]:
    """One source reference with this tensor id's placeholders filled in."""
    for alias in ("resid_in", "resid_out"):
        if "{" + alias + "}" in src:
            src = src.replace("{" + alias + "}", _alias(alias, block, n_layers, family))
    if "{s-1}" in src:  # the previous scan step; before the first, the state the window starts from
        step = int(bound["s"])
        src = src.replace(".{s-1}", "_init") if step == 0 else src.replace("{s-1}", str(step - 1))
    if "{kv}" in src:   # grouped-query attention: the query heads of one KV group are adjacent
        src = src.replace("{kv}", str(int(bound["h"]) * n_kv_heads // n_heads))
    for key, val in bound.items():
        src = src.replace("{" + key + "}", val)
    def bound_args(axes: tuple) -> tuple:
        return tuple(int(bound[a[1:-1]]) if a.startswith("{") else a for a in axes)

    return src, tuple(("fixed", int(bound[s[1]])) if s[0] == "param" else
                      (s[0], s[1], bound_args(s[2]), block) if s[0] == "map" else s for s in sels)


@lru_cache(maxsize=4096)
def resolve(tensor_id: str, n_layers: int, n_heads: int, n_experts: int = 0, family: str | None = None,
            n_kv_heads: int = 0, layer_kinds: tuple[tuple[str, ...], ...] = ()) -> Resolved:
    """The declaration of one activation id, with placeholders filled in for this model size: the first
    rule of the family's tables (FAMILIES; None: "moe" with experts, else "gpt") that matches it and, where
    the rule is kept to one kind of layer, whose block has that kind (``layer_kinds``, per block)."""
    family = family or ("moe" if n_experts else "gpt")
    spec = FAMILIES[family]
    for rule in _rules(family):
        m = rule.pattern.match(tensor_id)
        if m is None:
            continue
        bound = m.groupdict()
        block = int(bound["b"]) if "b" in bound else None
        if rule.kind is not None and (block is None or rule.kind not in layer_kinds[block]):
            continue
        sources = []
        for src, sels, at_first, optional in rule.sources:
            src, sels = _fill(src, sels, bound, block, n_layers, n_heads, n_kv_heads, spec)
            first = None if at_first is None else SourceSpec(*_fill(*at_first, bound, block, n_layers, n_heads,
                                                                       n_kv_heads, spec))
            for star, count in (("{h*}", n_heads), ("{e*}", n_experts)):
                if star in src:
                    sources += [SourceSpec(src.replace(star, str(i)), sels) for i in range(count)]
                    break
            else:
                sources.append(SourceSpec(src, sels, first, optional))
        return Resolved(tensor_id, rule.op, rule.label, rule.axes, tuple(sources), spec.eps)
    raise KeyError(f"no dataflow rule declares {tensor_id!r}")


# ---- formatting --------------------------------------------------------------------------------

def format_number(x: float) -> str:
    """How every number appears in a formula: 4 significant digits, a true minus sign, ∞."""
    x = float(x)
    if math.isinf(x):
        return "−∞" if x < 0 else "∞"
    if x == 0:
        return "0"  # also -0.0, which would print as a puzzling "−0"
    mantissa, _, exponent = f"{x:.4g}".partition("e")
    text = mantissa if not exponent else f"{mantissa}e{int(exponent)}"  # "3.82e5", not "3.82e+05"
    return text.replace("-", "−")


def _term(x: float) -> str:
    """A number as an operand after an operator: negatives in parentheses, "0.3 + (−0.1)"."""
    s = format_number(x)
    return f"({s})" if s.startswith("−") else s


def _sum_text(terms: list[str], limit: int = 4) -> str:
    shown = terms if len(terms) <= limit else terms[:limit - 1] + ["…"]
    return " + ".join(shown)


# ---- the operations: recompute one cell from its gathered sources -----------------------------
#
# Each takes the cell and the gathered source values (float64; a selector naming one index
# removes that axis) and returns (recomputed value, formula with RESULT where the answer goes).

RESULT = "\x00"


class _Cell(NamedTuple):
    row: int
    col: int | None
    label: str
    value: float  # the trace's number; only the input op (nothing to recompute from) reads it
    eps: float = LN_EPS  # the family's norm ε


def _input(cell, vals):
    return cell.value, f"{cell.label} at t={cell.row} = {RESULT}"


def _gather(cell, vals):
    if len(vals) == 2:  # token embedding: the row index is the token id stored at t
        token = int(vals[0])
        return float(vals[1]), f"token {token} at t={cell.row} → {cell.label}[{token}, c={cell.col}] = {RESULT}"
    return float(vals[0]), f"position t={cell.row} → {cell.label}[{cell.row}, c={cell.col}] = {RESULT}"


def _add(cell, vals):
    a, b = float(vals[0]), float(vals[1])
    return a + b, f"{cell.label} = {format_number(a)} + {_term(b)} = {RESULT}"


def _ln_mean(cell, vals):
    return float(vals[0].mean()), f"mean of this row ({vals[0].size} values) = {RESULT}"


def _ln_std(cell, vals):
    x, mu = vals[0], float(vals[1])
    var = float(np.mean((x - mu) ** 2))
    return (math.sqrt(var + cell.eps),
            f"σ = √(mean((x − μ)²) + ε) over {x.size} values = √({format_number(var)} + {cell.eps:g}) = {RESULT}")


def _ln_normalise(cell, vals):
    x, mu, sd, g, b = (float(v) for v in vals)
    return ((x - mu) / sd * g + b,
            f"{cell.label} = ({format_number(x)} − {_term(mu)})/{format_number(sd)}·{_term(g)} + {_term(b)} = {RESULT}")


def _linear(cell, vals):
    x, w, b = vals
    dot = float(x @ w)
    return dot + float(b), f"{cell.label} = {format_number(b)} + {_term(dot)} = {RESULT}"


def _unembed(cell, vals):
    x, w = vals
    return float(x @ w), f"{cell.label} over {x.size} channels = {RESULT}"


def _scaled_dot(cell, vals):
    q, k = vals
    dot = float(q @ k)
    return dot / math.sqrt(q.size), f"{cell.label} = {format_number(dot)}/√{q.size} = {RESULT}"


def _causal_mask(cell, vals):
    if cell.col > cell.row:
        return -math.inf, f"masked: t'={cell.col} > t={cell.row} so {RESULT}"
    return float(vals[0]), f"kept: t'={cell.col} ≤ t={cell.row}, score = {RESULT}"


def _softmax(cell, vals):
    row = vals[0]
    finite = row[np.isfinite(row)]
    # Printed unshifted (exp of the number on screen) unless that would overflow float64.
    shift = float(finite.max()) if finite.size and finite.max() > 80 else 0.0
    e = np.exp(row - shift)
    total = float(e.sum())
    x = float(row[cell.col])
    arg = format_number(x) if shift == 0 else f"{format_number(x)} − {format_number(shift)}"
    return (float(e[cell.col]) / total,
            f"{cell.label} t={cell.row}: exp({arg}) / Σ exp = {format_number(e[cell.col])} / "
            f"{format_number(total)} = {RESULT}")


def _weighted_sum(cell, vals):
    a, v = vals
    terms = [f"{format_number(p)}·{_term(x)}" for p, x in zip(a, v)]
    return float(a @ v), f"Σ_t'≤{cell.row} softmax·v = {_sum_text(terms)} = {RESULT}"


def _concat_projection(cell, vals):
    has_bias = np.ndim(vals[-1]) == 0     # a bias-free projection (Jamba's o_proj) ends with W_O's row
    *heads, w = vals[:-1] if has_bias else vals
    parts, start = [], 0
    for h in heads:  # W_O's row, cut into the columns each head's output meets
        parts.append(float(h @ w[start:start + h.size]))
        start += h.size
    terms = _sum_text([_term(p) for p in parts])
    if not has_bias:
        return sum(parts), f"{cell.label} = {terms} = {RESULT}"
    b = vals[-1]
    return float(b) + sum(parts), f"{cell.label} = {format_number(b)} + {terms} = {RESULT}"


_GELU_C = math.sqrt(2.0 / math.pi)


def _gelu_tanh(cell, vals):
    x = float(vals[0])
    inner = _GELU_C * (x + 0.044715 * x ** 3)  # GPT-2's tanh approximation ("gelu_new")
    return (0.5 * x * (1.0 + math.tanh(inner)),
            f"GELU_tanh(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) = 0.5·{_term(x)}·(1 + tanh({format_number(inner)})) "
            f"= {RESULT}")


def _gelu(cell, vals):
    x = float(vals[0])
    return (0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0))),
            f"GELU(x) = 0.5·x·(1 + erf(x/√2)) = 0.5·{_term(x)}·(1 + erf({format_number(x / math.sqrt(2.0))})) = {RESULT}")


def _best(logits: np.ndarray, k: int) -> np.ndarray:
    """The k largest logits' experts, best first (ties to the lower index, as torch.topk on CPU)."""
    return np.argsort(-logits, kind="stable")[:k]


def _experts_text(chosen) -> str:
    return ", ".join(str(int(e)) for e in chosen)


def _topk_index(cell, vals):
    logits, k = vals[0], len(vals[1])
    chosen = _best(logits, k)
    e = int(chosen[cell.col])
    return float(e), (f"rank {cell.col} of the {len(logits)} router logits at t={cell.row} "
                      f"(best first: experts {_experts_text(chosen)}): expert {RESULT}, logit {format_number(logits[e])}")


def _topk_gate(cell, vals):
    logits, k = vals[0], len(vals[1])
    chosen = _best(logits, k)
    if cell.col not in chosen:
        return 0.0, f"expert {cell.col} is not among the top {k} (experts {_experts_text(chosen)}): gate {RESULT}"
    top = logits[chosen]
    e = np.exp(top - top.max())  # softmax over the k best only = softmax, top-k, renormalised
    share = float(e[list(chosen).index(cell.col)] / e.sum())
    return share, (f"expert {cell.col} is among the top {k} (experts {_experts_text(chosen)}): "
                   f"exp({format_number(logits[cell.col])}) / Σ_top-{k} exp = {RESULT}")


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def _swiglu_row(x, w_gate, w_up, w_down_row) -> float:
    """Column c of W_down (SiLU(W_gate x) ⊙ W_up x), given W_down's row c."""
    return float(w_down_row @ (_silu(w_gate @ x) * (w_up @ x)))


def _expert_contribution(cell, vals):
    gate, x, w_gate, w_up, w_down = vals
    gate = float(gate)
    if gate == 0:
        return 0.0, f"this expert is not chosen at t={cell.row} (gate 0): contribution {RESULT}"
    y = _swiglu_row(x, w_gate, w_up, w_down)
    return gate * y, f"{cell.label} = {format_number(gate)}·{_term(y)} = {RESULT}"


def _moe_sum(cell, vals):
    gates, x, *weights = vals
    n = len(weights) // 3
    terms, total = [], 0.0
    for e in np.flatnonzero(gates):  # only the chosen experts run
        y = _swiglu_row(x, weights[e], weights[n + e], weights[2 * n + e])
        total += float(gates[e]) * y
        terms.append(f"{format_number(gates[e])}·{_term(y)} (expert {e})")
    return total, f"Σ_chosen gate · SwiGLU_e(LN row) = {_sum_text(terms) or '0'} = {RESULT}"


def _rms(cell, vals):
    x = vals[0]
    ms = float(np.mean(x ** 2))
    return math.sqrt(ms + cell.eps), (f"rms = √(mean(x²) + ε) over {x.size} values = √({format_number(ms)} + "
                                      f"{cell.eps:g}) = {RESULT}")


def _rms_normalise(cell, vals):
    x, rms, g = (float(v) for v in vals)
    return x / rms * g, f"{cell.label} = {format_number(x)}/{format_number(rms)}·{_term(g)} = {RESULT}"


def _causal_conv(cell, vals):
    x, w, b, carried = vals              # x: positions 0..t of this channel; w: the kernel, oldest tap first
    window = np.concatenate([carried, x])[-len(w):]   # carried: the inputs before the window it still reaches
    taps = w[len(w) - len(window):]      # near the start, the taps before position 0 meet zero padding
    terms = [f"{format_number(a)}·{_term(v)}" for a, v in zip(taps, window)]
    return float(b) + float(taps @ window), f"{cell.label}: {format_number(b)} + {_sum_text(terms)} = {RESULT}"


def _silu_op(cell, vals):
    x = float(vals[0])
    return x / (1.0 + math.exp(-x)), f"SiLU(x) = x·σ(x) = {_term(x)}·σ({format_number(x)}) = {RESULT}"


def _softplus_linear(cell, vals):
    x, w, b = vals
    pre = float(b) + float(x @ w)
    return float(np.logaddexp(0.0, pre)), f"Δ = softplus({format_number(b)} + dot) = ln(1 + e^{_term(pre)}) = {RESULT}"


def _ssm_decay(cell, vals):
    dt, a_log = float(vals[0]), float(vals[1])
    a = -math.exp(a_log)
    return math.exp(dt * a), f"exp(Δ·A) = exp({format_number(dt)}·{_term(a)}) = {RESULT}"


def _ssm_input(cell, vals):
    dt, b, x = (float(v) for v in vals)
    return dt * b * x, f"Δ·B·x = {format_number(dt)}·{_term(b)}·{_term(x)} = {RESULT}"


def _carried(cell, vals):
    return cell.value, f"{cell.label}: {RESULT}"


def _scan_step(cell, vals):
    a, bx, prev = (float(v) for v in vals)
    return a * prev + bx, f"h = {format_number(a)}·{_term(prev)} + {_term(bx)} = {RESULT}"


def _ssm_output(cell, vals):
    c, h, d, x = vals
    read = float(c @ h)
    return read + float(d) * float(x), (f"y = Σ_n C·h ({c.size} states) + D·x = {format_number(read)} + "
                                        f"{format_number(d)}·{_term(x)} = {RESULT}")


def _silu_gate(cell, vals):
    y, z = float(vals[0]), float(vals[1])
    gate = z / (1.0 + math.exp(-z))
    return y * gate, f"y·SiLU(z) = {format_number(y)}·{_term(gate)} = {RESULT}"


OPS = {
    "rms": _rms, "rms_normalise": _rms_normalise, "causal_conv": _causal_conv, "silu": _silu_op,
    "softplus_linear": _softplus_linear, "ssm_decay": _ssm_decay, "ssm_input": _ssm_input,
    "scan_step": _scan_step, "carried": _carried, "ssm_output": _ssm_output, "silu_gate": _silu_gate,
    "input": _input, "gather": _gather, "add": _add, "residual_add": _add,
    "ln_mean": _ln_mean, "ln_std": _ln_std, "ln_normalise": _ln_normalise,
    "linear": _linear, "unembed": _unembed, "scaled_dot": _scaled_dot, "causal_mask": _causal_mask,
    "softmax": _softmax, "prob_softmax": _softmax, "weighted_sum": _weighted_sum,
    "concat_projection": _concat_projection, "gelu_tanh": _gelu_tanh, "gelu": _gelu,
    "topk_index": _topk_index, "topk_gate": _topk_gate, "expert_contribution": _expert_contribution,
    "moe_sum": _moe_sum,
}

# ---- explain -----------------------------------------------------------------------------------


class Source(NamedTuple):
    """Cells to highlight in one tensor: row indices and column indices (None for a 1-D tensor)."""
    tensor_id: str
    rows: np.ndarray
    cols: np.ndarray | None


@dataclass(frozen=True)
class Explanation:
    tensor_id: str
    row: int
    col: int | None
    op: str
    value: float       # the trace's number at the cell
    indices: str       # "t=3, d=5"
    formula: str       # the computation with real numbers, recomputed from the sources
    sources: list[Source]
    recomputed: float  # the cell computed again from its declared sources
    masked: bool       # a causal-mask cell the mask sets to −∞

    @property
    def tooltip(self) -> str:
        return f"{self.tensor_id}[{self.indices}] = {format_number(self.value)}\n{self.formula}"


def _count(trace: Mapping, pattern: str) -> int:
    n = 0
    while pattern.format(n) in trace:
        n += 1
    return n


def family(trace: Mapping) -> str:
    """Which of FAMILIES produced a trace, read from its ids."""
    return next((name for name, marker in FAMILY_MARKERS if marker in trace), "gpt")


class ModelShape(NamedTuple):
    """What `resolve` needs to know of the model behind a trace, in its argument order."""
    n_layers: int
    n_heads: int
    n_experts: int
    family: str
    n_kv_heads: int
    layer_kinds: tuple[tuple[str, ...], ...]


def model_shape(trace: Mapping) -> ModelShape:
    """The family and sizes of the model that produced a trace, read from its ids: heads and experts from
    the first block that has them (a hybrid's first block may have neither)."""
    name = family(trace)
    n_layers = _count(trace, "blocks.{}." + FAMILIES[name].last)
    kinds = tuple(tuple(kind for kind, marker in LAYER_KINDS.items() if f"blocks.{b}.{marker}" in trace)
                  for b in range(n_layers))
    attention = next((b for b in range(n_layers) if "attention" in kinds[b]), 0)
    moe = next((b for b in range(n_layers) if "moe" in kinds[b]), 0)
    router = trace.get(f"blocks.{moe}.moe.router") if hasattr(trace, "get") else None
    return ModelShape(n_layers, _count(trace, f"blocks.{attention}.attn.head.{{}}.q"),
                      0 if router is None else int(router.shape[-1]), name,
                      _count(trace, f"blocks.{attention}.attn.kv_head.{{}}.k"), kinds)


def n_experts(trace: Mapping) -> int:
    """Experts per MoE layer of the model that produced a trace (0: no mixture of experts)."""
    return model_shape(trace).n_experts


def model_size(trace: Mapping) -> tuple[int, int]:
    """(n_layers, n_heads) of the model that produced a trace, read from its ids."""
    return model_shape(trace)[:2]


def _span(sel: tuple, cell_index: dict[str, int], size: int, trace: Mapping) -> tuple[int, int, bool]:
    """(start, stop, one index) of one selector for the hovered cell."""
    kind = sel[0]
    if kind == "all":
        return 0, size, False
    if kind == "fixed":
        return sel[1], sel[1] + 1, True
    if kind in ("at", "prev"):
        i = cell_index[sel[1]] - (kind == "prev")
        return i, i + 1, True
    if kind == "upto":
        return 0, cell_index[sel[1]] + 1, False
    if kind == "from":
        i = min(cell_index[sel[1]], size)
        return i, size, False
    if kind == "map":
        _, name, axes, block = sel
        at = INDEX_MAPS[name](trace, block, *(a if isinstance(a, int) else cell_index[a] for a in axes))
        return (at.start, at.stop, False) if isinstance(at, range) else (at, at + 1, True)
    i = int(trace[sel[1]][cell_index[sel[2]]])  # via: an index stored in another tensor
    return i, i + 1, True


def _at_first(spec: SourceSpec, cell_index: dict[str, int]) -> SourceSpec:
    """The source read: at the first position, a 'prev' selector's reference reads what was carried in."""
    first = spec.at_first is not None and any(s[0] == "prev" and cell_index[s[1]] == 0 for s in spec.selectors)
    return spec.at_first if first else spec


def explain(tensor_id: str, row: int, col: int | None, trace: Mapping, weights: Mapping) -> Explanation:
    """How cell [row, col] of an activation was computed (col is None for a 1-D tensor)."""
    rule = resolve(tensor_id, *model_shape(trace))
    target = trace[tensor_id]
    index = (row,) if target.ndim == 1 else (row, col)
    if len(rule.axes) != target.ndim or any(not 0 <= i < n for i, n in zip(index, target.shape)):
        raise IndexError(f"{tensor_id}{list(target.shape)} has no cell {list(index)}")
    cell_index = dict(zip(rule.axes, index))
    sources, vals = [], []
    for spec in rule.sources:
        spec = _at_first(spec, cell_index)
        if spec.optional and spec.tensor_id not in trace:
            vals.append(np.zeros(0))
            continue
        arr = trace[spec.tensor_id] if spec.tensor_id in trace else weights[spec.tensor_id]
        spans = [_span(sel, cell_index, n, trace) for sel, n in zip(spec.selectors, arr.shape)]
        vals.append(np.asarray(arr[tuple(a if one else slice(a, b) for a, b, one in spans)], np.float64))
        axes_idx = [np.arange(a, b) for a, b, _ in spans]
        if all(len(i) for i in axes_idx):  # a selection of no cells (carried inputs no longer reached) names nothing
            sources.append(Source(spec.tensor_id, axes_idx[0], axes_idx[1] if len(axes_idx) > 1 else None))
    value = float(target[index])
    recomputed, template = OPS[rule.op](_Cell(row, col, rule.label, value, rule.eps), vals)
    # The answer printed is the trace's own number once the recomputation agrees with it, so
    # the tooltip's headline and the formula's end never differ by a last rounding digit.
    agrees = value == recomputed or abs(value - recomputed) <= 1e-4 * max(1.0, abs(value))
    formula = template.replace(RESULT, format_number(value if agrees else recomputed))
    return Explanation(tensor_id, row, col, rule.op, value,
                       ", ".join(f"{a}={i}" for a, i in cell_index.items()), formula, sources,
                       recomputed, rule.op == "causal_mask" and col > row)


# The recurrent families' tables, ops and index maps join FAMILIES, OPS and INDEX_MAPS there; imported last,
# as it builds on the helpers above.
from llmviz.scenes import dataflow_recurrent  # noqa: E402,F401
from llmviz.scenes import llava_dataflow  # noqa: E402,F401  (llava-tiny: its tower, projector and decoder)
from llmviz.scenes import clip_dataflow  # noqa: E402,F401  (clip-tiny: its two towers and the shared space)
from llmviz.scenes import whisper_dataflow  # noqa: E402,F401  (whisper-tiny: audio encoder, cross-attention)
