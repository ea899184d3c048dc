"""Signed-distance-field glyph atlas built at start-up from the bundled font, and label layout.

Glyphs are rasterised once with Pillow at EM_PX pixels per em, packed on shelves, and turned
into a signed distance field with a windowed exact Euclidean distance transform in numpy (two
separable passes, only SPREAD_PX wide, so it takes milliseconds; anti-aliased coverage
refines the outline below a pixel). The shader reads the field
with a smoothstep over fwidth, so the same atlas is crisp at any size on screen.

``GlyphAtlas.layout`` turns a string into glyph quads in em units around the label anchor.
"""
from __future__ import annotations

import functools
import importlib.resources
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .datatex import ShelfPacker

EM_PX = 48        # rasterisation size: one em in atlas pixels
SPREAD_PX = 6     # distance (px) mapped to the full 0..1 range either side of the outline
PAD_PX = SPREAD_PX + 1  # empty border around each glyph so fields do not touch
ATLAS_WIDTH = 512
LINE_HEIGHT_EM = 1.2

PRINTABLE_ASCII = "".join(chr(c) for c in range(32, 127))


def _span(first: int, last: int) -> str:
    return "".join(chr(c) for c in range(first, last + 1))


# Beyond ASCII, what labels and formulas are written in; any character the font lacks is dropped.
# A chosen set, not whole Unicode blocks: the atlas holds about 800 glyphs at EM_PX.
LATIN_1 = _span(0xA1, 0xFF)                                          # é, ü, ×, ·, ±, ², °
VIETNAMESE = "ĂăĐđĨĩŨũƠơƯư" + _span(0x1EA0, 0x1EF9)               # with Latin-1's àáâãèéêìíòóôõùúý
GREEK = _span(0x391, 0x3A1) + _span(0x3A3, 0x3A9) + _span(0x3B1, 0x3C9)
SCRIPTS = _span(0x2070, 0x209C) + "ᵢᵣᵤᵥⱼ"                            # x², q₂, exp(sᵢ), Σⱼ
SYMBOLS = "–—‘’“”′″‹›•…→←↑↓↔↵⇒−√∞≈≠≤≥∑∏⊕⊗⊙∈∂∇∫∝∼⋅‖▸"                # ▸: menu paths ("View ▸ Language")
CHARACTERS = PRINTABLE_ASCII + LATIN_1 + VIETNAMESE + GREEK + SCRIPTS + SYMBOLS
FALLBACK = "?"

# Columns of a layout row: quad lower-left corner and size in em (y up), uv rect (u0, v0, u1, v1).
LAYOUT_FLOATS = 8


