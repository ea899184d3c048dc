"""Pictures larger than one wgpu target: engine/render/tiled.py's record-and-replay on the wgpu renderer.

The colour and depth textures are one tile; each tile is drawn into their top-left corner (WebGPU's y runs
down, so the tile's GL-convention viewport flips over the tile's own height) through the same off-centre
frustum as on moderngl, with the tile's origin in the whole picture given to the shaders (the mask's hatch
continues across tiles). The UI goes over each tile through the wgpu overlay's ``render_tile``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .tiled import TileGrid, TileReplay, tile_side
from .wgpu_backend import WgpuRenderer


class WgpuTiledRenderer(TileReplay, WgpuRenderer):
    """A wgpu renderer of any size: frames draw and are recorded; ``bands`` replays the last frame tile by tile.
    ``side``: the tile side (default: the device's texture limit, at most DEFAULT_TILE_SIDE)."""

    def __init__(self, size, side: int | None = None, pixel_ratio: float = 1.0, **kwargs):
        from ..gpu_adapters import shared_device

        device = kwargs.get("device") or shared_device().device
        side = tile_side(side, int(device.limits["max-texture-dimension-2d"]), "this wgpu device")
        full = (int(size[0]), int(size[1]))
        self.grid = TileGrid(full, side)
        super().__init__((min(side, full[0]), min(side, full[1])), pixel_ratio=pixel_ratio, **kwargs)
        self._size = full  # cameras, label layout and the UI see the whole picture (over the pixel ratio)
        self._start_recording()

    def _begin_tile(self, rect) -> None:
        x, y, w, h = rect
        self.viewport, self.frag_origin = (0, 0, w, h), (float(x), float(y))
        self._flip_height = h  # the tile fills the texture's top-left w x h pixels

    def _end_tile(self) -> None:
        self.viewport, self.frag_origin = None, (0.0, 0.0)
        self._flip_height = self._target_px[1]

    def _before_overlay(self, w: int, h: int) -> None:
        """The overlay's render pass sets its own viewport: nothing to bind."""

    def _read_tile(self, w: int, h: int) -> np.ndarray:
        return self.read_region(w, h)[:, :, :3]

    def ui_tile_drawer(self, ui_renderer, draw_data) -> Callable[[tuple[int, int, int, int]], None]:
        """The ``overlay`` for ``bands`` that draws an ImGui frame (a WgpuUiOverlay's) into each tile."""
        return lambda rect: ui_renderer.render_tile(draw_data, rect)
