"""vit-tiny's panel: the picture as the model sees it with its patch grid, what [CLS] attends to drawn back
onto it (one head, a layer's mean, or the rollout through every layer), the top classes, and a file to open.

The picture and its heatmap are one small RGBA texture, composed with numpy when the trace or the choice
changes and registered with the UI renderer; the patch grid is drawn over it as lines. Everything here runs
on the frame thread and stays small: a new picture is read and traced on the worker (scenes/vit_live.py).
"""
from __future__ import annotations

import numpy as np
from imgui_bundle import imgui

from llmviz.models.sim.shapes import SHAPES
from llmviz.scenes.panels import BAR_RGB, BAR_TOP_RGB, DIM_RGB, ERROR_RGB, PANEL_WIDTH, begin_side_panel
from llmviz.scenes.vit_live import PICTURE_ID, attention_map, top_classes

PICTURE_PX = 256.0        # the picture's side in the panel
HEAT_RGB = np.array([1.0, 0.35, 0.1], np.float32)   # the heatmap's colour, over a darkened picture
MAX_PATH_CHARS = 4096
VIEWS = ("picture", "attention", "rollout")


def overlay(picture: np.ndarray, heat: np.ndarray | None) -> np.ndarray:
    """(S, S, 4) uint8: the (S, S, 3) picture in [0, 1], with a (g, g) heatmap (scaled to its maximum) laid over
    it patch by patch: the picture darkened where [CLS] does not look, tinted where it does."""
    rgb = np.asarray(picture, np.float32)
    if heat is not None:
        scale = rgb.shape[0] // heat.shape[0]
        top = float(heat.max())
        h = np.kron(heat / top if top > 0 else heat, np.ones((scale, scale)))[..., None].astype(np.float32)
        rgb = rgb * (0.25 + 0.75 * h) * (1 - 0.45 * h) + HEAT_RGB * 0.45 * h
    out = np.empty(rgb.shape[:2] + (4,), np.uint8)
    out[..., :3] = np.clip(np.rint(rgb * 255), 0, 255)
    out[..., 3] = 255
    return out


