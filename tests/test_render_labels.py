"""Labels: the per-frame glyph selection matches a brute-force reference, and text draws upright."""

import numpy as np
import pytest

from llmviz.engine.camera import Camera
from llmviz.engine.ecs.world import World
from llmviz.engine.render import GLYPH_FLOATS
from llmviz.engine.render.text import build_glyph_atlas
from llmviz.engine.systems.labels import LabelSelector
from gl_support import headless_or_skip

SIZE = (320, 240)
BACKGROUND = (0.0, 0.0, 0.0, 1.0)


@pytest.fixture(scope="module")
def atlas():
    return build_glyph_atlas()


@pytest.fixture(scope="module")
def renderer(atlas):
    yield from headless_or_skip(SIZE, glyph_atlas=atlas)


def reference_glyphs(world, visible, camera, atlas, drawn=None):
    """One label at a time, in plain Python: what LabelSelector must produce. ``drawn``: slot -> scale of
    the labels the screen layout kept (its own rules are tested in test_label_layout.py)."""
    rows = []
    for slot in world.query("label"):
        if drawn is not None and int(slot) not in drawn:
            continue
        index = int(world.column("label", "text_index")[slot])
        if not (0 <= index < len(world.labels)) or not visible[slot]:
            continue
        bounds = world["world_bounds"]
        base = (np.array([bounds["cx"][slot], bounds["cy"][slot], bounds["cz"][slot]]) if bounds.has[slot]
                else world.column("transform", "position")[slot])
        anchor = base + world.column("label", "offset")[slot]
        depth = float(np.dot(anchor - camera.position, camera.forward))
        height = float(world.column("label", "height")[slot])
        if depth <= camera.near or height * camera.focal_px / depth < world.column("label", "min_px")[slot]:
            continue
        height *= drawn[int(slot)] if drawn is not None else 1.0
        for quad in atlas.layout(world.labels[index]):
            rows.append(np.concatenate([anchor, quad, [height], world.column("label", "color")[slot],
                                        [float(world.column("label", "billboard")[slot])]]))
    return np.array(rows, np.float32).reshape(-1, GLYPH_FLOATS)


def labelled_world(rng, count=60):
    world = World(capacity=16)
    positions = np.c_[rng.uniform(-20, 20, (count, 2)), rng.uniform(-30, 8, count)]
    ids = world.spawn(count, transform={"position": positions})
    centers = positions[::2] + 0.25  # half the entities take their box centre from world_bounds
    world.add("world_bounds", ids[::2], cx=centers[:, 0], cy=centers[:, 1], cz=centers[:, 2])
    texts = ["W_q", "attn · softmax", "", "Σ → ×", "MLP\nup-proj", "W_q", "héllo?"]
    world.add_labels(ids[: count - 5], [texts[i % len(texts)] for i in range(count - 5)],
                     height=rng.uniform(0.05, 2.0, count - 5), offset=rng.normal(size=(count - 5, 3)),
                     color=rng.uniform(size=(count - 5, 4)), billboard=rng.uniform(size=count - 5) > 0.5,
                     min_px=rng.uniform(1, 20, count - 5))
    return world, ids


def test_atlas_has_ascii_and_symbols(atlas):
    # How long the atlas takes to build is a benchmark figure (BENCHMARKS.md), not an assertion here.
    for ch in "Az09_×·→Σ":
        assert ch in atlas.index
    assert atlas.image.dtype == np.uint8 and atlas.image.max() > 170 and atlas.image.min() == 0



def test_layout_centres_lines_and_skips_spaces(atlas):
    quads = atlas.layout("A B")
    assert len(quads) == 2
    left, right = quads[0, 0], quads[1, 0] + quads[1, 2]
    assert abs(left + right) < 0.1  # centred on the anchor
    two = atlas.layout("A\nA")
    assert two[0, 1] - two[1, 1] == pytest.approx(1.2, abs=1e-5)  # second line one line-height lower


def test_selection_matches_brute_force_and_follows_changes(atlas):
    rng = np.random.default_rng(7)
    world, ids = labelled_world(rng)
    camera = Camera(position=np.array([0.0, 0.0, 10.0]), viewport=(800, 600))
    visible = rng.uniform(size=world.capacity) > 0.3
    selector = LabelSelector(atlas)
    got = selector(world, visible, camera)
    want = reference_glyphs(world, visible, camera, atlas, drawn_scales(selector))
    assert 0 < len(got) and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)

    # Per-frame columns (colour, height, position) are read fresh; texts and structure rebuild.
    world.set("label", ids[:10], color=np.array([1.0, 0.0, 0.0, 1.0]), height=1.5)
    world.labels.append("swapped")
    world.set("label", ids[3], text_index=len(world.labels) - 1)
    more = world.spawn(4, transform={"position": np.zeros((4, 3))})
    world.add_labels(more, ["new", "labels", "here", "too"], min_px=0.0)
    world.destroy(ids[20:25])
    visible = rng.uniform(size=world.capacity) > 0.3
    camera.position = np.array([3.0, 1.0, 5.0])
    camera.look_at([0, 0, -10])
    got = selector(world, visible, camera)
    np.testing.assert_allclose(got, reference_glyphs(world, visible, camera, atlas, drawn_scales(selector)),
                               rtol=1e-6, atol=1e-6)
    # Without the layout's choices (every passing label drawn) the rows would be more: it did hide some.
    assert len(got) < len(reference_glyphs(world, visible, camera, atlas))


def drawn_scales(selector):
    laid = selector.last
    return dict(zip(selector.slots[laid.labels].tolist(), laid.scale.tolist()))


