"""The colour legend of the data cells in view: which colour maps the visible blocks use, over what value
ranges, and whether "−∞ masked" and "empty" cells are on screen; drawn as a small ImGui window.

`legend_entries(world, visible, cells)` reads the datatex columns (colour map and value range per block)
of the blocks whose cells are drawn this frame (visible and at full detail); `CellContents` knows which
blocks hold finite values, −∞ and NaN, noted as the scene uploads them (`watch_cells`), so no frame reads
the texture back. `LegendView` caches the result until what is in view or the values change, draws it
(`draw`, returning the window's rectangle for the label layout) and reports it as plain data (`report`).

Merging. Most tensors are scaled to their own range (signed values: ± the largest |value|), so one
colour means different numbers in different blocks. Blocks whose range is fixed whatever their values
(probabilities: 0..1, per model_scene.value_style) get one bar per such range, with its numbers; the
rest of a map's blocks in view merge into one bar ticked "−m · 0 · +m" with m's spread written under
it, or, when they all use one range, a bar with that range's numbers.

The bar is coloured with colormaps.apply, the numpy twin of the shader's colormap() (tests compare the
drawn bar, the rendered cells and apply pixel for pixel), so the legend shows exactly the cells' colours.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmviz.common.i18n import num_text, tr
from llmviz.engine.render import colormaps
from llmviz.scenes.dataflow import format_number
from llmviz.scenes.model_scene import value_style

_TEXTS = {"TITLE": "legend.title", "MASKED_TEXT": "legend.masked", "EMPTY_TEXT": "legend.empty"}


def __getattr__(name: str) -> str:
    """TITLE, MASKED_TEXT and EMPTY_TEXT in the language chosen now (the SVG export imports them as it writes)."""
    if name in _TEXTS:
        return tr(_TEXTS[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

# shaders/box.glsl draws a −∞ cell as diagonal stripes of these two colours (the causal mask's "removed").
MASKED_DARK_RGB = (0.05, 0.05, 0.07)
MASKED_LIGHT_RGB = (0.27, 0.27, 0.32)
MAP_NAMES = {index: name for name, index in colormaps.NAMES.items()}
BAR_WIDTH = 180.0
BAR_HEIGHT = 12.0
BAR_SEGMENT_PX = 12.0  # the bar is drawn in segments this wide, each an exact colour at both ends (15 calls a bar)
SWATCH_PX = 14.0
CAPTION_EXTRA_PX = 110.0  # captions may run this far past the bar's right end before wrapping
NAMES_SHOWN = 3        # tensor names listed under a bar before "+N more"
MARGIN_PX = 8.0        # between the legend and the edges of the area it is placed in


@dataclass(frozen=True)
class LegendEntry:
    """One colour bar: a map and the range its blocks in view use.

    ``per_block``: the blocks use different ranges; ``lo``..``hi`` spans them all and ``scale`` is the
    smallest and largest of their upper ends (m of "−m · 0 · +m"). ``names``: the tensor captions of
    its blocks in view (distinct, in scene order)."""

    colormap: int
    lo: float
    hi: float
    per_block: bool = False
    blocks: int = 0
    scale: tuple[float, float] | None = None
    symmetric: bool = False
    names: tuple[str, ...] = ()
    masked: bool = False     # some of its blocks in view hold −∞ cells
    empty: bool = False      # some of its blocks in view hold empty (NaN) cells

    @property
    def name(self) -> str:
        return MAP_NAMES.get(self.colormap, str(self.colormap))

    def ticks(self) -> list[tuple[float, str]]:
        """(position 0..1 along the bar, text) of the numbers under the bar."""
        if self.per_block:
            if self.symmetric:
                return [(0.0, "−m"), (0.5, "0"), (1.0, "+m")]
            return [(0.0, num_text(format_number(self.lo))), (1.0, "m")]
        mid = 0.0 if self.symmetric else (self.lo + self.hi) / 2.0
        return [(0.0, num_text(format_number(self.lo))), (0.5, num_text(format_number(mid))),
                (1.0, num_text(format_number(self.hi)))]

    def scale_note(self) -> str:
        """What m of the ticks is, for a bar of blocks with ranges of their own ("" otherwise)."""
        if not self.per_block:
            return ""
        a, b = (num_text(format_number(v)) for v in self.scale)
        # the numbers on a line of their own (the texts' \n): never wrapped
        return tr("legend.scale_abs" if self.symmetric else "legend.scale_max", a=a, b=b)

    def caption(self) -> str:
        """Which tensors in view the bar colours."""
        return ", ".join(self.names[:NAMES_SHOWN]) + (tr("legend.more", n=len(self.names) - NAMES_SHOWN)
                                                       if len(self.names) > NAMES_SHOWN else "")

    def colors(self, positions) -> np.ndarray:
        """RGB of the bar at ``positions`` (0..1 along it): the cell colour of the value there."""
        values = self.lo + np.asarray(positions, np.float64) * (self.hi - self.lo)
        return colormaps.apply(values, self.lo, self.hi, self.colormap)

    def as_dict(self) -> dict:
        out = {"colormap": self.name, "range": [float(self.lo), float(self.hi)], "per_block": self.per_block,
               "blocks": self.blocks, "tensors": list(self.names), "masked": self.masked, "empty": self.empty}
        if self.scale is not None:
            out["scale"] = [float(self.scale[0]), float(self.scale[1])]
        return out


@dataclass(frozen=True)
class CellLegend:
    """The legend of one frame: its colour bars and whether −∞ and empty cells are in view."""

    entries: tuple[LegendEntry, ...] = ()
    masked: bool = False
    empty: bool = False

    def __bool__(self) -> bool:
        return bool(self.entries) or self.masked or self.empty

    def report(self) -> list[dict]:
        """Plain data for a JSON frame report: one dict per colour bar (map, range, blocks, and whether its
        blocks in view hold −∞ / empty cells), then one per swatch drawn ({"swatch": "−∞ masked"})."""
        return ([e.as_dict() for e in self.entries] + [{"swatch": tr("legend.masked")}] * self.masked
                + [{"swatch": tr("legend.empty")}] * self.empty)


# ---------------------------------------------------------------- what the blocks hold

def fixed_range(tensor_id: str) -> bool:
    """Whether the scene colours this tensor over the same range whatever its values (probabilities)."""
    return value_style(tensor_id, np.array([0.5], np.float32))[0] == value_style(tensor_id, np.array([7.0], np.float32))[0]


class CellContents:
    """Per entity slot of a model scene's data blocks: whether its cells hold a finite value, a −∞ (masked)
    and a NaN (empty) — noted from the arrays as they are uploaded, so nothing reads the texture back —
    and whether its colour range is fixed by meaning rather than by its values.

    A freshly built scene's data regions are all NaN (build_model_scene fills them), so every data
    block starts empty and without values; a masked-scores block also holds its mask's −∞ from the start. ``version`` is bumped by every upload.
    """

    def __init__(self, scene):
        slots = np.asarray(scene.block_slots, np.int64)
        size = int(slots.max()) + 1 if len(slots) else 0
        self.filled = np.zeros(size, bool)
        self.masked = np.zeros(size, bool)
        self.empty = np.zeros(size, bool)
        self.fixed = np.zeros(size, bool)
        with_data = scene.regions[:, 2] > 0
        self.empty[slots[with_data]] = True
        self.masked[slots[scene.masked_rows]] = True  # painted with their mask at build
        rows = np.flatnonzero(with_data)
        self.fixed[slots[rows]] = [fixed_range(scene.layout.ids[i]) for i in rows.tolist()]  # once, at build
        # Region origin -> block slot: an upload names its region by the texel it starts at.
        origins = scene.regions[with_data, :2].astype(np.int64)
        self._slot_at = dict(zip(map(tuple, origins.tolist()), slots[with_data].tolist()))
        self.version = 0

    def note_upload(self, x: int, y: int, values: np.ndarray) -> None:
        slot = self._slot_at.get((int(x), int(y)))
        if slot is None:
            return
        values = np.asarray(values)
        finite = np.isfinite(values)
        self.filled[slot] = bool(finite.any())
        self.masked[slot] = bool(np.isinf(values).any())
        self.empty[slot] = bool(np.isnan(values).any())
        self.version += 1

    def flags(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(filled, masked, empty, fixed) of the given slots (slots past the data blocks: none of them)."""
        slots = np.asarray(slots, np.int64)
        inside = slots < len(self.filled)
        out = []
        for column in (self.filled, self.masked, self.empty, self.fixed):
            flag = np.zeros(len(slots), bool)
            flag[inside] = column[slots[inside]]
            out.append(flag)
        return tuple(out)


