"""The wgpu implementation of the Renderer interface: instanced boxes with data-texture cells, impostors, SDF text.

It draws offscreen (an RGBA8 colour + depth texture pair of its own) with WGSL twins of the GLSL programs
(shaders/*.wgsl), from the same instance and glyph rows, the same data atlas layout and the same colour maps,
so the same scene gives the same picture on both backends (tests/test_render_wgpu.py states how close).
What it can serve is said in ``CAN`` (engine/render/factory.py falls back to moderngl on anything else, with
that reason); the window's surface is engine/render/wgpu_window.py, tiled pictures engine/render/wgpu_tiled.py.

Each ``draw_batches`` / ``draw_labels`` call is one render pass, submitted at once: the frame's uniforms are
written to the queue before it, so several views (cameras) in one frame each see their own.
"""
from __future__ import annotations

import importlib.resources

import numpy as np

from . import colormaps
from .backend import (GLYPH_FLOATS, GLYPH_LAYOUT, INSTANCE_FLOATS, INSTANCE_LAYOUT, MATERIAL_TRANSLUCENT, Batch,
                      Renderer, RenderStats, TargetViewports, UiImage, back_to_front, checked_block, count_draw,
                      draw_order, highlight_bytes)
from .datatex import ShelfPacker
from .meshes import LOD_IMPOSTOR, mesh_lod
from .text import GlyphAtlas, default_glyph_atlas

CAN = frozenset({"ui", "window", "tiled"})  # of 'window', 'tiled', 'ui': what this backend serves (factory.WGPU_LIMITS)
DATA_ATLAS_SIZE = 2048
MIN_INSTANCE_CAPACITY = 64
TEXT_DEPTH_BIAS = 2e-5  # as engine/render/gl.py
COLOR_FORMAT = "rgba8unorm"
DEPTH_FORMAT = "depth24plus"
FRAME_BYTES = 176  # struct Frame in shaders/common.wgsl


def wgsl_source(name: str) -> str:
    """shaders/common.wgsl, the colour-map constants, then shaders/NAME.wgsl: one WGSL module."""
    root = importlib.resources.files("llmviz.shaders")
    constants = (f"const COLORMAP_SIZE: i32 = {colormaps.COLORMAP_SIZE};\n"
                 f"const COLORMAP_RGB: i32 = {colormaps.COLORMAP_RGB};\n")
    return constants + root.joinpath("common.wgsl").read_text() + "\n" + root.joinpath(f"{name}.wgsl").read_text()


def _vertex_attributes(layout: dict, first_location: int) -> list[dict]:
    formats = {1: "float32", 2: "float32x2", 3: "float32x3", 4: "float32x4"}
    return [{"format": formats[width], "offset": 4 * offset, "shader_location": first_location + k}
            for k, (offset, width) in enumerate(layout.values())]


_MESH_BUFFER = {"array_stride": 24, "step_mode": "vertex", "attributes": [
    {"format": "float32x3", "offset": 0, "shader_location": 0},
    {"format": "float32x3", "offset": 12, "shader_location": 1}]}
_INSTANCE_BUFFER = {"array_stride": 4 * INSTANCE_FLOATS, "step_mode": "instance",
                    "attributes": _vertex_attributes(INSTANCE_LAYOUT, 2)}
_CORNER_BUFFER = {"array_stride": 8, "step_mode": "vertex", "attributes": [
    {"format": "float32x2", "offset": 0, "shader_location": 0}]}
_GLYPH_BUFFER = {"array_stride": 4 * GLYPH_FLOATS, "step_mode": "instance",
                 "attributes": _vertex_attributes(GLYPH_LAYOUT, 1)}

# "Over" blending; alpha accumulates separately so read-back alpha stays meaningful (as gl.py's _BLEND_OVER).
_BLEND_OVER = {"color": {"src_factor": "src-alpha", "dst_factor": "one-minus-src-alpha", "operation": "add"},
               "alpha": {"src_factor": "one", "dst_factor": "one-minus-src-alpha", "operation": "add"}}


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


