"""clip-tiny's parts of the 3D scene beside its two towers: the user's picture cut into its 16 × 16 patches
beside the vision tower's stem (scenes/picture_quad.py, the patches flying into the `patches` rows when a new
picture arrives), the image–text similarity matrix (the user's captions × their picture and a few generated
ones, the softmax over the captions in each column) and the shared embedding space itself: the unit image
and caption embeddings projected on their first three principal components, as points in 3D, the generated
pictures in their own colour, every full caption dim, the user's picture and captions large and labelled.

Built with the scene (on the loader's worker, through its DataStaging when there is one); `update` runs on the
frame thread and only writes when a new trace arrived: positions, colours and labels of all points in one
vectorised write each. `reading` answers the hover for all of it, with the numbers it was computed from.
"""
from __future__ import annotations

import numpy as np

from llmviz.engine.render.colormaps import COLORMAP_VIRIDIS
from llmviz.engine.systems.label_layout import CAPTION
from llmviz.models.sim import shapes
from llmviz.scenes import clip_live as cl
from llmviz.scenes.hover import Reading
from llmviz.scenes.picture_quad import GridPlace, PatchFlight, PictureQuad, TileGrid

PICTURE_GAP = 0.4         # world units between the picture's patches
BESIDE = 40.0             # between the picture and the stem's blocks
MATRIX_CELL = 4.0         # world units of one similarity cell
SPACE_SIZE = 160.0        # the embedding space's cube side
AFTER_CONTRAST = 40.0     # from the shared-space blocks to the matrix, and from the matrix to the space
POINT = {"gallery": 3.0, "full": 1.6, "picture": 7.0, "caption": 5.0}
CAPTION_RGB = np.array([0.2, 0.95, 1.0, 1.0], np.float32)     # the user's captions
SELECTED_RGB = np.array([1.0, 0.85, 0.2, 1.0], np.float32)    # the caption the text tower traces
FULL_RGB = np.array([0.62, 0.64, 0.70, 1.0], np.float32)      # every full caption, dim
TEXT_RGB = (0.95, 0.95, 0.98, 1.0)


def _label(world, position, text: str, height: float, **fields):
    ids = world.spawn(1, transform={"position": np.asarray(position, np.float32)[None, :],
                                    "scale": np.array([[height, height, 1.0]], np.float32)}, bounds={})
    world.add_labels(ids, [text], height=height, color=TEXT_RGB, min_px=0.5, priority=2.0, **fields)
    return ids


