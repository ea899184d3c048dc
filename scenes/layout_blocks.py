"""The pieces of a model the layout draws (embedding, attention, MLP, MoE, Mamba, RWKV, output)
as Parts whose block ids are the tensor ids the simulation trace uses.

Dense GPT-style models get exactly the ids of models/sim/tensor_ids.py. Other families add
ids in the same style, relative to "blocks.{i}" inside a layer:

    RMSNorm           ln1.rms, ln1.out, ln1.weight               (no mean/std, no bias)
    RoPE              attn.head.{h}.q_rope, ...k_rope             (no embed.pos / embed.tok;
                                                                   the embedding is embed.out)
    GQA / MQA         attn.kv_head.{g}.wk / .k / .wv / .v (/ .k_rope, .bk, .bv); query heads keep
                      attn.head.{h}.wq / .q / .scores / .scores_masked / .softmax / .out
    MLA (DeepSeek)    attn.q_latent(.weight), attn.kv_latent(.weight), attn.k_rope(.weight);
                      per head wq (from the q latent), wk / wv (from the kv latent), q, k, v, ...
    gated MLP         mlp.gate(.weight), mlp.act = act(gate), mlp.up(.weight),
                      mlp.gated = act(gate)·up, mlp.down(.weight)
    other activations mlp.act instead of mlp.gelu
    MoE               ln2.*, moe.router(.weight/.bias), moe.gates, moe.expert.{e},
                      moe.shared.{s}, moe.out
    Mamba             mamba.x / z / conv / conv_act / dt_low / B / C / dt / y / gated / out
                      (+ .weight/.bias), mamba.A_log, mamba.D; Mamba-2: mamba.z / xBC / dt /
                      conv / conv_act / y / norm / out, A_log, D
    RWKV              time_mix.* (key, value, receptance, wkv, out, decay, bonus, mixes),
                      channel_mix.* (key, act, value, receptance, out)
    cross-attention   ln_cross.*, cross_attn.head.{h}.*, cross_attn.proj, resid_cross
    outside layers    patches / embed.patch(.weight) for image input, ln0.* (RWKV),
                      components.{name}, mtp.{k}, proj(.weight) (a final projection)

Residual stream blocks: resid1 after the sequence mixer, resid_cross after cross-attention,
resid2 after the feed-forward part.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from llmviz.models.spec import (GATED_ACTIVATIONS, Architecture, EncoderComponent,
                                ParameterComponent, ProjectorComponent)

from .layout_parts import (ATTACHED_GAP, KIND_ACTIVATION, KIND_BIAS, KIND_COMPONENT, KIND_EXPERT,
                           KIND_NORM_STAT, KIND_RESIDUAL, KIND_SCORES, KIND_TOKENS, KIND_WEIGHT,
                           Axis, Part, arrange, block, display_length, gap_for, grid_columns,
                           grid_offsets, grouped, hstack, merge, ring_offsets, shift, side_label,
                           tile, title_room, titled, vstack)

EXPERT_SCALE = 0.25        # an expert is drawn at a quarter of its matrix's size: a bank of
                           # 256 stays beside the residual stream instead of dwarfing it
BANK_ASPECT = 2.0          # head and expert banks about twice as wide as tall
ACTIVATION_NAMES = {"gelu": "GELU", "gelu_tanh": "GELU (tanh)", "quick_gelu": "QuickGELU", "relu": "ReLU", "relu2": "ReLU²",
                    "silu": "SiLU", "swiglu": "SiLU", "geglu": "GELU"}


@dataclass(frozen=True)
class Dims:
    """What every piece needs: the architecture, the token axis and derived sizes."""
    arch: Architecture
    tok: Axis                  # the token axis, labelled "t"
    vocab: int | None          # embedding rows, padded like the checkpoint
    memory: int                # positions cross-attention reads (the encoder's output length)

    @property
    def c(self) -> int:
        return self.arch.d_model


def make_dims(arch: Architecture, n_tokens: int) -> Dims:
    vocab = None
    if arch.vocab_size is not None:
        pad = arch.vocab_pad_multiple
        vocab = math.ceil(arch.vocab_size / pad) * pad
    memory = n_tokens
    for component in arch.components:
        if isinstance(component, EncoderComponent):
            memory = component.input.n_positions() or component.context_length or n_tokens
            break
    return Dims(arch, Axis(n_tokens, "t"), vocab, memory)


def center_on(part: Part, block_id: str) -> Part:
    """The part shifted so that one of its blocks is centred on x = 0 (the residual stream)."""
    return shift(part, -part.center[part.find(block_id), 0], 0.0)


def linear(w_id: str, w_shape, w_name: str, out_id: str, out_shape, out_name: str,
           bias_id: str | None = None, bias_name: str = "b", after: tuple[Part, ...] = (),
           out_kind: int = KIND_ACTIVATION) -> Part:
    """A weight and, right of it, its output (with the bias over it and what follows below)."""
    weight = block(w_id, KIND_WEIGHT, w_shape, w_name)
    out = block(out_id, out_kind, out_shape, out_name)
    if bias_id is not None:
        out = vstack([block(bias_id, KIND_BIAS, (w_shape[0],), bias_name), out],
                     gap=ATTACHED_GAP, align="left")
    if after:
        out = vstack([out, *after], align="left")
    return hstack([weight, out])


def norm_part(prefix: str, d: Dims, name: str) -> Part:
    """A norm's per-token statistics left of its output, its learned scale (and shift) above."""
    if d.arch.norm == "layernorm":
        stats = [block(f"{prefix}.mean", KIND_NORM_STAT, (d.tok,), "mean"),
                 block(f"{prefix}.std", KIND_NORM_STAT, (d.tok,), "std")]
        params = [block(f"{prefix}.weight", KIND_WEIGHT, (d.c,), "γ"),
                  block(f"{prefix}.bias", KIND_BIAS, (d.c,), "β")]
    else:
        stats = [block(f"{prefix}.rms", KIND_NORM_STAT, (d.tok,), "rms")]
        params = [block(f"{prefix}.weight", KIND_WEIGHT, (d.c,), "γ")]
    out = vstack([*params, block(f"{prefix}.out", KIND_ACTIVATION, (d.tok, d.c), name)],
                 gap=ATTACHED_GAP, align="left")
    return hstack([hstack(stats, gap=ATTACHED_GAP, align="bottom"), out], align="bottom")


