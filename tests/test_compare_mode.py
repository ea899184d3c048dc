"""Compare mode in the Explorer: the set built off the frame thread, components matched across models, cameras in
step through the real frame, live models on one input and one timeline, and the set's edges (hostile choices,
a model switch, closing)."""
import time

import numpy as np
import pytest

from llmviz.models.registry import load_registry
from llmviz.models.compare import corresponding_id
from llmviz.scenes.explorer.compare import LayoutIndex, focus_group
from llmviz.scenes.layout import layout_model

REGISTRY = load_registry(include_user=False)


def _index(model_id: str) -> LayoutIndex:
    spec = REGISTRY.get(model_id)
    return LayoutIndex(spec, layout_model(spec))


def corresponding_group(source: LayoutIndex, group_id: str, target: LayoutIndex) -> str | None:
    """What camera sync aims at: models/compare.py's corresponding id, a group the target layout draws."""
    found = corresponding_id(source.spec, group_id, target.spec)
    assert found is None or found in target.groups, found
    return found


@pytest.fixture(scope="module")
def indexes():
    return {m: _index(m) for m in ("gpt-2-small", "gpt-2-medium", "mixtral-8x7b", "mistral-7b", "llama-3-8b",
                                   "mamba2-2.7b")}


def test_the_layer_at_the_same_depth_and_the_same_part(indexes):
    small, medium = indexes["gpt-2-small"], indexes["gpt-2-medium"]
    assert corresponding_group(small, "blocks.3.attn", medium) == "blocks.6.attn"
    assert corresponding_group(medium, "blocks.7.mlp", small) == "blocks.4.mlp"   # round(7 × 12 / 24)
    assert corresponding_group(small, "blocks.11", medium) == "blocks.22"
    # layer i of 32 ↔ layer 2i of 64, and attention ↔ the recurrent mixer where a model has no attention
    llama, mamba = indexes["llama-3-8b"], indexes["mamba2-2.7b"]
    for i in (0, 4, 31):
        assert corresponding_group(llama, f"blocks.{i}.attn", mamba) == f"blocks.{2 * i}.mamba"
    assert corresponding_group(mamba, "blocks.9.mamba", llama) == "blocks.5.attn"
    # a mixture of experts ↔ the dense MLP in the same place, both ways; the parts outside the layers by id
    assert corresponding_group(indexes["mixtral-8x7b"], "blocks.5.moe", indexes["mistral-7b"]) == "blocks.5.mlp"
    assert corresponding_group(indexes["mistral-7b"], "blocks.5.mlp", indexes["mixtral-8x7b"]) == "blocks.5.moe"
    assert corresponding_group(small, "embed", medium) == "embed"
    assert corresponding_group(llama, "blocks.3.mlp", mamba) == "blocks.6"    # no MLP there: the whole layer


def test_the_camera_is_at_the_component_it_looks_at(indexes):
    """focus_group reads where the view's centre ray meets the model: a camera straight in front of a group's
    box looks at that group (the smallest of those holding the point), whatever its distance."""
    from llmviz.engine.camera import Camera

    small = indexes["gpt-2-small"]
    layout = small.layout
    for gid in ("blocks.3.attn", "blocks.10.mlp", "embed"):
        center = layout.group_center[layout.group_index(gid)]
        camera = Camera()
        camera.position = np.array([center[0], center[1], 40.0])
        camera.look_at(np.array([center[0], center[1], 0.0]))
        got = small.layout.group_ids[focus_group(small, camera)]
        assert got == gid or got.startswith(gid + "."), (gid, got)


# ---- through the Explorer, headless ----------------------------------------------------------

@pytest.fixture
def explorer():
    headless = pytest.importorskip("llmviz.engine.render.headless")
    from llmviz.engine.input import load_bindings
    from llmviz.scenes.explorer import Explorer

    renderer = headless.headless_renderer((960, 540))
    made = []

    def make(scene):
        ex = Explorer(renderer, scene, bindings=load_bindings(), adaptive_quality=False, background_imports=False)
        made.append(ex)
        return ex, renderer

    yield make
    for ex in made:
        ex.close()
    renderer.release()


def frames(ex, renderer, n=1):
    for _ in range(n):
        ex.frame(1 / 30)
        renderer.ctx.finish()
        ex.presented()


def open_set(ex, renderer, names):
    assert ex.compare.open(names) is None
    before = [view.session for view in ex.views]
    deadline = time.perf_counter() + 120
    while ex.compare.build is not None and time.perf_counter() < deadline:
        # the old view keeps drawing while the set is built on the worker
        assert [view.session for view in ex.views] == before
        frames(ex, renderer)
    assert ex.compare.on, ex.notice
    assert [view.session.name for view in ex.views] == names


def look_at_group(session, gid, distance=40.0):
    layout = session.model.layout
    center = layout.group_center[layout.group_index(gid)]
    camera = session.rig.camera
    session.rig.transition = None
    camera.position = np.array([center[0], center[1], distance])
    camera.look_at(np.array([center[0], center[1], 0.0]))


def focused(ex, k):
    index = ex.compare.indexes[k]
    return index.layout.group_ids[focus_group(index, ex.views[k].session.rig.camera)]


