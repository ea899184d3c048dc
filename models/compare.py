"""Two to four models side by side, as data: what each costs, how they differ, and which part of one stands where in another.

- ``compare(specs, context)`` → a Comparison: the cost table (one Row per metric: unit, formula, a value per
  model, which models are largest and smallest), the feature matrix (one FeatureRow per feature, a value per
  model) and the list of differences ({component, models, what}: features that differ, dimensions that
  differ, and tensors the inventory holds in one model and not another or holds in other shapes).
- ``corresponding(spec_a, path, spec_b)`` / ``corresponding_id(spec_a, id, spec_b)``: for cameras in step,
  the component of model B at the same relative place as model A's (layer i of n_A → round(i × n_B / n_A);
  attention ↔ a recurrent mixer, MoE ↔ MLP), in the layout's id scheme (scenes/layout_blocks.py).

Rows and features are declarations (METRICS, FEATURES, EQUIVALENT_KINDS): their values come from the spec,
its parameter counts (models/params.py) and its inventory (models/inventory.py), so a new family is
covered without code here. Pure stdlib over the models layer: no scenes, no engine.
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from . import cache
from .inventory import BIAS, Tensor, layer_key, layer_tensors, output_tensors, stem_tensors
from .params import count_params
from .spec import GATED_ACTIVATIONS, Architecture, EncoderComponent, ModelSpec

MIN_MODELS, MAX_MODELS = 2, 4
BF16_BYTES = 2
# int4: four bits a parameter, two packed in a byte; the quantisation scales and zero points are not counted.
WEIGHT_FORMATS = (("bf16", 2.0), ("int8", 1.0), ("int4", 0.5))
LOOKUP_TABLES = ("embed.tok.weight", "embed.pos.weight")  # read by index, never multiplied


class CompareError(ValueError):
    """Models that cannot be compared: too few, too many, the same one twice, a context out of range."""


# ---------------------------------------------------------------- what one model is made of

@dataclass(frozen=True)
class Facts:
    """What the rows and features read from one spec, computed once."""
    spec: ModelSpec
    total: int
    active: int
    multiplied: int                          # weights one token multiplies by (FLOPs' weight term)
    layer_kinds: Counter                     # inventory layer key -> layers of that kind
    tensors: dict[str, set[tuple[int, ...]]]  # main stack's tensor ids (indices as *) -> their shapes

    @property
    def arch(self) -> Architecture:
        return self.spec.architecture

    @property
    def id(self) -> str:
        return self.spec.id


_INDEX = re.compile(r"\.\d+(?=\.|$)")


def _pattern(tensor_id: str) -> str:
    """'attn.head.3.wq' -> 'attn.head.*.wq': one entry for every head, expert and layer."""
    return _INDEX.sub(".*", tensor_id)


def facts(spec: ModelSpec) -> Facts:
    arch = spec.architecture
    counted = count_params(spec)
    kinds = Counter(layer_key(arch, i) for i in range(arch.n_layers))
    stem, output = stem_tensors(arch), output_tensors(arch)
    tensors: dict[str, set] = {}
    for t in stem + output:
        tensors.setdefault(_pattern(t.id), set()).add(t.shape)
    for key in kinds:
        for t in layer_tensors(arch, key):
            tensors.setdefault("blocks.*." + _pattern(t.id), set()).add(t.shape)
    # The per-token weights: the main stack's active parameters (towers and encoders run per image or audio
    # clip, not per token), less the tables a token only looks up, plus a tied unembedding (multiplied at
    # the output, though its numbers are counted once, as the embedding).
    own = count_params(dataclasses.replace(arch, components=(), mtp_modules=0)).active
    lookups = sum(t.params for t in stem if t.id in LOOKUP_TABLES)
    tied_head = sum(t.count for t in output if t.id == "lm_head.weight" and not t.counted)
    return Facts(spec, counted.total, counted.active, own - lookups + tied_head, kinds, tensors)


def attention_widths(arch: Architecture) -> tuple[int, int]:
    """(d_qk, d_v): the widths of all heads' queries/keys and of their values (MLA: its own head dims)."""
    if arch.mla is not None:
        return arch.n_heads * (arch.mla.qk_nope_head_dim + arch.mla.qk_rope_head_dim), arch.n_heads * arch.mla.v_head_dim
    width = arch.n_heads * arch.head_width
    return width, width