# ---------------------------------------------------------------- attention

@dataclass(frozen=True)
class HeadShape:
    """The matrices of one head: weight shapes (out, in) and output widths."""
    wq: tuple[int, int]
    wk: tuple[int, int]
    wv: tuple[int, int]
    qk: int                    # width of q and k
    v: int                     # width of v and of the head's output
    keys: int | Axis           # key positions (t, or the encoder's length for cross-attention)
    bias_q: bool
    bias_k: bool
    bias_v: bool
    rope: bool                 # separate rotated q and k blocks
    causal: bool


def kv_rows(prefix: str, s: HeadShape) -> list[Part]:
    """The key and value projections of one head (or one K/V group): weight, bias, output."""
    def name(suffix: str) -> str:
        return f"{prefix}.{suffix}" if prefix else suffix

    k_row = linear(name("wk"), s.wk, "W_k", name("k"), (s.keys, s.qk), "K",
                   name("bk") if s.bias_k else None, "b_k")
    if s.rope:
        k_row = hstack([k_row, block(name("k_rope"), KIND_ACTIVATION, (s.keys, s.qk), "RoPE(K)")])
    v_row = linear(name("wv"), s.wv, "W_v", name("v"), (s.keys, s.v), "V",
                   name("bv") if s.bias_v else None, "b_v")
    return [k_row, v_row]


def head_part(s: HeadShape, tok: Axis, own_kv: bool) -> Part:
    """One head: its projections in rows, then scores, masked scores, softmax and output."""
    q_row = linear("wq", s.wq, "W_q", "q", (tok, s.qk), "Q", "bq" if s.bias_q else None, "b_q")
    if s.rope:
        q_row = hstack([q_row, block("q_rope", KIND_ACTIVATION, (tok, s.qk), "RoPE(Q)")])
    rows = [q_row] + (kv_rows("", s) if own_kv else [])
    pattern = [block("scores", KIND_SCORES, (tok, s.keys), "scores")]
    if s.causal:
        pattern.append(block("scores_masked", KIND_SCORES, (tok, s.keys), "causal mask"))
    pattern += [block("softmax", KIND_SCORES, (tok, s.keys), "softmax"),
                block("out", KIND_ACTIVATION, (tok, s.v), "head out")]
    return vstack(rows + [hstack(pattern, align="top")], align="left")


