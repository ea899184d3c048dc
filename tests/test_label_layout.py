"""Screen-space label layout: legible sizes, no overlaps, priorities, never under the UI — and the
reported boxes are where the glyphs really are on the rendered image."""

import numpy as np
import pytest

from llmviz.engine.camera import Camera
from llmviz.engine.ecs.world import World
from llmviz.engine.render.text import build_glyph_atlas
from llmviz.engine.systems.label_layout import LEGIBLE_PX, greedy_keep
from llmviz.engine.systems.labels import LabelSelector
from gl_support import headless_or_skip

SIZE = (480, 320)


@pytest.fixture(scope="module")
def atlas():
    return build_glyph_atlas()


def sequential_greedy(boxes, gap):
    """The rule in plain Python, one box at a time: keep it unless it touches one kept before."""
    kept = []
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        if all(not (x0 < k[2] + gap and k[0] < x1 + gap and y0 < k[3] + gap and k[1] < y1 + gap)
               for k in (boxes[j] for j in kept)):
            kept.append(i)
    return np.isin(np.arange(len(boxes)), kept)


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_rounds_give_the_sequential_greedy_result(seed):
    rng = np.random.default_rng(seed)
    n = 300
    xy = rng.uniform(0, 600, (n, 2))
    wh = rng.uniform(5, 80, (n, 2))
    boxes = np.c_[xy, xy + wh]
    np.testing.assert_array_equal(greedy_keep(boxes, 2.0), sequential_greedy(boxes, 2.0))


def crowded_world(rng, count=200, priority=None):
    world = World(capacity=16)
    positions = np.c_[rng.uniform(-6, 6, (count, 2)), rng.uniform(-4, 0, count)]
    ids = world.spawn(count, transform={"position": positions})
    words = ["W_q 768×64", "LayerNorm", "softmax", "h", "MLP up 3072", "Σ", "attention scores"]
    world.add_labels(ids, [words[i % len(words)] for i in range(count)], height=rng.uniform(0.05, 0.6, count),
                     billboard=rng.uniform(size=count) > 0.5, min_px=4.0,
                     priority=np.zeros(count) if priority is None else priority)
    return world, ids


def drawn_boxes_overlap(boxes):
    n = len(boxes)
    for i in range(n):
        for j in range(i + 1, n):
            a, b = boxes[i], boxes[j]
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                return True
    return False


def test_drawn_labels_are_legible_apart_and_out_from_under_the_ui(atlas):
    rng = np.random.default_rng(3)
    world, ids = crowded_world(rng)
    camera = Camera(position=np.array([0.0, 0.0, 8.0]), viewport=SIZE)
    selector = LabelSelector(atlas)
    everything = np.arange(world.size)
    selector(world, everything, camera)
    free = selector.last
    assert len(free.labels) > 10 and free.hidden_collisions > 0
    assert free.pixel_height.min() >= LEGIBLE_PX - 1e-6
    assert not drawn_boxes_overlap(free.boxes)

    menu, panel = (0, 0, SIZE[0], 40), (SIZE[0] - 150, 40, SIZE[0], SIZE[1])
    selector.ui_rects = np.array([menu, panel], np.float64)
    selector(world, everything, camera)
    laid = selector.last
    assert laid.hidden_under_ui > 0 and len(laid.labels)
    for x0, y0, x1, y1 in laid.boxes:
        for ux0, uy0, ux1, uy1 in selector.ui_rects:
            assert not (x0 < ux1 and ux0 < x1 and y0 < uy1 and uy0 < y1)


def test_a_higher_priority_label_wins_a_collision(atlas):
    world = World(capacity=4)
    ids = world.spawn(2, transform={"position": np.array([[0.0, 0.0, 0.0], [0.05, 0.02, 0.0]])})
    world.add_labels(ids, ["big caption", "section title"], height=np.array([0.5, 0.3]), billboard=True,
                     priority=np.array([1.0, 2.0]))
    camera = Camera(position=np.array([0.0, 0.0, 6.0]), viewport=SIZE)
    selector = LabelSelector(atlas)
    selector(world, np.arange(world.size), camera)
    assert selector.slots[selector.last.labels].tolist() == [int(world.slots(ids[1:])[0])]