def mean_keys(arch: Architecture, n_tokens: int) -> float:
    """Keys a token attends to, on average over a forward pass of ``n_tokens``: all of them without a causal
    mask; N/2 causal; with a sliding window W < N, (1/N)∫₀ᴺ min(t, W) dt = W − W²/2N."""
    if not arch.causal:
        return float(n_tokens)
    window = arch.sliding_window
    if window is None or n_tokens <= window:
        return n_tokens / 2
    return window - window * window / (2 * n_tokens)


def attention_flops(arch: Architecture, n_tokens: int) -> float:
    """QKᵀ and AV per token: 2 × keys × (d_qk + d_v) per attention layer."""
    d_qk, d_v = attention_widths(arch) if cache.attention_layers(arch) else (0, 0)
    return 2 * cache.attention_layers(arch) * mean_keys(arch, n_tokens) * (d_qk + d_v)


def forward_flops_per_token(f: Facts, n_tokens: int) -> float:
    return 2 * f.multiplied + attention_flops(f.arch, n_tokens)


# ---------------------------------------------------------------- the cost table

@dataclass(frozen=True)
class Metric:
    """One row of the cost table, declared: how to read its value from a model's Facts at context N."""
    key: str
    label: str
    unit: str
    formula: str
    value: Callable[[Facts, int], float | int | None]
    dimension: bool = False   # a size that shapes tensors: listed among the differences when it differs
    kinds: tuple[str, ...] = ()  # the components it is about (for highlighting; see EQUIVALENT_KINDS)


def _moe(f: Facts, name: str):
    return getattr(f.arch.moe, name) if f.arch.moe is not None else None


def _head_dim(f: Facts, _n) -> int | None:
    if not cache.attention_layers(f.arch):
        return None
    if f.arch.mla is not None:
        return f.arch.mla.qk_nope_head_dim + f.arch.mla.qk_rope_head_dim
    return f.arch.head_width


def _weights(bytes_per: float) -> Callable[[Facts, int], int]:
    return lambda f, _n: math.ceil(f.total * bytes_per)


def _attention_only(value):
    """A row that means nothing for a model without attention layers (heads of a Mamba): None there."""
    return lambda f, n: value(f, n) if cache.attention_layers(f.arch) else None


