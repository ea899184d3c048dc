"""Mixture-of-experts routing as pure torch functions (Switch, GShard, Mixtral/Qwen3-MoE, DeepSeek-V3),
capacity and drops, and one generic MoE forward that records everything the scene shows.

Every function follows /work/shared/reference/formulas.md and names its source. Shapes: T tokens,
E experts, k experts per token, D model width. Router weights are (E, D), as nn.Linear stores them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

ROUTINGS = ("softmax_topk", "switch", "gshard", "deepseek_v3")


@dataclass
class Routing:
    """One router's decision for T tokens."""
    logits: torch.Tensor   # (T, E) x · W_rᵀ
    probs: torch.Tensor    # (T, E) softmax(logits), or sigmoid(logits) for DeepSeek-V3
    topk: torch.Tensor     # (T, k) chosen experts, best first
    gates: torch.Tensor    # (T, k) the weight each chosen expert's output gets


@dataclass
class RoutingRecord:
    """What `moe_forward` did, for the trace and for training."""
    logits: torch.Tensor            # (T, E)
    probs: torch.Tensor             # (T, E)
    topk: torch.Tensor              # (T, k)
    gates: torch.Tensor             # (T, k)
    contributions: torch.Tensor     # (T, E, D) gate × expert output; zero where not routed or dropped
    tokens_per_expert: torch.Tensor  # (E,) assignments each expert received (after drops)
    aux_loss: torch.Tensor          # scalar, the routing family's balancing loss without its coefficient
    dropped: torch.Tensor           # (T, k) bool, assignments over capacity (all False without capacity)
    capacity: int | None            # per-expert capacity, None when unlimited
    load_cv: float                  # coefficient of variation of the requested per-expert load


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, x.shape[-1])


def softmax_topk(x: torch.Tensor, router_weight: torch.Tensor, k: int = 2,
                 norm_topk_prob: bool = True) -> Routing:
    """Mixtral / Qwen3-MoE router: softmax over all experts, top-k, then renormalise the k.

    Source: transformers `MixtralTopKRouter` and `Qwen3MoeTopKRouter` (softmax in float32, top-k
    on the probabilities, divide by their sum). This equals Mixtral's softmax(TopK(x W_g))
    (arXiv:2401.04088). Qwen3-MoE with `norm_topk_prob=False` keeps the raw top-k probabilities.
    """
    logits = F.linear(_flat(x), router_weight)
    probs = torch.softmax(logits.float(), dim=-1)
    top_value, top_index = torch.topk(probs, k, dim=-1)
    if norm_topk_prob:
        top_value = top_value / top_value.sum(dim=-1, keepdim=True)
    return Routing(logits, probs, top_index, top_value)


def switch_top1(x: torch.Tensor, router_weight: torch.Tensor) -> Routing:
    """Switch Transformer router (arXiv:2101.03961): p = softmax(W_r x), i = argmax p, y = p_i E_i(x).

    The gate is p_i itself, not renormalised to 1, so the router gets a gradient.
    """
    logits = F.linear(_flat(x), router_weight)
    probs = torch.softmax(logits.float(), dim=-1)
    top_value, top_index = probs.max(dim=-1, keepdim=True)
    return Routing(logits, probs, top_index, top_value)


def switch_aux_loss(probs: torch.Tensor, top1: torch.Tensor, alpha: float = 0.01) -> torch.Tensor:
    """Switch load-balancing loss α · N · Σ_i f_i · P_i (arXiv:2101.03961, eq. 4-6).

    f_i = share of the T tokens whose argmax is i (`top1`: (T,) or (T, 1)); P_i = mean of p_i.
    Equals α when routing is uniform.
    """
    n_experts = probs.shape[-1]
    f = torch.bincount(top1.reshape(-1), minlength=n_experts).float() / probs.shape[0]
    return alpha * n_experts * torch.sum(f * probs.mean(dim=0))


def gshard_top2(x: torch.Tensor, router_weight: torch.Tensor) -> Routing:
    """GShard top-2 (arXiv:2006.16668, as DeepSpeed `top2gating` computes it, without the noise).

    Expert 1 = argmax of the softmax gates; expert 2 = argmax of the logits with expert 1 masked
    out; g1, g2 renormalised to sum to 1. GShard's Gumbel noise on the second choice is training-only
    randomness and left out so a trace is reproducible.
    """
    logits = F.linear(_flat(x), router_weight)
    probs = torch.softmax(logits.float(), dim=-1)
    first = probs.argmax(dim=-1)
    masked = logits.float().masked_fill(F.one_hot(first, probs.shape[-1]).bool(), float("-inf"))
    second = masked.argmax(dim=-1)
    index = torch.stack([first, second], dim=-1)
    chosen = probs.gather(1, index)
    gates = chosen / chosen.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(chosen.dtype).eps)
    return Routing(logits, probs, index, gates)


