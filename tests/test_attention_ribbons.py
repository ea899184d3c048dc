"""Rollout and flow per edge of the layer graph (the ribbons between layers) against independent
computations: every path through the layer graph enumerated (rollout), and the flow's own conservation
and its per-pair values (flow); the ribbons' geometry and hover on a real layout, without a window."""
import itertools

import numpy as np
import pytest

from llmviz.models import attention_analysis as aa


def _layers(seed: int, T: int = 5, L: int = 3, heads: int = 2):
    rng = np.random.default_rng(seed)
    causal = np.tril(np.ones((T, T)))
    out = []
    for _ in range(L):
        a = rng.random((heads, T, T)) ** 3 * causal
        out.append(a / a.sum(-1, keepdims=True))
    return out


def _a_hats(layers):
    # written out again from the paper's definition: the heads' mean, plus the identity, rows renormalised
    out = []
    for layer in layers:
        a = 0.5 * np.mean(layer, 0) + 0.5 * np.eye(layer.shape[-1])
        out.append(a / a.sum(1, keepdims=True))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rollout_edges_are_the_sum_over_every_path_through_the_edge(seed):
    layers = _layers(seed)
    T, L = layers[0].shape[-1], len(layers)
    a = _a_hats(layers)
    output = T - 1
    through = np.zeros((L, T, T))
    inputs = np.zeros(T)
    # a path: the token after each layer, from the output down to the input (tokens[L] = output)
    for path in itertools.product(range(T), repeat=L):
        tokens = list(path) + [output]
        weight = np.prod([a[l][tokens[l + 1], tokens[l]] for l in range(L)])
        inputs[tokens[0]] += weight
        for l in range(L):
            through[l, tokens[l + 1], tokens[l]] += weight
    edges, row = aa.rollout_edges(layers, output)
    np.testing.assert_allclose(edges, through, atol=1e-12)
    np.testing.assert_allclose(row, inputs, atol=1e-12)
    np.testing.assert_allclose(edges.sum((1, 2)), 1.0, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 3])
def test_flow_edges_conserve_flow_and_deliver_each_pairs_maximum_flow(seed):
    layers = _layers(seed, T=5, L=2)
    T, L = 5, 2
    output = T - 1
    edges, inputs = aa.flow_edges(layers, output)
    flow = aa.attention_flow(layers)[output]
    np.testing.assert_allclose(inputs, flow / flow.sum(), atol=1e-12)
    np.testing.assert_allclose(edges.sum((1, 2)), 1.0, atol=1e-9)            # every unit crosses every layer once
    np.testing.assert_allclose(edges[0].sum(0), inputs, atol=1e-9)         # what enters each input token
    for l in range(L - 1):                                                   # in = out at every middle node
        np.testing.assert_allclose(edges[l].sum(1), edges[l + 1].sum(0), atol=1e-9)
    assert np.allclose(edges[-1].sum(1)[:output], 0) and edges[-1].sum() == pytest.approx(1.0)


def test_one_maximum_flows_edges_respect_capacity_and_conservation():
    rng = np.random.default_rng(5)
    capacity = rng.random((7, 7)) * (rng.random((7, 7)) < 0.5)
    np.fill_diagonal(capacity, 0.0)
    value, flows = aa.max_flow_edges(capacity, 0, 6)
    assert value == pytest.approx(aa.max_flow(capacity, 0, 6))
    assert (flows <= capacity + 1e-12).all() and (flows >= 0).all()
    net = flows.sum(1) - flows.sum(0)                                        # out − in at each node
    np.testing.assert_allclose(net[1:6], 0.0, atol=1e-12)
    assert net[0] == pytest.approx(value) and net[6] == pytest.approx(-value)


def test_the_ribbons_sit_beside_the_model_and_hover_finds_the_one_under_the_pointer():
    pytest.importorskip("imgui_bundle")
    from types import SimpleNamespace

    from llmviz.engine.ecs.world import World
    from llmviz.models.registry import load_registry
    from llmviz.scenes.attention_ribbons import AttentionRibbons
    from llmviz.scenes.layout import layout_model

    layout = layout_model(load_registry().get("moe-4"))
    layers = _layers(4, T=6, L=2)
    current = SimpleNamespace(tokens=list(range(6)), blocks=[0, 1], labels=list("abcdef"))
    result = SimpleNamespace(current=current, ribbons={"rollout": aa.rollout_edges(layers, 5)})
    world = World()
    ribbons = AttentionRibbons(world, layout)
    ribbons.show(result, "rollout")
    model_left = layout.group_center[0, 0] - layout.group_size[0, 0] / 2
    assert ribbons.ends[:, [0, 2]].max() < model_left                     # beside the model, not over it
    assert len(ribbons.edges) == 2 * 6 * 7 // 2                            # every causal edge of both layers
    k = int(np.argmax(ribbons.values))
    layer, i, j = ribbons.edges[k]
    assert ribbons.values[k] == pytest.approx(aa.rollout_edges(layers, 5)[0][layer, i, j])
    middle = (ribbons.ends[k, :2] + ribbons.ends[k, 2:]) / 2
    assert ribbons.hovered(np.r_[middle, 50.0], np.array([0.0, 0.0, -1.0])) == k
    assert f"{ribbons.values[k]:.4f}" in ribbons.describe(k)
    assert ribbons.hovered(np.r_[middle + [1e4, 0], 50.0], np.array([0.0, 0.0, -1.0])) is None
    ribbons.show(result, "off")
    assert ribbons.hovered(np.r_[middle, 50.0], np.array([0.0, 0.0, -1.0])) is None
