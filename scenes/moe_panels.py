"""Dear ImGui panels for mixture-of-experts routing: gating bars, the utilisation heatmap, load
balancing with top-k / capacity controls, and the input text coloured by top-1 expert.

Each function draws into the current ImGui window from a `RoutingStats` (scenes/moe_live.py)
and returns what the window needs to react to; none keeps state. Big expert counts are drawn
with one draw-list call per cell, binned so a frame costs a few thousand calls at most.
"""
from __future__ import annotations

import numpy as np
from imgui_bundle import imgui

from llmviz.models.sim import moe_corpus
from llmviz.scenes.moe_live import expert_colors

SIMULATED_LABEL = "simulated routing (random router, random inputs)"
MAX_HEATMAP_COLUMNS = 64      # experts per row before binning
MAX_HEATMAP_ROWS = 32         # layers before binning
MAX_LEGEND_EXPERTS = 16
HEATMAP_MODES = ("tokens", "gate")
# Viridis stops, for the heatmap's sequential scale.
_VIRIDIS = np.array([(0.267, 0.005, 0.329), (0.230, 0.322, 0.546), (0.128, 0.567, 0.551),
                     (0.369, 0.789, 0.383), (0.993, 0.906, 0.144)], np.float32)


def _u32(rgb, alpha: float = 1.0) -> int:
    return imgui.get_color_u32(imgui.ImVec4(float(rgb[0]), float(rgb[1]), float(rgb[2]), alpha))


def viridis(values: np.ndarray) -> np.ndarray:
    """(..., 3) colours for values in [0, 1]."""
    v = np.clip(np.asarray(values, np.float32), 0, 1) * (len(_VIRIDIS) - 1)
    lo = np.minimum(v.astype(np.int64), len(_VIRIDIS) - 2)
    f = (v - lo)[..., None]
    return _VIRIDIS[lo] * (1 - f) + _VIRIDIS[lo + 1] * f


def _simulated_banner(stats) -> None:
    if stats.simulated:
        imgui.text_colored(imgui.ImVec4(1.0, 0.75, 0.3, 1.0), SIMULATED_LABEL)


def _expert_legend(n: int, counts: np.ndarray | None = None) -> None:
    if n > MAX_LEGEND_EXPERTS:
        imgui.text_disabled(f"colour = expert id ({n} experts, hues repeat by golden angle)")
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


