"""The explorer's token-stream window: a prompt sent to an OpenAI-compatible server, its answer token by token as a strip of cells.

Opened from the Server menu (or Ctrl+L). The request runs on a worker thread (models/openai_stream.py);
the frame only reads what has arrived so far and never waits: Stop shuts the worker's socket, which
ends its read at once. Each token is a cell coloured by the probability the server sent (viridis,
0 to 1, like the probability rows of our own models), grey where the server sent none; hovering or
clicking a cell shows its top-K alternatives and their entropy, which is over those K only. Cell
positions and colours are worked out once per arrived token; a frame draws the visible rows.
"""
from __future__ import annotations

import threading

import numpy as np
from imgui_bundle import imgui

from llmviz.common.i18n import num, tr
from llmviz.engine.render import colormaps
from llmviz.models.openai_stream import MAX_TOP_LOGPROBS, NO_LOGPROBS, Stream, StreamRequest
from llmviz.scenes import panels
from llmviz.scenes.legend import LegendEntry, _u32, bar_colors

WINDOW_SIZE = (700.0, 600.0)
STRIP_HEIGHT = 170.0
CELL_PAD_PX = 6.0
CELL_GAP_PX = 2.0
LEGEND_WIDTH = 180.0
DEFAULT_URL = "http://127.0.0.1:8000/v1"


def drawable(text: str) -> str:
    """A token's text as the UI font can draw it: spaces as ·, newlines as ↵, tabs as →, anything outside
    the font's ranges as its code (\\u4e2d)."""
    ranges = panels.GLYPH_RANGES[:-1]
    out = []
    for ch in text:
        if ch == " ":
            out.append("·")
        elif ch == "\n":
            out.append("↵")
        elif ch == "\t":
            out.append("→")
        elif any(ranges[i] <= ord(ch) <= ranges[i + 1] for i in range(0, len(ranges), 2)):
            out.append(ch)
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
    return "".join(out) or tr("stream.empty")


def cell_colors(probabilities) -> np.ndarray:
    """Packed ImGui colours of cells with these probabilities (NaN: no log-probability, the empty-cell grey)."""
    p = np.asarray(probabilities, np.float64)
    rgb = colormaps.apply(np.nan_to_num(p, nan=0.0), 0.0, 1.0, colormaps.COLORMAP_VIRIDIS)
    rgb[np.isnan(p)] = colormaps.NAN_RGB
    return _u32(rgb)


def ink_colors(probabilities) -> np.ndarray:
    """Dark text on the light end of viridis, light text elsewhere."""
    p = np.nan_to_num(np.asarray(probabilities, np.float64), nan=0.0)
    return np.where(p > 0.62, _u32([[0.05, 0.05, 0.08]])[0], _u32([[0.96, 0.96, 0.96]])[0])


class CellStrip:
    """Where each token's cell lies in the strip (wrapped rows), with its colours and label, grown as tokens arrive."""

    def __init__(self):
        self.width = 0.0
        self.labels: list[str] = []
        self.x = np.zeros(0)
        self.y = np.zeros(0)
        self.w = np.zeros(0)
        self.fill = np.zeros(0, np.uint32)
        self.ink = np.zeros(0, np.uint32)
        self.row_h = 0.0

    def __len__(self) -> int:
        return len(self.labels)

    def update(self, tokens, width: float, measure, row_h: float) -> None:
        """Lay out the tokens not laid out yet (all of them when the width changed); ``measure(text)`` is a width."""
        if width != self.width or row_h != self.row_h or len(tokens) < len(self.labels):
            self.__init__()
            self.width, self.row_h = width, row_h
        new = tokens[len(self.labels):]
        if not new:
            return
        labels = [drawable(t.text) for t in new]
        widths = np.array([measure(s) + CELL_PAD_PX for s in labels], np.float64)
        widths = np.minimum(np.maximum(widths, 10.0), max(width, 10.0))
        xs, ys = np.empty(len(new)), np.empty(len(new))
        x = self.x[-1] + self.w[-1] + CELL_GAP_PX if len(self.labels) else 0.0
        y = self.y[-1] if len(self.labels) else 0.0
        for i, cw in enumerate(widths.tolist()):  # new tokens only: once per token, never per frame
            if x > 0.0 and x + cw > width:
                x, y = 0.0, y + row_h + CELL_GAP_PX
            xs[i], ys[i] = x, y
            x += cw + CELL_GAP_PX
        p = np.array([np.nan if t.probability is None else t.probability for t in new], np.float64)
        self.labels += labels
        self.x, self.y, self.w = np.r_[self.x, xs], np.r_[self.y, ys], np.r_[self.w, widths]
        self.fill = np.r_[self.fill, cell_colors(p)]
        self.ink = np.r_[self.ink, ink_colors(p)]

    @property
    def height(self) -> float:
        return float(self.y[-1] + self.row_h) if len(self.labels) else self.row_h

    def visible(self, top: float, bottom: float) -> np.ndarray:
        """Indices of the cells whose row lies between ``top`` and ``bottom`` (strip pixels)."""
        return np.flatnonzero((self.y + self.row_h >= top) & (self.y <= bottom))

    def at(self, x: float, y: float) -> int | None:
        """The cell under strip pixel (x, y), or None."""
        hit = np.flatnonzero((self.x <= x) & (x < self.x + self.w) & (self.y <= y) & (y < self.y + self.row_h))
        return int(hit[0]) if len(hit) else None


