"""Mixture-of-experts feed-forward band: router, gates, the expert bank (a grid or a ring) and shared experts."""
from __future__ import annotations

from ..layout_blocks import Dims, linear, norm_part
from ..layout_parts import (KIND_ACTIVATION, KIND_BUFFER, KIND_EXPERT, KIND_SCORES, Part, block, gap_for,
                            grid_columns, grid_offsets, grouped, ring_offsets, tile, title_room, titled, vstack)

EXPERT_SCALE = 0.25        # an expert is drawn at a quarter of its matrix's size: a bank of
                           # 256 stays beside the residual stream instead of dwarfing it
BANK_ASPECT = 2.0          # expert banks about twice as wide as tall


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
                    "router logits", "moe.router.bias" if moe.router_bias else None, "selection bias (buffer)",
                    after=(block("moe.gates", KIND_SCORES, (tok, n), f"gates, top-{moe.top_k}"),),
                    out_kind=KIND_SCORES, bias_kind=KIND_BUFFER)
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
