"""The per-entity way, kept only as a benchmark baseline: cull + LOD over one Python object per entity.

This is how an esper-style ECS would do our visibility and LOD systems: the same algorithm
(sphere test, box test, hierarchical LOD, LOD with hysteresis), but a Python loop over
per-entity component objects instead of numpy columns. The benchmark runs it on the same
camera path and compares timings; nothing else uses it.
"""
from __future__ import annotations

import math

import numpy as np

from .ecs.world import World
from .systems.visibility import DEFAULT_HYSTERESIS, HierarchyIndex


class EntityObject:
    __slots__ = ("slot", "center", "half", "radius", "thresholds", "level", "children",
                 "is_group", "expand_px", "expanded")


def build_objects(world: World) -> tuple[list[EntityObject], list[EntityObject]]:
    """One object per entity with bounds; returns (all objects, roots of the hierarchy)."""
    index = HierarchyIndex.build(world)
    wb, lod, group = world["world_bounds"], world["lod"], world["group"]
    by_slot: dict[int, EntityObject] = {}
    for slot in np.flatnonzero(world.alive[: world.size] & wb.has[: world.size]):
        e = EntityObject()
        e.slot = int(slot)
        e.center = (float(wb["cx"][slot]), float(wb["cy"][slot]), float(wb["cz"][slot]))
        e.half = (float(wb["hx"][slot]), float(wb["hy"][slot]), float(wb["hz"][slot]))
        e.radius = float(wb["radius"][slot])
        e.thresholds = [float(t) for t in lod["thresholds"][slot] if t > 0] if lod.has[slot] else []
        e.level = -1
        e.is_group = bool(group.has[slot])
        e.expand_px = float(group["expand_px"][slot])
        e.expanded = False
        e.children = []
        by_slot[e.slot] = e
    for e in by_slot.values():
        start, end = index.offsets[e.slot], index.offsets[e.slot + 1]
        e.children = [by_slot[int(c)] for c in index.order[start:end]]
    return list(by_slot.values()), [by_slot[int(s)] for s in index.roots]


def _level(size: float, thresholds: list[float]) -> int:
    return sum(1 for t in thresholds if size < t)


def cull_lod_per_entity(roots, planes, eye, focal_px, hysteresis=DEFAULT_HYSTERESIS, flat=False) -> list[int]:
    """Slots drawn this frame, computed entity by entity.

    With ``flat`` the hierarchy is ignored and every non-group entity in ``roots`` is tested, the
    way an esper system iterating ``get_components`` over all entities would do it.
    """
    planes = [tuple(float(v) for v in p) for p in planes]
    ex, ey, ez = (float(v) for v in eye)
    drawn = []
    pending = list(roots)
    while pending:
        e = pending.pop()
        cx, cy, cz = e.center
        r = e.radius
        outside = False
        for a, b, c, d in planes:
            if a * cx + b * cy + c * cz + d < -r:
                outside = True
                break
        if not outside:
            hx, hy, hz = e.half
            for a, b, c, d in planes:
                if a * cx + b * cy + c * cz + d < -(abs(a) * hx + abs(b) * hy + abs(c) * hz):
                    outside = True
                    break
        if outside:
            continue
        dist = math.sqrt((cx - ex) ** 2 + (cy - ey) ** 2 + (cz - ez) ** 2)
        size = 2.0 * r * focal_px / dist if dist > r else math.inf
        if e.is_group and not flat:
            limit = e.expand_px * ((1 - hysteresis) if e.expanded else (1 + hysteresis))
            e.expanded = size >= limit
            if e.expanded:
                pending.extend(e.children)
                continue
        if not e.thresholds:
            drawn.append(e.slot)
            continue
        n = len(e.thresholds)
        finest = _level(size / (1 - hysteresis), e.thresholds)
        coarsest = _level(size / (1 + hysteresis), e.thresholds)
        current = n if e.level < 0 else e.level
        level = min(max(current, finest), coarsest)
        e.level = -1 if level >= n else level
        if e.level >= 0:
            drawn.append(e.slot)
    return drawn