class _NotingRenderer:
    """The renderer as ModelScene.write_values sees it: uploads go through, and are noted on the way."""

    def __init__(self, renderer, cells: CellContents):
        self._renderer = renderer
        self._cells = cells

    def write_data(self, x, y, values) -> None:
        self._renderer.write_data(x, y, values)
        self._cells.note_upload(x, y, values)

    def __getattr__(self, name):
        return getattr(self._renderer, name)


def watch_cells(scene) -> CellContents:
    """The scene's CellContents, following every ``scene.write_values`` from now on (the live model's
    traces and weights, a chapter's animated values): the scene's own method is wrapped on the instance,
    once, so every caller's upload is noted exactly as it reaches the atlas (padding included)."""
    cells = getattr(scene, "cell_contents", None)
    if cells is not None:
        return cells
    cells = CellContents(scene)
    write_values = scene.write_values

    def noted_write_values(renderer, arrays, ids=None):
        return write_values(_NotingRenderer(renderer, cells), arrays, ids)

    scene.write_values = noted_write_values
    scene.cell_contents = cells
    return cells


# ---------------------------------------------------------------- the entries

def scene_cells(built) -> CellContents | None:
    """What a built scene's data blocks hold: its live model's record, or for a structure-only model
    the blocks as built (empty, masks painted); None for scenes without model blocks."""
    cells = getattr(built.live, "cells", None)
    if cells is None and built.model is not None:
        cells = watch_cells(built.model)
    return cells


