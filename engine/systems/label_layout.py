"""Screen-space layout of the labels that pass a frame: legible size, no collisions, never over blocks or the UI.

The label selector (labels.py) picks the labels in view that are in front of the camera and at
least their own ``min_px`` tall at their natural (world) size. This module then decides, each
frame and in screen pixels, which of them are drawn, where and how big:

- every label drawn is at least LEGIBLE_PX tall: a smaller one is scaled up about its anchor
  (its ``min_px`` bounds how far: at most LEGIBLE_PX / min_px times its natural size);
- a caption (``placement`` CAPTION) may move: it is tried above its entity's box on screen, then
  left of it, right of it, below it, then above or below flush with either edge; a fixed label
  (titles, axis ticks) stays at its anchor;
- no label covers a drawn opaque block (the obstacles) or a rectangle of the UI (menu, banner,
  panels, hint bar, legend), and no two labels overlap: where they would, the higher priority
  stays (then the larger on screen, then the first) and the other moves or hides.

Collisions are resolved greedily in rank order (label rank first, then its placements in order),
without a Python loop over labels: with the pairwise conflict matrix of the candidate boxes (two
placements of one label always conflict), each round keeps every candidate none of whose
higher-ranked conflicting candidates is undecided or kept, and drops every candidate that
conflicts with a kept one. The result is exactly the sequential greedy one; chains of conflicts
are short on a real view, so a few rounds settle them. At most MAX_CANDIDATES labels take part
(the best ranked), so the matrix stays small and a frame's layout takes a millisecond or two.
Obstacles are rasterised into a coarse occupancy grid with a summed-area table, so testing a
box against thousands of blocks is four lookups.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LEGIBLE_PX = 11.0      # the smallest label height drawn, in view pixels
GAP_PX = 2.0           # labels closer than this count as touching
MARGIN_PX = 4.0        # a moved caption's distance from its block
MAX_CANDIDATES = 600   # labels that take part in the layout per frame, best ranked first
MAX_ROUNDS = 64        # a longer chain of conflicts is cut: its undecided tail is hidden
GRID_PX = 2            # cell of the obstacle occupancy grid
MAX_GRID_CELLS = 4_000_000  # the grid's cells at most (3840 x 2160 at GRID_PX is 2.1 million)
DIRECT_PAIRS = 400_000  # label x obstacle tests done pair by pair below this; the grid above

FIXED = 0     # drawn at its anchor or not at all
CAPTION = 1   # may move around its entity's box: above, left, right, below, ...
_PLACES = 8


@dataclass
class LaidOut:
    """The labels a frame draws, in view pixels (x right, y down, origin top-left)."""

    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # selector indices, ascending
    anchors: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))       # world anchors drawn at
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))         # x0, y0, x1, y1
    pixel_height: np.ndarray = field(default_factory=lambda: np.zeros(0))       # of one line, as drawn
    scale: np.ndarray = field(default_factory=lambda: np.zeros(0))              # drawn / natural size
    hidden_collisions: int = 0
    hidden_under_ui: int = 0
    hidden_over_blocks: int = 0
    hidden_over_limit: int = 0


class View:
    """What projecting needs from a camera, derived once per frame (the camera's own properties
    rebuild matrices and rotate vectors on every access)."""

    def __init__(self, camera):
        if isinstance(camera, View):
            self.__dict__.update(camera.__dict__)
            return
        self.camera = camera
        self.view_projection = camera.view_projection()
        self.viewport = camera.viewport
        self.right = np.asarray(camera.right, np.float64)
        self.up = np.asarray(camera.up, np.float64)
        self.forward = np.asarray(camera.forward, np.float64)
        self.position = np.asarray(camera.position, np.float64)
        self.near = camera.near
        self.fov_y, self.aspect = camera.fov_y, camera.aspect

    def project(self, points: np.ndarray) -> np.ndarray:
        """Pixels (x right, y down) and view depth, as Camera.project."""
        m = self.view_projection
        hom = points @ m[:, :3].T + m[:, 3]
        w, h = self.viewport
        inv = 1.0 / hom[:, 3]
        return np.c_[(hom[:, 0] * inv + 1) * 0.5 * w, (1 - hom[:, 1] * inv) * 0.5 * h, hom[:, 3]]


def _axes(billboard: np.ndarray, view: View) -> tuple[np.ndarray, np.ndarray]:
    """The world directions of a label's x and y (as shaders/text.glsl): the camera's for billboards."""
    bill = np.asarray(billboard, bool)[:, None]
    axis_x = np.where(bill, view.right, np.array([1.0, 0.0, 0.0]))
    axis_y = np.where(bill, view.up, np.array([0.0, 1.0, 0.0]))
    return axis_x, axis_y


def screen_boxes(anchors: np.ndarray, heights: np.ndarray, billboard: np.ndarray, extents: np.ndarray,
                 camera) -> tuple[np.ndarray, np.ndarray]:
    """Pixel boxes (n, 4) and line heights (n,) of labels drawn with world line height ``heights``.

    ``extents``: (n, 4) the text's ink box (x0, y0, x1, y1) in em around its anchor (y up).
    """
    n = len(anchors)
    if not n:
        return np.zeros((0, 4)), np.zeros(0)
    camera = View(camera)
    axis_x, axis_y = _axes(billboard, camera)
    h = np.asarray(heights, np.float64)[:, None, None]
    ex = extents.astype(np.float64)
    # The four corners of the ink box, the anchor and one em above it, projected at once.
    em = np.stack([ex[:, [0, 1]], ex[:, [2, 1]], ex[:, [0, 3]], ex[:, [2, 3]],
                   np.zeros((n, 2)), np.c_[np.zeros(n), np.ones(n)]], axis=1)   # (n, 6, 2)
    points = anchors[:, None, :] + (axis_x[:, None, :] * em[..., :1] + axis_y[:, None, :] * em[..., 1:]) * h
    projected = camera.project(points.reshape(-1, 3)).reshape(n, 6, 3)[..., :2]
    quad = projected[:, :4]
    boxes = np.c_[quad[..., 0].min(1), quad[..., 1].min(1), quad[..., 0].max(1), quad[..., 1].max(1)]
    line = np.linalg.norm(projected[:, 5] - projected[:, 4], axis=1)
    return boxes, line


def line_heights(anchors: np.ndarray, heights: np.ndarray, billboard: np.ndarray, camera) -> np.ndarray:
    """Pixel height of one line of each label drawn with world line height ``heights`` (two points each)."""
    n = len(anchors)
    if not n:
        return np.zeros(0)
    camera = View(camera)
    _, axis_y = _axes(billboard, camera)
    points = np.concatenate([anchors, anchors + axis_y * np.asarray(heights, np.float64)[:, None]])
    p = camera.project(points)[:, :2]
    return np.hypot(p[n:, 0] - p[:n, 0], p[n:, 1] - p[:n, 1])


def entity_screen_boxes(centers: np.ndarray, halves: np.ndarray, camera) -> np.ndarray:
    """Pixel boxes (n, 4) of world boxes (centre, half extents): the bounds of the projected corners of
    their z face nearer the camera. Blocks are thin slabs facing z, and seen at an angle the bounds of
    all 8 corners would also cover the gap beside the slab, where a caption or a row letter fits.

    Thousands of drawn blocks are obstacles every frame, so the corners are projected by linearity
    (the centre's clip coordinates plus each axis' share) rather than built as points."""
    n = len(centers)
    if not n:
        return np.zeros((0, 4))
    camera = View(camera)
    m = camera.view_projection
    toward = np.where(camera.position[2] >= centers[:, 2], 1.0, -1.0) * halves[:, 2]
    base = centers @ m[:, :3].T + m[:, 3] + toward[:, None] * m[:, 2]  # the near face's centre, clip space
    ax = halves[:, 0:1] * m[:, 0]
    ay = halves[:, 1:2] * m[:, 1]
    w, h = camera.viewport
    xs, ys = [], []
    for corner in (base - ax - ay, base + ax - ay, base - ax + ay, base + ax + ay):
        inv = 1.0 / corner[:, 3]
        xs.append(corner[:, 0] * inv)
        ys.append(corner[:, 1] * inv)
    xs, ys = np.stack(xs), np.stack(ys)
    return np.c_[(xs.min(0) + 1) * 0.5 * w, (1 - ys.max(0)) * 0.5 * h,
                 (xs.max(0) + 1) * 0.5 * w, (1 - ys.min(0)) * 0.5 * h]


def overlapping(a: np.ndarray, b: np.ndarray, gap: float = 0.0) -> np.ndarray:
    """(len(a), len(b)) whether boxes of a and b overlap (closer than ``gap`` counts)."""
    return ((a[:, None, 0] < b[None, :, 2] + gap) & (b[None, :, 0] < a[:, None, 2] + gap)
            & (a[:, None, 1] < b[None, :, 3] + gap) & (b[None, :, 1] < a[:, None, 3] + gap))


def greedy_keep(boxes: np.ndarray, gap: float = GAP_PX, group: np.ndarray | None = None) -> np.ndarray:
    """Which boxes the sequential greedy rule keeps, boxes ranked best first: a box stays when it
    conflicts with no box kept before it. Boxes that share a ``group`` (the placements of one label)
    always conflict. Computed in vectorised rounds (see the module docstring)."""
    n = len(boxes)
    if n <= 1:
        return np.ones(n, bool)
    conflicts = overlapping(boxes, boxes, gap)
    if group is not None:
        conflicts |= group[:, None] == group[None, :]
    blockers = np.tril(conflicts, k=-1)  # [j, i]: i ranks above j and they conflict
    kept = np.zeros(n, bool)
    dropped = np.zeros(n, bool)
    for _ in range(MAX_ROUNDS):
        undecided = ~(kept | dropped)
        if not undecided.any():
            break
        dropped |= undecided & (blockers & kept).any(axis=1)
        undecided = ~(kept | dropped)
        kept |= undecided & ~(blockers & undecided).any(axis=1)
    return kept


class Occupancy:
    """Which parts of the view are covered by obstacles (drawn blocks): a summed-area table on a grid."""

    def __init__(self, boxes: np.ndarray, size):
        # Cells grow past GRID_PX only for views beyond MAX_GRID_CELLS of them (a tiled 8K picture and up),
        # so the grid's memory stays bounded (about 24 bytes a cell) whatever the picture's size.
        self.cell = max(GRID_PX, int(np.ceil(np.sqrt(size[0] * size[1] / MAX_GRID_CELLS))))
        self.gw, self.gh = int(np.ceil(size[0] / self.cell)) + 1, int(np.ceil(size[1] / self.cell)) + 1
        diff = np.zeros((self.gh + 1, self.gw + 1), np.int32)
        if len(boxes):
            # Shrunk by a pixel: touching a block's edge is not covering it.
            c = self._cells(boxes + np.array([1.0, 1.0, -1.0, -1.0]))
            ok = (c[:, 2] > c[:, 0]) & (c[:, 3] > c[:, 1])
            x0, y0, x1, y1 = c[ok].T
            np.add.at(diff, (y0, x0), 1)
            np.add.at(diff, (y0, x1), -1)
            np.add.at(diff, (y1, x0), -1)
            np.add.at(diff, (y1, x1), 1)
        covered = (diff.cumsum(0, dtype=np.int32).cumsum(1, dtype=np.int32)[: self.gh, : self.gw] > 0).astype(np.int32)
        self.table = np.zeros((self.gh + 1, self.gw + 1), np.int32)
        self.table[1:, 1:] = covered.cumsum(0, dtype=np.int32).cumsum(1, dtype=np.int32)

    def _cells(self, boxes: np.ndarray) -> np.ndarray:
        """The grid cells each box touches (snapped outwards), clipped to the grid."""
        cells = np.c_[np.floor(boxes[:, :2] / self.cell), np.ceil(boxes[:, 2:] / self.cell)]
        cells[:, [0, 2]] = np.clip(cells[:, [0, 2]], 0, self.gw)
        cells[:, [1, 3]] = np.clip(cells[:, [1, 3]], 0, self.gh)
        return cells.astype(np.int64)

    def any_covered(self, boxes: np.ndarray) -> np.ndarray:
        """Whether each box touches a covered cell."""
        if not len(boxes):
            return np.zeros(0, bool)
        x0, y0, x1, y1 = self._cells(boxes).T
        t = self.table
        return (t[y1, x1] - t[y0, x1] - t[y1, x0] + t[y0, x0]) > 0


def covers(boxes: np.ndarray, obstacles: np.ndarray, size) -> np.ndarray:
    """Whether each box overlaps an obstacle by more than a pixel: pair by pair when that is cheap,
    else through the occupancy grid (thousands of drawn blocks)."""
    if len(boxes) * len(obstacles) <= DIRECT_PAIRS:
        return overlapping(boxes, obstacles + np.array([1.0, 1.0, -1.0, -1.0])).any(axis=1)
    return Occupancy(obstacles, size).any_covered(boxes)


def _unproject_onto(camera, pixels: np.ndarray, through: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """World points under ``pixels`` on the planes through ``through`` with ``normals``."""
    w, h = camera.viewport
    tan_half = np.tan(np.radians(camera.fov_y) / 2.0)
    ndc_x = 2.0 * pixels[:, 0] / w - 1.0
    ndc_y = 1.0 - 2.0 * pixels[:, 1] / h
    local = np.c_[ndc_x * tan_half * camera.aspect, ndc_y * tan_half, -np.ones(len(pixels))]
    rot = np.c_[camera.right, camera.up, -camera.forward]
    directions = local @ rot.T
    origin = np.asarray(camera.position, np.float64)
    denom = np.einsum("ij,ij->i", directions, normals)
    t = np.einsum("ij,ij->i", through - origin, normals) / np.where(np.abs(denom) > 1e-12, denom, 1e-12)
    return origin + directions * t[:, None]


def _caption_anchors(anchors, boxes, anchors_px, entity_boxes, billboard, camera) -> np.ndarray:
    """(n, _PLACES, 3) world anchors that put each label's box around its entity's box (see below)."""
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    ex0, ey0, ex1, ey1 = entity_boxes.T
    cx, cy = (ex0 + ex1) / 2, (ey0 + ey1) / 2
    # Desired box top-left corners of the placements, in order of preference: centred above, left,
    # right, centred below, then above and below aligned with the block's left or right edge (a
    # caption wider than its block, between neighbours).
    above, below, mid = ey0 - MARGIN_PX - bh, ey1 + MARGIN_PX, cy - bh / 2
    centred, flush_left, flush_right = cx - bw / 2, ex0, ex1 - bw
    lefts = np.stack([centred, ex0 - MARGIN_PX - bw, ex1 + MARGIN_PX, centred,
                      flush_left, flush_right, flush_left, flush_right], axis=1)
    tops = np.stack([above, mid, mid, below, above, above, below, below], axis=1)
    # The anchor keeps its place relative to the box.
    px = np.stack([lefts + (anchors_px[:, :1] - boxes[:, :1]), tops + (anchors_px[:, 1:2] - boxes[:, 1:2])], axis=2)
    n = len(anchors)
    forward = camera.forward
    normals = np.where(np.asarray(billboard, bool)[:, None], forward, np.array([0.0, 0.0, 1.0]))
    out = _unproject_onto(camera, px.reshape(-1, 2), np.repeat(anchors, _PLACES, axis=0),
                          np.repeat(normals, _PLACES, axis=0))
    return out.reshape(n, _PLACES, 3)


def lay_out(labels: np.ndarray, anchors: np.ndarray, heights: np.ndarray, billboard: np.ndarray,
            extents: np.ndarray, priority: np.ndarray, camera, ui_rects=None, placement=None,
            entity_boxes=None, obstacles=None) -> LaidOut:
    """Which of the passing labels are drawn, where and how big (see the module docstring).

    ``placement``: per label FIXED or CAPTION; ``entity_boxes``: (n, 4) screen boxes of the captions'
    entities; ``obstacles``: (m, 4) screen boxes no label may cover.
    """
    n = len(labels)
    if not n:
        return LaidOut()
    camera = View(camera)
    heights = np.asarray(heights, np.float64)
    line = line_heights(anchors, heights, billboard, camera)
    scale = np.maximum(1.0, LEGIBLE_PX / np.maximum(line, 1e-6))
    # Rank: priority first, then natural size on screen (a layer's title over a head's); lexsort's
    # last key is the primary one. Only the best ranked go on: boxes are computed for those alone.
    rank = np.lexsort((np.arange(n), -line, -np.asarray(priority, np.float64)))
    over_limit = max(0, n - MAX_CANDIDATES)
    rank = rank[:MAX_CANDIDATES]
    m = len(rank)

    # Candidate placements: the anchor itself for fixed labels, several around the entity for captions,
    # in rank order (a label's candidates together, in order of preference).
    moving = np.zeros(m, bool)
    if placement is not None and entity_boxes is not None:
        moving = (np.asarray(placement)[rank] == CAPTION) & np.isfinite(entity_boxes[rank]).all(axis=1)
    counts = np.where(moving, _PLACES, 1)
    owner = np.repeat(np.arange(m), counts)            # candidate -> rank position of its label
    first = np.cumsum(counts) - counts
    flat_anchor = np.empty((len(owner), 3))
    flat_anchor[first[~moving]] = anchors[rank[~moving]]
    grow = np.empty(len(owner))
    grow[first[~moving]] = scale[rank[~moving]]        # a fixed label stays where its natural size was taken
    if moving.any():
        r = rank[moving]
        scaled, _ = screen_boxes(anchors[r], heights[r] * scale[r], billboard[r], extents[r], camera)
        anchors_px = camera.project(anchors[r])[:, :2]
        around = _caption_anchors(anchors[r], scaled, anchors_px, entity_boxes[r], billboard[r], camera)
        at = (first[moving][:, None] + np.arange(_PLACES)).reshape(-1)
        flat_anchor[at] = around.reshape(-1, 3)
        # A moved caption's natural size is taken again where it went (perspective changes it a little).
        src_at = rank[owner[at]]
        grow[at] = np.maximum(1.0, LEGIBLE_PX / np.maximum(
            line_heights(flat_anchor[at], heights[src_at], billboard[src_at], camera), 1e-6))
    valid = np.ones(len(owner), bool)
    src = rank[owner]
    # Exact boxes at each candidate's own anchor and drawn size: drawn = natural size x grow.
    c_boxes, c_line = screen_boxes(flat_anchor, heights[src] * grow, billboard[src], extents[src], camera)
    w, h = camera.viewport
    depth = (flat_anchor - camera.position) @ camera.forward
    valid &= (depth > camera.near) & (c_line >= LEGIBLE_PX - 1e-3)
    valid &= (c_boxes[:, 2] > 0) & (c_boxes[:, 0] < w) & (c_boxes[:, 3] > 0) & (c_boxes[:, 1] < h)
    under_ui = np.zeros(len(valid), bool)
    if ui_rects is not None and len(ui_rects):
        under_ui = overlapping(c_boxes, np.asarray(ui_rects, np.float64).reshape(-1, 4)).any(axis=1)
    over_blocks = np.zeros(len(valid), bool)
    if obstacles is not None and len(obstacles):
        over_blocks = covers(c_boxes, obstacles, (w, h))
    free = valid & ~under_ui & ~over_blocks
    cand = np.flatnonzero(free)
    keep = greedy_keep(c_boxes[cand], group=owner[cand])
    chosen = cand[keep]
    placed = np.zeros(m, bool)
    placed[owner[chosen]] = True
    # Back in the selector's order, which the glyph gather expects.
    order = np.argsort(src[chosen], kind="stable")
    chosen = chosen[order]
    label_pos = src[chosen]

    def per_label(mask):  # whether any of a label's candidates has ``mask``
        return np.bincount(owner[mask], minlength=m) > 0

    def hidden_by(mask):  # labels placed nowhere that lost some valid placement to ``mask``
        return int((per_label(valid & mask) & ~placed).sum())

    return LaidOut(labels[label_pos], flat_anchor[chosen], c_boxes[chosen], c_line[chosen], grow[chosen],
                   hidden_collisions=int((~placed & per_label(free)).sum()),
                   hidden_under_ui=hidden_by(under_ui), hidden_over_blocks=hidden_by(over_blocks),
                   hidden_over_limit=over_limit)