METRICS: tuple[Metric, ...] = (
    Metric("params_total", "parameters (total)", "parameters",
           "sum of every learned tensor of the inventory (models/params.py; a tied head counted once)",
           lambda f, _n: f.total),
    Metric("params_active", "parameters (active per token)", "parameters",
           "total less the routed experts a token is not sent to: (n_experts − top_k) / n_experts of each MoE bank",
           lambda f, _n: f.active),
    Metric("layers", "layers", "layers", "n_layers of the main stack", lambda f, _n: f.arch.n_layers,
           dimension=True, kinds=("layer",)),
    Metric("attention_layers", "attention layers", "layers", "layers whose sequence mixer is attention",
           lambda f, _n: cache.attention_layers(f.arch), kinds=("attention",)),
    Metric("d_model", "width d_model", "values", "the residual stream's width", lambda f, _n: f.arch.d_model,
           dimension=True, kinds=("attention", "mlp", "moe", "mamba", "norm", "embedding", "output")),
    Metric("heads", "attention heads", "heads", "query heads per attention layer",
           _attention_only(lambda f, _n: f.arch.n_heads), dimension=True, kinds=("attention",)),
    Metric("kv_heads", "KV heads", "heads", "key/value heads per attention layer (MHA: = heads; MLA: per head, "
           "from the shared latent)", _attention_only(lambda f, _n: f.arch.kv_heads), dimension=True,
           kinds=("attention",)),
    Metric("head_dim", "head dim", "values", "a query/key head's width (MLA: qk_nope + qk_rope)", _head_dim,
           dimension=True, kinds=("attention",)),
    Metric("d_ff", "MLP width d_ff", "values", "the dense feed-forward's hidden width (RWKV: channel mix)",
           lambda f, _n: f.arch.d_ff, dimension=True, kinds=("mlp",)),
    Metric("vocab", "vocabulary", "tokens", "vocab_size (embedding and unembedding rows)",
           lambda f, _n: f.arch.vocab_size, dimension=True, kinds=("embedding", "output")),
    Metric("experts", "routed experts", "experts", "experts per MoE layer", lambda f, _n: _moe(f, "n_experts"),
           kinds=("moe",)),
    Metric("top_k", "experts per token (top-k)", "experts", "routed experts each token is sent to",
           lambda f, _n: _moe(f, "top_k"), kinds=("moe",)),
    Metric("shared_experts", "shared experts", "experts", "experts every token passes through",
           lambda f, _n: _moe(f, "n_shared_experts"), kinds=("moe",)),
    Metric("expert_d_ff", "expert width", "values", "one routed expert's hidden width",
           lambda f, _n: _moe(f, "expert_d_ff"), dimension=True, kinds=("moe",)),
    Metric("context_length", "context length", "tokens", "positions the model was built to read",
           lambda f, _n: f.arch.context_length, kinds=("embedding",)),
    Metric("flops_per_token", "forward FLOPs per token at N", "FLOPs",
           "2 × weights a token multiplies (active parameters of the main stack, less the token and position "
           "tables it only looks up, plus a tied unembedding) + attention 2 × attention layers × keys × "
           "(d_qk + d_v), Q·K^T and A·V, keys the mean a token attends to over N: N/2 causal, W − W²/2N past a "
           "sliding window W, N unmasked; MLA with its own head dims; recurrent layers: weights only",
           lambda f, n: forward_flops_per_token(f, n), kinds=("attention", "mlp", "moe", "mamba")),
    Metric("kv_bytes_per_token", "KV cache per token (bf16)", "bytes",
           "2 bytes × attention layers × per layer: 2 × KV heads × head dim (K and V), MLA: kv_lora_rank + "
           "qk_rope_head_dim (the latent and the rope key); recurrent layers cache nothing per token",
           lambda f, _n: BF16_BYTES * cache.kv_values_per_token(f.arch), kinds=("attention",)),
    Metric("kv_bytes_at_context", "KV cache at N (bf16)", "bytes",
           "KV cache per token × min(N, sliding window) + the recurrent state",
           lambda f, n: BF16_BYTES * cache.cache_values(f.arch, n), kinds=("attention", "mamba")),
    Metric("state_bytes", "recurrent state (bf16, fixed)", "bytes",
           "2 bytes × per recurrent layer: Mamba d_inner × (d_state + d_conv), Mamba-2 d_inner × d_state + "
           "(d_inner + 2 × groups × d_state) × d_conv, RWKV-4 5 × d_model, RWKV-6 d_model × (head_size + 2)",
           lambda f, _n: BF16_BYTES * cache.recurrent_state_values(f.arch), kinds=("mamba",)),
) + tuple(
    Metric(f"weights_{name}", f"weight memory ({name})", "bytes",
           f"total parameters × {per:g} byte{'s' if per != 1 else ''}"
           + (" (4 bits each, two to a byte; quantisation scales not counted)" if name == "int4" else ""),
           _weights(per))
    for name, per in WEIGHT_FORMATS)


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str
    formula: str
    values: dict[str, float | int | None]   # model id -> value (None: the model has no such thing)
    largest: tuple[str, ...]                # empty when every model has the same value
    smallest: tuple[str, ...]
    kinds: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {"label": self.label, "unit": self.unit, "formula": self.formula, "values": dict(self.values),
                "largest": list(self.largest), "smallest": list(self.smallest)}