COMPACT_TITLE_HEADS = 16  # above this many heads, each tile is titled by its number only


def _head_grid(head: Part, heads: range, scope: str, room_text: str) -> Part:
    """Query heads in a grid, each its own group titled "head h"."""
    room = title_room(head, room_text)
    cell_w, cell_h = head.width, head.height + room
    gap = gap_for([cell_w, cell_h])
    ncols = grid_columns(len(heads), cell_w + gap, cell_h + gap, BANK_ASPECT)
    offsets = grid_offsets(len(heads), cell_w, cell_h, ncols, gap)
    names = [f"head {h}" for h in heads]
    # In a big grid the tiles are narrower than "head 95" at a legible size: the number alone titles them.
    titles = names if len(heads) <= COMPACT_TITLE_HEADS else [str(h) for h in heads]
    return tile(head, offsets, [f"{scope}.head.{h}" for h in heads], group_labels=names,
                titles=titles, title_h=room / 2)


def head_bank(d: Dims, s: HeadShape, scope: str, n_heads: int, n_kv: int) -> Part:
    """All heads of one attention: a grid of heads, or for GQA/MQA a grid of K/V groups,
    each holding its keys and values and a grid of the query heads that share them."""
    if n_kv == n_heads:
        bank = _head_grid(head_part(s, d.tok, own_kv=True), range(n_heads), scope,
                          f"head {n_heads - 1}")
        return grouped(bank, f"{scope}.heads", f"{n_heads} heads")
    q_head = head_part(s, d.tok, own_kv=False)
    per_group = n_heads // n_kv
    groups = []
    for g in range(n_kv):
        heads = _head_grid(q_head, range(g * per_group, (g + 1) * per_group), scope,
                           f"head {n_heads - 1}")
        prefix = f"{scope}.kv_head.{g}"
        body = vstack([hstack(kv_rows(prefix, s), align="top"), heads], align="left")
        title = f"K/V head {g}: queries {g * per_group}-{(g + 1) * per_group - 1}"
        groups.append(grouped(titled(body, title, frac=0.04), prefix, f"K/V group {g}"))
    gap = gap_for([groups[0].width, groups[0].height])
    ncols = grid_columns(n_kv, groups[0].width + gap, groups[0].height + gap, BANK_ASPECT)
    return grouped(arrange(groups, ncols, gap), f"{scope}.heads",
                   f"{n_heads} query heads, {n_kv} K/V heads")


