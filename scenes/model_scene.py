"""Turns a model's layout into engine entities: blocks, hierarchy groups, labels and data regions.

Everything is spawned in a few bulk calls from the layout's columns. A block whose true
dimensions fit gets a region of the data atlas, one texel per cell, so a trace (or weights)
can be shown by writing arrays into those regions; blocks of log-compressed tensors stay flat
colour. Groups are the engine's hierarchy: far away, a layer or a head bank is one
translucent proxy box, and its children are never visited. The residual stream and the lines
between blocks (scenes/flow_lines.py) are thin boxes in the same hierarchy; values written to
blocks send pulses along the lines into them (scenes/flow_pulses.py, registered by `attach`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from llmviz.engine.ecs.world import World
from llmviz.engine.render.backend import MATERIAL_TRANSLUCENT
from llmviz.engine.render.colormaps import COLORMAP_DIVERGING, COLORMAP_VIRIDIS
from llmviz.models.attention_mask import key_visible, masked_scores_template
from llmviz.models.spec import ModelSpec
from llmviz.engine.systems.label_layout import CAPTION
from llmviz.scenes.flow_dim import FlowDimming
from llmviz.scenes.flow_lines import FlowLines, flow_lines
from llmviz.scenes.flow_pulses import FlowPulses
from llmviz.scenes.layout import Layout, layout_model

BLOCK_LOD_PX = (22.0, 3.0, 0.8, 0.0)  # cells, flat box, impostor quad, then nothing
PROXY_LOD_PX = (2.0, 0.5, 0.0, 0.0)
LINE_LOD_PX = (1e30, 0.5, 0.0, 0.0)  # connection lines: always the flat box (no cells, no outline)
# A head opens with its bank (0): a bank never mixes detailed heads with stand-ins.
GROUP_EXPAND_PX = {"layer": 140.0, "bank": 110.0, "head": 0.0, "other": 90.0}
SMALL_MODEL_BLOCKS = 4000  # above this, groups open later (their expand_px) so fewer blocks draw at once
# Where labels would collide on screen the higher priority stays: section titles over block captions.
TITLE_PRIORITY = 2.0
CAPTION_PRIORITY = 1.0
# A caption shows once its natural size reaches this; the layout then draws it legible (11 px) where it fits.
CAPTION_MIN_PX = 1.0
# Section titles likewise: "Transformer 12" names a closed layer at overview distance; the titles of
# what is inside a layer (its attention, MLP, heads) wait until they are nearer legible size.
TITLE_MIN_PX = 0.5
INNER_TITLE_MIN_PX = 1.5
GROUP_PROXY_ALPHA = 0.55

# Tensors whose values are probabilities (0..1) use a sequential map, and so does Mamba's decay
# exp(ΔA), in (0, 1] (Δ > 0, A < 0); everything else is signed.
_PROBABILITY = re.compile(r"(softmax|probs|\.mamba\.dA(\.\d+)?|\.time_mix\.alpha)$")  # RWKV-4's α: softmax weights
_TOKENS = re.compile(r"^tokens$")
_NONNEGATIVE = re.compile(r"\.std$")


def value_style(tensor_id: str, values: np.ndarray) -> tuple[tuple[float, float], int]:
    """Colour range and map for a tensor's values: probabilities 0..1, signed values symmetric around 0."""
    if _PROBABILITY.search(tensor_id):
        return (0.0, 1.0), COLORMAP_VIRIDIS
    finite = values[np.isfinite(values)]
    top = float(np.abs(finite).max()) if finite.size else 1.0
    top = top if top > 0 else 1.0
    if _TOKENS.search(tensor_id):
        return (0.0, max(1.0, top)), COLORMAP_VIRIDIS
    if _NONNEGATIVE.search(tensor_id):
        return (0.0, top), COLORMAP_VIRIDIS
    return (-top, top), COLORMAP_DIVERGING


def _group_colors(layout: Layout) -> np.ndarray:
    """Each group's proxy takes the mean colour of every block below it, so a far layer looks like its parts."""
    n = len(layout.group_ids)
    total = np.zeros((n, 3))
    count = np.zeros(n)
    np.add.at(total, layout.group, layout.color)
    np.add.at(count, layout.group, 1.0)
    # Children are listed after their parents: fold sums upward from the deepest groups.
    for g in range(n - 1, 0, -1):
        parent = layout.group_parent[g]
        if parent >= 0:
            total[parent] += total[g]
            count[parent] += count[g]
    return (total / np.maximum(count, 1)[:, None]).astype(np.float32)