def cells_in_view(world, visible) -> np.ndarray:
    """Slots (ascending, distinct) of the data blocks whose cells are drawn: visible, with a data region,
    at full detail (the coarser levels draw flat colour). ``visible``: slots or a mask over slots."""
    visible = np.asarray(visible)
    slots = np.flatnonzero(visible) if visible.dtype == bool else visible.astype(np.int64, copy=False)
    slots = slots[(slots >= 0) & (slots < world.size)]
    datatex = world["datatex"]
    slots = slots[datatex.has[slots]]
    slots = slots[datatex["region"][slots, 2] > 0]
    lod = world["lod"]
    slots = slots[~lod.has[slots] | (lod["level"][slots] == 0)]
    return np.unique(slots)


def _names(world, slots: np.ndarray) -> tuple[str, ...]:
    """The tensor names in the captions of ``slots`` ("softmax" of "softmax  t×t"), distinct, in order."""
    label = world["label"]
    index = label["text_index"][slots][label.has[slots]]
    texts = world.labels
    names = dict.fromkeys(texts[i].split("  ")[0] for i in index.tolist() if 0 <= i < len(texts))
    return tuple(n for n in names if n)


def legend_entries(world, visible, cells: CellContents | None = None) -> CellLegend:
    """The legend of the data blocks in view (see the module docstring for how ranges merge).

    ``visible``: the frame's visible slots (``frame.visibility.drawn``) or a mask; ``cells``: what the
    blocks hold (without it every block counts as filled, none masked or empty).
    """
    slots = cells_in_view(world, visible)
    if not len(slots):
        return CellLegend()
    datatex = world["datatex"]
    n = len(slots)
    if cells is not None:
        filled, masked, empty, fixed = cells.flags(slots)
    else:
        filled, masked, empty, fixed = np.ones(n, bool), np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool)
    shown, shown_masked, shown_empty, shown_fixed = slots[filled], masked[filled], empty[filled], fixed[filled]
    entries: list[LegendEntry] = []
    if len(shown):
        cmap = datatex["colormap"][shown].astype(np.int64)
        ranges = datatex["value_range"][shown].astype(np.float64)
        keys = np.c_[cmap, ranges]
        for m in np.unique(cmap).tolist():  # a handful of maps, not a loop over blocks
            of_map = cmap == m
            exact = shown_fixed[of_map]
            keys_m = keys[of_map]
            map_slots, map_masked, map_empty = shown[of_map], shown_masked[of_map], shown_empty[of_map]
            rest = ~exact
            if rest.any() and len(np.unique(keys_m[rest], axis=0)) == 1:
                exact |= rest  # a single own range in view: its numbers are exact for every block
                rest[:] = False
            for key in np.unique(keys_m[exact], axis=0):  # the few fixed ranges of this map
                same = exact & np.all(keys_m == key, axis=1)
                lo, hi = float(key[1]), float(key[2])
                entries.append(LegendEntry(int(m), lo, hi, blocks=int(same.sum()), symmetric=lo == -hi,
                                           names=_names(world, map_slots[same]), masked=bool(map_masked[same].any()),
                                           empty=bool(map_empty[same].any())))
            if rest.any():
                lo, hi = ranges[of_map][rest, 0], ranges[of_map][rest, 1]
                entries.append(LegendEntry(int(m), float(lo.min()), float(hi.max()), per_block=True,
                                           blocks=int(rest.sum()), scale=(float(hi.min()), float(hi.max())),
                                           symmetric=bool(np.all(lo == -hi)), names=_names(world, map_slots[rest]),
                                           masked=bool(map_masked[rest].any()), empty=bool(map_empty[rest].any())))
    return CellLegend(tuple(entries), bool(masked.any()), bool(empty.any()))


