"""Where the ImGui overlay covers the frame: one rectangle per window drawn (menu, banner, panels, hint bar, tooltip).

Read from the frame's draw data: each window has its own draw list, and the bounds of its
vertices are the window's rectangle. The label layout keeps labels out of these rectangles and
the frame report checks that it did.
"""
from __future__ import annotations

import ctypes

import numpy as np
from imgui_bundle import imgui

# ImDrawVert: position (2 float32), uv (2 float32), colour (uint32).
_VERTEX = np.dtype([("pos", "<f4", 2), ("uv", "<f4", 2), ("col", "<u4")])
assert _VERTEX.itemsize == imgui.VERTEX_SIZE


def covered_rects(draw_data) -> np.ndarray:
    """(k, 4) rectangles (x0, y0, x1, y1) in display pixels, top-left origin, of the windows drawn."""
    rects = []
    if draw_data is None:
        return np.zeros((0, 4))
    for commands in draw_data.cmd_lists:
        n = commands.vtx_buffer.size()
        if not n:
            continue
        raw = (ctypes.c_byte * (n * _VERTEX.itemsize)).from_address(commands.vtx_buffer.data_address())
        pos = np.frombuffer(raw, _VERTEX, count=n)["pos"]
        x0, y0 = pos.min(axis=0)
        x1, y1 = pos.max(axis=0)
        rects.append((x0, y0, x1, y1))
    return np.array(rects, np.float64).reshape(-1, 4)


def in_view_pixels(rects: np.ndarray, view_rect, display_size, target_size) -> np.ndarray:
    """The rectangles in the pixels of one view: (x, y, w, h) of the target, top-left origin."""
    if not len(rects):
        return rects
    sx = target_size[0] / max(display_size[0], 1.0)
    sy = target_size[1] / max(display_size[1], 1.0)
    x, y = view_rect[0], view_rect[1]
    return rects * np.array([sx, sy, sx, sy]) - np.array([x, y, x, y], np.float64)
