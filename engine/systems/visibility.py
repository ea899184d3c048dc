"""Visibility and LOD: frustum culling, hierarchical LOD over groups, and projected-size LOD with hysteresis.

The traversal goes down the hierarchy one depth at a time. At each depth the frontier is
culled (sphere test, then box test for the survivors); groups big enough on screen open and
hand their children to the next frontier; groups that are small are drawn as their proxy
and their whole subtree is skipped. Everything inside a depth is one numpy pass, so the cost
follows what is near the camera rather than the size of the world.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ecs.components import FLAG_HIDDEN, FLAG_NO_CULL, LOD_NONE
from ..ecs.world import World

DEFAULT_HYSTERESIS = 0.12


# ------------------------------------------------------------------ pure kernels
def cull_spheres(planes: np.ndarray, cx, cy, cz, radius) -> np.ndarray:
    """True where the sphere is not entirely behind any plane. planes: (6, 4) inward, normalised."""
    keep = np.ones(len(cx), bool)
    for a, b, c, d in planes.tolist():
        keep &= cx * a + cy * b + cz * c + d >= -radius
    return keep


def cull_boxes(planes: np.ndarray, cx, cy, cz, hx, hy, hz) -> np.ndarray:
    """True where the axis-aligned box is not entirely behind any plane (the p-vertex test).

    Conservative: a box is rejected only when all of it lies outside one plane, so nothing
    with a visible part is ever culled (some boxes near frustum corners are kept).
    """
    keep = np.ones(len(cx), bool)
    for a, b, c, d in planes.tolist():
        keep &= cx * a + cy * b + cz * c + d >= -(hx * abs(a) + hy * abs(b) + hz * abs(c))
    return keep


def frustum_cull_columns(planes: np.ndarray, cx, cy, cz, hx, hy, hz, radius) -> np.ndarray:
    """Sphere test first (cheap, rejects most), then the box test on the survivors only."""
    keep = cull_spheres(planes, cx, cy, cz, radius)
    survivors = np.flatnonzero(keep)
    if len(survivors):
        keep[survivors] = cull_boxes(planes, cx[survivors], cy[survivors], cz[survivors],
                                     hx[survivors], hy[survivors], hz[survivors])
    return keep


def frustum_cull(planes: np.ndarray, center: np.ndarray, half: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """frustum_cull_columns for (N, 3) centre and half-extent arrays."""
    return frustum_cull_columns(planes, *np.asarray(center).T, *np.asarray(half).T, np.asarray(radius))


def projected_size_px(cx, cy, cz, radius, eye, focal_px: float) -> np.ndarray:
    """On-screen diameter of each bounding sphere in pixels; infinite when the eye is inside it.

    Uses the distance to the eye (not the view depth) so turning the camera never changes a LOD.
    """
    ex, ey, ez = (float(v) for v in eye)
    dist = np.sqrt((cx - ex) ** 2 + (cy - ey) ** 2 + (cz - ez) ** 2)
    with np.errstate(divide="ignore"):
        size = np.where(dist > radius, (2.0 * focal_px) * radius / np.maximum(dist, 1e-12), np.inf)
    return size.astype(np.float32, copy=False)


def _level(size: np.ndarray, thresholds_by_level: np.ndarray) -> np.ndarray:
    """Number of used thresholds the size falls below (0 is the finest level).

    thresholds_by_level is (k, n): one contiguous row per level, so each comparison is a plain 1-D pass.
    """
    level = np.zeros(len(size), np.int8)
    for row in thresholds_by_level:
        level += (size < row) & (row > 0)
    return level


def select_lod(size: np.ndarray, thresholds: np.ndarray, current: np.ndarray,
               hysteresis: float = DEFAULT_HYSTERESIS) -> np.ndarray:
    """LOD level per entity from projected size, keeping the current level inside a dead band.

    thresholds: (n, k) descending pixel sizes, 0 for unused slots; level i while size >= thresholds[i];
    below the last used threshold the level is LOD_NONE. A level changes only once the size is
    ``hysteresis`` (a fraction) past the threshold, so a camera resting at a threshold never flickers.
    """
    by_level = np.ascontiguousarray(thresholds.T)
    n_used = (by_level > 0).sum(axis=0, dtype=np.int8)
    # Finer only once size >= t·(1+h); coarser only once size < t·(1−h).
    finest = _level(size / max(1e-6, 1.0 - hysteresis), by_level)
    coarsest = _level(size / (1.0 + hysteresis), by_level)
    cur = np.where(current < 0, n_used, current)
    level = np.minimum(np.maximum(cur, finest), coarsest)
    return np.where(level >= n_used, np.where(n_used == 0, 0, LOD_NONE), level).astype(np.int8)


def select_expanded(size: np.ndarray, expand_px: np.ndarray, expanded: np.ndarray,
                    hysteresis: float = DEFAULT_HYSTERESIS) -> np.ndarray:
    """Groups open above expand_px·(1+h), close below expand_px·(1−h), and otherwise stay as they were."""
    return np.where(expanded, size >= expand_px * (1.0 - hysteresis), size >= expand_px * (1.0 + hysteresis))


# ------------------------------------------------------------------ hierarchy index
@dataclass
class HierarchyIndex:
    """Children of every slot as one CSR table, rebuilt only when the world's structure changes."""

    roots: np.ndarray
    order: np.ndarray  # child slots sorted by parent
    offsets: np.ndarray  # children of slot s are order[offsets[s]:offsets[s+1]]
    subtree: np.ndarray  # number of descendants of each slot
    max_depth: int

    @classmethod
    def build(cls, world: World) -> "HierarchyIndex":
        n = world.size
        members = world.alive[:n] & world["world_bounds"].has[:n]
        parent = np.where(world["parent"].has[:n], world["parent"]["slot"][:n], -1)
        parent = np.where(members, parent, -2)
        has_parent = parent >= 0
        children = np.flatnonzero(has_parent)
        owners = parent[children]
        order = children[np.argsort(owners, kind="stable")]
        counts = np.bincount(owners, minlength=n)
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        roots = np.flatnonzero(members & ~has_parent)
        # Descendant counts, accumulated depth by depth from the leaves up.
        depth = np.zeros(n, np.int64)
        frontier, d = roots, 0
        levels = []
        while len(frontier):
            depth[frontier] = d
            levels.append(frontier)
            frontier = gather_children(order, offsets, frontier)
            d += 1
        subtree = np.zeros(n, np.int64)
        for nodes in reversed(levels[1:]):
            np.add.at(subtree, parent[nodes], subtree[nodes] + 1)
        return cls(roots, order, offsets, subtree, max(0, d - 1))


