"""The narrow renderer interface every backend implements, and the data contracts it consumes.

The instancing system hands the renderer ``Batch`` objects whose instance rows follow
``INSTANCE_LAYOUT``; the label system hands it glyph rows following ``GLYPH_LAYOUT``. Both
sides import these from here so the layout lives in one place. moderngl implements
``Renderer`` (engine/render/gl.py) and wgpu implements it too (engine/render/wgpu_backend.py);
callers make one through engine/render/factory.py by name and never touch a backend's own objects:
targets and viewports, finish, data and highlight atlases, PNG read-back and the UI overlay all
go through the methods below.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

# Per-instance floats of a box-like mesh: name -> (offset, width). Rotation is a unit
# quaternion (x, y, z, w); colour alpha already includes opacity; region is (x, y, cols, rows)
# texels in the data atlas, cols == 0 meaning "no data, flat colour"; flags bit 1 highlighted,
# bit 2 dimmed (the renderable flag values of engine/ecs/components.py).
INSTANCE_LAYOUT: dict[str, tuple[int, int]] = {
    "center": (0, 3),
    "size": (3, 3),
    "rotation": (6, 4),
    "color": (10, 4),
    "region": (14, 4),
    "value_range": (18, 2),
    "colormap": (20, 1),
    "flags": (21, 1),
}
INSTANCE_FLOATS = 22
INSTANCE_SLICES = {name: slice(o, o + w) for name, (o, w) in INSTANCE_LAYOUT.items()}

# Per-glyph floats of a text label: the label's world anchor, the glyph quad's lower-left
# corner and size in em units relative to the anchor, its uv rectangle (u0, v0, u1, v1) in
# the glyph atlas, the world size of one em, rgba, and 1.0 when the label faces the camera.
GLYPH_LAYOUT: dict[str, tuple[int, int]] = {
    "anchor": (0, 3),
    "offset": (3, 2),
    "size": (5, 2),
    "uv": (7, 4),
    "height": (11, 1),
    "color": (12, 4),
    "billboard": (16, 1),
}
GLYPH_FLOATS = 17
GLYPH_SLICES = {name: slice(o, o + w) for name, (o, w) in GLYPH_LAYOUT.items()}

# Materials: how a batch is blended and ordered.
MATERIAL_OPAQUE = 0
MATERIAL_TRANSLUCENT = 1  # alpha blended, no depth write, drawn after opaque, back to front

# Instance flag bits (same values as FLAG_HIGHLIGHTED / FLAG_DIMMED in the ECS schemas).
INSTANCE_HIGHLIGHTED = 1
INSTANCE_DIMMED = 2

MAX_LODS = 4


@dataclass
class Batch:
    """All visible instances that share a mesh family, a material and a LOD level."""

    mesh: int
    material: int
    lod: int
    instances: np.ndarray  # float32 (n, INSTANCE_FLOATS)

    @property
    def count(self) -> int:
        return int(len(self.instances))


def empty_instances(count: int) -> np.ndarray:
    """Instance rows with neutral defaults: unit size, identity rotation, opaque white, no data."""
    rows = np.zeros((int(count), INSTANCE_FLOATS), np.float32)
    rows[:, INSTANCE_SLICES["size"]] = 1.0
    rows[:, 9] = 1.0  # quaternion w
    rows[:, INSTANCE_SLICES["color"]] = 1.0
    rows[:, INSTANCE_SLICES["value_range"]] = (-1.0, 1.0)
    return rows


@dataclass
class RenderStats:
    """What the last frame cost: filled by the renderer between begin_frame and end_frame."""

    draw_calls: int = 0
    triangles: int = 0
    instances: list[int] = field(default_factory=lambda: [0] * MAX_LODS)  # per LOD level
    glyphs: int = 0
    # GPU time of the most recent frame whose timer query was read (a few frames behind),
    # or None where the backend has no timer queries.
    gpu_ms: float | None = None
    buffer_bytes: int = 0  # every GPU buffer and texture the renderer holds

    def as_dict(self) -> dict:
        return {"draw_calls": self.draw_calls, "triangles": self.triangles,
                "instances": list(self.instances), "glyphs": self.glyphs,
                "gpu_ms": self.gpu_ms, "buffer_bytes": self.buffer_bytes}


def draw_order(batches: list[Batch]) -> list[Batch]:
    """Non-empty batches, opaque first, translucent after (stable otherwise): every backend's order."""
    live = [b for b in batches if len(b.instances)]
    return sorted(live, key=lambda b: b.material == MATERIAL_TRANSLUCENT)


