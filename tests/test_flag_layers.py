"""Flag composition: modes write layers, one system combines them, checked against a per-entity reference."""
import numpy as np

from llmviz.engine.ecs.components import FLAG_DIMMED, FLAG_HIGHLIGHTED, FLAG_HIDDEN
from llmviz.engine.ecs.world import World
from llmviz.engine.systems.flag_layers import FlagLayers


def world_of(n):
    world = World(capacity=n)
    world.spawn(n, transform={}, renderable={})
    return world


def reference(n, layers):
    """The rule of engine/systems/flag_layers.py, one entity at a time."""
    out = []
    for slot in range(n):
        dimmed = any((slot not in lit) if dim_rest else (dim is not None and slot in dim)
                     for lit, dim, dim_rest, soft in layers)
        strong = any(slot in lit for lit, dim, dim_rest, soft in layers if not soft)
        soft_lit = any(slot in lit for lit, dim, dim_rest, soft in layers if soft)
        out.append((strong or (soft_lit and not dimmed), dimmed))
    return out


def test_layers_combine_as_the_rule_says_on_random_layers():
    rng = np.random.default_rng(3)
    n = 300
    for trial in range(20):
        world = world_of(n)
        flags = world["renderable"]["flags"]
        flags[:n] = FLAG_HIDDEN * (rng.random(n) < 0.1)  # other bits are left alone
        hidden = flags[:n].copy()
        composer = FlagLayers(world)
        layers = []
        for k in range(rng.integers(1, 5)):
            lit = set(rng.choice(n, rng.integers(0, 40), replace=False).tolist())
            dim_rest = bool(rng.random() < 0.3)
            dim = None if dim_rest or rng.random() < 0.3 else set(rng.choice(n, 60, replace=False).tolist())
            soft = bool(rng.random() < 0.3)
            composer.set(f"layer{k}", sorted(lit), dim=None if dim is None else sorted(dim), dim_rest=dim_rest,
                         soft=soft)
            layers.append((lit, dim, dim_rest, soft))
        composer()
        expected = reference(n, layers)
        got = [(bool(f & FLAG_HIGHLIGHTED), bool(f & FLAG_DIMMED)) for f in flags[:n]]
        assert got == expected, trial
        assert ((flags[:n] & FLAG_HIDDEN) == hidden).all()


def test_nothing_is_written_until_a_layer_changes_and_clearing_restores():
    world = world_of(10)
    flags = world["renderable"]["flags"]
    flags[3] = FLAG_HIGHLIGHTED  # set by someone else before any layer: left alone
    composer = FlagLayers(world)
    composer()
    assert flags[3] == FLAG_HIGHLIGHTED
    composer.set("hover", [5])
    composer()
    assert flags[5] & FLAG_HIGHLIGHTED and not flags[3] & FLAG_HIGHLIGHTED
    version = composer.version
    composer.set("hover", [5])  # the same layer again (a per-frame writer): no new version
    assert composer.version == version
    composer.set("focus", [1, 2], dim_rest=True)
    composer()
    assert flags[5] & FLAG_DIMMED and flags[5] & FLAG_HIGHLIGHTED and not flags[1] & FLAG_DIMMED
    composer.clear("focus")
    composer.clear("hover")
    composer()
    assert not (flags[:10] & (FLAG_HIGHLIGHTED | FLAG_DIMMED)).any()
