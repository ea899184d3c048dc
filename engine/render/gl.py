"""The moderngl implementation of the Renderer interface: instanced boxes, data atlas, SDF text.

The renderer draws into whatever framebuffer it is given: an offscreen one from
engine/render/headless.py, or a window's screen framebuffer (``GLRenderer.for_window``), so
the window, ``llmviz render`` and the tests share one code path. Per-frame Python work is
per batch; everything per instance is one numpy array write.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib.resources
import re

import moderngl
import numpy as np

from . import colormaps
from .backend import (GLYPH_FLOATS, GLYPH_LAYOUT, INSTANCE_FLOATS, INSTANCE_LAYOUT, MATERIAL_TRANSLUCENT, Batch,
                      Renderer, RenderStats, TargetViewports, back_to_front, checked_block, count_draw, draw_order,
                      highlight_bytes)
from .datatex import ShelfPacker
from .meshes import mesh_lod
from .text import GlyphAtlas, default_glyph_atlas

DATA_ATLAS_SIZE = 2048
MIN_INSTANCE_CAPACITY = 64
TEXT_DEPTH_BIAS = 2e-5
TIMER_LAG = 2  # frames between ending a GPU timer query and reading it

_INCLUDE = re.compile(r'^\s*#include\s+"([^"]+)"\s*$', re.MULTILINE)

# "Over" blending; alpha accumulates separately so read-back alpha stays meaningful.
_BLEND_OVER = (moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA, moderngl.ONE, moderngl.ONE_MINUS_SRC_ALPHA)

# Texture units, fixed for the renderer's lifetime.
UNIT_ATLAS, UNIT_COLORMAPS, UNIT_GLYPHS, UNIT_HIGHLIGHT = 0, 1, 2, 3


@functools.lru_cache(maxsize=1)
def _released_gl_finish():
    """glFinish called through ctypes, which lets go of the interpreter lock while the GL works (None where no
    GL library loads: moderngl's own finish then). moderngl keeps the lock through the call, and on llvmpipe the
    call is the whole frame's rasterising: a worker thread (a zoom's exact block, a live model) stood still for
    it, where the window's buffer swap (ctypes too) lets it run."""
    for name in ("libGL.so.1", "libOpenGL.so.0", ctypes.util.find_library("GL")):
        if not name:
            continue
        try:
            fn = ctypes.CDLL(name).glFinish
        except (OSError, AttributeError):
            continue
        fn.restype, fn.argtypes = None, []
        return fn
    return None


def shader_source(name: str) -> str:
    """The text of shaders/NAME.glsl with its ``#include "file.glsl"`` lines expanded."""
    root = importlib.resources.files("llmviz.shaders")

    def read(file_name: str, seen: tuple) -> str:
        if file_name in seen:
            raise ValueError(f"shader include cycle: {' -> '.join(seen + (file_name,))}")
        text = root.joinpath(file_name).read_text()
        return _INCLUDE.sub(lambda m: read(m.group(1), seen + (file_name,)), text)

    return read(f"{name}.glsl", ())


def stage_source(source: str, stage: str, defines: dict) -> str:
    """Insert the stage macro and defines after the ``#version`` line (moderngl-window style)."""
    lines = source.split("\n", 1)
    if not lines[0].startswith("#version"):
        raise ValueError("a shader file must start with its #version line")
    header = [f"#define {stage} 1"] + [f"#define {k} {v}" for k, v in defines.items()]
    return lines[0] + "\n" + "\n".join(header) + "\n" + lines[1]


def _attribute_format(program: moderngl.Program, layout: dict, names: dict, suffix: str) -> tuple:
    """A buffer format for ``layout`` whose fields the program does not use become padding.

    GLSL compilers drop unused inputs, and moderngl refuses to bind a missing attribute.
    """
    parts, attributes = [], []
    for field, (_, width) in layout.items():
        name = names[field]
        if name in program:
            parts.append(f"{width}f")
            attributes.append(name)
        else:
            parts.append(f"{4 * width}x")
    return " ".join(parts) + suffix, attributes


_INSTANCE_ATTRIBUTES = {"center": "i_center", "size": "i_size", "rotation": "i_rotation", "color": "i_color",
                        "region": "i_region", "value_range": "i_range", "colormap": "i_colormap",
                        "flags": "i_flags"}
_GLYPH_ATTRIBUTES = {name: f"g_{name}" for name in GLYPH_LAYOUT}
_VERTEX_LAYOUT = {"position": (0, 3), "normal": (3, 3)}
_VERTEX_ATTRIBUTES = {"position": "in_position", "normal": "in_normal"}


