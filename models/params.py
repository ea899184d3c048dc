"""Parameter counts computed from a ModelSpec's architecture: total, active per token, and where they go.

Every count is the number of scalars in the weight tensors the family's reference code creates
(nanoGPT, transformers, mamba_ssm, RWKV-LM, openai/whisper, DeepSeek-V3 inference/model.py);
fixed buffers (sinusoidal tables, causal masks) are not parameters. "Active" is what one token
uses: everything except the routed experts it is not sent to (embeddings included, as the
published active figures count them).

The building blocks (norm_params, linear_params, expert_params, component_params,
mtp_module_params) are public: the per-component counts a scene shows (one block, one expert,
one component, a group's sum) are made with the same rules as the totals, so they add up to them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .spec import (GATED_ACTIVATIONS, Architecture, EncoderComponent, ModelSpec,
                   ParameterComponent, ProjectorComponent, Stack)


@dataclass(frozen=True)
class ParamCount:
    total: int
    active: int
    groups: dict[str, int]                                   # where the total goes
    excluded: dict[str, int] = field(default_factory=dict)   # drawn, but not in the total


class _Tally:
    """Adds parameters to named groups; `inactive` is the part a single token does not use."""

    def __init__(self):
        self.groups: dict[str, int] = {}
        self.inactive = 0

    def add(self, group: str, count: int, inactive: int = 0) -> None:
        if count:
            self.groups[group] = self.groups.get(group, 0) + count
        self.inactive += inactive


def count_params(spec: ModelSpec | Architecture) -> ParamCount:
    arch = spec.architecture if isinstance(spec, ModelSpec) else spec
    tally = _Tally()
    _count_stack(arch, tally, prefix="")
    for component in arch.components:
        tally.add(component.name, component_params(component))
    excluded = {}
    if arch.mtp_modules:
        excluded["mtp"] = arch.mtp_modules * mtp_module_params(arch)
    total = sum(tally.groups.values())
    return ParamCount(total=total, active=total - tally.inactive, groups=tally.groups,
                      excluded=excluded)


def human(count: float | None) -> str:
    """175181291520 -> '175.2B', 6738415616 -> '6.74B'; None -> '-'."""
    if count is None:
        return "-"
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(count) >= size:
            scaled = count / size
            return f"{scaled:.2f}{unit}" if abs(scaled) < 10 else f"{scaled:.1f}{unit}"
    return str(int(count))


# ---------------------------------------------------------------- building blocks

def norm_params(stack: Stack, width: int) -> int:
    """LayerNorm has a weight and a bias; RMSNorm only a weight."""
    return 2 * width if stack.norm == "layernorm" else width


def linear_params(n_in: int, n_out: int, bias: bool) -> int:
    return n_in * n_out + (n_out if bias else 0)


def _mlp(d_model: int, d_ff: int, activation: str | None, bias: bool) -> int:
    """Dense MLP: up and down projections, plus a gate projection for SwiGLU/GeGLU."""
    gated = activation in GATED_ACTIVATIONS
    return (linear_params(d_model, d_ff, bias) * (2 if gated else 1)) + linear_params(d_ff, d_model, bias)


def _attention(stack: Stack) -> int:
    """Q, K, V, O projections for MHA/GQA/MQA, with optional biases and per-head QK norms."""
    d, heads, kv, width = stack.d_model, stack.n_heads, stack.kv_heads, stack.head_width
    key_bias = stack.bias if stack.key_bias is None else stack.key_bias
    count = (linear_params(d, heads * width, stack.bias) + linear_params(d, kv * width, key_bias)
             + linear_params(d, kv * width, stack.bias) + linear_params(heads * width, d, stack.bias))
    if stack.qk_norm:
        count += 2 * norm_params(stack, width)
    return count


def _latent_attention(arch: Architecture) -> int:
    """DeepSeek MLA: wq_a, q_norm, wq_b (or a full-rank wq), wkv_a, kv_norm, wkv_b, wo."""
    mla, d, heads = arch.mla, arch.d_model, arch.n_heads
    qk_width = mla.qk_nope_head_dim + mla.qk_rope_head_dim
    if mla.q_lora_rank is None:
        query = d * heads * qk_width
    else:
        query = (d * mla.q_lora_rank + norm_params(arch, mla.q_lora_rank)
                 + mla.q_lora_rank * heads * qk_width)
    key_value = (d * (mla.kv_lora_rank + mla.qk_rope_head_dim) + norm_params(arch, mla.kv_lora_rank)
                 + mla.kv_lora_rank * heads * (mla.qk_nope_head_dim + mla.v_head_dim))
    return query + key_value + heads * mla.v_head_dim * d


def _mamba(arch: Architecture) -> int:
    """Mamba-1 block (mamba_simple.py): in_proj, depthwise conv1d, x_proj, dt_proj, A_log, D, out_proj."""
    ssm, d = arch.ssm, arch.d_model
    inner = ssm.expand * d
    count = (linear_params(d, 2 * inner, ssm.proj_bias)
             + inner * ssm.d_conv + (inner if ssm.conv_bias else 0)
             + inner * (ssm.dt_rank + 2 * ssm.d_state)
             + linear_params(ssm.dt_rank, inner, True)
             + inner * ssm.d_state + inner
             + linear_params(inner, d, ssm.proj_bias))
    if ssm.inner_norms:
        count += ssm.dt_rank + 2 * ssm.d_state     # RMSNorm weights on dt, B and C
    return count


def _mamba2(arch: Architecture) -> int:
    """Mamba-2 block (mamba2.py): one in_proj giving z, x, B, C and dt; conv over x, B, C;
    per-head dt_bias, A_log and D; a gated RMSNorm; out_proj."""
    ssm, d = arch.ssm, arch.d_model
    inner = ssm.expand * d
    heads = inner // ssm.head_dim
    conv_width = inner + 2 * ssm.n_groups * ssm.d_state
    return (linear_params(d, 2 * inner + 2 * ssm.n_groups * ssm.d_state + heads, ssm.proj_bias)
            + conv_width * ssm.d_conv + (conv_width if ssm.conv_bias else 0)
            + 3 * heads + inner
            + linear_params(inner, d, ssm.proj_bias))


def _rwkv_channel_mix(d: int, d_ff: int) -> int:
    """Two token-shift mixes, key (d->d_ff), receptance (d->d), value (d_ff->d); no biases."""
    return 2 * d + d * d_ff + d * d + d_ff * d


def _rwkv4_time_mix(d: int) -> int:
    """time_decay, time_first, three token-shift mixes; key, value, receptance, output."""
    return 5 * d + 4 * d * d


def _rwkv6_time_mix(arch: Architecture) -> int:
    """RWKV_Tmix_x060: six token-shift mixes and their 5-way LoRA, decay and its LoRA, the bonus
    (time_faaaa), receptance/key/value/gate/output, and the per-head GroupNorm ln_x."""
    d, rwkv = arch.d_model, arch.rwkv
    mix = 6 * d + d * 5 * rwkv.mix_lora_dim + 5 * rwkv.mix_lora_dim * d
    decay = d + d * rwkv.decay_lora_dim + rwkv.decay_lora_dim * d
    return mix + decay + d + 5 * d * d + 2 * d


def expert_params(arch: Architecture, d_ff):
    """One expert's MLP (gate, up and down for SwiGLU); `d_ff` may be a numpy array of widths."""
    return _mlp(arch.d_model, d_ff, arch.activation, arch.bias)


