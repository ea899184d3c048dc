"""Attention rollout and attention flow as token-to-token ribbons between layers, in the 3D scene beside the
live model: a row of the input's tokens before the first layer and after every layer, and between two
rows a ribbon from token j below to token i above for every causal edge of the layer graph (Abnar &
Zuidema 2020). A ribbon's width and colour are the share of the last token's rollout (or flow) that goes
through that edge (models/attention_analysis.py: rollout_edges, flow_edges; each layer's ribbons sum to 1);
the input row's markers are that token's rollout (flow) row. Hover a ribbon for its value.

The values come from the heads view's worker (scenes/heads_view.py); here the frame only writes colours and
widths into entities spawned once per input length (one vectorised write per result) and finds the hovered
ribbon by a vectorised distance to every ribbon on the ladder's plane. The ribbons are not pickable, so the
model's own picking never meets an entity it does not know.
"""
from __future__ import annotations

import numpy as np

from llmviz.engine.render.backend import MATERIAL_TRANSLUCENT
from llmviz.engine.render.colormaps import COLORMAP_MAGMA, LUTS
from llmviz.scenes.entity_hiding import set_hidden
from llmviz.scenes.longctx_view import wrap_words

MODES = ("off", "rollout", "flow")
SHOWN_FROM = 0.002         # ribbons carrying less than this share are not drawn (hover still reads them)
WIDTH_MAX = 0.9            # the widest ribbon, in token spacings, for a share of 1
LADDER_Z = 0.5
CAPTION_LINES, CAPTION_CHARS = 4, 72
CAPTIONS = {
    "rollout": "attention rollout (Abnar & Zuidema 2020) into the last token {last!r}: each ribbon is the share "
               "of its rollout through that edge, (A-hat_L ... A-hat_l+1)[last, i] x A-hat_l[i, j], "
               "A-hat = 0.5 A + 0.5 I (heads' mean, rows renormalised); each layer's ribbons sum to 1; "
               "H: the heads view, where the ribbons are switched",
    "flow": "attention flow (Abnar & Zuidema 2020) into the last token {last!r}: each ribbon is what its edge "
            "carries in the maximum flows to every input token (Edmonds-Karp's routing: a max flow's routing "
            "is one of several, its value is not), over their sum; capacities A-hat = 0.5 A + 0.5 I; "
            "H: the heads view, where the ribbons are switched",
}


def ladder_rows(layout, blocks: list[int]) -> tuple[np.ndarray, float, float]:
    """(y of each row: the input, then after each traced layer), the x the ladder ends at and its width:
    beside the model's root group, each row level with the edge of its layer's group the stream leaves by."""
    cx, cy, _ = layout.group_center[0]
    sx, sy, _ = layout.group_size[0]
    groups = [layout.group_index(f"blocks.{b}") for b in blocks]
    centre, size = layout.group_center[groups], layout.group_size[groups]
    down = len(groups) < 2 or centre[-1, 1] <= centre[0, 1]     # the stack goes down the screen
    sign = -1.0 if down else 1.0
    rows = np.r_[centre[0, 1] - sign * size[0, 1] / 2, centre[:, 1] + sign * size[:, 1] / 2]
    width = max(0.6 * float(np.ptp(rows)), 1.0)
    return rows, float(cx - sx / 2 - 0.15 * width), width


