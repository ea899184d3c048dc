"""MoE routing for the scene: specs match the models, stats follow routing.py, re-routing,
simulated DeepSeek-V3 group limits, export, packet paths and the live session."""
import csv

import numpy as np
import pytest
import torch

from llmviz.engine.systems.packets import PacketSystem
from llmviz.models.params import count_params
from llmviz.models.registry import load_registry
from llmviz.models.sim import moe_corpus
from llmviz.models.sim.moe_model import load_moe
from llmviz.scenes import moe_live
from llmviz.scenes.layout import layout_model

torch.set_num_threads(1)
TEXT = "def f(x): return x+1\nprint(f(2)) # ok"


@pytest.fixture(scope="module")
def registry():
    return load_registry(include_user=False)


@pytest.fixture(scope="module")
def model4():
    return load_moe("moe-4")


def _live_stats(model, text=TEXT, k=None, factor=None):
    tokens = moe_corpus.encode(text)
    trace = model.trace(tokens)
    logits = np.stack([trace[f"blocks.{i}.moe.router"] for i in range(model.cfg.n_layers)])
    return moe_live.compute_stats("moe-4", logits, moe_live.RouterConfig(), range(model.cfg.n_layers),
                                  tokens, text, k, factor)


@pytest.mark.parametrize("variant", ["moe-4", "moe-8"])
def test_spec_param_count_equals_model(registry, variant):
    spec = registry.get(variant)
    model = load_moe(variant)
    assert count_params(spec).total == sum(p.numel() for p in model.parameters())
    arch = spec.architecture
    assert (arch.n_layers, arch.d_model, arch.n_heads, arch.moe.n_experts, arch.moe.top_k, arch.moe.expert_d_ff) == \
        (model.cfg.n_layers, model.cfg.d_model, model.cfg.n_heads, model.cfg.n_experts, model.cfg.top_k,
         model.cfg.expert_d_ff)
    assert "trained by llmviz (llmviz train " + variant + ")" in spec.sources


def test_stats_equal_the_models_routing_record(model4):
    stats = _live_stats(model4)
    with torch.no_grad():
        _, records = model4(torch.tensor([moe_corpus.encode(TEXT)]))
    for layer, rec in enumerate(records):
        assert np.array_equal(stats.topk[layer], rec.topk.numpy())
        assert np.allclose(stats.gates[layer], rec.gates.numpy())
        # the heatmap's counts are the record's tokens per expert
        assert np.array_equal(stats.counts[layer], rec.tokens_per_expert.numpy())
        assert stats.aux_loss[layer] == pytest.approx(float(rec.aux_loss), rel=1e-6)
        assert stats.cv[layer] == pytest.approx(rec.load_cv, rel=1e-6)
    assert np.allclose(stats.mean_gate.sum(axis=1), 1.0, atol=1e-5)   # renormalised top-k sums to 1


def test_top_k_and_capacity_change_what_they_should(model4):
    base = _live_stats(model4)
    T = base.n_tokens
    assert (base.load.sum(axis=1) == T * 2).all() and base.n_dropped.sum() == 0
    k3 = moe_live.restat(base, 3, None)
    assert (k3.load.sum(axis=1) == T * 3).all()
    assert not np.allclose(k3.cv, base.cv)
    drops = [moe_live.restat(base, 2, f).n_dropped.sum() for f in (4.0, 2.0, 1.0, 0.5, 0.25)]
    assert drops == sorted(drops) and drops[-1] > drops[0]
    tight = moe_live.restat(base, 2, 0.5)
    assert tight.capacity == int(np.ceil(T / 4 * 0.5 * 2))
    assert (tight.counts <= tight.capacity).all()
    assert (tight.counts.sum(axis=1) + tight.n_dropped == T * 2).all()
    # going back restores the original exactly: the logits were kept, the model not re-run
    again = moe_live.restat(tight, None, None)
    assert np.array_equal(again.topk, base.topk) and np.array_equal(again.counts, base.counts)


def test_simulated_deepseek_picks_only_inside_top_groups(registry):
    sim = moe_live.SimulatedRouting(registry.get("deepseek-v3"), TEXT)
    stats = sim.stats
    assert stats.simulated and stats.top_k == 8 and stats.n_experts == 256
    assert stats.layers[0] == 3 and stats.n_layers == 58       # first 3 layers are dense
    scores = stats.probs + stats.bias[:, None, :]                # selection uses s + b
    grouped = scores.reshape(stats.n_layers, stats.n_tokens, 8, 32)
    group_score = np.sort(grouped, axis=-1)[..., -2:].sum(axis=-1)
    top_groups = np.argsort(-group_score, axis=-1)[..., :4]
    chosen_groups = stats.topk // 32
    inside = (chosen_groups[..., :, None] == top_groups[..., None, :]).any(-1)
    assert inside.all()
    assert np.allclose(stats.gates.sum(axis=-1), 2.5, atol=1e-4)  # route_scale
    assert (stats.aux_loss == 0).all()
    # seeded: the same text routes the same way
    again = moe_live.SimulatedRouting(registry.get("deepseek-v3"), TEXT).stats
    assert np.array_equal(again.topk, stats.topk)