SOFTWARE_RASTERISERS = ("llvmpipe", "softpipe", "swrast", "lavapipe", "swiftshader")


def timer_query_problem(ctx) -> str:
    """Why GPU timer queries cannot be trusted on this context ("" where they can)."""
    name = str(ctx.info.get("GL_RENDERER", "")).lower()
    if any(soft in name for soft in SOFTWARE_RASTERISERS):
        return "n/a: software renderer (its timer queries do not measure the drawing)"
    return ""


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


class _InstanceStream:
    """One reusable instance buffer and its vertex array; grows by doubling, never shrinks."""

    def __init__(self, ctx, program, vertices: moderngl.Buffer, vertex_count: int, layout: dict,
                 attributes: dict, vertex_format: tuple):
        self.ctx, self.program, self.vertices, self.vertex_count = ctx, program, vertices, vertex_count
        self.layout, self.attributes, self.vertex_format = layout, attributes, vertex_format
        self.row_bytes = 4 * sum(w for _, w in layout.values())
        self.capacity = 0
        self.buffer: moderngl.Buffer | None = None
        self.vao: moderngl.VertexArray | None = None

    def upload(self, rows: np.ndarray) -> None:
        count = len(rows)
        if count > self.capacity:
            self.release()
            self.capacity = max(MIN_INSTANCE_CAPACITY, _pow2_at_least(count))
            self.buffer = self.ctx.buffer(reserve=self.capacity * self.row_bytes, dynamic=True)
            fmt, names = _attribute_format(self.program, self.layout, self.attributes, "/i")
            self.vao = self.ctx.vertex_array(self.program, [
                (self.vertices,) + self.vertex_format,
                (self.buffer, fmt, *names),
            ])
        self.buffer.write(np.ascontiguousarray(rows, np.float32))

    def draw(self, count: int) -> None:
        self.vao.render(moderngl.TRIANGLES, vertices=self.vertex_count, instances=count)

    @property
    def nbytes(self) -> int:
        return self.capacity * self.row_bytes

    def release(self) -> None:
        if self.vao is not None:
            self.vao.release()
            self.buffer.release()
        self.vao = self.buffer = None
        self.capacity = 0