def draw_gating(stats, token_index: int) -> list[list[tuple[int, float, float]]]:
    """Per layer, the token's router probabilities as bars, the chosen experts outlined with their
    weights. Returns per layer the token's [(expert, gate, prob), ...], best first."""
    _simulated_banner(stats)
    t = int(np.clip(token_index, 0, stats.n_tokens - 1))
    ch = moe_corpus.ALPHABET[stats.tokens[t]] if 0 <= stats.tokens[t] < len(moe_corpus.ALPHABET) else "?"
    imgui.text(f"token {t} {ch!r}: router {'sigmoid scores' if stats.config.routing == 'deepseek_v3' else 'probabilities'},"
               f" top-{stats.top_k} outlined, weights renormalised")
    E = stats.n_experts
    per_bar = -(-E // MAX_GATING_BARS)
    n_bars = -(-E // per_bar)
    colors = expert_colors(E)[::per_bar]
    probs_all = np.zeros((stats.n_layers, n_bars * per_bar), np.float32)
    probs_all[:, :E] = stats.probs[:, t]
    bars_all = probs_all.reshape(stats.n_layers, n_bars, per_bar).max(axis=2)
    if per_bar > 1:
        imgui.text_disabled(f"each bar: the highest of {per_bar} experts")
    chosen_all = [[(int(stats.topk[row, t, r]), float(stats.gates[row, t, r]), float(stats.probs[row, t, stats.topk[row, t, r]]))
                   for r in range(stats.top_k)] for row in range(stats.n_layers)]
    width = max(imgui.get_content_region_avail().x - 70.0, 40.0)
    bar_w, expert_w = width / n_bars, width / E
    height = 36.0
    for row in _rows("##moe_gating", stats.n_layers):
        dl = imgui.get_window_draw_list()  # the scrolling child's list, so rows clip to it
        bars = bars_all[row]
        top = float(bars.max()) or 1.0
        imgui.text(f"L{int(stats.layers[row])}")
        imgui.same_line(50)
        p = imgui.get_cursor_screen_pos()
        dl.add_rect_filled(p, imgui.ImVec2(p.x + width, p.y + height), _u32((0.12, 0.13, 0.16)))
        for b in range(n_bars):
            h = height * float(bars[b]) / top
            x = p.x + b * bar_w
            dl.add_rect_filled(imgui.ImVec2(x, p.y + height - h), imgui.ImVec2(x + max(bar_w - 1, 1), p.y + height),
                               _u32(colors[b], 0.6))
        for e, _, _ in chosen_all[row]:
            x = p.x + e * expert_w
            dl.add_rect(imgui.ImVec2(x - 1, p.y - 1), imgui.ImVec2(x + max(expert_w, 2) + 1, p.y + height + 1),
                        _u32((1, 1, 1)), 0.0, 0, 2.0)
        imgui.dummy(imgui.ImVec2(width, height))
        imgui.text("   " + "  ".join(f"E{e} w={g:.3f}" + (" DROPPED" if d else "")
                                     for (e, g, _), d in zip(chosen_all[row], stats.dropped[row, t])))
    return chosen_all


def heatmap_values(stats, mode: str) -> tuple[np.ndarray, str]:
    """(L, E) values the heatmap shows and their caption."""
    if mode == "tokens":
        return stats.counts.astype(np.float32), "tokens routed (after drops)"
    if mode == "gate":
        return stats.mean_gate, "mean gate weight per token"
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


def draw_heatmap(stats, mode: str = "tokens") -> tuple[int, int] | None:
    """Layers × experts, coloured by `mode` ("tokens" or "gate") with a legend and numbers when the
    cells are big enough. Returns (block index, expert) of a clicked cell, else None."""
    _simulated_banner(stats)
    values, caption = heatmap_values(stats, mode)
    L, E = values.shape
    shown = _bin(values, MAX_HEATMAP_ROWS, MAX_HEATMAP_COLUMNS) if (L > MAX_HEATMAP_ROWS or E > MAX_HEATMAP_COLUMNS) else values
    rows, cols = shown.shape
    if shown is not values:
        imgui.text_disabled(f"binned: {-(-L // rows)} layer(s) × {-(-E // cols)} expert(s) per cell (mean)")
    hi = float(np.nanmax(values)) if values.size and np.nanmax(values) > 0 else 1.0
    imgui.text(f"{caption}: {L} layers × {E} experts")
    label_w = 40.0
    width = max(imgui.get_content_region_avail().x - label_w, 40.0)
    cw = width / cols
    ch = float(np.clip(cw, 8.0, 22.0))
    dl = imgui.get_window_draw_list()
    origin = imgui.get_cursor_screen_pos()
    colors = viridis(np.nan_to_num(shown / hi))
    numbers = cw >= 24.0
    for r in range(rows):
        y = origin.y + r * ch
        dl.add_text(imgui.ImVec2(origin.x, y), _u32((0.8, 0.8, 0.85)), f"L{int(stats.layers[min(r * -(-L // rows), L - 1)])}")
        for c in range(cols):
            x = origin.x + label_w + c * cw
            dl.add_rect_filled(imgui.ImVec2(x, y), imgui.ImVec2(x + cw - 1, y + ch - 1), _u32(colors[r, c]))
            if numbers:
                v = shown[r, c]
                text = f"{int(round(v))}" if mode == "tokens" else f"{v:.2f}"
                dark = colors[r, c].mean() > 0.5
                dl.add_text(imgui.ImVec2(x + 2, y + 2), _u32((0, 0, 0) if dark else (1, 1, 1)), text)
    imgui.set_cursor_screen_pos(imgui.ImVec2(origin.x + label_w, origin.y))
    imgui.invisible_button("##moe_heatmap", imgui.ImVec2(cw * cols, ch * rows))
    clicked = None
    if imgui.is_item_clicked():
        m = imgui.get_mouse_pos()
        fx = (m.x - origin.x - label_w) / (cw * cols)
        fy = (m.y - origin.y) / (ch * rows)
        clicked = heatmap_cell(stats, fx, fy)
    # Legend: the colour scale from 0 to the maximum.
    p = imgui.get_cursor_screen_pos()
    steps = 32
    for i in range(steps):
        x = p.x + label_w + i * 6
        dl.add_rect_filled(imgui.ImVec2(x, p.y), imgui.ImVec2(x + 6, p.y + 10), _u32(viridis(i / (steps - 1))))
    dl.add_text(imgui.ImVec2(p.x, p.y - 2), _u32((0.8, 0.8, 0.85)), "0")
    dl.add_text(imgui.ImVec2(p.x + label_w + steps * 6 + 6, p.y - 2), _u32((0.8, 0.8, 0.85)),
                f"{hi:.0f}" if mode == "tokens" else f"{hi:.3f}")
    imgui.dummy(imgui.ImVec2(label_w + steps * 6 + 60, 14))
    return clicked


def draw_load_balance(stats) -> tuple[int, float | None]:
    """Per layer CV of expert load, auxiliary loss, capacity and dropped assignments; controls for
    top-k and the capacity factor. Returns (top_k, capacity_factor or None for unlimited)."""
    _simulated_banner(stats)
    cap = "unlimited" if stats.capacity is None else f"{stats.capacity} per expert"
    imgui.text(f"top-{stats.top_k}, capacity {cap}; aux loss is {_aux_name(stats)}")
    if imgui.begin_table("##moe_balance", 5, imgui.TableFlags_.borders | imgui.TableFlags_.scroll_y,
                         imgui.ImVec2(0, min(26.0 + 20.0 * stats.n_layers, 260.0))):
        for name in ("layer", "CV of load", "aux loss", "dropped", "busiest expert"):
            imgui.table_setup_column(name)
        imgui.table_headers_row()
        total = stats.n_tokens * stats.top_k
        clipper = imgui.ListClipper()  # only the rows in view are drawn
        clipper.begin(stats.n_layers)
        while clipper.step():
            for row in range(clipper.display_start, clipper.display_end):
                imgui.table_next_row()
                cells = (f"L{int(stats.layers[row])}", f"{stats.cv[row]:.3f}", f"{stats.aux_loss[row]:.4f}",
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
    _, k = imgui.slider_int("top-k", int(stats.top_k), 1, int(k_max))
    limited = stats.capacity_factor is not None
    _, limited = imgui.checkbox("limit expert capacity", limited)
    factor = stats.capacity_factor if stats.capacity_factor is not None else 1.0
    if limited:
        _, factor = imgui.slider_float("capacity factor", float(factor), 0.25, 4.0, "%.2f")
    return int(k), (float(factor) if limited else None)


def _aux_name(stats) -> str:
    if stats.config.routing == "deepseek_v3":
        return "0 (DeepSeek-V3 balances with a bias, no aux loss)"
    return "E · Σ f_e · P_e (transformers' Mixtral loss, no coefficient)"


def draw_specialisation(stats, text: str | None = None) -> np.ndarray:
    """The input characters, one row per layer, each on its top-1 expert's colour, with a legend.
    Returns the (L, T) top-1 experts drawn."""
    _simulated_banner(stats)
    top1 = stats.top1
    chars = text if text is not None else stats.text
    if len(chars) < stats.n_tokens:
        chars = moe_corpus.decode(stats.tokens)
    colors = expert_colors(stats.n_experts)
    counts = np.bincount(top1.reshape(-1), minlength=stats.n_experts)
    _expert_legend(stats.n_experts, counts)
    cw, ch = 9.0, 16.0
    for row in _rows("##moe_special", stats.n_layers):
        dl = imgui.get_window_draw_list()  # the scrolling child's list, so rows clip to it
        imgui.text(f"L{int(stats.layers[row])}")
        imgui.same_line(50)
        p = imgui.get_cursor_screen_pos()
        for t in range(stats.n_tokens):
            x = p.x + t * cw
            dl.add_rect_filled(imgui.ImVec2(x, p.y), imgui.ImVec2(x + cw - 1, p.y + ch), _u32(colors[top1[row, t]]))
            c = chars[t]
            dl.add_text(imgui.ImVec2(x + 1, p.y + 1), _u32((0.05, 0.05, 0.08)), "/" if c == "\n" else c)
        imgui.dummy(imgui.ImVec2(cw * stats.n_tokens, ch))
    return top1


# ---------------------------------------------------------------- the MoE window

from llmviz.scenes.panels import MOE_PANEL_WIDTH  # noqa: E402  (the window places it)
ERROR_RGB = imgui.ImVec4(1.0, 0.42, 0.38, 1.0)
OK_RGB = imgui.ImVec4(0.45, 0.9, 0.5, 1.0)
DIM_RGB = imgui.ImVec4(0.62, 0.64, 0.68, 1.0)
MOE_TABS = ("Gating", "Heatmap", "Load balance", "Specialisation")


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
        expanded, _ = imgui.begin(self.title, None, imgui.WindowFlags_.no_saved_settings | imgui.WindowFlags_.no_move
                                  | imgui.WindowFlags_.no_focus_on_appearing | imgui.WindowFlags_.always_auto_resize)
        if expanded:
            if routing is None or getattr(routing, "stats", None) is None:
                imgui.text_colored(DIM_RGB, "preparing simulated routing…" if routing is None
                                   else "waiting for the first routing trace…")
                err = getattr(routing, "error", None)
                if err:
                    imgui.text_colored(ERROR_RGB, err)
            else:
                self._body(routing, token_index, playing, layer_label, choice)
        imgui.end()
        return choice

    def _tab(self, name: str) -> bool:
        flags = imgui.TabItemFlags_.set_selected if self.select_tab == name else 0
        return imgui.begin_tab_item(name, None, flags)[0]

    def _body(self, routing, token_index: int, playing: bool, layer_label: str, choice: MoeChoice) -> None:
        stats = routing.stats
        if self.text is None:
            self.text = getattr(routing, "text", None) if self.live else stats.text
            self.text = self.text or ""
        imgui.text("Text")
        imgui.same_line()
        imgui.set_next_item_width(-1)
        changed, text = imgui.input_text("##moe_text", self.text)
        if changed:
            self.text = text
            self.error = routing.set_text(text) if text else "type some text to route"
        if self.error:
            imgui.text_colored(ERROR_RGB, self.error)
        if getattr(routing, "error", None):
            imgui.text_colored(ERROR_RGB, routing.error)
        if imgui.button("Pause (Space)" if playing else "Play (Space)"):
            choice.play_pause = True
        imgui.same_line()
        if imgui.button("Step token (N)"):
            choice.step = True
        if self.live:
            imgui.same_line()
            if imgui.button("Generate next char"):
                choice.generate = True
            imgui.same_line()
            changed, _ = imgui.checkbox("auto", bool(getattr(routing, "playing", False)))
            choice.toggle_generation = changed
        t = int(np.clip(token_index, 0, stats.n_tokens - 1))
        chars = stats.text if len(stats.text) >= stats.n_tokens else moe_corpus.decode(stats.tokens)
        ch = chars[t] if t < len(chars) else "?"
        imgui.text(f"token {t + 1} of {stats.n_tokens}: {ch!r}" + (f"   packets: {layer_label}" if layer_label else ""))
        if imgui.begin_tab_bar("##moe_tabs"):
            if self._tab("Gating"):
                draw_gating(stats, t)
                imgui.end_tab_item()
            if self._tab("Heatmap"):
                for mode, label in zip(HEATMAP_MODES, ("tokens routed", "mean gate weight")):
                    if imgui.radio_button(label, self.mode == mode):
                        self.mode = mode
                    imgui.same_line()
                imgui.new_line()
                choice.fly_to = draw_heatmap(stats, self.mode)
                imgui.text_colored(DIM_RGB, "click a cell to fly to that expert")
                imgui.end_tab_item()
            if self._tab("Load balance"):
                k, factor = draw_load_balance(stats)
                if (k, factor) != (int(stats.top_k), stats.capacity_factor):
                    choice.routing = (k, factor)
                imgui.end_tab_item()
            if self._tab("Specialisation"):
                draw_specialisation(stats, None)
                imgui.end_tab_item()
            imgui.end_tab_bar()
            self.select_tab = None
        imgui.separator()
        imgui.text("Export folder")
        imgui.same_line()
        imgui.set_next_item_width(200)
        _, self.export_dir = imgui.input_text("##moe_export", self.export_dir)
        imgui.same_line()
        if imgui.button("Export routing (npz, csv)"):
            choice.export = True
        if self.message:
            imgui.push_text_wrap_pos(0.0)
            imgui.text_colored(OK_RGB if self.message_ok else ERROR_RGB, self.message)
            imgui.pop_text_wrap_pos()
