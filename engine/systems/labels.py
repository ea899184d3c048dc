"""Per-frame label selection: the glyph rows of every visible label that is big enough on screen.

The layout of each label's text is cached, and the concatenation of all labels' glyphs (one
table, with the label each row belongs to) is rebuilt only when the world's structure or the
label texts change. A frame then is a handful of numpy operations on the labels in view only
(the visible slots map to their labels through a slot -> label array kept with the table): which
pass (in front of the camera, at least ``min_px`` tall), which glyph rows belong to them, and a
gather of the per-label columns (anchor, height, colour) that may change every frame. Nothing per
frame costs in proportion to the world's size or its number of labels.
"""
from __future__ import annotations

import numpy as np

from ..render.backend import GLYPH_FLOATS, GLYPH_SLICES
from ..render.text import EM_PX, LAYOUT_FLOATS, PAD_PX, GlyphAtlas
from .label_layout import LaidOut, View, entity_screen_boxes, lay_out

CAPTION_BLOCK_PX = 40.0  # a caption shows once its block is this big on screen (or the caption min_px tall)
OBSTACLE_MIN_PX = 8.0  # drawn blocks at least this big on screen (both sides) keep labels off, and so do
OBSTACLE_THIN_PX = 3.0  # thin ones (a column of a table over time) at least this wide with the same area

# A glyph quad carries the distance field's padding around the ink; a text's box leaves it out.
_INK_INSET_EM = (PAD_PX - 1) / EM_PX


