"""The colour legend (issue 10, defect 2): the maps and ranges of the data cells in view, "−∞ masked" and
"empty" where such cells are on screen, and a bar coloured exactly as the shader colours the cells."""
import dataclasses
import json

import numpy as np
import pytest
from scene_support import live_scene

from llmviz.engine.camera import Camera
from llmviz.engine.ecs.world import World
from llmviz.engine.render import colormaps
from llmviz.engine.runtime import Engine
from llmviz.scenes.legend import (BAR_WIDTH, EMPTY_TEXT, MASKED_DARK_RGB, MASKED_LIGHT_RGB, MASKED_TEXT, LegendView,
                                  draw_legend, legend_entries)
from llmviz.scenes.model_paths import preset_camera

SIZE = (1280, 720)


@pytest.fixture(scope="module")
def nano():
    with live_scene("nano-gpt", SIZE) as (scene, renderer):
        yield scene, renderer


def view(scene, renderer, preset):
    engine = Engine(scene.world, preset_camera(scene.presets[preset], SIZE, scene.model.layout), renderer)
    frame = engine.frame(0.0)
    return engine, frame


def detailed_data_blocks(scene, frame):
    """Tensor ids of the data blocks drawn with their cells (full detail), from the frame itself."""
    world, model = scene.world, scene.model
    drawn = frame.visibility.drawn
    level = world["lod"]["level"][drawn]
    return [model.tensor_at(int(s)) for s in drawn[level == 0]
            if model.tensor_at(int(s)) is not None and model.has_data(model.tensor_at(int(s)))]


def values_of(scene, tensor_id):
    session = scene.live.session
    return np.asarray((session.trace if tensor_id in session.trace else session.weights)[tensor_id], np.float64)


def as_shown(scene, tensor_id):
    """The array as its block shows it (a vector down a column when the block has several rows, else
    along a row) and the block's (rows, cols)."""
    layout = scene.model.layout
    i = layout.index(tensor_id)
    rows, cols = int(layout.rows[i]), int(layout.cols[i])
    v = values_of(scene, tensor_id)
    if v.ndim == 1:
        v = v[:, None] if rows > 1 or cols == 1 else v[None, :]
    return v, (rows, cols)


def is_signed(tensor_id):
    """Tensors shown as signed values: all but probabilities, token ids and standard deviations."""
    return not tensor_id.endswith((".softmax", "probs", "tokens", ".std"))


def test_nanogpt_head_shows_signed_and_probability_maps_with_their_ranges(nano):
    scene, renderer = nano
    engine, frame = view(scene, renderer, "first head")
    legend = legend_entries(scene.world, frame.visibility.drawn, scene.live.cells)
    ids = detailed_data_blocks(scene, frame)
    assert any(i.endswith(".softmax") for i in ids) and any(i.endswith(".q") for i in ids)
    maps = {e.name: e for e in legend.entries}
    assert set(maps) == {"diverging", "viridis"}
    # Probabilities: one bar 0..1 whatever the values (a softmax row sums to 1).
    probs = maps["viridis"]
    assert (probs.lo, probs.hi, probs.per_block) == (0.0, 1.0, False)
    assert "softmax" in probs.names
    # Signed values: each block scaled to its own largest |value|; the bar says from how small to how big.
    signed = maps["diverging"]
    tops = [np.abs(v[np.isfinite(v)]).max() for i in ids if is_signed(i) for v in [values_of(scene, i)]]
    assert signed.per_block and signed.symmetric
    assert signed.scale == pytest.approx((min(tops), max(tops)), rel=1e-6)
    assert (signed.lo, signed.hi) == pytest.approx((-max(tops), max(tops)), rel=1e-6)
    assert [t for _, t in signed.ticks()] == ["−m", "0", "+m"]


def test_masked_and_empty_flags_follow_what_is_in_view(nano):
    scene, renderer = nano
    for preset in ("first head", "embedding", "output"):
        engine, frame = view(scene, renderer, preset)
        legend = legend_entries(scene.world, frame.visibility.drawn, scene.live.cells)
        # Reference: the arrays themselves, padded to their blocks as the screen shows them.
        masked = empty = False
        for tensor_id in detailed_data_blocks(scene, frame):
            grid, shape = as_shown(scene, tensor_id)
            masked |= bool(np.isneginf(grid).any())
            empty |= grid.shape != shape or bool(np.isnan(grid).any())
        assert (legend.masked, legend.empty) == (masked, empty), preset
        assert (legend.masked, legend.empty) == ((True, True) if preset == "first head" else (False, True))
        report = legend.report()
        assert ({"swatch": MASKED_TEXT} in report) == masked and ({"swatch": EMPTY_TEXT} in report) == empty
        json.dumps(report)  # plain data


