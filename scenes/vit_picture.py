"""vit-tiny's picture in the 3D scene: the user's picture beside the patch stem, cut into its 16 × 16 patches
(scenes/picture_quad.py), the patches flying into the rows of the `patches` matrix when a new picture
arrives, the chosen attention (one head, a layer's mean, or the rollout; from [CLS] or a clicked patch)
tinted onto the picture and standing out in 3D, and the position-embedding similarity map (each patch's
cosine similarity to every other, a 16 × 16 grid of 16 × 16 maps) beside W_P; the hover readings of all of it.

Built with the scene (on the loader's worker, through its DataStaging); `update` runs on the frame thread
and only uploads when the picture, the weights or the choice changed; the flight is one vectorised update.
"""
from __future__ import annotations

import numpy as np

from llmviz.engine.render.colormaps import COLORMAP_DIVERGING
from llmviz.scenes.picture_quad import GridPlace, PatchFlight, PictureQuad, TileGrid

PICTURE_GAP = 0.4          # world units between patches
MAP_GAP = 0.9              # between the similarity maps
BESIDE = 60.0              # between the picture (or the maps) and the stem's blocks
# The maps' cells are drawn down to 2 pixels a tile (a flat tile would be one meaningless colour).
MAP_LOD_PX = (2.0, 0.5, 0.2, 0.0)
SELECTED_RGB = np.array([0.2, 0.95, 1.0], np.float32)   # the frame around the patch whose attention is shown


def _token_name(token: int, grid: int) -> str:
    if token == 0:
        return "[CLS]"
    i, j = divmod(token - 1, grid)
    return f"patch ({i}, {j}) (token {token})"


