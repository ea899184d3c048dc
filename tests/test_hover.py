"""The explorer's hover and menus without a window: cell readings, lit source cells, atlas reset, catalog, keys."""
import numpy as np
import pytest

from llmviz.engine.input import InputState, load_bindings, pyglet_key_name
from llmviz.scenes import panels
from llmviz.scenes.hover import STRUCTURE_ONLY, SourceHighlight, read_pick
from llmviz.scenes.registry import build_scene


@pytest.fixture(scope="module")
def renderer():
    headless = pytest.importorskip("llmviz.engine.render.headless")
    r = headless.headless_renderer((320, 180))
    yield r
    r.release()


@pytest.fixture(scope="module")
def nano(renderer):
    scene = build_scene("nano-gpt", renderer)
    assert scene.wait_for_values(), scene.live.session.error
    yield scene
    scene.close()


def _highlight(renderer, region):
    x, y, cols, rows = (int(v) for v in region)
    data = renderer.highlight_atlas.read(alignment=1)
    size = renderer.data_packer.width
    return np.frombuffer(data, np.uint8).reshape(size, size)[y:y + rows, x:x + cols]


def test_a_cell_reading_explains_the_value_and_lights_its_sources(nano, renderer):
    model, live = nano.model, nano.live
    trace = live.session.trace
    slot = model.slot_of("blocks.0.mlp.fc")
    reading = read_pick(model, live, slot, (2, 5))
    assert reading.value == pytest.approx(float(trace["blocks.0.mlp.fc"][2, 5]))
    assert reading.indices == "t=2, f=5" and "b + " in reading.formula and "=" in reading.formula
    assert {s.tensor_id for s in reading.sources} == {"blocks.0.ln2.out", "blocks.0.mlp.fc.weight",
                                                      "blocks.0.mlp.fc.bias"}
    highlight = SourceHighlight(renderer, model)
    lit = highlight.show(reading)
    assert lit == 48 + 48 + 1 + 1  # the LN row, the weight row, the bias, and the hovered cell itself
    ln = _highlight(renderer, model.regions[model.layout.index("blocks.0.ln2.out")])
    assert ln[2].all() and not np.delete(ln, 2, axis=0).any()
    weight = _highlight(renderer, model.regions[model.layout.index("blocks.0.mlp.fc.weight")])
    assert weight[5].all() and weight.sum() == 48 * 255
    bias = _highlight(renderer, model.regions[model.layout.index("blocks.0.mlp.fc.bias")])
    assert bias.shape == (1, 192) and bias[0, 5] and bias.sum() == 255  # a 1-D weight is a row
    highlight.show(None)
    assert not highlight.marked
    for tensor_id in ("blocks.0.ln2.out", "blocks.0.mlp.fc.weight", "blocks.0.mlp.fc", "blocks.0.mlp.fc.bias"):
        assert not _highlight(renderer, model.regions[model.layout.index(tensor_id)]).any()


def test_one_dimensional_tensors_read_as_columns_and_rows(nano, renderer):
    model, live = nano.model, nano.live
    mean = read_pick(model, live, model.slot_of("blocks.1.ln1.mean"), (3, 0))  # an activation (t,): a column
    assert mean.value == pytest.approx(float(live.session.trace["blocks.1.ln1.mean"][3]))
    assert mean.formula.startswith("mean of this row")
    highlight = SourceHighlight(renderer, model)
    highlight.show(mean)
    resid = _highlight(renderer, model.regions[model.layout.index("blocks.0.resid2")])
    assert resid[3].all() and resid.sum() == 48 * 255
    own = _highlight(renderer, model.regions[model.layout.index("blocks.1.ln1.mean")])
    assert own.shape == (11, 1) and own[3, 0] and own.sum() == 255
    highlight.clear()
    gamma = read_pick(model, live, model.slot_of("blocks.1.ln1.weight"), (0, 7))  # a weight (48,): a row
    assert gamma.value == pytest.approx(float(live.session.weights["blocks.1.ln1.weight"][7]))
    assert gamma.indices == "i=7" and not gamma.formula and not gamma.sources


def test_rows_past_the_tokens_say_no_token_yet(nano):
    model, live = nano.model, nano.live
    n = len(live.session.trace["tokens"])
    reading = read_pick(model, live, model.slot_of("probs"), (n + 1, 0))
    assert reading.value is None and reading.note == "no token here yet"
    letter = read_pick(model, live, model.slot_of("probs"), (0, 2))
    assert "letter C" in letter.note and letter.formula.startswith("softmax")


def test_groups_count_every_block_below_them(nano):
    model = nano.model
    slot = int(model.group_slots[model.layout.group_ids.index("blocks.0")])
    reading = read_pick(model, nano.live, slot, None)
    inside = sum(1 for i in model.layout.ids if i.startswith("blocks.0."))
    assert reading.tensor_id == "blocks.0" and f"{inside:,} tensor blocks" in reading.note


def test_structure_only_blocks_give_their_true_dimensions():
    scene = build_scene("gpt-3")
    model = scene.model
    row = model.layout.index("blocks.0.attn.proj.weight")
    reading = read_pick(model, None, int(model.block_slots[row]), None)
    assert reading.note == STRUCTURE_ONLY and reading.dims == "12288 × 12288 cells" and "W_o" in reading.label


def test_reset_data_empties_the_atlases_and_the_packer(renderer):
    x, y = renderer.alloc_data(4, 5)
    renderer.write_data(x, y, np.ones((4, 5), np.float32))
    renderer.write_highlight(x, y, np.ones((4, 5)))
    renderer.reset_data()
    assert renderer.data_packer.used_texels == 0 and renderer.alloc_data(2, 2) == (0, 0)
    assert not np.frombuffer(renderer.data_atlas.read(), np.float32).any()
    assert not np.frombuffer(renderer.highlight_atlas.read(alignment=1), np.uint8).any()


def test_the_model_menu_lists_every_model_and_the_stress_test():
    from llmviz.models.registry import load_registry

    catalog = panels.model_catalog()
    assert [e.scene for e in catalog[:-1]] == list(load_registry().ids())
    assert catalog[-1].scene == panels.STRESS_SCENE
    by_id = {e.scene: e for e in catalog}
    assert "(live)" in by_id["nano-gpt"].tags
    assert "active" in by_id["mixtral-8x7b"].params and by_id["gpt-3-175b"].params == "174.6B"
    assert "(speculative)" in by_id["gpt-4"].tags  # its name says "RUMOURED", not "speculative"


def test_presets_put_the_keyed_five_first():
    presets = {"overview": 0, "embedding": 0, "first block": 0, "first head": 0, "last block": 0, "output": 0}
    assert panels.ordered_presets(presets) == ["overview", "embedding", "first block", "last block", "output",
                                               "first head"]


def test_model_and_preset_keys_are_bound():
    state = InputState(load_bindings())
    for key, action in (("BRACKETRIGHT", "next_model"), ("BRACKETLEFT", "previous_model"), ("F5", "preset_1"),
                        ("F9", "preset_5"), ("SPACE", "play_pause"), ("N", "next")):
        state.key_down(key)
        assert state.frame(0.016).was_pressed(action), key
        state.key_up(key)
    from llmviz.engine.input import _pyglet_key_module

    key = _pyglet_key_module()
    assert pyglet_key_name(key.BRACKETRIGHT) == "BRACKETRIGHT" and pyglet_key_name(key.F9) == "F9"