class VitPanel:
    """Draws a LiveVit's picture, attention and classes; opening a file goes back to it (set_image_path)."""

    def __init__(self, live, ui_renderer=None):
        self.live = live
        self.ui_renderer = ui_renderer
        self.path = live.source
        self._source = live.source   # the live model's picture the path field last showed
        self.view, self.layer, self.head = "rollout", 0, None    # head None: the heads' mean
        self._texture = None
        self._shown = None    # (trace version, view, layer, head) the texture holds

    @property
    def grid(self) -> int:
        picture = self.live.trace[PICTURE_ID]
        patches = self.live.trace["patches"].shape[0]
        return int(round(patches ** 0.5)) if picture is not None else 0

    def heat(self) -> np.ndarray | None:
        """The (grid, grid) map the current choice draws, or None for the picture alone."""
        if self.view == "picture":
            return None
        return attention_map(self.live.trace, self.grid, None if self.view == "rollout" else self.layer, self.head)

    def draw(self, x: float, y: float) -> None:
        s = self.live
        if begin_side_panel("vit-tiny: an image becomes tokens", x, y):
            imgui.text_colored(DIM_RGB, s.about)
            self._open(s)
            imgui.separator()
            if s.trace is None:
                imgui.text_colored(DIM_RGB, "waiting for the first forward pass…")
            else:
                self._choice()
                self._picture(s)
                imgui.separator()
                self._classes(s)
            if s.error:
                imgui.push_text_wrap_pos(PANEL_WIDTH - 12)
                imgui.text_colored(ERROR_RGB, s.error)
                imgui.pop_text_wrap_pos()
        imgui.end()

    def _open(self, s) -> None:
        if s.source != self._source:   # a new picture came from elsewhere (--image, Next sample)
            self.path = self._source = s.source
        imgui.set_next_item_width(PANEL_WIDTH - 90)
        changed, self.path = imgui.input_text("##picture", self.path, imgui.InputTextFlags_.enter_returns_true)
        imgui.same_line()
        if (imgui.button("Open") or changed) and 0 < len(self.path) <= MAX_PATH_CHARS:
            s.set_image_path(self.path)
        if imgui.button("Next sample"):
            s.step()
        imgui.same_line()
        imgui.text_colored(DIM_RGB, "PNG or JPEG, read at 64 x 64")

    def _choice(self) -> None:
        for view in VIEWS:
            if imgui.radio_button(view, self.view == view):
                self.view = view
            imgui.same_line()
        imgui.new_line()
        if self.view != "attention":
            imgui.push_text_wrap_pos(PANEL_WIDTH - 12)
            imgui.text_colored(DIM_RGB, "[CLS]'s rollout: per layer the heads' mean + identity, rows renormalised, "
                                        "multiplied through the layers" if self.view == "rollout"
                               else "the picture as the model reads it (ViTImageProcessor's resize)")
            imgui.pop_text_wrap_pos()
            return
        n_layers = sum(1 for i in self.live.trace if i.endswith(".resid2"))
        n_heads = sum(1 for i in self.live.trace if i.startswith("blocks.0.attn.head.") and i.endswith(".softmax"))
        imgui.text("layer")
        for b in range(n_layers):
            imgui.same_line()
            if imgui.radio_button(f"{b}##layer", self.layer == b):
                self.layer = b
        imgui.text("head ")
        for h in [None, *range(n_heads)]:
            imgui.same_line()
            if imgui.radio_button("mean##head" if h is None else f"{h}##head", self.head == h):
                self.head = h

    def _picture(self, s) -> None:
        key = (s.trace_version, self.view, self.layer, self.head)
        origin = imgui.get_cursor_screen_pos()
        if self.ui_renderer is not None:
            if key != self._shown:
                self._upload(overlay(s.trace[PICTURE_ID], self.heat()))
                self._shown = key
            imgui.image(self._texture.glo, imgui.ImVec2(PICTURE_PX, PICTURE_PX))
        else:
            imgui.dummy(imgui.ImVec2(PICTURE_PX, PICTURE_PX))
        dl = imgui.get_window_draw_list()
        line = imgui.get_color_u32(imgui.ImVec4(1.0, 1.0, 1.0, 0.22))
        g = self.grid
        for k in range(g + 1):
            at = k * PICTURE_PX / g
            dl.add_line(imgui.ImVec2(origin.x + at, origin.y), imgui.ImVec2(origin.x + at, origin.y + PICTURE_PX), line)
            dl.add_line(imgui.ImVec2(origin.x, origin.y + at), imgui.ImVec2(origin.x + PICTURE_PX, origin.y + at), line)
        imgui.text_colored(DIM_RGB, f"{g} x {g} patches of 4 x 4 pixels + [CLS] = {g * g + 1} tokens")

    def _upload(self, rgba: np.ndarray) -> None:
        h, w = rgba.shape[:2]
        if self._texture is None or self._texture.size != (w, h):
            import moderngl

            self._texture = self.ui_renderer.ctx.texture((w, h), 4, rgba.tobytes())
            self._texture.filter = (moderngl.NEAREST, moderngl.NEAREST)   # a pixel is a pixel
            self.ui_renderer.register_texture(self._texture)
        else:
            self._texture.write(rgba.tobytes())

    def _classes(self, s) -> None:
        imgui.text("class probabilities" + ("   computing…" if s.busy else ""))
        for rank, (label, p) in enumerate(top_classes(s.trace, SHAPES)):
            imgui.text(label)
            imgui.same_line(80)
            imgui.push_style_color(imgui.Col_.plot_histogram, BAR_TOP_RGB if rank == 0 else BAR_RGB)
            imgui.progress_bar(p, imgui.ImVec2(220, 0), f"{p:.3f}")
            imgui.pop_style_color()
        imgui.text_colored(DIM_RGB, f"last forward pass {s.last_tick_seconds * 1000:.1f} ms, every intermediate kept")