class VitPicture:
    """The 3D picture, its flight and the similarity maps of one vit-tiny scene (`scene`: its ModelScene)."""

    def __init__(self, scene, allocator, pixels: int = 64, patch: int = 4):
        layout, world = scene.layout, scene.world
        self.grid = pixels // patch
        stem = layout.index("patches")
        (cx, cy, _), (w, h, _) = layout.center[stem], layout.size[stem]
        cell = (h - (self.grid - 1) * PICTURE_GAP) / pixels
        place = GridPlace(left=float(cx - w / 2 - BESIDE - h), top=float(cy + h / 2), z=0.5, cell=float(cell),
                          gap=PICTURE_GAP)
        self.quad = PictureQuad(world, allocator, place, pixels, patch)
        self.flight = PatchFlight(world, self.quad, layout.center[stem], layout.size[stem])
        pos = layout.index("embed.pos.weight")
        (px, py, _), (pw, ph, _) = layout.center[pos], layout.size[pos]
        n = self.grid * self.grid
        map_cell = (ph - (self.grid - 1) * MAP_GAP) / n
        self.maps = TileGrid(world, allocator, GridPlace(float(px + pw / 2 + BESIDE), float(py + ph / 2), 0.5,
                                                         float(map_cell), MAP_GAP),
                             (self.grid, self.grid), (self.grid, self.grid), colormap=COLORMAP_DIVERGING,
                             lod=MAP_LOD_PX)
        # a camera preset on the picture, its patches' matrix and the maps
        from llmviz.scenes.layout import _frame

        lo = np.minimum(self.quad.center - [*np.array(self.quad.extent) / 2, 0], layout.center[pos] - layout.size[pos] / 2)
        hi = np.maximum(self.maps.center + [*np.array(self.maps.extent) / 2, 0], layout.center[stem] + layout.size[stem] / 2)
        layout.presets["picture"] = _frame((lo + hi) / 2, np.maximum(hi - lo, 1.0))
        self._label(world, self.quad, f"the picture: {self.grid} x {self.grid} patches of {patch} x {patch} pixels")
        self._label(world, self.maps, "position embeddings: each patch's cosine similarity to every patch")
        self._shown = None       # (trace version, choice) the picture shows
        self._maps_shown = None  # the weights the maps show

    @staticmethod
    def _label(world, grid: TileGrid, text: str) -> None:
        w, h = grid.extent
        height = max(2.0, h * 0.045)
        top = grid.center + np.array([0.0, h / 2 + height, 0.6], np.float32)
        ids = world.spawn(1, transform={"position": top[None, :], "scale": np.array([[height, height, 1.0]])},
                          bounds={})
        world.add_labels(ids, [text], height=height, color=(0.95, 0.95, 0.98, 1.0), min_px=0.5, priority=2.0)

    # ------------------------------------------------------------------ per frame
    def update(self, renderer, live, dt: float) -> bool:
        """Uploads what changed (picture, heatmap, maps) and moves the flight on; True when something moved."""
        moved = self.flight.update(dt)
        if renderer is None or live.trace is None:
            return moved
        key = (live.trace_version, live.choice)
        if key != self._shown:
            new_picture = self._shown is None or self._shown[0] != live.trace_version
            self._shown = key
            self.quad.show(renderer, live.trace[live.PICTURE_ID], live.heat())
            self._frame_selected(renderer, live)
            if new_picture:
                self.flight.start_flight()
        if live.weights is not None and self._maps_shown is not live.weights:
            self._maps_shown = live.weights
            self.maps.write(renderer, live.weights[live.SIMILARITY_ID])   # tiled on the worker
        return True

    def _frame_selected(self, renderer, live) -> None:
        """A cyan frame around the patch whose attention is shown (none for [CLS])."""
        token = live.choice.token
        if token == 0 or live.choice.view == "picture":
            return
        from llmviz.engine.render.colormaps import pack_rgb

        p = self.quad.patch
        i, j = divmod(token - 1, self.grid)
        block = self.quad.rgb[i * p:(i + 1) * p, j * p:(j + 1) * p].copy()
        edge = np.ones((p, p), bool)
        edge[1:-1, 1:-1] = False
        block[edge] = np.rint(SELECTED_RGB * 255).astype(np.uint8)
        x, y = self.quad.origin
        renderer.write_data(x + j * p, y + i * p, pack_rgb(block))

    def replay(self) -> None:
        self.flight.start_flight()

    # ------------------------------------------------------------------ picking
    def token_at(self, slot: int) -> int | None:
        """The token (patch k + 1) of a picked patch of the picture, else None."""
        k = self.quad.tile_at(slot)
        return None if k is None else k + 1

    def reading(self, live, slot: int, cell):
        """A hover Reading for the picture's patches and the similarity maps; None for other entities."""
        from llmviz.scenes.hover import WAITING, Reading

        at = self.quad.pixel_at(slot, cell)
        if at is not None:
            return self._pixel_reading(live, *at, cell)
        if self.quad.tile_at(slot) is not None:   # a raised patch's side: the patch without a pixel
            i, j = self.quad.index[self.quad.tile_at(slot)]
            heat = live.heat()
            return Reading("input.rgb", label=f"patch ({i}, {j}) = token {self.quad.tile_at(slot) + 1}",
                           note=(f"{live.heat_words()}: {float(heat[i, j]):.4g} on this patch · " if heat is not None
                                 else "") + "point at the front face to read a pixel; click to see its attention")
        k = self.maps.tile_at(slot)
        if k is None:
            return None
        i, j = self.maps.index[k]
        base = dict(tensor_id="embed.pos.similarity", label=f"similarity map of patch ({i}, {j})",
                    dims=f"{self.grid} × {self.grid} cells",
                    role="How alike the learned position embedding of this patch is to every patch's: the map lies "
                         "where those patches are in the picture. Nearby patches learned similar positions.",
                    shape=f"{self.grid}² × {self.grid}² cosine similarities of W_P's patch rows")
        if live.weights is None or cell is None:
            return Reading(**base, note=WAITING if cell is not None else "point at the front face to read a cell")
        a, b = cell
        p, q = int(k), int(a * self.grid + b)
        pos = np.asarray(live.weights["embed.pos.weight"], np.float64)
        u, v = pos[p + 1], pos[q + 1]
        dot, nu, nv = float(u @ v), float(np.linalg.norm(u)), float(np.linalg.norm(v))
        value = dot / (nu * nv)
        from llmviz.scenes.dataflow import Source, format_number as f

        return Reading(**base, indices=f"patch ({i}, {j}) to patch ({a}, {b})", value=value, cell=tuple(cell),
                       formula=f"cos(W_P[t={p + 1}], W_P[t={q + 1}]) = u·v / (|u| |v|) = {f(dot)} / ({f(nu)} × {f(nv)})"
                               f" = {f(value)}",
                       sources=(Source("embed.pos.weight", np.array([p + 1, q + 1]), np.arange(pos.shape[1])),))

    def _pixel_reading(self, live, k: int, row: int, col: int, cell):
        from llmviz.scenes.dataflow import Source, format_number as f
        from llmviz.scenes.hover import WAITING, Reading

        i, j = self.quad.index[k]
        p = self.quad.patch
        base = dict(tensor_id="input.rgb", label=f"patch ({i}, {j}) = token {k + 1}",
                    dims=f"{p} × {p} pixels",
                    role="The picture as the model reads it (resized to 64 x 64 as ViTImageProcessor does), cut into "
                         "patches; each patch, flattened channel by channel, is one row of the patches matrix. "
                         "Click a patch to see what it attends to.",
                    shape=f"{self.grid} × {self.grid} patches of {p} × {p} × 3 pixels")
        if live.trace is None:
            return Reading(**base, note=WAITING)
        seen = np.asarray(live.trace[live.PICTURE_ID])[row, col]
        rgb = np.rint(seen * 255).astype(int)
        flat = [c * p * p + (row - i * p) * p + (col - j * p) for c in range(3)]
        values = np.asarray(live.trace["patches"])[k, flat]
        formula = (f"RGB ({rgb[0]}, {rgb[1]}, {rgb[2]}) → (v / 255 − 0.5) / 0.5 = "
                   + ", ".join(f(float(v)) for v in values) + f"  (patches[{k}, {flat[0]}], [{flat[1]}], [{flat[2]}])")
        note = ""
        heat = live.heat()
        if heat is not None:
            note = f"{live.heat_words()}: {f(float(heat[i, j]))} on this patch"
        return Reading(**base, indices=f"pixel row {row}, column {col}", value=float(values[0]), formula=formula,
                       note=note, cell=None, sources=(Source("patches", np.array([k]), np.array(flat)),))