def attention_band(d: Dims, cross: bool = False) -> tuple[Part, str]:
    """Norm, (latents,) head bank and output projection of one attention, and its output id."""
    arch, c, tok = d.arch, d.c, d.tok
    scope, norm, title = ("cross_attn", "ln_cross", "Cross-attention") if cross else \
        ("attn", "ln1", "Self-attention")
    n_heads = arch.n_heads
    n_kv = n_heads if cross else arch.kv_heads
    key_bias = arch.bias if arch.key_bias is None else arch.key_bias
    parts = [norm_part(norm, d, "LayerNorm" if arch.norm == "layernorm" else "RMSNorm")]
    mla = None if cross else arch.mla
    if mla is not None:
        title = "Multi-head latent attention"
        qk = mla.qk_nope_head_dim + mla.qk_rope_head_dim
        latents = []
        q_in = c
        if mla.q_lora_rank is not None:
            q_in = mla.q_lora_rank
            latents.append(linear(f"{scope}.q_latent.weight", (q_in, c), "W_qa",
                                  f"{scope}.q_latent", (tok, q_in), "Q latent"))
        latents.append(linear(f"{scope}.kv_latent.weight", (mla.kv_lora_rank, c), "W_kva",
                              f"{scope}.kv_latent", (tok, mla.kv_lora_rank), "KV latent"))
        latents.append(linear(f"{scope}.k_rope.weight", (mla.qk_rope_head_dim, c), "W_kr",
                              f"{scope}.k_rope", (tok, mla.qk_rope_head_dim), "RoPE(K), shared"))
        parts.append(hstack(latents, align="top"))
        shape = HeadShape(wq=(qk, q_in), wk=(mla.qk_nope_head_dim, mla.kv_lora_rank),
                          wv=(mla.v_head_dim, mla.kv_lora_rank), qk=qk, v=mla.v_head_dim,
                          keys=tok, bias_q=False, bias_k=False, bias_v=False, rope=False,
                          causal=arch.causal)
    else:
        hd = arch.head_width
        shape = HeadShape(wq=(hd, c), wk=(hd, c), wv=(hd, c), qk=hd, v=hd,
                          keys=d.memory if cross else tok, bias_q=arch.bias, bias_k=key_bias,
                          bias_v=arch.bias, rope=arch.pos_encoding == "rope" and not cross,
                          causal=arch.causal and not cross)
    parts.append(head_bank(d, shape, scope, n_heads, n_kv))
    parts.append(linear(f"{scope}.proj.weight", (c, n_heads * shape.v), "W_o", f"{scope}.proj",
                        (tok, c), "attention out", f"{scope}.proj.bias" if arch.bias else None))
    band = vstack(parts, align="right")
    return grouped(titled(band, title, frac=0.03), scope, title), f"{scope}.proj"


# ---------------------------------------------------------------- feed-forward

def mlp_band(d: Dims) -> tuple[Part, str]:
    arch, c, tok, f = d.arch, d.c, d.tok, d.arch.d_ff
    bias = arch.bias
    act = ACTIVATION_NAMES.get(arch.activation or "gelu", "act")
    norm = norm_part("ln2", d, "LayerNorm" if arch.norm == "layernorm" else "RMSNorm")
    if arch.activation in GATED_ACTIVATIONS:
        rows = [linear("mlp.gate.weight", (f, c), "W_gate", "mlp.gate", (tok, f), "gate",
                       "mlp.gate.bias" if bias else None,
                       after=(block("mlp.act", KIND_ACTIVATION, (tok, f), f"{act}(gate)"),)),
                linear("mlp.up.weight", (f, c), "W_up", "mlp.up", (tok, f), "up",
                       "mlp.up.bias" if bias else None,
                       after=(block("mlp.gated", KIND_ACTIVATION, (tok, f), f"{act}(gate)·up"),)),
                linear("mlp.down.weight", (c, f), "W_down", "mlp.down", (tok, c), "MLP out",
                       "mlp.down.bias" if bias else None)]
        out = "mlp.down"
    else:
        act_id = "mlp.gelu" if arch.activation in (None, "gelu", "gelu_tanh") else "mlp.act"
        rows = [linear("mlp.fc.weight", (f, c), "W_fc", "mlp.fc", (tok, f), "fc",
                       "mlp.fc.bias" if bias else None,
                       after=(block(act_id, KIND_ACTIVATION, (tok, f), act),)),
                linear("mlp.proj.weight", (c, f), "W_proj", "mlp.proj", (tok, c), "MLP out",
                       "mlp.proj.bias" if bias else None)]
        out = "mlp.proj"
    band = vstack([norm, *rows], align="left")
    return grouped(titled(band, "MLP", frac=0.05), "mlp", "MLP"), out


def _expert_bank(d: Dims, count: int, d_ff: int, scope: str, name: str, circular: bool) -> Part:
    expert = block("", KIND_EXPERT, (d_ff, d.c), name, scale=EXPERT_SCALE)
    room = title_room(expert, f"{name} {count - 1}")
    cell_w, cell_h = expert.width, expert.height + room
    gap = gap_for([cell_w, cell_h])
    if circular:
        offsets = ring_offsets(count, cell_w, cell_h, gap)
    else:
        ncols = grid_columns(count, cell_w + gap, cell_h + gap, BANK_ASPECT)
        offsets = grid_offsets(count, cell_w, cell_h, ncols, gap)
    names = [f"{name} {e}" for e in range(count)]
    return tile(expert, offsets, [f"{scope}.{e}" for e in range(count)], titles=names,
                title_h=room / 2)


