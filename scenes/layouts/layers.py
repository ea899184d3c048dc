"""One layer of any stack: its sequence mixer left of the residual stream, its feed-forward part right
of it, picked from two small tables (MIXER_BANDS, FFN_BANDS) so a new mixer is one entry and one module."""
from __future__ import annotations

from ..layout_blocks import Dims, attention_band, mlp_band
from ..layout_parts import KIND_RESIDUAL, Part, block, display_length, gap_for, merge, shift
from .mamba import mamba_band
from .moe import moe_band
from .rwkv import channel_mix_band, time_mix_band

LAYER_NAMES = {"attention": "Transformer", "mamba": "Mamba", "mamba2": "Mamba-2",
               "rwkv4": "RWKV", "rwkv6": "RWKV"}


def _attention(d: Dims, mixer: str):
    bands = [("left", *attention_band(d), "resid1")]
    if d.arch.cross_attention:
        bands.append(("left", *attention_band(d, cross=True), "resid_cross"))
    return bands


def _mamba(d: Dims, mixer: str):
    return [("left", *mamba_band(d, mixer), "resid1")]


def _rwkv(d: Dims, mixer: str):
    # RWKV's channel mixing is its feed-forward part: it comes with the mixer.
    return [("left", *time_mix_band(d, mixer), "resid1"), ("right", *channel_mix_band(d), "resid2")]


# mixer -> (the bands it draws, whether the layer's d_ff / MoE feed-forward follows it)
MIXER_BANDS = {"attention": (_attention, True), "mamba": (_mamba, True), "mamba2": (_mamba, True),
               "rwkv4": (_rwkv, False), "rwkv6": (_rwkv, False)}


def layer_template(d: Dims, mixer: str, moe: bool, ffn: bool, circular: bool) -> Part:
    """One layer around the residual stream at x = 0: the mixer left of it, the feed-forward
    part right of it and below, each sub-block's residual block level with its output."""
    make, with_ffn = MIXER_BANDS[mixer]
    bands: list[tuple[str, Part, str, str]] = make(d, mixer)
    if ffn and with_ffn:
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
