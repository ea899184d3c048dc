"""Focus mode: the component tree, search, framing a component's bounds, and dimming exactly the rest."""
import numpy as np
import pytest

from llmviz.engine.camera_control import CameraRig
from llmviz.engine.ecs.components import FLAG_DIMMED, FLAG_HIGHLIGHTED
from llmviz.engine.input import Actions
from llmviz.engine.systems.transform import TransformSystem
from llmviz.models.params import count_params
from llmviz.scenes.focus import BLOCK, GROUP, ComponentTree, Focus, Node
from llmviz.scenes.registry import build_scene

CORNERS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float64)


@pytest.fixture(scope="module")
def scene():
    built = build_scene("nano-gpt")
    TransformSystem(built.world).update()
    yield built
    built.close()


@pytest.fixture
def focus(scene):
    f = Focus(ComponentTree(scene.model.layout), scene.model, scene.world)
    yield f
    f.clear()


def test_search_finds_the_named_component_in_order(focus):
    tree = focus.tree
    found = tree.search("transformer 2 attention head 1")
    assert tree.ident(found[0]) == "blocks.2.attn.head.1"
    assert all(tree.ident(n).startswith("blocks.2.attn.head.1") for n in found)  # not head 2 of transformer 1
    assert tree.ident(tree.search("blocks.0.mlp")[0]) == "blocks.0.mlp"
    assert tree.search("no such thing") == []


def test_breadcrumbs_and_escape_step_out(focus):
    tree = focus.tree
    head = tree.node_of("blocks.1.attn.head.1")
    assert [tree.label(n) for n in tree.path(head)] == ["model", "Transformer 1", "Self-attention", "3 heads", "head 1"]
    q = tree.node_of("blocks.1.attn.head.1.q")
    focus.select(q)
    labels = []
    while focus.node is not None:
        focus.step_out()
        labels.append(tree.label(focus.node) if focus.node else None)
    assert labels == ["head 1", "3 heads", "Self-attention", "Transformer 1", None]


def test_focus_picks_the_component_and_dims_exactly_the_complement(scene, focus):
    tree, layout = focus.tree, scene.model.layout
    node = tree.node_of("blocks.1.attn.head.1")
    focus.select(node)
    rows = tree.rows(node)
    assert sorted(layout.ids[r] for r in rows) == sorted(i for i in layout.ids if i.startswith("blocks.1.attn.head.1."))
    flags = scene.world["renderable"]["flags"]
    has = scene.world["renderable"].has[:len(flags)]
    focused = np.zeros(len(flags), bool)
    focused[scene.model.block_slots[rows]] = True
    focused[scene.model.group_slots[node.index]] = True
    highlighted = (flags & FLAG_HIGHLIGHTED) != 0
    dimmed = (flags & FLAG_DIMMED) != 0
    assert np.array_equal(highlighted, focused)
    assert np.array_equal(dimmed, has & ~focused)
    focus.clear()
    assert not (flags & (FLAG_HIGHLIGHTED | FLAG_DIMMED)).any()


def test_focus_frames_all_eight_corners_of_the_component(scene, focus):
    for ident in ("blocks.2.attn.head.1", "blocks.0.mlp", "lm_head" if "lm_head" in scene.model.layout.ids else "embed"):
        node = focus.tree.node_of(ident)
        camera = scene.start_camera((1280, 720))
        rig = CameraRig(camera, scene_radius=50.0)
        center, half = focus.box(node)
        rig.focus(center, half)
        for _ in range(400):
            rig.update(1 / 60, Actions())
            if rig.transition is None:
                break
        assert rig.transition is None
        px = camera.project(center + CORNERS * half)
        assert (px[:, 0] >= 0).all() and (px[:, 0] <= 1280).all(), ident
        assert (px[:, 1] >= 0).all() and (px[:, 1] <= 720).all(), ident
        assert (px[:, 2] > 0).all()
        # Framed, not lost in the distance: the box spans a good part of the view.
        span = px[:, :2].max(axis=0) - px[:, :2].min(axis=0)
        assert span[0] > 0.4 * 1280 or span[1] > 0.4 * 720, ident


def test_details_shape_params_and_stats(scene, focus):
    tree = focus.tree
    assert tree.params(tree.root) == count_params(scene.model.spec).total
    q = tree.node_of("blocks.0.attn.head.0.wq")
    d = tree.details(q, {"blocks.0.attn.head.0.wq": np.array([[1.0, 2.0], [3.0, 4.0]])})
    assert d.shape == "16 × 48" and d.params == 16 * 48
    assert d.stats == pytest.approx((1.0, 2.5, 4.0, np.std([1, 2, 3, 4])))
    assert tree.details(q).stats is None
    assert tree.details(tree.node_of("blocks.0.attn")).params > d.params
