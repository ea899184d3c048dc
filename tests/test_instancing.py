"""Instancing: one batch per (mesh, material, LOD), instance counts equal visible counts, rows match the entities."""
import numpy as np

from llmviz.engine.camera import Camera
from llmviz.engine.ecs.world import World
from llmviz.engine.render.backend import INSTANCE_SLICES
from llmviz.engine.stress import build_stress
from llmviz.engine.systems.instancing import InstancingSystem
from llmviz.engine.systems.transform import TransformSystem
from llmviz.engine.systems.visibility import LodSystem, VisibilitySystem


def run_frame(scene, t):
    world = scene.world
    TransformSystem(world).update()
    vis, lod, inst = VisibilitySystem(world), LodSystem(world), InstancingSystem(world)
    cam = scene.camera_at(t)
    cam.viewport = (640, 360)
    result = lod.update(vis.update(cam))
    return world, result, inst, inst.build(result.drawn)


def test_instance_counts_equal_visible_counts_and_batches_are_unique():
    scene = build_stress(5000, seed=2)
    for t in (0.0, 0.25, 0.6):
        world, result, inst, batches = run_frame(scene, t)
        assert sum(b.count for b in batches) == len(result.drawn) > 0
        keys = [(b.mesh, b.material, b.lod) for b in batches]
        assert len(keys) == len(set(keys))
        drawn_slots = np.concatenate(inst.batch_slots)
        assert sorted(drawn_slots.tolist()) == sorted(result.drawn.tolist())
        levels = world["lod"]["level"]
        for batch, slots in zip(batches, inst.batch_slots):
            assert (levels[slots] == batch.lod).all()
            assert (world["renderable"]["mesh"][slots] == batch.mesh).all()
        assert inst.instances_per_lod[: 3] == [sum(b.count for b in batches if b.lod == k) for k in range(3)]


def test_instance_rows_carry_each_entity_fields():
    world = World()
    ids = world.spawn(3, transform={"position": [(1, 2, 3), (4, 5, 6), (7, 8, 9)], "scale": (2, 3, 4)},
                      bounds={}, renderable={"color": [(1, 0, 0, 1), (0, 1, 0, 1), (0, 0, 1, 1)], "opacity": 0.5},
                      datatex={"region": (10, 20, 6, 4), "value_range": (-3, 3), "colormap": 1})
    TransformSystem(world).update()
    inst = InstancingSystem(world)
    (batch,) = inst.build(world.slots(ids))
    rows = batch.instances
    np.testing.assert_allclose(rows[:, INSTANCE_SLICES["center"]], [(1, 2, 3), (4, 5, 6), (7, 8, 9)])
    np.testing.assert_allclose(rows[:, INSTANCE_SLICES["size"]], np.tile((2, 3, 4), (3, 1)))
    np.testing.assert_allclose(rows[:, INSTANCE_SLICES["color"]][:, 3], 0.5)
    np.testing.assert_allclose(rows[:, INSTANCE_SLICES["region"]], np.tile((10, 20, 6, 4), (3, 1)))
    np.testing.assert_allclose(rows[:, INSTANCE_SLICES["value_range"]], np.tile((-3, 3), (3, 1)))


def test_packed_buffer_is_reused_across_frames():
    scene = build_stress(3000, seed=5)
    world = scene.world
    TransformSystem(world).update()
    vis, lod, inst = VisibilitySystem(world), LodSystem(world), InstancingSystem(world)
    current, allocations, drew = inst._packed, 0, 0
    for t in np.linspace(0, 1, 20, endpoint=False):
        cam = scene.camera_at(float(t))
        drawn = lod.update(vis.update(cam)).drawn
        batches = inst.build(drawn)
        # `is` on arrays held here (ids of freed arrays are reused, so comparing ids proves nothing)
        if inst._packed is not current:
            assert len(drawn) > len(current), "reallocated although the old buffer was big enough"
            current, allocations = inst._packed, allocations + 1
        # every batch is a view into the one buffer, not a copy
        assert all(b.instances.base is current for b in batches)
        drew += bool(batches)
    assert allocations <= 2 and drew >= 10


def test_packed_buffer_grows_by_doubling_only_when_outgrown():
    scene = build_stress(5000, seed=5)
    world = scene.world
    TransformSystem(world).update()
    inst = InstancingSystem(world)
    boxes = world.slots(scene.boxes)
    world["lod"]["level"][boxes] = 0  # as the LOD system would pick up close
    first = inst._packed
    inst.build(boxes[:100])
    inst.build(boxes[:len(first)])
    assert inst._packed is first
    inst.build(boxes[:len(first) + 1])
    grown = inst._packed
    assert grown is not first and len(grown) == 2 * len(first)
    for n in (10, len(grown), 500):
        inst.build(boxes[:n])
        assert inst._packed is grown
    inst.build(boxes[:3 * len(first)])   # outgrown by more than twice: doubled until it fits
    assert len(inst._packed) == 4 * len(first)


def test_stress_scene_groups_cover_children():
    scene = build_stress(2000, seed=9)
    world = scene.world
    TransformSystem(world).update()
    from llmviz.engine.systems.transform import world_box
    boxes = world.slots(scene.boxes)
    world["lod"]["level"][boxes] = 0  # as the LOD system would pick up close
    parents = world["parent"]["slot"][boxes]
    bc, bh = world_box(world, boxes)
    gc, gh = world_box(world, parents)
    assert ((bc - bh) >= (gc - gh) - 1e-3).all() and ((bc + bh) <= (gc + gh) + 1e-3).all()


def test_levels_beyond_the_mesh_variants_draw_the_coarsest_variant():
    world = World()
    ids = world.spawn(1, transform={"position": (0, 0, -50)}, bounds={}, renderable={},
                      lod={"thresholds": (1000.0, 500.0, 100.0, 0.5)})
    TransformSystem(world).update()
    cam = Camera(position=np.zeros(3), viewport=(640, 360))
    result = LodSystem(world).update(VisibilitySystem(world).update(cam))
    assert world["lod"]["level"][world.slots(ids)][0] == 3
    (batch,) = InstancingSystem(world).build(result.drawn)
    assert batch.lod == 2