def moe_band(d: Dims, circular: bool) -> tuple[Part, str]:
    arch, c, tok, moe = d.arch, d.c, d.tok, d.arch.moe
    n = moe.n_experts
    norm = norm_part("ln2", d, "LayerNorm" if arch.norm == "layernorm" else "RMSNorm")
    router = linear("moe.router.weight", (n, c), "W_router", "moe.router", (tok, n),
                    "router logits", "moe.router.bias" if moe.router_bias else None, "bias",
                    after=(block("moe.gates", KIND_SCORES, (tok, n), f"gates, top-{moe.top_k}"),),
                    out_kind=KIND_SCORES)
    experts = _expert_bank(d, n, moe.expert_d_ff, "moe.expert", "expert", circular)
    title = f"{n} experts, top-{moe.top_k}"
    parts = [norm, router, grouped(titled(experts, title, frac=0.05), "moe.experts", title)]
    if moe.n_shared_experts:
        shared = _expert_bank(d, moe.n_shared_experts, moe.shared_expert_d_ff or moe.expert_d_ff,
                              "moe.shared", "shared expert", circular=False)
        parts.append(grouped(shared, "moe.shared", "shared experts"))
    parts.append(block("moe.out", KIND_ACTIVATION, (tok, c), "MoE out"))
    band = vstack(parts, align="left")
    return grouped(titled(band, "Mixture of experts", frac=0.05), "moe", "Mixture of experts"), \
        "moe.out"


# ---------------------------------------------------------------- state-space and RWKV mixers

def mamba_band(d: Dims, mixer: str) -> tuple[Part, str]:
    """The projections and scan of a Mamba (or Mamba-2) block, one labelled block each."""
    arch, c, tok, ssm = d.arch, d.c, d.tok, d.arch.ssm
    inner, n = ssm.expand * c, ssm.d_state
    pb = ssm.proj_bias

    def b(name: str, on: bool) -> str | None:
        return f"mamba.{name}.bias" if on else None

    rows = [norm_part("ln1", d, "LayerNorm" if arch.norm == "layernorm" else "RMSNorm")]
    if mixer == "mamba":
        r = ssm.dt_rank
        rows += [
            linear("mamba.x.weight", (inner, c), "W_x", "mamba.x", (tok, inner), "x", b("x", pb)),
            linear("mamba.z.weight", (inner, c), "W_z", "mamba.z", (tok, inner), "z (gate)", b("z", pb)),
            linear("mamba.conv.weight", (inner, ssm.d_conv), "conv1d", "mamba.conv", (tok, inner),
                   "conv", b("conv", ssm.conv_bias),
                   after=(block("mamba.conv_act", KIND_ACTIVATION, (tok, inner), "SiLU"),)),
            linear("mamba.dt_low.weight", (r, inner), "W_dt_low", "mamba.dt_low", (tok, r), "Δ low-rank"),
            linear("mamba.B.weight", (n, inner), "W_B", "mamba.B", (tok, n), "B"),
            linear("mamba.C.weight", (n, inner), "W_C", "mamba.C", (tok, n), "C"),
            linear("mamba.dt.weight", (inner, r), "W_dt", "mamba.dt", (tok, inner), "Δ (softplus)",
                   "mamba.dt.bias"),
            hstack([block("mamba.A_log", KIND_WEIGHT, (inner, n), "A_log"),
                    block("mamba.D", KIND_WEIGHT, (inner,), "D")], align="top"),
        ]
        scan = [block("mamba.y", KIND_ACTIVATION, (tok, inner), "scan y"),
                block("mamba.gated", KIND_ACTIVATION, (tok, inner), "y·SiLU(z)")]
        rows.append(hstack(scan, align="top"))
        title = "Mamba (selective SSM)"
    else:
        heads = inner // ssm.head_dim
        xbc = inner + 2 * ssm.n_groups * n
        rows += [
            linear("mamba.z.weight", (inner, c), "W_z", "mamba.z", (tok, inner), "z (gate)", b("z", pb)),
            linear("mamba.xBC.weight", (xbc, c), "W_xBC", "mamba.xBC", (tok, xbc), "x, B, C", b("xBC", pb)),
            linear("mamba.dt.weight", (heads, c), "W_dt", "mamba.dt", (tok, heads), "Δ per head",
                   "mamba.dt_bias", "dt bias"),
            linear("mamba.conv.weight", (xbc, ssm.d_conv), "conv1d", "mamba.conv", (tok, xbc), "conv",
                   b("conv", ssm.conv_bias),
                   after=(block("mamba.conv_act", KIND_ACTIVATION, (tok, xbc), "SiLU"),)),
            hstack([block("mamba.A_log", KIND_WEIGHT, (heads,), "A_log"),
                    block("mamba.D", KIND_WEIGHT, (heads,), "D")], align="top"),
            block("mamba.y", KIND_ACTIVATION, (tok, inner), "scan y"),
            vstack([block("mamba.norm.weight", KIND_WEIGHT, (inner,), "γ"),
                    block("mamba.norm", KIND_ACTIVATION, (tok, inner), "gated RMSNorm")],
                   gap=ATTACHED_GAP, align="left"),
        ]
        title = "Mamba-2 (state-space duality)"
    rows.append(linear("mamba.out.weight", (c, inner), "W_out", "mamba.out", (tok, c), "mixer out",
                       b("out", pb)))
    band = vstack(rows, align="right")
    return grouped(titled(band, title, frac=0.05), "mamba", title), "mamba.out"


