"""ECS invariants: bulk spawn/destroy, generations, queries, column growth, schedule order and timing."""
import numpy as np
import pytest

from llmviz.engine.ecs.schedule import PHASES, Schedule, ScheduleError
from llmviz.engine.ecs.world import EntityError, World


def test_bulk_spawn_returns_unique_live_ids_and_sets_fields():
    world = World(capacity=16)
    pos = np.random.default_rng(0).normal(size=(100_000, 3)).astype(np.float32)
    ids = world.spawn(100_000, transform={"position": pos}, renderable={"color": (1, 0, 0, 1)})
    assert len(np.unique(ids)) == 100_000
    assert world.count == 100_000 and world.capacity >= 100_000
    slots = world.slots(ids)
    np.testing.assert_array_equal(world["transform"]["position"][slots], pos)
    assert (world["renderable"]["color"][slots] == [1, 0, 0, 1]).all()
    assert (world["transform"]["scale"][slots] == 1).all()  # defaults fill grown columns


def test_destroy_bumps_generation_and_slots_are_reused():
    world = World()
    ids = world.spawn(10, transform={})
    world.destroy(ids[:4])
    assert world.count == 6
    assert not world.is_alive(ids[:4]).any() and world.is_alive(ids[4:]).all()
    with pytest.raises(EntityError, match="not alive"):
        world.slots(ids[:1])
    again = world.spawn(4)
    assert set(world.slots(again)) == set(ids[:4] & 0xFFFFFFFF)
    assert not np.isin(again, ids).any()  # same slots, new generation: old ids stay dead
    assert not world["transform"].has[world.slots(again)].any()  # components were cleared


def test_query_tracks_structure_changes():
    world = World()
    a = world.spawn(5, transform={}, renderable={})
    b = world.spawn(3, transform={})
    assert set(world.query("transform")) == set(world.slots(np.r_[a, b]))
    assert set(world.query("transform", "renderable")) == set(world.slots(a))
    world.destroy(a[:2])
    assert set(world.query("transform", "renderable")) == set(world.slots(a[2:]))
    world.add("renderable", b[:1])
    assert len(world.query("renderable", "transform")) == 4


def test_unknown_component_or_field_is_a_clear_error():
    world = World()
    with pytest.raises(EntityError, match="unknown component 'nope'"):
        world.spawn(1, nope={})
    ids = world.spawn(1)
    with pytest.raises(EntityError, match="no field 'colour'"):
        world.add("renderable", ids, colour=(1, 1, 1, 1))


def test_schedule_runs_phases_in_order_and_times_each_system():
    schedule = Schedule()
    calls = []
    schedule.add("render", "draw", lambda f: calls.append("draw"))
    schedule.add("input", "keys", lambda f: calls.append("keys"))
    schedule.add("visibility", "cull", lambda f: calls.append("cull"))
    schedule.add("visibility", "pre", lambda f: calls.append("pre"), before="cull")
    schedule.run(None)
    assert calls == ["keys", "pre", "cull", "draw"]
    assert schedule.order() == ["input/keys", "visibility/pre", "visibility/cull", "render/draw"]
    assert set(schedule.timings) == {"keys", "pre", "cull", "draw"}
    assert all(ms >= 0 for ms in schedule.timings.values())
    assert PHASES.index("visibility") < PHASES.index("lod") < PHASES.index("instancing")
    with pytest.raises(ScheduleError, match="unknown phase"):
        schedule.add("physics", "x", lambda f: None)