def _group_kind(group_id: str) -> str:
    if re.fullmatch(r"(\w+\.)?blocks\.\d+", group_id):  # a decoder's layers and an encoder's ("audio.blocks.3")
        return "layer"
    if group_id.endswith(".heads") or group_id.endswith(".experts"):
        return "bank"
    if re.search(r"\.head\.\d+$", group_id):
        return "head"
    return "other"


@dataclass
class ModelScene:
    spec: ModelSpec
    layout: Layout
    world: World
    block_slots: np.ndarray  # layout row -> entity slot
    group_slots: np.ndarray  # layout group -> entity slot
    regions: np.ndarray  # layout row -> (x, y, cols, rows) in the data atlas; cols 0 where no data
    row_of_slot: np.ndarray = field(default=None)  # entity slot -> layout row, -1 for groups and labels
    flow: FlowLines | None = None  # the residual stream and the connections, as paths and segments
    line_slots: np.ndarray = field(default=None)  # flow segment -> entity slot
    pulses: FlowPulses | None = field(default=None)  # light along the lines when values arrive
    # Layout rows whose cells show their attention mask from the start (−∞ where a score is removed).
    masked_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self):
        # Values written to a masked block keep its mask: the cells a mask removes show −∞ (hatched), whether
        # the model wrote −∞ there (attention's scores) or a zero nothing could change (a scan's later tokens).
        self._mask_prefix = {row: prefix for row, prefix in self.layout.masked_scores()}
        self.row_of_slot = np.full(self.world.size, -1, np.int64)
        self.row_of_slot[self.block_slots] = np.arange(len(self.block_slots))
        if self.flow is not None and self.pulses is None:
            self.pulses = FlowPulses(self.flow, self.world, self.line_slots, len(self.layout.ids))

    def tensor_at(self, slot: int) -> str | None:
        row = self.row_of_slot[slot] if 0 <= slot < len(self.row_of_slot) else -1
        return self.layout.ids[row] if row >= 0 else None

    def slot_of(self, tensor_id: str) -> int:
        return int(self.block_slots[self.layout.index(tensor_id)])

    def has_data(self, tensor_id: str) -> bool:
        return self.regions[self.layout.index(tensor_id), 2] > 0

    def attach(self, engine) -> None:
        """Register the scene's own per-frame work in the engine's schedule: lines that fade with the
        blocks they join (after the flags are composed) and the pulses along them (after
        instancing, so they follow this frame's culling)."""
        if self.pulses is not None:
            dimming = FlowDimming(self.flow, self.world, engine.flags, self.block_slots, self.line_slots)
            engine.schedule.add("instancing", "flow_dim", dimming, after="flags")
            engine.schedule.add("instancing", "flow_pulses", self.pulses, after="instancing")

    def write_values(self, renderer, arrays, ids=None) -> int:
        """Show arrays (id -> numpy) on their blocks: padded to the block with NaN (empty cells); returns blocks written.

        A vector of length t is a column of t cells; a 1-D weight is a row; a trace shorter than
        the block's token rows leaves the later rows empty.
        """
        written = 0
        shown = []
        value_range = self.world["datatex"]["value_range"]
        colormap = self.world["datatex"]["colormap"]
        for tensor_id in (ids if ids is not None else arrays.keys()):
            try:
                row = self.layout.index(tensor_id)
            except KeyError:
                continue
            x, y, cols, rows = (int(v) for v in self.regions[row])
            if cols == 0:
                continue
            values = np.asarray(arrays[tensor_id], np.float32)
            if values.ndim == 1:
                values = values[:, None] if rows > 1 or cols == 1 else values[None, :]
            block = np.full((rows, cols), np.nan, np.float32)
            r, c = min(rows, values.shape[0]), min(cols, values.shape[1])
            block[:r, :c] = values[:r, :c]
            if row in self._mask_prefix:
                block[~key_visible(rows, cols, self._mask_prefix[row]) & ~np.isnan(block)] = -np.inf
            renderer.write_data(x, y, block)
            slot = self.block_slots[row]
            (lo, hi), cmap = value_style(tensor_id, block)
            value_range[slot] = (lo, hi)
            colormap[slot] = cmap
            written += 1
            shown.append(row)
        if self.pulses is not None and shown:
            self.pulses.trigger(shown)  # values arrived: pulses run into these blocks
        return written


