"""Dear ImGui panels for mixture-of-experts routing: gating bars, the utilisation heatmap, load
balancing with top-k / capacity controls, and the input text coloured by top-1 expert.

Each function draws into the current ImGui window from a `RoutingStats` (scenes/moe_live.py)
and returns what the window needs to react to. Big expert counts are binned so a frame draws a
few thousand cells at most. What a frame draws is derived once per statistics object (a new
object comes with every recomputation) and kept in small caches: the heatmap's and the gating
bars' colours as packed ImGui colours, their rectangles as ready ImVec2 pairs (rebuilt only when
the panel moves), so a frame is one draw-list call per cell and nothing else per cell.
"""
from __future__ import annotations

import functools

import numpy as np
from imgui_bundle import imgui

from llmviz.common.i18n import num, tr
from llmviz.models.sim import moe_corpus
from llmviz.scenes.moe_live import expert_colors

MAX_HEATMAP_COLUMNS = 64      # experts per row before binning
MAX_HEATMAP_ROWS = 32         # layers before binning
MAX_LEGEND_EXPERTS = 16
HEATMAP_MODES = ("tokens", "gate")
# Viridis stops, for the heatmap's sequential scale.
_VIRIDIS = np.array([(0.267, 0.005, 0.329), (0.230, 0.322, 0.546), (0.128, 0.567, 0.551),
                     (0.369, 0.789, 0.383), (0.993, 0.906, 0.144)], np.float32)


def _u32(rgb, alpha: float = 1.0) -> int:
    return imgui.get_color_u32(imgui.ImVec4(float(rgb[0]), float(rgb[1]), float(rgb[2]), alpha))


