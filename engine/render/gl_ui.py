"""Dear ImGui on the moderngl backend: the offscreen overlay, panel pictures, and the font's sampling.

The window's ImGui integration (engine/window.py) and the offscreen one here share ``GLUiImages``,
so a panel uploads its picture with ``ui_image`` on whichever it was given and never names a GL object.
"""
from __future__ import annotations

import moderngl
import numpy as np
from moderngl_window.integrations.imgui_bundle import ModernGLRenderer

from .backend import UiImage


class GLUiImages:
    """``ui_image`` for a moderngl-window ImGui renderer (which has ``ctx`` and ``register_texture``), and its draw
    lists drawn whatever their size."""

    def render(self, draw_data) -> None:
        """The integration reserves 65,536 vertices and indices once; a larger draw list (the heads view's grid of
        a 257-token model) would not fit, so the buffers grow first, to the next power of two."""
        from imgui_bundle import imgui

        lists = draw_data.cmd_lists
        for buffer, size_of, item in ((self._vertex_buffer, lambda c: c.vtx_buffer.size(), imgui.VERTEX_SIZE),
                                      (self._index_buffer, lambda c: c.idx_buffer.size(), imgui.INDEX_SIZE)):
            need = max((size_of(c) for c in lists), default=0) * item
            if buffer is not None and need > buffer.size:
                buffer.orphan(1 << (need - 1).bit_length())
        super().render(draw_data)

    def ui_image(self, rgba: np.ndarray, previous: UiImage | None = None) -> UiImage:
        """Upload an (h, w, 4) uint8 picture; reuses ``previous`` when the size is the same. Sampled nearest:
        a pixel is a pixel."""
        rgba = np.ascontiguousarray(rgba, np.uint8)
        h, w = rgba.shape[:2]
        if previous is not None and previous.size == (w, h):
            previous.texture.write(rgba.tobytes())
            return previous
        texture = self.ctx.texture((w, h), 4, rgba.tobytes())
        texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self.register_texture(texture)
        return UiImage(id=texture.glo, size=(w, h), texture=texture)


class HeadlessImguiRenderer(GLUiImages, ModernGLRenderer):
    """moderngl-window's ImGui renderer for an offscreen target (the Explorer feeds ImGui its events)."""


def sample_font_nearest(ui_renderer, pixel_ratio: float) -> None:
    """ImGui samples its font atlas at texel centres (glyphs and the white texel of fills), so nearest filtering
    draws the very same pixels; on a software rasteriser it is one texel fetch instead of four, 0.4-0.9 ms of a
    frame's UI (BENCHMARKS.md). A picture drawn at a pixel ratio above 1 scales the font: it keeps linear."""
    font = getattr(ui_renderer, "_font_texture", None)
    if font is not None and pixel_ratio == 1.0:
        font.filter = (moderngl.NEAREST, moderngl.NEAREST)
