"""Where every number of mamba2-tiny, rwkv-tiny and jamba-tiny comes from: their dataflow tables, the operations and index maps those need (and the hidden-attention operations every recurrent family's α uses), joined to dataflow.py's FAMILIES, OPS and INDEX_MAPS.

Written in dataflow.py's notation (see its declaration), and reusing its tables where the arithmetic is
the same: Mamba-2 shares Mamba-1's z, SiLU, scan step and residual; Jamba's Mamba layers are Mamba-1's
but for the inner RMSNorms on Δ-low, B and C, its MoE layers the small MoEs' but for the gates (softmax
over every expert, the top k kept unnormalised), its attention nano-GPT's but grouped-query and without
biases or positions. The maths each table follows is stated in its trace module's docstring
(models/sim/mamba2_trace.py, rwkv_trace.py, jamba_trace.py).

Values carried in from before the scene's window (the state after earlier characters; zeros, or for the
conv no array at all, from the start) are scene arrays named *_init (scenes/ssm_live.py): the first
positions read them.
"""
from __future__ import annotations

import math

import numpy as np

from llmviz.scenes.dataflow import (
    DATAFLOW, FAMILIES, INDEX_MAPS, MAMBA_DATAFLOW, MOE_DATAFLOW, OPS, RESULT, TOKEN_EMBEDDING, Family, _B, _H, _M, _S,
    _best, _experts_text, _layer_norm, _rms_norm, _softplus_linear, _ssm_input, _ssm_output, _term,
    format_number,
)

# ---- Mamba-2 (mamba2_trace): heads of head_dim channels, one decay per head, B and C per group ---------------
#
# The scan's blocks are d_inner × d_state (heads × head_dim rows); conv_act packs [x (d_inner), B, C
# (n_groups · d_state each)] in its columns, which the index maps below pick out for a channel i.

MAMBA2_DATAFLOW = [
    (f"{_S}.xBC[t, x]", "unembed", "xBC = dot(norm row, W_xBC row)", [f"{_B}.ln1.out[t, :]", f"{_S}.xBC.weight[x, :]"]),
    (f"{_S}.dt[t, head]", "softplus_linear", "Δ = softplus(Δ bias + dot(norm row, W_Δ row))",
     [f"{_B}.ln1.out[t, :]", f"{_S}.dt.weight[head, :]", f"{_S}.dt_bias[head]"]),
    (f"{_S}.conv[t, x]", "causal_conv", "causal conv over the last positions",
     [f"{_S}.xBC[..t, x]", f"{_S}.conv.weight[x, :]", f"{_S}.conv.bias[x]", f"{_S}.conv_init[x, t:]?"]),
    (f"{_S}.dA[t, head]", "ssm_decay", "exp(Δ·A), A = −exp(A_log), one per head",
     [f"{_S}.dt[t, head]", f"{_S}.A_log[head]"]),
    (f"{_S}.dA.{{s}}[i, n]", "ssm_decay", "exp(Δ·A) of channel i's head",
     [f"{_S}.dt[{{s}}, head(i)]", f"{_S}.A_log[head(i)]"]),
    (f"{_S}.dBx.{{s}}[i, n]", "ssm_input", "Δ·B·x, B of the head's group",
     [f"{_S}.dt[{{s}}, head(i)]", f"{_S}.conv_act[{{s}}, B(i, n)]", f"{_S}.conv_act[{{s}}, i]"]),
    (f"{_S}.y[t, i]", "ssm_output", "y = C·h + D·x",
     [f"{_S}.conv_act[t, C(i)]", f"{_S}.h[t, head(i), in_head(i), :]", f"{_S}.D[head(i)]", f"{_S}.conv_act[t, i]"]),
    (f"{_S}.ssd.{{h}}[t, u]", "ssd_entry", "M = C_t·B_u · a_(u+1)…a_t · Δ_u",
     [f"{_S}.conv_act[t, C_of_head({{h}})]", f"{_S}.conv_act[u, B_of_head({{h}})]", f"{_S}.dA[..t, {{h}}]",
      f"{_S}.dt[u, {{h}}]"]),
    (f"{_S}.norm[t, i]", "gated_rms_norm", "y·SiLU(z), RMS-normalised over its group, ·γ",
     [f"{_S}.y[t, group(i)]", f"{_S}.z[t, group(i)]", f"{_S}.norm.weight[i]"]),
    (f"{_S}.out[t, c]", "unembed", "dot(normed row, W_out row)", [f"{_S}.norm[t, :]", f"{_S}.out.weight[c, :]"]),
]


