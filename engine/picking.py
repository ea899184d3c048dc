"""Picking: a ray from the cursor against the drawn boxes, all at once, and the data cell under it.

Each box is tested in its own frame (the ray rotated by the inverse of the box's rotation),
so rotated boxes are hit exactly rather than through their enclosing axis-aligned box.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ecs.world import World
from .math3d import quat_conj, quat_rotate
from .systems.transform import local_box_world


@dataclass(frozen=True)
class Pick:
    entity: int  # entity id
    slot: int
    distance: float
    point: tuple[float, float, float]  # world-space hit point
    cell: tuple[int, int] | None  # (row, column) on a data-texture block's front or back face


def ray_boxes(origin, direction, center, half, rotation=None):
    """Entry distance of the ray into each box (np.inf where it misses). Slab test, vectorised."""
    o = np.asarray(origin, np.float64)[None, :] - center
    d = np.broadcast_to(np.asarray(direction, np.float64), o.shape)
    if rotation is not None:
        inv = quat_conj(rotation)
        o = quat_rotate(inv, o)
        d = quat_rotate(inv, d)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_d = 1.0 / d
        t1 = (-half - o) * inv_d
        t2 = (half - o) * inv_d
    # A ray parallel to a slab and outside it gives nan/inf pairs: treat as a miss on that axis.
    parallel_outside = (d == 0) & (np.abs(o) > half)
    t_near = np.nanmax(np.where(parallel_outside, np.inf, np.minimum(t1, t2)), axis=1)
    t_far = np.nanmin(np.where(parallel_outside, -np.inf, np.maximum(t1, t2)), axis=1)
    hit = (t_far >= np.maximum(t_near, 0.0))
    return np.where(hit, np.maximum(t_near, 0.0), np.inf), o, d


def pick(world: World, candidates: np.ndarray, origin, direction) -> Pick | None:
    """Nearest pickable box among ``candidates`` (slots, usually the drawn ones) hit by the ray."""
    candidates = np.asarray(candidates, np.int64)
    if len(candidates):
        pk = world["pickable"]
        candidates = candidates[pk.has[candidates] & pk["enabled"][candidates]]
    if len(candidates) == 0:
        return None
    center, half, _ = local_box_world(world, candidates)
    rotation = world["transform"]["rotation"][candidates].astype(np.float64)
    t, o_local, d_local = ray_boxes(origin, direction, center.astype(np.float64), half.astype(np.float64), rotation)
    best = int(np.argmin(t))
    if not np.isfinite(t[best]):
        return None
    slot = int(candidates[best])
    point = np.asarray(origin, np.float64) + t[best] * np.asarray(direction, np.float64)
    cell = None
    dt = world["datatex"]
    if dt.has[slot]:
        local = o_local[best] + t[best] * d_local[best]
        cell = data_cell(local, half[best], dt["region"][slot])
    return Pick(int(world.ids(slot)), slot, float(t[best]), tuple(point), cell)


def data_cell(local_point, half, region, face_tolerance=1e-3):
    """(row, column) of a local-space hit point on the ±z face of a data block, else None.

    Columns run along local +x, rows down local −y, matching the box shader's face mapping.
    """
    x, y, z = local_point
    hx, hy, hz = half
    if abs(abs(z) - hz) > face_tolerance * max(hz, hx, hy, 1e-9):
        return None
    cols, rows = int(region[2]), int(region[3])
    if cols <= 0 or rows <= 0:
        return None
    u = (x + hx) / (2 * hx) if hx > 0 else 0.0
    v = (hy - y) / (2 * hy) if hy > 0 else 0.0
    col = min(cols - 1, max(0, int(np.floor(u * cols))))
    row = min(rows - 1, max(0, int(np.floor(v * rows))))
    return row, col