def test_a_label_smaller_than_legible_is_drawn_legible(atlas):
    world = World(capacity=4)
    ids = world.spawn(1, transform={"position": np.zeros((1, 3))})
    world.add_labels(ids, ["tiny"], height=0.3, billboard=True, min_px=2.0)
    camera = Camera(position=np.array([0.0, 0.0, 10.0]), viewport=SIZE)
    natural = 0.3 * camera.focal_px / 10.0
    assert natural < LEGIBLE_PX
    selector = LabelSelector(atlas)
    glyphs = selector(world, np.arange(world.size), camera)
    assert selector.last.pixel_height[0] == pytest.approx(LEGIBLE_PX, rel=1e-3)
    assert glyphs[0, 11] == pytest.approx(0.3 * LEGIBLE_PX / natural, rel=1e-3)  # the drawn world height


@pytest.fixture(scope="module")
def renderer(atlas):
    yield from headless_or_skip(SIZE, glyph_atlas=atlas)


@pytest.mark.parametrize("tilted", [False, True])
def test_reported_boxes_hold_the_rendered_glyphs(atlas, renderer, tilted):
    """Every lit pixel of the image lies in some reported box, and every box holds lit pixels."""
    rng = np.random.default_rng(5)
    world, ids = crowded_world(rng, count=60)
    world.set("label", ids, color=np.array([1.0, 1.0, 1.0, 1.0]))
    camera = Camera(position=np.array([1.5, 2.0, 8.0]) if tilted else np.array([0.0, 0.0, 8.0]), viewport=SIZE)
    camera.look_at([0.0, 0.0, -2.0])
    selector = LabelSelector(atlas)
    glyphs = selector(world, np.arange(world.size), camera)
    renderer.begin_frame((0.0, 0.0, 0.0, 1.0))
    renderer.draw_labels(camera, glyphs)
    renderer.end_frame()
    image = renderer.read_pixels()
    lit = image[..., :3].max(axis=-1) > 60
    ys, xs = np.nonzero(lit)
    boxes = selector.last.boxes
    assert len(boxes) > 5
    inside = np.zeros(len(xs), bool)
    for x0, y0, x1, y1 in boxes:
        inside |= (xs >= x0 - 1.5) & (xs <= x1 + 1.5) & (ys >= y0 - 1.5) & (ys <= y1 + 1.5)
    assert inside.all(), f"{(~inside).sum()} lit pixels outside every reported box"
    for x0, y0, x1, y1 in boxes[(boxes[:, 0] >= 0) & (boxes[:, 1] >= 0) & (boxes[:, 2] < SIZE[0])
                                & (boxes[:, 3] < SIZE[1])]:
        region = lit[max(0, int(y0)):int(np.ceil(y1)) + 1, max(0, int(x0)):int(np.ceil(x1)) + 1]
        assert region.any()
        # The box is not much bigger than its ink either: the ink spans most of its height.
        rows = np.flatnonzero(region.any(axis=1))
        assert rows.max() - rows.min() + 1 >= 0.5 * (y1 - y0)


def test_a_big_block_shows_its_caption_however_small_the_caption_is_in_the_world(atlas):
    from llmviz.engine.systems.label_layout import CAPTION
    from llmviz.engine.systems.labels import CAPTION_BLOCK_PX

    world = World(capacity=4)
    camera = Camera(position=np.array([0.0, 0.0, 10.0]), viewport=SIZE)
    half = CAPTION_BLOCK_PX * 10.0 / camera.focal_px  # a block about 2 × CAPTION_BLOCK_PX wide on screen
    ids = world.spawn(2, transform={"position": np.array([[-2.5, 0.0, 0.0], [2.5, 0.0, 0.0]])})
    world.add("world_bounds", ids, cx=np.array([-2.5, 2.5]), cy=np.zeros(2), cz=np.zeros(2),
              hx=np.array([half, half / 8]), hy=np.array([half, half / 8]), hz=np.full(2, 0.01),
              radius=np.array([half * 1.42, half / 8 * 1.42]))
    # Captions 0.2 px tall at their world size, far under their own min_px.
    world.add_labels(ids, ["big block", "small block"], height=0.2 * 10.0 / camera.focal_px, min_px=1.0,
                     placement=CAPTION, offset=np.array([[0.0, half * 1.1, 0.0], [0.0, half / 8 * 1.1, 0.0]]))
    selector = LabelSelector(atlas)
    selector(world, np.arange(world.size), camera)
    drawn = selector.slots[selector.last.labels].tolist()
    assert drawn == [int(world.slots(ids[:1])[0])]  # the big block's caption only
    assert selector.last.pixel_height[0] >= LEGIBLE_PX - 1e-6


