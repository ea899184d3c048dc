"""Mamba and Mamba-2 sequence mixers: projections, convolution, selective scan (Mamba-1's state drawn per
token), gate, output."""
from __future__ import annotations

from ..layout_blocks import Dims, linear, norm_part
from ..layout_parts import ATTACHED_GAP, KIND_ACTIVATION, KIND_SCORES, KIND_WEIGHT, Part, block, grouped, hstack, side_label, titled, vstack


# The scan's terms per token, h_t = Ā_t ⊙ h_{t−1} + B̄_t x_t with Ā = exp(ΔA), B̄ = ΔB (written so, as the
# label font has no combining macron). Each row is titled once; its blocks are captioned by their token.
SCAN_ROWS = (("dA", "exp(ΔA)", "decay exp(ΔA) at each token"), ("dBx", "ΔB·x", "input ΔB·x at each token"),
             ("h", "h", "state h after each token"))


def scan_table(d: Dims, inner: int, n: int, chunk: int | None = None) -> Part:
    """The selective scan token by token, time running left to right: for every t, the decay Ā_t =
    exp(Δ_t A), the input B̄_t x_t and the state h_t they make, each d_inner × d_state (the shape of A).
    Mamba-2's decay is one number per head; its table shows it on every entry of that head's state
    (d_inner = heads × head_dim), so both families read h_t = Ā_t ⊙ h_{t−1} + B̄_t x_t cell by cell. With SSD's
    `chunk`, the state at each chunk's end, the one passed to the next chunk, says so."""
    rows = []
    for name, symbol, title in SCAN_ROWS:
        blocks = [block(f"mamba.{name}.{t}", KIND_ACTIVATION, (inner, n), "") for t in range(d.tok.n)]
        captions = [f"{symbol} t={t}" + (" (chunk state)" if name == "h" and chunk and (t + 1) % chunk == 0 else "")
                    for t in range(d.tok.n)]
        if name == "h":  # the state the first column starts from: zeros, or what a longer stream carried in
            blocks.insert(0, block("mamba.h_init", KIND_ACTIVATION, (inner, n), ""))
            captions.insert(0, "h before t=0")
        cells = hstack(blocks, align="top")
        # The row's title gives the shape once; each block's caption names only its term and token, so
        # the captions of thirty-two thin blocks stay short.
        cells.label[:] = captions
        rows.append(titled(cells, f"{title} ({inner}×{n} each)", frac=0.03))
    title = "selective scan over time: h_t = exp(Δ_t A) ⊙ h_(t−1) + Δ_t B_t x_t"
    return grouped(titled(vstack(rows, align="left"), title, frac=0.04), "mamba.scan", title)


def ssd_heads(d: Dims, heads: int, groups: int, chunk: int | None) -> Part:
    """Mamba-2's scan in its state-space-dual form: per head one T × T lower-triangular matrix M, y = M·x +
    D·x for each of the head's channels. It is the same sum as the recurrence above, reordered: SSD computes
    M's diagonal blocks of `chunk` tokens as matrix products and passes the state between chunks."""
    per_group = heads // groups
    blocks = [block(f"mamba.ssd.{h}", KIND_SCORES, (d.tok, d.tok), "") for h in range(heads)]
    row = hstack(blocks, align="top")
    # Short captions, so that they stay on their blocks and leave the row's title its line.
    row.label[:] = [f"head {h}" + (f" (group {h // per_group})" if groups > 1 else "") for h in range(heads)]
    shared = "every head's B, C" if groups == 1 else f"{per_group} heads' B, C per group"
    chunks = f"; chunks of {chunk}" if chunk else ""
    title = f"SSD form: y = M·x + D·x per head\nM[t,s] = C_t·B_s · a_(s+1)…a_t · Δ_s\n({shared}{chunks})"
    # Left of the row, not above it: the lines from x, B, C, Δ come down into every head from above.
    height = 0.16 * row.size[0, 1]          # a fifth of a matrix's height: legible once the matrices are
    return grouped(side_label(row, title, 0, height), "mamba.ssd", "SSD form (state-space duality)")


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
        rows.append(scan_table(d, inner, n))
        scan = [block("mamba.y", KIND_ACTIVATION, (tok, inner), "scan y = C·h + D·x"),
                block("mamba.gated", KIND_ACTIVATION, (tok, inner), "y·SiLU(z)"),
                block("mamba.alpha", KIND_SCORES, (tok, tok), f"hidden attention α (mean of {inner} channels)")]
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
            block("mamba.dA", KIND_ACTIVATION, (tok, heads), "decay exp(ΔA), one per head"),
            scan_table(d, inner, n, ssm.chunk_size),
            ssd_heads(d, heads, ssm.n_groups, ssm.chunk_size),
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