# ---------------------------------------------------------------- whole stacks

def _count_stack(stack: Stack, tally: _Tally, prefix: str) -> None:
    """Embedding, every layer, final norm and unembedding of one stack, into `tally`."""
    d, source = stack.d_model, stack.input
    vocab_rows = None
    if source.type == "tokens":
        pad = stack.vocab_pad_multiple
        vocab_rows = math.ceil(stack.vocab_size / pad) * pad
        tally.add(prefix + "embedding", vocab_rows * d)
        positions = stack.context_length
    elif source.type == "patches":
        tally.add(prefix + "embedding", linear_params(source.channels * source.patch_size ** 2, d,
                                                source.bias) + (d if source.cls_token else 0))
        positions = source.n_positions()
    else:
        convs, n_in = 0, source.in_channels
        for _ in source.strides:
            convs += linear_params(n_in * source.kernel, d, source.bias)
            n_in = d
        tally.add(prefix + "embedding", convs)
        positions = stack.context_length
    if stack.pos_encoding == "learned":
        tally.add(prefix + "positions", positions * d)
    if stack.pre_norm:
        tally.add(prefix + "norms", norm_params(stack, d))

    for index, mixer in enumerate(stack.layer_mixers()):
        _count_layer(stack, index, mixer, tally, prefix)

    if stack.final_norm:
        tally.add(prefix + "norms", norm_params(stack, d))
    if stack.output_dim is not None:
        tally.add(prefix + "projection", d * stack.output_dim)
    if stack.unembedding == "untied":
        tally.add(prefix + "unembedding", vocab_rows * d)