def _row(metric: Metric, models: list[Facts], n_tokens: int) -> Row:
    values = {f.id: metric.value(f, n_tokens) for f in models}
    known = {k: v for k, v in values.items() if v is not None}
    largest = smallest = ()
    if len(set(known.values())) > 1:
        top, bottom = max(known.values()), min(known.values())
        largest = tuple(k for k, v in known.items() if v == top)
        smallest = tuple(k for k, v in known.items() if v == bottom)
    return Row(metric.key, metric.label, metric.unit, metric.formula, values, largest, smallest, metric.kinds)


# ---------------------------------------------------------------- the feature matrix

@dataclass(frozen=True)
class Feature:
    """One row of the feature matrix, declared. ``value`` returns text, or None where the model lacks it
    (a presence feature: the difference names the models that have it)."""
    key: str
    label: str
    kinds: tuple[str, ...]
    value: Callable[[Facts], str | None]


def _mixer(f: Facts) -> str:
    counts = Counter(f.arch.layer_mixers())
    if len(counts) == 1:
        return MIXER_NAMES[next(iter(counts))]
    return "hybrid: " + ", ".join(f"{n} {MIXER_NAMES[m]}" for m, n in counts.items())


MIXER_NAMES = {"attention": "attention", "mamba": "Mamba", "mamba2": "Mamba-2", "rwkv4": "RWKV-4",
               "rwkv6": "RWKV-6"}


def _attention_kind(f: Facts) -> str | None:
    kind = f.arch.attention_kind
    if kind == "none":
        return None
    heads = f"{f.arch.n_heads} heads" + (f", {f.arch.kv_heads} KV" if kind in ("gqa", "mqa") else "")
    return f"{kind.upper()} ({heads})"


def _feed_forward(f: Facts) -> str | None:
    """Dense MLP, MoE, both (DeepSeek-V3's first layers are dense), RWKV's channel mix, or none."""
    parts = Counter()
    for (mixer, moe, ffn), n in f.layer_kinds.items():
        kind = "channel mix" if mixer.startswith("rwkv") else "MoE" if moe else "dense MLP" if ffn else None
        if kind:
            parts[kind] += n
    if not parts:
        return None
    if len(parts) == 1:
        return next(iter(parts))
    return ", ".join(f"{kind} in {n} layers" for kind, n in parts.items())


def _experts(f: Facts) -> str | None:
    moe = f.arch.moe
    return None if moe is None else f"{moe.n_experts} experts, top-{moe.top_k}"


def _shared(f: Facts) -> str | None:
    moe = f.arch.moe
    if moe is None or not moe.n_shared_experts:
        return None
    return f"{moe.n_shared_experts} × {moe.shared_expert_d_ff or moe.expert_d_ff} wide"


def _routing(f: Facts) -> str | None:
    moe = f.arch.moe
    if moe is None:
        return None
    groups = f", {moe.topk_groups} of {moe.n_groups} groups" if moe.n_groups else ""
    bias = ", selection bias" if moe.router_bias else ""
    return f"{moe.routing}{groups}{bias}"


def _activation(f: Facts) -> str | None:
    act = f.arch.activation
    if act is None:
        return None
    return f"{act} ({'gated' if act in GATED_ACTIVATIONS else 'not gated'})"


def _embeddings(f: Facts) -> str:
    head = [t for t in output_tensors(f.arch) if t.id == "lm_head.weight"]
    if not head:
        return "no output head"
    return "untied" if head[0].counted else "tied (the head is the embedding)"