class GLRenderer(TargetViewports, Renderer):
    """Renderer on a moderngl context, drawing into ``target`` (a moderngl Framebuffer)."""

    backend_name = "gl"

    def __init__(self, ctx: moderngl.Context, target: moderngl.Framebuffer, size=None, *,
                 data_atlas_size: int = DATA_ATLAS_SIZE, glyph_atlas: GlyphAtlas | None = None,
                 pixel_ratio: float = 1.0):
        self.ctx = ctx
        self.target = target
        self._size = tuple(size or target.size)
        self.stats = RenderStats()
        self._clear_rgb = (0.0, 0.0, 0.0)
        self._programs: dict[tuple, moderngl.Program] = {}
        self._vertex_buffers: dict[tuple, moderngl.Buffer] = {}
        self._streams: dict[tuple, _InstanceStream] = {}   # (mesh, material, lod) -> stream
        self._naive_vaos: dict[tuple, moderngl.VertexArray] = {}  # engine/bench.py's one-draw-per-instance path
        self._frame_uniforms: dict[int, list] = {}  # program glo -> [(name, Uniform)] it uses

        # Data atlas: one float texture, carved by a shelf packer, read with texelFetch.
        self.data_packer = ShelfPacker(data_atlas_size, data_atlas_size)
        self.data_atlas = ctx.texture((data_atlas_size, data_atlas_size), 1, dtype="f4")
        self.data_atlas.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self.data_atlas.write(np.zeros((data_atlas_size, data_atlas_size), np.float32))
        # A mask beside the data atlas, texel for texel: cells marked here are drawn highlighted
        # (the cells a hovered value was computed from).
        self.highlight_atlas = ctx.texture((data_atlas_size, data_atlas_size), 1, dtype="f1")
        self.highlight_atlas.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self.highlight_atlas.write(np.zeros((data_atlas_size, data_atlas_size), np.uint8))
        luts = colormaps.lut_rgba()
        self.colormap_texture = ctx.texture((luts.shape[1], luts.shape[0]), 4, luts.tobytes(), dtype="f4")
        self.colormap_texture.filter = (moderngl.NEAREST, moderngl.NEAREST)

        self.glyph_atlas = glyph_atlas or default_glyph_atlas()
        image = self.glyph_atlas.image
        self.glyph_texture = ctx.texture((image.shape[1], image.shape[0]), 1, image.tobytes())
        self.glyph_texture.filter = (moderngl.LINEAR, moderngl.LINEAR)
        corners = np.array([(0, 0), (1, 0), (1, 1), (0, 0), (1, 1), (0, 1)], np.float32)
        self._corner_buffer = ctx.buffer(corners.tobytes())
        text_program = self._program("text", ())
        self._text_stream = _InstanceStream(ctx, text_program, self._corner_buffer, 6, GLYPH_LAYOUT,
                                            _GLYPH_ATTRIBUTES, ("2f", "in_corner"))

        # GPU timing: a ring of queries; a frame reads the oldest one, submitted TIMER_LAG frames
        # ago, so it does not wait for the GPU to finish the frames it just submitted. Software
        # rasterisers answer timer queries with figures that jump between ~0 and the whole frame
        # (llvmpipe draws on its own threads, after the query closes): those are not used.
        self._queries = None
        self.gpu_timing_note = timer_query_problem(ctx)
        if not self.gpu_timing_note:
            try:
                self._queries = [ctx.query(time=True) for _ in range(TIMER_LAG + 1)]
            except Exception:  # no timer queries on this context (ES, old drivers): gpu_ms stays None
                self.gpu_timing_note = "n/a: no timer queries on this context"
        # Where in the target the scene is drawn (GL pixels, origin bottom-left); None: all of it.
        self.viewport: tuple[int, int, int, int] | None = None
        # Target pixels per layout pixel: a picture made larger than its view (`llmviz render --size 7680x4320`
        # of a 1280x720 view has 6). ``size``, cameras, LOD, label layout and the UI work in layout pixels;
        # the target, viewports and read-back in target pixels; the shaders' pixel widths scale by it.
        self.pixel_ratio = float(pixel_ratio)
        # Where the target's pixel (0, 0) lies in the whole picture (a tile of a tiled one): screen-keyed
        # patterns (the mask's hatch) continue across tiles.
        self.frag_origin = (0.0, 0.0)
        self._layout_viewport: tuple[int, int, int, int] | None = None  # the viewport as given, layout pixels
        # Below 1 the scene is drawn into a smaller offscreen image, then scaled up (adaptive quality).
        self.render_scale = 1.0
        self._screen = target
        self._scaled: tuple | None = None  # (size, texture, depth, framebuffer)
        self._blit_vao = None
        self._uniform_cache: tuple | None = None  # (frame, camera key, values)
        self._frame = 0
        self._query_pending = [False] * (TIMER_LAG + 1)
        self._in_frame = False

    # ------------------------------------------------------------------ construction
    @classmethod
    def for_window(cls, ctx: moderngl.Context | None = None, **kwargs) -> "GLRenderer":
        """A renderer drawing to the current window's default framebuffer (moderngl-window, pyglet)."""
        ctx = ctx or moderngl.create_context()
        return cls(ctx, ctx.screen, **kwargs)

    @property
    def device_name(self) -> str:
        return str(self.ctx.info.get("GL_RENDERER", "unknown"))

    def finish(self) -> None:
        """Wait for the GL to finish the frame (headless: its presentation), other threads running meanwhile."""
        release = _released_gl_finish()
        if release is None:
            self.ctx.finish()
        else:
            release()   # acts on this thread's current context: the one moderngl draws with

    def ui_overlay(self, display_size, pixel_ratio: float = 1.0):
        from .gl_ui import HeadlessImguiRenderer, sample_font_nearest

        ui = HeadlessImguiRenderer(ctx=self.ctx, display_size=tuple(display_size))
        sample_font_nearest(ui, pixel_ratio)
        return ui

    def resize(self, size) -> None:
        self._size = (int(size[0]), int(size[1]))

    def set_target(self, target: moderngl.Framebuffer, size=None) -> None:
        self.target = self._screen = target
        self._size = tuple(size or target.size)

    def _scaled_target(self, size: tuple[int, int]) -> moderngl.Framebuffer:
        if self._scaled is None or self._scaled[0] != size:
            self._release_scaled()
            texture = self.ctx.texture(size, 4)
            texture.filter = (moderngl.LINEAR, moderngl.LINEAR)
            depth = self.ctx.depth_renderbuffer(size)
            self._scaled = (size, texture, depth, self.ctx.framebuffer([texture], depth))
        return self._scaled[3]

    def _release_scaled(self) -> None:
        if self._scaled is not None:
            for obj in self._scaled[:0:-1]:
                obj.release()
            self._scaled = None

    def _blit_scaled(self) -> None:
        """Scale the reduced-resolution scene up into the view rectangle of the real target."""
        if self._blit_vao is None:
            self._blit_vao = self.ctx.vertex_array(self._program("blit", ()), [])
        self._screen.use()
        self.ctx.viewport = self.view_rect
        self.ctx.disable(moderngl.DEPTH_TEST | moderngl.BLEND | moderngl.CULL_FACE)
        self._scaled[1].use(UNIT_ATLAS)
        self._blit_vao.program["u_image"].value = UNIT_ATLAS
        self._blit_vao.render(moderngl.TRIANGLES, vertices=3)

    # ------------------------------------------------------------------ programs
    def _program(self, name: str, defines: tuple) -> moderngl.Program:
        key = (name, tuple(defines))
        program = self._programs.get(key)
        if program is None:
            source = shader_source(name)
            macros = {"COLORMAP_SIZE": colormaps.COLORMAP_SIZE, "COLORMAP_RGB": colormaps.COLORMAP_RGB, **dict(defines)}
            program = self.ctx.program(vertex_shader=stage_source(source, "VERTEX_SHADER", macros),
                                       fragment_shader=stage_source(source, "FRAGMENT_SHADER", macros))
            for uniform, unit in (("u_atlas", UNIT_ATLAS), ("u_colormaps", UNIT_COLORMAPS),
                                  ("u_glyphs", UNIT_GLYPHS), ("u_highlight", UNIT_HIGHLIGHT)):
                if uniform in program:
                    program[uniform].value = unit
            self._programs[key] = program
        return program

    def _vertex_buffer(self, mesh: int, lod: int) -> tuple[moderngl.Buffer, int]:
        geometry = mesh_lod(mesh, lod)
        key = (int(mesh), int(lod))
        buffer = self._vertex_buffers.get(key)
        if buffer is None:
            buffer = self._vertex_buffers[key] = self.ctx.buffer(geometry.vertices.tobytes())
        return buffer, len(geometry.vertices)

    def _stream(self, mesh: int, material: int, lod: int) -> _InstanceStream:
        key = (int(mesh), int(material), int(lod))
        stream = self._streams.get(key)
        if stream is None:
            geometry = mesh_lod(mesh, lod)
            program = self._program(geometry.program, geometry.defines)
            vertices, count = self._vertex_buffer(mesh, lod)
            fmt, names = _attribute_format(program, _VERTEX_LAYOUT, _VERTEX_ATTRIBUTES, "")
            stream = self._streams[key] = _InstanceStream(self.ctx, program, vertices, count, INSTANCE_LAYOUT,
                                                          _INSTANCE_ATTRIBUTES, (fmt, *names))
        return stream

    def instance_buffer(self, mesh: int, material: int, lod: int) -> moderngl.Buffer | None:
        """The GPU buffer currently holding that batch's instances (for tests and tools)."""
        stream = self._streams.get((int(mesh), int(material), int(lod)))
        return None if stream is None else stream.buffer

    # ------------------------------------------------------------------ frame
    def begin_frame(self, clear_color=(0.0, 0.0, 0.0, 1.0)) -> None:
        if self._in_frame:
            raise RuntimeError("begin_frame called twice without end_frame")
        self._in_frame = True
        rect = self.view_rect
        w, h = rect[2:]
        scale = float(self.render_scale)
        if scale < 0.999:
            size = (max(1, int(w * scale)), max(1, int(h * scale)))
            self.target = self._scaled_target(size)
            rect = (0, 0, *size)
        self.target.use()
        self.ctx.viewport = rect
        rgba = tuple(clear_color) + (1.0,) * (4 - len(clear_color))
        self._clear_rgb = rgba[:3]
        self.target.clear(*rgba, depth=1.0, viewport=rect)
        self.stats = RenderStats(gpu_ms=self.stats.gpu_ms)
        if self._queries is not None:
            self._queries[self._frame % len(self._queries)].__enter__()  # a moderngl Query begins on __enter__

    def end_frame(self) -> None:
        if not self._in_frame:
            raise RuntimeError("end_frame called without begin_frame")
        self._in_frame = False
        if self._queries is not None:
            ring = len(self._queries)
            current = self._frame % ring
            self._queries[current].__exit__(None, None, None)
            self._query_pending[current] = True
            oldest = (current + 1) % ring
            if self._query_pending[oldest]:
                self.stats.gpu_ms = self._queries[oldest].elapsed / 1e6
                self._query_pending[oldest] = False
        self._frame += 1
        if self.target is not self._screen:
            self.target.depth_mask = True
            self._blit_scaled()
            self.target = self._screen
        self.stats.buffer_bytes = self.buffer_bytes()
        self.target.depth_mask = True  # leave the target as other drawers (UI overlay) expect it
        self.target.use()
        self.ctx.viewport = (0, 0, *self._size)  # the overlay draws over the whole target

    def _camera_values(self, camera, view: np.ndarray) -> dict[str, bytes]:
        """The per-frame uniforms, computed once per frame and camera (boxes and labels share them)."""
        key = (self._frame, id(camera), view.tobytes(), self.pixel_ratio, tuple(self.frag_origin))
        if self._uniform_cache is not None and self._uniform_cache[0] == key:
            return self._uniform_cache[1]
        # The rows of the view rotation are the camera's right, up and backward axes in world space.
        values = {
            "u_view_proj": (camera.projection() @ view).T.astype("f4").tobytes(),
            "u_view_rotation": view[:3, :3].T.astype("f4").tobytes(),
            "u_camera_right": view[0, :3].astype("f4").tobytes(),
            "u_camera_up": view[1, :3].astype("f4").tobytes(),
            "u_fade_color": np.asarray(self._clear_rgb, "f4").tobytes(),
            "u_pixel_ratio": np.float32(self.pixel_ratio).tobytes(),
            "u_frag_origin": np.asarray(self.frag_origin, "f4").tobytes(),
        }
        self._uniform_cache = (key, values)
        return values

    def _set_uniforms(self, program: moderngl.Program, values: dict[str, bytes]) -> None:
        # Which of the frame uniforms a program has is looked up once per program.
        present = self._frame_uniforms.get(program.glo)
        if present is None:
            present = self._frame_uniforms[program.glo] = [
                (name, program[name]) for name in values if name in program]
        for name, uniform in present:
            uniform.write(values[name])

    def _set_material(self, material: int) -> None:
        ctx = self.ctx
        ctx.enable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        ctx.cull_face = "back"
        ctx.front_face = "ccw"
        if material == MATERIAL_TRANSLUCENT:
            ctx.enable(moderngl.BLEND)
            ctx.blend_func = _BLEND_OVER
            self.target.depth_mask = False
        else:
            ctx.disable(moderngl.BLEND)
            self.target.depth_mask = True

    def _bind_textures(self) -> None:
        self.data_atlas.use(UNIT_ATLAS)
        self.highlight_atlas.use(UNIT_HIGHLIGHT)
        self.colormap_texture.use(UNIT_COLORMAPS)
        self.glyph_texture.use(UNIT_GLYPHS)

    _draw_order = staticmethod(draw_order)
    _back_to_front = staticmethod(back_to_front)

    def _count(self, batch: Batch, draws: int) -> None:
        count_draw(self.stats, batch, draws)

    def draw_batches(self, camera, batches: list[Batch]) -> None:
        self._bind_textures()
        view = camera.view()
        uniforms = self._camera_values(camera, view)
        for batch in self._draw_order(batches):
            rows = batch.instances
            if rows.ndim != 2 or rows.shape[1] != INSTANCE_FLOATS:
                raise ValueError(f"batch instances must be (n, {INSTANCE_FLOATS}) float32, got {rows.shape}")
            if batch.material == MATERIAL_TRANSLUCENT:
                rows = self._back_to_front(camera, view, rows)
            stream = self._stream(batch.mesh, batch.material, batch.lod)
            stream.upload(rows)
            self._set_material(batch.material)
            self._set_uniforms(stream.program, uniforms)
            stream.draw(len(rows))
            self._count(batch, 1)

    def draw_labels(self, camera, glyphs: np.ndarray) -> None:
        if glyphs is None or not len(glyphs):
            return
        if glyphs.ndim != 2 or glyphs.shape[1] != GLYPH_FLOATS:
            raise ValueError(f"glyph rows must be (n, {GLYPH_FLOATS}) float32, got {glyphs.shape}")
        ctx = self.ctx
        ctx.enable(moderngl.DEPTH_TEST | moderngl.BLEND)
        ctx.disable(moderngl.CULL_FACE)  # flat labels stay readable (mirrored) from behind
        ctx.blend_func = _BLEND_OVER
        self.target.depth_mask = False
        self.glyph_texture.use(UNIT_GLYPHS)
        stream = self._text_stream
        stream.upload(glyphs)
        self._set_uniforms(stream.program, self._camera_values(camera, camera.view()))
        stream.program["u_depth_bias"].value = TEXT_DEPTH_BIAS
        stream.draw(len(glyphs))
        self.stats.draw_calls += 1
        self.stats.triangles += 2 * len(glyphs)
        self.stats.glyphs += len(glyphs)

    def warm_up(self, camera) -> None:
        """Draw one instance of every mesh, LOD and material once, off screen in effect (cleared after):
        shaders compile and the driver builds its state variants now, not on the first frame of a
        scene that needs them (17 ms on llvmpipe, a visible hitch when switching models)."""
        from .backend import INSTANCE_SLICES, MATERIAL_OPAQUE, empty_instances
        from .meshes import MESH_FAMILIES

        rows = empty_instances(1)
        rows[:, INSTANCE_SLICES["size"]] = 1e-6  # a speck: nothing visible is drawn
        batches = [Batch(mesh=mesh, material=material, lod=lod, instances=rows)
                   for mesh, family in MESH_FAMILIES.items() for lod in range(len(family.lods))
                   for material in (MATERIAL_OPAQUE, MATERIAL_TRANSLUCENT)]
        self.begin_frame()
        self.draw_batches(camera, batches)
        self.end_frame()
        self.target.clear(0.0, 0.0, 0.0, 1.0, depth=1.0)
        self.ctx.finish()

    # ------------------------------------------------------------------ read-back and data
    def read_pixels(self) -> np.ndarray:
        w, h = self._size
        data = self.target.read(viewport=(0, 0, w, h), components=4, alignment=1)
        return np.frombuffer(data, np.uint8).reshape(h, w, 4)[::-1].copy()

    def alloc_data(self, rows: int, cols: int) -> tuple[int, int]:
        return self.data_packer.alloc(cols, rows)

    def write_data(self, x: int, y: int, values: np.ndarray) -> None:
        values = checked_block(x, y, values, self.data_packer.width)
        rows, cols = values.shape
        self.data_atlas.write(values.tobytes(), viewport=(int(x), int(y), cols, rows))

    def read_data(self) -> np.ndarray:
        """The whole data atlas, (size, size) float32 with [y, x] the texel of region (x, y), as the shaders
        read it (for vector export: one read, then regions are slices)."""
        size = self.data_packer.width
        return np.frombuffer(self.data_atlas.read(), np.float32).reshape(size, size)

    def reset_data(self) -> None:
        """Empty the data atlas and the highlight mask and forget every region (another scene takes over)."""
        self.data_packer.reset()
        size = self.data_packer.width
        self.data_atlas.write(np.zeros((size, size), np.float32))
        self.highlight_atlas.write(np.zeros((size, size), np.uint8))

    def write_highlight(self, x: int, y: int, mask: np.ndarray) -> None:
        """Mark cells of a data region as highlighted (mask != 0), texel (x + c, y + r) for mask[r, c]."""
        mask = highlight_bytes(mask)
        rows, cols = mask.shape
        if rows and cols:
            self.highlight_atlas.write(mask.tobytes(), viewport=(int(x), int(y), cols, rows), alignment=1)

    def buffer_bytes(self) -> int:
        textures = (self.data_atlas, self.highlight_atlas, self.colormap_texture, self.glyph_texture)
        total = sum(t.width * t.height * t.components * (4 if t.dtype == "f4" else 1) for t in textures)
        total += sum(b.size for b in self._vertex_buffers.values()) + self._corner_buffer.size
        total += sum(s.nbytes for s in self._streams.values()) + self._text_stream.nbytes
        return int(total)

    def release(self) -> None:
        self._release_scaled()
        if self._blit_vao is not None:
            self._blit_vao.release()
        for stream in self._streams.values():
            stream.release()
        self._text_stream.release()
        for vao in self._naive_vaos.values():
            vao.release()
        for obj in (*self._vertex_buffers.values(), *self._programs.values(), self._corner_buffer,
                    self.data_atlas, self.highlight_atlas, self.colormap_texture, self.glyph_texture):
            obj.release()
        self._streams.clear()
        self._naive_vaos.clear()
        self._vertex_buffers.clear()
        self._programs.clear()
