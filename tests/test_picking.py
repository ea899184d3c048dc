"""Picking: the nearest box along a ray, rotated boxes hit exactly, and the data cell under the cursor."""
import math

import numpy as np
import pytest

from llmviz.engine.camera import Camera
from llmviz.engine.ecs.world import World
from llmviz.engine.math3d import quat_from_axis_angle, quat_to_matrix
from llmviz.engine.picking import pick


def reference_hit(origin, direction, center, half, rot):
    """Per-box ray march in the box frame (matrices, not quaternions): first t inside, or inf."""
    r = rot.T
    for t in np.linspace(0, 200, 40001):
        p = r @ (origin + t * direction - center)
        if (np.abs(p) <= half + 1e-9).all():
            return t
    return math.inf


def test_pick_matches_ray_march_on_random_rotated_boxes():
    rng = np.random.default_rng(7)
    world = World()
    n = 12
    pos = rng.uniform(-30, 30, (n, 3))
    scale = rng.uniform(1, 6, (n, 3))
    quats = np.array([quat_from_axis_angle(rng.normal(size=3), rng.uniform(0, math.pi)) for _ in range(n)])
    ids = world.spawn(n, transform={"position": pos, "scale": scale, "rotation": quats, "rotated": True},
                      bounds={}, pickable={})
    slots = world.slots(ids)
    hits = 0
    for _ in range(25):
        target = pos[rng.integers(n)] + rng.normal(size=3)
        origin = rng.uniform(-60, 60, 3)
        direction = (target - origin) / np.linalg.norm(target - origin)
        result = pick(world, slots, origin, direction)
        ref = [reference_hit(origin, direction, pos[i], scale[i] / 2, quat_to_matrix(quats[i])) for i in range(n)]
        best = int(np.argmin(ref))
        if math.isinf(ref[best]):
            assert result is None
            continue
        hits += 1
        assert result is not None and result.slot == slots[best]
        assert result.distance == pytest.approx(ref[best], abs=0.02)
    assert hits > 10


def test_pick_reports_data_cell_under_cursor():
    world = World()
    rows, cols = 4, 6
    ids = world.spawn(1, transform={"position": (0, 0, 0), "scale": (6, 4, 0.5)}, bounds={}, pickable={},
                      datatex={"region": (0, 0, cols, rows)})
    slots = world.slots(ids)
    cam = Camera(position=np.array([0.0, 0.0, 10.0]), viewport=(600, 400))
    cam.look_at([0.0, 0.0, 0.0])
    for row in range(rows):
        for col in range(cols):
            world_pt = np.array([-3 + (col + 0.5), 2 - (row + 0.5), 0.25])
            px, py, _ = cam.project(world_pt)[0]
            origin, direction = cam.ray(px, py)
            result = pick(world, slots, origin, direction)
            assert result is not None and result.entity == ids[0]
            assert result.cell == (row, col)


def test_pick_respects_pickable_and_candidates():
    world = World()
    a = world.spawn(1, transform={"position": (0, 0, -5)}, bounds={}, pickable={})
    b = world.spawn(1, transform={"position": (0, 0, -10), "scale": (4, 4, 4)}, bounds={}, pickable={})
    slots = world.slots(np.r_[a, b])
    hit = pick(world, slots, np.zeros(3), np.array([0, 0, -1.0]))
    assert hit.entity == a[0] and hit.distance == pytest.approx(4.5)
    world.set("pickable", a, enabled=False)
    assert pick(world, slots, np.zeros(3), np.array([0, 0, -1.0])).entity == b[0]
    assert pick(world, world.slots(a), np.zeros(3), np.array([0, 0, -1.0])) is None
    assert pick(world, slots, np.zeros(3), np.array([0, 1.0, 0])) is None