def pack_u32(rgb: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """(..., 3) colours in [0, 1] as ImGui's packed u32 (IM_COL32: A << 24 | B << 16 | G << 8 | R,
    each channel rounded as ImGui rounds), without one ImGui call per colour. Assumes the style's
    global alpha is 1, as the panels leave it."""
    rgba = np.concatenate([np.asarray(rgb, np.float32), np.full(np.shape(rgb)[:-1] + (1,), alpha, np.float32)], -1)
    c = (np.clip(rgba, 0, 1) * 255.0 + 0.5).astype(np.uint64)
    return c[..., 0] | c[..., 1] << 8 | c[..., 2] << 16 | c[..., 3] << 24


class _PerStats:
    """A few derived values per statistics object. The entry holds the object itself, so its id
    cannot be reused by a newer one while the entry lives (ids of freed objects are)."""

    def __init__(self, size: int = 8):
        self.size = size
        self._entries: dict = {}

    def get(self, stats, key, make):
        full = (id(stats), key)
        entry = self._entries.get(full)
        if entry is None or entry[0] is not stats:
            if len(self._entries) >= self.size:
                self._entries.pop(next(iter(self._entries)))
            entry = self._entries[full] = (stats, make())
        return entry[1]


def viridis(values: np.ndarray) -> np.ndarray:
    """(..., 3) colours for values in [0, 1]."""
    v = np.clip(np.asarray(values, np.float32), 0, 1) * (len(_VIRIDIS) - 1)
    lo = np.minimum(v.astype(np.int64), len(_VIRIDIS) - 2)
    f = (v - lo)[..., None]
    return _VIRIDIS[lo] * (1 - f) + _VIRIDIS[lo + 1] * f


def _simulated_banner(stats) -> None:
    if stats.simulated:
        imgui.text_colored(imgui.ImVec4(1.0, 0.75, 0.3, 1.0), tr("moe.simulated"))


def _expert_legend(n: int, counts: np.ndarray | None = None) -> None:
    if n > MAX_LEGEND_EXPERTS:
        imgui.text_disabled(tr("moe.colour_legend", n=n))
        return
    colors = expert_colors(n)
    for e in range(n):
        if e:
            imgui.same_line()
        imgui.color_button(f"##expert{e}", imgui.ImVec4(*colors[e], 1.0), 0, imgui.ImVec2(12, 12))
        imgui.same_line(0, 3)
        imgui.text(f"E{e}" + (f" {int(counts[e])}" if counts is not None else ""))


MAX_GATING_BARS = 128          # bars per layer before experts are binned (max per bin)
ROWS_HEIGHT = 300.0            # scrolling height of the per-layer lists


def _rows(child_id: str, n: int):
    """Indices of the rows of a scrolling list that are on screen (ImGui's list clipper), so a
    61-layer model draws only the dozen rows visible."""
    height = min(ROWS_HEIGHT, 60.0 * n + 8.0)
    visible = imgui.begin_child(child_id, imgui.ImVec2(0, height))
    try:
        if visible:
            clipper = imgui.ListClipper()
            clipper.begin(n)
            while clipper.step():
                yield from range(clipper.display_start, clipper.display_end)
            clipper.end()
    finally:
        imgui.end_child()


class GatingView:
    """What the gating tab draws for one token, derived once: per layer the bar heights (fractions of
    the row's highest bar), the bar colours, the chosen experts and the row's caption; per row on
    screen its rectangles, kept while the row stays where it is."""

    def __init__(self, stats, t: int):
        E = stats.n_experts
        self.per_bar = -(-E // MAX_GATING_BARS)
        self.n_bars = -(-E // self.per_bar)
        probs = np.zeros((stats.n_layers, self.n_bars * self.per_bar), np.float32)
        probs[:, :E] = stats.probs[:, t]
        bars = probs.reshape(stats.n_layers, self.n_bars, self.per_bar).max(axis=2)
        top = bars.max(axis=1, keepdims=True)
        self.heights = bars / np.where(top > 0, top, 1.0)          # (L, n_bars) in [0, 1]
        self.bar_colors = pack_u32(expert_colors(E)[:: self.per_bar], 0.6).tolist()
        self.chosen = [[(int(e), float(g), float(stats.probs[row, t, e]))
                        for e, g in zip(stats.topk[row, t], stats.gates[row, t])] for row in range(stats.n_layers)]
        self.captions = ["   " + "  ".join(f"E{e} w={num(g, '.3f')}" + (tr("moe.dropped_tag") if d else "")
                                           for (e, g, _), d in zip(self.chosen[row], stats.dropped[row, t]))
                         for row in range(stats.n_layers)]
        self.labels = [f"L{int(layer)}" for layer in stats.layers]
        self.n_experts = E
        self._rows: dict[int, tuple] = {}

    def row_rects(self, row: int, x: float, y: float, width: float, height: float):
        """((bar min, bar max, colour) per visible bar, (outline min, max) per chosen expert) at (x, y)."""
        key = (x, y, width, height)
        cached = self._rows.get(row)
        if cached is None or cached[0] != key:
            bar_w, expert_w = width / self.n_bars, width / self.n_experts
            h = height * self.heights[row]
            bars = [(imgui.ImVec2(x + b * bar_w, y + height - h[b]), imgui.ImVec2(x + b * bar_w + max(bar_w - 1, 1), y + height),
                     self.bar_colors[b]) for b in np.flatnonzero(h >= 0.5).tolist()]   # shorter bars draw nothing
            outlines = [(imgui.ImVec2(x + e * expert_w - 1, y - 1), imgui.ImVec2(x + e * expert_w + max(expert_w, 2) + 1, y + height + 1))
                        for e, _, _ in self.chosen[row]]
            cached = self._rows[row] = (key, bars, outlines)
        return cached[1], cached[2]


_gating_views = _PerStats()
_BACKGROUND = 0.12, 0.13, 0.16


def gating_view(stats, token_index: int) -> GatingView:
    t = int(np.clip(token_index, 0, stats.n_tokens - 1))
    return _gating_views.get(stats, t, lambda: GatingView(stats, t))


def draw_gating(stats, token_index: int) -> list[list[tuple[int, float, float]]]:
    """Per layer, the token's router probabilities as bars, the chosen experts outlined with their
    weights. Returns per layer the token's [(expert, gate, prob), ...], best first."""
    _simulated_banner(stats)
    t = int(np.clip(token_index, 0, stats.n_tokens - 1))
    view = gating_view(stats, t)
    ch = moe_corpus.ALPHABET[stats.tokens[t]] if 0 <= stats.tokens[t] < len(moe_corpus.ALPHABET) else "?"
    imgui.text(tr("moe.gating_line", t=t, ch=repr(ch), k=stats.top_k,
                  router=tr("moe.sigmoid" if stats.config.routing == "deepseek_v3" else "moe.probabilities"),
                  weights=tr("moe.renormalised" if stats.config.norm_topk_prob else "moe.raw_weights")))
    if view.per_bar > 1:
        imgui.text_disabled(tr("moe.per_bar", n=view.per_bar))
    width = max(imgui.get_content_region_avail().x - 70.0, 40.0)
    height = 36.0
    background, white = _u32(_BACKGROUND), _u32((1, 1, 1))
    for row in _rows("##moe_gating", stats.n_layers):
        dl = imgui.get_window_draw_list()  # the scrolling child's list, so rows clip to it
        imgui.text(view.labels[row])
        imgui.same_line(50)
        p = imgui.get_cursor_screen_pos()
        bars, outlines = view.row_rects(row, p.x, p.y, width, height)
        dl.add_rect_filled(p, imgui.ImVec2(p.x + width, p.y + height), background)
        for a, b, color in bars:
            dl.add_rect_filled(a, b, color)
        for a, b in outlines:
            dl.add_rect(a, b, white, 0.0, 0, 2.0)
        imgui.dummy(imgui.ImVec2(width, height))
        imgui.text(view.captions[row])
    return view.chosen


def heatmap_values(stats, mode: str) -> tuple[np.ndarray, str]:
    """(L, E) values the heatmap shows and their caption."""
    if mode == "tokens":
        return stats.counts.astype(np.float32), tr("moe.tokens_routed")
    if mode == "gate":
        return stats.mean_gate, tr("moe.mean_gate")
    raise ValueError(f"heatmap mode must be one of {HEATMAP_MODES}, not {mode!r}")


def _bin(values: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Mean over row and column bins, so a 58 × 256 grid draws as ≤ rows × cols cells."""
    L, E = values.shape
    rb, cb = -(-L // rows), -(-E // cols)
    padded = np.full((rb * -(-L // rb), cb * -(-E // cb)), np.nan, np.float32)
    padded[:L, :E] = values
    return np.nanmean(padded.reshape(padded.shape[0] // rb, rb, padded.shape[1] // cb, cb), axis=(1, 3))


def heatmap_cell(stats, fx: float, fy: float) -> tuple[int, int] | None:
    """(block index, expert) under a point at fractions (fx, fy) of the grid, binned or not."""
    if not (0 <= fx < 1 and 0 <= fy < 1):
        return None
    return int(stats.layers[int(fy * stats.n_layers)]), int(fx * stats.n_experts)


class HeatmapView:
    """What the heatmap tab draws for one statistics object and mode, derived once: the (binned)
    values, their colours (rows, cols, 3) and packed colours, the row labels; the cells' rectangles
    (and numbers, where they fit) for one placement, kept while the panel stays where it is."""

    def __init__(self, stats, mode: str):
        values, self.caption = heatmap_values(stats, mode)
        L, E = values.shape
        binned = L > MAX_HEATMAP_ROWS or E > MAX_HEATMAP_COLUMNS
        self.shown = _bin(values, MAX_HEATMAP_ROWS, MAX_HEATMAP_COLUMNS) if binned else values
        self.rows, self.cols = self.shown.shape
        self.note = tr("moe.binned", layers=-(-L // self.rows), experts=-(-E // self.cols)) if binned else ""
        self.title = tr("moe.heatmap_title", caption=self.caption, layers=L, experts=E)
        self.hi = float(np.nanmax(values)) if values.size and np.nanmax(values) > 0 else 1.0
        self.colors = viridis(np.nan_to_num(self.shown / self.hi))
        self.packed = pack_u32(self.colors)
        self.labels = [f"L{int(stats.layers[min(r * -(-L // self.rows), L - 1)])}" for r in range(self.rows)]
        self.mode = mode
        self.number_colors = pack_u32(np.where(self.colors.mean(axis=-1, keepdims=True) > 0.5, 0.0, 1.0)
                                      * np.ones(3, np.float32))
        self.legend_max = f"{self.hi:.0f}" if mode == "tokens" else f"{self.hi:.3f}"
        self._placed = None

    def cells(self, x: float, y: float, cw: float, ch: float, numbers: bool):
        """(min, max, colour) per cell and (position, colour, text) per number, for a grid at (x, y)."""
        key = (x, y, cw, ch, numbers)
        if self._placed is None or self._placed[0] != key:
            packed, rects, texts = self.packed.tolist(), [], []
            dark, shown = self.number_colors.tolist(), self.shown.tolist()
            for r in range(self.rows):
                top = y + r * ch
                for c in range(self.cols):
                    left = x + c * cw
                    rects.append((imgui.ImVec2(left, top), imgui.ImVec2(left + cw - 1, top + ch - 1), packed[r][c]))
                    if numbers:
                        v = shown[r][c]
                        texts.append((imgui.ImVec2(left + 2, top + 2), dark[r][c],
                                      f"{int(round(v))}" if self.mode == "tokens" else f"{v:.2f}"))
            self._placed = key, rects, texts
        return self._placed[1], self._placed[2]


_heatmap_views = _PerStats()
_LEGEND = pack_u32(viridis(np.linspace(0, 1, 32))).tolist()


def heatmap_view(stats, mode: str) -> HeatmapView:
    return _heatmap_views.get(stats, mode, lambda: HeatmapView(stats, mode))


def draw_heatmap(stats, mode: str = "tokens") -> tuple[int, int] | None:
    """Layers × experts, coloured by `mode` ("tokens" or "gate") with a legend and numbers when the
    cells are big enough. Returns (block index, expert) of a clicked cell, else None."""
    _simulated_banner(stats)
    view = heatmap_view(stats, mode)
    if view.note:
        imgui.text_disabled(view.note)
    imgui.text(view.title)
    label_w = 40.0
    width = max(imgui.get_content_region_avail().x - label_w, 40.0)
    cw = width / view.cols
    ch = float(np.clip(cw, 8.0, 22.0))
    dl = imgui.get_window_draw_list()
    origin = imgui.get_cursor_screen_pos()
    rects, numbers = view.cells(origin.x + label_w, origin.y, cw, ch, cw >= 24.0)
    grey = _u32((0.8, 0.8, 0.85))
    for r, label in enumerate(view.labels):
        dl.add_text(imgui.ImVec2(origin.x, origin.y + r * ch), grey, label)
    for a, b, color in rects:
        dl.add_rect_filled(a, b, color)
    for at, color, text in numbers:
        dl.add_text(at, color, text)
    imgui.set_cursor_screen_pos(imgui.ImVec2(origin.x + label_w, origin.y))
    imgui.invisible_button("##moe_heatmap", imgui.ImVec2(cw * view.cols, ch * view.rows))
    clicked = None
    if imgui.is_item_clicked():
        # the cell under the pointer by arithmetic, not by testing cells
        m = imgui.get_mouse_pos()
        clicked = heatmap_cell(stats, (m.x - origin.x - label_w) / (cw * view.cols), (m.y - origin.y) / (ch * view.rows))
    # Legend: the colour scale from 0 to the maximum.
    p = imgui.get_cursor_screen_pos()
    for i, color in enumerate(_LEGEND):
        x = p.x + label_w + i * 6
        dl.add_rect_filled(imgui.ImVec2(x, p.y), imgui.ImVec2(x + 6, p.y + 10), color)
    dl.add_text(imgui.ImVec2(p.x, p.y - 2), grey, "0")
    dl.add_text(imgui.ImVec2(p.x + label_w + len(_LEGEND) * 6 + 6, p.y - 2), grey, view.legend_max)
    imgui.dummy(imgui.ImVec2(label_w + len(_LEGEND) * 6 + 60, 14))
    return clicked


def draw_load_balance(stats, requested: tuple[int, float | None] | None = None) -> tuple[int, float | None]:
    """Per layer CV of expert load, auxiliary loss, capacity and dropped assignments; controls for
    top-k and the capacity factor, showing `requested` (top_k, capacity_factor) while statistics
    for it are being computed, else the statistics' own. Returns (top_k, capacity_factor or None
    for unlimited)."""
    _simulated_banner(stats)
    cap = tr("moe.unlimited") if stats.capacity is None else tr("moe.per_expert", n=stats.capacity)
    imgui.text(tr("moe.balance_line", k=stats.top_k, capacity=cap, aux=_aux_name(stats)))
    if imgui.begin_table("##moe_balance", 5, imgui.TableFlags_.borders | imgui.TableFlags_.scroll_y,
                         imgui.ImVec2(0, min(26.0 + 20.0 * stats.n_layers, 260.0))):
        for name in ("layer", "cv", "aux", "dropped", "busiest"):
            imgui.table_setup_column(tr("moe.column." + name))
        imgui.table_headers_row()
        total = stats.n_tokens * stats.top_k
        clipper = imgui.ListClipper()  # only the rows in view are drawn
        clipper.begin(stats.n_layers)
        while clipper.step():
            for row in range(clipper.display_start, clipper.display_end):
                imgui.table_next_row()
                cells = (f"L{int(stats.layers[row])}", num(float(stats.cv[row]), ".3f"), num(float(stats.aux_loss[row]), ".4f"),
                         f"{int(stats.n_dropped[row])} / {total}",
                         f"E{int(stats.load[row].argmax())} ({int(stats.load[row].max())})")
                for c, text in enumerate(cells):
                    imgui.table_set_column_index(c)
                    imgui.text(text)
        clipper.end()
        imgui.end_table()
    k_max = stats.n_experts
    if stats.config.routing == "deepseek_v3":
        k_max = stats.n_experts // stats.config.n_groups * stats.config.topk_groups
    shown_k, shown_factor = requested if requested is not None else (stats.top_k, stats.capacity_factor)
    _, k = imgui.slider_int(tr("moe.top_k") + "###top_k", int(min(shown_k, k_max)), 1, int(k_max))
    limited = shown_factor is not None
    _, limited = imgui.checkbox(tr("moe.limit_capacity") + "###limit", limited)
    factor = shown_factor if shown_factor is not None else 1.0
    if limited:
        _, factor = imgui.slider_float(tr("moe.capacity_factor") + "###factor", float(factor), 0.25, 4.0,
                                       num(float(factor), ".2f").replace("%", "%%"))
    return int(k), (float(factor) if limited else None)


def _aux_name(stats) -> str:
    if stats.config.routing == "deepseek_v3":
        return tr("moe.aux_deepseek")
    return tr("moe.aux_mixtral")


@functools.lru_cache(maxsize=16)
def _packed_expert_colors(n: int) -> list[int]:
    return pack_u32(expert_colors(n)).tolist()


def draw_specialisation(stats, text: str | None = None) -> np.ndarray:
    """The input characters, one row per layer, each on its top-1 expert's colour, with a legend.
    Returns the (L, T) top-1 experts drawn."""
    _simulated_banner(stats)
    top1 = stats.top1
    chars = text if text is not None else stats.text
    if len(chars) < stats.n_tokens:
        chars = moe_corpus.decode(stats.tokens)
    colors = _packed_expert_colors(stats.n_experts)
    top1_rows = top1.tolist()
    ink = _u32((0.05, 0.05, 0.08))
    counts = np.bincount(top1.reshape(-1), minlength=stats.n_experts)
    _expert_legend(stats.n_experts, counts)
    cw, ch = 9.0, 16.0
    for row in _rows("##moe_special", stats.n_layers):
        dl = imgui.get_window_draw_list()  # the scrolling child's list, so rows clip to it
        imgui.text(f"L{int(stats.layers[row])}")
        imgui.same_line(50)
        p = imgui.get_cursor_screen_pos()
        for t, expert in enumerate(top1_rows[row]):
            x = p.x + t * cw
            dl.add_rect_filled(imgui.ImVec2(x, p.y), imgui.ImVec2(x + cw - 1, p.y + ch), colors[expert])
            c = chars[t]
            dl.add_text(imgui.ImVec2(x + 1, p.y + 1), ink, "/" if c == "\n" else c)
        imgui.dummy(imgui.ImVec2(cw * stats.n_tokens, ch))
    return top1


# ---------------------------------------------------------------- the MoE window

from llmviz.scenes.panels import MOE_PANEL_WIDTH  # noqa: E402  (the window places it)
ERROR_RGB = imgui.ImVec4(1.0, 0.42, 0.38, 1.0)
OK_RGB = imgui.ImVec4(0.45, 0.9, 0.5, 1.0)
DIM_RGB = imgui.ImVec4(0.62, 0.64, 0.68, 1.0)
MOE_TABS = ("Gating", "Heatmap", "Load balance", "Specialisation")   # the tabs' ids (select_tab names one)


def requested_routing(routing, stats) -> tuple[int, float | None]:
    """(top_k, capacity_factor) the controls show: the newest request while its statistics are being
    computed (so a slider does not jump back meanwhile), else the statistics' own."""
    if not getattr(routing, "pending", False) or getattr(routing, "top_k", None) is None:
        return int(stats.top_k), stats.capacity_factor
    return int(routing.top_k), routing.capacity_factor


class MoeChoice:
    """What the user asked of the MoE window this frame (the window acts on it after drawing)."""

    def __init__(self):
        self.play_pause = False
        self.step = False
        self.generate = False
        self.toggle_generation = False  # a live model: start / stop appending its next character
        self.routing: tuple[int, float | None] | None = None  # new (top_k, capacity_factor)
        self.fly_to: tuple[int, int] | None = None  # (block index, expert) clicked in the heatmap
        self.export = False


class MoePanel:
    """The mixture-of-experts window: text in, play / pause / step the routing animation, the four
    routing panels as tabs and the routing-trace export. Keeps only UI state (text being edited,
    heatmap mode, export folder, the last message)."""

    def __init__(self, title: str, live: bool):
        self.title = title
        self.live = live  # a trained model (moe-4 / moe-8) that can generate, not simulated routing
        self.text: str | None = None
        self.error: str | None = None
        self.mode = HEATMAP_MODES[0]
        self.export_dir = "."
        self.message = ""
        self.message_ok = True
        self.select_tab: str | None = None  # a tab to bring forward on the next frame (one of MOE_TABS)

    def draw(self, x: float, y: float, height: float, routing, token_index: int, playing: bool,
             layer_label: str = "") -> MoeChoice:
        choice = MoeChoice()
        imgui.set_next_window_pos(imgui.ImVec2(x, y), imgui.Cond_.always)
        # As tall as its contents, up to the room above the key hints (then it scrolls).
        imgui.set_next_window_size_constraints(imgui.ImVec2(MOE_PANEL_WIDTH, 0),
                                               imgui.ImVec2(MOE_PANEL_WIDTH, max(height, 120.0)))
        imgui.set_next_window_bg_alpha(0.9)
        expanded, _ = imgui.begin(self.title + "###moe_panel", None, imgui.WindowFlags_.no_saved_settings | imgui.WindowFlags_.no_move
                                  | imgui.WindowFlags_.no_focus_on_appearing | imgui.WindowFlags_.always_auto_resize)
        if expanded:
            if routing is None or getattr(routing, "stats", None) is None:
                imgui.text_colored(DIM_RGB, tr("moe.preparing" if routing is None else "moe.waiting"))
                err = getattr(routing, "error", None)
                if err:
                    imgui.text_colored(ERROR_RGB, err)
            else:
                self._body(routing, token_index, playing, layer_label, choice)
        imgui.end()
        return choice

    def _tab(self, name: str) -> bool:
        flags = imgui.TabItemFlags_.set_selected if self.select_tab == name else 0
        return imgui.begin_tab_item(tr("moe.tab." + name.lower().replace(" ", "_")) + "###" + name, None, flags)[0]

    def _body(self, routing, token_index: int, playing: bool, layer_label: str, choice: MoeChoice) -> None:
        stats = routing.stats
        if self.text is None:
            self.text = getattr(routing, "text", None) if self.live else stats.text
            self.text = self.text or ""
        imgui.text(tr("moe.text"))
        imgui.same_line()
        imgui.set_next_item_width(-1)
        changed, text = imgui.input_text("##moe_text", self.text)
        if changed:
            self.text = text
            self.error = routing.set_text(text) if text else tr("moe.type_text")
        if self.error:
            imgui.text_colored(ERROR_RGB, self.error)
        if getattr(routing, "error", None):
            imgui.text_colored(ERROR_RGB, routing.error)
        if getattr(routing, "attention", None) is not None:   # who computed the trace's attention (wgpu backend)
            imgui.push_text_wrap_pos(0.0)
            imgui.text_colored(DIM_RGB, routing.attention.label)
            imgui.pop_text_wrap_pos()
        if imgui.button(tr("nano.pause" if playing else "nano.play") + "###moe_play"):
            choice.play_pause = True
        imgui.same_line()
        if imgui.button(tr("moe.step_token") + "###moe_step"):
            choice.step = True
        if self.live:
            imgui.same_line()
            if imgui.button(tr("moe.generate") + "###moe_generate"):
                choice.generate = True
            imgui.same_line()
            changed, _ = imgui.checkbox(tr("moe.auto") + "###moe_auto", bool(getattr(routing, "playing", False)))
            choice.toggle_generation = changed
        t = int(np.clip(token_index, 0, stats.n_tokens - 1))
        chars = stats.text if len(stats.text) >= stats.n_tokens else moe_corpus.decode(stats.tokens)
        ch = chars[t] if t < len(chars) else "?"
        imgui.text(tr("moe.token_of", i=t + 1, n=stats.n_tokens, ch=repr(ch))
                   + (tr("moe.packets", layer=layer_label) if layer_label else ""))
        if getattr(routing, "pending", False):  # the panel keeps showing the last statistics meanwhile
            imgui.same_line()
            imgui.text_colored(DIM_RGB, tr("moe.pending"))
        if imgui.begin_tab_bar("##moe_tabs"):
            if self._tab("Gating"):
                draw_gating(stats, t)
                imgui.end_tab_item()
            if self._tab("Heatmap"):
                for mode, label in zip(HEATMAP_MODES, ("moe.radio_tokens", "moe.radio_gate")):
                    if imgui.radio_button(tr(label) + "###" + mode, self.mode == mode):
                        self.mode = mode
                    imgui.same_line()
                imgui.new_line()
                choice.fly_to = draw_heatmap(stats, self.mode)
                imgui.text_colored(DIM_RGB, tr("moe.click_cell"))
                imgui.end_tab_item()
            if self._tab("Load balance"):
                shown = requested_routing(routing, stats)
                k, factor = draw_load_balance(stats, shown)
                if (k, factor) != shown:
                    choice.routing = (k, factor)
                imgui.end_tab_item()
            if self._tab("Specialisation"):
                draw_specialisation(stats, None)
                imgui.end_tab_item()
            imgui.end_tab_bar()
            self.select_tab = None
        memory = getattr(routing, "memory_lines", None)   # a hybrid's attention cache beside its Mamba state
        if memory is not None:
            imgui.separator()
            imgui.push_text_wrap_pos(0.0)
            for line in memory():
                imgui.text(line)
            imgui.pop_text_wrap_pos()
        imgui.separator()
        imgui.text(tr("moe.export_folder"))
        imgui.same_line()
        imgui.set_next_item_width(200)
        _, self.export_dir = imgui.input_text("##moe_export", self.export_dir)
        imgui.same_line()
        if imgui.button(tr("moe.export") + "###moe_export_button"):
            choice.export = True
        if self.message:
            imgui.push_text_wrap_pos(0.0)
            imgui.text_colored(OK_RGB if self.message_ok else ERROR_RGB, self.message)
            imgui.pop_text_wrap_pos()
