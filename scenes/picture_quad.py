"""A picture in the 3D scene, cut into its patch grid, for the vision models (vit-tiny; clip-tiny and llava-tiny
can reuse it): `TileGrid` is one data-atlas region shown as a grid of boxes with gaps between them (tile (i, j)
draws the sub-region of its cells), `PictureQuad` is a TileGrid of a picture's patches whose cells are its pixels
(colour map COLORMAP_RGB: each texel a packed 24-bit colour, decoded by the box shader), and `PatchFlight`
flies copies of the patches into the rows of a matrix block (the patch-embedding input), one after another.

Nothing here knows a model: callers pass where things go and what they show. Everything is numpy over all
tiles at once (a flight's frame is one vectorised update of 256 positions); uploads happen when a picture or
a choice changes, never per frame. `allocator` is the renderer or, for a scene built on a worker, its
DataStaging (engine/render/datatex.py): regions are reserved and first filled through it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmviz.engine.render.colormaps import COLORMAP_DIVERGING, COLORMAP_RGB, pack_rgb

# A tile's cells are drawn while it is this many pixels tall; then flat (its mean colour); then not at all.
TILE_LOD_PX = (6.0, 1.0, 0.3, 0.0)
HEAT_RGB = np.array([1.0, 0.35, 0.1], np.float32)   # what a heatmap tints the picture with
LIFT_DEPTH = 14.0         # world units a tile of the heatmap's maximum stands out towards the viewer


def overlay(picture: np.ndarray, heat: np.ndarray | None) -> np.ndarray:
    """(S, S, 4) uint8: the (S, S, 3) picture in [0, 1], with a (g, g) heatmap (scaled to its maximum) laid over
    it patch by patch: the picture darkened where the heat is low, tinted where it is high."""
    rgb = np.asarray(picture, np.float32)
    if heat is not None:
        scale = rgb.shape[0] // heat.shape[0]
        top = float(heat.max())
        h = np.kron(heat / top if top > 0 else heat, np.ones((scale, scale)))[..., None].astype(np.float32)
        rgb = rgb * (0.25 + 0.75 * h) * (1 - 0.45 * h) + HEAT_RGB * 0.45 * h
    out = np.empty(rgb.shape[:2] + (4,), np.uint8)
    out[..., :3] = np.clip(np.rint(rgb * 255), 0, 255)
    out[..., 3] = 255
    return out


@dataclass(frozen=True)
class GridPlace:
    """Where a grid of tiles lies: its top-left corner (x, y, z of the front plane's centre line), the world
    size of one cell, and the gap between tiles in world units."""

    left: float
    top: float
    z: float
    cell: float
    gap: float

    def size(self, tiles: tuple[int, int], tile_cells: tuple[int, int]) -> tuple[float, float]:
        rows, cols = tiles
        tr, tc = tile_cells
        return cols * tc * self.cell + (cols - 1) * self.gap, rows * tr * self.cell + (rows - 1) * self.gap


class TileGrid:
    """tiles (rows, cols) boxes, each tile_cells (rows, cols) cells of one (rows·tr, cols·tc) atlas region,
    spawned into `world` at `place`. Row-major tile order: tile k is (k // cols, k % cols)."""

    def __init__(self, world, allocator, place: GridPlace, tiles: tuple[int, int], tile_cells: tuple[int, int],
                 colormap: int = COLORMAP_DIVERGING, value_range=(-1.0, 1.0), depth: float = 1.0,
                 lod=TILE_LOD_PX):
        self.world, self.place = world, place
        self.tiles, self.tile_cells = tuple(tiles), tuple(tile_cells)
        rows, cols = self.tiles
        tr, tc = self.tile_cells
        self.n = rows * cols
        self.depth = float(depth)
        self.origin = allocator.alloc_data(rows * tr, cols * tc)   # (x, y) texel of the whole region
        i, j = np.divmod(np.arange(self.n), cols)
        self.index = np.c_[i, j]
        w, h = tc * place.cell, tr * place.cell
        self.home = np.c_[place.left + j * (w + place.gap) + w / 2, place.top - i * (h + place.gap) - h / 2,
                          np.full(self.n, place.z - depth / 2)].astype(np.float32)
        self.tile_size = np.array([w, h, depth], np.float32)
        regions = np.c_[self.origin[0] + j * tc, self.origin[1] + i * tr, np.full(self.n, tc), np.full(self.n, tr)]
        self.ids = world.spawn(self.n, transform={"position": self.home, "scale": np.tile(self.tile_size, (self.n, 1))},
                               bounds={}, renderable={"color": np.tile([0.3, 0.3, 0.35, 1.0], (self.n, 1))},
                               lod={"thresholds": lod}, pickable={},
                               datatex={"region": regions.astype(np.int32), "value_range": value_range,
                                        "colormap": colormap})
        self.slots = world.slots(self.ids)
        self._tile_of_slot = {int(s): k for k, s in enumerate(self.slots)}
        allocator.write_data(*self.origin, np.full((rows * tr, cols * tc), np.nan, np.float32))

    @property
    def extent(self) -> tuple[float, float]:
        """(width, height) in world units."""
        return self.place.size(self.tiles, self.tile_cells)

    @property
    def center(self) -> np.ndarray:
        w, h = self.extent
        return np.array([self.place.left + w / 2, self.place.top - h / 2, self.place.z], np.float32)

    def tile_at(self, slot: int) -> int | None:
        """The tile index of an entity slot, or None when the slot is not one of these tiles."""
        return self._tile_of_slot.get(int(slot))

    def write(self, renderer, values: np.ndarray) -> None:
        """The whole region's (rows·tr, cols·tc) float32 values."""
        renderer.write_data(*self.origin, np.asarray(values, np.float32))

    def set_colors(self, rgba: np.ndarray) -> None:
        """Each tile's flat colour (what it shows from far away): (n, 4)."""
        self.world.set("renderable", self.ids, color=np.asarray(rgba, np.float32))

    def lift(self, heights: np.ndarray | None) -> None:
        """Tiles stood out towards the viewer by `heights` (n,) world units, their back faces kept in place."""
        h = np.zeros(self.n, np.float32) if heights is None else np.asarray(heights, np.float32)
        scale = np.tile(self.tile_size, (self.n, 1))
        scale[:, 2] += h
        position = self.home.copy()
        position[:, 2] += h / 2
        self.world.set("transform", self.ids, position=position, scale=scale)


class PictureQuad(TileGrid):
    """A square picture of `pixels` × `pixels` in patches of `patch` pixels: tile k is patch k (row-major),
    its cells the patch's pixels, drawn in their own colours."""

    def __init__(self, world, allocator, place: GridPlace, pixels: int, patch: int, depth: float = 1.0):
        grid = pixels // patch
        super().__init__(world, allocator, place, (grid, grid), (patch, patch), colormap=COLORMAP_RGB, depth=depth)
        self.pixels, self.patch, self.grid = pixels, patch, grid
        self.rgb: np.ndarray | None = None   # what it shows, (pixels, pixels, 3) uint8

    def show(self, renderer, rgb: np.ndarray, heat: np.ndarray | None = None) -> None:
        """The picture ((pixels, pixels, 3) floats in [0, 1]), with a (grid, grid) heatmap tinted over it and
        standing out in 3D (None: the picture alone, flat)."""
        rgba = overlay(rgb, heat)
        self.rgb = rgba[..., :3]
        self.write(renderer, pack_rgb(self.rgb))
        p, g = self.patch, self.grid
        means = self.rgb.reshape(g, p, g, p, 3).mean(axis=(1, 3)).reshape(-1, 3) / 255.0
        self.set_colors(np.c_[means, np.ones(self.n)])
        top = float(heat.max()) if heat is not None else 0.0
        self.lift(None if heat is None or top <= 0 else heat.reshape(-1) / top * LIFT_DEPTH)

    def pixel_at(self, slot: int, cell: tuple[int, int] | None) -> tuple[int, int, int] | None:
        """(patch index, pixel row, pixel column) of a picked cell of one of the patches, else None."""
        k = self.tile_at(slot)
        if k is None or cell is None:
            return None
        i, j = self.index[k]
        return k, int(i * self.patch + cell[0]), int(j * self.patch + cell[1])


FLIGHT_SECONDS = 0.9      # one patch's trip
FLIGHT_SPREAD = 2.6       # from the first patch's start to the last's
FLIGHT_ARC = 40.0         # how far towards the viewer a patch swings on its way


class PatchFlight:
    """Copies of a PictureQuad's patches that fly, one after another in token order, from the picture to
    their rows of a matrix block (`target_center`, `target_size`: the block whose row k is patch k), turning
    from squares into the rows they become; then they vanish and the block shows the numbers. The copies
    share the patches' atlas cells, so they carry the picture as it is shown."""

    def __init__(self, world, quad: PictureQuad, target_center, target_size):
        self.world, self.quad = world, quad
        n = quad.n
        cx, cy, cz = (float(v) for v in target_center)
        w, h = float(target_size[0]), float(target_size[1])
        row_h = h / n
        self.start = quad.home.copy()
        self.start[:, 2] = quad.place.z + 0.6          # just in front of the picture
        self.end = np.c_[np.full(n, cx), cy + h / 2 - (np.arange(n) + 0.5) * row_h, np.full(n, cz + 0.6)]
        self.start_size = np.tile(quad.tile_size, (n, 1))
        self.end_size = np.tile(np.array([w, row_h, 1.0], np.float32), (n, 1))
        region = world["datatex"]["region"][quad.slots]
        self.ids = world.spawn(n, transform={"position": self.start, "scale": np.zeros((n, 3), np.float32)},
                               bounds={}, renderable={"color": np.tile([0.3, 0.3, 0.35, 1.0], (n, 1))},
                               lod={"thresholds": TILE_LOD_PX},
                               datatex={"region": region, "value_range": (0.0, 1.0), "colormap": COLORMAP_RGB})
        self.delay = np.arange(n) / max(1, n - 1) * FLIGHT_SPREAD
        self.elapsed: float | None = None   # seconds since the flight started; None when not flying

    @property
    def duration(self) -> float:
        return FLIGHT_SPREAD + FLIGHT_SECONDS

    @property
    def flying(self) -> bool:
        return self.elapsed is not None

    def start_flight(self) -> None:
        self.elapsed = 0.0
        self.world.set("renderable", self.ids, color=self.world["renderable"]["color"][self.quad.slots])

    def progress(self, elapsed: float) -> np.ndarray:
        """(n,) each patch's eased progress along its trip, 0 before it leaves, 1 once it has arrived."""
        p = np.clip((elapsed - self.delay) / FLIGHT_SECONDS, 0.0, 1.0)
        return p * p * (3 - 2 * p)

    def update(self, dt: float) -> bool:
        """Move the patches on by `dt` seconds; False when nothing is flying."""
        if self.elapsed is None:
            return False
        self.elapsed += dt
        done = self.elapsed >= self.duration
        p = self.progress(self.elapsed)[:, None]
        position = self.start * (1 - p) + self.end * p
        position[:, 2] += FLIGHT_ARC * np.sin(np.pi * p[:, 0])
        scale = self.start_size * (1 - p) + self.end_size * p
        # not drawn before leaving (they would cover the picture's own patches) nor after arriving
        scale[(p[:, 0] <= 0.0) | (p[:, 0] >= 1.0) | done] = 0.0
        self.world.set("transform", self.ids, position=position.astype(np.float32), scale=scale.astype(np.float32))
        if done:
            self.elapsed = None
        return True
