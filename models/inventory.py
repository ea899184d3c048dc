"""Every learned tensor and buffer of a model, declared once per family: id, shape, kind and count group.

This is the one place that says what a layer of each family holds. The parameter counts
(models/params.py) are sums over it; the buffers `llmviz models --json` lists are its buffers; the
scene's layout (scenes/layout.py) is checked against it whenever a model is laid out, so a block drawn
with the wrong shape, or a tensor left out of the picture, is an error and not a quiet miscount.

Ids are the layout's and the simulation's (scenes/layout_blocks.py explains the scheme): a layer's
tensors are declared relative to "blocks.{i}." and a stack's under its prefix ("vision.", "audio.").
Shapes are the tensors' own, (out, in) for a matrix, (n,) for a vector. A tensor that holds its numbers
but no block of its own (per-head QK norms, Mamba's inner norms) is declared with ``drawn=False`` and
``what``, under "{scope}.{name}" where scope is what it is folded into, so the scene can say where those
parameters went.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, NamedTuple

from .spec import (GATED_ACTIVATIONS, Architecture, EncoderComponent, ModelSpec, ParameterComponent,
                   ProjectorComponent, Stack)

WEIGHT, BIAS, BUFFER, EXPERT, COMPONENT = "weight", "bias", "buffer", "expert", "component"
LEARNED = (WEIGHT, BIAS, EXPERT, COMPONENT)


class Tensor(NamedTuple):
    id: str
    shape: tuple[int, ...]
    kind: str                 # WEIGHT, BIAS, BUFFER, EXPERT (one expert's whole MLP), COMPONENT
    group: str                # where models/params.py counts it: "attention", "mlp", "norms", ...
    count: int                # scalars it holds (an expert: its MLP's; a buffer: its values)
    counted: bool = True      # part of the parameter total (buffers, tied heads, MTP modules: not)
    drawn: bool = True        # has a block of its own in the scene
    what: str = ""            # for a tensor drawn without a block: what it is ("q_norm γ")
    inactive: int = 0         # of `count`, what one token does not use (a routed expert it is not sent to)

    @property
    def params(self) -> int:
        return self.count if self.counted else 0

    def under(self, prefix: str) -> "Tensor":
        return Tensor(prefix + self.id, *self[1:])


def _tensor(ident: str, shape, group: str, kind: str = WEIGHT, **extra) -> Tensor:
    shape = tuple(int(s) for s in shape)
    return Tensor(ident, shape, kind, group, math.prod(shape), **extra)


def _linear(name: str, n_out: int, n_in: int, bias: bool, group: str, bias_id: str | None = None) -> list[Tensor]:
    out = [_tensor(f"{name}.weight", (n_out, n_in), group)]
    if bias:
        out.append(_tensor(bias_id or f"{name}.bias", (n_out,), group, BIAS))
    return out


def norm_tensors(prefix: str, stack: Stack, width: int, group: str = "norms") -> list[Tensor]:
    """LayerNorm: a scale and a shift; RMSNorm: a scale only."""
    out = [_tensor(f"{prefix}.weight", (width,), group)]
    if stack.norm == "layernorm":
        out.append(_tensor(f"{prefix}.bias", (width,), group, BIAS))
    return out


def _folded(scope: str, name: str, count: int, group: str, what: str) -> Tensor:
    return Tensor(f"{scope}.{name}", (count,), WEIGHT, group, count, drawn=False, what=what)


# ---------------------------------------------------------------- sequence mixers

def attention_tensors(stack: Stack, cross: bool = False) -> list[Tensor]:
    """Norm, per-head projections (query heads; K/V per head or per shared group), output projection."""
    scope, norm, group = ("cross_attn", "ln_cross", "cross_attention") if cross else ("attn", "ln1", "attention")
    c, n_heads = stack.d_model, stack.n_heads
    n_kv = n_heads if cross else stack.kv_heads
    out = norm_tensors(norm, stack, c)
    mla = None if cross or not isinstance(stack, Architecture) else stack.mla
    if mla is not None:
        qk, q_in = mla.qk_nope_head_dim + mla.qk_rope_head_dim, c
        if mla.q_lora_rank is not None:
            q_in = mla.q_lora_rank
            out.append(_tensor(f"{scope}.q_latent.weight", (q_in, c), group))
            out.append(_folded(scope, "q_norm", _norm_count(stack, q_in), group, "q_norm γ (of the query latent)"))
        out.append(_tensor(f"{scope}.kv_latent.weight", (mla.kv_lora_rank, c), group))
        out.append(_folded(scope, "kv_norm", _norm_count(stack, mla.kv_lora_rank), group,
                           "kv_norm γ (of the KV latent)"))
        out.append(_tensor(f"{scope}.k_rope.weight", (mla.qk_rope_head_dim, c), group))
        wq, wk, wv, v_width = (qk, q_in), (mla.qk_nope_head_dim, mla.kv_lora_rank), \
            (mla.v_head_dim, mla.kv_lora_rank), mla.v_head_dim
        bias_q = bias_k = bias_v = bias_o = False
    else:
        hd = stack.head_width
        wq = wk = wv = (hd, c)
        v_width = hd
        bias_q = bias_v = bias_o = stack.bias
        bias_k = stack.bias if stack.key_bias is None else stack.key_bias
        if stack.qk_norm:
            out.append(_folded(scope, "qk_norm", 2 * _norm_count(stack, hd), group,
                               "q_norm and k_norm γ (per-head QK norms)"))
    kv_scope = "head" if n_kv == n_heads else "kv_head"
    def projection(base: str, w: str, b: str, shape: tuple[int, int], bias: bool) -> list[Tensor]:
        return [_tensor(f"{base}.{w}", shape, group)] + ([_tensor(f"{base}.{b}", (shape[0],), group, BIAS)] if bias else [])

    for h in range(n_heads):
        out += projection(f"{scope}.head.{h}", "wq", "bq", wq, bias_q)
    for g in range(n_kv):
        base = f"{scope}.{kv_scope}.{g}"
        out += projection(base, "wk", "bk", wk, bias_k) + projection(base, "wv", "bv", wv, bias_v)
    out += _linear(f"{scope}.proj", c, n_heads * v_width, bias_o, group)
    return out


def _norm_count(stack: Stack, width: int) -> int:
    return 2 * width if stack.norm == "layernorm" else width


def mamba_tensors(stack: Architecture) -> list[Tensor]:
    """Mamba-1 (mamba_simple.py): in_proj as its x and z halves, the depthwise conv, x_proj as its Δ, B
    and C slices, dt_proj, A_log, D, out_proj."""
    ssm, c, g = stack.ssm, stack.d_model, "ssm"
    inner, n, r, pb = ssm.expand * c, ssm.d_state, ssm.dt_rank, ssm.proj_bias
    out = norm_tensors("ln1", stack, c)
    out += _linear("mamba.x", inner, c, pb, g) + _linear("mamba.z", inner, c, pb, g)
    out += _linear("mamba.conv", inner, ssm.d_conv, ssm.conv_bias, g)
    out += [_tensor("mamba.dt_low.weight", (r, inner), g), _tensor("mamba.B.weight", (n, inner), g),
            _tensor("mamba.C.weight", (n, inner), g)]
    out += _linear("mamba.dt", inner, r, True, g)
    out += [_tensor("mamba.A_log", (inner, n), g), _tensor("mamba.D", (inner,), g)]
    if ssm.inner_norms:
        out.append(_folded("mamba", "inner_norms", r + 2 * n, g, "RMSNorm γ of Δ, B and C"))
    return out + _linear("mamba.out", c, inner, pb, g)


def mamba2_tensors(stack: Architecture) -> list[Tensor]:
    """Mamba-2 (mamba2.py): in_proj as z, xBC and Δ; the conv over x, B, C; per-head Δ bias, A_log and
    D; the gated RMSNorm; out_proj."""
    ssm, c, g = stack.ssm, stack.d_model, "ssm"
    inner = ssm.expand * c
    heads, xbc = inner // ssm.head_dim, inner + 2 * ssm.n_groups * ssm.d_state
    pb = ssm.proj_bias
    out = norm_tensors("ln1", stack, c)
    out += _linear("mamba.z", inner, c, pb, g) + _linear("mamba.xBC", xbc, c, pb, g)
    out += [_tensor("mamba.dt.weight", (heads, c), g), _tensor("mamba.dt_bias", (heads,), g, BIAS)]
    if pb:
        out.append(_folded("mamba", "dt_in_bias", heads, g, "in_proj bias of Δ"))
    out += _linear("mamba.conv", xbc, ssm.d_conv, ssm.conv_bias, g)
    out += [_tensor("mamba.A_log", (heads,), g), _tensor("mamba.D", (heads,), g),
            _tensor("mamba.norm.weight", (inner,), g)]
    return out + _linear("mamba.out", c, inner, pb, g)


def rwkv_tensors(stack: Architecture, mixer: str) -> list[Tensor]:
    """RWKV time mixing (RWKV-4, or RWKV-6's data-dependent mixes and decay) and channel mixing."""
    c, f, p, g = stack.d_model, stack.d_ff, "time_mix", "time_mix"
    out = norm_tensors("ln1", stack, c)
    mixes = ["mix_k", "mix_v", "mix_r"] if mixer == "rwkv4" else ["mix_x", "mix_w", "mix_k", "mix_v", "mix_r", "mix_g"]
    out += [_tensor(f"{p}.{m}", (c,), g) for m in mixes]
    if mixer == "rwkv6":
        lora, dl = stack.rwkv.mix_lora_dim, stack.rwkv.decay_lora_dim
        out += [_tensor(f"{p}.mix_lora_a", (c, 5 * lora), g), _tensor(f"{p}.mix_lora_b", (5 * lora, c), g),
                _tensor(f"{p}.decay_lora_a", (c, dl), g), _tensor(f"{p}.decay_lora_b", (dl, c), g)]
    for name in ["receptance", "key", "value"] + (["gate"] if mixer == "rwkv6" else []):
        out.append(_tensor(f"{p}.{name}.weight", (c, c), g))
    out += [_tensor(f"{p}.decay", (c,), g), _tensor(f"{p}.bonus", (c,), g)]
    if mixer == "rwkv6":
        out += [_tensor(f"{p}.ln_x.weight", (c,), g), _folded(p, "ln_x_bias", c, g, "GroupNorm shift β (ln_x.bias)")]
    out.append(_tensor(f"{p}.out.weight", (c, c), g))
    q, g = "channel_mix", "channel_mix"
    out += norm_tensors("ln2", stack, c)
    out += [_tensor(f"{q}.mix_k", (c,), g), _tensor(f"{q}.mix_r", (c,), g), _tensor(f"{q}.key.weight", (f, c), g),
            _tensor(f"{q}.value.weight", (c, f), g), _tensor(f"{q}.receptance.weight", (c, c), g)]
    return out


# ---------------------------------------------------------------- feed-forward

def mlp_count(stack: Stack, d_ff) -> int:
    """One dense MLP's parameters (also one expert's); `d_ff` may be a numpy array of widths."""
    c, bias = stack.d_model, stack.bias
    gated = stack.activation in GATED_ACTIVATIONS
    return (c * d_ff + (d_ff if bias else 0)) * (2 if gated else 1) + d_ff * c + (c if bias else 0)


def mlp_tensors(stack: Stack) -> list[Tensor]:
    c, f, bias = stack.d_model, stack.d_ff, stack.bias
    out = norm_tensors("ln2", stack, c)
    if stack.activation in GATED_ACTIVATIONS:
        return out + (_linear("mlp.gate", f, c, bias, "mlp") + _linear("mlp.up", f, c, bias, "mlp")
                      + _linear("mlp.down", c, f, bias, "mlp"))
    return out + _linear("mlp.fc", f, c, bias, "mlp") + _linear("mlp.proj", c, f, bias, "mlp")


def moe_tensors(stack: Architecture) -> list[Tensor]:
    """Router, routed experts (each one block standing for its MLP), shared experts. DeepSeek-V3's
    router bias is moved by its load-balancing rule, not by gradients: a buffer, as transformers keeps it."""
    moe, c = stack.moe, stack.d_model
    out = norm_tensors("ln2", stack, c) + [_tensor("moe.router.weight", (moe.n_experts, c), "router")]
    if moe.router_bias:
        out.append(_tensor("moe.router.bias", (moe.n_experts,), "router", BUFFER, counted=False))
    per_expert = int(mlp_count(stack, moe.expert_d_ff))
    unused = moe.n_experts - moe.top_k
    out += [Tensor(f"moe.expert.{e}", (moe.expert_d_ff, c), EXPERT, "experts", per_expert,
                   inactive=per_expert * unused // moe.n_experts + (1 if e < per_expert * unused % moe.n_experts else 0))
            for e in range(moe.n_experts)]
    shared_ff = moe.shared_expert_d_ff or moe.expert_d_ff
    shared = int(mlp_count(stack, shared_ff))
    out += [Tensor(f"moe.shared.{s}", (shared_ff, c), EXPERT, "shared_experts", shared)
            for s in range(moe.n_shared_experts)]
    return out


# ---------------------------------------------------------------- layers and stacks

def layer_key(stack: Stack, index: int) -> tuple:
    """What a layer's tensors depend on besides the stack: layers with equal keys hold the same tensors."""
    mixer = stack.layer_mixers()[index]
    return mixer, stack.is_moe_layer(index), stack.has_ffn(index)


def layer_tensors(stack: Stack, key: tuple) -> list[Tensor]:
    """One layer's tensors, ids relative to "blocks.{i}."."""
    mixer, moe, ffn = key
    if mixer == "attention":
        out = attention_tensors(stack)
        if stack.cross_attention:
            out += attention_tensors(stack, cross=True)
    elif mixer == "mamba":
        out = mamba_tensors(stack)
    elif mixer == "mamba2":
        out = mamba2_tensors(stack)
    elif mixer in ("rwkv4", "rwkv6"):
        return rwkv_tensors(stack, mixer)   # its channel mixing is its feed-forward part
    else:
        raise ValueError(f"unknown sequence mixer {mixer!r}")
    if ffn:
        out += moe_tensors(stack) if moe else mlp_tensors(stack)
    return out


def _vocab_rows(stack: Stack) -> int:
    pad = stack.vocab_pad_multiple
    return math.ceil(stack.vocab_size / pad) * pad


def stem_tensors(stack: Stack) -> list[Tensor]:
    """The input side: token, patch or convolution embedding, positions, and a stack's pre-norm."""
    c, source = stack.d_model, stack.input
    if source.type == "tokens":
        out = [_tensor("embed.tok.weight", (_vocab_rows(stack), c), "embedding")]
        positions = stack.context_length
    elif source.type == "patches":
        out = _linear("embed.patch", c, source.channels * source.patch_size ** 2, source.bias, "embedding")
        if source.cls_token:
            out.append(_tensor("embed.cls", (c,), "embedding"))
        positions = source.n_positions()
    else:
        out, n_in = [], source.in_channels
        for k, _ in enumerate(source.strides):
            out += _linear(f"embed.conv{k + 1}", c, n_in * source.kernel, source.bias, "embedding")
            n_in = c
        positions = stack.context_length
    if stack.pos_encoding == "learned":
        out.append(_tensor("embed.pos.weight", (positions, c), "positions"))
    elif stack.pos_encoding == "sinusoidal" and positions:
        # A fixed table (openai/whisper's buffer). Token stacks draw their positions as an activation only.
        out.append(_tensor("embed.pos", (positions, c), "positions", BUFFER, counted=False,
                           drawn=source.type != "tokens"))
    if stack.pre_norm or (stack.n_layers and stack.layer_mixers()[0].startswith("rwkv")):
        out += norm_tensors("ln0", stack, c)
    return out


def output_tensors(stack: Stack) -> list[Tensor]:
    """The output side: final norm, a final projection (CLIP, LLaVA's tower none), the unembedding."""
    c = stack.d_model
    out = norm_tensors("ln_f", stack, c) if stack.final_norm else []
    if stack.output_dim is not None:
        out.append(_tensor("proj.weight", (stack.output_dim, c), "projection"))
    if stack.unembedding == "untied":
        out.append(_tensor("lm_head.weight", (_vocab_rows(stack), c), "unembedding"))
    elif stack.unembedding == "tied":
        # Drawn as W_U, but its numbers are W_E's: not counted twice.
        out.append(_tensor("lm_head.weight", (_vocab_rows(stack), c), "unembedding", counted=False))
    return out


def stack_tensors(stack: Stack, prefix: str = "", group: str | None = None,
                  keep: Callable[[Tensor], bool] | None = None, layers: bool = True) -> list[Tensor]:
    """A whole stack under `prefix`; `group` puts every tensor in one count group (a component's name);
    `keep` selects tensors before they are named (cheap on a 96-layer stack); `layers=False` leaves the
    layers out (the stem and the output only)."""
    def kept(tensors: list[Tensor]) -> list[Tensor]:
        return tensors if keep is None else [t for t in tensors if keep(t)]

    out = [t.under(prefix) for t in kept(stem_tensors(stack))]
    cache: dict[tuple, list[Tensor]] = {}
    for i in range(stack.n_layers if layers else 0):
        key = layer_key(stack, i)
        if key not in cache:
            cache[key] = kept(layer_tensors(stack, key))
        out += [t.under(f"{prefix}blocks.{i}.") for t in cache[key]]
    out += [t.under(prefix) for t in kept(output_tensors(stack))]
    if group is not None:
        out = [t._replace(group=group) for t in out]
    return out


# ---------------------------------------------------------------- families

# (family, rule) in order: the first rule true of the architecture names the family; scenes/layouts
# registers one layout function under each name.
FAMILY_RULES: list[tuple[str, Callable[[Architecture], bool]]] = [
    ("encoder-decoder", lambda a: a.cross_attention),
    ("clip", lambda a: a.fusion == "contrastive"),
    ("vision-language", lambda a: a.fusion in ("prefix-tokens", "native")),
    ("vit", lambda a: a.input.type == "patches"),
    ("decoder", lambda a: True),
]
# Families whose encoders and projectors are laid out whole; the others draw a component as one block.
WHOLE_COMPONENTS = ("encoder-decoder", "clip", "vision-language", "vit")
IMAGENET_CLASSES = 1000  # a ViT's classifier is ImageNet-1k's, drawn, but not in the spec's count


def family_of(spec: ModelSpec | Architecture) -> str:
    arch = spec.architecture if isinstance(spec, ModelSpec) else spec
    return next(name for name, rule in FAMILY_RULES if rule(arch))


def _component_tensors(component, whole: bool, keep=None, layers: bool = True) -> list[Tensor]:
    name = component.name
    if isinstance(component, EncoderComponent):
        if whole:
            return stack_tensors(component, f"{name}.", group=name, keep=keep, layers=layers)
        count = sum(t.params for t in stack_tensors(component))
        return [Tensor(f"components.{name}", (count,), COMPONENT, name, count)]
    if isinstance(component, ProjectorComponent):
        dims = component.dims
        layers = [t for k, (a, b) in enumerate(zip(dims, dims[1:]))
                  for t in _linear(f"{name}.fc{k + 1}", b, a, component.bias, name)]
        if whole:
            return layers
        count = sum(t.count for t in layers)
        return [Tensor(f"components.{name}", (count,), COMPONENT, name, count)]
    if isinstance(component, ParameterComponent):
        shape = tuple(component.shape) or (1,)
        ident = name if whole else f"components.{name}"
        return [Tensor(ident, shape, COMPONENT if not whole else WEIGHT, name, math.prod(shape))]
    raise TypeError(f"unknown component {component!r}")


def mtp_module_count(arch: Architecture) -> int:
    """One DeepSeek-V3 multi-token-prediction module without the embedding and head it shares with the
    main model: two RMSNorms, the 2d->d projection, one layer like the last, and its output norm."""
    last = layer_tensors(arch, layer_key(arch, arch.n_layers - 1))
    d = arch.d_model
    return 3 * _norm_count(arch, d) + 2 * d * d + sum(t.params for t in last)


def model_tensors(spec: ModelSpec | Architecture, keep: Callable[[Tensor], bool] | None = None,
                  layers: bool = True) -> list[Tensor]:
    """Every tensor of the model: its own stack, then its components in order, then what is drawn
    beside them but not counted (a ViT's classifier, DeepSeek-V3's MTP modules). `keep` and `layers` as
    for stack_tensors."""
    arch = spec.architecture if isinstance(spec, ModelSpec) else spec
    family = family_of(arch)
    out = stack_tensors(arch, keep=keep, layers=layers)
    for component in arch.components:
        tensors = _component_tensors(component, family in WHOLE_COMPONENTS, keep=keep, layers=layers)
        out += [t for t in tensors if keep is None or keep(t)]  # (a stack's are already kept)
    extra = []
    if family == "vit" and not any(c.name == "classifier" for c in arch.components):
        extra += [t._replace(group="classifier", counted=False)
                  for t in _linear("classifier", IMAGENET_CLASSES, arch.d_model, True, "classifier")]
    if arch.mtp_modules:
        each = mtp_module_count(arch)
        extra += [Tensor(f"mtp.{k}", (each,), COMPONENT, "mtp", each, counted=False) for k in range(arch.mtp_modules)]
    return out + [t for t in extra if keep is None or keep(t)]


def folded(spec: ModelSpec | Architecture) -> list[Tensor]:
    """The counted tensors drawn without a block of their own (per-head QK norms, MLA's latent norms,
    Mamba's inner norms, RWKV-6's GroupNorm shift), each under the id of the block it is folded into."""
    return model_tensors(spec, keep=lambda t: not t.drawn and t.counted)


def drawn_shape(t: Tensor) -> tuple[int, int]:
    """The (rows, cols) the layout draws a tensor with: a matrix as it is, a vector as one row; an expert
    as its (d_ff, d_model) matrix; a component block as scenes/layout_blocks.components_part sizes it."""
    if len(t.shape) == 1:
        return 1, t.shape[0]
    return t.shape[0], math.prod(t.shape[1:])


def buffers(tensors: Iterable[Tensor]) -> list[Tensor]:
    return [t for t in tensors if t.kind == BUFFER]
