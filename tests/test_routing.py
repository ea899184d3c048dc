"""MoE routing equals independent references: transformers' Mixtral and Qwen3-MoE blocks, numpy
computations of the formulas, a direct DeepSeek-V3 gate, and a hand-made capacity example."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from llmviz.models.sim import routing  # noqa: E402

TOL = 1e-5
HIDDEN, INTER, N_EXPERTS, TOP_K, T = 16, 32, 8, 2, 24


def _experts_from(block):
    """SwiGLU callables over the block's stacked (E, 2I, D) gate_up and (E, D, I) down weights."""
    gate_up, down = block.experts.gate_up_proj.detach(), block.experts.down_proj.detach()
    inter = down.shape[-1]
    return [lambda h, e=e: routing.swiglu(h, gate_up[e, :inter], gate_up[e, inter:], down[e])
            for e in range(gate_up.shape[0])]


def _seeded_block(cls, config, seed):
    torch.manual_seed(seed)
    block = cls(config).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0.0, 0.5)
    return block


def _compare_block(block, norm_topk_prob, seed):
    x = torch.randn(2, T // 2, HIDDEN, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        want = block(x)
        want_logits, want_gates, want_index = block.gate(x.reshape(-1, HIDDEN))
        got, rec = routing.moe_forward(x, block.gate.weight.detach(), _experts_from(block),
                                       "softmax_topk", k=TOP_K, norm_topk_prob=norm_topk_prob)
    assert torch.equal(rec.topk, want_index)
    torch.testing.assert_close(rec.logits, want_logits, atol=TOL, rtol=0)
    torch.testing.assert_close(rec.gates, want_gates, atol=TOL, rtol=0)
    torch.testing.assert_close(got, want, atol=TOL, rtol=0)
    # the per-expert contributions add up to the output
    torch.testing.assert_close(rec.contributions.sum(dim=1), got.reshape(-1, HIDDEN), atol=TOL, rtol=0)
    assert int(rec.tokens_per_expert.sum()) == T * TOP_K
    assert not rec.dropped.any()


def test_matches_transformers_mixtral_block():
    mixtral = pytest.importorskip("transformers.models.mixtral.modeling_mixtral")
    from transformers import MixtralConfig
    config = MixtralConfig(hidden_size=HIDDEN, intermediate_size=INTER, num_local_experts=N_EXPERTS,
                           num_experts_per_tok=TOP_K, hidden_act="silu")
    _compare_block(_seeded_block(mixtral.MixtralSparseMoeBlock, config, 0), True, 1)


@pytest.mark.parametrize("norm_topk_prob", [True, False])
def test_matches_transformers_qwen3_moe_block(norm_topk_prob):
    qwen = pytest.importorskip("transformers.models.qwen3_moe.modeling_qwen3_moe")
    from transformers import Qwen3MoeConfig
    config = Qwen3MoeConfig(hidden_size=HIDDEN, moe_intermediate_size=INTER, num_experts=N_EXPERTS,
                            num_experts_per_tok=TOP_K, norm_topk_prob=norm_topk_prob, hidden_act="silu")
    _compare_block(_seeded_block(qwen.Qwen3MoeSparseMoeBlock, config, 2), norm_topk_prob, 3)


def test_mixtral_loss_matches_transformers_and_numpy():
    mixtral = pytest.importorskip("transformers.models.mixtral.modeling_mixtral")
    g = torch.Generator().manual_seed(4)
    layers = (torch.randn(T, N_EXPERTS, generator=g), torch.randn(T, N_EXPERTS, generator=g))
    want = mixtral.load_balancing_loss_func(layers, N_EXPERTS, TOP_K)
    got = routing.mixtral_load_balancing_loss(layers, TOP_K)
    torch.testing.assert_close(got, want, atol=TOL, rtol=0)
    logits = np.concatenate([layer.numpy() for layer in layers]).astype(np.float64)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    chosen = np.argsort(-p, axis=1)[:, :TOP_K]
    counts = np.array([(chosen == e).sum() for e in range(N_EXPERTS)])
    numpy_loss = N_EXPERTS * np.sum(counts / len(p) * p.mean(0))
    assert abs(got.item() - numpy_loss) < TOL


def _np_softmax(logits):
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def test_switch_top1_and_aux_loss():
    g = torch.Generator().manual_seed(5)
    x, w = torch.randn(T, HIDDEN, generator=g), torch.randn(N_EXPERTS, HIDDEN, generator=g)
    r = routing.switch_top1(x, w)
    p = _np_softmax(x.double().numpy() @ w.double().numpy().T)
    top = p.argmax(1)
    assert np.array_equal(r.topk[:, 0].numpy(), top)
    assert np.allclose(r.gates[:, 0].numpy(), p[np.arange(T), top], atol=TOL)
    f = np.bincount(top, minlength=N_EXPERTS) / T
    want = 0.01 * N_EXPERTS * np.sum(f * p.mean(0))
    assert abs(routing.switch_aux_loss(r.probs, r.topk, alpha=0.01).item() - want) < TOL
    # minimal (= α) for uniform routing: equal probabilities, argmax spread evenly
    uniform = torch.full((N_EXPERTS, N_EXPERTS), 1 / N_EXPERTS)
    assert abs(routing.switch_aux_loss(uniform, torch.arange(N_EXPERTS)).item() - 0.01) < 1e-7
    # the output is p_i · E_i(x)
    experts = [lambda h, s=e + 1.0: h * s for e in range(N_EXPERTS)]
    y, _ = routing.moe_forward(x, w, experts, "switch")
    want_y = x.numpy() * (top + 1.0)[:, None] * p[np.arange(T), top][:, None]
    assert np.allclose(y.numpy(), want_y, atol=TOL)


def test_gshard_top2_and_aux_loss():
    g = torch.Generator().manual_seed(6)
    x, w = torch.randn(T, HIDDEN, generator=g), torch.randn(N_EXPERTS, HIDDEN, generator=g)
    r = routing.gshard_top2(x, w)
    logits = x.double().numpy() @ w.double().numpy().T
    p = _np_softmax(logits)
    first = p.argmax(1)
    masked = logits.copy()
    masked[np.arange(T), first] = -np.inf
    second = masked.argmax(1)
    assert np.array_equal(r.topk.numpy(), np.stack([first, second], 1))
    g1, g2 = p[np.arange(T), first], p[np.arange(T), second]
    assert np.allclose(r.gates.numpy(), np.stack([g1, g2], 1) / (g1 + g2)[:, None], atol=TOL)
    c = np.bincount(first, minlength=N_EXPERTS) / T
    want = N_EXPERTS * np.sum(p.mean(0) * c)
    assert abs(routing.gshard_aux_loss(r.probs, r.topk[:, 0]).item() - want) < TOL


def _deepseek_direct(x, w, bias, k, n_groups, topk_groups, route_scale):
    """Token by token, in numpy: the formula of formulas.md read literally."""
    s = 1 / (1 + np.exp(-(x @ w.T)))
    per_group = w.shape[0] // n_groups
    index, weights = [], []
    for row in range(len(x)):
        sb = s[row] + bias
        group_score = [np.sort(sb[gi * per_group:(gi + 1) * per_group])[-2:].sum() for gi in range(n_groups)]
        groups = np.argsort(group_score)[::-1][:topk_groups]
        allowed = [e for gi in groups for e in range(gi * per_group, (gi + 1) * per_group)]
        chosen = sorted(allowed, key=lambda e: -sb[e])[:k]
        index.append(chosen)
        weights.append(s[row, chosen] / s[row, chosen].sum() * route_scale)
    return np.array(index), np.array(weights)


def test_deepseek_v3_gate_matches_direct_and_bias_only_selects():
    n_exp, n_groups, topk_groups, k, scale = 16, 4, 2, 4, 2.5
    g = torch.Generator().manual_seed(7)
    x, w = torch.randn(T, HIDDEN, generator=g), torch.randn(n_exp, HIDDEN, generator=g)
    bias = torch.randn(n_exp, generator=g) * 0.3
    r = routing.deepseek_v3_gate(x, w, bias, k, n_groups, topk_groups, scale)
    want_index, want_weights = _deepseek_direct(x.double().numpy(), w.double().numpy(),
                                                bias.double().numpy(), k, n_groups, topk_groups, scale)
    assert np.array_equal(r.topk.numpy(), want_index)
    assert np.allclose(r.gates.numpy(), want_weights, atol=TOL)
    assert np.allclose(r.gates.sum(-1).numpy(), scale, atol=TOL)
    # chosen experts lie in at most topk_groups groups
    assert all(len(set((row // (n_exp // n_groups)).tolist())) <= topk_groups for row in r.topk)

    # a large bias on expert 3 makes every token pick it, but its weight stays s_3 / Σ s_selected
    boost = torch.zeros(n_exp)
    boost[3] = 10.0
    biased = routing.deepseek_v3_gate(x, w, boost, k, n_groups, topk_groups, scale)
    assert (biased.topk == 3).any(dim=1).all()
    s = torch.sigmoid(x @ w.T)
    chosen = s.gather(1, biased.topk)
    torch.testing.assert_close(biased.gates, chosen / chosen.sum(-1, keepdim=True) * scale, atol=TOL, rtol=0)
    assert not torch.equal(biased.topk, r.topk)
    # the weights never see the bias: the same selection under a different bias gives the same weights
    same_sel = routing.deepseek_v3_gate(x, w, boost * 2, k, n_groups, topk_groups, scale)
    assert torch.equal(same_sel.topk, biased.topk)
    torch.testing.assert_close(same_sel.gates, biased.gates, atol=0, rtol=0)


def test_capacity_drops_in_token_order_hand_made():
    # 6 tokens, 3 experts, top-1, capacity_factor 1 → capacity ceil(6/3 × 1) = 2
    assert routing.expert_capacity(6, 3, 1.0) == 2
    assert routing.expert_capacity(6, 3, 1.0, k=2) == 4
    assert routing.expert_capacity(5, 4, 1.25) == math.ceil(5 / 4 * 1.25)
    topk = torch.tensor([[0], [0], [1], [0], [0], [2]])
    cap = routing.apply_capacity(topk, 3, 2)
    assert cap.dropped[:, 0].tolist() == [False, False, False, True, True, False]
    assert cap.load.tolist() == [4, 1, 1]
    assert cap.kept.tolist() == [2, 1, 1]
    load = np.array([4, 1, 1.0])
    assert abs(cap.load_cv - load.std() / load.mean()) < 1e-6

    # top-2: every first choice is served before any second choice
    topk2 = torch.tensor([[0, 1], [1, 0], [0, 1]])
    cap2 = routing.apply_capacity(topk2, 2, 2)
    # expert 0: first choices of tokens 0 and 2 fill it, so token 1's second choice is dropped;
    # expert 1: token 1's first choice, then token 0's second; token 2's second is dropped
    assert cap2.dropped.tolist() == [[False, False], [False, True], [False, True]]
    assert cap2.kept.tolist() == [2, 2]
    assert cap2.load.tolist() == [3, 3] and cap2.load_cv == 0.0


def test_moe_forward_with_capacity_zeroes_dropped_tokens():
    g = torch.Generator().manual_seed(8)
    x, w = torch.randn(T, HIDDEN, generator=g), torch.randn(4, HIDDEN, generator=g)
    experts = [lambda h: h for _ in range(4)]
    y, rec = routing.moe_forward(x, w, experts, "switch", capacity_factor=0.5)
    assert rec.capacity == math.ceil(T / 4 * 0.5)
    assert int(rec.tokens_per_expert.max()) <= rec.capacity
    dropped = rec.dropped[:, 0]
    assert torch.all(y[dropped] == 0)
    torch.testing.assert_close(y[~dropped], x[~dropped] * rec.gates[~dropped], atol=TOL, rtol=0)
    assert int(rec.tokens_per_expert.sum()) + int(dropped.sum()) == T


def test_unknown_routing_is_an_error():
    with pytest.raises(ValueError, match="unknown routing"):
        routing.moe_forward(torch.zeros(2, 4), torch.zeros(3, 4), [], "nope")


@pytest.mark.parametrize("name,kwargs", [("softmax_topk", {"k": 3}), ("switch", {}), ("gshard", {}),
                                         ("deepseek_v3", {"k": 2, "n_groups": 2, "topk_groups": 1,
                                                          "route_scale": 2.5})])
def test_moe_forward_is_the_gate_weighted_sum_for_every_routing(name, kwargs):
    g = torch.Generator().manual_seed(9)
    x, w = torch.randn(T, HIDDEN, generator=g), torch.randn(N_EXPERTS, HIDDEN, generator=g)
    mats = torch.randn(N_EXPERTS, HIDDEN, HIDDEN, generator=g)
    experts = [lambda h, m=m: h @ m for m in mats]
    y, rec = routing.moe_forward(x, w, experts, name, **kwargs)
    want = torch.stack([sum(rec.gates[t, j] * (x[t] @ mats[rec.topk[t, j]]) for j in range(rec.topk.shape[1]))
                        for t in range(T)])
    torch.testing.assert_close(y, want, atol=1e-4, rtol=1e-5)
    assert rec.aux_loss.ndim == 0 and (name != "deepseek_v3" or rec.aux_loss.item() == 0.0)