def back_to_front(camera, view: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Translucent instances sorted far to near by view depth (blending needs the order)."""
    backward = view[2, :3].astype(np.float32)  # camera's +z in world space
    depth = (rows[:, 0:3] - np.asarray(camera.position, np.float32)) @ backward  # more negative = farther
    return rows[np.argsort(depth, kind="stable")]


def count_draw(stats: "RenderStats", batch: Batch, draws: int) -> None:
    """Add a drawn batch to the frame's stats (draw calls, triangles, instances per LOD)."""
    from .meshes import MESH_LOD_TRIANGLES

    n = len(batch.instances)
    stats.draw_calls += draws
    stats.triangles += MESH_LOD_TRIANGLES[batch.mesh][batch.lod] * n
    if batch.lod < MAX_LODS:
        stats.instances[batch.lod] += n


def checked_block(x: int, y: int, values: np.ndarray, atlas_side: int) -> np.ndarray:
    """``values`` as a contiguous float32 (rows, cols) block that fits the atlas at texel (x, y), or ValueError."""
    values = np.ascontiguousarray(values, np.float32)
    if values.ndim != 2:
        raise ValueError(f"data blocks are 2D (rows, cols), got shape {values.shape}")
    rows, cols = values.shape
    if x < 0 or y < 0 or x + cols > atlas_side or y + rows > atlas_side:
        raise ValueError(f"a {rows}x{cols} block at ({x}, {y}) falls outside the {atlas_side}x{atlas_side} data atlas")
    return values


def highlight_bytes(mask) -> np.ndarray:
    """A highlight mask as contiguous uint8 (rows, cols): 255 where marked, 0 elsewhere; ValueError unless 2D."""
    mask = np.ascontiguousarray(np.asarray(mask) != 0, np.uint8) * np.uint8(255)
    if mask.ndim != 2:
        raise ValueError(f"highlight masks are 2D (rows, cols), got shape {mask.shape}")
    return np.ascontiguousarray(mask)


def to_layout_size(size, pixel_ratio: float) -> tuple[int, int]:
    """A size in target pixels as layout pixels (what a picture drawn at ``pixel_ratio`` lays out for)."""
    if pixel_ratio == 1.0:
        return int(size[0]), int(size[1])
    return max(1, int(round(size[0] / pixel_ratio))), max(1, int(round(size[1] / pixel_ratio)))


class TargetViewports:
    """Sizes and viewports over a target of ``_size`` target pixels, shared by the backends: ``size`` and
    ``view_size`` in layout pixels, ``viewport`` / ``view_rect`` in target pixels (x, y from the bottom left)."""

    _size: tuple[int, int]
    pixel_ratio: float = 1.0
    viewport: tuple[int, int, int, int] | None = None
    _layout_viewport: tuple[int, int, int, int] | None = None

    @property
    def size(self) -> tuple[int, int]:
        """The target in layout pixels (its size over ``pixel_ratio``)."""
        return to_layout_size(self._size, self.pixel_ratio)

    @property
    def target_size(self) -> tuple[int, int]:
        """The target in target pixels."""
        return self._size

    def set_viewport(self, rect: tuple[int, int, int, int] | None) -> None:
        """Draw the next frames into this rectangle of the target (x, y from the bottom left, layout pixels),
        or all of it."""
        self._layout_viewport = None if rect is None else tuple(int(v) for v in rect)
        r = self.pixel_ratio
        self.viewport = None if rect is None else tuple(int(round(v * r)) for v in rect)

    @property
    def view_rect(self) -> tuple[int, int, int, int]:
        """The rectangle the scene is drawn into, target pixels."""
        return self.viewport or (0, 0, *self._size)

    @property
    def view_size(self) -> tuple[int, int]:
        """The size of the rectangle the scene is drawn into, layout pixels: a camera's viewport."""
        w, h = self.size if self._layout_viewport is None else self._layout_viewport[2:]
        return max(1, w), max(1, h)


@dataclass
class UiImage:
    """A picture uploaded for a UI panel: ``id`` is what ``imgui.image`` takes; ``texture`` the backend's own."""

    id: int
    size: tuple[int, int]  # (width, height)
    texture: object = None


class Renderer(abc.ABC):
    """What the engine needs from a graphics backend, and nothing more.

    A frame is ``begin_frame`` → ``draw_batches`` (opaque then translucent) → ``draw_labels``
    → ``end_frame``; ``read_pixels`` may follow, ``finish`` waits for the GPU. Data textures live in
    one float atlas that callers carve with ``alloc_data`` and fill with ``write_data``; a highlight
    mask beside it, texel for texel, marks cells drawn highlighted. Sizes are layout pixels
    (``pixel_ratio`` target pixels each); ``set_viewport`` draws the next frames into a rectangle.
    """

    stats: RenderStats
    backend_name: str = "?"     # "gl", "wgpu": what --backend names
    gpu_timing_note: str = ""   # why gpu_ms is None, where it is
    pixel_ratio: float = 1.0
    render_scale: float = 1.0   # below 1 the scene is drawn smaller, then scaled up (adaptive quality)
    frag_origin: tuple = (0.0, 0.0)

    @property
    @abc.abstractmethod
    def size(self) -> tuple[int, int]:
        """Target size in layout pixels (width, height)."""

    @property
    @abc.abstractmethod
    def device_name(self) -> str:
        """The adapter or GL renderer that draws (for reports: "llvmpipe (LLVM 15.0.6, 256 bits)")."""

    @property
    @abc.abstractmethod
    def view_size(self) -> tuple[int, int]:
        """The rectangle the scene is drawn into, layout pixels: a camera's viewport."""

    @abc.abstractmethod
    def set_viewport(self, rect: tuple[int, int, int, int] | None) -> None:
        """Draw the next frames into this rectangle of the target (x, y from the bottom left, layout pixels),
        or (None) all of it."""

    @abc.abstractmethod
    def resize(self, size: tuple[int, int]) -> None:
        """Follow a new target size (a window resize)."""

    @abc.abstractmethod
    def begin_frame(self, clear_color=(0.0, 0.0, 0.0, 1.0)) -> None:
        """Bind the target, clear colour and depth, reset the stats, start GPU timing."""

    @abc.abstractmethod
    def draw_batches(self, camera, batches: list[Batch]) -> None:
        """One instanced draw per non-empty batch; opaque batches first, translucent after."""

    @abc.abstractmethod
    def draw_labels(self, camera, glyphs: np.ndarray) -> None:
        """One instanced draw of glyph rows (float32 (n, GLYPH_FLOATS))."""

    @abc.abstractmethod
    def end_frame(self) -> None:
        """Finish GPU timing and the stats of this frame."""

    @abc.abstractmethod
    def finish(self) -> None:
        """Wait until the GPU has done everything submitted (timing, read-back, presentation)."""

    @abc.abstractmethod
    def read_pixels(self) -> np.ndarray:
        """The target as uint8 (height, width, 4), top row first."""

    def save_png(self, path) -> None:
        """The target as a PNG, written atomically (a failed write leaves any old file as it was)."""
        from PIL import Image

        from llmviz.common.atomic import atomic_path

        with atomic_path(path) as tmp:
            Image.fromarray(self.read_pixels(), "RGBA").save(tmp, format="PNG")

    @abc.abstractmethod
    def alloc_data(self, rows: int, cols: int) -> tuple[int, int]:
        """Reserve a rows x cols region of the data atlas; returns its texel origin (x, y)."""

    @abc.abstractmethod
    def write_data(self, x: int, y: int, values: np.ndarray) -> None:
        """Upload a float32 (rows, cols) array at texel (x, y): values[r, c] -> texel (x + c, y + r)."""

    @abc.abstractmethod
    def read_data(self) -> np.ndarray:
        """The whole data atlas, (size, size) float32, [y, x] the texel of region (x, y)."""

    @abc.abstractmethod
    def reset_data(self) -> None:
        """Empty the data atlas and the highlight mask and forget every region (another scene takes over)."""

    @abc.abstractmethod
    def write_highlight(self, x: int, y: int, mask: np.ndarray) -> None:
        """Mark cells of a data region as highlighted (mask != 0), texel (x + c, y + r) for mask[r, c]."""

    @abc.abstractmethod
    def ui_overlay(self, display_size: tuple[int, int], pixel_ratio: float = 1.0):
        """A Dear ImGui renderer drawing into this renderer's target after ``end_frame``: ``render(draw_data)``,
        ``resize(w, h)``, ``ui_image(rgba, previous)`` (a picture a panel shows: a handle with ``id``)."""

    def warm_up(self, camera) -> None:
        """Compile what the first frames need ahead of them (a backend that has nothing to do leaves this)."""

    @abc.abstractmethod
    def release(self) -> None:
        """Free every GPU object the renderer created."""