def test_cameras_follow_the_leading_view_to_the_corresponding_component(explorer):
    ex, renderer = explorer("gpt-2-small")
    frames(ex, renderer, 2)
    open_set(ex, renderer, ["gpt-2-small", "gpt-2-medium"])
    frames(ex, renderer, 2)
    assert [v.rect for v in ex.views] == [(0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 0.5, 1.0)]
    assert ex.views[0].session.engine.camera.viewport == (480, 540) == ex.views[1].session.engine.camera.viewport
    look_at_group(ex.views[0].session, "blocks.3.attn")
    frames(ex, renderer, 2)
    assert focused(ex, 0).startswith("blocks.3.attn") and focused(ex, 1).startswith("blocks.6.attn")
    # The view under the pointer leads: its moves move the other.
    ex.pointer_moved(720, 270)
    frames(ex, renderer)
    assert ex.compare.leader == 1 and ex.session is ex.views[1].session
    look_at_group(ex.views[1].session, "blocks.20.mlp")
    frames(ex, renderer, 2)
    assert focused(ex, 0).startswith("blocks.10.mlp")
    # L frees the cameras: the other view stays where it was.
    ex.do("toggle_camera_sync")
    kept = ex.views[0].session.rig.camera.position.copy()
    look_at_group(ex.views[1].session, "blocks.2.attn")
    frames(ex, renderer, 2)
    assert np.array_equal(ex.views[0].session.rig.camera.position, kept)
    # M closes the set: the leading view stays, whole-window.
    ex.do("toggle_compare")
    frames(ex, renderer)
    assert not ex.compare.on and len(ex.views) == 1 and ex.views[0].session.name == "gpt-2-medium"
    assert ex.views[0].rect == (0.0, 0.0, 1.0, 1.0)


def test_live_models_share_one_input_and_one_timeline(explorer):
    ex, renderer = explorer("mamba-tiny")
    open_set(ex, renderer, ["mamba-tiny", "rwkv-tiny"])
    lives = ex.compare.text_models()
    assert len(lives) == 2
    assert not ex.compare.set_text("a river")
    for live in lives:
        assert live.wait(60) and live.text == "a river"
    ex.do("next")                                   # N: every model writes its next character
    for live in lives:
        assert live.wait(60)
    frames(ex, renderer, 2)
    assert all(len(live.text) == len("a river") + 1 for live in lives)
    for live, model_id in zip(lives, ("mamba-tiny", "rwkv-tiny")):
        # each its own greedy choice, from its own probabilities
        assert live.spec.id == model_id
        assert live.text[-1] == live.alphabet[int(np.argmax(live.trace["probs"][-2]))]
    problems = ex.compare.set_text("é" * 3)
    assert len(problems) == 2 and all(p.startswith(("mamba-tiny:", "rwkv-tiny:")) for p in problems)


def test_a_model_switch_rebuilds_the_set_with_the_leading_view_replaced(explorer):
    ex, renderer = explorer("gpt-2-small")
    open_set(ex, renderer, ["gpt-2-small", "nano-gpt"])
    ex.request_scene("gpt-2-medium")                 # the Model menu or ]: the leading view's model changes
    assert ex.compare.build is not None
    deadline = time.perf_counter() + 120
    while ex.compare.build is not None and time.perf_counter() < deadline:
        frames(ex, renderer)
    assert [v.session.name for v in ex.views] == ["gpt-2-medium", "nano-gpt"]


@pytest.mark.parametrize("names, says", [
    (["gpt-2-small"], "2 to 4 models, not 1"),
    (["gpt-2-small"] * 2, "different models"),
    (["gpt-2-small", "gpt-2-medium", "gpt-2-large", "gpt-2-xl", "nano-gpt"], "not 5"),
    (["gpt-2-small", "no-such-model"], "not in the model list: no-such-model"),
])
def test_a_set_that_cannot_be_compared_is_one_line_and_nothing_changes(explorer, names, says):
    ex, renderer = explorer("stress:200")
    problem = ex.compare.open(names)
    assert says in problem and "\n" not in problem and ex.notice == problem
    assert ex.compare.build is None and len(ex.views) == 1


def test_the_differences_are_lit_in_the_views_that_have_them(explorer):
    """llama-3-8b against mistral-7b: the sliding window is Mistral's, so its attention is lit in Mistral's view
    and not in Llama's; hovering that difference in the panel lights it alone, strongly; the table is
    models/compare.py's for the same pair."""
    from llmviz.models.compare import compare

    ex, renderer = explorer("llama-3-8b")
    open_set(ex, renderer, ["llama-3-8b", "mistral-7b"])
    c = ex.compare.comparison
    assert c.as_dict() == compare([REGISTRY.get("llama-3-8b"), REGISTRY.get("mistral-7b")]).as_dict()
    window = next(d for d, diff in enumerate(c.differences) if "sliding window" in diff.component.lower())
    assert c.differences[window].models == ("mistral-7b",)
    llama, mistral = (view.session for view in ex.views)
    lit = ex.compare.lit
    assert window not in lit[0] and window in lit[1]
    layout = mistral.model.layout
    attention = {int(mistral.model.block_slots[layout.index(f"blocks.{i}.attn.head.0.wq")]) for i in range(32)}
    assert attention <= set(lit[1][window].tolist())
    mlp = int(mistral.model.block_slots[layout.index("blocks.0.mlp.up.weight")])
    assert mlp not in set(lit[1][window].tolist())
    soft = mistral.engine.flags.layers["compare_differences"]
    assert soft.soft and attention <= set(soft.lit.tolist())
    ex.compare._highlight(window)
    focus = mistral.engine.flags.layers["compare_focus"]
    assert not focus.soft and set(focus.lit.tolist()) == set(lit[1][window].tolist())
    assert "compare_focus" not in llama.engine.flags.layers
    ex.compare._highlight(None)
    assert "compare_focus" not in mistral.engine.flags.layers
