"""Derives world-space bounds (box centre, half extents, sphere radius) from transform and local bounds.

Runs in the transform phase but only recomputes when ``world.transform_version`` moved, so a
static scene pays nothing per frame. Rotated boxes get the axis-aligned box that encloses
them (conservative for culling); picking uses the exact oriented box instead.
"""
from __future__ import annotations

import numpy as np

from ..ecs.world import World
from ..math3d import quat_to_matrix


def local_box_world(world: World, slots: np.ndarray):
    """World centre and half extents of each entity's *oriented* box, plus rotation matrices (or None)."""
    tr, bd = world["transform"], world["bounds"]
    scale = tr["scale"][slots]
    lo, hi = bd["local_min"][slots], bd["local_max"][slots]
    local_center = (lo + hi) * 0.5 * scale
    half = np.abs((hi - lo) * 0.5 * scale)
    center = tr["position"][slots].astype(np.float32).copy()
    rotated = tr["rotated"][slots]
    rot = None
    if rotated.any():
        rot = np.broadcast_to(np.eye(3, dtype=np.float32), (len(slots), 3, 3)).copy()
        rot[rotated] = quat_to_matrix(tr["rotation"][slots[rotated]]).astype(np.float32)
        center += np.einsum("nij,nj->ni", rot, local_center)
    else:
        center += local_center
    return center, half, rot


class TransformSystem:
    """Keeps the world_bounds component current for every entity with transform and bounds."""

    def __init__(self, world: World):
        self.world = world
        self._seen = (-1, -1)

    def __call__(self, frame=None) -> None:
        self.update()

    def update(self) -> None:
        world = self.world
        key = (world.transform_version, world.structure_version)
        if key == self._seen:
            return
        self._seen = key
        slots = world.query("transform", "bounds")
        if len(slots) == 0:
            return
        center, half, rot = local_box_world(world, slots)
        if rot is not None:
            # Axis-aligned box enclosing the rotated one: |R| applied to the half extents.
            half = np.einsum("nij,nj->ni", np.abs(rot), half)
        wb = world["world_bounds"]
        wb.has[slots] = True
        for axis, (c, h) in enumerate((("cx", "hx"), ("cy", "hy"), ("cz", "hz"))):
            wb[c][slots] = center[:, axis]
            wb[h][slots] = half[:, axis]
        wb["radius"][slots] = np.sqrt((half.astype(np.float64) ** 2).sum(axis=1))


def world_box(world: World, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) centre and half extents of the world bounds of ``slots`` (for set-up code, not per frame)."""
    wb = world["world_bounds"]
    center = np.stack([wb["cx"][slots], wb["cy"][slots], wb["cz"][slots]], axis=1)
    half = np.stack([wb["hx"][slots], wb["hy"][slots], wb["hz"][slots]], axis=1)
    return center, half


def group_bounds(world: World, group_slots: np.ndarray) -> None:
    """Set each group's transform/bounds to the box covering its children's world boxes.

    A scene builder calls this after spawning children; it is not per-frame work.
    """
    TransformSystem(world).update()
    parent = world["parent"]["slot"][: world.size]
    children = np.flatnonzero((parent >= 0) & world["world_bounds"].has[: world.size])
    if len(children) == 0:
        return
    center, half = world_box(world, children)
    lo, hi = center - half, center + half
    owner = parent[children]
    group_slots = np.asarray(group_slots, np.int64)
    gmin = np.full((world.size, 3), np.inf, np.float32)
    gmax = np.full((world.size, 3), -np.inf, np.float32)
    np.minimum.at(gmin, owner, lo)
    np.maximum.at(gmax, owner, hi)
    ok = np.isfinite(gmin[group_slots]).all(axis=1)
    g = group_slots[ok]
    ids = world.ids(g)
    center = (gmin[g] + gmax[g]) * 0.5
    size = np.maximum(gmax[g] - gmin[g], 1e-6)
    world.add("transform", ids, position=center, scale=size, rotated=False)
    world.add("bounds", ids, local_min=-0.5, local_max=0.5)