def build_model_scene(spec: ModelSpec, renderer=None, *, with_data: bool = True, n_tokens: int | None = None,
                      layout: Layout | None = None, data_ids=None) -> ModelScene:
    """Spawn the model's layout into a new world; with a renderer and ``with_data``, allocate data regions (only
    for the blocks in ``data_ids`` when given: a recording that holds a few of a big model's tensors)."""
    layout = layout or layout_model(spec, n_tokens)
    n_blocks, n_groups, n_texts = len(layout.ids), len(layout.group_ids), len(layout.text)
    flow = flow_lines(layout)
    world = World(capacity=n_blocks + n_groups + n_texts + len(flow) + 16)

    # Groups first, so a child's parent slot is known when it is spawned. A small model is drawn
    # whole at every distance (its groups always open); a big one relies on the proxies.
    group_kinds = [_group_kind(g) for g in layout.group_ids]
    small = n_blocks <= SMALL_MODEL_BLOCKS
    expand_px = np.array([0.0 if small else GROUP_EXPAND_PX[k] for k in group_kinds], np.float32)
    group_ids = world.spawn(
        n_groups,
        transform={"position": layout.group_center, "scale": np.maximum(layout.group_size, 1e-3)},
        bounds={},
        renderable={"color": np.c_[_group_colors(layout), np.full(n_groups, GROUP_PROXY_ALPHA)],
                    "material": MATERIAL_TRANSLUCENT},
        group={"expand_px": expand_px},
        lod={"thresholds": PROXY_LOD_PX},
        pickable={},
    )
    group_slots = world.slots(group_ids)
    has_parent = layout.group_parent >= 0
    world.add("parent", group_ids[has_parent], slot=group_slots[layout.group_parent[has_parent]])

    block_ids = world.spawn(
        n_blocks,
        transform={"position": layout.center, "scale": layout.size},
        bounds={},
        renderable={"color": np.c_[layout.color, np.ones(n_blocks)]},
        lod={"thresholds": BLOCK_LOD_PX},
        parent={"slot": group_slots[layout.group]},
        pickable={},
    )
    block_slots = world.slots(block_ids)

    # Every block carries its caption, in big models and small, live or structure only: the label
    # layout shows those big enough on screen and not colliding with a more important one.
    idx = np.arange(n_blocks)
    # Captions stay small next to their block: the gaps between blocks are about a cell or two.
    caption_height = np.clip(layout.size[idx, 0] * 0.05, 0.3, 1.2)
    world.add_labels(block_ids[idx], [layout.label[i] for i in idx], height=caption_height,
                     offset=np.c_[np.zeros(len(idx)), layout.size[idx, 1] / 2 + caption_height * 0.65,
                                  np.zeros(len(idx))],
                     color=(0.80, 0.84, 0.90, 1.0), min_px=CAPTION_MIN_PX, priority=CAPTION_PRIORITY,
                     placement=CAPTION)

    # Section labels ("Transformer 2", "C = 48") as label-only entities beside the group they title
    # (children of its parent), so a layer drawn as a closed proxy keeps its title.
    if n_texts:
        titled_parent = layout.group_parent[layout.text_group]
        text_ids = world.spawn(n_texts, transform={"position": layout.text_position,
                                                   "scale": np.c_[layout.text_height, layout.text_height, np.ones(n_texts)]},
                               bounds={})
        inside = titled_parent >= 0
        world.add("parent", text_ids[inside], slot=group_slots[titled_parent[inside]])
        world.add_labels(text_ids, list(layout.text), height=layout.text_height, color=(0.95, 0.95, 0.98, 1.0),
                         min_px=title_min_px(layout), priority=TITLE_PRIORITY)

    # The residual stream and the connections between blocks: thin boxes, children of the innermost
    # group each piece lies in, so a closed layer or head draws none of its lines.
    line_ids = world.spawn(
        len(flow),
        transform={"position": flow.seg_center, "scale": flow.seg_size},
        bounds={},
        renderable={"color": np.c_[flow.seg_color(), np.ones(len(flow))]},
        lod={"thresholds": LINE_LOD_PX},
        parent={"slot": group_slots[flow.seg_group]},
    )
    line_slots = world.slots(line_ids)

    regions = np.zeros((n_blocks, 4), np.int32)
    masked = layout.masked_scores()
    initial: dict[int, np.ndarray] = {}  # layout row -> what its cells hold before values arrive
    if renderer is not None and with_data:
        # One texel per cell whatever the drawn size: a log-compressed block just has narrower cells.
        fits = (layout.rows <= 2048) & (layout.cols <= 2048) & (layout.rows * layout.cols <= 1 << 20)
        if data_ids is not None:
            fits &= np.isin(np.asarray(layout.ids, dtype=object), np.asarray(sorted(data_ids), dtype=object))
        rows_cols = np.c_[layout.rows, layout.cols]
        for i in np.flatnonzero(fits):
            r, c = (int(v) for v in rows_cols[i])
            x, y = renderer.alloc_data(r, c)
            regions[i] = (x, y, c, r)
        # Until the first values arrive the data cells read "empty", not zero; a mask's removed cells
        # already show (they are known before any value is).
        for row, prefix in masked:
            if regions[row, 2]:
                initial[row] = masked_scores_template(int(layout.rows[row]), int(layout.cols[row]), prefix)
        for i in np.flatnonzero(regions[:, 2] > 0):
            cells = initial.get(int(i))
            if cells is None:
                cells = np.full((int(regions[i, 3]), int(regions[i, 2])), np.nan, np.float32)
            renderer.write_data(int(regions[i, 0]), int(regions[i, 1]), cells)
    elif renderer is not None and masked:
        # A structure-only model shows no values, but its masks are structure: every head of a stack has
        # the same one, so the heads share one region per distinct mask.
        shared: dict[tuple[int, int, int], tuple[int, int]] = {}
        for row, prefix in masked:
            r, c = int(layout.rows[row]), int(layout.cols[row])
            if r > 2048 or c > 2048 or r * c > 1 << 20:
                continue
            if (r, c, prefix) not in shared:
                shared[r, c, prefix] = renderer.alloc_data(r, c)
                initial[row] = masked_scores_template(r, c, prefix)
                renderer.write_data(*shared[r, c, prefix], initial[row])
            regions[row] = (*shared[r, c, prefix], c, r)
    with_region = np.flatnonzero(regions[:, 2] > 0)
    if len(with_region):
        world.add("datatex", block_ids[with_region], region=regions[with_region],
                  value_range=(-1.0, 1.0), colormap=COLORMAP_DIVERGING)
    masked_rows = np.array([row for row, _ in masked if regions[row, 2]], np.int64)
    return ModelScene(spec, layout, world, block_slots, group_slots, regions, flow=flow, line_slots=line_slots,
                      masked_rows=masked_rows)