class StreamPanel:
    """The window, its fields and the one stream it runs at a time."""

    def __init__(self, ex):
        self.ex = ex
        self.open = False
        self.url, self.model, self.prompt = DEFAULT_URL, "", "The quick brown fox"
        self.chat = False
        self.top_k, self.max_tokens, self.temperature = 5, 64, 0.0
        self.stream: Stream | None = None
        self.worker: threading.Thread | None = None
        self.problem = ""          # a field that cannot be sent, in one line
        self.selected: int | None = None
        self.hovered: int | None = None
        self.strip = CellStrip()
        self._legend = bar_colors(LegendEntry(colormaps.COLORMAP_VIRIDIS, 0.0, 1.0), LEGEND_WIDTH).tolist()

    # ---------------------------------------------------------------- actions
    def toggle(self) -> None:
        self.open = not self.open

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.is_alive()

    @property
    def result(self):
        return self.stream.result if self.stream is not None else None

    def start(self) -> bool:
        """Send the fields' request on a worker; False (and ``problem`` says why) when a field is wrong."""
        self.stop()
        request = StreamRequest(self.url.strip(), self.model.strip(), self.prompt, chat=self.chat,
                                top_logprobs=int(self.top_k), max_tokens=int(self.max_tokens),
                                temperature=float(self.temperature))
        try:
            stream = Stream(request)
        except ValueError as err:
            self.problem = str(err)
            return False
        self.problem = ""
        self.stream, self.selected, self.hovered = stream, None, None
        self.strip = CellStrip()
        self.worker = threading.Thread(target=stream.run, name="token stream", daemon=True)
        self.worker.start()
        return True

    def stop(self) -> None:
        """End the running stream (never waits: its socket is shut, the worker ends by itself)."""
        if self.stream is not None and self.running:
            self.stream.stop()

    def close(self, timeout: float = 5.0) -> None:
        """At exit: stop and join the worker."""
        self.stop()
        if self.worker is not None:
            self.worker.join(timeout)

    # ---------------------------------------------------------------- menu and window (inside the UI frame)
    def menu(self) -> None:
        if not imgui.begin_main_menu_bar():
            return
        if imgui.begin_menu(tr("stream.menu") + "###server"):
            if imgui.menu_item_simple(tr("stream.menu_item"), "Ctrl+L", self.open):
                self.toggle()
            imgui.text_disabled(tr("stream.servers"))
            imgui.end_menu()
        imgui.end_main_menu_bar()

    def status(self) -> tuple[str, tuple]:
        """The status line and its colour."""
        r = self.result
        if self.problem:
            return self.problem, panels.ERROR_RGB
        if r is None:
            return tr("stream.not_started"), panels.DIM_RGB
        n = len(r.tokens)
        first = tr("stream.first_after", ms=r.first_token_s * 1000) if r.first_token_s is not None else ""
        if not r.done:
            return (tr("stream.streaming", n=n, first=first) if n else tr("stream.waiting")), panels.LIVE_RGB
        if r.error:
            return r.error + (tr("stream.kept", n=n) if n else ""), panels.ERROR_RGB
        rate = tr("stream.rate", rate=r.tokens_per_s) if r.tokens_per_s is not None else ""
        served = tr("stream.served_as", model=r.served_model) if r.served_model not in (None, r.request.model) else ""
        return tr("stream.done", n=n, finish=r.finish_reason or tr("stream.none"), first=first, rate=rate,
                  served=served), panels.DIM_RGB

    def draw(self) -> None:
        if not self.open:
            return
        w = self.ex.ui.io.display_size.x if self.ex.ui is not None else 1280.0
        imgui.set_next_window_pos(imgui.ImVec2(max(10.0, (w - WINDOW_SIZE[0]) / 2), 80.0), imgui.Cond_.appearing)
        imgui.set_next_window_size(imgui.ImVec2(*WINDOW_SIZE), imgui.Cond_.appearing)
        imgui.set_next_window_bg_alpha(0.94)
        expanded, keep = imgui.begin(tr("stream.title") + "###tokenstream", True,
                                     imgui.WindowFlags_.no_saved_settings | imgui.WindowFlags_.no_collapse)
        if expanded:
            self._fields()
            text, color = self.status()
            imgui.push_text_wrap_pos(0.0)
            imgui.text_colored(color, text)
            imgui.pop_text_wrap_pos()
            r = self.result
            if r is not None and r.logprobs_note:
                imgui.text_colored(panels.AMBER_RGB, NO_LOGPROBS + tr("stream.text_only"))
            self._strip()
            self._legend_row()
            self._details()
        imgui.end()
        if not keep:
            self.open = False
            self.stop()

    def _fields(self) -> None:
        imgui.set_next_item_width(300)
        _, self.url = imgui.input_text(tr("stream.url") + "###url", self.url, imgui.InputTextFlags_.auto_select_all)
        imgui.same_line()
        imgui.set_next_item_width(180)
        _, self.model = imgui.input_text(tr("stream.model") + "###model", self.model, imgui.InputTextFlags_.auto_select_all)
        _, self.prompt = imgui.input_text_multiline(tr("stream.prompt") + "###prompt", self.prompt, imgui.ImVec2(-70, 46))
        _, self.chat = imgui.checkbox(tr("stream.chat") + "###chat", self.chat)
        imgui.same_line()
        imgui.set_next_item_width(110)
        _, self.top_k = imgui.slider_int(tr("stream.top_k") + "###top_k", int(self.top_k), 0, MAX_TOP_LOGPROBS)
        imgui.same_line()
        imgui.set_next_item_width(90)
        _, value = imgui.input_int(tr("stream.max_tokens") + "###max_tokens", int(self.max_tokens), 16, 64)
        self.max_tokens = int(np.clip(value, 1, 4096))
        imgui.same_line()
        imgui.set_next_item_width(90)
        _, self.temperature = imgui.slider_float(tr("stream.temperature") + "###temperature", float(self.temperature),
                                                 0.0, 2.0, num(float(self.temperature), ".2f").replace("%", "%%"))
        if self.running:
            if imgui.button(tr("stream.stop") + "###stop", imgui.ImVec2(80, 0)):
                self.stop()
        elif imgui.button(tr("stream.start") + "###start", imgui.ImVec2(80, 0)):
            self.start()
        imgui.same_line()
        imgui.text_colored(panels.DIM_RGB, tr("stream.real_model"))

    def _strip(self) -> None:
        r = self.result
        tokens = list(r.tokens) if r is not None else []
        row_h = imgui.get_text_line_height() + 4.0
        avail = imgui.get_content_region_avail().x
        imgui.begin_child("##tokens", imgui.ImVec2(avail, STRIP_HEIGHT), imgui.ChildFlags_.borders)
        width = imgui.get_content_region_avail().x
        self.strip.update(tokens, width, lambda s: imgui.calc_text_size(s).x, row_h)
        origin = imgui.get_cursor_screen_pos()
        scroll = imgui.get_scroll_y()
        strip = self.strip
        if not len(strip):
            imgui.text_colored(panels.DIM_RGB, tr("stream.answer_here"))
        dl = imgui.get_window_draw_list()
        for i in strip.visible(scroll - row_h, scroll + STRIP_HEIGHT).tolist():
            x0, y0 = origin.x + strip.x[i], origin.y + strip.y[i]
            a, b = imgui.ImVec2(x0, y0), imgui.ImVec2(x0 + strip.w[i], y0 + row_h)
            dl.add_rect_filled(a, b, int(strip.fill[i]), 2.0)
            if i == self.selected or i == self.hovered:
                dl.add_rect(a, b, 0xFFFFFFFF, 2.0, 0, 2.0)
            dl.add_text(imgui.ImVec2(x0 + CELL_PAD_PX / 2, y0 + 2.0), int(strip.ink[i]), strip.labels[i])
        if len(strip):
            imgui.dummy(imgui.ImVec2(width, strip.height))
        self.hovered = None
        if imgui.is_window_hovered():
            m = imgui.get_mouse_pos()
            self.hovered = strip.at(m.x - origin.x, m.y - origin.y)
            if self.hovered is not None and imgui.is_mouse_clicked(0):
                self.selected = self.hovered
        imgui.end_child()

    def _legend_row(self) -> None:
        dl = imgui.get_window_draw_list()
        p = imgui.get_cursor_screen_pos()
        label = tr("stream.p_token")
        imgui.text(label)
        x = p.x + imgui.calc_text_size(label).x + 24  # room for the "0" before the bar
        step = LEGEND_WIDTH / (len(self._legend) - 1)
        for i in range(len(self._legend) - 1):
            a, b = self._legend[i], self._legend[i + 1]
            dl.add_rect_filled_multi_color(imgui.ImVec2(x + i * step, p.y + 2), imgui.ImVec2(x + (i + 1) * step, p.y + 14),
                                           a, b, b, a)
        ink = imgui.get_color_u32(imgui.Col_.text)
        dl.add_text(imgui.ImVec2(x - 9, p.y), ink, "0")
        dl.add_text(imgui.ImVec2(x + LEGEND_WIDTH + 3, p.y), ink, "1")
        gx = x + LEGEND_WIDTH + 24
        dl.add_rect_filled(imgui.ImVec2(gx, p.y + 2), imgui.ImVec2(gx + 12, p.y + 14), int(cell_colors([np.nan])[0]))
        dl.add_text(imgui.ImVec2(gx + 16, p.y), ink, tr("stream.no_logprob"))

    def _details(self) -> None:
        r = self.result
        index = self.hovered if self.hovered is not None else self.selected
        if r is None or index is None or index >= len(r.tokens):
            imgui.text_colored(panels.DIM_RGB, tr("stream.hover"))
            imgui.push_text_wrap_pos(0.0)
            imgui.text_colored(panels.DIM_RGB, tr("stream.honest"))
            imgui.pop_text_wrap_pos()
            return
        token = r.tokens[index]
        head = tr("stream.token_head", i=index + 1, n=len(r.tokens), text=drawable(token.text))
        if token.logprob is None:
            imgui.text(head + tr("stream.no_logprob_here"))
            return
        imgui.text(head + tr("stream.p_logprob", p=token.probability, logprob=token.logprob))
        if not token.top:
            imgui.text_colored(panels.DIM_RGB, tr("stream.no_alternatives"))
            return
        imgui.text_colored(panels.DIM_RGB, tr("stream.entropy", k=len(token.top), h=token.entropy, mass=token.top_mass))
        for text, lp in token.top:
            chosen = text == token.text
            imgui.push_style_color(imgui.Col_.plot_histogram, panels.BAR_TOP_RGB if chosen else panels.BAR_RGB)
            imgui.progress_bar(float(np.exp(lp)), imgui.ImVec2(220, 0), num(float(np.exp(lp)), ".4f"))
            imgui.pop_style_color()
            imgui.same_line()
            imgui.text(f"\"{drawable(text)}\"" + (tr("stream.chosen") if chosen else ""))