def test_uploads_update_the_flags_and_the_cached_view(nano):
    scene, renderer = nano
    engine, frame = view(scene, renderer, "embedding")
    legend_view = LegendView()
    before = legend_view.update(engine, scene.live.cells)
    assert not before.masked
    # A chapter writes its animated values through the same method: a −∞ on a block in view is seen.
    tensor_id = "embed.tok"
    values = values_of(scene, tensor_id).astype(np.float32)
    changed = values.copy()
    changed[0, 0] = -np.inf
    try:
        scene.model.write_values(renderer, {tensor_id: changed})
        assert legend_view.update(engine, scene.live.cells).masked
    finally:
        scene.model.write_values(renderer, {tensor_id: values})
    assert not legend_view.update(engine, scene.live.cells).masked


def test_a_structure_only_model_has_no_colour_bar_only_its_masks():
    """No values, so no colour bar; what a structure-only model does show is its causal masks (the −∞
    cells, painted at build) beside empty cells, and the legend names exactly those two."""
    headless = pytest.importorskip("llmviz.engine.render.headless")
    from llmviz.scenes.legend import cells_in_view, scene_cells
    from llmviz.scenes.registry import build_scene

    renderer = headless.headless_renderer((640, 360))
    scene = build_scene("gpt-3-175b", renderer)
    try:
        layout = scene.model.layout
        mask = layout.index("blocks.0.attn.head.0.scores_masked")
        near = Camera(position=layout.center[mask] + [0.0, 0.0, 4.0 * layout.size[mask, 0]], viewport=(640, 360))
        near.look_at(layout.center[mask])
        overview = preset_camera(scene.presets["overview"], (640, 360), layout)
        for camera, masks_drawn in ((overview, False), (near, True)):
            engine = Engine(scene.world, camera, renderer)
            frame = engine.frame(0.0)
            assert len(frame.visibility.drawn) > 0
            legend = LegendView().update(engine, scene_cells(scene))
            assert legend.entries == ()
            masks = scene.model.block_slots[scene.model.masked_rows]
            in_view = np.intersect1d(cells_in_view(scene.world, frame.visibility.drawn), masks)
            assert (len(in_view) > 0) == masks_drawn
            assert legend.report() == ([{"swatch": MASKED_TEXT}, {"swatch": EMPTY_TEXT}] if masks_drawn else [])
    finally:
        scene.close()
        renderer.release()


# ---------------------------------------------------------------- the bar is the shader's colours

CELL_SIZE = (640, 480)
COLUMNS = 16


@pytest.fixture(scope="module")
def ui_renderer():
    headless = pytest.importorskip("llmviz.engine.render.headless")
    r = headless.headless_renderer(CELL_SIZE)
    from llmviz.scenes.explorer.controller import UiHost

    ui = UiHost(r, CELL_SIZE)
    yield r, ui
    r.release()


def block_world(renderer, values, colormap, lo, hi):
    """One data block facing the camera in the upper half of the view, showing ``values`` (rows, cols)."""
    world = World()
    rows, cols = values.shape
    ids = world.spawn(1, transform={"position": (0.0, 0.9, 0.0), "scale": (4.0, 4.0 * rows / cols, 0.1)}, bounds={},
                      renderable={"color": (0.5, 0.5, 0.5, 1.0)}, lod={"thresholds": (1.0, 0.5, 0.0, 0.0)})
    x, y = renderer.alloc_data(rows, cols)
    renderer.write_data(x, y, values)
    world.add("datatex", ids, region=(x, y, cols, rows), value_range=(lo, hi), colormap=colormap)
    return world, ids


def draw_frame(renderer, ui, engine, legend, bars):
    from imgui_bundle import imgui

    engine.frame(0.0)
    ui.resize(CELL_SIZE)
    ui.io.delta_time = 1 / 60
    imgui.new_frame()
    bars.clear()
    rect = draw_legend(legend, 0.0, CELL_SIZE[1], bars=bars)
    imgui.render()
    ui.renderer.render(imgui.get_draw_data())
    renderer.ctx.finish()
    return rect, renderer.read_pixels()[:, :, :3].astype(int)