def _vectors(prefix: str, names: list[str], width: int) -> Part:
    return vstack([block(f"{prefix}.{n}", KIND_WEIGHT, (width,), n) for n in names],
                  gap=ATTACHED_GAP, align="left")


def time_mix_band(d: Dims, mixer: str) -> tuple[Part, str]:
    """RWKV time mixing: token-shift mixes, key/value/receptance, the WKV recurrence, output."""
    arch, c, tok = d.arch, d.c, d.tok
    p = "time_mix"
    rows = [norm_part("ln1", d, "LayerNorm")]
    names = ["mix_k", "mix_v", "mix_r"] if mixer == "rwkv4" else \
        ["mix_x", "mix_w", "mix_k", "mix_v", "mix_r", "mix_g"]
    rows.append(_vectors(p, names, c))
    if mixer == "rwkv6":
        lora, dl = arch.rwkv.mix_lora_dim, arch.rwkv.decay_lora_dim
        rows.append(hstack([block(f"{p}.mix_lora_a", KIND_WEIGHT, (c, 5 * lora), "mix LoRA A"),
                            block(f"{p}.mix_lora_b", KIND_WEIGHT, (5 * lora, c), "mix LoRA B"),
                            block(f"{p}.decay_lora_a", KIND_WEIGHT, (c, dl), "decay LoRA A"),
                            block(f"{p}.decay_lora_b", KIND_WEIGHT, (dl, c), "decay LoRA B")],
                           align="top"))
    projections = ["receptance", "key", "value"] + (["gate"] if mixer == "rwkv6" else [])
    for name in projections:
        rows.append(linear(f"{p}.{name}.weight", (c, c), f"W_{name[0]}", f"{p}.{name}", (tok, c), name))
    rows.append(_vectors(p, ["decay", "bonus"], c))
    rows.append(block(f"{p}.wkv", KIND_ACTIVATION, (tok, c), "WKV"))
    if mixer == "rwkv6":
        rows.append(vstack([block(f"{p}.ln_x.weight", KIND_WEIGHT, (c,), "γ"),
                            block(f"{p}.ln_x", KIND_ACTIVATION, (tok, c), "GroupNorm")],
                           gap=ATTACHED_GAP, align="left"))
    rows.append(linear(f"{p}.out.weight", (c, c), "W_o", f"{p}.out", (tok, c), "time-mix out"))
    band = vstack(rows, align="right")
    return grouped(titled(band, "Time mixing", frac=0.05), p, "Time mixing"), f"{p}.out"