# The component kind of a layout id's first part (inside a layer: the part after blocks.{i}): the layout's
# groups. Used for the tensors of the differences and for the places of the correspondence.
ID_KINDS = {"attn": "attention", "cross_attn": "attention", "mlp": "mlp", "channel_mix": "mlp", "moe": "moe",
            "mamba": "mamba", "time_mix": "mamba", "ln1": "norm", "ln2": "norm", "ln_cross": "norm",
            "ln_f": "norm", "ln0": "embedding", "embed": "embedding", "patches": "embedding",
            "lm_head": "output", "proj": "output", "output": "output"}


def _component_of(pattern: str) -> str:
    """'blocks.*.mlp.up.weight' -> 'blocks.*.mlp'; 'embed.tok.weight' -> 'embed'."""
    parts = pattern.split(".")
    return ".".join(parts[:3]) if parts[0] == "blocks" else parts[0]


def _kind_of(component: str) -> str:
    return ID_KINDS.get(component.rsplit(".", 1)[-1], "layer")


def _biases(f: Facts) -> str | None:
    """Which components' projections hold bias vectors, from the inventory (so a new family needs no rule here)."""
    holders = []
    for key in f.layer_kinds:
        for t in layer_tensors(f.arch, key):
            kind = _kind_of(t.id.split(".")[0])
            if t.kind == BIAS and kind not in holders and kind != "norm":   # a LayerNorm's shift is the norm's
                holders.append(kind)
    return ", ".join(holders) or None


def _towers(f: Facts) -> str | None:
    parts = []
    for c in f.arch.components:
        detail = f", {c.n_layers} layers × {c.d_model}" if isinstance(c, EncoderComponent) else ""
        parts.append(f"{c.name} ({c.role}{detail})")
    return "; ".join(parts) or None


FEATURES: tuple[Feature, ...] = (
    Feature("kind", "kind", ("layer",), lambda f: f.spec.kind),
    Feature("mixer", "sequence mixer", ("attention", "mamba"), _mixer),
    Feature("attention", "attention", ("attention",), _attention_kind),
    Feature("sliding_window", "sliding window", ("attention",),
            lambda f: f"{f.arch.sliding_window:,} tokens" if f.arch.sliding_window and cache.attention_layers(f.arch)
            else None),
    Feature("qk_norm", "QK norm", ("attention",), lambda f: "per head" if f.arch.qk_norm else None),
    Feature("feed_forward", "feed-forward", ("mlp", "moe"), _feed_forward),
    Feature("moe", "mixture of experts", ("moe",), _experts),
    Feature("shared_experts", "shared experts", ("moe",), _shared),
    Feature("routing", "routing", ("moe",), _routing),
    Feature("activation", "activation", ("mlp", "moe"), _activation),
    Feature("embeddings", "embeddings", ("embedding", "output"), _embeddings),
    Feature("biases", "biases", ("attention", "mlp"), _biases),
    Feature("norm", "norm", ("norm",), lambda f: f.arch.norm),
    Feature("pos_encoding", "position encoding", ("embedding", "attention"), lambda f: f.arch.pos_encoding),
    Feature("towers", "encoders / towers", ("layer",), _towers),
    Feature("modalities", "modalities", ("embedding",), lambda f: ", ".join(f.arch.modalities)),
    Feature("mtp", "multi-token prediction", ("output",),
            lambda f: f"{f.arch.mtp_modules} module{'s' if f.arch.mtp_modules > 1 else ''}" if f.arch.mtp_modules else None),
)


@dataclass(frozen=True)
class FeatureRow:
    key: str
    label: str
    values: dict[str, str | None]
    kinds: tuple[str, ...]

    @property
    def differs(self) -> bool:
        return len(set(self.values.values())) > 1

    def as_dict(self) -> dict:
        return {"label": self.label, "values": dict(self.values), "differs": self.differs}


# ---------------------------------------------------------------- differences

@dataclass(frozen=True)
class Difference:
    component: str            # a feature or dimension label, or a component id pattern ('blocks.*.mlp')
    models: tuple[str, ...]   # the models it concerns (those having the component, or all compared)
    what: str
    source: str               # "feature", "dimension" or "tensors"
    kinds: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {"component": self.component, "models": list(self.models), "what": self.what,
                "source": self.source, "kinds": list(self.kinds)}