def gather_children(order: np.ndarray, offsets: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """Concatenated children of the given parents, without a Python loop."""
    if len(parents) == 0:
        return parents
    starts = offsets[parents]
    counts = offsets[parents + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.int64)
    # Index of each output element within its parent's run, then shifted to the run's start.
    run_start = np.repeat(np.cumsum(counts) - counts, counts)
    within = np.arange(total) - run_start
    return order[np.repeat(starts, counts) + within]


# ------------------------------------------------------------------ the systems
@dataclass
class VisibilityResult:
    candidates: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # in view: leaves + closed groups
    sizes: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))  # their projected size, px
    frames: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # open groups that draw a frame
    in_view: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # candidates + open groups
    drawn: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # filled by the LOD system
    tested: int = 0
    frustum_culled: int = 0
    hlod_skipped: int = 0  # entities under culled or closed groups, never tested
    too_small: int = 0  # in view but below their smallest LOD threshold (set by the LOD system)
    proxies: int = 0  # closed groups standing in for their children


def _cat(parts, dtype=np.int64):
    return np.concatenate(parts) if parts else np.empty(0, dtype)


class VisibilitySystem:
    """Frustum culling and hierarchical LOD: which leaves and group proxies are in view this frame."""

    def __init__(self, world: World, hysteresis: float = DEFAULT_HYSTERESIS):
        self.world = world
        self.hysteresis = hysteresis
        # Scales every projected size: below 1, groups close and LODs coarsen sooner (adaptive quality).
        self.detail = 1.0
        self._index: HierarchyIndex | None = None
        self._index_version = -1
        self.result = VisibilityResult()

    def index(self) -> HierarchyIndex:
        if self._index is None or self._index_version != self.world.structure_version:
            self._index = HierarchyIndex.build(self.world)
            self._index_version = self.world.structure_version
        return self._index

    def __call__(self, frame) -> None:
        frame.visibility = self.update(frame.camera)

    def update(self, camera) -> VisibilityResult:
        world = self.world
        index = self.index()
        wb = world["world_bounds"]
        columns = [wb[name] for name in ("cx", "cy", "cz", "hx", "hy", "hz", "radius")]
        flags = world["renderable"]["flags"]
        group = world["group"]
        planes = camera.planes()
        eye = camera.position
        focal = camera.focal_px * self.detail

        cand, sizes, frames, opened_all = [], [], [], []
        result = VisibilityResult()
        frontier = index.roots
        while len(frontier):
            frontier = frontier[(flags[frontier] & FLAG_HIDDEN) == 0]
            result.tested += len(frontier)
            cx, cy, cz, hx, hy, hz, radius = (col[frontier] for col in columns)
            inside = frustum_cull_columns(planes, cx, cy, cz, hx, hy, hz, radius)
            inside |= (flags[frontier] & FLAG_NO_CULL) != 0
            culled = frontier[~inside]
            result.frustum_culled += len(culled)
            result.hlod_skipped += int(index.subtree[culled].sum())
            frontier = frontier[inside]
            size = projected_size_px(cx[inside], cy[inside], cz[inside], radius[inside], eye, focal)

            is_group = group.has[frontier]
            groups, gsize = frontier[is_group], size[is_group]
            opened = select_expanded(gsize, group["expand_px"][groups], group["expanded"][groups], self.hysteresis)
            group["expanded"][groups] = opened
            open_groups = groups[opened]
            closed = ~opened
            result.hlod_skipped += int(index.subtree[groups[closed]].sum())
            result.proxies += int(closed.sum())
            cand += [frontier[~is_group], groups[closed]]
            sizes += [size[~is_group], gsize[closed]]
            frames.append(open_groups[group["draw_when_expanded"][open_groups]])
            opened_all.append(open_groups)
            frontier = gather_children(index.order, index.offsets, open_groups)

        result.candidates = _cat(cand)
        result.sizes = _cat(sizes, np.float32)
        result.frames = _cat(frames)
        result.in_view = np.concatenate([result.candidates, _cat(opened_all)])
        self.result = result
        return result


class LodSystem:
    """Picks each candidate's LOD level from its projected size; fills ``drawn`` and visibility.visible."""

    def __init__(self, world: World, hysteresis: float = DEFAULT_HYSTERESIS):
        self.world = world
        self.hysteresis = hysteresis

    def __call__(self, frame) -> None:
        self.update(frame.visibility)

    def update(self, result: VisibilityResult) -> VisibilityResult:
        world = self.world
        lod = world["lod"]
        candidates = result.candidates
        levels = np.zeros(len(candidates), np.int8)
        has_lod = lod.has[candidates]
        if has_lod.any():
            with_lod = candidates[has_lod]
            levels[has_lod] = select_lod(result.sizes[has_lod], lod["thresholds"][with_lod],
                                         lod["level"][with_lod], self.hysteresis)
            lod["level"][with_lod] = levels[has_lod]
        shown = levels >= 0
        result.too_small = int((~shown).sum())
        lod["level"][result.frames] = 0
        drawn = np.concatenate([candidates[shown], result.frames])
        result.drawn = drawn[world["renderable"].has[drawn]]
        visible = world["visibility"]["visible"]
        visible[: world.size] = False
        visible[result.drawn] = True
        return result