def _mamba2_sizes(trace, block: int) -> tuple[int, int, int, int]:
    """(heads, head_dim, d_state, groups) of one Mamba-2 layer, read from its arrays' shapes."""
    _, heads, head_dim, n = trace[f"blocks.{block}.mamba.h"].shape
    groups = (trace[f"blocks.{block}.mamba.conv_act"].shape[1] - heads * head_dim) // (2 * n)
    return heads, head_dim, n, groups


def _mamba2_group(trace, block: int, i: int) -> tuple[int, int, int, int]:
    """(d_inner, d_state, groups, the group of channel i): a group's heads are adjacent, as a head's channels are."""
    heads, head_dim, n, groups = _mamba2_sizes(trace, block)
    return heads * head_dim, n, groups, i // head_dim // (heads // groups)


def _packed_columns(part: int):
    """conv_act's columns of channel i's group in B (part 0) or C (part 1): after x, then every group's B."""
    def columns(trace, block: int, i: int) -> range:
        inner, n, groups, group = _mamba2_group(trace, block, i)
        start = inner + (part * groups + group) * n
        return range(start, start + n)
    return columns


def _group_channels(trace, block: int, i: int) -> range:
    """The channels channel i's gated RMSNorm normalises over: its group's."""
    inner, _, groups, group = _mamba2_group(trace, block, i)
    return range(group * inner // groups, (group + 1) * inner // groups)


# ---- RWKV-4 (rwkv_trace): token shift, the mixes, the WKV recurrence, channel mixing ------------------------

_T, _C = "blocks.{b}.time_mix", "blocks.{b}.channel_mix"


def _mixed(part: str, name: str, out_axis: str, ln: str) -> tuple:
    """The projection `name` (receptance, key, value) of a mixing part: W·(μ⊙x + (1−μ)⊙x′), x the LayerNorm's
    output, x′ the part's token shift, μ its mix_r, mix_k or mix_v."""
    mix = name[0]
    label = f"{name} = dot(W row, μ_{mix}⊙x + (1−μ_{mix})⊙x′)"
    return (f"{part}.{name}[t, {out_axis}]", "mixed_linear", label,
            [f"{ln}.out[t, :]", f"{part}.shift[t, :]", f"{part}.mix_{mix}[:]", f"{part}.{name}.weight[{out_axis}, :]"])


RWKV_DATAFLOW = [
    TOKEN_EMBEDDING,
    *_layer_norm("ln0", "embed.out"),
    (f"{_T}.shift[t, c]", "token_shift", "x′_t = x_{t−1}", [f"{_B}.ln1.out[t-1, c] | {_T}.shift_init[c]"]),
    *[_mixed(_T, name, "c", f"{_B}.ln1") for name in ("receptance", "key", "value")],
    (f"{_T}.num[t, c]", "wkv_state", "num_t = e^−w·num_{t−1} + e^k·v",
     [f"{_T}.num[t-1, c] | {_T}.num_init[c]", f"{_T}.decay[c]", f"{_T}.key[t, c]", f"{_T}.value[t, c]"]),
    (f"{_T}.den[t, c]", "wkv_state", "den_t = e^−w·den_{t−1} + e^k",
     [f"{_T}.den[t-1, c] | {_T}.den_init[c]", f"{_T}.decay[c]", f"{_T}.key[t, c]"]),
    (f"{_T}.wkv[t, c]", "wkv", "wkv_t = (num_{t−1} + e^(u+k)·v)/(den_{t−1} + e^(u+k))",
     [f"{_T}.num[t-1, c] | {_T}.num_init[c]", f"{_T}.den[t-1, c] | {_T}.den_init[c]", f"{_T}.bonus[c]",
      f"{_T}.key[t, c]", f"{_T}.value[t, c]"]),
    (f"{_T}.alpha[t, u]", "wkv_attention", "mean over channels of u's share of wkv_t's weights",
     [f"{_T}.key[..t, :]", f"{_T}.decay[:]", f"{_T}.bonus[:]", f"{_T}.den_init[:]"]),
    (f"{_T}.out[t, c]", "sigmoid_gated_linear", "dot(W_o row, σ(r)⊙wkv)",
     [f"{_T}.receptance[t, :]", f"{_T}.wkv[t, :]", f"{_T}.out.weight[c, :]"]),
    (f"{_B}.resid1[t, c]", "residual_add", "X + TimeMix(X)", ["{resid_in}[t, c]", f"{_T}.out[t, c]"]),
    (f"{_C}.shift[t, c]", "token_shift", "x′_t = x_{t−1}", [f"{_B}.ln2.out[t-1, c] | {_C}.shift_init[c]"]),
    _mixed(_C, "key", "f", f"{_B}.ln2"),
    (f"{_C}.act[t, f]", "relu_squared", "relu(k)²", [f"{_C}.key[t, f]"]),
    (f"{_C}.value[t, c]", "unembed", "value = dot(relu(k)² row, W_v row)",
     [f"{_C}.act[t, :]", f"{_C}.value.weight[c, :]"]),
    _mixed(_C, "receptance", "c", f"{_B}.ln2"),
    (f"{_C}.out[t, c]", "sigmoid_gate", "σ(r)·value", [f"{_C}.receptance[t, c]", f"{_C}.value[t, c]"]),
    (f"{_B}.resid2[t, c]", "residual_add", "X + ChannelMix(X)", [f"{_B}.resid1[t, c]", f"{_C}.out[t, c]"]),
]

# ---- Jamba (jamba_trace): RMSNorms throughout, attention, Mamba and MoE or MLP layers in one stack -----------

JAMBA_EPS = 1e-6  # JambaConfig.rms_norm_eps as jamba-tiny sets it, its inner norms' too
_A = "blocks.{b}.attn"

JAMBA_NORMS = [TOKEN_EMBEDDING, *_rms_norm(f"{_B}.ln1", "{resid_in}"), *_rms_norm(f"{_B}.ln2", f"{_B}.resid1"),
               *_rms_norm("ln_f", "{resid_out}")]

# Grouped-query heads: head h reads the keys and values of KV group {kv}; no biases, no positions.
JAMBA_ATTENTION = [
    (f"{_H}.q[t, d]", "unembed", "q = dot(norm row, W_q row)", [f"{_B}.ln1.out[t, :]", f"{_H}.wq[d, :]"]),
    *[(f"{_A}.kv_head.{{g}}.{n}[t, d]", "unembed", f"{n} = dot(norm row, W_{n} row)",
       [f"{_B}.ln1.out[t, :]", f"{_A}.kv_head.{{g}}.w{n}[d, :]"]) for n in "kv"],
    (f"{_H}.scores[t, t']", "scaled_dot", "q·k/√d", [f"{_H}.q[t, :]", f"{_A}.kv_head.{{kv}}.k[t', :]"]),
    (f"{_H}.out[t, d]", "weighted_sum", "Σ softmax·v", [f"{_H}.softmax[t, ..t]", f"{_A}.kv_head.{{kv}}.v[..t, d]"]),
    (f"{_A}.proj[t, c]", "concat_projection", "Σ_heads dot(head row, W_O row)",
     [f"{_A}.head.{{h*}}.out[t, :]", f"{_A}.proj.weight[c, :]"]),
]

# Mamba-1's mixer with Δ-low, B and C through their RMSNorms (γ: parts of inner_norms) before the scan.
JAMBA_MAMBA = [
    (f"{_S}.dt[t, i]", "softplus_linear_normed", "Δ = softplus(b + dot(RMSNorm(Δ-low) row, W row))",
     [f"{_S}.dt_low[t, :]", f"{_S}.inner_norms[dt_gamma()]", f"{_S}.dt.weight[i, :]", f"{_S}.dt.bias[i]"]),
    (f"{_S}.dBx.{{s}}[i, n]", "ssm_input_normed", "Δ·RMSNorm(B)·x",
     [f"{_S}.dt[{{s}}, i]", f"{_S}.B[{{s}}, :]", f"{_S}.inner_norms[B_gamma()]", f"{_S}.conv_act[{{s}}, i]"]),
    (f"{_S}.y[t, i]", "ssm_output_normed", "y = RMSNorm(C)·h + D·x",
     [f"{_S}.C[t, :]", f"{_S}.inner_norms[C_gamma()]", f"{_S}.h[t, i, :]", f"{_S}.D[i]", f"{_S}.conv_act[t, i]"]),
    (f"{_S}.alpha[t, u]", "hidden_attention", "α = mean over channels of RMSNorm(C)_t·(Π exp(ΔA))·ΔB_u",
     [f"{_S}.C_norm[t, :]", f"{_S}.dA[..t, :, :]", f"{_S}.dB[u, :, :]"]),
]

JAMBA_MOE_GATES = [
    (f"{_M}.gates[t, e]", "topk_prob", "softmax over every expert, the top k kept unnormalised",
     [f"{_M}.router[t, :]", f"{_M}.topk[t, :]"]),
]

_F = "blocks.{b}.mlp"

JAMBA_MLP = [
    *[(f"{_F}.{name}[t, f]", "unembed", f"{name} = dot(norm row, W_{name} row)",
       [f"{_B}.ln2.out[t, :]", f"{_F}.{name}.weight[f, :]"]) for name in ("gate", "up")],
    (f"{_F}.act[t, f]", "silu", "SiLU", [f"{_F}.gate[t, f]"]),
    (f"{_F}.gated[t, f]", "product", "SiLU(gate)·up", [f"{_F}.act[t, f]", f"{_F}.up[t, f]"]),
    (f"{_F}.down[t, c]", "unembed", "dot(gated row, W_down row)", [f"{_F}.gated[t, :]", f"{_F}.down.weight[c, :]"]),
    (f"{_B}.resid2[t, c]", "residual_add", "X + MLP(X)", [f"{_B}.resid1[t, c]", f"{_F}.down[t, c]"]),
]


def _inner_norm_part(part: int):
    """inner_norms' γ of Δ-low (part 0), B (1) or C (2): dt_rank, d_state and d_state values, in that order."""
    def gammas(trace, block: int) -> range:
        p = f"blocks.{block}.mamba"
        widths = (trace[f"{p}.dt_low"].shape[1], trace[f"{p}.B"].shape[1], trace[f"{p}.C"].shape[1])
        return range(sum(widths[:part]), sum(widths[:part + 1]))
    return gammas


# ---- the operations ----------------------------------------------------------------------------------------

def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _gated_rms_norm(cell, vals):
    y, z, gamma = vals                   # y, z: the rows of the channel's group
    g = y * z * _sigmoid(z)
    rms = math.sqrt(float(np.mean(g ** 2)) + cell.eps)
    at = cell.col % len(g)
    here = format_number(g[at])
    return (float(g[at]) / rms * float(gamma),
            f"g = y·SiLU(z) = {format_number(y[at])}·SiLU({format_number(z[at])}) = {here}; "
            f"g/rms(g over {len(g)} channels)·γ = {here}/{format_number(rms)}·{_term(gamma)} = {RESULT}")


def _mixed_linear(cell, vals):
    x, shifted, mix, w = vals
    return float(w @ (mix * x + (1 - mix) * shifted)), f"{cell.label} over {x.size} channels = {RESULT}"


def _token_shift(cell, vals):
    if cell.row == 0:
        return float(vals[0]), f"{cell.label}: at t=0 the input carried in from before the window = {RESULT}"
    return float(vals[0]), f"{cell.label}: the LN output at t={cell.row - 1} = {RESULT}"


def _wkv_state(cell, vals):
    prev, decay, k, *v = (float(x) for x in vals)   # den: no value, the same recurrence of the weights alone
    keep, weight = math.exp(-math.exp(decay)), math.exp(k)
    new = f"{format_number(weight)}·{_term(v[0])}" if v else format_number(weight)
    return (keep * prev + weight * (v[0] if v else 1.0),
            f"{cell.label} = {format_number(keep)}·{_term(prev)} + {new} = {RESULT}")


def _wkv(cell, vals):
    num, den, u, k, v = (float(x) for x in vals)
    bonus = math.exp(u + k)
    return ((num + bonus * v) / (den + bonus),
            f"wkv = (num + e^(u+k)·v)/(den + e^(u+k)) = ({format_number(num)} + {format_number(bonus)}·{_term(v)})/"
            f"({format_number(den)} + {format_number(bonus)}) = {RESULT}")


def _sigmoid_gated_linear(cell, vals):
    r, x, w = vals
    return float(w @ (_sigmoid(r) * x)), f"{cell.label} over {x.size} channels = {RESULT}"


def _relu_squared(cell, vals):
    x = float(vals[0])
    return max(x, 0.0) ** 2, f"relu(k)² = max({format_number(x)}, 0)² = {RESULT}"


def _sigmoid_gate(cell, vals):
    r, v = float(vals[0]), float(vals[1])
    gate = float(_sigmoid(r))
    return gate * v, f"σ(r)·value = σ({format_number(r)})·{_term(v)} = {format_number(gate)}·{_term(v)} = {RESULT}"


def _listed(values: np.ndarray, limit: int = 3) -> str:
    """The first few of many per-channel numbers, for a formula that averages them."""
    shown = [format_number(v) for v in values[:limit]]
    return ", ".join(shown + (["…"] if len(values) > limit else []))


def _later(cell) -> tuple[float, str] | None:
    """A later token's cell of what a recurrence reads: zero, since the scan has not reached it."""
    if cell.col > cell.row:
        return 0.0, f"token {cell.col} comes after token {cell.row}: the recurrence has not read it yet, {RESULT}"
    return None


def _ssd_entry(cell, vals):
    later = _later(cell)
    if later:
        return later
    C, B, decays, dt = vals[0], vals[1], vals[2], float(vals[3])
    t, u = cell.row, cell.col
    cb, kept = float(C @ B), float(np.prod(decays[u + 1:t + 1]))
    return cb * kept * dt, (f"M = C_t·B_u · a_(u+1)…a_t · Δ_u = {format_number(cb)} · {format_number(kept)} "
                            f"({t - u} decays) · {format_number(dt)} = {RESULT}")


def _hidden_attention(cell, vals):
    later = _later(cell)
    if later:
        return later
    C, decays, dB = vals[0], vals[1], vals[2]          # C_t (n,), exp(ΔA) for tokens 0..t (t+1, i, n), ΔB_u (i, n)
    t, u = cell.row, cell.col
    kept = np.prod(decays[u + 1:t + 1], axis=0)        # (i, n): what survives from u to t
    per_channel = (kept * dB) @ C
    return float(per_channel.mean()), (f"α = mean over {per_channel.size} channels of Σ_n C_t·(Π exp(ΔA))·ΔB_u, "
                                       f"{t - u} decays: mean of {_listed(per_channel)} = {RESULT}")


def _wkv_attention(cell, vals):
    later = _later(cell)
    if later:
        return later
    keys, decay, bonus, den_before = vals            # keys (t+1, d); decay, bonus, den_before (d,)
    t, u = cell.row, cell.col
    w = np.exp(decay)                                # time_decay as stored: the factor per step is e^(−w)
    steps = t - 1 - np.arange(t)                     # steps each earlier token has decayed by at t
    logits = np.vstack([keys[:t] - steps[:, None] * w, (bonus + keys[t])[None]])   # (t+1, d)
    carried = np.log(np.maximum(den_before, 0.0)) - t * w if np.any(den_before > 0) else np.full_like(w, -np.inf)
    top = np.maximum(logits.max(axis=0), carried)
    weights = np.exp(logits - top)
    share = weights[u] / (weights.sum(axis=0) + np.exp(carried - top))
    own = f"e^(u+k_{t})" if u == t else f"e^(k_{u} − {t - 1 - u}·w)"
    return float(share.mean()), (f"α = mean over {share.size} channels of {own} / Σ_(s≤{t}) its weights"
                                 f"{' (and the state carried in)' if np.isfinite(carried).any() else ''} = "
                                 f"mean of {_listed(share)} = {RESULT}")


def _product(cell, vals):
    a, b = float(vals[0]), float(vals[1])
    return a * b, f"{cell.label} = {format_number(a)}·{_term(b)} = {RESULT}"


def _topk_prob(cell, vals):
    logits, k = vals[0], len(vals[1])
    chosen = _best(logits, k)
    if cell.col not in chosen:
        return 0.0, f"expert {cell.col} is not among the top {k} (experts {_experts_text(chosen)}): gate {RESULT}"
    e = np.exp(logits - logits.max())
    return float(e[cell.col] / e.sum()), (
        f"expert {cell.col} is among the top {k} (experts {_experts_text(chosen)}): softmax over all "
        f"{len(logits)}, not renormalised: exp({format_number(logits[cell.col])}) / Σ exp = {RESULT}")


def _inner_normed(base, what: str, at: int = 0, one: bool = False):
    """`base` after Jamba's inner RMSNorm of its source `at`, a row with its γ next: the normed row (one: its
    value at the cell's column) takes the place of both, and the formula says the norm first."""
    def op(cell, vals):
        row, gamma = vals[at], vals[at + 1]
        rms = math.sqrt(float(np.mean(row ** 2)) + cell.eps)
        normed = row / rms * gamma
        value, formula = base(cell, [*vals[:at], normed[cell.col] if one else normed, *vals[at + 2:]])
        return value, f"RMSNorm({what}) with rms {format_number(rms)}; {formula}"
    return op


OPS.update({
    "ssd_entry": _ssd_entry, "hidden_attention": _hidden_attention, "wkv_attention": _wkv_attention,
    "gated_rms_norm": _gated_rms_norm, "mixed_linear": _mixed_linear, "token_shift": _token_shift,
    "wkv_state": _wkv_state, "wkv": _wkv, "sigmoid_gated_linear": _sigmoid_gated_linear,
    "relu_squared": _relu_squared, "sigmoid_gate": _sigmoid_gate, "product": _product, "topk_prob": _topk_prob,
    "softplus_linear_normed": _inner_normed(_softplus_linear, "Δ-low"),
    "ssm_input_normed": _inner_normed(_ssm_input, "B", at=1, one=True),
    "ssm_output_normed": _inner_normed(_ssm_output, "C"),
})

INDEX_MAPS.update({
    # conv_act's B or C columns that head h reads: those of its group
    "B_of_head": lambda trace, block, h: _packed_columns(0)(trace, block, h * _mamba2_sizes(trace, block)[1]),
    "C_of_head": lambda trace, block, h: _packed_columns(1)(trace, block, h * _mamba2_sizes(trace, block)[1]),
    "head": lambda trace, block, i: i // _mamba2_sizes(trace, block)[1],
    "in_head": lambda trace, block, i: i % _mamba2_sizes(trace, block)[1],
    "B": lambda trace, block, i, n: _packed_columns(0)(trace, block, i)[n],
    "C": _packed_columns(1),
    "group": _group_channels,
    "dt_gamma": _inner_norm_part(0), "B_gamma": _inner_norm_part(1), "C_gamma": _inner_norm_part(2),
})

FAMILIES.update({
    "mamba2": Family(((None, MAMBA2_DATAFLOW), (None, MAMBA_DATAFLOW), (None, DATAFLOW)), last="resid1"),
    "rwkv": Family(((None, RWKV_DATAFLOW), (None, DATAFLOW)), first="ln0.out"),
    "jamba": Family(((None, JAMBA_NORMS), ("attention", JAMBA_ATTENTION), ("mamba", JAMBA_MAMBA + MAMBA_DATAFLOW),
                     ("moe", JAMBA_MOE_GATES + MOE_DATAFLOW), ("mlp", JAMBA_MLP), (None, DATAFLOW)), eps=JAMBA_EPS),
})