def gshard_aux_loss(probs: torch.Tensor, top1: torch.Tensor) -> torch.Tensor:
    """GShard / DeepSpeed `top2gating` balancing loss E · Σ_e m_e · c_e.

    m_e = mean softmax gate of expert e; c_e = share of tokens whose top-1 is e (`top1`: (T,) or the
    first column of the top-k). DeepSpeed writes it as mean(m·c) · E², the same number. Equals 1
    when routing is uniform.
    """
    n_experts = probs.shape[-1]
    c = torch.bincount(top1.reshape(-1), minlength=n_experts).float() / probs.shape[0]
    return n_experts * torch.sum(probs.mean(dim=0) * c)


def mixtral_load_balancing_loss(logits: torch.Tensor | Sequence[torch.Tensor], k: int = 2) -> torch.Tensor:
    """The load-balancing loss transformers uses for Mixtral and Jamba (`load_balancing_loss_func`).

    E · Σ_e (top-k assignments to e / T) × (mean softmax probability of e), over the tokens of all
    layers given (a sequence of (T, E) logits is concatenated, as transformers accumulates layers).
    Note the count is divided by T, not by T·k, exactly as transformers does: uniform routing gives
    k, not 1. The training configs multiply it by router_aux_loss_coef (0.001 for Mixtral).
    """
    if isinstance(logits, torch.Tensor):
        logits = [logits]
    stacked = torch.cat([_flat(layer) for layer in logits], dim=0)
    probs = torch.softmax(stacked.float(), dim=-1)
    n_experts = probs.shape[-1]
    _, chosen = torch.topk(probs, k, dim=-1)
    counts = torch.bincount(chosen.reshape(-1), minlength=n_experts).float()
    return n_experts * torch.sum(counts / probs.shape[0] * probs.mean(dim=0))


