"""The drawn frame as an SVG schematic: the blocks the renderer drew, projected with the same camera, as vector shapes.

Input is what the engine's last frame handed the renderer (the instancing batches and their entity
slots, the label layout), so the schematic shows exactly the blocks, levels of detail and labels a
``llmviz render --no-ui`` of that view shows. Each drawn box becomes its faces that look at the camera,
shaded as shaders/common.glsl shades them, painted far to near (boxes are thin slabs that do not
interpenetrate, so painter's order is their depth order). A model's block is a ``<g class="block">``
titled with its tensor id; its data cells (full detail only) are a grid of small polygons up to
``MAX_BLOCK_CELLS`` cells, an embedded PNG above it (placed by the affine map through three corners of
its face: exact for the near-orthographic views of a schematic, a fraction of a cell off at the far
corner under strong perspective). The residual stream and connections (thin boxes) become ``<path>``
strokes, labels real ``<text>`` (selectable, searchable), and the legend a group of gradient bars.
Boxes reaching behind the camera are left out (counted in ``Schematic.counts``).
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from llmviz.engine.math3d import quat_to_matrix
from llmviz.engine.render import colormaps
from llmviz.engine.render.backend import INSTANCE_DIMMED, INSTANCE_HIGHLIGHTED, INSTANCE_SLICES, MATERIAL_TRANSLUCENT
from llmviz.engine.render.meshes import LOD_DETAIL
from llmviz.engine.render.text import LINE_HEIGHT_EM

MAX_BLOCK_CELLS = 1024    # a block's cells as polygons up to this many; an image beyond
MAX_TOTAL_CELLS = 60_000  # all polygons of cells together (a file a browser opens quickly); images beyond
FONT = "DejaVu Sans, Verdana, sans-serif"  # the bundled font first
# shaders/common.glsl's face shading and style(): a key light fixed to the camera.
KEY_LIGHT = np.array([-0.35, 0.6, 0.72]) / np.linalg.norm([-0.35, 0.6, 0.72])
AMBIENT, DIFFUSE = 0.45, 0.55
OUTLINE_SHADE = 0.35  # shaders/box.glsl: edges in the block's colour times this
GRID_LINE_CELL_PX = 6.0  # shaders/box.glsl fades grid lines in between 3 and 8 px cells
OUTLINE_PX = 0.6
HIGHLIGHT_OUTLINE, HIGHLIGHT_OUTLINE_PX = "#ffd140", 2.5  # shaders/box.glsl: a highlighted block's frame
MIN_LINE_PX = 0.75  # a connection thinner than this on screen is still drawn (the rasteriser drops some)  # the shader's 1-pixel outline lies inside the face; an SVG stroke straddles the edge
MASKED_DARK, MASKED_LIGHT = "#0d0d12", "#454552"  # legend.MASKED_*_RGB: a −∞ cell's stripes

# The unit cube's corners (index bits: x, y, z) and its faces as corner loops, with their normals.
_CORNERS = np.array([[(i & 1) - 0.5, ((i >> 1) & 1) - 0.5, ((i >> 2) & 1) - 0.5] for i in range(8)])
_FACES = np.array([[1, 3, 7, 5], [0, 4, 6, 2], [2, 6, 7, 3], [0, 1, 5, 4], [4, 5, 7, 6], [0, 2, 3, 1]])
_NORMALS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], np.float64)


COUNTED_AS = {"block": "blocks", "line": "lines", "group": "groups", "box": "boxes"}


@dataclass
class Schematic:
    svg: str
    counts: dict = field(default_factory=dict)  # blocks, lines, groups, boxes, labels, cells, images, behind
    block_ids: list = field(default_factory=list)  # tensor id of each <g class="block">, in drawing order


def _hex(rgb) -> str:
    c = np.clip(np.round(np.asarray(rgb, np.float64) * 255.0), 0, 255).astype(int)
    return f"#{c[0]:02x}{c[1]:02x}{c[2]:02x}"


def _points(quad: np.ndarray) -> str:
    return " ".join(f"{x:.2f},{y:.2f}" for x, y in quad)


def face_shade(view_normals: np.ndarray) -> np.ndarray:
    """shaders/common.glsl face_shade: 1 for a face looking at the camera, darker by angle to the key light."""
    lit = AMBIENT + DIFFUSE * np.maximum(view_normals @ KEY_LIGHT, 0.0)
    return np.minimum(lit / (AMBIENT + DIFFUSE * KEY_LIGHT[2]), 1.0)


def styled(rgb: np.ndarray, alpha: np.ndarray, flags: np.ndarray, background) -> tuple[np.ndarray, np.ndarray]:
    """shaders/common.glsl style(): highlighted brightens, dimmed greys towards the background and fades."""
    rgb, alpha = rgb.copy(), alpha.copy()
    high = (flags & INSTANCE_HIGHLIGHTED) != 0
    rgb[high] = rgb[high] * 0.7 + 0.3
    dim = (flags & INSTANCE_DIMMED) != 0
    luma = rgb[dim] @ np.array([0.299, 0.587, 0.114])
    grey = rgb[dim] * 0.15 + luma[:, None] * 0.85
    rgb[dim] = grey * 0.45 + np.asarray(background)[:3] * 0.55
    alpha[dim] *= 0.4
    return rgb, alpha


def cell_colors(values: np.ndarray, lo: float, hi: float, colormap: int) -> np.ndarray:
    """RGB of data cells as the shader colours them (−∞ as the hatch's dark stripe, NaN as empty)."""
    rgb = colormaps.apply(np.where(np.isinf(values), np.nan, values), lo, hi, colormap)
    rgb[np.isinf(values)] = int(MASKED_DARK[1:3], 16) / 255.0
    return rgb


def _png_data_uri(rgb: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8), "RGB").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class _Writer:
    """The schematic's elements, in drawing order."""

    def __init__(self, engine, scene, renderer):
        self.engine, self.scene, self.renderer = engine, scene, renderer
        self.camera = engine.camera
        self.parts: list[str] = []
        self.counts = {"blocks": 0, "lines": 0, "groups": 0, "boxes": 0, "labels": 0, "cells": 0, "images": 0,
                       "behind": 0}
        self._atlas = None
        self.background = engine.clear_color
        self.block_ids: list[str] = []

    def atlas(self) -> np.ndarray:
        if self._atlas is None:
            self._atlas = self.renderer.read_data()
        return self._atlas

    # ------------------------------------------------------------------ boxes
    def boxes(self) -> None:
        instancing = self.engine.instancing
        # The entities' batches only: the pulses and packets in flight that systems append after them
        # (scenes/flow_pulses.py, engine/systems/packets.py) are moments of an animation, not the schematic.
        batches = instancing.batches[:len(instancing.batch_slots)]
        if not batches:
            return
        rows = np.concatenate([b.instances for b in batches]).astype(np.float64)
        slots = np.concatenate(instancing.batch_slots)
        lods = np.concatenate([np.full(len(b.instances), b.lod) for b in batches])
        translucent = np.concatenate([np.full(len(b.instances), b.material == MATERIAL_TRANSLUCENT)
                                      for b in batches])
        center, size = rows[:, INSTANCE_SLICES["center"]], rows[:, INSTANCE_SLICES["size"]]
        rotation = quat_to_matrix(rows[:, INSTANCE_SLICES["rotation"]])  # (n, 3, 3)
        # World corners (n, 8, 3), their pixels and depths.
        corners = center[:, None, :] + np.einsum("nij,nkj->nki", rotation, _CORNERS[None] * size[:, None, :])
        projected = self.camera.project(corners.reshape(-1, 3)).reshape(len(rows), 8, 3)
        in_front = (projected[..., 2] > self.camera.near).all(axis=1)
        self.counts["behind"] = int((~in_front).sum())
        eye = np.asarray(self.camera.position, np.float64)
        depth = (center - eye) @ np.asarray(self.camera.forward, np.float64)
        normals = np.einsum("nij,fj->nfi", rotation, _NORMALS)  # (n, 6, 3) world normals
        face_centres = center[:, None, :] + np.einsum("nij,nfj->nfi", rotation, _NORMALS * 0.5 * size[:, None, :])
        facing = np.einsum("nfi,nfi->nf", eye - face_centres, normals) > 0
        view_rotation = self.camera.view()[:3, :3]
        shade = face_shade(normals @ view_rotation.T)
        rgb = rows[:, INSTANCE_SLICES["color"]][:, :3]
        alpha = rows[:, INSTANCE_SLICES["color"]][:, 3]
        flags = rows[:, INSTANCE_SLICES["flags"]][:, 0].astype(np.int64)
        kinds = self._kinds(slots)
        # Lines first: they lie inside the blocks' depth, so a block covers any line it overlaps; then the
        # opaque boxes far to near, then the translucent ones (the renderer blends them after, far to near).
        is_line = np.array([k == "line" for k in kinds], bool)
        order = np.lexsort((-depth, translucent, ~is_line))
        for i in order:
            if not in_front[i]:
                continue
            kind = kinds[i]
            if kind == "line":
                self._line(rows[i], rotation[i], projected[i], rgb[i] * shade[i, 4], alpha[i], flags[i], depth[i])
                continue
            faces = []
            for f in np.flatnonzero(facing[i]):
                face_rgb, face_alpha = styled((rgb[i] * shade[i, f])[None], alpha[i:i + 1], flags[i:i + 1],
                                              self.background)
                faces.append((f, face_rgb[0], face_alpha[0]))
            self._box(kind, slots[i], rows[i], rotation[i], projected[i], faces, lods[i], flags[i])

    def _kinds(self, slots: np.ndarray) -> list[str]:
        model = getattr(self.scene, "model", None)
        if model is None:
            return ["box"] * len(slots)
        row = np.take(model.row_of_slot, slots, mode="clip")
        row[slots >= len(model.row_of_slot)] = -1
        lines = np.isin(slots, model.line_slots) if model.line_slots is not None else np.zeros(len(slots), bool)
        groups = np.isin(slots, model.group_slots)
        return ["block" if r >= 0 else "line" if ln else "group" if g else "box"
                for r, ln, g in zip(row.tolist(), lines.tolist(), groups.tolist())]

    def _box(self, kind, slot, row, rotation, projected, faces, lod, flags) -> None:
        px = projected[:, :2]
        title = ""
        if kind == "block":
            tensor = self.scene.model.tensor_at(int(slot))
            self.block_ids.append(tensor)
            title = f"<title>{escape(tensor)}</title>"
            opening = f'<g class="block" data-id={quoteattr(tensor)}>'
        else:
            opening = f'<g class="{kind}">'
        self.counts[COUNTED_AS[kind]] += 1
        parts = [opening, title]
        region = row[INSTANCE_SLICES["region"]]
        cols, rows_n = int(region[2]), int(region[3])
        for f, rgb, alpha in faces:
            quad = px[_FACES[f]]
            opacity = f' fill-opacity="{alpha:.3f}"' if alpha < 0.999 else ""
            highlighted = bool(flags & INSTANCE_HIGHLIGHTED)
            outline = HIGHLIGHT_OUTLINE if highlighted else _hex(rgb * OUTLINE_SHADE) if kind != "group" else "none"
            outline_px = HIGHLIGHT_OUTLINE_PX if highlighted else OUTLINE_PX
            data_face = f in (4, 5) and cols > 0 and rows_n > 0 and lod == LOD_DETAIL
            if data_face:
                parts.append(self._cells(row, rotation, f, cols, rows_n, flags, alpha))
            else:
                parts.append(f'<polygon points="{_points(quad)}" fill="{_hex(rgb)}"{opacity}/>')
            if outline != "none":  # the shader mixes the outline in before the alpha: it fades with the face
                stroke_fade = f' stroke-opacity="{alpha:.3f}"' if alpha < 0.999 else ""
                parts.append(f'<polygon points="{_points(quad)}" fill="none" stroke="{outline}" '
                             f'stroke-width="{outline_px}"{stroke_fade}/>')
        parts.append("</g>")
        self.parts.append("".join(parts))

    def _cells(self, row, rotation, face, cols, rows_n, flags, alpha) -> str:
        """A data face: one polygon of one colour, a grid of cell polygons, or an embedded image."""
        x, y = int(row[INSTANCE_SLICES["region"]][0]), int(row[INSTANCE_SLICES["region"]][1])
        lo, hi = row[INSTANCE_SLICES["value_range"]]
        values = self.atlas()[y:y + rows_n, x:x + cols]
        rgb = cell_colors(values, lo, hi, int(row[INSTANCE_SLICES["colormap"]][0]))
        if flags & INSTANCE_DIMMED:
            rgb, _ = styled(rgb.reshape(-1, 3), np.ones(rgb.size // 3), np.full(rgb.size // 3, flags),
                            self.background)
            rgb = rgb.reshape(rows_n, cols, 3)
        z = 0.5 if face == 4 else -0.5
        center, size = row[INSTANCE_SLICES["center"]], row[INSTANCE_SLICES["size"]]

        def pixels(u, v):  # face coordinates (u along +x, v down from the top, both 0..1) -> pixels
            local = np.stack([u - 0.5, 0.5 - v, np.full_like(u, z)], axis=-1) * size
            world = center + local @ rotation.T
            return self.camera.project(world.reshape(-1, 3))[:, :2].reshape(*u.shape, 2)

        uniform = np.all(rgb == rgb[0, 0]) or np.isnan(values).all()
        if uniform:
            corners = pixels(np.array([0.0, 1.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0, 1.0]))
            return f'<polygon class="cells" points="{_points(corners)}" fill="{_hex(rgb[0, 0])}"/>'
        n = cols * rows_n
        if n <= MAX_BLOCK_CELLS and self.counts["cells"] + n <= MAX_TOTAL_CELLS:
            self.counts["cells"] += n
            u, v = np.meshgrid(np.arange(cols + 1) / cols, np.arange(rows_n + 1) / rows_n)
            grid = pixels(u, v)  # (rows + 1, cols + 1, 2)
            quads = np.stack([grid[:-1, :-1], grid[:-1, 1:], grid[1:, 1:], grid[1:, :-1]], axis=2)  # (r, c, 4, 2)
            masked = np.isinf(values)
            cells = [f'<polygon points="{_points(q)}" fill="{"url(#masked)" if m else _hex(c)}"/>'
                     for q, c, m in zip(quads.reshape(-1, 4, 2), rgb.reshape(-1, 3), masked.reshape(-1))]
            cell_px = min(np.ptp(grid[..., 0]) / cols, np.ptp(grid[..., 1]) / rows_n)
            # Grid lines as the shader draws them: only once cells are big enough to tell apart.
            lines = ' stroke="#000" stroke-opacity="0.25" stroke-width="0.5"' if cell_px >= GRID_LINE_CELL_PX else ""
            # crispEdges: anti-aliased seams between abutting cells would let the background show through.
            return f'<g class="cells" shape-rendering="crispEdges"{lines}>' + "".join(cells) + "</g>"
        self.counts["images"] += 1
        tl, tr, bl = pixels(np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0]))
        a, b = tr - tl, bl - tl
        return (f'<image class="cells" width="1" height="1" preserveAspectRatio="none" '
                f'style="image-rendering:pixelated" transform="matrix({a[0]:.3f} {a[1]:.3f} {b[0]:.3f} {b[1]:.3f} '
                f'{tl[0]:.2f} {tl[1]:.2f})" href="{_png_data_uri(rgb)}"/>')

    def _line(self, row, rotation, projected, rgb, alpha, flags, depth) -> None:
        """A connection (a thin box) as a stroke along its long axis, as wide as it looks."""
        size = row[INSTANCE_SLICES["size"]]
        axis = int(np.argmax(size))
        center = row[INSTANCE_SLICES["center"]]
        ends = center + np.outer([-0.5, 0.5], rotation[:, axis] * size[axis])
        p = self.camera.project(ends)[:, :2]
        width = max(MIN_LINE_PX, float(np.sort(size)[1]) * self.camera.focal_px / max(depth, 1e-9))
        color, opacity = styled(rgb[None], np.array([alpha]), np.array([flags]), self.background)
        fade = f' stroke-opacity="{opacity[0]:.3f}"' if opacity[0] < 0.999 else ""
        self.parts.append(f'<path class="flow" d="M{p[0, 0]:.2f} {p[0, 1]:.2f} L{p[1, 0]:.2f} {p[1, 1]:.2f}" '
                          f'stroke="{_hex(color[0])}" stroke-width="{width:.2f}"{fade}/>')
        self.counts["lines"] += 1

    # ------------------------------------------------------------------ labels and legend
    def labels(self) -> None:
        selector = self.engine.labels
        if selector is None or not len(selector.last.labels):
            return
        laid = selector.last
        world = self.engine.world
        slots = selector.slots[laid.labels]
        texts = world.labels
        index = world.column("label", "text_index")[slots]
        colors = world.column("label", "color")[slots]
        anchors = self.camera.project(laid.anchors)[:, :2]
        cap = selector.atlas.cap_height
        out = ['<g class="labels" text-anchor="middle" font-family=' + quoteattr(FONT) + ">"]
        for (x, y), em, i, rgba in zip(anchors, laid.pixel_height, index.tolist(), colors):
            lines = texts[i].split("\n") if 0 <= i < len(texts) else []
            block_mid = (cap - (len(lines) - 1) * LINE_HEIGHT_EM) / 2.0
            spans = "".join(f'<tspan x="{x:.2f}" y="{y + (k * LINE_HEIGHT_EM + block_mid) * em:.2f}">'
                            f"{escape(line)}</tspan>" for k, line in enumerate(lines))
            fade = f' fill-opacity="{rgba[3]:.3f}"' if rgba[3] < 0.999 else ""
            out.append(f'<text font-size="{em:.2f}" fill="{_hex(rgba[:3])}"{fade}>{spans}</text>')
        out.append("</g>")
        self.counts["labels"] = len(out) - 2
        self.parts.append("".join(out))

    def legend(self) -> None:
        """The colour legend of the cells in view, bottom left as the explorer places it."""
        from llmviz.scenes.legend import EMPTY_TEXT, MASKED_TEXT, TITLE, LegendView, scene_cells

        legend = LegendView().update(self.engine, scene_cells(self.scene))
        if not legend:
            return
        bar_w, bar_h, line, pad = 180.0, 12.0, 15.0, 8.0
        rows = []  # (y offset, svg) inside the legend box
        y = pad + line
        rows.append(f'<text x="{pad}" y="{y - 3}">{TITLE}</text>')
        for k, entry in enumerate(legend.entries):
            stops = "".join(f'<stop offset="{t:.3f}" stop-color="{_hex(c)}"/>'
                            for t, c in zip(np.linspace(0, 1, 16), entry.colors(np.linspace(0, 1, 16))))
            rows.append(f'<linearGradient id="legend-bar-{k}">{stops}</linearGradient>')
            rows.append(f'<rect class="legend-bar" x="{pad}" y="{y:.1f}" width="{bar_w}" height="{bar_h}" '
                        f'fill="url(#legend-bar-{k})"/>')
            for position, label in entry.ticks():
                anchor = "start" if position == 0 else "end" if position == 1 else "middle"
                rows.append(f'<text x="{pad + position * bar_w:.1f}" y="{y + bar_h + line - 2:.1f}" '
                            f'text-anchor="{anchor}">{escape(label)}</text>')
            y += bar_h + line + 4
            for note in [*entry.scale_note().split("\n"), entry.caption()]:
                if note:
                    rows.append(f'<text x="{pad}" y="{y + line - 4:.1f}" fill="#9ea6b3">{escape(note)}</text>')
                    y += line
        swatch_x = pad
        for label, fill in [(MASKED_TEXT, "url(#masked)")] * legend.masked + [(EMPTY_TEXT, _hex(colormaps.NAN_RGB))] * legend.empty:
            rows.append(f'<rect x="{swatch_x}" y="{y + 2:.1f}" width="14" height="14" fill="{fill}" stroke="#9ea6b3"/>')
            rows.append(f'<text x="{swatch_x + 19}" y="{y + 14:.1f}">{escape(label)}</text>')
            swatch_x += 120
        if legend.masked or legend.empty:
            y += line + 4
        height = y + pad
        width = bar_w + 2 * pad + 110
        top = self.camera.viewport[1] - 8 - height
        self.parts.append(f'<g class="legend" transform="translate(8 {top:.1f})" font-family={quoteattr(FONT)} '
                          f'font-size="12" fill="#e6e8eb"><rect width="{width}" height="{height:.1f}" rx="4" '
                          f'fill="#15181d" fill-opacity="0.85"/>' + "".join(rows) + "</g>")

    def document(self) -> str:
        w, h = self.camera.viewport
        defs = (f'<defs><pattern id="masked" width="8" height="8" patternUnits="userSpaceOnUse" '
                f'patternTransform="rotate(45)"><rect width="8" height="8" fill="{MASKED_DARK}"/>'
                f'<rect width="4" height="8" fill="{MASKED_LIGHT}"/></pattern></defs>')
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
                f'width="{w}" height="{h}" viewBox="0 0 {w} {h}">\n{defs}\n'
                f'<rect class="background" width="{w}" height="{h}" fill="{_hex(self.background[:3])}"/>\n'
                + "\n".join(self.parts) + "\n</svg>\n")


def schematic(engine, scene, renderer) -> Schematic:
    """The SVG of the engine's last frame of ``scene`` (drawn through ``renderer``, whose data atlas holds the cells)."""
    writer = _Writer(engine, scene, renderer)
    writer.boxes()
    writer.labels()
    writer.legend()
    return Schematic(writer.document(), writer.counts, writer.block_ids)
