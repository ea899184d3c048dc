"""Focus mode: the component tree, search, framing a component's bounds, and dimming exactly the rest."""
import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from llmviz.engine.camera_control import CameraRig
from llmviz.engine.ecs.components import FLAG_DIMMED, FLAG_HIGHLIGHTED
from llmviz.engine.input import Actions
from llmviz.engine.systems.transform import TransformSystem
from llmviz.models.params import count_params
from llmviz.models.registry import load_registry
from llmviz.scenes.focus import _WORD, BLOCK, GROUP, SEARCH_LIMIT, ComponentTree, Focus, Node, _matches
from llmviz.scenes.layout import layout_model
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


def brute_force_search(tree, query):
    """Every group, then every block, scanned with _matches: what the indexed search must return (before its limit)."""
    words = _WORD.findall(query.lower())
    if not words:
        return []
    layout, texts = tree.layout, tree._group_texts()
    groups = [Node(GROUP, g) for g, text in enumerate(texts)
              if _matches(words, text) or _matches(words, layout.group_ids[g].lower())]
    blocks = [Node(BLOCK, r) for r, (ident, label) in enumerate(zip(layout.ids, layout.label))
              if _matches(words, f"{texts[g] if (g := int(layout.group[r])) >= 0 else ''} {label.lower()}")
              or _matches(words, ident.lower())]
    return groups + blocks


def random_queries(tree, rng, count):
    """Queries a user might type: words of a real component's texts (cut, reordered, off-by-one numbers), vocabulary
    words, random letters and digits; each typed key by key (every prefix is a query)."""
    layout, texts = tree.layout, tree._group_texts()
    sources = texts + [g.lower() for g in layout.group_ids] + [i.lower() for i in layout.ids] + \
        [f"{texts[g] if g >= 0 else ''} {label.lower()}" for g, label in zip(layout.group, layout.label)]
    vocab = sorted({w for s in sources for w in _WORD.findall(s)})
    for _ in range(count):
        kind = rng.integers(4)
        if kind < 2:
            tokens = _WORD.findall(sources[rng.integers(len(sources))]) or ["x"]
            picked = [tokens[i] for i in np.sort(rng.choice(len(tokens), min(len(tokens), rng.integers(1, 5)),
                                                            replace=False))]
            if kind == 1:
                rng.shuffle(picked)
            words = []
            for w in picked:
                if w.isdigit() and rng.random() < 0.3:
                    w = str(max(0, int(w) + int(rng.integers(-1, 2))))
                elif not w.isdigit() and len(w) > 2 and rng.random() < 0.5:
                    a = int(rng.integers(len(w) - 1))
                    w = w[a:a + int(rng.integers(1, len(w) - a + 1))]
                words.append(w.upper() if rng.random() < 0.1 else w)
        elif kind == 2:
            words = [vocab[i] for i in rng.integers(len(vocab), size=rng.integers(1, 4))]
        else:
            words = ["".join(rng.choice(list("abcdehlmnopqstw0123456789 "), rng.integers(1, 7)))]
        query = str(rng.choice([" ", ".", "_", " - "])).join(words)
        yield from (query[:n] for n in range(1, len(query) + 1))


@pytest.mark.parametrize("model_id", ["gpt-2-small", "jamba-v0.1"])
def test_indexed_search_equals_the_brute_force_scan(model_id):
    layout = layout_model(load_registry(include_user=False).get(model_id))
    tree = ComponentTree(layout)
    tree.build_search_index()
    assert tree.search_index_ready
    rng = np.random.default_rng(sum(map(ord, model_id)))
    queries = list(dict.fromkeys(random_queries(tree, rng, 40)))
    found_some = 0
    for query in queries:
        want = brute_force_search(tree, query)
        found_some += bool(want)
        for limit in (3, SEARCH_LIMIT, 10 ** 6):
            assert tree.search(query, limit) == want[:limit], (query, limit)
    assert found_some > len(queries) // 3  # the queries exercise matches, not only misses


def test_indexed_search_on_odd_texts_and_blocks_outside_any_group():
    """Leading zeros, Unicode digits, separators of the index's own (NUL), numbers in labels, and blocks with no group."""
    layout = SimpleNamespace(
        group_ids=["model", "a.1", "a.01", "a.1.b٣"], group_parent=np.array([-1, 0, 0, 1]),
        group_label=["", "Stage 1", "Stage 01", "part\x00 ٣"],
        ids=["a.1.x", "a.01.y", "free.2", "a.1.b٣.z1", "nul\x00 1", "a.1.x2"],
        label=["X  t×12", "Y 1 1", "free 2 ×", "Z\x01 1", "", "x 12 12"],
        group=np.array([1, 2, -1, 3, -1, 1]))
    tree = ComponentTree(layout)
    texts = sorted({w for s in tree._group_texts() + layout.ids + layout.label for w in _WORD.findall(s.lower())})
    queries = [" ".join(c) for n in (1, 2, 3) for c in itertools.product(texts + ["0", "t"], repeat=n)]
    for query in queries + ["stage 1 1", "٣ z 1", "nul 1", "free 2"]:
        assert tree.search(query, 10 ** 6) == brute_force_search(tree, query), query


@pytest.mark.parametrize("texts", [[""], ["a", ""], ["", ""], ["abc", "de", "", "f1", "", "x"], ["a" * 10, "b" * 10, ""]])
def test_search_index_chunks_keep_every_text_in_place(monkeypatch, texts):
    """The index cuts its regex passes into chunks (so a worker building it lets frames through):
    cutting and splitting again gives back exactly the texts, empty ones included."""
    from llmviz.scenes import focus

    monkeypatch.setattr(focus, "_CHUNK_CHARS", 3)
    chunks = focus._chunks(focus._SEP.join(texts))
    assert [t for c in chunks for t in c.split(focus._SEP)] == texts