ABSENT = "none"


def _values_text(values: dict, fmt=str) -> str:
    return "; ".join(f"{k}: {ABSENT if v is None else fmt(v)}" for k, v in values.items())


def _feature_differences(rows: list[FeatureRow]) -> list[Difference]:
    out = []
    for row in rows:
        if row.differs:
            having = tuple(k for k, v in row.values.items() if v is not None)
            out.append(Difference(row.label, having, _values_text(row.values), "feature", row.kinds))
    return out


def _dimension_differences(rows: list[Row]) -> list[Difference]:
    dims = {m.key for m in METRICS if m.dimension}
    out = []
    for row in rows:
        known = {k: v for k, v in row.values.items() if v is not None}
        if row.key in dims and len(set(known.values())) > 1:
            out.append(Difference(row.label, tuple(known), _values_text(row.values, lambda v: f"{v:,}"),
                                  "dimension", row.kinds))
    return out


SHOWN_TENSORS = 4  # per component, in a difference's text; the rest are counted


def _shapes_text(shapes: set) -> str:
    return " / ".join("×".join(map(str, s)) for s in sorted(shapes))


def _tensor_differences(models: list[Facts]) -> list[Difference]:
    """Per component (the layout's groups: embed, blocks.*.attn, blocks.*.mlp, ...), the tensors some models
    hold and others do not, and those they hold in other shapes; from each inventory."""
    ids = [f.id for f in models]
    per_component: dict[str, list[str]] = {}
    involved: dict[str, set[str]] = {}
    patterns = list(dict.fromkeys(p for f in models for p in f.tensors))
    for pattern in patterns:
        having = [f for f in models if pattern in f.tensors]
        name = pattern.split(".", 3)[-1] if pattern.startswith("blocks.") else pattern.split(".", 1)[-1]
        component = _component_of(pattern)
        if len(having) < len(models):
            line = f"{name} only in {', '.join(f.id for f in having)}"
        elif len({frozenset(f.tensors[pattern]) for f in having}) > 1:
            line = f"{name} " + " vs ".join(f"{_shapes_text(f.tensors[pattern])} ({f.id})" for f in having)
        else:
            continue
        per_component.setdefault(component, []).append(line)
        involved.setdefault(component, set()).update(f.id for f in having)
    out = []
    for component, lines in per_component.items():
        more = len(lines) - SHOWN_TENSORS
        what = "; ".join(lines[:SHOWN_TENSORS]) + (f"; and {more} more" if more > 0 else "")
        models_of = tuple(i for i in ids if i in involved[component])
        out.append(Difference(component, models_of, what, "tensors", (_kind_of(component),)))
    return out


# ---------------------------------------------------------------- the comparison

@dataclass(frozen=True)
class Comparison:
    models: tuple[str, ...]
    names: dict[str, str]
    context: int
    rows: list[Row]
    features: list[FeatureRow]
    differences: list[Difference]
    notes: list[str] = field(default_factory=list)

    def row(self, key: str) -> Row:
        return next(r for r in self.rows if r.key == key)

    def feature(self, key: str) -> FeatureRow:
        return next(r for r in self.features if r.key == key)

    def as_dict(self) -> dict:
        """One JSON object: rows keyed by metric (values keyed by model id), features likewise, differences a list."""
        return {"models": list(self.models), "names": dict(self.names), "context": self.context,
                "rows": {r.key: r.as_dict() for r in self.rows},
                "features": {r.key: r.as_dict() for r in self.features},
                "differences": [d.as_dict() for d in self.differences], "notes": list(self.notes)}


MAX_CONTEXT = 1 << 24  # the spec's own bound on a context length


def default_context(specs: list[ModelSpec]) -> int:
    """The longest context every model reads (the smallest context length), 2048 where none states one."""
    lengths = [s.architecture.context_length for s in specs if s.architecture.context_length]
    return min(lengths) if lengths else 2048


