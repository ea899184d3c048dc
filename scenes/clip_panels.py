"""clip-tiny's panel: a picture to open (vit-tiny's panel's ways: a path, a file dialog, a dropped file, the next
sample), the picture as the model reads it with its patch grid, the user's captions (edited in place; the one
the text tower's blocks trace chosen with its radio button) with each one's scaled cosine similarity and the
softmax over them, and the temperature e^s. The drawing of the picture and the opening are VitPanel's,
inherited; everything here runs on the frame thread and stays small (the worker traces, scenes/clip_live.py).
"""
from __future__ import annotations

import math

from imgui_bundle import imgui

from llmviz.common.i18n import num, tr
from llmviz.scenes.clip_live import MAX_CAPTIONS, caption_probabilities
from llmviz.scenes.panels import BAR_RGB, BAR_TOP_RGB, DIM_RGB, ERROR_RGB, begin_side_panel, end_side_panel
from llmviz.scenes.vit_panels import VitPanel

MAX_CAPTION_CHARS = 200


class ClipPanel(VitPanel):
    """Draws a LiveClip's picture, captions and similarities; edits go back to it (set_captions)."""

    dialog_key = "clip.dialog_title"

    def __init__(self, live, ui_renderer=None):
        super().__init__(live, ui_renderer)
        self.edits = list(live.captions)
        self._captions = list(live.captions)   # the live captions the edit fields last showed

    def draw(self, x: float, y: float) -> None:
        s = self.live
        self.opener.poll(s.set_image_path)
        if begin_side_panel(tr("clip.title") + "###clip", x, y):
            imgui.text_colored(DIM_RGB, tr("clip.about", about=s.about))
            self._open(s)
            imgui.separator()
            if s.trace is None:
                imgui.text_colored(DIM_RGB, tr("nano.waiting"))
            else:
                self._picture(s)
                imgui.separator()
                self._caption_list(s)
            for problem in (s.problem, s.error):
                if problem:
                    imgui.text_colored(ERROR_RGB, problem)
        end_side_panel()

    def _caption_list(self, s) -> None:
        if s.captions != self._captions:   # new captions from elsewhere (--text, the chapter)
            self.edits, self._captions = list(s.captions), list(s.captions)
        imgui.text(tr("clip.captions") + (tr("nano.computing") if s.busy else ""))
        shown = {c: (v, p) for c, v, p in caption_probabilities(s.trace, s.shown_captions)}
        best = max((p for _, p in shown.values()), default=0.0)
        submit, remove = False, None
        for i, text in enumerate(self.edits):
            if imgui.radio_button(f"##traced{i}", s.selected == i):
                s.select_caption(i)
            imgui.same_line()
            imgui.set_next_item_width(150)
            changed, self.edits[i] = imgui.input_text(f"##caption{i}", text, imgui.InputTextFlags_.enter_returns_true)
            self.edits[i] = self.edits[i][:MAX_CAPTION_CHARS]
            submit |= changed
            imgui.same_line()
            value, p = shown.get(self.edits[i], (None, None))
            if p is None:
                imgui.text_colored(DIM_RGB, tr("clip.press_enter"))
            else:
                imgui.push_style_color(imgui.Col_.plot_histogram, BAR_TOP_RGB if p == best else BAR_RGB)
                imgui.progress_bar(p, imgui.ImVec2(110, 0), tr("clip.bar", p=p, value=value))
                imgui.pop_style_color()
            imgui.same_line()
            if imgui.small_button(f"x##remove{i}") and len(self.edits) > 1:
                remove = i
        if remove is not None:
            del self.edits[remove]
            submit = True
        if len(self.edits) < MAX_CAPTIONS and imgui.button(tr("clip.add") + "###add_caption"):
            self.edits.append("a shape")
            submit = True
        if submit and not s.set_captions(self.edits):
            self._captions = list(s.captions)
        imgui.text_colored(DIM_RGB, tr("clip.radio"))
        if s.weights is not None:
            scale = float(s.weights["logit_scale"][0])
            imgui.text_colored(DIM_RGB, tr("clip.temperature", s=scale, e=math.exp(scale)))
        imgui.text_colored(DIM_RGB, tr("clip.last_pass", ms=s.last_tick_seconds * 1000))
