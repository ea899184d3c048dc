"""vit-tiny's panel: the picture as the model sees it with its patch grid, what [CLS] (or a clicked patch)
attends to drawn back onto it (one head, a layer's mean, or the rollout through every layer), the top classes,
and a picture to open: a path, a native file dialog (portable_file_dialogs, in its own process, polled each
frame so the frame never waits), a dropped file (scenes/app.py), or the next shipped sample.

The picture and its heatmap are one small RGBA texture, composed with numpy when the trace or the choice
changes and registered with the UI renderer; the patch grid is drawn over it as lines. Everything here runs
on the frame thread and stays small: a new picture is read and traced on the worker (scenes/vit_live.py).
"""
from __future__ import annotations

import numpy as np
from imgui_bundle import imgui

from llmviz.common.i18n import num, tr
from llmviz.models.sim.shapes import SHAPES
from llmviz.scenes.panel_file_open import FileOpener
from llmviz.scenes.panels import (BAR_RGB, BAR_TOP_RGB, DIM_RGB, ERROR_RGB, PANEL_WIDTH, begin_side_panel, end_side_panel,
                                  fit_side_panel)
from llmviz.scenes.picture_quad import overlay
from llmviz.scenes.vit_live import PICTURE_ID, VIEWS, top_classes

PICTURE_PX = 192.0        # the picture's side in the panel
FILE_FILTERS = ["Pictures (PNG, JPEG)", "*.png *.jpg *.jpeg *.PNG *.JPG *.JPEG"]