def _count_layer(stack: Stack, index: int, mixer: str, tally: _Tally, prefix: str) -> None:
    d = stack.d_model
    if mixer == "attention":
        latent = isinstance(stack, Architecture) and stack.mla is not None
        tally.add(prefix + "attention", _latent_attention(stack) if latent else _attention(stack))
        tally.add(prefix + "norms", norm_params(stack, d))
        if stack.cross_attention:
            tally.add(prefix + "cross_attention", _attention(stack))
            tally.add(prefix + "norms", norm_params(stack, d))
    elif mixer in ("mamba", "mamba2"):
        tally.add(prefix + "ssm", _mamba(stack) if mixer == "mamba" else _mamba2(stack))
        tally.add(prefix + "norms", norm_params(stack, d))
    else:
        # An RWKV layer is a time-mix and a channel-mix, each behind a LayerNorm; layer 0 also
        # normalises the embedding (ln0).
        time_mix = _rwkv4_time_mix(d) if mixer == "rwkv4" else _rwkv6_time_mix(stack)
        tally.add(prefix + "time_mix", time_mix)
        tally.add(prefix + "channel_mix", _rwkv_channel_mix(d, stack.d_ff))
        tally.add(prefix + "norms", norm_params(stack, d) * (3 if index == 0 else 2))
        return

    if stack.is_moe_layer(index):
        moe = stack.moe
        per_expert = expert_params(stack, moe.expert_d_ff)
        tally.add(prefix + "experts", moe.n_experts * per_expert,
                  inactive=(moe.n_experts - moe.top_k) * per_expert)
        shared_d_ff = moe.shared_expert_d_ff or moe.expert_d_ff
        tally.add(prefix + "shared_experts",
                  moe.n_shared_experts * expert_params(stack, shared_d_ff))
        # DeepSeek-V3's router bias is moved by its load-balancing rule, not by gradients: a buffer
        # (models/stacks.py lists it), not a parameter, as transformers keeps it too.
        tally.add(prefix + "router", linear_params(d, moe.n_experts, False))
        tally.add(prefix + "norms", norm_params(stack, d))
    elif stack.d_ff is not None:
        tally.add(prefix + "mlp", _mlp(d, stack.d_ff, stack.activation, stack.bias))
        tally.add(prefix + "norms", norm_params(stack, d))


def component_params(component) -> int:
    """A component outside the language stack (vision tower, projector, free tensor), whole."""
    if isinstance(component, EncoderComponent):
        tally = _Tally()
        _count_stack(component, tally, prefix="")
        return sum(tally.groups.values())
    if isinstance(component, ProjectorComponent):
        dims = component.dims
        return sum(linear_params(a, b, component.bias) for a, b in zip(dims, dims[1:]))
    if isinstance(component, ParameterComponent):
        return math.prod(component.shape)
    raise TypeError(f"unknown component {component!r}")


def mtp_module_params(arch: Architecture) -> int:
    """One DeepSeek-V3 multi-token-prediction module without the embedding and head it shares
    with the main model: two RMSNorms, the 2d->d projection, one MoE block and its output norm."""
    tally = _Tally()
    last = arch.n_layers - 1
    _count_layer(arch, last, arch.layer_mixers()[last], tally, prefix="")
    d = arch.d_model
    return 3 * norm_params(arch, d) + 2 * d * d + sum(tally.groups.values())
