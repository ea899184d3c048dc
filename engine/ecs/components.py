"""The engine's component schemas: which columns each component has, their dtypes and defaults.

Data, not code: a schema is a table of fields. Vector fields (position, colour) are one
contiguous (N, k) array per field, which keeps per-frame gathers to a single fancy index.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FieldSpec:
    dtype: type
    shape: tuple = ()
    default: object = 0


@dataclass(frozen=True)
class ComponentSchema:
    fields: dict
    # True when writing this component changes where an entity is (world bounds must follow).
    moves: bool = False


def _f(shape=(), default=0.0, dtype=np.float32) -> FieldSpec:
    return FieldSpec(dtype, shape, default)


# Render flags (renderable.flags bit field).
FLAG_HIGHLIGHTED = 1
FLAG_DIMMED = 2
FLAG_HIDDEN = 4
FLAG_NO_CULL = 8

# Special LOD levels.
LOD_NONE = -1  # too small on screen, or not visible: not drawn

MAX_LOD_LEVELS = 4

COMPONENTS: dict[str, ComponentSchema] = {
    # World-space placement. Rotation is a unit quaternion (x, y, z, w); `rotated` marks the
    # entities whose quaternion is not identity so axis-aligned fast paths can skip the rest.
    "transform": ComponentSchema({
        "position": _f((3,)),
        "scale": _f((3,), 1.0),
        "rotation": FieldSpec(np.float32, (4,), np.array([0, 0, 0, 1], np.float32)),
        "rotated": FieldSpec(bool, (), False),
    }, moves=True),
    # Local bounding box in model units, before scale and rotation (a unit cube by default).
    "bounds": ComponentSchema({
        "local_min": _f((3,), -0.5),
        "local_max": _f((3,), 0.5),
    }, moves=True),
    # Derived by the transform system: world-space box centre, half extents and sphere radius.
    # One column per coordinate: culling reads these every frame, and strided (N, 3) rows
    # measured several times slower here than contiguous columns.
    "world_bounds": ComponentSchema({
        "cx": _f(), "cy": _f(), "cz": _f(),
        "hx": _f(), "hy": _f(), "hz": _f(),
        "radius": _f(),
    }),
    # What to draw: a mesh family (with per-LOD variants), a material, colour and flags.
    "renderable": ComponentSchema({
        "mesh": FieldSpec(np.int16, (), 0),
        "material": FieldSpec(np.int16, (), 0),
        "color": _f((4,), 1.0),
        "opacity": _f((), 1.0),
        "flags": FieldSpec(np.uint8, (), 0),
    }),
    # Projected-size LOD: thresholds in screen pixels, descending; level i is used while the
    # entity is at least thresholds[i] pixels tall; below the last used threshold it is not drawn.
    # Unused threshold slots are 0. `level` is the current choice, kept between frames for hysteresis.
    "lod": ComponentSchema({
        "thresholds": FieldSpec(np.float32, (MAX_LOD_LEVELS,), 0.0),
        "level": FieldSpec(np.int8, (), LOD_NONE),
    }),
    # Output of the visibility system this frame.
    "visibility": ComponentSchema({
        "visible": FieldSpec(bool, (), False),
    }),
    # Hierarchy for grouping and hierarchical LOD (not transform inheritance: positions are world space).
    "parent": ComponentSchema({
        "slot": FieldSpec(np.int64, (), -1),
    }),
    # A group covers its children. When it is at least `expand_px` tall on screen its children
    # are considered; below that its own renderable (the proxy) is drawn and the children skipped.
    "group": ComponentSchema({
        "expand_px": _f((), 120.0),
        "expanded": FieldSpec(bool, (), False),
        # Draw the group's own box while expanded too (a translucent frame), or only as a proxy.
        "draw_when_expanded": FieldSpec(bool, (), False),
    }),
    # A text label: index into world.labels, world-space height of a line, offset from the
    # entity's box centre, and whether it faces the camera (billboard) or lies in the XY plane.
    # Each frame labels are laid out on screen (engine/systems/label_layout.py): one whose natural
    # size is under `min_px` is not shown; the rest are drawn at least LEGIBLE_PX tall, and where
    # two would overlap the higher `priority` (then the larger on screen) wins.
    "label": ComponentSchema({
        "text_index": FieldSpec(np.int32, (), -1),
        "height": _f((), 1.0),
        "offset": _f((3,)),
        "color": _f((4,), 1.0),
        "billboard": FieldSpec(bool, (), False),
        "min_px": _f((), 4.0),
        "priority": _f((), 0.0),
        # 0: drawn at its anchor or not at all; 1: a caption, which may move around its entity's box.
        "placement": FieldSpec(np.int8, (), 0),
    }),
    "pickable": ComponentSchema({
        "enabled": FieldSpec(bool, (), True),
    }),
    # A box whose front (+z) and back faces show a 2D array of values as cells, read from a
    # region of the float data-texture atlas: `region` = (x, y, cols, rows) in texels.
    "datatex": ComponentSchema({
        "region": FieldSpec(np.int32, (4,), 0),
        "value_range": _f((2,), np.array([-1.0, 1.0], np.float32)),
        "colormap": FieldSpec(np.int8, (), 0),
    }),
}
