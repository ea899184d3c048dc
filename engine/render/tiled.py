"""Pictures larger than one framebuffer: the frame drawn tile by tile through off-centre frusta, read back band by band.

A ``TiledRenderer`` is a headless renderer whose size (what cameras, label layout, LOD and the UI
see) is the whole picture while its GL target is one tile. Frames run as usual (every system lays
out for the final size) and the renderer keeps the draws of the last one; ``bands()`` then replays
those draws once per tile, each through the camera's projection narrowed to the tile (a clip-space
scale and offset: the same window coordinates a single pass would give, so edges, the shaders'
screen-space derivatives and the mask's 8-pixel hatch land on the same pixels), and yields the
picture one row of tiles at a time as uint8 RGB. Memory: one band, width x tile height x 3 bytes,
plus one tile; never the whole picture and never floats.

Tiles are placed from the bottom-left in GL pixels (the partial row on top, the partial column on
the right); each tile's draws know its origin in the whole picture (the renderer's ``frag_origin``),
so anything keyed to gl_FragCoord (the mask's hatch) continues across tiles as in one pass.

With a ``pixel_ratio`` above 1 the picture is a larger copy of a smaller view: systems lay out for
the size over the ratio (``size``: a 7680x4320 picture of ratio 6 is laid out as 1280x720, labels,
LOD and UI included) and the shaders draw their pixel widths that many target pixels wide, so the
picture scaled down shows what the smaller render shows.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterator

import moderngl
import numpy as np

from ..camera import Camera
from .headless import HeadlessRenderer, create_headless_context

DEFAULT_TILE_SIDE = 2048  # 2048 x 2048 x 8 bytes of colour and depth: 32 MiB of GL target
TILE_ALIGN = 8  # tile sides are multiples of this (shaders/box.glsl's mask hatch is 8 px)


def max_target_side(ctx: moderngl.Context) -> int:
    """The largest square this context can draw into at once: the smaller of its viewport and renderbuffer limits."""
    viewport = ctx.info.get("GL_MAX_VIEWPORT_DIMS", (4096, 4096))
    renderbuffer = ctx.info.get("GL_MAX_RENDERBUFFER_SIZE", 4096)
    return int(min(min(viewport), renderbuffer))


@dataclasses.dataclass(frozen=True)
class TileGrid:
    """Tiles of ``side`` covering ``size``: columns from the left, bands (rows) from the bottom in GL pixels,
    listed top band first as a picture is written."""

    size: tuple[int, int]
    side: int

    @property
    def columns(self) -> list[tuple[int, int]]:
        """(x, width) of each column, left to right."""
        w = self.size[0]
        return [(x, min(self.side, w - x)) for x in range(0, w, self.side)]

    @property
    def bands(self) -> list[tuple[int, int]]:
        """(GL y of the band's bottom, height), the top band first."""
        h = self.size[1]
        return [(y, min(self.side, h - y)) for y in range(0, h, self.side)][::-1]

    @property
    def count(self) -> int:
        return len(self.columns) * len(self.bands)


def tile_matrix(size: tuple[int, int], rect: tuple[int, int, int, int]) -> np.ndarray:
    """The clip-space transform that makes a projection for the whole ``size`` draw only ``rect``
    (x, y from the bottom left, w, h) into a viewport of the rect's size: an off-centre frustum."""
    full_w, full_h = size
    x, y, w, h = rect
    m = np.eye(4)
    # ndc_tile = ndc * (full / tile) + offset; applied to clip coordinates, the offset scales with w.
    m[0, 0], m[1, 1] = full_w / w, full_h / h
    m[0, 3] = (full_w - 2.0 * x) / w - 1.0
    m[1, 3] = (full_h - 2.0 * y) / h - 1.0
    return m


@dataclasses.dataclass
class TileCamera(Camera):
    """A camera pose and lens for the whole picture whose projection covers one tile of it."""

    tile: np.ndarray = dataclasses.field(default_factory=lambda: np.eye(4))

    def projection(self) -> np.ndarray:
        return self.tile @ super().projection()


def tile_camera(camera: Camera, tile: np.ndarray) -> TileCamera:
    fields = {f.name: getattr(camera, f.name) for f in dataclasses.fields(Camera)}
    return TileCamera(**fields, tile=tile)


def snapshot(camera: Camera) -> Camera:
    """A copy of the camera as it is now (rigs move their camera on later frames)."""
    fields = {f.name: getattr(camera, f.name) for f in dataclasses.fields(Camera)}
    fields["position"] = np.array(camera.position, np.float64)
    fields["orientation"] = np.array(camera.orientation, np.float64)
    return Camera(**fields)


class TileReplay:
    """Record a frame's draws and replay them tile by tile: the part of a tiled renderer that is the same on every
    backend. A backend's class puts this first and gives ``_begin_tile(rect)``, ``_end_tile()``,
    ``_before_overlay(w, h)`` and ``_read_tile(w, h)`` (uint8 (h, w, 3), top row first); ``grid`` and
    ``_size`` (the whole picture) are set by its constructor, after its own."""

    grid: TileGrid
    _size: tuple[int, int]

    def _start_recording(self) -> None:
        self._draws: list[tuple] = []  # the last frame's draws: (method, camera copy, what it drew)
        self._clear = (0.0, 0.0, 0.0, 1.0)
        self._replaying = False

    def resize(self, size) -> None:
        raise RuntimeError("a tiled renderer's size is fixed: make a new one")

    def begin_frame(self, clear_color=(0.0, 0.0, 0.0, 1.0)) -> None:
        if not self._replaying:
            self._draws = []
            self._clear = tuple(clear_color)
        super().begin_frame(clear_color)

    def draw_batches(self, camera, batches) -> None:
        if not self._replaying:
            self._draws.append((super().draw_batches, snapshot(camera), list(batches)))
        super().draw_batches(camera, batches)

    def draw_labels(self, camera, glyphs) -> None:
        if not self._replaying and glyphs is not None and len(glyphs):
            self._draws.append((super().draw_labels, snapshot(camera), np.array(glyphs, np.float32)))
        super().draw_labels(camera, glyphs)

    def read_pixels(self) -> np.ndarray:
        raise RuntimeError("a tiled renderer's picture comes band by band: use bands()")

    def bands(self, overlay: Callable[[tuple[int, int, int, int]], None] | None = None,
              progress: Callable[[int, int], None] | None = None) -> Iterator[np.ndarray]:
        """The last frame again, tile by tile: (band height, width, 3) uint8 arrays, the top band first.

        ``overlay(rect)``: draws what goes over the scene (the UI) into the tile ``rect`` (x, y from the
        bottom left, w, h) of the whole picture, after the scene's draws."""
        full = self._size
        done, total = 0, self.grid.count
        self._replaying = True
        try:
            for y, h in self.grid.bands:
                band = np.empty((h, full[0], 3), np.uint8)
                for x, w in self.grid.columns:
                    rect = (x, y, w, h)
                    matrix = tile_matrix(full, rect)
                    self._begin_tile(rect)
                    super().begin_frame(self._clear)
                    for draw, camera, what in self._draws:
                        draw(tile_camera(camera, matrix), what)
                    super().end_frame()
                    self._end_tile()
                    if overlay is not None:
                        self._before_overlay(w, h)
                        overlay(rect)
                    band[:, x:x + w] = self._read_tile(w, h)
                    done += 1
                    if progress is not None:
                        progress(done, total)
                yield band
        finally:
            self._replaying = False
            self._end_tile()


class TiledRenderer(TileReplay, HeadlessRenderer):
    """A headless renderer of any size up to what memory allows: frames draw and are recorded; ``bands`` replays
    the last frame's draws tile by tile. ``side``: the tile side (default: the GL limit, at most DEFAULT_TILE_SIDE)."""

    def __init__(self, size, side: int | None = None, ctx: moderngl.Context | None = None, pixel_ratio: float = 1.0,
                 **kwargs):
        owns = ctx is None
        ctx = ctx or create_headless_context()
        limit = max_target_side(ctx)
        try:
            side = tile_side(side, limit, "this OpenGL")
        except ValueError:
            if owns:
                ctx.release()
            raise
        full = (int(size[0]), int(size[1]))
        self.grid = TileGrid(full, side)
        super().__init__((min(side, full[0]), min(side, full[1])), ctx, pixel_ratio=pixel_ratio, **kwargs)
        self._owns_context = owns
        self._size = full  # cameras, label layout and the UI see the whole picture (over the pixel ratio)
        self._start_recording()

    def _begin_tile(self, rect) -> None:
        x, y, w, h = rect
        self.viewport, self.frag_origin = (0, 0, w, h), (float(x), float(y))  # GL pixels of the tile

    def _end_tile(self) -> None:
        self.viewport, self.frag_origin = None, (0.0, 0.0)

    def _before_overlay(self, w: int, h: int) -> None:
        self.offscreen.framebuffer.use()
        self.ctx.viewport = (0, 0, w, h)

    def _read_tile(self, w: int, h: int) -> np.ndarray:
        data = self.offscreen.framebuffer.read(viewport=(0, 0, w, h), components=3, alignment=1)
        return np.frombuffer(data, np.uint8).reshape(h, w, 3)[::-1]

    def ui_tile_drawer(self, ui_renderer, draw_data) -> Callable[[tuple[int, int, int, int]], None]:
        """The ``overlay`` for ``bands`` that draws an ImGui frame into each tile."""
        return imgui_tile_drawer(ui_renderer, draw_data)


def tile_side(side: int | None, limit: int, what: str) -> int:
    """The tile side to use: ``side`` (default: the limit, at most DEFAULT_TILE_SIDE) rounded down to TILE_ALIGN;
    ValueError naming ``what``'s limit where it is larger."""
    side = int(side or min(limit, DEFAULT_TILE_SIDE))
    if side > limit:
        raise ValueError(f"a tile side of {side} px is beyond {what}'s limit of {limit} px")
    return max(TILE_ALIGN, side - side % TILE_ALIGN)


def imgui_tile_drawer(ui_renderer, draw_data) -> Callable[[tuple[int, int, int, int]], None]:
    """An ``overlay`` for ``TiledRenderer.bands`` that draws an ImGui frame's draw data (laid out for the whole
    picture) into each tile. moderngl-window's renderer draws at the origin of the display only, so this
    is its draw loop with the projection and the scissor rectangles moved to the tile; it uses that
    renderer's program, buffers and textures."""
    import ctypes

    from imgui_bundle import imgui

    io = ui_renderer.io
    ratio = float(io.display_framebuffer_scale.x)  # target pixels per UI pixel (UiHost sets it: the pixel ratio)
    full_h = io.display_size.y * ratio  # the picture's height in target pixels
    full_h_px = int(full_h)  # the framebuffer height moderngl-window's scissor is measured from
    lists = [(commands, [(c.texture_id, tuple(c.clip_rect), c.elem_count) for c in commands.cmd_buffer])
             for commands in draw_data.cmd_lists]

    def draw(rect: tuple[int, int, int, int]) -> None:
        x, y, w, h = rect
        top = full_h - y - h  # the tile's top edge in UI pixels (y down)
        ctx = ui_renderer.ctx
        # An orthographic projection of the UI pixels [x, x + w] x [top, top + h] / ratio onto the tile.
        sx, sy = 2.0 * ratio / w, 2.0 * ratio / h
        ui_renderer.projMat.value = (sx, 0.0, 0.0, 0.0, 0.0, -sy, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0,
                                     -1.0 - 2.0 * x / w, 1.0 + 2.0 * top / h, 0.0, 1.0)
        ctx.enable_only(moderngl.BLEND)
        ctx.blend_equation = moderngl.FUNC_ADD
        ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        for commands, cmds in lists:
            vertices = (ctypes.c_byte * (commands.vtx_buffer.size() * imgui.VERTEX_SIZE)).from_address(
                commands.vtx_buffer.data_address())
            indices = (ctypes.c_byte * (commands.idx_buffer.size() * imgui.INDEX_SIZE)).from_address(
                commands.idx_buffer.data_address())
            ui_renderer._vertex_buffer.write(vertices)
            ui_renderer._index_buffer.write(indices)
            first = 0
            # The clip rectangles are in target pixels already: moderngl-window's render of the frame scaled them.
            for texture_id, (cx0, cy0, cx1, cy1), count in cmds:
                # The scissor one pass would use (rounded as moderngl-window rounds it), moved into the tile.
                gx, gy = int(cx0) - x, int(full_h_px - cy1) - y
                sx0, sx1 = max(gx, 0), min(gx + int(cx1 - cx0), w)
                sy0, sy1 = max(gy, 0), min(gy + int(cy1 - cy0), h)
                if sx1 > sx0 and sy1 > sy0:
                    ui_renderer._textures[texture_id].use(0)
                    ctx.scissor = sx0, sy0, sx1 - sx0, sy1 - sy0
                    ui_renderer._vao.render(moderngl.TRIANGLES, vertices=count, first=first)
                first += count
        ctx.scissor = None

    return draw