def text_extents(table: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(n, 4) ink box (x0, y0, x1, y1) in em of each text whose glyph rows are table[start:start+count]."""
    out = np.zeros((len(starts), 4), np.float32)
    has = counts > 0
    if not has.any():
        return out
    x0, y0 = table[:, 0], table[:, 1]
    x1, y1 = x0 + table[:, 2], y0 + table[:, 3]
    first = starts[has]
    out[has, 0] = np.minimum.reduceat(x0, first) + _INK_INSET_EM
    out[has, 1] = np.minimum.reduceat(y0, first) + _INK_INSET_EM
    out[has, 2] = np.maximum.reduceat(x1, first) - _INK_INSET_EM
    out[has, 3] = np.maximum.reduceat(y1, first) - _INK_INSET_EM
    return out

# The glyph layout columns (offset, size, uv) sit contiguously in GLYPH_LAYOUT, in layout order.
_LAYOUT_COLUMNS = slice(GLYPH_SLICES["offset"].start, GLYPH_SLICES["uv"].stop)
assert _LAYOUT_COLUMNS.stop - _LAYOUT_COLUMNS.start == LAYOUT_FLOATS


class LabelSelector:
    """Turns the world's label components into glyph rows (GLYPH_LAYOUT) for the renderer.

    To change a label's text, append the new string to ``world.labels`` and point its
    ``text_index`` at it (strings edited in place are not noticed).
    """

    def __init__(self, atlas: GlyphAtlas):
        self.atlas = atlas
        self._layouts: dict[str, np.ndarray] = {}  # text -> (n, LAYOUT_FLOATS), kept across rebuilds
        self._version = None
        self._text_index = np.empty(0, np.int32)
        self._distinct: dict[str, int] = {}  # text -> its index in the per-text arrays below
        self._starts = self._counts = np.zeros(0, np.int64)
        self._extents = np.zeros((0, 4), np.float32)
        self.slots = np.empty(0, np.int64)              # label entities, in table order
        self.table = np.empty((0, LAYOUT_FLOATS), np.float32)  # the glyph quads of every distinct text
        self.label_first_row = np.empty(0, np.int64)    # per label: its first table row...
        self.label_rows = np.empty(0, np.int64)         # ...and how many rows it has
        self._label_of_slot = np.full(1, -1, np.int64)  # world slot -> its index in self.slots, or -1
        self.label_extent = np.empty((0, 4), np.float32)  # per label: its text's ink box in em
        self.ui_rects = np.empty((0, 4))  # view pixels (x0, y0, x1, y1) the UI covers: no label goes there
        self.last = LaidOut()             # what the last frame drew, for reports and tests
        self._layout_key, self._layout_out = None, None  # the last layout's inputs and glyph rows

    def layout(self, text: str) -> np.ndarray:
        glyphs = self._layouts.get(text)
        if glyphs is None:
            glyphs = self._layouts[text] = self.atlas.layout(text)
        return glyphs

    def _stale(self, world) -> bool:
        return self._version != world.structure_version

    def _retext_changed(self, world, labels: np.ndarray) -> None:
        """A label's text can be swapped with world.set (no structural change): of the labels about to
        be drawn, those whose text index moved get their new text's rows (a hidden label's new text is
        noticed when it comes into view). Only the changed labels are touched: a live model rewriting
        its row letters costs a fraction of a millisecond, not a rebuild of every label."""
        current = world.column("label", "text_index")[self.slots[labels]]
        moved = labels[current != self._text_index[labels]]
        if not len(moved):
            return
        texts = world.labels
        for label, index in zip(moved.tolist(), world.column("label", "text_index")[self.slots[moved]].tolist()):
            text = texts[index] if 0 <= index < len(texts) else None
            distinct = self._distinct.get(text) if text is not None else -1
            if distinct is None:  # a string no label had: lay it out once and add its rows
                glyphs = self.layout(text)
                distinct = self._distinct[text] = len(self._starts)
                self._starts = np.append(self._starts, len(self.table))
                self._counts = np.append(self._counts, len(glyphs))
                self._extents = np.vstack([self._extents, text_extents(glyphs, np.zeros(1, np.int64),
                                                                       np.array([len(glyphs)]))])
                self.table = np.concatenate([self.table, glyphs])
            self.label_first_row[label] = self._starts[distinct] if distinct >= 0 else 0
            self.label_rows[label] = self._counts[distinct] if distinct >= 0 else 0
            self.label_extent[label] = self._extents[distinct] if distinct >= 0 else 0.0
            self._text_index[label] = index

    def rebuild(self, world) -> None:
        """Re-derive the glyph table from the label components (on structural change only)."""
        slots = world.query("label")
        text_index = world.column("label", "text_index")[slots].copy()
        has_text = (text_index >= 0) & (text_index < len(world.labels))
        # Lay out each distinct string once (on a structural change only, not per frame).
        texts = world.labels
        distinct: dict[str, int] = {}
        inverse = np.fromiter((distinct.setdefault(texts[i], len(distinct)) if ok else -1
                               for i, ok in zip(text_index.tolist(), has_text.tolist())), np.int64, len(slots))
        empty = np.zeros((0, LAYOUT_FLOATS), np.float32)
        layouts = [self.layout(text) for text in distinct] + [empty]  # index -1: no text
        unique_counts = np.array([len(g) for g in layouts], np.int64)
        unique_starts = np.concatenate([[0], np.cumsum(unique_counts)[:-1]])
        unique_table = np.concatenate(layouts) if layouts else np.zeros((0, LAYOUT_FLOATS), np.float32)
        # Labels sharing a text share its rows: the table holds each distinct text once (a big model's
        # hundred thousand captions are a few hundred texts).
        self.slots = slots
        self.table = unique_table
        extents = text_extents(unique_table, unique_starts, unique_counts)
        self.label_first_row = unique_starts[inverse]
        self.label_rows = unique_counts[inverse]
        self.label_extent = extents[inverse]
        # Per distinct text (the last row: no text), for labels whose text changes later.
        self._distinct = distinct
        self._starts, self._counts, self._extents = unique_starts, unique_counts, extents
        self._label_of_slot = np.full(world.size + 1, -1, np.int64)
        self._label_of_slot[slots] = np.arange(len(slots))
        self._text_index = text_index
        self._version = world.structure_version
        self._layout_key = None

    @staticmethod
    def anchors(world, slots: np.ndarray) -> np.ndarray:
        """World anchor of labels: their entity's box centre (or position) plus the label offset."""
        bounds = world["world_bounds"]
        center = np.column_stack((bounds["cx"][slots], bounds["cy"][slots], bounds["cz"][slots]))
        position = world.column("transform", "position")[slots]
        base = np.where(bounds.has[slots][:, None], center, position)
        return base + world.column("label", "offset")[slots]

    def in_view(self, visible) -> np.ndarray:
        """Labels (indices into self.slots, ascending) of the visible entities.

        ``visible``: the visible slots (non-negative) in any order, duplicates allowed
        (VisibilityResult.in_view), or a boolean mask over slots.
        """
        visible = np.asarray(visible)
        if visible.dtype == bool:
            return np.flatnonzero(visible[self.slots])
        # The map ends in one -1 that slots past it clip to (np.unique costs 40 µs: sort and check instead).
        labels = np.take(self._label_of_slot, visible, mode="clip")
        labels = np.sort(labels[labels >= 0])  # table order, as the mask gives it
        if len(labels) > 1 and not (labels[1:] > labels[:-1]).all():
            labels = np.unique(labels)
        return labels

    def passing(self, world, candidates: np.ndarray, camera) -> tuple[np.ndarray, np.ndarray]:
        """Of the candidate labels (indices into self.slots), those in front and at least min_px tall
        (a caption also when its block is at least CAPTION_BLOCK_PX across on screen: a big model's
        blocks are huge beside their captions), and their anchors."""
        slots = self.slots[candidates]
        anchors = self.anchors(world, slots)
        depth = (anchors - camera.position) @ np.asarray(camera.forward)
        near = camera.focal_px / np.maximum(depth, 1e-9)
        pixels = world.column("label", "height")[slots] * near
        big_enough = pixels >= world.column("label", "min_px")[slots]
        bounds = world["world_bounds"]
        caption = (world.column("label", "placement")[slots] != 0) & bounds.has[slots]
        big_enough |= caption & (2.0 * bounds["radius"][slots] * near >= CAPTION_BLOCK_PX)
        keep = (depth > camera.near) & big_enough
        return candidates[keep], anchors[keep]

    @staticmethod
    def boxes_of(world, slots: np.ndarray, camera) -> np.ndarray:
        """Screen boxes (n, 4) of the entities' world bounds; NaN rows for those without bounds."""
        bounds = world["world_bounds"]
        out = np.full((len(slots), 4), np.nan)
        has = bounds.has[slots]
        s = slots[has]
        centers = np.column_stack((bounds["cx"][s], bounds["cy"][s], bounds["cz"][s]))
        halves = np.column_stack((bounds["hx"][s], bounds["hy"][s], bounds["hz"][s]))
        out[has] = entity_screen_boxes(centers, halves, camera)
        return out

    @staticmethod
    def obstacle_slots(world, drawn) -> np.ndarray:
        """Of the drawn slots, the opaque boxes no label may cover (translucent group proxies may be)."""
        if drawn is None:
            return np.zeros(0, np.int64)
        drawn = np.asarray(drawn, np.int64)
        drawn = drawn[world["world_bounds"].has[drawn]]
        return drawn[world.column("renderable", "material")[drawn] == 0]

    def __call__(self, world, visible: np.ndarray, camera, drawn=None) -> np.ndarray:
        """Glyph rows (n, GLYPH_FLOATS) float32 of the labels laid out this frame.

        ``visible``: the visible slots (cheapest: the cost then follows them) or a mask over slots.
        ``drawn``: the slots drawn this frame; their opaque boxes are obstacles labels keep off.
        """
        if self._stale(world):
            self.rebuild(world)
        if not len(self.slots):
            return np.zeros((0, GLYPH_FLOATS), np.float32)
        candidates = self.in_view(visible)
        self._retext_changed(world, candidates)
        candidates = candidates[self.label_rows[candidates] > 0]  # a text with no ink draws nothing
        labels, anchors = self.passing(world, candidates, camera)
        slots = self.slots[labels]
        heights = world.column("label", "height")[slots]
        billboard = world.column("label", "billboard")[slots]
        view = View(camera)
        placement = world.column("label", "placement")[slots]
        moving = placement != 0
        entity_boxes = np.full((len(slots), 4), np.nan)
        entity_boxes[moving] = self.boxes_of(world, slots[moving], view)
        obstacles = self.boxes_of(world, self.obstacle_slots(world, drawn), view)
        # A speck of a block (a far layer's parts) may sit under a label: only blocks big enough to read count.
        w, h = obstacles[:, 2] - obstacles[:, 0], obstacles[:, 3] - obstacles[:, 1]
        big = ((w >= OBSTACLE_MIN_PX) & (h >= OBSTACLE_MIN_PX)) | (
            (np.minimum(w, h) >= OBSTACLE_THIN_PX) & (w * h >= OBSTACLE_MIN_PX ** 2))
        obstacles = obstacles[big]
        colors = world.column("label", "color")[slots]
        # A still camera over a still scene (most frames) lays out what it laid out last frame.
        key = b"".join(np.ascontiguousarray(a).tobytes() for a in (
            view.view_projection, np.asarray(view.viewport, np.float64), labels, anchors, heights, colors,
            self.label_first_row[labels], np.asarray(self.ui_rects, np.float64), obstacles, entity_boxes))
        if key == self._layout_key:
            return self._layout_out
        laid = lay_out(labels, anchors, heights, billboard, self.label_extent[labels],
                       world.column("label", "priority")[slots], view, self.ui_rects, placement,
                       entity_boxes, obstacles)
        self.last = laid
        keep = np.searchsorted(labels, laid.labels)  # both ascending: the drawn ones among the passing
        labels, anchors, slots = labels[keep], laid.anchors, slots[keep]
        # One template row per drawn label holds its per-label columns...
        template = np.empty((len(labels), GLYPH_FLOATS), np.float32)
        template[:, GLYPH_SLICES["anchor"]] = anchors
        template[:, GLYPH_SLICES["height"]] = (heights[keep] * laid.scale)[:, None]
        template[:, GLYPH_SLICES["color"]] = colors[keep]
        template[:, GLYPH_SLICES["billboard"]] = billboard[keep, None]
        # ...repeated once per glyph, then the glyph quads are filled in from the table rows of
        # those labels (built from their ranges: the cost follows the glyphs drawn, not all glyphs).
        counts = self.label_rows[labels]
        out = np.repeat(template, counts, axis=0)
        rows = np.repeat(self.label_first_row[labels] - (np.cumsum(counts) - counts), counts)
        rows += np.arange(len(rows))
        out[:, _LAYOUT_COLUMNS] = self.table[rows]
        self._layout_key, self._layout_out = key, out
        return out
