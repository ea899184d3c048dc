"""llava-tiny's picture in the 3D scene: the user's picture beside the vision tower's patch stem, cut into its
16 × 16 patches (scenes/picture_quad.py), the patches flying into the rows of `vision.patches` when a new picture
arrives, and the chosen answer token's attention to the 256 image tokens tinted onto the picture and standing
out in 3D (one layer and head, a layer's heads' mean or every layer's); the hover reading of its pixels.

Built with the scene (on the loader's worker, through its DataStaging); `update` runs on the frame thread and
only uploads when the trace or the choice changed; the flight is one vectorised update.
"""
from __future__ import annotations

import numpy as np

from llmviz.scenes.picture_quad import GridPlace, PatchFlight, PictureQuad
from llmviz.scenes.vit_picture import VitPicture

PICTURE_GAP = 0.4          # world units between patches
BESIDE = 60.0              # between the picture and the stem's blocks
STEM = "vision.patches"


class LlavaPicture:
    """The 3D picture and its flight of one llava-tiny scene (`scene`: its ModelScene)."""

    def __init__(self, scene, allocator, pixels: int = 64, patch: int = 4):
        layout, world = scene.layout, scene.world
        self.grid = pixels // patch
        stem = layout.index(STEM)
        (cx, cy, _), (w, h, _) = layout.center[stem], layout.size[stem]
        cell = (h - (self.grid - 1) * PICTURE_GAP) / pixels
        place = GridPlace(left=float(cx - w / 2 - BESIDE - h), top=float(cy + h / 2), z=0.5, cell=float(cell),
                          gap=PICTURE_GAP)
        self.quad = PictureQuad(world, allocator, place, pixels, patch)
        self.flight = PatchFlight(world, self.quad, layout.center[stem], layout.size[stem])
        VitPicture._label(world, self.quad, f"the picture: {self.grid} x {self.grid} patches of {patch} x {patch} "
                          "pixels, tinted by the chosen answer token's attention")
        from llmviz.scenes.layout import _frame

        lo = self.quad.center - [*np.array(self.quad.extent) / 2, 0]
        hi = layout.center[stem] + layout.size[stem] / 2
        # room for the side panel on the right of the window: the frame reaches past the stem
        extent = np.maximum(hi - lo, 1.0)
        layout.presets["picture"] = _frame((lo + hi) / 2 + [0.18 * extent[0], 0.0, 0.0], extent * [1.7, 1.3, 1.0])
        self._shown = None        # (trace version, choice) the picture shows
        self._image = None        # the picture the flight last flew

    def update(self, renderer, live, dt: float) -> bool:
        """Uploads the picture and its tint when the trace or the choice changed, and moves the flight on."""
        moved = self.flight.update(dt)
        if renderer is None or live.trace is None:
            return moved
        key = (live.trace_version, live.choice)
        if key != self._shown:
            self._shown = key
            self.quad.show(renderer, live.trace[live.PICTURE_ID], live.heat())
            if live.shown_image is not self._image:   # a new picture, not a new answer token
                self._image = live.shown_image
                self.flight.start_flight()
        return True

    def replay(self) -> None:
        self.flight.start_flight()

    def reading(self, live, slot: int, cell):
        """A hover Reading for the picture's patches; None for other entities."""
        from llmviz.scenes.dataflow import Source, format_number as f
        from llmviz.scenes.hover import WAITING, Reading

        k = self.quad.tile_at(slot)
        if k is None:
            return None
        i, j = (int(v) for v in self.quad.index[k])
        p = self.quad.patch
        heat = live.heat() if live.trace is not None else None
        note = f"{live.heat_words()}: {f(float(heat[i, j]))} on this patch" if heat is not None else ""
        base = dict(tensor_id="input.rgb", label=f"patch ({i}, {j}) = image token {k}", dims=f"{p} x {p} pixels",
                    role="The picture as the tower reads it (resized to 64 x 64 as the exported processor does), cut "
                         "into patches; each patch, flattened channel by channel, is one row of the patches matrix "
                         "and, after the tower and the projector, one of the image tokens the decoder reads first. "
                         "Click an answer token in the panel to see where it looked.",
                    shape=f"{self.grid} x {self.grid} patches of {p} x {p} x 3 pixels")
        at = self.quad.pixel_at(slot, cell)
        if live.trace is None:
            return Reading(**base, note=WAITING)
        if at is None:   # a raised patch's side
            return Reading(**base, note=(note + " · " if note else "") + "point at the front face to read a pixel")
        _, row, col = at
        rgb = np.rint(np.asarray(live.trace[live.PICTURE_ID])[row, col] * 255).astype(int)
        flat = [c * p * p + (row - i * p) * p + (col - j * p) for c in range(3)]
        values = np.asarray(live.trace[STEM])[k, flat]
        formula = (f"RGB ({rgb[0]}, {rgb[1]}, {rgb[2]}) → (v / 255 − 0.5) / 0.5 = "
                   + ", ".join(f(float(v)) for v in values) + f"  ({STEM}[{k}, {flat[0]}], [{flat[1]}], [{flat[2]}])")
        return Reading(**base, indices=f"pixel row {row}, column {col}", value=float(values[0]), formula=formula,
                       note=note, cell=None, sources=(Source(STEM, np.array([k]), np.array(flat)),))
