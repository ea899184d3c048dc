"""ModelSpec: the typed description of one architecture, read from a data file and validated.

A spec file is JSON (or TOML) with the fields of `ModelSpec` below; nested objects map onto the
nested dataclasses, and a field left out takes its default. A minimal file:

    {"id": "tiny-gpt", "name": "Tiny GPT", "kind": "decoder-only", "sources": ["my notes"],
     "architecture": {"n_layers": 2, "d_model": 48, "n_heads": 4, "d_ff": 192,
                      "vocab_size": 10, "context_length": 8, "pos_encoding": "learned",
                      "norm": "layernorm", "activation": "gelu", "bias": true,
                      "unembedding": "tied"}}

`parse_spec` turns the parsed data into a frozen ModelSpec or raises one SpecError naming the
first field that is wrong and the rule it breaks. Pure stdlib: no torch, no rendering.

Every size has a maximum (the `_size` fields below; layers at most 10,000, heads 1,024, experts
1,024, widths 2^20, vocabularies and contexts 2^24), every list a length limit, and the whole
model at most MAX_HEAD_BLOCKS attention heads and MAX_EXPERT_BLOCKS experts over all its layers.
They are checked while the data is converted, before any rule builds a per-layer list, so a
hostile file costs microseconds, not gigabytes; the limits sit well above every real model and
below what the layout and the parameter counts can draw and add up.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Literal, Union

from llmviz.common.text import one_line

Kind = Literal["decoder-only", "encoder-decoder", "ssm", "hybrid", "multimodal"]
# The sequence mixer of a layer; the feed-forward part is described separately (d_ff / moe).
Mixer = Literal["attention", "mamba", "mamba2", "rwkv4", "rwkv6"]
Norm = Literal["layernorm", "rmsnorm"]
# "gelu" is the exact erf GELU; "gelu_tanh" its tanh approximation (GPT-2's "gelu_new"), which
# GPT-2 and the nano-GPT run: the spec names the function that runs.
Activation = Literal["gelu", "gelu_tanh", "quick_gelu", "relu", "relu2", "silu", "swiglu", "geglu"]
PosEncoding = Literal["learned", "rope", "sinusoidal", "alibi", "none"]
Unembedding = Literal["tied", "untied", "none"]
# topk-softmax: softmax over the k best logits (Mixtral; equal to softmax, top-k, renormalise).
# softmax-topk: softmax over all experts, the k best weights kept unnormalised (Jamba, Switch).
# sigmoid-grouped: DeepSeek-V3's sigmoid scores + balancing bias, group-limited top-k.
Routing = Literal["topk-softmax", "softmax-topk", "sigmoid-grouped"]
Modality = Literal["text", "image", "audio", "video"]
Fusion = Literal["prefix-tokens", "cross-attention", "contrastive", "native"]
Role = Literal["vision-encoder", "audio-encoder", "text-encoder", "projector", "head"]
ExpertLayout = Literal["grid", "circular"]
# count: a source gives an actual parameter count (our count must land within 2%);
# label: a size in a model's name or a rounded table entry (shown, compared loosely).
StatedBasis = Literal["count", "label"]

GATED_ACTIVATIONS = frozenset({"swiglu", "geglu"})
_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._+-]{0,99}")  # fullmatch: "tiny\n" is no id
_COLOR_PATTERN = re.compile(r"#[0-9a-fA-F]{6}")
_COUNT_PATTERN = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*([KMBT])?", re.IGNORECASE)
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


MAX_HEAD_BLOCKS = 200_000     # n_layers x n_heads over the whole model (GPT-3: 9,216)
MAX_EXPERT_BLOCKS = 100_000   # MoE layers x experts (DeepSeek-V3: 14,848)
MAX_LIST = 1_000              # entries in any list of a spec file
MAX_TEXT = 100_000            # characters in any string of a spec file
_WIDE, _HUGE = 2**20, 2**24


class SpecError(ValueError):
    """One problem in one spec file: which file, which field (dotted path), which rule."""

    def __init__(self, file: str, field: str | None, message: str):
        self.file, self.field, self.message = file, field, message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{one_line(self.field)}: " if self.field else ""
        return one_line(f"{self.file}: {where}{self.message}")


def _size(default=dataclasses.MISSING, *, minimum: int = 1, maximum: int = _WIDE, items: int = 16):
    """A dataclass field holding an integer size (or a tuple of them, at most ``items`` long);
    ``minimum`` and ``maximum`` are checked when the file is read."""
    return field(default=default, metadata={"min": minimum, "max": maximum, "items": items})


@dataclass(frozen=True, kw_only=True)
class LayerSet:
    """Which layers (0-based) something applies to: range(start, stop or n_layers, step)."""
    start: int = _size(0, minimum=0, maximum=10_000)
    step: int = _size(1, maximum=10_000)
    stop: int | None = _size(None, maximum=10_000)

    def __contains__(self, index: int) -> bool:
        inside = index >= self.start and (self.stop is None or index < self.stop)
        return inside and (index - self.start) % self.step == 0


@dataclass(frozen=True, kw_only=True)
class MoE:
    n_experts: int = _size(maximum=1_024)
    top_k: int = _size(maximum=1_024)
    expert_d_ff: int = _size()
    routing: Routing
    n_shared_experts: int = _size(0, minimum=0, maximum=64)
    shared_expert_d_ff: int | None = _size(None)   # defaults to expert_d_ff
    layers: LayerSet | None = None                  # None: every layer is MoE
    router_bias: bool = False                       # DeepSeek-V3's per-expert selection bias
    n_groups: int | None = _size(None, maximum=1_024)
    topk_groups: int | None = _size(None, maximum=1_024)
    route_scale: float | None = None
    aux_loss_coef: float | None = None


@dataclass(frozen=True, kw_only=True)
class MLA:
    """DeepSeek multi-head latent attention: queries and keys/values pass through low-rank latents."""
    q_lora_rank: int | None = _size()               # None: queries projected at full rank
    kv_lora_rank: int = _size()
    qk_nope_head_dim: int = _size()
    qk_rope_head_dim: int = _size()
    v_head_dim: int = _size()


@dataclass(frozen=True, kw_only=True)
class SSM:
    """Mamba (dt_rank) and Mamba-2 (head_dim, n_groups) block sizes; d_inner = expand * d_model."""
    d_state: int = _size(maximum=4_096)
    d_conv: int = _size(maximum=64)
    expand: int = _size(maximum=64)
    dt_rank: int | None = _size(None)
    head_dim: int | None = _size(None)
    n_groups: int = _size(1, maximum=1_024)
    chunk_size: int | None = _size(None, maximum=1 << 20)   # Mamba-2: tokens per SSD chunk (None: not stated)
    conv_bias: bool = True
    proj_bias: bool = False
    inner_norms: bool = False                       # Jamba: RMSNorm on dt, B and C


@dataclass(frozen=True, kw_only=True)
class RWKV:
    """RWKV-6 time-mix sizes (RWKV-4 needs none): WKV heads and the data-dependent LoRA widths."""
    head_size: int | None = _size(None)
    mix_lora_dim: int | None = _size(None)
    decay_lora_dim: int | None = _size(None)


@dataclass(frozen=True, kw_only=True)
class Hybrid:
    """The mixer of each layer, as a period repeated down the stack (Jamba: 7 Mamba, 1 attention)."""
    period: tuple[Mixer, ...]


@dataclass(frozen=True, kw_only=True)
class Input:
    """What feeds the first layer: a token embedding, a conv2d patch embedding, or a conv1d stem."""
    type: Literal["tokens", "patches", "conv1d"] = "tokens"
    patch_size: int | None = _size(None)
    image_size: int | None = _size(None)
    channels: int = _size(3, maximum=64)
    cls_token: bool = False
    in_channels: int | None = _size(None)           # conv1d: input features (e.g. 80 mel bins)
    kernel: int | None = _size(None, maximum=1_024)
    strides: tuple[int, ...] = _size((), maximum=64)                 # conv1d: one conv per stride, each to d_model
    bias: bool = True

    def n_positions(self) -> int | None:
        if self.type != "patches":
            return None
        return (self.image_size // self.patch_size) ** 2 + (1 if self.cls_token else 0)


@dataclass(frozen=True, kw_only=True)
class Stack:
    """A stack of identical-width layers with its embedding and final norm (shared by the main
    architecture and by encoder components such as vision towers)."""
    n_layers: int = _size(maximum=10_000)
    d_model: int = _size()
    norm: Norm
    pos_encoding: PosEncoding
    n_heads: int | None = _size(None, maximum=1_024)
    n_kv_heads: int | None = _size(None, maximum=1_024)          # None: equal to n_heads (MHA)
    head_dim: int | None = _size(None)              # None: d_model // n_heads
    d_ff: int | None = _size(None)                  # dense FFN width; None: no dense FFN
    activation: Activation | None = None
    vocab_size: int | None = _size(None, maximum=_HUGE)
    vocab_pad_multiple: int = _size(1, maximum=4_096)             # embedding rows rounded up (Mamba pads to 8)
    context_length: int | None = _size(None, maximum=_HUGE)
    bias: bool = False                              # biases on the attention and MLP projections
    key_bias: bool | None = None                    # None: same as bias (Whisper's key has none)
    qk_norm: bool = False
    causal: bool = True
    input: Input = Input()
    pre_norm: bool = False                          # a norm right after the embedding (CLIP ln_pre)
    final_norm: bool = True
    output_dim: int | None = _size(None)            # bias-free output projection (CLIP embeddings)
    cross_attention: bool = False                   # layers also attend to an encoder (Whisper)
    unembedding: Unembedding = "none"

    @property
    def kv_heads(self) -> int | None:
        return self.n_kv_heads if self.n_kv_heads is not None else self.n_heads

    @property
    def head_width(self) -> int | None:
        if self.head_dim is not None:
            return self.head_dim
        return self.d_model // self.n_heads if self.n_heads else None

    def layer_mixers(self) -> list[str]:
        return ["attention"] * self.n_layers

    def is_moe_layer(self, index: int) -> bool:
        return False

    def has_ffn(self, index: int) -> bool:
        return self.d_ff is not None


@dataclass(frozen=True, kw_only=True)
class EncoderComponent(Stack):
    type: Literal["encoder"]
    name: str
    role: Role
    causal: bool = False
    # Which layer's output the model reads (transformers' hidden_states index: -1 the last layer's,
    # -2 the one before it, as LLaVA does); None: the tower's own output, after its final norm.
    feature_layer: int | None = None


@dataclass(frozen=True, kw_only=True)
class ProjectorComponent:
    """An MLP between two towers: Linear(dims[0]->dims[1]), activation, Linear(...) ..."""
    type: Literal["projector"]
    name: str
    role: Role
    dims: tuple[int, ...] = _size(items=16)
    activation: Activation | None = None
    bias: bool = True


@dataclass(frozen=True, kw_only=True)
class ParameterComponent:
    """A free tensor outside any layer (CLIP's logit scale); shape () is a scalar."""
    type: Literal["parameter"]
    name: str
    role: Role
    shape: tuple[int, ...] = _size(items=8)


Component = Union[EncoderComponent, ProjectorComponent, ParameterComponent]
_COMPONENT_TYPES = {"encoder": EncoderComponent, "projector": ProjectorComponent,
                    "parameter": ParameterComponent}


@dataclass(frozen=True, kw_only=True)
class Architecture(Stack):
    unembedding: Unembedding                        # required here: tied, untied or none
    mixer: Mixer = "attention"
    sliding_window: int | None = _size(None, maximum=_HUGE)
    moe: MoE | None = None
    mla: MLA | None = None
    ssm: SSM | None = None
    rwkv: RWKV | None = None
    hybrid: Hybrid | None = None
    mtp_modules: int = _size(0, minimum=0, maximum=16)         # DeepSeek-V3 multi-token prediction depth
    modalities: tuple[Modality, ...] = ("text",)
    fusion: Fusion | None = None
    components: tuple[Component, ...] = ()
    prefix_lm: bool = False                         # image tokens and the text prefix attend both ways (PaliGemma)

    @property
    def tied_embeddings(self) -> bool:
        return self.unembedding == "tied"

    @property
    def attention_kind(self) -> str:
        """mha / gqa / mqa / mla, or none for attention-free stacks."""
        if "attention" not in self.layer_mixers():
            return "none"
        if self.mla is not None:
            return "mla"
        if self.kv_heads == self.n_heads:
            return "mha"
        return "mqa" if self.kv_heads == 1 else "gqa"

    def layer_mixers(self) -> list[str]:
        if self.hybrid is None:
            return [self.mixer] * self.n_layers
        period = self.hybrid.period
        return [period[i % len(period)] for i in range(self.n_layers)]

    def is_moe_layer(self, index: int) -> bool:
        return self.moe is not None and (self.moe.layers is None or index in self.moe.layers)

    def moe_layer_indices(self) -> list[int]:
        return [i for i in range(self.n_layers) if self.is_moe_layer(i)]

    def has_ffn(self, index: int) -> bool:
        return self.is_moe_layer(index) or self.d_ff is not None


@dataclass(frozen=True, kw_only=True)
class Visual:
    """Hints for the scene builder; they change how a model looks, never what it is."""
    color: str = "#7f8fa6"
    layer_spacing: float = 1.0
    expert_layout: ExpertLayout = "grid"


@dataclass(frozen=True, kw_only=True)
class Stated:
    """Parameter totals as a source states them, verbatim (e.g. "47B", "~85,000")."""
    total: str | None = None
    active: str | None = None
    basis: StatedBasis = "count"
    where: str = ""


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    id: str
    name: str
    kind: Kind
    architecture: Architecture
    sources: tuple[str, ...]
    version: str = ""
    aliases: tuple[str, ...] = ()
    visual: Visual = Visual()
    notes: str = ""
    speculative: bool = False
    invented: tuple[str, ...] = ()      # dotted paths of dimensions made up to draw the model
    unverified: tuple[str, ...] = ()    # claims not checked against a primary source
    stated: Stated = Stated()
    origin: str = field(default="", compare=False, metadata={"data": False})  # file it came from

    @property
    def params_stated(self) -> int | None:
        return parse_count(self.stated.total)

    @property
    def params_stated_active(self) -> int | None:
        return parse_count(self.stated.active)


def parse_count(text: str | None) -> int | None:
    """The first number with an optional K/M/B/T unit in a stated total: '~1.76T = 8x220B' -> 1.76e12."""
    if text is None:
        return None
    match = _COUNT_PATTERN.search(text)
    if match is None:
        return None
    number, unit = match.group(1).replace(",", ""), (match.group(2) or "").upper()
    return round(float(number) * _UNITS[unit])


def parse_spec(data: object, file: str = "<spec>", origin: str = "") -> ModelSpec:
    """Build and validate a ModelSpec from parsed JSON/TOML data; raises SpecError."""
    spec = _convert(ModelSpec, data, "", file)
    _Checker(spec, file).run()
    return dataclasses.replace(spec, origin=origin or file)


# ---------------------------------------------------------------- structure: types and fields

_TYPE_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
_HINTS: dict[type, dict[str, object]] = {}


def _hints(cls: type) -> dict[str, object]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _describe(value: object) -> str:
    """A value in the file's own terms, for messages: a string 'twelve', true, null, a list."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, (int, float)):
        return f"the number {value}" if abs(value) < 10**30 else "a huge number"
    if isinstance(value, str):
        return f"a string {value[:40]!r}" + ("..." if len(value) > 40 else "")
    return {list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _convert(hint: object, value: object, path: str, file: str) -> object:
    """Check `value` against a type hint and build the typed value; raise SpecError at `path`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) > 1:        # the component union: pick the class by its "type" field
            return _convert_component(value, path, file)
        return _convert(options[0], value, path, file)
    if origin is Literal:
        if not isinstance(value, str) or value not in args:
            what = path.rsplit(".", 1)[-1].split("[")[0]
            raise SpecError(file, path, f"unknown {what} {value!r}; expected one of: "
                            + ", ".join(map(str, args)))
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise SpecError(file, path, f"expected a list, got {_describe(value)}")
        if len(value) > MAX_LIST:
            raise SpecError(file, path, f"has {len(value):,} entries; at most {MAX_LIST:,} are allowed")
        return tuple(_convert(args[0], item, f"{path}[{i}]", file) for i, item in enumerate(value))
    if dataclasses.is_dataclass(hint):
        return _convert_dataclass(hint, value, path, file)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(file, path, f"expected a number, got {_describe(value)}")
        if isinstance(value, int) and abs(value) > 10**300 or not math.isfinite(value):
            raise SpecError(file, path, "must be a finite number")
        return float(value)
    if hint is str and isinstance(value, str) and len(value) > MAX_TEXT:
        raise SpecError(file, path, f"has {len(value):,} characters; at most {MAX_TEXT:,} are allowed")
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise SpecError(file, path, f"expected {_TYPE_WORDS[hint]}, got {_describe(value)}")
    return value


