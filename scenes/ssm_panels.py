"""The live state-space model's panel: the text and its continuation, step / play, P(next character), and the
recurrent state's size beside the KV cache an attention model of the same width would hold."""
from __future__ import annotations

import numpy as np
from imgui_bundle import imgui

from llmviz.common.i18n import tr
from llmviz.scenes.panels import (AMBER_RGB, begin_side_panel, end_side_panel, BAR_RGB, DIM_RGB, ERROR_RGB, GENERATED_RGB, INPUT_RGB,
                                  PANEL_WIDTH, probability_bar)
from llmviz.scenes.ssm_live import TRAINING_DATA, state_bytes, step_sizes

TOP_CHARACTERS = 5
DELTA_STRIP_PX = 36   # height of the Δ-per-character bars
SHOWN_CHARACTERS = 160  # of a long stream, the panel shows its end


def kv_cache_bytes(spec, tokens: int) -> int:
    """float32 bytes of the keys and values a same-width attention model keeps for `tokens` positions:
    per layer, per position, a key and a value of d_model each."""
    arch = spec.architecture
    return 4 * 2 * arch.n_layers * arch.d_model * tokens


def _size(n: int) -> str:
    return tr("profiler.kib", n=n / 1024, unit="KiB") if n < 1 << 20 else tr("profiler.kib", n=n / (1 << 20), unit="MiB")


def shown_char(ch: str, quoted: bool = False) -> str:
    """A character as the panel writes it: a newline as \\n; in a list of candidates, a space as "space"."""
    if ch == "\n":
        return "\\n"
    return tr("hover.space") if quoted and ch == " " else ch


class SsmPanel:
    """Draws a LiveMamba's state; edits go back to it (set_text, step, toggle_play), which return at once."""

    def __init__(self, live):
        self.live = live
        self.text = live.text
        self.error: str | None = None

    def draw(self, x: float, y: float) -> None:
        s = self.live
        what = tr("ssm.wkv" if s.spec is not None and s.spec.architecture.mixer.startswith("rwkv") else "ssm.scan")
        if begin_side_panel(tr("ssm.title", name=s.spec.name if s.spec else tr("ssm.model"), what=what) + "###ssm", x, y):
            self._input(s)
            imgui.separator()
            self._sequence(s)
            imgui.separator()
            self._next(s)
            imgui.separator()
            self._selectivity(s)
            self._state(s)
            if s.error:
                imgui.text_colored(ERROR_RGB, s.error)
        end_side_panel()

    def _input(self, s) -> None:
        imgui.text(tr("ssm.text", n=s.context_length))
        imgui.set_next_item_width(-1)
        changed, text = imgui.input_text("##ssm_text", self.text)
        if changed:
            self.text = text
            self.error = s.set_text(text)
        if self.error:
            imgui.text_colored(ERROR_RGB, self.error)
        if imgui.button(tr("nano.step") + "###step"):
            s.step()
        imgui.same_line()
        if imgui.button(tr("nano.pause" if s.playing else "nano.play") + "###play"):
            s.toggle_play()

    def _sequence(self, s) -> None:
        n_input, n = s.n_typed, len(s.tokens)
        first = max(0, n - SHOWN_CHARACTERS)          # a long stream: its end, which the scan shows
        imgui.text(tr("nano.sequence") + (tr("ssm.last_of", shown=SHOWN_CHARACTERS, n=n) if first else ""))
        typed = "".join(shown_char(s.alphabet[t]) for t in s.tokens[first:n_input])
        imgui.text_colored(INPUT_RGB, ("…" if first else "") + typed)
        if n > max(n_input, first):
            imgui.same_line(0, 0)
            imgui.text_colored(GENERATED_RGB, "".join(shown_char(s.alphabet[t]) for t in s.tokens[max(n_input, first):]))
        imgui.text_colored(INPUT_RGB, tr("ssm.typed"))
        imgui.same_line()
        imgui.text_colored(GENERATED_RGB, tr("ssm.generated"))
        if n > s.context_length:
            imgui.text_colored(DIM_RGB, tr("ssm.window", n=s.context_length, before=n - s.context_length))
        elif s.full:
            imgui.text_colored(DIM_RGB, tr("ssm.full", n=s.context_length))

    def _next(self, s) -> None:
        imgui.text(tr("ssm.p_next") + (tr("nano.computing") if s.busy else ""))
        if s.trace is None:
            imgui.text_colored(DIM_RGB, tr("nano.waiting"))
            return
        probs = np.asarray(s.trace["probs"][-1], np.float64)
        order = np.argsort(-probs)[:TOP_CHARACTERS]
        for rank, k in enumerate(order.tolist()):
            probability_bar(shown_char(s.alphabet[k], quoted=True), float(probs[k]), top=rank == 0)
        imgui.text_colored(DIM_RGB, tr("nano.last_pass", ms=s.last_tick_seconds * 1000))

    def _selectivity(self, s) -> None:
        """Layer 0's step size Δ under each character of the window: where the model writes into its state."""
        found = step_sizes(s.trace, s.tokens, s.alphabet, s.spec.id if s.spec else None)
        if found is None:
            return
        per_char, classes = found
        top = float(per_char.max()) if len(per_char) else 0.0
        over = tr("ssm.heads" if s.spec is not None and s.spec.architecture.mixer == "mamba2" else "ssm.channels")
        imgui.text(tr("ssm.delta_title", over=over))
        dl = imgui.get_window_draw_list()
        origin = imgui.get_cursor_screen_pos()
        width = PANEL_WIDTH - 24
        bar = width / max(len(per_char), 1)
        window = [s.alphabet[t] for t in list(s.tokens)[-len(per_char):]]
        color, text_color = imgui.get_color_u32(imgui.ImVec4(*BAR_RGB)), imgui.get_color_u32(imgui.ImVec4(*DIM_RGB))
        for k, (value, ch) in enumerate(zip(per_char.tolist(), window)):
            x0 = origin.x + k * bar
            h = DELTA_STRIP_PX * (value / top if top > 0 else 0.0)
            dl.add_rect_filled(imgui.ImVec2(x0 + 1, origin.y + DELTA_STRIP_PX - h),
                               imgui.ImVec2(x0 + bar - 1, origin.y + DELTA_STRIP_PX), color)
            if bar >= 7:
                dl.add_text(imgui.ImVec2(x0 + bar / 2 - 3, origin.y + DELTA_STRIP_PX + 1), text_color,
                            shown_char(ch).replace("\\n", "↵") if ch != " " else "·")
        imgui.dummy(imgui.ImVec2(width, DELTA_STRIP_PX + imgui.get_text_line_height() + 2))
        imgui.text_colored(DIM_RGB, tr("ssm.tallest", top=top))
        shown = [(name, mean) for name, mean in classes if mean is not None]
        if len(shown) == 2 and shown[1][1] > 0:
            (a, ma), (b, mb) = shown
            imgui.text(tr("ssm.selective", a=a, ma=ma, b=b, mb=mb, ratio=ma / mb))
        imgui.separator()

    def _state(self, s) -> None:
        if s.spec is None:
            return
        n = len(s.tokens)
        fixed = state_bytes(s.spec)
        imgui.text(tr("ssm.state", size=_size(fixed)))
        imgui.text_colored(DIM_RGB, tr("ssm.kv_cache", size=_size(kv_cache_bytes(s.spec, n)), n=n))
        data = TRAINING_DATA.get(s.spec.id, tr("ssm.corpus"))
        imgui.text_colored(AMBER_RGB, tr("ssm.trained", data=data, id=s.spec.id))