@pytest.mark.parametrize("model_id", ["mixtral-8x7b", "gpt-4", "qwen3-30b-a3b", "jamba-v0.1"])
def test_simulated_routing_for_other_moe_specs(registry, model_id):
    spec = registry.get(model_id)
    stats = moe_live.SimulatedRouting(spec, capacity_factor=1.0).stats
    arch = spec.architecture
    assert stats.simulated and stats.n_experts == arch.moe.n_experts and stats.top_k == arch.moe.top_k
    assert list(stats.layers) == [i for i in range(arch.n_layers) if arch.is_moe_layer(i)]
    assert (stats.counts.sum(axis=1) + stats.n_dropped == stats.n_tokens * stats.top_k).all()


def test_export_round_trips(model4, tmp_path):
    stats = _live_stats(model4, k=3, factor=1.0)
    npz = moe_live.export_routing(stats, tmp_path / "r.npz")
    with np.load(npz) as data:
        for name in moe_live.NPZ_FIELDS:
            assert np.array_equal(data[name], getattr(stats, name)), name
        assert int(data["top_k"]) == 3 and float(data["capacity_factor"]) == 1.0
        assert str(data["text"]) == TEXT and not bool(data["simulated"])
    path = moe_live.export_routing(stats, tmp_path / "r.csv")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == stats.n_layers * stats.n_tokens * stats.top_k
    first = rows[0]
    assert int(first["expert"]) == stats.topk[0, 0, 0] and float(first["gate"]) == pytest.approx(stats.gates[0, 0, 0], rel=1e-5)
    assert sum(int(r["dropped"]) for r in rows) == stats.n_dropped.sum()
    with pytest.raises(ValueError):
        moe_live.export_routing(stats, tmp_path / "r.txt")


def test_packets_leave_the_router_and_end_on_the_residual(registry, model4):
    spec = registry.get("moe-4")
    layout = layout_model(spec)
    stats = _live_stats(model4)
    assert (moe_live.routing_packets(layout, stats, 1)["waypoints"][..., 2] > 0).all()   # in front of the blocks
    args = moe_live.routing_packets(layout, stats, 1, lift=0.0)
    system = PacketSystem()
    system.set_packets(**args)
    router = layout.center[layout.index("blocks.1.moe.router")]
    resid = layout.center[layout.index("blocks.1.resid2")]
    start, _ = system.positions(0.0)
    assert np.array_equal(start, np.broadcast_to(router, start.shape).astype(np.float32))
    end, flying = system.positions(moe_live.token_arrival_time(stats.n_tokens - 1))
    assert np.array_equal(end, np.broadcast_to(resid, end.shape).astype(np.float32)) and not flying.any()
    # through each chosen expert, wider for the bigger gate
    experts = args["waypoints"][:, 1]
    chosen = stats.topk[1].reshape(-1)
    for p, e in zip(experts[:6], chosen[:6]):
        assert np.allclose(p, layout.center[layout.index(f"blocks.1.moe.expert.{e}")])
    widths = args["width"].reshape(-1, 2)
    assert (widths[:, 0] >= widths[:, 1]).all()
    # a dropped assignment skips its expert
    tight = moe_live.restat(stats, 2, 0.25)
    dropped_args = moe_live.routing_packets(layout, tight, 1, lift=0.0)
    d = tight.dropped[1].reshape(-1)
    assert d.any()
    mid = (router + layout.center[layout.index("blocks.1.moe.out")]) / 2
    assert np.allclose(dropped_args["waypoints"][d, 1], mid)


def test_deepseek_packets_use_the_layout(registry):
    spec = registry.get("deepseek-v3")
    layout = layout_model(spec)
    stats = moe_live.SimulatedRouting(spec, "abc").stats
    args = moe_live.routing_packets(layout, stats, 0, lift=0.0)
    assert args["waypoints"].shape == (3 * 8, 4, 3)
    e = stats.topk[0, 0, 0]
    assert np.allclose(args["waypoints"][0, 1], layout.center[layout.index(f"blocks.3.moe.expert.{e}")])