class LegendView:
    """The legend of one view, recomputed only when the data blocks in view or their values change."""

    def __init__(self):
        self.legend = CellLegend()
        self._key = None
        self._colors: dict[LegendEntry, list] = {}  # entry -> its bar's packed colours
        self.rect = None  # the window's (x, y, w, h) last drawn, UI pixels

    def update(self, engine, cells: CellContents | None = None) -> CellLegend:
        """The legend of what ``engine`` drew last frame; ``cells``: what the scene's blocks hold
        (``scene_cells``)."""
        world = engine.world
        slots = cells_in_view(world, engine.visibility.result.drawn)
        datatex = world["datatex"]
        # The columns of the blocks in view are part of the key: a write changes a range without any
        # version where no CellContents watches the scene.
        key = (id(world), world.structure_version, None if cells is None else cells.version, slots.tobytes(),
               datatex["colormap"][slots].tobytes(), datatex["value_range"][slots].tobytes())
        if key != self._key:
            self._key = key
            self.legend = legend_entries(world, slots, cells)
            self._colors = {e: self._colors[e] for e in self.legend.entries if e in self._colors}
        return self.legend

    def draw(self, engine, cells: CellContents | None, area_left: float, area_bottom: float):
        """Update and draw (between imgui.new_frame() and imgui.render()); the window's (x, y, w, h) in UI
        pixels, or None when nothing is shown (no data cells in view)."""
        legend = self.update(engine, cells)
        self.rect = draw_legend(legend, area_left, area_bottom, self._colors)
        return self.rect

    def report(self) -> list[dict]:
        """The legend last drawn (or updated), as plain data (CellLegend.report)."""
        return self.legend.report()


# ---------------------------------------------------------------- drawing

def _u32(rgb) -> np.ndarray:
    """ImGui's packed colours (IM_COL32: A << 24 | B << 16 | G << 8 | R) of RGB rows in 0..1, opaque."""
    c = np.clip(np.round(np.asarray(rgb, np.float64) * 255.0), 0, 255).astype(np.uint32)
    c = c.reshape(-1, 3)
    return (np.uint32(255) << 24) | (c[:, 2] << 16) | (c[:, 1] << 8) | c[:, 0]


def bar_colors(entry: LegendEntry, width: float = BAR_WIDTH, segment: float = BAR_SEGMENT_PX) -> np.ndarray:
    """Packed colours at the bar's segment edges, left to right: the cell colour of the value at each."""
    n = max(1, int(round(width / segment)))
    return _u32(entry.colors(np.linspace(0.0, 1.0, n + 1)))


def _hatch(dl, x: float, y: float, size: float) -> None:
    """A swatch striped like a −∞ cell (diagonal light stripes on dark)."""
    from imgui_bundle import imgui

    light = int(_u32(MASKED_LIGHT_RGB)[0])
    dl.add_rect_filled(imgui.ImVec2(x, y), imgui.ImVec2(x + size, y + size), int(_u32(MASKED_DARK_RGB)[0]))
    dl.push_clip_rect(imgui.ImVec2(x, y), imgui.ImVec2(x + size, y + size), True)
    step = size / 2.5
    for k in range(-3, 4):
        x0 = x + k * step
        dl.add_line(imgui.ImVec2(x0, y + size), imgui.ImVec2(x0 + size, y), light, step * 0.4)
    dl.pop_clip_rect()