def test_a_still_view_reuses_its_layout_and_a_moved_one_does_not(atlas, monkeypatch):
    import llmviz.engine.systems.labels as labels_module

    rng = np.random.default_rng(9)
    world, ids = crowded_world(rng, count=80)
    camera = Camera(position=np.array([0.0, 0.0, 8.0]), viewport=SIZE)
    selector = LabelSelector(atlas)
    calls = []
    real = labels_module.lay_out
    monkeypatch.setattr(labels_module, "lay_out", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    everything = np.arange(world.size)
    first = selector(world, everything, camera)
    again = selector(world, everything, camera)
    assert len(calls) == 1 and np.array_equal(first, again)
    camera.position = camera.position + np.array([0.3, 0.0, 0.0])
    selector(world, everything, camera)
    world.set("label", ids[:3], color=np.array([1.0, 0.0, 0.0, 1.0]))
    selector(world, everything, camera)
    selector.ui_rects = np.array([[0.0, 0.0, SIZE[0], 30.0]])
    selector(world, everything, camera)
    assert len(calls) == 4


def test_block_boxes_are_the_bounds_of_their_near_face_corners():
    """The obstacle boxes (projected by linearity) against the near face's four corners projected one by one."""
    from llmviz.engine.systems.label_layout import entity_screen_boxes

    rng = np.random.default_rng(1)
    camera = Camera(position=np.array([3.0, 2.0, 12.0]), viewport=(800, 600))
    camera.look_at([0.0, 0.0, 0.0])
    centers, halves = rng.uniform(-4, 4, (300, 3)), rng.uniform(0.1, 1.5, (300, 3))
    got = entity_screen_boxes(centers, halves, camera)
    for (cx, cy, cz), (hx, hy, hz), box in zip(centers, halves, got):
        z = cz + (hz if camera.position[2] >= cz else -hz)
        corners = camera.project([[cx + sx * hx, cy + sy * hy, z] for sx in (-1, 1) for sy in (-1, 1)])
        want = [corners[:, 0].min(), corners[:, 1].min(), corners[:, 0].max(), corners[:, 1].max()]
        np.testing.assert_allclose(box, want, atol=1e-6)


def test_the_occupancy_grid_never_misses_a_block_a_box_overlaps():
    """With thousands of obstacles the layout tests boxes on a grid: whatever the pairwise test finds
    covered, the grid finds covered too (it may be stricter by a grid cell, never looser)."""
    from llmviz.engine.systems.label_layout import Occupancy, overlapping

    rng = np.random.default_rng(4)
    size = (640, 360)
    xy = rng.uniform(0, 600, (2000, 2)) * [1, 0.55]
    obstacles = np.c_[xy, xy + rng.uniform(8, 40, (2000, 2))]
    xy = rng.uniform(0, 620, (500, 2)) * [1, 0.55]
    boxes = np.c_[xy, xy + rng.uniform(5, 60, (500, 2))]
    pairwise = overlapping(boxes, obstacles + np.array([1.0, 1.0, -1.0, -1.0])).any(axis=1)
    grid = Occupancy(obstacles, size).any_covered(boxes)
    assert pairwise.any() and (~pairwise).any()
    assert not (pairwise & ~grid).any()