def channel_mix_band(d: Dims) -> tuple[Part, str]:
    """RWKV channel mixing: a squared-ReLU MLP gated by a receptance."""
    c, tok, f = d.c, d.tok, d.arch.d_ff
    p = "channel_mix"
    rows = [norm_part("ln2", d, "LayerNorm"), _vectors(p, ["mix_k", "mix_r"], c),
            linear(f"{p}.key.weight", (f, c), "W_k", f"{p}.key", (tok, f), "key",
                   after=(block(f"{p}.act", KIND_ACTIVATION, (tok, f), "ReLU²"),)),
            linear(f"{p}.value.weight", (c, f), "W_v", f"{p}.value", (tok, c), "value"),
            linear(f"{p}.receptance.weight", (c, c), "W_r", f"{p}.receptance", (tok, c), "receptance"),
            block(f"{p}.out", KIND_ACTIVATION, (tok, c), "σ(r)·value")]
    band = vstack(rows, align="left")
    return grouped(titled(band, "Channel mixing", frac=0.05), p, "Channel mixing"), f"{p}.out"


# ---------------------------------------------------------------- one layer

LAYER_NAMES = {"attention": "Transformer", "mamba": "Mamba", "mamba2": "Mamba-2",
               "rwkv4": "RWKV", "rwkv6": "RWKV"}


def layer_template(d: Dims, mixer: str, moe: bool, ffn: bool, circular: bool) -> Part:
    """One layer around the residual stream at x = 0: the mixer left of it, the feed-forward
    part right of it and below, each sub-block's residual block level with its output."""
    bands: list[tuple[str, Part, str, str]] = []
    if mixer == "attention":
        bands.append(("left", *attention_band(d), "resid1"))
        if d.arch.cross_attention:
            bands.append(("left", *attention_band(d, cross=True), "resid_cross"))
    elif mixer in ("mamba", "mamba2"):
        bands.append(("left", *mamba_band(d, mixer), "resid1"))
    else:
        bands.append(("left", *time_mix_band(d, mixer), "resid1"))
        bands.append(("right", *channel_mix_band(d), "resid2"))
    if ffn and not mixer.startswith("rwkv"):
        bands.append(("right", *(moe_band(d, circular) if moe else mlp_band(d)), "resid2"))
    half = display_length(d.c) / 2
    side_gap = gap_for([2 * half])
    gap = gap_for([b.height for _, b, _, _ in bands]) / 2
    parts, y = [], 0.0
    for side, band, out_id, resid_id in bands:
        dx = -half - side_gap - band.hi[0] if side == "left" else half + side_gap - band.lo[0]
        placed = shift(band, dx, y - band.hi[1])
        out_y = placed.center[placed.find(out_id), 1]
        parts += [placed, shift(block(resid_id, KIND_RESIDUAL, (d.tok, d.c), "residual"), 0.0, out_y)]
        y = placed.lo[1] - gap
    return merge(parts)


# ---------------------------------------------------------------- embedding and output