class AttentionRibbons:
    """The ribbons and token markers of one model's scene; `show(result, mode)` writes a result in."""

    def __init__(self, world, layout):
        self.world, self.layout = world, layout
        self.mode = "off"
        self._shape = None          # (T, L, blocks) the entities were made for
        self.ids = self.markers = self.captions = None
        self.edges = None           # (n, 3): layer, i (token above), j (token below) of each ribbon
        self.values = None          # (n,) the shown mode's share per ribbon
        self.ends = None            # (n, 4): x0, y0, x1, y1 of each ribbon (world, on the ladder's plane)
        self.spacing = 1.0
        self._labels: list[str] = []
        self._shown = None

    # ---- entities ----
    def _build(self, T: int, blocks: list[int], labels: list[str]) -> None:
        self.destroy()
        rows, x_end, width = ladder_rows(self.layout, blocks)
        L = len(blocks)
        self.spacing = width / max(T, 1)
        xs = x_end - width + (np.arange(T) + 0.5) * self.spacing
        layer, i, j = (a.ravel() for a in np.meshgrid(np.arange(L), np.arange(T), np.arange(T), indexing="ij"))
        causal = j <= i
        self.edges = np.c_[layer[causal], i[causal], j[causal]]
        self.ends = np.c_[xs[self.edges[:, 2]], rows[self.edges[:, 0]], xs[self.edges[:, 1]], rows[self.edges[:, 0] + 1]]
        n = len(self.edges)
        d = self.ends[:, 2:] - self.ends[:, :2]
        length = np.hypot(d[:, 0], d[:, 1])
        angle = np.arctan2(d[:, 1], d[:, 0])
        rotation = np.c_[np.zeros(n), np.zeros(n), np.sin(angle / 2), np.cos(angle / 2)]
        centres = np.c_[(self.ends[:, 0] + self.ends[:, 2]) / 2, (self.ends[:, 1] + self.ends[:, 3]) / 2,
                        np.full(n, LADDER_Z)]
        self._length = length
        self.ids = self.world.spawn(n, transform={"position": centres, "scale": np.c_[length, np.full(n, 1e-3),
                                                                                        np.full(n, 0.01)],
                                                  "rotation": rotation, "rotated": np.ones(n, bool)},
                                    bounds={}, renderable={"color": np.tile([1.0, 1.0, 1.0, 0.9], (n, 1)),
                                                           "material": MATERIAL_TRANSLUCENT})
        # a marker per token and row; the input row's and the top row's carry the tokens' text
        r, t = (a.ravel() for a in np.meshgrid(np.arange(L + 1), np.arange(T), indexing="ij"))
        m = len(r)
        side = 0.35 * self.spacing
        self.markers = self.world.spawn(m, transform={"position": np.c_[xs[t], rows[r], np.full(m, LADDER_Z)],
                                                      "scale": np.tile([side, side, side], (m, 1))},
                                        bounds={}, renderable={"color": np.tile([0.55, 0.55, 0.6, 1.0], (m, 1))})
        shown = [{"\n": "\\n", " ": "_"}.get(c, c) for c in labels]
        ends = np.flatnonzero((r == 0) | (r == L))
        offset = np.where(r[ends] == 0, -1.0, 1.0) * (0.6 * self.spacing) * (1 if rows[-1] > rows[0] else -1)
        self.world.add_labels(self.markers[ends], [shown[k] for k in t[ends]], height=0.8 * self.spacing,
                              offset=np.c_[np.zeros(len(ends)), offset, np.zeros(len(ends))], min_px=5.0,
                              color=(0.85, 0.9, 1.0, 1.0))
        row_names = ["input"] + [f"after layer {b}" for b in blocks]
        holders = self.world.spawn(L + 1, transform={"position": np.c_[np.full(L + 1, x_end - width - 0.5 * self.spacing),
                                                                       rows, np.full(L + 1, LADDER_Z)],
                                                     "scale": np.full((L + 1, 3), 1e-3)}, bounds={},
                                   renderable={"color": np.zeros((L + 1, 4)), "material": MATERIAL_TRANSLUCENT})
        self.world.add_labels(holders, row_names, height=0.9 * self.spacing, min_px=5.0,
                              offset=np.tile([-2.5 * self.spacing, 0.0, 0.0], (L + 1, 1)), color=(0.7, 0.75, 0.8, 1.0))
        # the caption above the ladder, CAPTION_LINES lines at most, the first on top
        top = max(rows) + 2.5 * self.spacing + 1.2 * self.spacing * np.arange(CAPTION_LINES)[::-1]
        caption = self.world.spawn(CAPTION_LINES, transform={"position": np.c_[np.full(CAPTION_LINES, x_end - width / 2),
                                                                               top, np.full(CAPTION_LINES, LADDER_Z)],
                                                             "scale": np.full((CAPTION_LINES, 3), 1e-3)}, bounds={},
                                   renderable={"color": np.zeros((CAPTION_LINES, 4)), "material": MATERIAL_TRANSLUCENT})
        self.world.add_labels(caption, [""] * CAPTION_LINES, height=0.7 * self.spacing, min_px=4.0,
                              color=(1.0, 0.85, 0.4, 1.0), offset=np.zeros((CAPTION_LINES, 3)))
        self.captions = (holders, caption)
        self._caption_ids = caption
        self._shape = (T, L, tuple(blocks))
        self._labels = labels
        self._width = width

    def destroy(self) -> None:
        for ids in (self.ids, self.markers, *(self.captions or ())):
            if ids is not None:
                self.world.destroy(ids)
        self.ids = self.markers = self.captions = None
        self._shape = None

    def _hide_all(self, hidden: bool) -> None:
        for ids in (self.ids, self.markers, *(self.captions or ())):
            if ids is not None:
                set_hidden(self.world, ids, hidden)

    # ---- values ----
    def show(self, result, mode: str) -> None:
        """Write `result`'s (heads_view.HeadsResult) rollout or flow ribbons in, or hide them (mode "off" or
        no values for that mode); only when the result or the mode changed."""
        key = (id(result), mode)
        if key == self._shown:
            return
        self._shown = key
        self.mode = mode
        ribbons = None if result is None or mode == "off" else result.ribbons.get(mode)
        if ribbons is None:
            self._hide_all(True)
            return
        edges, inputs = ribbons
        current = result.current
        T, L = len(current.tokens), len(current.blocks)
        if self._shape != (T, L, tuple(current.blocks)):
            self._build(T, list(current.blocks), list(current.labels))
        self._hide_all(False)
        self.values = edges[self.edges[:, 0], self.edges[:, 1], self.edges[:, 2]]
        lut = LUTS[COLORMAP_MAGMA]
        level = np.sqrt(np.clip(self.values, 0.0, 1.0))
        colour = lut[np.clip((0.25 + 0.75 * level) * (len(lut) - 1), 0, len(lut) - 1).astype(np.int64)]
        alpha = 0.35 + 0.65 * level
        width = np.maximum(WIDTH_MAX * self.spacing * level, 0.02 * self.spacing)
        scale = np.c_[self._length, width, np.full(len(width), 0.01)]
        self.world.set("transform", self.ids, scale=scale)
        self.world.set("renderable", self.ids, color=np.c_[colour[:, :3], alpha])
        set_hidden(self.world, self.ids, self.values < SHOWN_FROM)
        # the input row's markers: what reaches each input token, the rest grey
        marker_rgb = np.tile([0.55, 0.55, 0.6], (len(self.markers), 1))
        input_level = np.sqrt(np.clip(inputs, 0.0, 1.0))
        marker_rgb[:T] = lut[np.clip((0.25 + 0.75 * input_level) * (len(lut) - 1), 0, len(lut) - 1).astype(np.int64)][:, :3]
        self.world.set("renderable", self.markers, color=np.c_[marker_rgb, np.ones(len(marker_rgb))])
        lines = wrap_words(CAPTIONS[mode].format(last=current.labels[-1]), CAPTION_CHARS)[:CAPTION_LINES]
        lines += [""] * (CAPTION_LINES - len(lines))
        start = len(self.world.labels)
        self.world.labels.extend(lines)
        self.world.set("label", self._caption_ids, text_index=start + np.arange(CAPTION_LINES))
        self.inputs = inputs

    # ---- hover ----
    def hovered(self, origin: np.ndarray, direction: np.ndarray) -> int | None:
        """The ribbon under a pointer ray (index into edges), or None: the nearest drawn ribbon whose band
        (half its width, at least a fifth of a token spacing) the ray meets on the ladder's plane."""
        if self.ids is None or self.values is None or self.mode == "off" or abs(direction[2]) < 1e-9:
            return None
        t = (LADDER_Z - origin[2]) / direction[2]
        if t <= 0:
            return None
        p = (origin + t * direction)[:2]
        a, b = self.ends[:, :2], self.ends[:, 2:]
        ab = b - a
        u = np.clip(((p - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-12), 0.0, 1.0)
        distance = np.hypot(*(a + u[:, None] * ab - p).T)
        reach = np.maximum(0.5 * WIDTH_MAX * self.spacing * np.sqrt(np.clip(self.values, 0, 1)), 0.2 * self.spacing)
        near = (distance <= reach) & (self.values >= SHOWN_FROM)
        if not near.any():
            return None
        candidates = np.flatnonzero(near)
        return int(candidates[np.argmin(distance[candidates])])

    def describe(self, index: int) -> str:
        layer, i, j = (int(v) for v in self.edges[index])
        blocks = self._shape[2]
        below = "the input" if layer == 0 else f"layer {blocks[layer - 1]}"
        name = {"\n": "\\n"}
        ti, tj = name.get(self._labels[i], self._labels[i]), name.get(self._labels[j], self._labels[j])
        what = "rollout" if self.mode == "rollout" else "flow"
        return (f"{what}: token {j} {tj!r} after {below} -> token {i} {ti!r} after layer {blocks[layer]}: "
                f"{self.values[index]:.4f} of the last token's {what} goes through this edge")