def draw_legend(legend: CellLegend, area_left: float, area_bottom: float, cache: dict | None = None,
                bars: list | None = None):
    """Draw the legend as a small window whose bottom-left corner is ``MARGIN_PX`` inside (area_left,
    area_bottom) (UI pixels, y down); returns the window's (x, y, w, h), or None when there is nothing to
    explain. Call between imgui.new_frame() and imgui.render(). ``cache``: entry -> bar colours, kept
    by the caller (LegendView) so a frame packs no colours. ``bars``: if given, receives (entry or
    swatch text, (x, y, w, h)) of every bar and swatch drawn."""
    if not legend:
        return None
    from imgui_bundle import imgui

    cache = {} if cache is None else cache
    imgui.set_next_window_pos(imgui.ImVec2(area_left + MARGIN_PX, area_bottom - MARGIN_PX), imgui.Cond_.always,
                              imgui.ImVec2(0.0, 1.0))
    imgui.set_next_window_bg_alpha(0.85)
    flags = (imgui.WindowFlags_.no_decoration | imgui.WindowFlags_.no_inputs | imgui.WindowFlags_.no_saved_settings
             | imgui.WindowFlags_.no_focus_on_appearing | imgui.WindowFlags_.no_nav
             | imgui.WindowFlags_.no_bring_to_front_on_focus | imgui.WindowFlags_.always_auto_resize)
    imgui.begin("##cell colours", None, flags)
    imgui.text(tr("legend.title"))
    dl = imgui.get_window_draw_list()
    dim = imgui.get_color_u32(imgui.ImVec4(0.62, 0.65, 0.70, 1.0))
    text = imgui.get_color_u32(imgui.Col_.text)
    line = imgui.get_text_line_height()
    for entry in legend.entries:
        colors = cache.get(entry)
        if colors is None:
            colors = cache[entry] = bar_colors(entry).tolist()
        p = imgui.get_cursor_screen_pos()
        step = BAR_WIDTH / (len(colors) - 1)
        for i in range(len(colors) - 1):
            a, b = colors[i], colors[i + 1]
            dl.add_rect_filled_multi_color(imgui.ImVec2(p.x + i * step, p.y),
                                           imgui.ImVec2(p.x + (i + 1) * step, p.y + BAR_HEIGHT), a, b, b, a)
        # Ticks: a mark under the bar and its number, kept inside the bar's width.
        for position, label in entry.ticks():
            x = p.x + position * BAR_WIDTH
            dl.add_line(imgui.ImVec2(x, p.y + BAR_HEIGHT), imgui.ImVec2(x, p.y + BAR_HEIGHT + 3), text, 1.0)
            w = imgui.calc_text_size(label).x
            tx = min(max(x - w / 2, p.x), p.x + BAR_WIDTH - w)
            dl.add_text(imgui.ImVec2(tx, p.y + BAR_HEIGHT + 3), text, label)
        if bars is not None:
            bars.append((entry, (p.x, p.y, BAR_WIDTH, BAR_HEIGHT)))
        imgui.dummy(imgui.ImVec2(BAR_WIDTH, BAR_HEIGHT + 3 + line))
        imgui.push_text_wrap_pos(imgui.get_cursor_pos_x() + BAR_WIDTH + CAPTION_EXTRA_PX)
        note = entry.scale_note()
        if note:
            imgui.text(note)
        caption = entry.caption()
        if caption:
            imgui.text_colored(imgui.ImVec4(0.62, 0.65, 0.70, 1.0), caption)
        imgui.pop_text_wrap_pos()
    swatches = [(tr("legend.masked"), True)] * legend.masked + [(tr("legend.empty"), False)] * legend.empty
    for i, (label, hatched) in enumerate(swatches):
        if i:
            imgui.same_line(0, 14)
        p = imgui.get_cursor_screen_pos()
        y = p.y + (line - SWATCH_PX) / 2
        if hatched:
            _hatch(dl, p.x, y, SWATCH_PX)
        else:
            dl.add_rect_filled(imgui.ImVec2(p.x, y), imgui.ImVec2(p.x + SWATCH_PX, y + SWATCH_PX),
                               int(_u32(colormaps.NAN_RGB)[0]))
        dl.add_rect(imgui.ImVec2(p.x, y), imgui.ImVec2(p.x + SWATCH_PX, y + SWATCH_PX), dim)
        if bars is not None:
            bars.append((label, (p.x, y, SWATCH_PX, SWATCH_PX)))
        imgui.dummy(imgui.ImVec2(SWATCH_PX, line))
        imgui.same_line(0, 5)
        imgui.text(label)
    pos, size = imgui.get_window_pos(), imgui.get_window_size()
    imgui.end()
    return (float(pos.x), float(pos.y), float(size.x), float(size.y))