def check_models(specs: list[ModelSpec]) -> None:
    if not MIN_MODELS <= len(specs) <= MAX_MODELS:
        raise CompareError(f"compare takes {MIN_MODELS} to {MAX_MODELS} models, got {len(specs)}")
    seen = Counter(s.id for s in specs)
    twice = [i for i, n in seen.items() if n > 1]
    if twice:
        raise CompareError(f"{twice[0]!r} is given more than once")


def compare(specs: list[ModelSpec], context: int | None = None) -> Comparison:
    """The cost table, the feature matrix and the differences of 2 to 4 models at context ``context``."""
    specs = list(specs)
    check_models(specs)
    n = default_context(specs) if context is None else context
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CONTEXT:
        raise CompareError(f"the context must be an integer from 1 to {MAX_CONTEXT:,}, got {n!r}")
    models = [facts(s) for s in specs]
    rows = [_row(m, models, n) for m in METRICS]
    features = [FeatureRow(ft.key, ft.label, {f.id: ft.value(f) for f in models}, ft.kinds) for ft in FEATURES]
    differences = _feature_differences(features) + _dimension_differences(rows) + _tensor_differences(models)
    notes = [f"N = {n:,} is past {s.id}'s context length {s.architecture.context_length:,}"
             for s in specs if s.architecture.context_length and n > s.architecture.context_length]
    return Comparison(tuple(s.id for s in specs), {s.id: s.name for s in specs}, n, rows, features, differences,
                      notes)


# ---------------------------------------------------------------- correspondence, for cameras in step

COMPONENT_KINDS = ("embedding", "attention", "mamba", "mlp", "moe", "norm", "output", "layer")
# What stands in for a kind in a layer that lacks it, best first: a mixer for a mixer, a feed-forward
# part for a feed-forward part; the layer itself when nothing does (a Mamba layer has no MLP).
EQUIVALENT_KINDS = {
    "attention": ("attention", "mamba"),
    "mamba": ("mamba", "attention"),
    "mlp": ("mlp", "moe"),
    "moe": ("moe", "mlp"),
    "norm": ("norm",),
    "layer": ("layer",),
}
# A layer's component kinds and their ids in the layouts (scenes/layout_blocks.py), by what the layer holds.
MIXER_IDS = {"attention": "attn", "mamba": "mamba", "mamba2": "mamba", "rwkv4": "time_mix", "rwkv6": "time_mix"}
_OUTSIDE_ONLY = ("embedding", "output")
_KIND_OUTSIDE = {"embedding": "embed", "norm": "ln_f", "output": "output"}


@dataclass(frozen=True)
class ComponentPath:
    """A place in a model independent of its layout: a component kind, the layer (None outside the layers),
    the stack ("" the main one, else an encoder component's id prefix such as "vision.") and for norms
    which one ("ln1", "ln2")."""
    kind: str
    layer: int | None = None
    stack: str = ""
    part: str = ""


def _stack_of(spec: ModelSpec, prefix: str):
    if not prefix:
        return spec.architecture
    return next((c for c in spec.architecture.components
                 if isinstance(c, EncoderComponent) and prefix == f"{c.name}."), None)


def _layer_parts(stack, index: int) -> dict[str, str]:
    """kind -> the id (relative to blocks.{index}) of what layer ``index`` of ``stack`` holds."""
    mixer = stack.layer_mixers()[index]
    parts = {("attention" if mixer == "attention" else "mamba"): MIXER_IDS[mixer], "norm": "ln1", "layer": ""}
    if mixer.startswith("rwkv"):
        parts["mlp"], parts["norm2"] = "channel_mix", "ln2"
    elif stack.has_ffn(index):
        parts["moe" if stack.is_moe_layer(index) else "mlp"] = "moe" if stack.is_moe_layer(index) else "mlp"
        parts["norm2"] = "ln2"
    return parts