def test_no_labels_gives_an_empty_table(atlas):
    world = World()
    world.spawn(3)
    out = LabelSelector(atlas)(world, np.ones(world.capacity, bool), Camera())
    assert out.shape == (0, GLYPH_FLOATS)


def ink_mask(image):
    return image[..., :3].max(axis=-1) > 100


@pytest.mark.parametrize("billboard", [True, False])
def test_label_draws_upright_unmirrored_glyphs_at_its_anchor(renderer, atlas, billboard):
    world = World()
    ids = world.spawn(1, transform={"position": np.array([[0.5, -0.3, 0.0]])})
    world.add_labels(ids, ["L"], height=2.0, billboard=billboard, color=np.array([1.0, 1.0, 1.0, 1.0]))
    camera = Camera(position=np.array([0.0, 0.0, 6.0]), viewport=SIZE)
    glyphs = LabelSelector(atlas)(world, np.ones(world.capacity, bool), camera)
    assert len(glyphs) == 1
    renderer.begin_frame(BACKGROUND)
    renderer.draw_labels(camera, glyphs)
    renderer.end_frame()
    assert renderer.stats.draw_calls == 1 and renderer.stats.glyphs == 1
    ink = ink_mask(renderer.read_pixels())
    ys, xs = np.nonzero(ink)
    assert len(xs) > 200
    px, py, _ = camera.project([[0.5, -0.3, 0.0]])[0]
    # Ink is centred on the projected anchor (within a fraction of the glyph's size)...
    assert abs((xs.min() + xs.max()) / 2 - px) < 20 and abs((ys.min() + ys.max()) / 2 - py) < 20
    # ...and an "L" has more ink in its bottom half (the foot) and its left half (the stem).
    mid_y, mid_x = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
    assert (ys > mid_y).sum() > 1.3 * (ys < mid_y).sum()
    assert (xs < mid_x).sum() > 1.3 * (xs > mid_x).sum()


def test_selection_from_in_view_slots_matches_brute_force_on_many_labels(atlas):
    rng = np.random.default_rng(11)
    world, ids = labelled_world(rng, count=3000)
    camera = Camera(position=np.array([0.0, 0.0, 12.0]), viewport=(1280, 720))
    selector = LabelSelector(atlas)
    for _ in range(3):
        # In-view slots as the visibility system gives them: any order, some unlabelled, some twice.
        in_view = rng.permutation(world.size)[: world.size // 2]
        in_view = np.concatenate([in_view, in_view[:50]])
        mask = np.zeros(world.capacity, bool)
        mask[in_view] = True
        got = selector(world, in_view, camera)
        want = reference_glyphs(world, mask, camera, atlas, drawn_scales(selector))
        assert len(want) > 100 and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(selector(world, mask, camera), got)
        # A hidden label given another of the world's texts (no new string, no structural change)
        # shows it once in view.
        hidden = ids[:-5][~mask[world.slots(ids[:-5])]][:20]
        text_index = world.column("label", "text_index")
        world.set("label", hidden, text_index=text_index[world.slots(hidden)] + 1)
        camera.position = camera.position + rng.normal(size=3)


def test_labels_of_a_frame_allocate_nothing_world_sized(atlas):
    """The engine's label step, once the table is built, allocates in proportion to the labels in view."""
    import tracemalloc
    from types import SimpleNamespace

    from llmviz.engine.runtime import Engine, Frame
    from llmviz.engine.systems.visibility import VisibilityResult

    world = World(capacity=16)
    n = 400_000
    ids = world.spawn(n, transform={"position": np.c_[np.zeros((n, 2)), np.linspace(-40, 0, n)]})
    world.add_labels(ids[::200], [f"layer {i}" for i in range(n // 200)], height=1.0, min_px=0.0)
    camera = Camera(position=np.array([0.0, 0.0, 10.0]), viewport=(1280, 720))
    engine = Engine(world, camera, renderer=SimpleNamespace(glyph_atlas=atlas))
    frame = Frame(world, camera, visibility=VisibilityResult(in_view=np.arange(0, n, 97)))
    engine._build_labels(frame)  # builds the table (world-sized slot map included): once, not per frame
    tracemalloc.start()
    try:
        engine._build_labels(frame)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 0 < len(frame.glyphs)
    assert peak < world.size // 4, f"{peak} bytes for {len(frame.glyphs)} glyphs in a {world.size}-slot world"


def test_a_text_swap_updates_only_that_label(atlas):
    """A live model rewriting its row letters: the labels change text without a rebuild of every label,
    and what is drawn matches the brute-force reference with the new texts (one a string new to the table)."""
    rng = np.random.default_rng(2)
    world, ids = labelled_world(rng, count=80)
    camera = Camera(position=np.array([0.0, 0.0, 10.0]), viewport=(800, 600))
    visible = np.ones(world.capacity, bool)
    selector = LabelSelector(atlas)
    selector(world, visible, camera)
    rebuilds = []
    original = selector.rebuild
    selector.rebuild = lambda w: (rebuilds.append(1), original(w))
    world.labels.append("brand-new text ∑")
    text_index = world.column("label", "text_index")
    slots = world.slots(ids[:6])
    world.set("label", ids[:6], text_index=np.r_[len(world.labels) - 1, text_index[slots[1:]][::-1]])
    got = selector(world, visible, camera)
    assert rebuilds == []
    np.testing.assert_allclose(got, reference_glyphs(world, visible, camera, atlas, drawn_scales(selector)),
                               rtol=1e-6, atol=1e-6)