def _nearest_feature(features: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each pixel, the Euclidean distance to the nearest feature pixel and that pixel's offset.

    Exact within ``radius`` (a windowed form of Felzenszwalb's separable transform: nearest
    feature along each column first, then rows combine squared column distances). Returns
    (distance, dy, dx); pixels with no feature within the window get distance > radius.
    """
    far = np.float32(radius + 1)
    seed = np.where(features, np.float32(0.0), far)
    column = seed.copy()
    column_dy = np.zeros(features.shape, np.int8)  # offsets within the window fit a byte: less to move
    for dy in range(1, radius + 1):
        for here, there, step in ((np.s_[:-dy], np.s_[dy:], dy), (np.s_[dy:], np.s_[:-dy], -dy)):
            candidate = seed[there] + dy
            better = candidate < column[here]
            np.copyto(column[here], candidate, where=better)
            np.copyto(column_dy[here], step, where=better)
    column2 = column * column
    dist2 = column2.copy()
    near_dy = column_dy.copy()
    near_dx = np.zeros(features.shape, np.int8)
    for dx in range(1, radius + 1):
        for here, there, step in ((np.s_[:, :-dx], np.s_[:, dx:], dx), (np.s_[:, dx:], np.s_[:, :-dx], -dx)):
            candidate = column2[there] + dx * dx
            better = candidate < dist2[here]
            np.copyto(dist2[here], candidate, where=better)
            np.copyto(near_dx[here], step, where=better)
            np.copyto(near_dy[here], column_dy[there], where=better)
    return np.sqrt(dist2), near_dy, near_dx


def _edge_offsets(cov: np.ndarray, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the outline crosses each of ``pixels`` (flat indices): offsets (dy, dx) in px from its centre.

    The outline's direction comes from the coverage gradient; its distance from the centre
    from the coverage itself, exactly for a straight edge through a square pixel (Gustavson
    and Strand's anti-aliased distance estimate).
    """
    h, w = cov.shape
    padded = np.pad(cov, 1, mode="edge").ravel()
    y, x = np.divmod(pixels, w)
    centre = (y + 1) * (w + 2) + (x + 1)

    def at(oy, ox):
        return padded[centre + oy * (w + 2) + ox]

    k = np.float32(np.sqrt(2.0))
    gx = (at(-1, 1) + k * at(0, 1) + at(1, 1)) - (at(-1, -1) + k * at(0, -1) + at(1, -1))
    gy = (at(1, -1) + k * at(1, 0) + at(1, 1)) - (at(-1, -1) + k * at(-1, 0) + at(-1, 1))
    a = cov.ravel()[pixels]
    norm = np.hypot(gx, gy)
    safe = np.where(norm > 0, norm, 1.0)
    nx, ny = gx / safe, gy / safe  # points into the glyph (towards more coverage)
    big = np.maximum(np.abs(nx), np.abs(ny))
    small = np.minimum(np.abs(nx), np.abs(ny))
    a1 = 0.5 * small / np.where(big > 0, big, 1.0)
    with np.errstate(invalid="ignore"):
        df = np.where(a < a1, 0.5 * (big + small) - np.sqrt(2.0 * big * small * a),
                      np.where(a < 1.0 - a1, (0.5 - a) * big,
                               -0.5 * (big + small) + np.sqrt(2.0 * big * small * (1.0 - a))))
    df = np.where((small == 0) | (norm == 0), 0.5 - a, df)  # axis-aligned or flat: linear in coverage
    # df > 0: the centre is outside and the outline lies df along the gradient, and vice versa.
    return df * ny, df * nx


def signed_distance_field(coverage: np.ndarray, spread: int = SPREAD_PX) -> np.ndarray:
    """uint8 field from an anti-aliased coverage image (0..255): 128 on the outline, 255 deep inside.

    Boundary pixels (partly covered, or on a hard edge) know where the outline crosses them to a
    fraction of a pixel; every other pixel measures its distance to the outline point of its
    nearest boundary pixel. Plain pixel-centre distances would be off by up to half a pixel,
    which shows as wobbly outlines when text is magnified.
    """
    cov = coverage.astype(np.float32) / 255.0
    inside = cov >= 0.5
    partial = (cov > 0.0) & (cov < 1.0)
    boundary = partial.copy()
    for axis in (0, 1):
        lo = [slice(None), slice(None)]
        hi = [slice(None), slice(None)]
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        lo, hi = tuple(lo), tuple(hi)
        # A hard step between fully covered and empty pixels: both sides bound the outline.
        hard = (inside[lo] != inside[hi]) & ~partial[lo] & ~partial[hi]
        boundary[lo] |= hard
        boundary[hi] |= hard
    h, w = cov.shape
    boundary_pixels = np.flatnonzero(boundary)
    edge_dy = np.zeros(h * w, np.float32)
    edge_dx = np.zeros(h * w, np.float32)
    edge_dy[boundary_pixels], edge_dx[boundary_pixels] = _edge_offsets(cov, boundary_pixels)
    edge_dy, edge_dx = edge_dy.reshape(h, w), edge_dx.reshape(h, w)
    dist, dy, dx = _nearest_feature(boundary, spread)
    rows = np.arange(h, dtype=np.float32)[:, None]
    cols = np.arange(w, dtype=np.float32)[None, :]
    feature = (np.clip(rows + dy, 0, h - 1).astype(np.int64) * w
               + np.clip(cols + dx, 0, w - 1).astype(np.int64)).ravel()
    # Each pixel's chosen outline point, in absolute pixel coordinates.
    point_y = (rows + edge_dy).ravel()[feature]
    point_x = (cols + edge_dx).ravel()[feature]
    to_outline = np.hypot(point_y - rows.ravel().repeat(w), point_x - np.tile(cols.ravel(), h))
    to_outline = np.where(dist.ravel() > spread, np.float32(spread), to_outline).reshape(h, w)
    # The nearest boundary pixel is not always the one with the nearest outline point (ties
    # along diagonals): near the outline, where it shows, also try each neighbour's choice.
    near = dist <= 3.0
    near[0, :] = near[-1, :] = near[:, 0] = near[:, -1] = False
    band = np.flatnonzero(near)
    py, px = np.divmod(band, w)
    py, px = py.astype(np.float32), px.astype(np.float32)
    best = to_outline.ravel()[band]
    for offset in (-w - 1, -w, -w + 1, -1, 1, w - 1, w, w + 1):
        neighbour = band + offset
        np.minimum(best, np.hypot(point_y[neighbour] - py, point_x[neighbour] - px), out=best)
    to_outline.ravel()[band] = best
    signed = np.where(inside, to_outline, -to_outline)
    return np.clip(np.rint(127.5 + signed * (127.5 / spread)), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class GlyphAtlas:
    image: np.ndarray          # uint8 (height, width) distance field, row 0 at the bottom (GL order)
    quads: np.ndarray          # float32 (glyphs, 8): bbox (x0, y0, w, h) in em, uv (u0, v0, u1, v1)
    advances: np.ndarray       # float32 (glyphs,) pen advance in em
    visible: np.ndarray        # bool (glyphs,): has ink (space has none)
    index: dict                # character -> glyph row
    cap_height: float          # em
    spread_px: int = SPREAD_PX

    @property
    def characters(self) -> str:
        return "".join(self.index)

    def glyph_rows(self, text: str) -> np.ndarray:
        fallback = self.index[FALLBACK]
        return np.fromiter((self.index.get(ch, fallback) for ch in text), np.int64, len(text))

    def line_width(self, text: str) -> float:
        return float(self.advances[self.glyph_rows(text)].sum())

    def layout(self, text: str, halign: str = "center") -> np.ndarray:
        """Glyph quads (n, LAYOUT_FLOATS) for ``text`` in em units around the anchor.

        Lines (split on newline) are stacked LINE_HEIGHT_EM apart; the block is centred
        vertically on the anchor (by cap height) and each line centred horizontally, or
        starting at the anchor when ``halign`` is "left". Glyphs without ink produce no quad.
        """
        if halign not in ("center", "left"):
            raise ValueError(f"halign must be 'center' or 'left', not {halign!r}")
        lines = text.split("\n")
        block_mid = (self.cap_height - (len(lines) - 1) * LINE_HEIGHT_EM) / 2.0
        pieces = []
        for number, line in enumerate(lines):
            rows = self.glyph_rows(line)
            if not len(rows):
                continue
            pen = np.concatenate([[0.0], np.cumsum(self.advances[rows])[:-1]])
            if halign == "center":
                pen -= self.advances[rows].sum() / 2.0
            keep = self.visible[rows]
            quads = self.quads[rows[keep]].copy()
            quads[:, 0] += pen[keep]
            quads[:, 1] += -number * LINE_HEIGHT_EM - block_mid
            pieces.append(quads)
        if not pieces:
            return np.zeros((0, LAYOUT_FLOATS), np.float32)
        return np.concatenate(pieces).astype(np.float32)


def _font_bytes() -> bytes:
    return importlib.resources.files("llmviz.assets").joinpath("fonts/DejaVuSans.ttf").read_bytes()


def build_glyph_atlas(characters: str = CHARACTERS) -> GlyphAtlas:
    """Rasterise ``characters`` from the bundled font and build their distance-field atlas."""
    font = ImageFont.truetype(io.BytesIO(_font_bytes()), EM_PX)
    # A character the font lacks renders as the .notdef box: drop those (keep ASCII regardless).
    notdef = bytes(font.getmask("\uffff"))
    chars = [ch for ch in dict.fromkeys(characters)
             if ch in PRINTABLE_ASCII or bytes(font.getmask(ch)) != notdef]

    boxes = [font.getbbox(ch, anchor="ls") for ch in chars]  # (left, top, right, bottom), y down
    sizes = [(r - l + 2 * PAD_PX, b - t + 2 * PAD_PX) for l, t, r, b in boxes]
    packer = ShelfPacker(ATLAS_WIDTH, 4096)
    order = sorted(range(len(chars)), key=lambda i: -sizes[i][1])  # tall first packs tighter
    origins = [None] * len(chars)
    for i in order:
        origins[i] = packer.alloc(*sizes[i])
    height = max(y + sizes[i][1] for i, (x, y) in enumerate(origins))
    height = (height + 3) // 4 * 4

    canvas = Image.new("L", (ATLAS_WIDTH, height), 0)
    draw = ImageDraw.Draw(canvas)
    for ch, (l, t, r, b), (x, y) in zip(chars, boxes, origins):
        if r > l and b > t:
            draw.text((x + PAD_PX - l, y + PAD_PX - t), ch, font=font, fill=255, anchor="ls")
    field = signed_distance_field(np.asarray(canvas))

    quads = np.zeros((len(chars), LAYOUT_FLOATS), np.float32)
    for i, ((l, t, r, b), (x, y), (w, h)) in enumerate(zip(boxes, origins, sizes)):
        # The quad covers the padded cell, so the field's soft edge is never clipped.
        quads[i, 0:4] = ((l - PAD_PX) / EM_PX, -(b + PAD_PX) / EM_PX, w / EM_PX, h / EM_PX)
        # The image is flipped for GL below: image row y maps to v = (height - y) / height.
        quads[i, 4:8] = (x / ATLAS_WIDTH, (height - y - h) / height,
                         (x + w) / ATLAS_WIDTH, (height - y) / height)
    advances = np.array([font.getlength(ch) / EM_PX for ch in chars], np.float32)
    visible = np.array([r > l and b > t for l, t, r, b in boxes])
    cap = font.getbbox("H", anchor="ls")
    return GlyphAtlas(image=np.ascontiguousarray(field[::-1]), quads=quads, advances=advances,
                      visible=visible, index={ch: i for i, ch in enumerate(chars)},
                      cap_height=(cap[3] - cap[1]) / EM_PX)


@functools.lru_cache(maxsize=1)
def default_glyph_atlas() -> GlyphAtlas:
    """The atlas of the default character set, built once per process and shared by renderers."""
    return build_glyph_atlas()