class _Stream:
    """A reusable vertex buffer of instance rows; grows by doubling, never shrinks."""

    def __init__(self, device, row_bytes: int):
        self.device, self.row_bytes = device, row_bytes
        self.capacity, self.buffer = 0, None

    def upload(self, rows: np.ndarray) -> None:
        import wgpu

        if len(rows) > self.capacity:
            if self.buffer is not None:
                self.buffer.destroy()
            self.capacity = max(MIN_INSTANCE_CAPACITY, _pow2_at_least(len(rows)))
            self.buffer = self.device.create_buffer(size=self.capacity * self.row_bytes,
                                                    usage=wgpu.BufferUsage.VERTEX | wgpu.BufferUsage.COPY_DST)
        self.device.queue.write_buffer(self.buffer, 0, np.ascontiguousarray(rows, np.float32))

    @property
    def nbytes(self) -> int:
        return self.capacity * self.row_bytes

    def release(self) -> None:
        if self.buffer is not None:
            self.buffer.destroy()
        self.capacity, self.buffer = 0, None


class WgpuRenderer(TargetViewports, Renderer):
    """An offscreen renderer on a wgpu device (default: engine/gpu_adapters.py's shared one)."""

    backend_name = "wgpu"
    color_format = COLOR_FORMAT  # the colour target's format (a window's surface may want another)

    def __init__(self, size=(1280, 720), *, device=None, data_atlas_size: int = DATA_ATLAS_SIZE,
                 glyph_atlas: GlyphAtlas | None = None, pixel_ratio: float = 1.0):
        import wgpu

        from ..gpu_adapters import shared_device

        if device is None:
            shared = shared_device()
            device, self.adapter = shared.device, shared.adapter
        else:
            self.adapter = None
        self.device = device
        self.stats = RenderStats()
        self.gpu_timing_note = "n/a: the wgpu backend takes no GPU timestamps yet"
        self.pixel_ratio = float(pixel_ratio)
        self.frag_origin = (0.0, 0.0)
        self.render_scale = 1.0  # adaptive quality's reduced resolution is not drawn here: always full size
        self.viewport: tuple[int, int, int, int] | None = None
        self._layout_viewport: tuple[int, int, int, int] | None = None
        self._in_frame = False
        self._clear_rgba = (0.0, 0.0, 0.0, 1.0)
        self._size = (int(size[0]), int(size[1]))
        self._target_px = self._size  # the colour target's own size (a tiled renderer's is one tile)
        self._flip_height = self._size[1]  # WebGPU's y runs down: GL-convention rectangles flip over this height
        limit = int(device.limits["max-texture-dimension-2d"])
        if max(max(self._size), data_atlas_size) > limit:  # what auto's fallback line then names
            raise ValueError(f"a {self._size[0]}x{self._size[1]} target and a {data_atlas_size}^2 data atlas need "
                             f"textures beyond this device's limit of {limit} px a side")
        self._make_target()

        usage = wgpu.TextureUsage
        self.data_packer = ShelfPacker(data_atlas_size, data_atlas_size)
        self.data_atlas = device.create_texture(size=(data_atlas_size, data_atlas_size, 1), format="r32float",
                                                usage=usage.TEXTURE_BINDING | usage.COPY_DST | usage.COPY_SRC)
        self.highlight_atlas = device.create_texture(size=(data_atlas_size, data_atlas_size, 1), format="r8unorm",
                                                     usage=usage.TEXTURE_BINDING | usage.COPY_DST)
        # WebGPU textures start zeroed: both atlases are empty already (reset_data would upload 20 MiB of zeros).
        luts = np.ascontiguousarray(colormaps.lut_rgba(), np.float32)
        self.colormap_texture = device.create_texture(size=(luts.shape[1], luts.shape[0], 1), format="rgba32float",
                                                      usage=usage.TEXTURE_BINDING | usage.COPY_DST)
        device.queue.write_texture({"texture": self.colormap_texture}, luts,
                                   {"bytes_per_row": luts.shape[1] * 16}, (luts.shape[1], luts.shape[0], 1))
        self.glyph_atlas = glyph_atlas or default_glyph_atlas()
        image = np.ascontiguousarray(self.glyph_atlas.image, np.uint8)
        self.glyph_texture = device.create_texture(size=(image.shape[1], image.shape[0], 1), format="r8unorm",
                                                   usage=usage.TEXTURE_BINDING | usage.COPY_DST)
        device.queue.write_texture({"texture": self.glyph_texture}, image, {"bytes_per_row": image.shape[1]},
                                   (image.shape[1], image.shape[0], 1))
        sampler = device.create_sampler(mag_filter="linear", min_filter="linear")

        self._uniforms = device.create_buffer(size=FRAME_BYTES,
                                              usage=wgpu.BufferUsage.UNIFORM | wgpu.BufferUsage.COPY_DST)
        self._fence = device.create_buffer(size=4, usage=wgpu.BufferUsage.COPY_SRC)
        stage = wgpu.ShaderStage.VERTEX | wgpu.ShaderStage.FRAGMENT
        float_texture = {"sample_type": "float", "view_dimension": "2d"}
        unfiltered = {"sample_type": "unfilterable-float", "view_dimension": "2d"}
        self._bind_layout = device.create_bind_group_layout(entries=[
            {"binding": 0, "visibility": stage, "buffer": {"type": "uniform"}},
            {"binding": 1, "visibility": stage, "texture": unfiltered},
            {"binding": 2, "visibility": stage, "texture": unfiltered},
            {"binding": 3, "visibility": stage, "texture": unfiltered},
            {"binding": 4, "visibility": stage, "texture": float_texture},
            {"binding": 5, "visibility": stage, "sampler": {"type": "filtering"}},
        ])
        self._bind_group = device.create_bind_group(layout=self._bind_layout, entries=[
            {"binding": 0, "resource": {"buffer": self._uniforms, "offset": 0, "size": FRAME_BYTES}},
            {"binding": 1, "resource": self.data_atlas.create_view()},
            {"binding": 2, "resource": self.highlight_atlas.create_view()},
            {"binding": 3, "resource": self.colormap_texture.create_view()},
            {"binding": 4, "resource": self.glyph_texture.create_view()},
            {"binding": 5, "resource": sampler},
        ])
        self._pipeline_layout = device.create_pipeline_layout(bind_group_layouts=[self._bind_layout])
        self._modules: dict[str, object] = {}
        self._pipelines: dict[tuple, object] = {}
        self._vertex_buffers: dict[tuple, tuple] = {}
        self._streams: dict[tuple, _Stream] = {}
        corners = np.array([(0, 0), (1, 0), (1, 1), (0, 0), (1, 1), (0, 1)], np.float32)
        self._corner_buffer = self._static_buffer(corners)
        self._text_stream = _Stream(device, 4 * GLYPH_FLOATS)

    # ------------------------------------------------------------------ targets and sizes
    def _make_target(self) -> None:
        import wgpu

        w, h = self._target_px
        usage = wgpu.TextureUsage
        self.color = self.device.create_texture(size=(w, h, 1), format=self.color_format,
                                                usage=usage.RENDER_ATTACHMENT | usage.COPY_SRC)
        self.depth = self.device.create_texture(size=(w, h, 1), format=DEPTH_FORMAT, usage=usage.RENDER_ATTACHMENT)
        self.color_view, self.depth_view = self.color.create_view(), self.depth.create_view()

    @property
    def device_name(self) -> str:
        if self.adapter is not None:
            return f"{self.adapter.label()} through wgpu"
        return "wgpu device"

    def resize(self, size) -> None:
        size = (int(size[0]), int(size[1]))
        if size != self._size:
            self.color.destroy()
            self.depth.destroy()
            self._size = self._target_px = size
            self._flip_height = size[1]
            self._make_target()

    # ------------------------------------------------------------------ programs and buffers
    def _module(self, name: str):
        module = self._modules.get(name)
        if module is None:
            module = self._modules[name] = self.device.create_shader_module(code=wgsl_source(name))
        return module

    def _pipeline(self, program: str, fragment: str, material: int, buffers: tuple, cull: str):
        key = (program, fragment, int(material))
        pipeline = self._pipelines.get(key)
        if pipeline is None:
            module = self._module(program)
            translucent = material == MATERIAL_TRANSLUCENT
            target = {"format": self.color_format, "blend": _BLEND_OVER if translucent else None}
            pipeline = self._pipelines[key] = self.device.create_render_pipeline(
                layout=self._pipeline_layout,
                vertex={"module": module, "entry_point": "vs_main", "buffers": list(buffers)},
                primitive={"topology": "triangle-list", "front_face": "ccw", "cull_mode": cull},
                depth_stencil={"format": DEPTH_FORMAT, "depth_write_enabled": not translucent,
                               "depth_compare": "less"},
                multisample={"count": 1},
                fragment={"module": module, "entry_point": fragment, "targets": [target]},
            )
        return pipeline

    def _clear_pipeline(self):
        pipeline = self._pipelines.get("clear")
        if pipeline is None:
            module = self._module("clear")
            pipeline = self._pipelines["clear"] = self.device.create_render_pipeline(
                layout=self._pipeline_layout,
                vertex={"module": module, "entry_point": "vs_main", "buffers": []},
                primitive={"topology": "triangle-list", "cull_mode": "none"},
                depth_stencil={"format": DEPTH_FORMAT, "depth_write_enabled": True, "depth_compare": "always"},
                multisample={"count": 1},
                fragment={"module": module, "entry_point": "fs_main", "targets": [{"format": self.color_format}]},
            )
        return pipeline

    def _static_buffer(self, data: np.ndarray):
        import wgpu

        data = np.ascontiguousarray(data, np.float32)
        buffer = self.device.create_buffer(size=max(16, data.nbytes), usage=wgpu.BufferUsage.VERTEX
                                           | wgpu.BufferUsage.COPY_DST)
        self.device.queue.write_buffer(buffer, 0, data)
        return buffer

    def _mesh_buffer(self, mesh: int, lod: int):
        key = (int(mesh), int(lod))
        entry = self._vertex_buffers.get(key)
        if entry is None:
            vertices = mesh_lod(mesh, lod).vertices
            entry = self._vertex_buffers[key] = (self._static_buffer(vertices), len(vertices), vertices.nbytes)
        return entry

    def _stream(self, key: tuple) -> _Stream:
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream(self.device, 4 * INSTANCE_FLOATS)
        return stream

    # ------------------------------------------------------------------ frame
    def _write_frame_uniforms(self, camera=None, view=None) -> None:
        values = np.zeros(FRAME_BYTES // 4, np.float32)
        if camera is not None:
            values[0:16] = (camera.projection() @ view).T.reshape(-1)  # column-major, as GLSL's u_view_proj
            for j in range(3):
                values[16 + 4 * j:19 + 4 * j] = view[:3, j]
            values[28:31], values[31] = view[0, :3], self.pixel_ratio
            values[32:35], values[35] = view[1, :3], TEXT_DEPTH_BIAS
        values[36:39], values[39] = self._clear_rgba[:3], self._flip_height
        values[40:42], values[42] = self.frag_origin, self._clear_rgba[3]
        self.device.queue.write_buffer(self._uniforms, 0, values)

    def _acquire(self) -> None:
        """Make sure the colour target is there to draw into (a window's is taken per frame; this one always is)."""

    def _pass(self, encoder, clear: bool):
        load = "clear" if clear else "load"
        render_pass = encoder.begin_render_pass(
            color_attachments=[{"view": self.color_view, "load_op": load, "store_op": "store",
                                "clear_value": self._clear_rgba}],
            depth_stencil_attachment={"view": self.depth_view, "depth_load_op": load, "depth_store_op": "store",
                                      "depth_clear_value": 1.0})
        x, y, w, h = self.view_rect
        render_pass.set_viewport(x, self._flip_height - y - h, w, h, 0.0, 1.0)  # WebGPU's origin is the top left
        render_pass.set_bind_group(0, self._bind_group)
        return render_pass

    def begin_frame(self, clear_color=(0.0, 0.0, 0.0, 1.0)) -> None:
        if self._in_frame:
            raise RuntimeError("begin_frame called twice without end_frame")
        self._in_frame = True
        self._clear_rgba = tuple(float(c) for c in tuple(clear_color) + (1.0,) * (4 - len(clear_color)))
        self.stats = RenderStats(gpu_ms=None)
        encoder = self.device.create_command_encoder()
        whole = self.view_rect == (0, 0, *self._target_px)
        render_pass = self._pass(encoder, clear=whole)
        if not whole:  # only this view's rectangle, as GL's clear with a viewport
            self._write_frame_uniforms()
            render_pass.set_pipeline(self._clear_pipeline())
            render_pass.draw(3)
        render_pass.end()
        self.device.queue.submit([encoder.finish()])

    def draw_batches(self, camera, batches: list[Batch]) -> None:
        live = draw_order(batches)
        if not live:
            return
        view = camera.view()
        self._write_frame_uniforms(camera, view)
        encoder = self.device.create_command_encoder()
        render_pass = self._pass(encoder, clear=False)
        for batch in live:
            rows = batch.instances
            if rows.ndim != 2 or rows.shape[1] != INSTANCE_FLOATS:
                raise ValueError(f"batch instances must be (n, {INSTANCE_FLOATS}) float32, got {rows.shape}")
            if batch.material == MATERIAL_TRANSLUCENT:
                rows = back_to_front(camera, view, rows)
            geometry = mesh_lod(batch.mesh, batch.lod)
            if batch.lod == LOD_IMPOSTOR or geometry.program == "impostor":
                pipeline = self._pipeline("impostor", "fs_main", batch.material, (_MESH_BUFFER, _INSTANCE_BUFFER),
                                          "back")
            else:
                detail = ("DETAIL", 1) in geometry.defines
                pipeline = self._pipeline("box", "fs_detail" if detail else "fs_flat", batch.material,
                                          (_MESH_BUFFER, _INSTANCE_BUFFER), "back")
            stream = self._stream((int(batch.mesh), int(batch.material), int(batch.lod)))
            stream.upload(rows)
            vertices, count, _ = self._mesh_buffer(batch.mesh, batch.lod)
            render_pass.set_pipeline(pipeline)
            render_pass.set_vertex_buffer(0, vertices)
            render_pass.set_vertex_buffer(1, stream.buffer)
            render_pass.draw(count, len(rows))
            count_draw(self.stats, batch, 1)
        render_pass.end()
        self.device.queue.submit([encoder.finish()])

    def draw_labels(self, camera, glyphs: np.ndarray) -> None:
        if glyphs is None or not len(glyphs):
            return
        if glyphs.ndim != 2 or glyphs.shape[1] != GLYPH_FLOATS:
            raise ValueError(f"glyph rows must be (n, {GLYPH_FLOATS}) float32, got {glyphs.shape}")
        self._write_frame_uniforms(camera, camera.view())
        self._text_stream.upload(glyphs)
        encoder = self.device.create_command_encoder()
        render_pass = self._pass(encoder, clear=False)
        # Flat labels stay readable (mirrored) from behind: no culling; blended, no depth write.
        render_pass.set_pipeline(self._pipeline("text", "fs_main", MATERIAL_TRANSLUCENT,
                                                (_CORNER_BUFFER, _GLYPH_BUFFER), "none"))
        render_pass.set_vertex_buffer(0, self._corner_buffer)
        render_pass.set_vertex_buffer(1, self._text_stream.buffer)
        render_pass.draw(6, len(glyphs))
        render_pass.end()
        self.device.queue.submit([encoder.finish()])
        self.stats.draw_calls += 1
        self.stats.triangles += 2 * len(glyphs)
        self.stats.glyphs += len(glyphs)

    def end_frame(self) -> None:
        if not self._in_frame:
            raise RuntimeError("end_frame called without begin_frame")
        self._in_frame = False
        self.stats.buffer_bytes = self.buffer_bytes()

    def finish(self) -> None:
        # Reading a buffer back waits for everything submitted before it (wgpu-py 0.32's
        # on_submitted_work_done_sync does not bind to this wgpu-native).
        self.device.queue.read_buffer(self._fence)

    # ------------------------------------------------------------------ read-back and data
    def read_pixels(self) -> np.ndarray:
        return self.read_region(*self._target_px)

    def read_region(self, w: int, h: int) -> np.ndarray:
        """The colour target's top-left w x h pixels, uint8 (h, w, 4) RGBA, top row first."""
        data = self.device.queue.read_texture({"texture": self.color, "origin": (0, 0, 0)},
                                              {"offset": 0, "bytes_per_row": 4 * w}, (w, h, 1))
        pixels = np.frombuffer(data, np.uint8).reshape(h, w, 4)  # WebGPU's rows start at the top
        return pixels[:, :, [2, 1, 0, 3]] if self.color_format.startswith("bgra") else pixels.copy()

    def alloc_data(self, rows: int, cols: int) -> tuple[int, int]:
        return self.data_packer.alloc(cols, rows)

    def write_data(self, x: int, y: int, values: np.ndarray) -> None:
        values = checked_block(x, y, values, self.data_packer.width)
        rows, cols = values.shape
        if rows and cols:
            self.device.queue.write_texture({"texture": self.data_atlas, "origin": (int(x), int(y), 0)}, values,
                                            {"bytes_per_row": 4 * cols}, (cols, rows, 1))

    def read_data(self) -> np.ndarray:
        size = self.data_packer.width
        data = self.device.queue.read_texture({"texture": self.data_atlas, "origin": (0, 0, 0)},
                                              {"offset": 0, "bytes_per_row": 4 * size}, (size, size, 1))
        return np.frombuffer(data, np.float32).reshape(size, size).copy()

    def reset_data(self) -> None:
        self.data_packer.reset()
        size = self.data_packer.width
        self.device.queue.write_texture({"texture": self.data_atlas}, np.zeros((size, size), np.float32),
                                        {"bytes_per_row": 4 * size}, (size, size, 1))
        self.device.queue.write_texture({"texture": self.highlight_atlas}, np.zeros((size, size), np.uint8),
                                        {"bytes_per_row": size}, (size, size, 1))

    def write_highlight(self, x: int, y: int, mask: np.ndarray) -> None:
        mask = highlight_bytes(mask)
        rows, cols = mask.shape
        if rows and cols:
            self.device.queue.write_texture({"texture": self.highlight_atlas, "origin": (int(x), int(y), 0)},
                                            np.ascontiguousarray(mask), {"bytes_per_row": cols}, (cols, rows, 1))

    def buffer_bytes(self) -> int:
        size = self.data_packer.width
        total = size * size * 5 + 8 * self._target_px[0] * self._target_px[1]
        total += sum(nbytes for _, _, nbytes in self._vertex_buffers.values())
        total += sum(s.nbytes for s in self._streams.values()) + self._text_stream.nbytes
        image = self.glyph_atlas.image
        return int(total + image.shape[0] * image.shape[1] + colormaps.lut_rgba().nbytes)

    # ------------------------------------------------------------------ UI
    def ui_overlay(self, display_size, pixel_ratio: float = 1.0):
        return WgpuUiOverlay(self, pixel_ratio)

    def release(self) -> None:
        for stream in self._streams.values():
            stream.release()
        self._text_stream.release()
        for buffer, _, _ in self._vertex_buffers.values():
            buffer.destroy()
        for texture in (self.color, self.depth, self.data_atlas, self.highlight_atlas, self.colormap_texture,
                        self.glyph_texture):
            if texture is not None:  # a window's colour target is its surface's, not the renderer's
                texture.destroy()
        self._corner_buffer.destroy()
        self._uniforms.destroy()
        self._fence.destroy()
        self._streams.clear()
        self._vertex_buffers.clear()
        self._pipelines.clear()


class WgpuUiOverlay:
    """Dear ImGui drawn into a WgpuRenderer's target after its frame: moderngl-window's ImGui renderer, in WGSL
    (shaders/imgui.wgsl). The font atlas is sampled nearest at pixel ratio 1, as engine/render/gl_ui.py does,
    and panel pictures always (a pixel is a pixel)."""

    FONT_ID = 1

    def __init__(self, renderer: WgpuRenderer, pixel_ratio: float = 1.0):
        import wgpu
        from imgui_bundle import imgui

        self.target = renderer
        device = self.device = renderer.device
        self.io = imgui.get_io()
        self._uniforms = device.create_buffer(size=64, usage=wgpu.BufferUsage.UNIFORM | wgpu.BufferUsage.COPY_DST)
        stage = wgpu.ShaderStage.VERTEX | wgpu.ShaderStage.FRAGMENT
        self._frame_layout = device.create_bind_group_layout(entries=[
            {"binding": 0, "visibility": stage, "buffer": {"type": "uniform"}}])
        self._texture_layout = device.create_bind_group_layout(entries=[
            {"binding": 0, "visibility": stage, "texture": {"sample_type": "float", "view_dimension": "2d"}},
            {"binding": 1, "visibility": stage, "sampler": {"type": "filtering"}}])
        self._frame_group = device.create_bind_group(layout=self._frame_layout, entries=[
            {"binding": 0, "resource": {"buffer": self._uniforms, "offset": 0, "size": 64}}])
        self._nearest = device.create_sampler(mag_filter="nearest", min_filter="nearest")
        self._linear = device.create_sampler(mag_filter="linear", min_filter="linear")
        root = importlib.resources.files("llmviz.shaders")
        module = device.create_shader_module(code=root.joinpath("imgui.wgsl").read_text())
        self._pipeline = device.create_render_pipeline(
            layout=device.create_pipeline_layout(bind_group_layouts=[self._frame_layout, self._texture_layout]),
            vertex={"module": module, "entry_point": "vs_main", "buffers": [{
                "array_stride": imgui.VERTEX_SIZE, "step_mode": "vertex", "attributes": [
                    {"format": "float32x2", "offset": 0, "shader_location": 0},
                    {"format": "float32x2", "offset": 8, "shader_location": 1},
                    {"format": "unorm8x4", "offset": 16, "shader_location": 2}]}]},
            primitive={"topology": "triangle-list", "cull_mode": "none"},
            multisample={"count": 1},
            fragment={"module": module, "entry_point": "fs_main", "targets": [{
                "format": renderer.color_format, "blend": {
                    "color": {"src_factor": "src-alpha", "dst_factor": "one-minus-src-alpha", "operation": "add"},
                    "alpha": {"src_factor": "src-alpha", "dst_factor": "one-minus-src-alpha", "operation": "add"}}}]},
        )
        self._groups: dict[int, object] = {}
        self._next_id = self.FONT_ID + 1
        self._buffers = [None, None, 0, 0]  # vertex buffer, index buffer, their capacities in bytes
        font = np.ascontiguousarray(self.io.fonts.get_tex_data_as_rgba32(), np.uint8)
        self._font = self._texture(font, self.FONT_ID, self._nearest if pixel_ratio == 1.0 else self._linear)
        self.io.fonts.tex_id = self.FONT_ID
        self.io.fonts.clear_tex_data()

    def _texture(self, rgba: np.ndarray, texture_id: int, sampler):
        import wgpu

        h, w = rgba.shape[:2]
        texture = self.device.create_texture(size=(w, h, 1), format="rgba8unorm",
                                             usage=wgpu.TextureUsage.TEXTURE_BINDING | wgpu.TextureUsage.COPY_DST)
        self.device.queue.write_texture({"texture": texture}, rgba, {"bytes_per_row": 4 * w}, (w, h, 1))
        self._groups[texture_id] = self.device.create_bind_group(layout=self._texture_layout, entries=[
            {"binding": 0, "resource": texture.create_view()}, {"binding": 1, "resource": sampler}])
        return texture

    def resize(self, width, height) -> None:
        """The overlay draws at the size ImGui's draw data says; nothing to reallocate."""

    def _upload(self, slot: int, data: np.ndarray, usage) -> object:
        import wgpu

        if data.nbytes > self._buffers[2 + slot]:
            if self._buffers[slot] is not None:
                self._buffers[slot].destroy()
            capacity = _pow2_at_least(max(data.nbytes, 65536))
            self._buffers[slot] = self.device.create_buffer(size=capacity, usage=usage | wgpu.BufferUsage.COPY_DST)
            self._buffers[2 + slot] = capacity
        self.device.queue.write_buffer(self._buffers[slot], 0, data)
        return self._buffers[slot]

    def render(self, draw_data) -> None:
        """The frame's UI over the target (a tiled one's texture holds its top-left tile; bands() draws the rest)."""
        self._render(draw_data, (0, 0, *self.target._target_px))

    def render_tile(self, draw_data, rect: tuple[int, int, int, int]) -> None:
        """The frame's UI (laid out for the whole picture) into one tile of a tiled target: ``rect`` is the tile
        (x, y from the bottom left, w, h) in target pixels of the picture; the tile sits at the texture's top left."""
        x, y, w, h = rect
        self._render(draw_data, (x, self.target.target_size[1] - y - h, w, h))

    def _render(self, draw_data, window: tuple[int, int, int, int]) -> None:
        """Draw ImGui's draw data for the part ``window`` (left, top, w, h: target pixels, y down) of the picture
        into the colour target's top-left w x h pixels."""
        import ctypes

        import wgpu
        from imgui_bundle import imgui

        io = self.io
        dw, dh = io.display_size.x, io.display_size.y
        sx, sy = io.display_framebuffer_scale.x, io.display_framebuffer_scale.y
        left, top, w, h = window
        if dw <= 0 or dh <= 0 or not draw_data.cmd_lists_count:
            return
        # Column-major: UI pixels (y down) times the framebuffer scale, less the window's corner, to clip space.
        projection = np.array([[2.0 * sx / w, 0, 0, 0], [0, -2.0 * sy / h, 0, 0], [0, 0, 0, 0],
                               [-1.0 - 2.0 * left / w, 1.0 + 2.0 * top / h, 0, 1.0]], np.float32)
        self.device.queue.write_buffer(self._uniforms, 0, projection)
        vertices, indices, draws = [], [], []
        base_vertex = first_index = 0
        for commands in draw_data.cmd_lists:
            nv, ni = commands.vtx_buffer.size(), commands.idx_buffer.size()
            vertices.append(ctypes.string_at(commands.vtx_buffer.data_address(), nv * imgui.VERTEX_SIZE))
            indices.append(ctypes.string_at(commands.idx_buffer.data_address(), ni * imgui.INDEX_SIZE))
            offset = 0
            for command in commands.cmd_buffer:
                x0, y0, x1, y1 = command.clip_rect
                # Clip rectangles are UI pixels; the target's are those times the framebuffer scale, then the window's.
                ax0, ay0 = max(int(x0 * sx) - left, 0), max(int(y0 * sy) - top, 0)
                ax1, ay1 = min(int(x1 * sx) - left, w), min(int(y1 * sy) - top, h)
                if ax1 > ax0 and ay1 > ay0:
                    draws.append((int(command.texture_id), (ax0, ay0, ax1 - ax0, ay1 - ay0), command.elem_count,
                                  first_index + offset, base_vertex))
                offset += command.elem_count
            base_vertex += nv
            first_index += ni
        if not draws:
            return
        self.target._acquire()
        vertex_buffer = self._upload(0, np.frombuffer(b"".join(vertices), np.uint8), wgpu.BufferUsage.VERTEX)
        index_buffer = self._upload(1, np.frombuffer(b"".join(indices), np.uint8), wgpu.BufferUsage.INDEX)
        encoder = self.device.create_command_encoder()
        render_pass = encoder.begin_render_pass(color_attachments=[
            {"view": self.target.color_view, "load_op": "load", "store_op": "store"}])
        render_pass.set_viewport(0, 0, w, h, 0.0, 1.0)
        render_pass.set_pipeline(self._pipeline)
        render_pass.set_bind_group(0, self._frame_group)
        render_pass.set_vertex_buffer(0, vertex_buffer)
        render_pass.set_index_buffer(index_buffer, "uint32" if imgui.INDEX_SIZE == 4 else "uint16")
        for texture_id, rect, count, first, base in draws:
            group = self._groups.get(texture_id)
            if group is None:
                raise ValueError(f"ImGui texture {texture_id} was never uploaded through ui_image")
            render_pass.set_bind_group(1, group)
            render_pass.set_scissor_rect(*rect)
            render_pass.draw_indexed(count, 1, first, base, 0)
        render_pass.end()
        self.device.queue.submit([encoder.finish()])

    def ui_image(self, rgba: np.ndarray, previous: UiImage | None = None) -> UiImage:
        """Upload an (h, w, 4) uint8 picture for ``imgui.image``; reuses ``previous`` when the size is the same."""
        rgba = np.ascontiguousarray(rgba, np.uint8)
        h, w = rgba.shape[:2]
        if previous is not None and previous.size == (w, h):
            self.device.queue.write_texture({"texture": previous.texture}, rgba, {"bytes_per_row": 4 * w}, (w, h, 1))
            return previous
        texture_id, self._next_id = self._next_id, self._next_id + 1
        return UiImage(id=texture_id, size=(w, h), texture=self._texture(rgba, texture_id, self._nearest))
