"""The MoE model's trace: the layout's MoE ids, and numbers consistent with routing.py."""
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from llmviz.models.sim import moe_corpus, routing  # noqa: E402
from llmviz.models.sim.moe_model import MoEGPT, variant_config  # noqa: E402

TOL = 1e-5


@pytest.fixture(scope="module", params=["moe-4", "moe-8"])
def model(request):
    torch.manual_seed(0)
    return MoEGPT(variant_config(request.param)).eval()


def test_variants():
    assert variant_config("moe-4").n_experts == 4 and variant_config("moe-8").n_experts == 8
    assert variant_config("moe-8").top_k == 2
    with pytest.raises(ValueError):
        variant_config("moe-3")


def test_trace_has_the_layout_moe_ids(model):
    tokens = moe_corpus.encode("def add(x, y):\n")
    trace = model.trace(tokens)
    n, T, c = model.cfg.n_experts, len(tokens), model.cfg.d_model
    for i in range(model.cfg.n_layers):
        p = f"blocks.{i}.moe"
        assert trace[f"{p}.router"].shape == (T, n) and trace.axes(f"{p}.router") == ("t", "e")
        assert trace[f"{p}.gates"].shape == (T, n)
        assert trace[f"{p}.topk"].shape == (T, 2)
        assert all(trace[f"{p}.expert.{e}.out"].shape == (T, c) for e in range(n))
        assert trace[f"{p}.out"].shape == (T, c)
        assert f"blocks.{i}.ln2.out" in trace and f"blocks.{i}.resid2" in trace


def test_trace_numbers_agree_with_routing(model):
    tokens = moe_corpus.encode("User: thanks!\nBot:")
    trace = model.trace(tokens)
    for i, blk in enumerate(model.blocks):
        p = f"blocks.{i}"
        h = torch.from_numpy(trace[f"{p}.ln2.out"].copy())
        r = routing.softmax_topk(h, blk.moe.router.weight.detach(), 2)
        assert torch.equal(torch.from_numpy(trace[f"{p}.moe.topk"].copy()), r.topk)
        gates = torch.from_numpy(trace[f"{p}.moe.gates"].copy())
        torch.testing.assert_close(gates.gather(1, r.topk), r.gates, atol=TOL, rtol=0)
        assert ((gates > 0).sum(1) == 2).all()
        experts = sum(torch.from_numpy(trace[f"{p}.moe.expert.{e}.out"].copy()) for e in range(model.cfg.n_experts))
        out = torch.from_numpy(trace[f"{p}.moe.out"].copy())
        torch.testing.assert_close(experts, out, atol=TOL, rtol=0)
        resid = torch.from_numpy(trace[f"{p}.resid1"].copy()) + out
        torch.testing.assert_close(resid, torch.from_numpy(trace[f"{p}.resid2"].copy()), atol=TOL, rtol=0)
        # an expert's contribution is zero exactly on the tokens that did not pick it
        for e in range(model.cfg.n_experts):
            picked = (r.topk == e).any(1)
            assert (trace[f"{p}.moe.expert.{e}.out"][~picked.numpy()] == 0).all()


def test_batched_forward_matches_the_trace(model):
    x = torch.tensor([moe_corpus.encode("12+35=47\n"), moe_corpus.encode("The old r")])
    logits, records = model(x)
    assert len(records) == model.cfg.n_layers and records[0].topk.shape == (2 * 9, 2)
    trace = model.trace(x[0].tolist())
    torch.testing.assert_close(logits[0], torch.from_numpy(trace["logits"].copy()), atol=TOL, rtol=0)


@pytest.mark.parametrize("variant", ["moe-4", "moe-8"])
def test_shipped_weights_load_and_route_math_apart(variant):
    from llmviz.models.sim.moe_model import load_moe, shipped_weights_path
    if not shipped_weights_path(variant).is_file():
        pytest.skip(f"{variant} weights not shipped")
    trained = load_moe(variant)
    assert trained.cfg.n_experts == variant_config(variant).n_experts
    # the trained layer-0 router sends most arithmetic characters to one expert
    trace = trained.trace(moe_corpus.encode("12+35=47\n81-9=72\n"))
    top1 = trace["blocks.0.moe.topk"][:, 0]
    assert torch.bincount(torch.from_numpy(top1.copy())).max().item() >= 0.6 * len(top1)