def deepseek_v3_gate(x: torch.Tensor, router_weight: torch.Tensor, bias: torch.Tensor | None = None,
                     k: int = 8, n_groups: int = 8, topk_groups: int = 4,
                     route_scale: float = 2.5) -> Routing:
    """DeepSeek-V3 gate (deepseek-ai/DeepSeek-V3 `inference/model.py`, class Gate, sigmoid scoring).

    s = sigmoid(x W); selection uses s + b (b: per-expert balancing bias, updated outside the
    gradient); experts split into `n_groups` equal groups, each scored by the sum of its top-2
    (s + b); the best `topk_groups` groups are kept and the top-k experts chosen inside them.
    Weights use s without the bias: w = s_sel / Σ s_sel × route_scale. `probs` holds s.
    Groups are always scored by the top-2 sum, as formulas.md states (the reference code falls back
    to the group maximum only when it has no bias at all; V3 always has one). Defaults are V3's.
    """
    logits = F.linear(_flat(x), router_weight)
    scores = torch.sigmoid(logits.float())
    biased = scores if bias is None else scores + bias.float()
    n_tokens, n_experts = scores.shape
    if n_groups > 1:
        grouped = biased.view(n_tokens, n_groups, n_experts // n_groups)
        group_scores = grouped.topk(2, dim=-1).values.sum(dim=-1)
        keep = group_scores.topk(topk_groups, dim=-1).indices
        drop = torch.ones(n_tokens, n_groups, dtype=torch.bool, device=x.device).scatter_(1, keep, False)
        biased = grouped.masked_fill(drop.unsqueeze(-1), float("-inf")).flatten(1)
    index = biased.topk(k, dim=-1).indices
    chosen = scores.gather(1, index)
    gates = chosen / chosen.sum(dim=-1, keepdim=True) * route_scale
    return Routing(logits, scores, index, gates)


def expert_capacity(n_tokens: int, n_experts: int, capacity_factor: float, k: int = 1) -> int:
    """ceil(tokens / experts × capacity_factor × k): slots per expert.

    k = 1 is Switch's capacity; k = 2 is GShard's "2 × capacity_factor" (DeepSpeed `top2gating`
    passes capacity_factor * 2 to `_capacity`). The k multiplies inside the ceil, as there.
    """
    return math.ceil(n_tokens / n_experts * capacity_factor * k)


@dataclass
class CapacityResult:
    dropped: torch.Tensor   # (T, k) bool: assignments that found the expert full
    load: torch.Tensor      # (E,) assignments requested per expert (before drops)
    kept: torch.Tensor      # (E,) assignments served per expert (after drops)
    load_cv: float          # std / mean of `load` (population std): 0 when perfectly balanced


def apply_capacity(topk: torch.Tensor, n_experts: int, capacity: int | None) -> CapacityResult:
    """Drops the assignments over each expert's capacity, in token order.

    As DeepSpeed `sharded_moe.py` does: positions come from a cumulative count over tokens, all
    first choices before any second choice (top2gating offsets the second choices' locations by
    the first choices' counts), and an assignment whose position is ≥ capacity is dropped. A
    dropped token's output from that expert is zero; it passes through on the residual.
    """
    n_tokens, k = topk.shape
    load = torch.bincount(topk.reshape(-1), minlength=n_experts)
    dropped = torch.zeros(n_tokens, k, dtype=torch.bool, device=topk.device)
    if capacity is not None:
        # choice-major order: column 0 for all tokens, then column 1, ...
        order = topk.t().reshape(-1)
        one_hot = F.one_hot(order, n_experts)
        position = (one_hot.cumsum(dim=0) - 1).gather(1, order[:, None]).squeeze(1)
        dropped = (position >= capacity).reshape(k, n_tokens).t()
    kept = torch.bincount(topk[~dropped], minlength=n_experts)
    mean = load.float().mean()
    cv = (load.float().std(unbiased=False) / mean).item() if mean > 0 else 0.0
    return CapacityResult(dropped, load, kept, cv)


def swiglu(x: torch.Tensor, w_gate: torch.Tensor, w_up: torch.Tensor, w_down: torch.Tensor) -> torch.Tensor:
    """SwiGLU expert (Mixtral, Qwen3-MoE, DeepSeek): W_down (SiLU(W_gate x) ⊙ W_up x), no biases."""
    return F.linear(F.silu(F.linear(x, w_gate)) * F.linear(x, w_up), w_down)


def route(x: torch.Tensor, router_weight: torch.Tensor, routing: str = "softmax_topk", *, k: int = 2,
          norm_topk_prob: bool = True, expert_bias: torch.Tensor | None = None, n_groups: int = 1,
          topk_groups: int = 1, route_scale: float = 1.0) -> tuple[Routing, torch.Tensor]:
    """The named router's decision and its balancing loss without coefficient.

    softmax_topk → transformers' Mixtral loss; switch → Switch loss with α = 1; gshard → GShard
    loss; deepseek_v3 → 0 (balanced by the bias, "auxiliary-loss-free").
    """
    if routing == "softmax_topk":
        r = softmax_topk(x, router_weight, k, norm_topk_prob)
        return r, mixtral_load_balancing_loss(r.logits, k)
    if routing == "switch":
        r = switch_top1(x, router_weight)
        return r, switch_aux_loss(r.probs, r.topk[:, 0], alpha=1.0)
    if routing == "gshard":
        r = gshard_top2(x, router_weight)
        return r, gshard_aux_loss(r.probs, r.topk[:, 0])
    if routing == "deepseek_v3":
        r = deepseek_v3_gate(x, router_weight, expert_bias, k, n_groups, topk_groups, route_scale)
        return r, r.logits.new_zeros(())
    raise ValueError(f"unknown routing {routing!r}; known: {', '.join(ROUTINGS)}")


def moe_forward(x: torch.Tensor, router_weight: torch.Tensor,
                experts: Sequence[Callable[[torch.Tensor], torch.Tensor]], routing: str = "softmax_topk", *,
                k: int = 2, norm_topk_prob: bool = True, capacity_factor: float | None = None,
                expert_bias: torch.Tensor | None = None, n_groups: int = 1, topk_groups: int = 1,
                route_scale: float = 1.0, record_contributions: bool = True
                ) -> tuple[torch.Tensor, RoutingRecord]:
    """y = Σ_{chosen, not dropped} gate · expert(x), with the routing record.

    `x` is (..., D); `experts[e]` maps (n, D) → (n, D). Capacity (when `capacity_factor` is given)
    is `expert_capacity(T, E, capacity_factor, k)`. `record_contributions=False` skips the (T, E, D)
    tensor during training, where only the output and the loss are needed.
    """
    shape = x.shape
    flat = _flat(x)
    n_experts = router_weight.shape[0]
    r, aux = route(flat, router_weight, routing, k=k, norm_topk_prob=norm_topk_prob,
                   expert_bias=expert_bias, n_groups=n_groups, topk_groups=topk_groups,
                   route_scale=route_scale)
    kk = r.topk.shape[1]
    capacity = None if capacity_factor is None else expert_capacity(flat.shape[0], n_experts,
                                                                    capacity_factor, kk)
    cap = apply_capacity(r.topk, n_experts, capacity)
    out = torch.zeros_like(flat)
    contributions = flat.new_zeros(flat.shape[0], n_experts, flat.shape[1]) if record_contributions else None
    served = r.topk.masked_fill(cap.dropped, -1)
    for e in range(n_experts):
        token, slot = torch.where(served == e)
        if token.numel() == 0:
            continue
        y = experts[e](flat[token]) * r.gates[token, slot, None].to(flat.dtype)
        out = out.index_add(0, token, y)
        if contributions is not None:
            # a token picks an expert at most once, so plain assignment is enough
            contributions[token, e] = y.detach()
    record = RoutingRecord(r.logits, r.probs, r.topk, r.gates,
                           contributions if contributions is not None else flat.new_zeros(0),
                           cap.kept, aux, cap.dropped, capacity, cap.load_cv)
    return out.reshape(shape), record