def embedding_section(d: Dims) -> Part:
    """Input, token (and position) embedding around the residual stream's first block."""
    arch, c, tok = d.arch, d.c, d.tok
    source = arch.input
    positional = arch.pos_encoding in ("learned", "sinusoidal")
    if source.type == "patches":
        width = source.channels * source.patch_size ** 2
        left = [block("patches", KIND_TOKENS, (tok, width), "patches"),
                block("embed.patch.weight", KIND_WEIGHT, (c, width), "W_patch")]
        sum_id = "embed.patch"
    elif source.type == "conv1d":
        left = [block("features", KIND_TOKENS, (tok, source.in_channels), "features"),
                block("embed.conv.weight", KIND_WEIGHT, (c, source.in_channels * source.kernel),
                      "conv stem")]
        sum_id = "embed.conv"
    else:
        left = [block("tokens", KIND_TOKENS, (tok,), "tokens"),
                block("embed.tok.weight", KIND_WEIGHT, (d.vocab, c), "W_E token embedding")]
        sum_id = "embed.tok"
    half = display_length(c) / 2
    side_gap = gap_for([2 * half])
    rows = []
    if positional:
        left.append(block(sum_id, KIND_ACTIVATION, (tok, c), "token embedding"))
        right = [block("embed.pos", KIND_ACTIVATION, (tok, c), "position embedding")]
        if arch.pos_encoding == "learned":
            positions = source.n_positions() or arch.context_length or tok.n
            right.append(block("embed.pos.weight", KIND_WEIGHT, (positions, c), "W_P position embedding"))
        left_row, right_row = hstack(left), hstack(right)
        rows.append(merge([shift(left_row, -side_gap / 2 - left_row.hi[0], -left_row.hi[1]),
                           shift(right_row, side_gap / 2 - right_row.lo[0], -right_row.hi[1])]))
    else:
        left_row = hstack(left)
        rows.append(shift(left_row, -half - left_row.hi[0], -left_row.hi[1]))
    name = "embedding" if positional or source.type == "tokens" else "input embedding"
    out = block("embed.out", KIND_RESIDUAL, (tok, c), "tokens + positions" if positional else name)
    # "C = 48" and "T = 11": sized by the stream's width, but no taller than about two of
    # its blocks, so "T" stays beside the rows it counts.
    label_h = min(0.15 * display_length(c), 2.0 * (tok.n + 1))
    out = side_label(titled(out, f"C = {c}", height=label_h), f"T = {tok.n}", 0, label_h)
    if arch.pre_norm or arch.mixer.startswith("rwkv"):
        ln0 = norm_part("ln0", d, "LayerNorm" if arch.norm == "layernorm" else "RMSNorm")
        out = merge([out, shift(ln0, half + side_gap - ln0.lo[0], out.center[0, 1] - ln0.center[-1, 1])])
    rows.append(center_on(out, "embed.out"))
    section = vstack(rows, align="keep")
    if arch.components:
        comps = components_part(d)
        section = merge([section, shift(comps, section.lo[0] - gap_for([comps.width]) - comps.hi[0],
                                        section.hi[1] - comps.hi[1])])
    return grouped(titled(section, "Embedding", frac=0.05), "embed", "Embedding")


def components_part(d: Dims) -> Part:
    """Each component outside the language stack (vision tower, projector...) as one block."""
    parts = []
    for comp in d.arch.components:
        if isinstance(comp, EncoderComponent):
            positions = comp.input.n_positions() or comp.context_length or d.tok.n
            shape, text = (positions, comp.d_model), f"{comp.name} encoder, {comp.n_layers} layers"
        elif isinstance(comp, ProjectorComponent):
            shape = (comp.dims[-1], comp.dims[0])
            text = f"{comp.name}: " + "→".join(str(x) for x in comp.dims)
        elif isinstance(comp, ParameterComponent):
            dims = comp.shape or (1,)
            shape = (dims[0], math.prod(dims[1:])) if len(dims) > 1 else (1, dims[0])
            text = comp.name
        else:
            raise TypeError(f"unknown component {comp!r}")
        parts.append(titled(block(f"components.{comp.name}", KIND_COMPONENT, shape, text),
                            text, frac=0.08))
    return grouped(titled(vstack(parts, align="right"), "Components", frac=0.08), "components",
                   "Components")


def output_section(d: Dims) -> Part | None:
    """Final norm, unembedding, logits and probabilities below the residual stream."""
    arch, c, tok = d.arch, d.c, d.tok
    rows = []
    if arch.final_norm:
        norm = norm_part("ln_f", d, "final LayerNorm" if arch.norm == "layernorm" else "final RMSNorm")
        rows.append(center_on(norm, "ln_f.out"))
    if arch.unembedding != "none" and d.vocab is not None:
        tied = " (tied to W_E)" if arch.unembedding == "tied" else ""
        rows.append(block("lm_head.weight", KIND_WEIGHT, (d.vocab, c), f"W_U unembedding{tied}"))
        rows.append(block("logits", KIND_ACTIVATION, (tok, d.vocab), "logits"))
        rows.append(block("probs", KIND_SCORES, (tok, d.vocab), "probabilities"))
    elif arch.output_dim is not None:
        rows.append(center_on(linear("proj.weight", (arch.output_dim, c), "W_proj", "proj",
                                     (tok, arch.output_dim), "output embedding"), "proj"))
    for k in range(arch.mtp_modules):
        rows.append(block(f"mtp.{k}", KIND_COMPONENT, (c, 2 * c), f"MTP module {k}"))
    if not rows:
        return None
    return grouped(titled(vstack(rows, align="keep"), "Output", frac=0.05), "output", "Output")
