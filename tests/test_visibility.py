"""Culling against a brute-force reference, LOD hysteresis, and hierarchical LOD switching."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from llmviz.engine.camera import Camera
from llmviz.engine.ecs.world import World
from llmviz.engine.math3d import quat_from_axis_angle
from llmviz.engine.systems.transform import TransformSystem, group_bounds, world_box
from llmviz.engine.systems.visibility import (LOD_NONE, LodSystem, VisibilitySystem, frustum_cull, gather_children,
                                              select_expanded, select_lod)


def corners(center, half):
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float)
    return center[None, :] + signs * half[None, :]


def brute_force_outside(planes, center, half):
    """A box is outside iff all 8 corners are behind one plane: checked corner by corner."""
    for a, b, c, d in planes:
        if all(a * x + b * y + c * z + d < 0 for x, y, z in corners(center, half)):
            return True
    return False


def brute_force_has_visible_point(camera, center, half, samples=7):
    """True when some sampled point of the box projects inside the viewport and depth range."""
    g = np.linspace(-1, 1, samples)
    pts = np.array([[x, y, z] for x in g for y in g for z in g]) * half + center
    hom = np.c_[pts, np.ones(len(pts))] @ camera.view_projection().T
    w = hom[:, 3]
    ok = w > 0
    ndc = hom[ok, :3] / w[ok, None]
    return bool((np.abs(ndc) <= 1).all(axis=1).any())


def random_camera(rng):
    cam = Camera(position=rng.uniform(-20, 20, 3), near=0.5, far=80.0, viewport=(320, 200))
    cam.look_at(rng.uniform(-20, 20, 3) + 1e-3)
    return cam


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_cull_equals_brute_force_and_never_drops_visible(seed):
    rng = np.random.default_rng(seed)
    cam = random_camera(rng)
    n = 150
    center = rng.uniform(-40, 40, (n, 3))
    half = rng.exponential(2.0, (n, 3)) * (rng.random((n, 1)) > 0.05)  # some degenerate (zero) boxes
    radius = np.linalg.norm(half, axis=1)
    planes = cam.planes()
    kept = frustum_cull(planes, center, half, radius)
    for i in range(n):
        assert kept[i] == (not brute_force_outside(planes, center[i], half[i]))
        if brute_force_has_visible_point(cam, center[i], half[i]):
            assert kept[i], f"box {i} has a visible point but was culled"


def looking_down_minus_z():
    cam = Camera(position=np.zeros(3), near=1.0, far=100.0, viewport=(400, 400), fov_y=90)
    return cam


@pytest.mark.parametrize("center,half,expected", [
    ((0, 0, -10), (1, 1, 1), True),  # straight ahead
    ((0, 0, 10), (1, 1, 1), False),  # behind the camera
    ((0, 0, 0), (5, 5, 5), True),  # encloses the camera
    ((10.5, 0, -10), (1, 1, 1), True),  # straddles the right plane
    ((13, 0, -10), (1, 1, 1), False),  # just outside the right plane
    ((0, 0, -10), (0, 0, 0), True),  # a point inside
    ((0, 0, -100.5), (1, 1, 1), True),  # straddles the far plane
    ((0, 0, -0.2), (0.1, 0.1, 0.1), False),  # entirely in front of the near plane
    ((0, 0, -1.0), (0.1, 0.1, 0.1), True),  # straddles the near plane
])
def test_cull_edge_cases(center, half, expected):
    cam = looking_down_minus_z()
    c, h = np.array([center], float), np.array([half], float)
    assert frustum_cull(cam.planes(), c, h, np.linalg.norm(h, axis=1))[0] == expected


def test_lod_hysteresis_does_not_flicker_at_threshold():
    thresholds = np.array([[100.0, 10.0, 0, 0]])
    level = np.array([-1], np.int8)
    # Coming from far: size grows past 100 only switches to 0 once beyond 100*(1+h)
    seen = []
    for size in [5, 9, 11, 50, 99, 101, 105, 111, 113, 105, 100, 95, 89, 87, 9.5, 8.5]:
        level = select_lod(np.array([size], np.float32), thresholds, level, hysteresis=0.12)
        seen.append(int(level[0]))
    assert seen == [LOD_NONE, LOD_NONE, LOD_NONE, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, LOD_NONE]
    # Resting at a threshold, jittering by ±5%, the level never changes.
    level = np.array([0], np.int8)
    jitter = 100 * (1 + 0.05 * np.sin(np.arange(200)))
    for size in jitter:
        level = select_lod(np.array([size], np.float32), thresholds, level, hysteresis=0.12)
        assert level[0] == 0


def test_lod_without_hysteresis_matches_plain_thresholds():
    rng = np.random.default_rng(1)
    size = rng.uniform(0, 300, 1000).astype(np.float32)
    thresholds = np.tile([200.0, 50.0, 5.0, 0.0], (1000, 1))
    level = select_lod(size, thresholds, np.full(1000, -1, np.int8), hysteresis=0.0)
    expected = np.select([size >= 200, size >= 50, size >= 5], [0, 1, 2], LOD_NONE)
    np.testing.assert_array_equal(level, expected)


def test_group_expansion_hysteresis():
    expanded = np.array([False, True, False, True])
    size = np.array([105.0, 95.0, 115.0, 85.0])
    out = select_expanded(size, np.full(4, 100.0), expanded, hysteresis=0.1)
    assert out.tolist() == [False, True, True, False]


def test_gather_children_matches_python():
    order = np.array([5, 6, 7, 8, 9])
    offsets = np.array([0, 2, 2, 5, 5, 5])  # slot 0 -> 5,6 ; slot 2 -> 7,8,9
    assert gather_children(order, offsets, np.array([2, 0])).tolist() == [7, 8, 9, 5, 6]
    assert gather_children(order, offsets, np.array([1, 3])).tolist() == []


def build_clustered_world(n_groups=4, per_group=50, spacing=100.0, seed=0):
    rng = np.random.default_rng(seed)
    world = World()
    groups = world.spawn(n_groups, renderable={"color": (0.5, 0.5, 0.5, 1)}, group={"expand_px": 150.0},
                         lod={"thresholds": (1.0, 0, 0, 0)})
    centers = np.c_[np.arange(n_groups) * spacing, np.zeros(n_groups), np.zeros(n_groups)]
    child_pos = np.repeat(centers, per_group, axis=0) + rng.uniform(-10, 10, (n_groups * per_group, 3))
    parents = np.repeat(world.slots(groups), per_group)
    children = world.spawn(n_groups * per_group, transform={"position": child_pos},
                           bounds={}, renderable={"color": (1, 0, 0, 1)}, parent={"slot": parents},
                           lod={"thresholds": (40.0, 8.0, 1.0, 0)})
    group_bounds(world, world.slots(groups))
    return world, groups, children


def test_hlod_far_shows_proxies_near_opens_group():
    world, groups, children = build_clustered_world()
    visibility, lods = VisibilitySystem(world), LodSystem(world)
    TransformSystem(world).update()

    class vis:  # visibility then LOD, as the frame runs them
        update = staticmethod(lambda cam: lods.update(visibility.update(cam)))
    cam = Camera(position=np.array([150.0, 0, 3000.0]), far=10000.0)
    cam.look_at([150.0, 0, 0])
    far = vis.update(cam)
    assert set(far.drawn) == set(world.slots(groups))  # only proxies
    assert far.hlod_skipped == len(children) and far.tested == len(groups)
    cam.position = np.array([0.0, 0.0, 40.0])
    cam.look_at([0.0, 0.0, 0.0])
    near = vis.update(cam)
    g0 = world.slots(groups[:1])[0]
    assert g0 not in set(near.drawn)  # opened: its children replace it
    kids0 = world.slots(children[:50])
    assert np.isin(near.drawn, kids0).sum() > 0
    # Children of closed groups are never tested.
    assert near.tested <= len(groups) + 50


def test_hlod_visible_set_equals_flat_reference_when_all_groups_open():
    world, groups, children = build_clustered_world(seed=3)
    visibility, lods = VisibilitySystem(world), LodSystem(world)
    TransformSystem(world).update()

    class vis:  # visibility then LOD, as the frame runs them
        update = staticmethod(lambda cam: lods.update(visibility.update(cam)))
    world["group"]["expand_px"][world.slots(groups)] = 0.0  # always open
    cam = Camera(position=np.array([120.0, 5.0, 30.0]), far=1000.0, viewport=(640, 480))
    cam.look_at([200.0, 0.0, 0.0])
    result = vis.update(cam)
    slots = world.slots(children)
    wb = world["world_bounds"]
    center, half = world_box(world, slots)
    kept = frustum_cull(cam.planes(), center, half, wb["radius"][slots])
    thresholds = world["lod"]["thresholds"][slots]
    from llmviz.engine.systems.visibility import projected_size_px
    size = projected_size_px(*center.T, wb["radius"][slots], cam.position, cam.focal_px)
    level = select_lod(size, thresholds, np.full(len(slots), -1, np.int8))
    expected = set(slots[kept & (level >= 0)])
    assert set(result.drawn) == expected


def test_rotated_entity_bounds_enclose_rotated_box():
    world = World()
    q = quat_from_axis_angle([0, 0, 1], math.pi / 4)
    ids = world.spawn(1, transform={"position": (0, 0, 0), "scale": (2, 2, 2), "rotation": q, "rotated": True},
                      bounds={})
    TransformSystem(world).update()
    half = world_box(world, world.slots(ids))[1][0]
    assert half[0] == pytest.approx(math.sqrt(2), rel=1e-5) and half[2] == pytest.approx(1.0)
