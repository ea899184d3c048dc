"""Signed-distance-field glyph atlas built at start-up from the bundled font, and label layout.

Glyphs are rasterised once with Pillow at EM_PX pixels per em, packed on shelves, and turned
into a signed distance field with a windowed exact Euclidean distance transform in numpy (two
separable passes, only SPREAD_PX wide, so it takes milliseconds; anti-aliased coverage
refines the outline below a pixel). The shader reads the field
with a smoothstep over fwidth, so the same atlas is crisp at any size on screen.

``GlyphAtlas.layout`` turns a string into glyph quads in em units around the label anchor.
"""
from __future__ import annotations

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
# Extra symbols for model diagrams; any the font lacks are dropped.
SYMBOLS = "×·→←↑↓↔Σσ√≈≠≤≥±∞αβγδεθλμπτφω²³⁻ⁱ…⊕⊗°∑∏"
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
    column_dy = np.zeros(features.shape, np.int32)
    for dy in range(1, radius + 1):
        for here, there, step in ((np.s_[:-dy], np.s_[dy:], dy), (np.s_[dy:], np.s_[:-dy], -dy)):
            candidate = seed[there] + dy
            better = candidate < column[here]
            np.copyto(column[here], candidate, where=better)
            np.copyto(column_dy[here], step, where=better)
    column2 = column * column
    dist2 = column2.copy()
    near_dy = column_dy.copy()
    near_dx = np.zeros(features.shape, np.int32)
    for dx in range(1, radius + 1):
        for here, there, step in ((np.s_[:, :-dx], np.s_[:, dx:], dx), (np.s_[:, dx:], np.s_[:, :-dx], -dx)):
            candidate = column2[there] + dx * dx
            better = candidate < dist2[here]
            np.copyto(dist2[here], candidate, where=better)
            np.copyto(near_dx[here], step, where=better)
            np.copyto(near_dy[here], column_dy[there], where=better)
    return np.sqrt(dist2), near_dy, near_dx


def signed_distance_field(coverage: np.ndarray, spread: int = SPREAD_PX) -> np.ndarray:
    """uint8 field from an anti-aliased coverage image (0..255): 128 on the outline, 255 deep inside.

    Boundary pixels (partly covered, or next to a pixel on the other side of 50 %) know their
    own signed distance to the outline from their coverage, to a fraction of a pixel. Every
    other pixel adds its distance to the nearest boundary pixel to that pixel's value. Plain
    pixel-centre distances would be off by up to half a pixel, which shows as wobbly outlines
    when text is magnified.
    """
    cov = coverage.astype(np.float32) / 255.0
    inside = cov >= 0.5
    boundary = (cov > 0.0) & (cov < 1.0)
    for axis in (0, 1):
        flip = np.diff(inside, axis=axis)
        lo = [slice(None), slice(None)]
        hi = [slice(None), slice(None)]
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        boundary[tuple(lo)] |= flip
        boundary[tuple(hi)] |= flip
    own = cov - 0.5  # signed distance (px) of a boundary pixel's centre to the outline
    dist, dy, dx = _nearest_feature(boundary, spread)
    h, w = cov.shape
    ys = np.clip(np.arange(h)[:, None] + dy, 0, h - 1)
    xs = np.clip(np.arange(w)[None, :] + dx, 0, w - 1)
    base = own[ys, xs]
    signed = np.where(inside, base + dist, base - dist)
    signed = np.where(dist > spread, np.where(inside, spread, -spread), signed)
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


def build_glyph_atlas(characters: str = PRINTABLE_ASCII + SYMBOLS) -> GlyphAtlas:
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