class VitPanel:
    """Draws a LiveVit's picture, attention and classes; opening a file goes back to it (set_image_path). What
    attention is shown is the live model's `choice`, shared with the 3D picture and the chapter."""

    dialog_key = "vit.dialog_title"   # clip-tiny's panel (a subclass) names itself

    def __init__(self, live, ui_renderer=None):
        self.live = live
        self.ui_renderer = ui_renderer
        self.opener = FileOpener(tr(self.dialog_key), [tr("vit.filter"), FILE_FILTERS[1]], live.source)
        self._texture = None
        self._shown = None    # (trace version, choice) the texture holds

    @property
    def grid(self) -> int:
        return self.live.grid

    def heat(self) -> np.ndarray | None:
        """The (grid, grid) map the current choice draws, or None for the picture alone."""
        return self.live.heat()

    def draw_in(self, area) -> None:
        """The panel at the area's right edge, never taller than the area (it scrolls instead): at 1280 x 720 it
        stays above the hint bar."""
        fit_side_panel(area)
        self.draw(area.width - PANEL_WIDTH - 10, area.top)

    def draw(self, x: float, y: float) -> None:
        s = self.live
        self.opener.poll(s.set_image_path)
        if begin_side_panel(tr("vit.title") + "###vit", x, y):
            imgui.text_colored(DIM_RGB, s.about)
            self._open(s)
            imgui.separator()
            if s.trace is None:
                imgui.text_colored(DIM_RGB, tr("nano.waiting"))
            else:
                self._choice(s)
                self._picture(s)
                imgui.separator()
                self._classes(s)
            if s.error:
                imgui.text_colored(ERROR_RGB, s.error)
        end_side_panel()

    def _open(self, s) -> None:
        self._open_row(s, s.step)
        imgui.same_line()
        if imgui.button(tr("vit.replay") + "###replay") and s.picture is not None:
            s.picture.replay()
        self._open_notes()

    def _open_row(self, s, next_sample) -> None:
        """The path field (a new picture from elsewhere, --image or Next sample, shows in it), Open, Choose
        file… and Next sample (`next_sample()`); the subclasses' panels open pictures the same way."""
        self.opener.draw(s.source, s.set_image_path)
        imgui.same_line()
        if imgui.button(tr("vit.next_sample") + "###next_sample"):
            next_sample()

    def _open_notes(self) -> None:
        imgui.text_colored(DIM_RGB, tr("vit.formats"))
        self.opener.draw_note()

    def _choice(self, s) -> None:
        c = s.choice
        for view in VIEWS:
            if imgui.radio_button(tr("vit.view." + view) + "###" + view, c.view == view):
                s.choose(view=view)
            imgui.same_line()
        imgui.new_line()
        if c.view == "picture":
            imgui.text_colored(DIM_RGB, tr("vit.as_read"))
            return
        imgui.text_colored(DIM_RGB, s.heat_words() + (tr("vit.rollout_how") if c.view == "rollout" else ""))
        if c.token != 0:
            if imgui.button(tr("vit.back_to_cls") + "###back_cls"):
                s.choose(token=0)
            imgui.same_line()
        imgui.text_colored(DIM_RGB, tr("vit.click_patch"))
        if c.view != "attention":
            return
        n_layers = sum(1 for i in s.trace if i.endswith(".resid2"))
        n_heads = sum(1 for i in s.trace if i.startswith("blocks.0.attn.head.") and i.endswith(".softmax"))
        imgui.text(tr("vit.layer"))
        for b in range(n_layers):
            imgui.same_line()
            if imgui.radio_button(f"{b}##layer", c.layer == b):
                s.choose(layer=b)
        imgui.text(tr("vit.head"))
        for h in [None, *range(n_heads)]:
            imgui.same_line()
            if imgui.radio_button(tr("vit.mean") + "###meanhead" if h is None else f"{h}##head", c.head == h):
                s.choose(head=h)

    def _picture(self, s) -> None:
        origin = self._picture_grid(s, self.heat())
        g = self.grid
        if imgui.is_item_clicked() and g:
            at = imgui.get_mouse_pos()
            i, j = (int((at.y - origin.y) / PICTURE_PX * g), int((at.x - origin.x) / PICTURE_PX * g))
            if 0 <= i < g and 0 <= j < g:
                token = 1 + i * g + j
                s.choose(token=0 if token == s.choice.token else token,
                         view="rollout" if s.choice.view == "picture" else s.choice.view)
        imgui.text_colored(DIM_RGB, tr("vit.patches", g=g, n=g * g + 1))

    def _picture_grid(self, s, heat) -> imgui.ImVec2:
        """The picture with `heat` over it (its texture composed again only when the trace or the choice
        changed) and its patch grid's lines; the picture's screen corner, the last item being the picture."""
        key = (s.trace_version, s.choice)
        origin = imgui.get_cursor_screen_pos()
        if self.ui_renderer is not None:
            if key != self._shown:
                self._upload(overlay(s.trace[PICTURE_ID], heat))
                self._shown = key
            imgui.image(self._texture.id, imgui.ImVec2(PICTURE_PX, PICTURE_PX))
        else:
            imgui.dummy(imgui.ImVec2(PICTURE_PX, PICTURE_PX))
        g = s.grid
        dl = imgui.get_window_draw_list()
        line = imgui.get_color_u32(imgui.ImVec4(1.0, 1.0, 1.0, 0.22))
        for k in range(g + 1):
            at = k * PICTURE_PX / g
            dl.add_line(imgui.ImVec2(origin.x + at, origin.y), imgui.ImVec2(origin.x + at, origin.y + PICTURE_PX), line)
            dl.add_line(imgui.ImVec2(origin.x, origin.y + at), imgui.ImVec2(origin.x + PICTURE_PX, origin.y + at), line)
        return origin

    def _upload(self, rgba: np.ndarray) -> None:
        self._texture = self.ui_renderer.ui_image(rgba, self._texture)  # sampled nearest: a pixel is a pixel

    def _classes(self, s) -> None:
        imgui.text(tr("vit.classes") + (tr("nano.computing") if s.busy else ""))
        for rank, (label, p) in enumerate(top_classes(s.trace, SHAPES)):
            imgui.text(label)
            imgui.same_line(80)
            imgui.push_style_color(imgui.Col_.plot_histogram, BAR_TOP_RGB if rank == 0 else BAR_RGB)
            imgui.progress_bar(p, imgui.ImVec2(220, 0), num(p, ".3f"))
            imgui.pop_style_color()
        imgui.text_colored(DIM_RGB, tr("clip.last_pass", ms=s.last_tick_seconds * 1000))