def _convert_component(value: object, path: str, file: str) -> object:
    if not isinstance(value, dict):
        raise SpecError(file, path, f"expected an object, got {_describe(value)}")
    kind = value.get("type")
    if not isinstance(kind, str) or kind not in _COMPONENT_TYPES:
        raise SpecError(file, _join(path, "type"), f"unknown component type {kind!r}; expected one "
                        "of: " + ", ".join(_COMPONENT_TYPES))
    return _convert_dataclass(_COMPONENT_TYPES[kind], value, path, file)


def _convert_dataclass(cls: type, value: object, path: str, file: str) -> object:
    if not isinstance(value, dict):
        raise SpecError(file, path or None, f"expected an object, got {_describe(value)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.metadata.get("data", True)}
    for key in value:
        if key not in fields:
            near = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise SpecError(file, _join(path, str(key)), f"unknown field{hint}")
    hints, kwargs = _hints(cls), {}
    for name, f in fields.items():
        where = _join(path, name)
        if name not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SpecError(file, where, "required field is missing")
            continue
        typed = _convert(hints[name], value[name], where, file)
        _check_minimum(f, typed, where, file)
        kwargs[name] = typed
    return cls(**kwargs)


def _check_minimum(f: dataclasses.Field, value: object, where: str, file: str) -> None:
    minimum, maximum = f.metadata.get("min"), f.metadata.get("max")
    if minimum is None or value is None:
        return
    if isinstance(value, tuple) and len(value) > f.metadata["items"]:
        raise SpecError(file, where, f"has {len(value)} entries; at most {f.metadata['items']} are allowed")
    for i, item in enumerate(value if isinstance(value, tuple) else (value,)):
        at = f"{where}[{i}]" if isinstance(value, tuple) else where
        if item < minimum:
            rule = "must be positive" if minimum == 1 else f"must be at least {minimum}"
            raise SpecError(file, at, f"{rule}, got {item}")
        if item > maximum:
            shown = item if item < 10**30 else "a huge number"
            raise SpecError(file, at, f"must be at most {maximum:,}, got {shown}")


# ---------------------------------------------------------------- meaning: rules across fields

class _Checker:
    """The rules that tie fields together; the first broken rule is raised as a SpecError."""

    def __init__(self, spec: ModelSpec, file: str):
        self.spec, self.file = spec, file

    def fail(self, path: str, message: str) -> typing.NoReturn:
        raise SpecError(self.file, path, message)

    def run(self) -> None:
        spec, arch = self.spec, self.spec.architecture
        if not _ID_PATTERN.fullmatch(spec.id):
            self.fail("id", f"{spec.id!r} must be lower case letters, digits and . _ + - "
                      "(starting with a letter or digit)")
        for i, alias in enumerate(spec.aliases):
            if not _ID_PATTERN.fullmatch(alias):
                self.fail(f"aliases[{i}]", f"{alias!r} is not a valid id")
        if not spec.name.strip():
            self.fail("name", "must not be empty")
        if arch.hybrid is not None and not arch.hybrid.period:
            self.fail("architecture.hybrid.period", "must list at least one mixer")
        self.check_totals(arch)
        self.check_stack(arch, "architecture", arch.layer_mixers())
        self.check_architecture(arch)
        self.check_kind(arch)
        for i, component in enumerate(arch.components):
            self.check_component(component, f"architecture.components[{i}]")
        names = [c.name for c in arch.components]
        for i, name in enumerate(names):
            if names.index(name) != i:
                self.fail(f"architecture.components[{i}].name", f"{name!r} is used twice")
        self.check_bookkeeping()

    def check_totals(self, arch: Architecture) -> None:
        """Blocks the layout would draw over the whole model, bounded before anything is laid out."""
        stacks = [("architecture", arch)] + [(f"architecture.components[{i}]", c) for i, c in
                                             enumerate(arch.components) if isinstance(c, EncoderComponent)]
        heads = sum(s.n_layers * (s.n_heads or 0) for _, s in stacks)
        if heads > MAX_HEAD_BLOCKS:
            self.fail("architecture.n_heads", f"{heads:,} attention heads over all layers; at most "
                      f"{MAX_HEAD_BLOCKS:,} can be drawn")
        if arch.moe is not None and arch.n_layers * arch.moe.n_experts > MAX_EXPERT_BLOCKS:
            self.fail("architecture.moe.n_experts", f"{arch.n_layers * arch.moe.n_experts:,} experts over all "
                      f"layers; at most {MAX_EXPERT_BLOCKS:,} can be drawn")

    def check_stack(self, stack: Stack, path: str, mixers: list[str]) -> None:
        attention_layers = [i for i, m in enumerate(mixers) if m == "attention"]
        if attention_layers:
            if stack.n_heads is None:
                self.fail(f"{path}.n_heads", "required when the model has attention layers")
            latent = isinstance(stack, Architecture) and stack.mla is not None
            if not latent and stack.head_dim is None and stack.d_model % stack.n_heads:
                self.fail(f"{path}.n_heads",
                          f"{stack.n_heads} does not divide d_model {stack.d_model}")
            if stack.n_kv_heads is not None and stack.n_heads % stack.n_kv_heads:
                self.fail(f"{path}.n_kv_heads",
                          f"{stack.n_kv_heads} does not divide n_heads {stack.n_heads}")
        if any(not stack.has_ffn(i) for i in attention_layers):
            self.fail(f"{path}.d_ff", "required: attention layers need a feed-forward width "
                      "(d_ff, or moe on every attention layer)")
        needs_activation = any(m.startswith("rwkv") for m in mixers) or any(
            stack.has_ffn(i) for i in range(stack.n_layers))
        if needs_activation and stack.activation is None:
            self.fail(f"{path}.activation", "required when the model has a feed-forward part")
        self.check_input(stack, path)
        if stack.unembedding != "none" and stack.vocab_size is None:
            self.fail(f"{path}.unembedding", f"{stack.unembedding!r} needs vocab_size")

    def check_input(self, stack: Stack, path: str) -> None:
        source = stack.input
        if source.type == "tokens":
            if stack.vocab_size is None:
                self.fail(f"{path}.vocab_size", "required when the input is tokens")
            if stack.pos_encoding == "learned" and stack.context_length is None:
                self.fail(f"{path}.context_length",
                          "required with learned positions (it sets the table's rows)")
        elif source.type == "patches":
            for name in ("patch_size", "image_size"):
                if getattr(source, name) is None:
                    self.fail(f"{path}.input.{name}", "required when the input is patches")
            if source.image_size % source.patch_size:
                self.fail(f"{path}.input.patch_size", f"{source.patch_size} does not divide "
                          f"image_size {source.image_size}")
            if stack.context_length not in (None, source.n_positions()):
                self.fail(f"{path}.context_length", f"{stack.context_length} differs from the "
                          f"{source.n_positions()} patch positions the input gives")
        else:
            for name in ("in_channels", "kernel"):
                if getattr(source, name) is None:
                    self.fail(f"{path}.input.{name}", "required when the input is conv1d")
            if not source.strides:
                self.fail(f"{path}.input.strides", "needs one stride per conv layer")
            if stack.pos_encoding == "learned" and stack.context_length is None:
                self.fail(f"{path}.context_length",
                          "required with learned positions (it sets the table's rows)")

    def check_architecture(self, arch: Architecture) -> None:
        mixers = arch.layer_mixers()
        if arch.hybrid is not None and not arch.hybrid.period:
            self.fail("architecture.hybrid.period", "must list at least one mixer")
        if "mamba" in mixers or "mamba2" in mixers:
            if arch.ssm is None:
                self.fail("architecture.ssm", "required when layers are Mamba blocks")
            if "mamba" in mixers and arch.ssm.dt_rank is None:
                self.fail("architecture.ssm.dt_rank", "required for Mamba blocks")
            if "mamba2" in mixers:
                d_inner = arch.ssm.expand * arch.d_model
                if arch.ssm.head_dim is None:
                    self.fail("architecture.ssm.head_dim", "required for Mamba-2 blocks")
                if d_inner % arch.ssm.head_dim:
                    self.fail("architecture.ssm.head_dim",
                              f"{arch.ssm.head_dim} does not divide d_inner {d_inner}")
        if any(m.startswith("rwkv") for m in mixers) and arch.d_ff is None:
            self.fail("architecture.d_ff", "required: RWKV's channel-mix width")
        if "rwkv6" in mixers:
            if arch.rwkv is None:
                self.fail("architecture.rwkv", "required for RWKV-6 blocks")
            for name in ("head_size", "mix_lora_dim", "decay_lora_dim"):
                if getattr(arch.rwkv, name) is None:
                    self.fail(f"architecture.rwkv.{name}", "required for RWKV-6 blocks")
            if arch.d_model % arch.rwkv.head_size:
                self.fail("architecture.rwkv.head_size",
                          f"{arch.rwkv.head_size} does not divide d_model {arch.d_model}")
        if arch.mla is not None and "attention" not in mixers:
            self.fail("architecture.mla", "needs attention layers")
        if arch.moe is not None:
            self.check_moe(arch.moe, arch.n_layers)
        if arch.cross_attention and not any(isinstance(c, EncoderComponent)
                                            for c in arch.components):
            self.fail("architecture.cross_attention", "needs an encoder component to attend to")
        if arch.mtp_modules and not arch.moe:
            self.fail("architecture.mtp_modules", "is modelled for MoE stacks (DeepSeek-V3) only")

    def check_moe(self, moe: MoE, n_layers: int) -> None:
        if moe.top_k > moe.n_experts:
            self.fail("architecture.moe.top_k",
                      f"{moe.top_k} is larger than n_experts {moe.n_experts}")
        if moe.layers is not None and moe.layers.start >= n_layers:
            self.fail("architecture.moe.layers.start",
                      f"{moe.layers.start} is past the last layer (n_layers {n_layers})")
        if moe.routing == "sigmoid-grouped" and moe.n_groups is None:
            self.fail("architecture.moe.n_groups", "required for sigmoid-grouped routing")
        if moe.n_groups is not None:
            if moe.n_experts % moe.n_groups:
                self.fail("architecture.moe.n_groups",
                          f"{moe.n_groups} does not divide n_experts {moe.n_experts}")
            if moe.topk_groups is not None and moe.topk_groups > moe.n_groups:
                self.fail("architecture.moe.topk_groups",
                          f"{moe.topk_groups} is larger than n_groups {moe.n_groups}")

    def check_kind(self, arch: Architecture) -> None:
        kind, mixers = self.spec.kind, set(arch.layer_mixers())
        if kind == "ssm" and "attention" in mixers:
            self.fail("kind", "'ssm' models have no attention layers; use 'hybrid' for a mix")
        if kind == "hybrid" and arch.hybrid is None:
            self.fail("architecture.hybrid", "required when kind is 'hybrid'")
        if kind != "hybrid" and arch.hybrid is not None:
            self.fail("kind", f"a model with architecture.hybrid is 'hybrid', not {kind!r}")
        if kind == "encoder-decoder" and not arch.cross_attention:
            self.fail("architecture.cross_attention", "must be true for an encoder-decoder")
        if kind == "multimodal" and set(arch.modalities) <= {"text"}:
            self.fail("architecture.modalities", "a multimodal model needs a non-text modality")

    def check_component(self, component: Component, path: str) -> None:
        if not component.name.strip():
            self.fail(f"{path}.name", "must not be empty")
        if isinstance(component, EncoderComponent):
            self.check_stack(component, path, component.layer_mixers())
            f = component.feature_layer
            if f is not None and not -component.n_layers <= f <= -1:
                self.fail(f"{path}.feature_layer", f"must be from -{component.n_layers} (the first layer's "
                                                   f"output) to -1 (the last layer's), not {f}")
        elif isinstance(component, ProjectorComponent):
            if len(component.dims) < 2:
                self.fail(f"{path}.dims", "needs at least an input and an output width")
            if len(component.dims) > 2 and component.activation is None:
                self.fail(f"{path}.activation", "required between the projector's layers")

    def check_bookkeeping(self) -> None:
        spec = self.spec
        for i, dotted in enumerate(spec.invented):
            if not _resolves(spec, dotted):
                self.fail(f"invented[{i}]", f"{dotted!r} names no field of this spec")
        if spec.invented and not spec.speculative:
            self.fail("speculative", "must be true when the spec lists invented fields")
        for name in ("total", "active"):
            text = getattr(spec.stated, name)
            if text is not None and parse_count(text) is None:
                self.fail(f"stated.{name}", f"no parameter count can be read from {text!r}")
        if not _COLOR_PATTERN.fullmatch(spec.visual.color):
            self.fail("visual.color", f"{spec.visual.color!r} is not a #rrggbb colour")
        if not (math.isfinite(spec.visual.layer_spacing) and spec.visual.layer_spacing > 0):
            self.fail("visual.layer_spacing", f"must be positive, got {spec.visual.layer_spacing}")


def _resolves(obj: object, dotted: str) -> bool:
    """Whether 'architecture.moe.top_k' or 'architecture.components[0].d_model' names a field."""
    for part in dotted.split("."):
        name, _, index = part.partition("[")
        if not dataclasses.is_dataclass(obj) or name not in {f.name for f in dataclasses.fields(obj)}:
            return False
        obj = getattr(obj, name)
        if index:
            try:
                obj = obj[int(index.rstrip("]"))]
            except (ValueError, IndexError, TypeError):
                return False
    return True
