"""Columnar building pieces for the model layout: blocks, groups and labels that stack and tile.

A `Part` is a set of blocks (boxes standing for tensors), hierarchy groups and text labels in
local coordinates, stored column per field like the engine's ECS. Parts combine by stacking
(`hstack`, `vstack`), wrapping in a group (`grouped`), titling (`titled`) and copying
(`tile`, with numpy: a bank of 128 heads is one head repeated with offsets, never 128 loops
of Python objects). Coordinates: x grows to the right, y up ("down the model" is -y); every
block lies in the z = 0 plane, so a part only tracks x and y.

Ids and group ids are suffixes: `tile` prefixes the copies ("blocks.3" + "attn.proj"), and an
empty suffix names the prefix itself. Group index -1 (in `group`, `gparent`, `tgroup`) means
"the group that will own this part", filled in by `grouped` or `tile`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Block kinds (Layout.kind). The scene picks materials and colour maps from these.
KIND_ACTIVATION = 0   # an intermediate the forward pass computes
KIND_RESIDUAL = 1     # the residual stream (embedding output, after each sub-block)
KIND_WEIGHT = 2       # a learned matrix or vector
KIND_BIAS = 3         # a learned bias vector
KIND_NORM_STAT = 4    # per-token statistic of a norm (mean, std, rms)
KIND_SCORES = 5       # attention scores, masked scores, softmax; router logits and gates
KIND_TOKENS = 6       # the input (token ids, image patches)
KIND_EXPERT = 7       # one MoE expert, drawn as one small block standing for its matrices
KIND_COMPONENT = 8    # a whole component (MTP module, a free tensor) as one block
KIND_BUFFER = 9       # a fixed tensor the model holds but does not learn (Whisper's sinusoids)
KIND_NAMES = ("activation", "residual", "weight", "bias", "norm-stat", "scores", "tokens",
              "expert", "component", "buffer")

# Up to this many cells a dimension is drawn one world unit per cell; beyond it, logarithmically.
LINEAR_LIMIT = 64
GAP_MIN = 1.0          # world units between neighbours, at least
GAP_FRAC = 0.12        # ... and this fraction of the neighbours' mean extent along the stacking axis
ATTACHED_GAP = 0.5     # a bias over the output it is added to
CHAR_WIDTH_EM = 0.6    # rough width of a glyph in line heights, to keep titles inside their part


def display_length(n) -> np.ndarray | float:
    """World length of a dimension of n cells: n up to LINEAR_LIMIT, then 64 * (1 + ln(n / 64)).

    Monotone and concave, and smooth at the joint (slope 1 on both sides; log2 would jump to
    1.44 there): 12288 (GPT-3's width) draws as 400 units, a 257152-entry vocabulary as 595,
    so the largest models stay navigable while a small model keeps one unit per cell.
    """
    n = np.asarray(n, dtype=np.float64)
    safe = np.maximum(n, 1.0)
    out = np.where(n <= LINEAR_LIMIT, n, LINEAR_LIMIT * (1.0 + np.log(safe / LINEAR_LIMIT)))
    return out if out.ndim else float(out)


@dataclass(frozen=True)
class Axis:
    """A dimension whose label shows a symbol instead of its size (the token axis: "t")."""
    n: int
    text: str


Dim = int | Axis


def _n(dim: Dim) -> int:
    return dim.n if isinstance(dim, Axis) else int(dim)


def _text(dim: Dim) -> str:
    return dim.text if isinstance(dim, Axis) else str(dim)


def gap_for(extents) -> float:
    """The gap between neighbours proportional to their sizes along the stacking axis."""
    extents = list(extents)
    return max(GAP_MIN, GAP_FRAC * (sum(extents) / len(extents))) if extents else GAP_MIN


def join(prefix: str, suffix: str) -> str:
    if not prefix:
        return suffix
    return f"{prefix}.{suffix}" if suffix else prefix


class Part:
    """Blocks, groups and text labels in local coordinates (see the module docstring)."""

    __slots__ = ("ids", "kind", "rows", "cols", "center", "size", "label", "group",
                 "gids", "gparent", "glabel", "text", "tpos", "theight", "tgroup", "lo", "hi")

    def __init__(self, ids, kind, rows, cols, center, size, label, group,
                 gids, gparent, glabel, text, tpos, theight, tgroup, lo, hi):
        self.ids, self.kind, self.rows, self.cols = ids, kind, rows, cols
        self.center, self.size, self.label, self.group = center, size, label, group
        self.gids, self.gparent, self.glabel = gids, gparent, glabel
        self.text, self.tpos, self.theight, self.tgroup = text, tpos, theight, tgroup
        self.lo, self.hi = lo, hi          # (2,) extent of everything, reserved title space included

    @property
    def width(self) -> float:
        return float(self.hi[0] - self.lo[0])

    @property
    def height(self) -> float:
        return float(self.hi[1] - self.lo[1])

    def find(self, block_id: str) -> int:
        return self.ids.index(block_id)


def _empty_groups():
    return [], np.empty(0, np.int64), []


def _empty_texts():
    return [], np.empty((0, 2)), np.empty(0), np.empty(0, np.int64)


def block(suffix: str, kind: int, shape: tuple[Dim, ...], name: str, scale: float = 1.0) -> Part:
    """One block for a tensor of the given true shape, labelled "name  r×c".

    A 2-D tensor is rows × cols as stored (weights are (out, in), like torch.nn.Linear). A
    vector runs along the axis it shares with the activations: one indexed by the token axis
    is a column (t × 1), any other a row (1 × n), the way a bias lies over the columns it is
    added to. `scale` shrinks the drawn box (experts), which marks it compressed downstream.
    """
    if len(shape) == 1:
        (dim,) = shape
        rows, cols = (_n(dim), 1) if isinstance(dim, Axis) else (1, _n(dim))
        label = f"{name}  {_text(dim)}"
    else:
        rows_dim, cols_dim = shape
        rows, cols = _n(rows_dim), _n(cols_dim)
        label = f"{name}  {_text(rows_dim)}×{_text(cols_dim)}"
    w = display_length(cols) * scale
    h = display_length(rows) * scale
    return Part([suffix], np.array([kind], np.int8), np.array([rows], np.int64),
                np.array([cols], np.int64), np.zeros((1, 2)), np.array([[w, h]]), [label],
                np.array([-1], np.int64), *_empty_groups(), *_empty_texts(),
                np.array([-w / 2, -h / 2]), np.array([w / 2, h / 2]))


def empty() -> Part:
    return Part([], np.empty(0, np.int8), np.empty(0, np.int64), np.empty(0, np.int64),
                np.empty((0, 2)), np.empty((0, 2)), [], np.empty(0, np.int64),
                *_empty_groups(), *_empty_texts(), np.zeros(2), np.zeros(2))


def renamed(part: Part, prefix: str) -> Part:
    """The part with every block and group id prefixed ("vision." + "blocks.3.attn"): a stack of its own."""
    if not prefix:
        return part
    return Part([prefix + i for i in part.ids], part.kind, part.rows, part.cols, part.center, part.size,
                part.label, part.group, [prefix + g for g in part.gids], part.gparent, part.glabel,
                part.text, part.tpos, part.theight, part.tgroup, part.lo, part.hi)


def shift(part: Part, dx: float, dy: float) -> Part:
    d = np.array([dx, dy])
    return Part(part.ids, part.kind, part.rows, part.cols, part.center + d, part.size, part.label,
                part.group, part.gids, part.gparent, part.glabel, part.text, part.tpos + d,
                part.theight, part.tgroup, part.lo + d, part.hi + d)


def merge(parts: list[Part]) -> Part:
    """All blocks, groups and labels of the parts, as placed; group indices renumbered."""
    parts = [p for p in parts if len(p.ids) or len(p.gids) or len(p.text)]
    if not parts:
        return empty()
    if len(parts) == 1:
        return parts[0]
    offsets = np.cumsum([0] + [len(p.gids) for p in parts[:-1]])

    def renumber(column: str) -> np.ndarray:
        return np.concatenate([np.where(getattr(p, column) >= 0, getattr(p, column) + o, -1)
                               for p, o in zip(parts, offsets)])

    return Part(
        [i for p in parts for i in p.ids], np.concatenate([p.kind for p in parts]),
        np.concatenate([p.rows for p in parts]), np.concatenate([p.cols for p in parts]),
        np.concatenate([p.center for p in parts]), np.concatenate([p.size for p in parts]),
        [s for p in parts for s in p.label], renumber("group"),
        [g for p in parts for g in p.gids], renumber("gparent"), [g for p in parts for g in p.glabel],
        [s for p in parts for s in p.text], np.concatenate([p.tpos for p in parts]),
        np.concatenate([p.theight for p in parts]), renumber("tgroup"),
        np.min([p.lo for p in parts], axis=0), np.max([p.hi for p in parts], axis=0))


def hstack(parts: list[Part], gap: float | None = None, align: str = "center") -> Part:
    """Parts left to right, `gap` apart, their tops, centres or bottoms on one line."""
    parts = [p for p in parts if p is not None]
    gap = gap_for(p.width for p in parts) if gap is None else gap
    placed, x = [], 0.0
    for p in parts:
        if align == "top":
            dy = -p.hi[1]
        elif align == "bottom":
            dy = -p.lo[1]
        else:
            dy = -(p.lo[1] + p.hi[1]) / 2
        placed.append(shift(p, x - p.lo[0], dy))
        x += p.width + gap
    return merge(placed)


def vstack(parts: list[Part], gap: float | None = None, align: str = "center") -> Part:
    """Parts top to bottom (down the model), `gap` apart, aligned left, centred or right,
    or with x left as it is ("keep")."""
    parts = [p for p in parts if p is not None]
    gap = gap_for(p.height for p in parts) if gap is None else gap
    placed, y = [], 0.0
    for p in parts:
        if align == "left":
            dx = -p.lo[0]
        elif align == "right":
            dx = -p.hi[0]
        elif align == "keep":
            dx = 0.0
        else:
            dx = -(p.lo[0] + p.hi[0]) / 2
        placed.append(shift(p, dx, y - p.hi[1]))
        y -= p.height + gap
    return merge(placed)


def grouped(part: Part, suffix: str, label: str) -> Part:
    """The part wrapped in a new group that owns whatever had no owner yet."""
    def own(column: np.ndarray) -> np.ndarray:
        return np.where(column >= 0, column + 1, 0)

    return Part(part.ids, part.kind, part.rows, part.cols, part.center, part.size, part.label,
                own(part.group), [suffix] + part.gids,
                np.concatenate([[-1], own(part.gparent)]).astype(np.int64),
                [label] + part.glabel, part.text, part.tpos, part.theight, own(part.tgroup),
                part.lo, part.hi)


def title_height(width: float, text: str, frac: float) -> float:
    """A title's line height: `frac` of the width it names, never wider than that width."""
    fit = width / (CHAR_WIDTH_EM * max(len(text), 1))
    return max(0.5, min(frac * width, fit))


def titled(part: Part, text: str, frac: float = 0.06, height: float | None = None) -> Part:
    """A text label centred above the part, with room reserved for it (owned like the part)."""
    h = title_height(part.width, text, frac) if height is None else height
    cx, top = (part.lo[0] + part.hi[0]) / 2, part.hi[1]
    label = Part([], np.empty(0, np.int8), np.empty(0, np.int64), np.empty(0, np.int64),
                 np.empty((0, 2)), np.empty((0, 2)), [], np.empty(0, np.int64), *_empty_groups(),
                 [text], np.array([[cx, top + h]]), np.array([h]),
                 np.array([-1], np.int64), np.array([part.lo[0], top]),
                 np.array([part.hi[0], top + 2.0 * h]))
    return merge([part, label])


def side_label(part: Part, text: str, block_index: int, height: float) -> Part:
    """A text label left of one block of the part (a dimension such as "T = 11"); one or more lines."""
    cx, cy = part.center[block_index]
    left = cx - part.size[block_index, 0] / 2
    lines = text.split("\n")
    width = CHAR_WIDTH_EM * height * max(len(line) for line in lines)
    x = left - 0.5 * height - width / 2
    label = Part([], np.empty(0, np.int8), np.empty(0, np.int64), np.empty(0, np.int64),
                 np.empty((0, 2)), np.empty((0, 2)), [], np.empty(0, np.int64), *_empty_groups(),
                 [text], np.array([[x, cy]]), np.array([height]), np.array([-1], np.int64),
                 np.array([x - width / 2, cy - len(lines) * height / 2]),
                 np.array([x + width / 2, cy + len(lines) * height / 2]))
    return merge([part, label])


def tile(part: Part, offsets: np.ndarray, prefixes: list[str],
         group_labels: list[str] | None = None, titles: list[str] | None = None,
         title_frac: float = 0.1, title_h: float | None = None) -> Part:
    """Copies of `part` at `offsets` (n, 2), their ids prefixed, vectorised.

    With `group_labels`, each copy is wrapped in a group whose id is its prefix; with
    `titles`, each copy gets a title `title_h` tall (by default sized by `title_height`
    for the longest title) in a room of twice that height above it; offsets that step by
    the part's height plus `title_room(...)` keep titles clear of the copy above.
    """
    offsets = np.asarray(offsets, dtype=np.float64).reshape(-1, 2)
    n, nb, ng, nt = len(offsets), len(part.ids), len(part.gids), len(part.text)
    own = group_labels is not None
    per_copy = ng + (1 if own else 0)                       # groups per copy
    base = (np.arange(n, dtype=np.int64) * per_copy)[:, None]
    inner = 1 if own else 0

    def renumber(column: np.ndarray) -> np.ndarray:
        # Inside copy k: local group g -> k * per_copy + inner + g; owner (-1) -> the copy's group.
        if own:
            return (base + np.where(column >= 0, column + inner, 0)[None, :]).reshape(-1)
        return np.where(column[None, :] >= 0, base + column[None, :], -1).reshape(-1)

    ids = [f"{p}.{s}" if s else p for p in prefixes for s in part.ids]
    center = (part.center[None, :, :] + offsets[:, None, :]).reshape(-1, 2)
    gids_copy = ([""] if own else []) + part.gids
    gids = [f"{p}.{s}" if s else p for p in prefixes for s in gids_copy]
    if own:
        # The copy's own group has no parent (-1); its children's parents shift by base + inner.
        inner_parents = np.where(part.gparent >= 0, part.gparent + inner, 0)
        gparent = np.concatenate([np.full((n, 1), -1, np.int64), base + inner_parents[None, :]],
                                 axis=1).reshape(-1)
        glabel = [x for k in range(n) for x in [group_labels[k]] + part.glabel]
    else:
        gparent = renumber(part.gparent) if ng else np.empty(0, np.int64)
        glabel = part.glabel * n
    text = part.text * n
    tpos = (part.tpos[None, :, :] + offsets[:, None, :]).reshape(-1, 2)
    theight = np.tile(part.theight, n)
    tgroup = renumber(part.tgroup) if nt else np.empty(0, np.int64)
    lo = part.lo + offsets.min(axis=0)
    hi = part.hi + offsets.max(axis=0)
    if titles is not None:
        h = title_height(part.width, max(titles, key=len), title_frac) if title_h is None else title_h
        cx = (part.lo[0] + part.hi[0]) / 2
        text = text + list(titles)
        tpos = np.concatenate([tpos, offsets + np.array([cx, part.hi[1] + h])])
        theight = np.concatenate([theight, np.full(n, h)])
        owner = (np.arange(n, dtype=np.int64) * per_copy) if own else np.full(n, -1, np.int64)
        tgroup = np.concatenate([tgroup, owner])
        hi = hi + np.array([0.0, 2.0 * h])
    return Part(ids, np.tile(part.kind, n), np.tile(part.rows, n), np.tile(part.cols, n), center,
                np.tile(part.size, (n, 1)), part.label * n, renumber(part.group) if nb else
                np.empty(0, np.int64), gids, gparent, glabel, text, tpos, theight, tgroup, lo, hi)


def title_room(part: Part, longest_title: str, title_frac: float = 0.1) -> float:
    """The height `tile(..., titles=...)` adds above each copy."""
    return 2.0 * title_height(part.width, longest_title, title_frac)


def grid_columns(n: int, cell_w: float, cell_h: float, aspect: float = 1.0) -> int:
    """Columns for n cells so the grid is about `aspect` times as wide as it is tall."""
    if n <= 1:
        return 1
    return int(min(n, max(1, round(math.sqrt(n * cell_h * aspect / max(cell_w, 1e-9))))))


def grid_offsets(n: int, cell_w: float, cell_h: float, ncols: int, gap: float) -> np.ndarray:
    """Row-major offsets of n cells, left to right then downwards."""
    k = np.arange(n)
    return np.stack([(k % ncols) * (cell_w + gap), -(k // ncols) * (cell_h + gap)], axis=1)


def ring_offsets(n: int, cell_w: float, cell_h: float, gap: float) -> np.ndarray:
    """Offsets of n cells on a circle, clockwise from the top; neighbours' centres are a
    cell diagonal plus `gap` apart, so no two cells touch."""
    if n == 1:
        return np.zeros((1, 2))
    radius = (math.hypot(cell_w, cell_h) + gap) / (2.0 * math.sin(math.pi / n))
    angle = math.pi / 2 - 2.0 * math.pi * np.arange(n) / n
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)


def arrange(parts: list[Part], ncols: int, gap: float) -> Part:
    """Different parts in a grid of equal cells (the largest part's size), row-major."""
    cell_w = max(p.width for p in parts)
    cell_h = max(p.height for p in parts)
    offsets = grid_offsets(len(parts), cell_w, cell_h, ncols, gap)
    return merge([shift(p, ox - p.lo[0], oy - p.hi[1]) for p, (ox, oy) in zip(parts, offsets)])
