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
_INDEX = np.dtype("<u4" if imgui.INDEX_SIZE == 4 else "<u2")


def _buffer(vector, dtype, itemsize: int) -> np.ndarray:
    n = vector.size()
    raw = (ctypes.c_byte * (n * itemsize)).from_address(vector.data_address())
    return np.frombuffer(raw, dtype, count=n)


def covered_rects(draw_data) -> np.ndarray:
    """(k, 4) rectangles (x0, y0, x1, y1) in display pixels, top-left origin, of the windows drawn: per window,
    the bounds of what its draw commands draw inside their clip rectangles (a scrolled panel keeps the vertices
    of its hidden rows, clipped away when drawn; they cover nothing)."""
    rects = []
    if draw_data is None:
        return np.zeros((0, 4))
    for commands in draw_data.cmd_lists:
        if not commands.vtx_buffer.size():
            continue
        pos = _buffer(commands.vtx_buffer, _VERTEX, _VERTEX.itemsize)["pos"]
        indices = _buffer(commands.idx_buffer, _INDEX, _INDEX.itemsize)
        box = [np.inf, np.inf, -np.inf, -np.inf]
        for i in range(commands.cmd_buffer.size()):   # a handful per window
            cmd = commands.cmd_buffer[i]
            if not cmd.elem_count:
                continue
            used = pos[cmd.vtx_offset + indices[cmd.idx_offset:cmd.idx_offset + cmd.elem_count]]
            clip = tuple(cmd.clip_rect)
            lo, hi = np.maximum(used.min(axis=0), clip[:2]), np.minimum(used.max(axis=0), clip[2:])
            if hi[0] > lo[0] and hi[1] > lo[1]:
                box = [min(box[0], lo[0]), min(box[1], lo[1]), max(box[2], hi[0]), max(box[3], hi[1])]
        if box[2] > box[0]:
            rects.append(tuple(box))
    return np.array(rects, np.float64).reshape(-1, 4)


def in_view_pixels(rects: np.ndarray, view_rect, display_size, target_size) -> np.ndarray:
    """The rectangles in the pixels of one view: (x, y, w, h) of the target, top-left origin."""
    if not len(rects):
        return rects
    sx = target_size[0] / max(display_size[0], 1.0)
    sy = target_size[1] / max(display_size[1], 1.0)
    x, y = view_rect[0], view_rect[1]
    return rects * np.array([sx, sy, sx, sy]) - np.array([x, y, x, y], np.float64)