class ClipSpace:
    """The picture, the similarity matrix and the embedding space of one clip-tiny scene (`scene`: its ModelScene)."""

    def __init__(self, scene, allocator, max_captions: int, n_pictures: int, n_gallery: int, n_full: int,
                 pixels: int = 64, patch: int = 4):
        layout, world = scene.layout, scene.world
        self.world = world
        self.max_captions, self.n_pictures = max_captions, n_pictures
        self.gallery = [(p.size, p.colour, p.shape) for p in cl.gallery()]
        self.grid = pixels // patch
        # the picture, left of the vision tower's patches
        stem = layout.index("vision.patches")
        (cx, cy, _), (w, h, _) = layout.center[stem], layout.size[stem]
        cell = (h - (self.grid - 1) * PICTURE_GAP) / pixels
        self.quad = PictureQuad(world, allocator, GridPlace(float(cx - w / 2 - BESIDE - h), float(cy + h / 2), 0.5,
                                                            float(cell), PICTURE_GAP), pixels, patch)
        self.flight = PatchFlight(world, self.quad, layout.center[stem], layout.size[stem])
        _label(world, self.quad.center + np.array([0.0, h / 2 + 6.0, 0.6]), f"the picture: {self.grid} x {self.grid} "
               f"patches of {patch} x {patch} pixels", max(2.0, h * 0.045))
        # the matrix, right of the shared-space blocks
        g = list(layout.group_ids).index("contrast")
        (gx, gy, _), (gw, gh, _) = layout.group_center[g], layout.group_size[g]
        left, top = float(gx + gw / 2 + AFTER_CONTRAST), float(gy + gh / 2)
        self.matrix = TileGrid(world, allocator, GridPlace(left, top, 0.5, MATRIX_CELL, 0.0), (1, 1),
                               (max_captions, n_pictures), colormap=COLORMAP_VIRIDIS, value_range=(0.0, 1.0))
        mw, mh = self.matrix.extent
        _label(world, (left + mw / 2, top + 9.0, 0.6), "image-text similarity: softmax over your captions", 2.2)
        _label(world, (left + mw / 2, top + 4.5, 0.6), "columns: your picture, then generated ones", 1.4)
        self._row_labels = world.spawn(max_captions, transform={
            "position": np.c_[np.full(max_captions, left + mw + 1.0),
                              top - (np.arange(max_captions) + 0.5) * MATRIX_CELL, np.full(max_captions, 0.6)],
            "scale": np.tile([1.6, 1.6, 1.0], (max_captions, 1))}, bounds={})
        world.add_labels(self._row_labels, [""] * max_captions, height=1.6, color=TEXT_RGB, min_px=0.5,
                         priority=2.0, offset=np.tile([12.0, 0.0, 0.0], (max_captions, 1)))
        # the space, right of the matrix's labels
        self.origin = np.array([left + mw + AFTER_CONTRAST + 60.0 + SPACE_SIZE / 2, top - SPACE_SIZE / 2, 0.0],
                               np.float32)
        self._axes(world)
        kinds = ["gallery"] * n_gallery + ["full"] * n_full + ["picture"] + ["caption"] * max_captions
        self.kinds = np.array(kinds)
        n = len(kinds)
        size = np.array([POINT[k] for k in kinds], np.float32)
        self.point_size = np.c_[size, size, np.where(self.kinds == "full", 0.5, 1.0) * size].astype(np.float32)
        colour = np.tile(FULL_RGB, (n, 1))
        colour[:n_gallery, :3] = [np.asarray(shapes.COLOURS[c], np.float32) / 255.0 for _, c, _ in self.gallery]
        colour[self.kinds == "picture"] = (1.0, 1.0, 1.0, 1.0)
        self.points = world.spawn(n, transform={"position": np.tile(self.origin, (n, 1)),
                                                "scale": np.zeros((n, 3), np.float32)},
                                  bounds={}, renderable={"color": colour}, pickable={})
        self.point_slots = world.slots(self.points)
        self._point_of_slot = {int(s): k for k, s in enumerate(self.point_slots)}
        mine = self.points[self.kinds == "picture"]
        world.add_labels(mine, ["your picture"], height=3.0, color=TEXT_RGB, min_px=0.5, priority=2.5,
                         offset=np.array([[0.0, 6.0, 0.0]], np.float32), placement=CAPTION)
        self._caption_points = self.points[self.kinds == "caption"]
        world.add_labels(self._caption_points, [""] * max_captions, height=2.4, color=(0.75, 0.98, 1.0, 1.0),
                         min_px=0.5, priority=2.4, offset=np.tile([0.0, 5.0, 0.0], (max_captions, 1)),
                         placement=CAPTION)
        self.scale = None        # world units per embedding unit, set from the first trace's space
        self._shown = None       # the trace version on screen
        self._texts_shown = None  # the captions and variance shares the labels hold
        self._add_presets(layout, (left, top, mw, mh))

    def _axes(self, world) -> None:
        half = SPACE_SIZE / 2
        centres = self.origin + np.array([[half / 2, 0, 0], [0, half / 2, 0], [0, 0, half / 2]], np.float32)
        sizes = np.array([[half, 0.3, 0.3], [0.3, half, 0.3], [0.3, 0.3, half]], np.float32)
        self.axis_ids = world.spawn(3, transform={"position": centres, "scale": sizes}, bounds={},
                                    renderable={"color": np.tile([0.55, 0.58, 0.66, 1.0], (3, 1))})
        ends = self.origin + np.eye(3, dtype=np.float32) * (half + 6.0)
        self.axis_labels = world.spawn(3, transform={"position": ends, "scale": np.tile([3.0, 3.0, 1.0], (3, 1))},
                                       bounds={})
        world.add_labels(self.axis_labels, ["PC1", "PC2", "PC3"], height=3.0, color=TEXT_RGB, min_px=0.5, priority=2.0)
        _label(world, self.origin + np.array([0.0, half + 16.0, 0.0]), "the shared embedding space: PCA of the unit "
               "embeddings to 3D", 4.0)
        _label(world, self.origin + np.array([0.0, half + 10.0, 0.0]), "generated pictures in their colour; grey: all "
               "144 full captions; cyan: your captions", 2.4)

    def _add_presets(self, layout, matrix) -> None:
        left, top, mw, mh = matrix
        target = np.array([left + mw / 2, top - mh / 2, 0.0], np.float32)
        target[0] += 14.0   # the captions' labels right of the cells
        layout.presets["similarity matrix"] = (target + np.array([0.0, 0.0, 55.0], np.float32), target)
        space = self.origin.copy()
        layout.presets["embedding space 3D"] = (space + np.array([SPACE_SIZE * 0.45, SPACE_SIZE * 0.3, SPACE_SIZE * 0.95],
                                                                 np.float32), space)

    def replay(self) -> None:
        """The patches fly into the vision tower's `patches` rows again (the panel's Replay patches)."""
        self.flight.start_flight()

    # ------------------------------------------------------------------ per frame
    def update(self, renderer, live, dt: float) -> bool:
        """Uploads what a new trace changed, moves the patches' flight on by `dt`; True when something moved."""
        moved = self.flight.update(dt)
        if renderer is None or live.trace is None or self._shown == live.trace_version:
            return moved
        self._shown = live.trace_version
        tr = live.trace
        self.quad.show(renderer, tr[cl.PICTURE_ID], None)
        self.flight.start_flight()
        probs = tr[cl.PROBS_ID]
        block = np.full((self.max_captions, self.n_pictures), np.nan, np.float32)
        block[:probs.shape[0], :probs.shape[1]] = probs
        self.matrix.write(renderer, block)
        self._points(tr, live)
        self._texts(live)
        return True

    def _points(self, tr, live) -> None:
        gallery, full = tr[cl.SPACE_GALLERY], tr[cl.SPACE_CAPTIONS]
        if self.scale is None:
            top = float(np.abs(np.concatenate([gallery, full])).max())
            self.scale = SPACE_SIZE / 2 / (top if top > 0 else 1.0)
        yours = tr[cl.SPACE_YOURS]
        n_yours = len(yours)
        coords = np.zeros((len(self.kinds), 3), np.float32)
        coords[:len(gallery)] = gallery
        coords[len(gallery):len(gallery) + len(full)] = full
        at = len(gallery) + len(full)
        coords[at] = tr[cl.SPACE_PICTURE][0]
        coords[at + 1:at + 1 + n_yours] = yours
        size = self.point_size.copy()
        size[at + 1 + n_yours:] = 0.0          # caption slots not in use are not drawn
        colour = self.world["renderable"]["color"][self.point_slots].copy()
        caption_rows = np.arange(at + 1, at + 1 + self.max_captions)
        colour[caption_rows] = CAPTION_RGB
        colour[at + 1 + live.shown_selected] = SELECTED_RGB
        self.world.set("transform", self.points, position=self.origin + coords * self.scale, scale=size)
        self.world.set("renderable", self.points, color=colour)

    def _texts(self, live) -> None:
        captions = list(live.shown_captions) + [""] * (self.max_captions - len(live.shown_captions))
        axes = [f"PC{i + 1} ({100 * s:.0f}% of the variance)" for i, s in enumerate(live.trace[cl.SPACE_SHARE])]
        if (captions, axes) == self._texts_shown:   # a new picture, the same words: world.labels does not grow
            return
        self._texts_shown = (captions, axes)
        start = len(self.world.labels)
        self.world.labels.extend(captions + captions + axes)
        index = np.arange(start, start + self.max_captions, dtype=np.int32)
        self.world.set("label", self._row_labels, text_index=index)
        self.world.set("label", self._caption_points, text_index=index + self.max_captions)
        self.world.set("label", self.axis_labels, text_index=index[:3] + 2 * self.max_captions)

    # ------------------------------------------------------------------ hover
    def column_name(self, col: int) -> str:
        return "your picture" if col == 0 else f"generated picture {col}: {_caption(*self.gallery[col - 1])}"

    def reading(self, live, slot: int, cell) -> Reading | None:
        tr = live.trace
        if tr is None:
            return None
        if self.matrix.tile_at(slot) is not None:
            return self._matrix_reading(live, cell)
        pixel = self.quad.pixel_at(slot, cell)
        if pixel is not None:
            k, y, x = pixel
            rgb = tr[cl.PICTURE_ID][y, x]
            return Reading("input.rgb", label="the picture as clip-tiny reads it", dims="64 × 64 pixels",
                           indices=f"patch {k} (row {k // self.grid}, column {k % self.grid}), pixel y={y}, x={x}",
                           formula=f"RGB = ({rgb[0]:.3f}, {rgb[1]:.3f}, {rgb[2]:.3f}) after CLIPImageProcessor's "
                                   "resize and centre crop; the tower reads (x − CLIP mean) / CLIP std",
                           note="it becomes token " + str(k + 1) + " (row " + str(k) + " of vision.patches)")
        point = self._point_of_slot.get(int(slot))
        return None if point is None else self._point_reading(live, point)

    def _matrix_reading(self, live, cell) -> Reading:
        tr = live.trace
        base = dict(tensor_id=cl.PROBS_ID, label="image-text similarity, softmax over your captions",
                    dims=f"{self.max_captions} × {self.n_pictures} cells",
                    role="how well each of your captions fits each picture, in the shared space")
        if cell is None:
            return Reading(**base, note="point at the front face to read a cell")
        row, col = cell
        captions = live.shown_captions
        if row >= len(captions) or col >= self.n_pictures:
            return Reading(**base, note="no caption here: add one in the panel (up to 8)")
        image, texts = tr[cl.EMBED_PICTURES][col].astype(np.float64), tr[cl.EMBED_CAPTIONS].astype(np.float64)
        scale = float(np.exp(live.weights["logit_scale"][0])) if live.weights is not None else float("nan")
        logits = texts @ image * scale
        e = np.exp(logits - logits.max())
        p = e / e.sum()
        cos = float(texts[row] @ image)
        return Reading(**base, indices=f"caption {row} '{captions[row]}', {self.column_name(col)}",
                       value=float(tr[cl.PROBS_ID][row, col]), cell=(row, col),
                       formula=(f"cos = Σ unit image · unit text = {cos:.4f}; score = cos · e^s = {cos:.4f} · "
                                f"{scale:.2f} = {logits[row]:.3f}; softmax over the {len(captions)} captions = "
                                f"exp({logits[row]:.3f}) / Σ exp(scores) = {p[row]:.4f}"))

    def _point_reading(self, live, point: int) -> Reading:
        tr = live.trace
        kind = self.kinds[point]
        n_gallery, n_full = int((self.kinds == "gallery").sum()), int((self.kinds == "full").sum())
        share = tr[cl.SPACE_SHARE]
        if kind == "gallery":
            what, xyz = f"generated picture: {_caption(*self.gallery[point])}", tr[cl.SPACE_GALLERY][point]
        elif kind == "full":
            from llmviz.models.sim.clip_vocab import all_full_captions

            what, xyz = f"caption '{all_full_captions()[point - n_gallery][0]}'", tr[cl.SPACE_CAPTIONS][point - n_gallery]
        elif kind == "picture":
            what, xyz = f"your picture ({live.source})", tr[cl.SPACE_PICTURE][0]
        else:
            k = point - n_gallery - n_full - 1
            what, xyz = f"your caption {k}: '{live.shown_captions[k]}'", tr[cl.SPACE_YOURS][k]
        return Reading("clip.space", label="the shared embedding space (PCA to 3D)", dims="3 principal components",
                       indices=what, formula=("(unit embedding − mean) · PC_i = " + ", ".join(
                           f"PC{i + 1} {v:+.3f}" for i, v in enumerate(xyz))),
                       note=f"the three axes hold {100 * share.sum():.0f}% of the variance of the "
                            f"{n_gallery} generated pictures' and {n_full} captions' unit embeddings")


def _caption(size: str, colour: str, shape: str) -> str:
    return f"{size} {colour} {shape}"
