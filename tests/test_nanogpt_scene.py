"""The live nano-GPT scene: every cell on screen is the trace's value, and hovering a cell reports it."""
import numpy as np
import pytest
from scene_support import live_scene

from llmviz.engine.picking import pick
from llmviz.engine.render import colormaps
from llmviz.engine.runtime import Engine
from llmviz.models.sim.tensor_ids import activation_ids, weight_ids
from llmviz.scenes.inspect import array_index, inspect_cell
from llmviz.scenes.model_paths import preset_camera
from llmviz.scenes.registry import build_scene

SIZE = (1280, 720)


@pytest.fixture(scope="module")
def rendered():
    with live_scene("nano-gpt", SIZE) as (scene, renderer):
        camera = preset_camera(scene.presets["first head"], SIZE, scene.model.layout)
        engine = Engine(scene.world, camera, renderer)
        scene.attach(engine)
        frame = engine.frame(0.0)
        yield scene, engine, frame, renderer.read_pixels()


def cell_center(layout, row_index, r, c):
    center, size = layout.center[row_index], layout.size[row_index]
    rows, cols = layout.rows[row_index], layout.cols[row_index]
    return np.array([center[0] - size[0] / 2 + (c + 0.5) * size[0] / cols,
                     center[1] + size[1] / 2 - (r + 0.5) * size[1] / rows,
                     center[2] + size[2] / 2])


def detailed_blocks(scene, frame, min_cell_px=6.0):
    """Data blocks drawn at full detail whose cells are big enough on screen to sample."""
    layout, world = scene.model.layout, scene.world
    drawn = set(frame.visibility.drawn.tolist())
    out = []
    for row_index, tensor_id in enumerate(layout.ids):
        slot = scene.model.block_slots[row_index]
        if slot not in drawn or world["lod"]["level"][slot] != 0 or not scene.model.has_data(tensor_id):
            continue
        a = frame.camera.project(cell_center(layout, row_index, 0, 0))[0]
        b = frame.camera.project(cell_center(layout, row_index, min(1, layout.rows[row_index] - 1),
                                             min(1, layout.cols[row_index] - 1)))[0]
        if min(abs(b[0] - a[0]) or 99, abs(b[1] - a[1]) or 99) >= min_cell_px:
            out.append(row_index)
    return out


def test_trace_and_weight_ids_all_have_blocks(rendered):
    scene = rendered[0]
    ids = set(scene.model.layout.ids)
    expected = {i for i, _ in activation_ids(3, 3)} | {i for i, _ in weight_ids(3, 3)}
    assert expected <= ids
    session = scene.live.session
    assert set(session.trace.keys()) <= ids and set(session.weights.keys()) <= ids


def test_cells_on_screen_show_the_trace_values(rendered):
    scene, engine, frame, image = rendered
    layout, world, session = scene.model.layout, scene.world, scene.live.session
    rng = np.random.default_rng(0)
    blocks = detailed_blocks(scene, frame)
    assert len(blocks) >= 5
    checked = matched = 0
    for row_index in blocks:
        tensor_id = layout.ids[row_index]
        values = (session.trace if tensor_id in session.trace else session.weights)[tensor_id]
        slot = scene.model.block_slots[row_index]
        vmin, vmax = world["datatex"]["value_range"][slot]
        cmap = int(world["datatex"]["colormap"][slot])
        for _ in range(6):
            r, c = int(rng.integers(layout.rows[row_index])), int(rng.integers(layout.cols[row_index]))
            index = array_index(values, int(layout.rows[row_index]), r, c)
            if index is None or not np.isfinite(values[index]):
                continue
            px, py, depth = frame.camera.project(cell_center(layout, row_index, r, c))[0]
            if not (0 <= px < SIZE[0] and 0 <= py < SIZE[1]) or depth <= 0:
                continue
            expected = np.round(colormaps.apply([values[index]], vmin, vmax, cmap)[0] * 255)
            got = image[int(py), int(px), :3].astype(int)
            checked += 1
            matched += np.abs(got - expected).max() <= 6
    assert checked >= 20
    # A caption may lie over a cell here and there; nearly every sampled cell is exact.
    assert matched >= 0.9 * checked, (matched, checked)


def test_hovering_a_cell_reports_the_trace_value(rendered):
    scene, engine, frame, image = rendered
    layout, session = scene.model.layout, scene.live.session
    reported = 0
    for tensor_id in ("blocks.0.attn.head.0.q", "blocks.0.attn.head.0.k", "blocks.0.attn.head.0.v",
                      "blocks.0.attn.head.0.scores", "blocks.0.attn.head.0.softmax", "blocks.0.attn.head.0.out"):
        row_index = layout.index(tensor_id)
        r, c = 3, 1
        px, py, _ = frame.camera.project(cell_center(layout, row_index, r, c))[0]
        if not (0 <= px < SIZE[0] and 0 <= py < SIZE[1]):
            continue
        hit = pick(scene.world, frame.visibility.drawn, *frame.camera.ray(px, py))
        assert hit is not None and scene.model.tensor_at(hit.slot) == tensor_id and hit.cell == (r, c)
        info = inspect_cell(scene.model, scene.live, hit.slot, hit.cell)
        assert info.value == pytest.approx(float(session.trace[tensor_id][r, c]))
        assert info.explanation.recomputed == pytest.approx(info.value, abs=1e-4)
        assert tensor_id in info.text
        reported += 1
    assert reported >= 3


def test_structure_only_models_say_so():
    scene = build_scene("gpt-3")
    assert scene.live is None and "structure only" in scene.status
    slot = int(scene.model.block_slots[0])
    info = inspect_cell(scene.model, scene.live, slot, (0, 0))
    assert "structure only" in info.text
    assert "speculative" in build_scene("gpt-4").status