@pytest.mark.parametrize("colormap,lo,hi", [(colormaps.COLORMAP_DIVERGING, -2.5, 2.5), (colormaps.COLORMAP_VIRIDIS, 0.0, 1.0)])
def test_bar_and_swatches_show_the_colours_the_shader_gives_the_cells(ui_renderer, colormap, lo, hi):
    renderer, ui = ui_renderer
    renderer.reset_data()
    values = np.empty((2, COLUMNS), np.float32)
    # Values at the centres of 16 pixel columns of the bar (from its second pixel to its last but one).
    bar_px = np.round(np.linspace(1, BAR_WIDTH - 2, COLUMNS))
    values[0] = lo + (bar_px + 0.5) / BAR_WIDTH * (hi - lo)
    values[1, : COLUMNS // 2] = -np.inf
    values[1, COLUMNS // 2:] = np.nan
    world, ids = block_world(renderer, values, colormap, lo, hi)
    camera = Camera(position=np.array([0.0, 0.9, 6.0]), viewport=CELL_SIZE)
    engine = Engine(world, camera, renderer)
    engine.frame(0.0)
    legend = legend_entries(world, engine.visibility.result.drawn)
    assert len(legend.entries) == 1
    legend = dataclasses.replace(legend, masked=True, empty=True)  # the flags' own tests are above
    entry = legend.entries[0]
    assert (entry.colormap, entry.lo, entry.hi) == (colormap, lo, hi)
    bars = []
    draw_frame(renderer, ui, engine, legend, bars)  # an auto-sized window shows from its second frame
    rect, image = draw_frame(renderer, ui, engine, legend, bars)
    assert rect is not None and rect[1] + rect[3] <= CELL_SIZE[1]
    drawn = dict((k if isinstance(k, str) else "bar", v) for k, v in bars)

    # The cells as the shader draws them: their centres' pixels.
    center, size = np.array([0.0, 0.9, 0.05]), np.array([4.0, 0.5])
    def cell_pixel(r, c):
        p = center + [-size[0] / 2 + (c + 0.5) * size[0] / COLUMNS, size[1] / 2 - (r + 0.5) * size[1] / 2, 0.0]
        px, py, _ = camera.project(p)[0]
        return image[int(py), int(px)]

    bx, by, bw, bh = drawn["bar"]
    assert bw == BAR_WIDTH and bx == int(bx)  # pixel columns of the bar are whole pixels
    expected = np.round(colormaps.apply(values[0], lo, hi, colormap) * 255)
    for c in range(COLUMNS):
        cell = cell_pixel(0, c)
        bar = image[int(by + bh / 2), int(bx + bar_px[c])]
        assert np.abs(cell - expected[c]).max() <= 3, (c, cell, expected[c])
        assert np.abs(bar - cell).max() <= 3, (c, bar, cell)

    # The swatches: the empty cell's colour; the masked cell's two stripe colours.
    sx, sy, sw, sh = drawn[EMPTY_TEXT]
    empty_swatch = image[int(sy + sh / 2), int(sx + sw / 2)]
    assert np.abs(empty_swatch - cell_pixel(1, COLUMNS - 2)).max() <= 3
    assert np.abs(cell_pixel(1, COLUMNS - 2) - np.round(colormaps.NAN_RGB * 255)).max() <= 3
    mx, my, mw, mh = drawn[MASKED_TEXT]
    swatch = image[int(my) + 2: int(my + mh) - 2, int(mx) + 2: int(mx + mw) - 2].reshape(-1, 3)
    x0, _, _ = camera.project(center + [-size[0] / 2, -size[1] / 2 + 0.05, 0])[0]
    x1, y1, _ = camera.project(center + [0.0, -size[1] / 2 + 0.05, 0])[0]
    hatched = image[int(y1) - 8: int(y1) - 2, int(x0) + 4: int(x1) - 4].reshape(-1, 3)
    for rgb in (MASKED_DARK_RGB, MASKED_LIGHT_RGB):
        want = np.round(np.array(rgb) * 255)
        assert (np.abs(hatched - want).max(axis=1) <= 3).any(), rgb   # the shader draws this stripe colour...
        assert (np.abs(swatch - want).max(axis=1) <= 3).any(), rgb    # ...and so does the swatch