def group_depth(layout: Layout) -> np.ndarray:
    """Each group's depth in the hierarchy: the root 0, a layer 1, its parts 2, ..."""
    depth = np.zeros(len(layout.group_parent), np.int64)
    parent = layout.group_parent.copy()
    while (parent >= 0).any():
        depth += parent >= 0
        parent = np.where(parent >= 0, layout.group_parent[np.maximum(parent, 0)], -1)
    return depth


def title_min_px(layout: Layout) -> np.ndarray:
    """Per section title, the natural size it needs to show (a layer's title long before its heads')."""
    return np.where(group_depth(layout)[layout.text_group] <= 1, TITLE_MIN_PX, INNER_TITLE_MIN_PX)


def build_outline_world(layout: Layout) -> tuple[World, np.ndarray]:
    """The model's outline while its blocks are still being spawned: one translucent box per top-level
    group (the embedding, each layer, the output), in the colours the full scene will have, with the
    section titles. Returns the world and the slots of its boxes. A few hundred entities at most."""
    top = np.flatnonzero(layout.group_parent == 0)
    titled = np.flatnonzero(np.isin(layout.text_group, top)) if len(layout.text) else np.zeros(0, np.int64)
    world = World(capacity=len(top) + len(titled) + 8)
    colors = _group_colors(layout)[top]
    boxes = world.spawn(len(top), transform={"position": layout.group_center[top],
                                              "scale": np.maximum(layout.group_size[top], 1e-3)},
                        bounds={}, renderable={"color": np.c_[colors, np.full(len(top), GROUP_PROXY_ALPHA)],
                                               "material": MATERIAL_TRANSLUCENT},
                        lod={"thresholds": PROXY_LOD_PX})
    if len(titled):
        heights = layout.text_height[titled]
        texts = world.spawn(len(titled), transform={"position": layout.text_position[titled],
                                                    "scale": np.c_[heights, heights, np.ones(len(titled))]},
                            bounds={})
        world.add_labels(texts, [layout.text[i] for i in titled], height=heights, color=(0.95, 0.95, 0.98, 1.0),
                         min_px=TITLE_MIN_PX, priority=TITLE_PRIORITY)
    return world, world.slots(boxes)