def path_of(spec: ModelSpec, component_id: str) -> ComponentPath | None:
    """The ComponentPath of a layout id (a block or a group: 'blocks.3.attn.head.2.wq', 'vision.embed'),
    or None for ids outside every component ('model')."""
    stack_prefix = ""
    for c in spec.architecture.components:
        if component_id.startswith(f"{c.name}."):
            stack_prefix, component_id = f"{c.name}.", component_id[len(c.name) + 1:]
            break
    parts = component_id.split(".")
    if parts[0] == "blocks" and len(parts) >= 2 and parts[1].isdigit():
        layer = int(parts[1])
        if len(parts) == 2:
            return ComponentPath("layer", layer, stack_prefix)
        kind = ID_KINDS.get(parts[2])
        if kind is None or kind in _OUTSIDE_ONLY:   # residual adds and the like: the layer itself
            return ComponentPath("layer", layer, stack_prefix)
        return ComponentPath(kind, layer, stack_prefix, parts[2] if kind == "norm" else "")
    kind = ID_KINDS.get(parts[0])
    return None if kind is None else ComponentPath(kind, None, stack_prefix)


def corresponding_layer(index: int, n_from: int, n_to: int) -> int:
    """Layer ``index`` of ``n_from`` at the same relative height of ``n_to`` layers: round(i × n_to / n_from), clamped."""
    if n_from <= 0 or n_to <= 0:
        return 0
    return min(max(math.floor(index * n_to / n_from + 0.5), 0), n_to - 1)


def corresponding(spec_a: ModelSpec, path: ComponentPath, spec_b: ModelSpec) -> ComponentPath:
    """Model B's component at model A's ``path``: the same stack where B has it (else B's main one), the layer
    at the same relative height, the same kind or what stands in for it (EQUIVALENT_KINDS)."""
    stack_b = _stack_of(spec_b, path.stack)
    prefix = path.stack if stack_b is not None else ""
    stack_b = stack_b if stack_b is not None else spec_b.architecture
    stack_a = _stack_of(spec_a, path.stack) or spec_a.architecture
    if path.layer is None:
        if path.kind == "norm" and not stack_b.final_norm:
            return ComponentPath("output", None, prefix)
        return ComponentPath(path.kind, None, prefix)
    if not stack_b.n_layers:
        return ComponentPath("embedding", None, prefix)
    layer = corresponding_layer(path.layer, stack_a.n_layers, stack_b.n_layers)
    held = _layer_parts(stack_b, layer)
    if path.kind == "norm":
        part = path.part if path.part == "ln2" and "norm2" in held else "ln1"
        return ComponentPath("norm", layer, prefix, part)
    kind = next((k for k in EQUIVALENT_KINDS.get(path.kind, ("layer",)) if k in held), "layer")
    return ComponentPath(kind, layer, prefix)


def component_id(spec: ModelSpec, path: ComponentPath) -> str:
    """The layout id of ``path`` in ``spec`` (a group id, or for norms the prefix of their blocks):
    blocks.{i}.attn / .mamba / .time_mix / .mlp / .channel_mix / .moe / .ln1 / .ln2, blocks.{i}, embed,
    ln_f, output; an encoder's under its prefix."""
    if path.layer is None:
        return path.stack + _KIND_OUTSIDE.get(path.kind, "embed")
    base = f"{path.stack}blocks.{path.layer}"
    if path.kind == "norm":
        return f"{base}.{path.part or 'ln1'}"
    stack = _stack_of(spec, path.stack) or spec.architecture
    part = _layer_parts(stack, path.layer).get(path.kind, "")
    return f"{base}.{part}" if part else base


def corresponding_id(spec_a: ModelSpec, id_a: str, spec_b: ModelSpec) -> str | None:
    """Model B's layout id standing where ``id_a`` stands in model A (None where ``id_a`` is no component)."""
    path = path_of(spec_a, id_a)
    if path is None:
        return None
    return component_id(spec_b, corresponding(spec_a, path, spec_b))
