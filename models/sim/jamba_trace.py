"""jamba-tiny computed by llmviz: one forward function (torch, float32) over a JambaForCausalLM's
parameters that trains it (batched, autograd), traces it (one sequence, every intermediate under the
layout's tensor ids), and carries the hybrid's cache from one call to the next — the attention
layer's keys and values, which grow with every token, and the Mamba layers' conv and SSM states,
which do not; plus the weights under the layout's ids and the sizes of both caches.

It follows transformers' torch path (modeling_jamba.py) and shared/reference/formulas.md:
- every layer: x ← x + mixer(RMSNorm(x)); x ← x + ffn(RMSNorm(x)) (input_layernorm, pre_ff_layernorm);
- attention (JambaAttention): no positional encoding, grouped-query heads (head h reads KV group
  h // (heads / kv_heads), as repeat_kv lays them out), softmax(q·kᵀ/√d + causal mask)·v, o_proj;
- Mamba (JambaMambaMixer): Mamba-1's selective scan, mamba_trace.mamba_mixer, with Δ-low, B and C
  each through an RMSNorm after x_proj (Jamba's "additional norms", its inner_norm_eps), so
  Δ = softplus(W_dt · norm(Δ-low) + b), B̄ = Δ·norm(B), y = norm(C)·h + D ⊙ x;
- feed-forward: a SwiGLU MLP, or the MoE (JambaSparseMoeBlock): softmax over the experts, the top-2
  weights kept unnormalised, y = Σ gate · SwiGLU_e(x), through routing.moe_forward.
The RMSNorm, the mixer and the implicit attention are mamba_trace's, the token checks and the
trace's assembly sequence_trace's.

Tests (tests/test_jamba_tiny.py) hold it to transformers' logits, hidden states, router logits,
load-balancing loss and cache.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from llmviz.models.sim import routing, sequence_trace
from llmviz.models.sim.mamba_trace import MAMBA_AXES, _rms_norm, implicit_attention, mamba_mixer
from llmviz.models.sim.moe_model import MOE_AXES
from llmviz.models.sim.nanogpt import outside_attention
from llmviz.models.sim.sequence_trace import token_tensor
from llmviz.models.sim.trace import ActivationTrace

# Axis names beyond tensor_ids.AXES: Mamba's, with the conv tap renamed "w" because the MoE's "k" is
# the routing slot; "e" the expert; "f" here the MLP's or an expert's hidden channel (d_ff).
JAMBA_AXES = {**{k: v for k, v in MAMBA_AXES.items() if k != "k"}, "w": MAMBA_AXES["k"], **MOE_AXES,
              "j": "inner-norm channel: Δ-low's dt_rank, then B's and C's d_state each"}

# Ids the trace records on a Mamba layer that the layout does not draw: mamba_trace's scan terms
# (the scene draws dA and h per token and α's channel mean from them, as ssm_live.scene_arrays does)
# and Jamba's inner norms' outputs, what enters dt_proj and the scan.
SCAN_IDS = ("mamba.dA", "mamba.dB", "mamba.h", "mamba.alpha")
INNER_NORM_IDS = ("mamba.dt_low_norm", "mamba.B_norm", "mamba.C_norm")
# On an MoE layer, recorded as moe_model records them, not drawn: softmax probabilities, the chosen
# experts, and each expert's gate-weighted output.
MOE_EXTRA_IDS = ("moe.probs", "moe.topk")


@dataclass
class JambaState:
    """The cache after some tokens (batch first), per layer index: `keys`, `values` (B, kv_heads,
    tokens, head_dim) on the attention layers; `ssm` (B, d_inner, d_state) and `conv` (B, d_inner,
    d_conv, the last d_conv inputs of the conv, oldest first, zeros before the first token) on the
    Mamba layers — the layout of transformers' DynamicCache for Jamba."""
    keys: dict[int, torch.Tensor] = field(default_factory=dict)
    values: dict[int, torch.Tensor] = field(default_factory=dict)
    ssm: dict[int, torch.Tensor] = field(default_factory=dict)
    conv: dict[int, torch.Tensor] = field(default_factory=dict)

    @property
    def n_tokens(self) -> int:
        return next((int(k.shape[2]) for k in self.keys.values()), 0)


def layer_kinds(model) -> list[tuple[str, bool]]:
    """(mixer "attention" or "mamba", whether the feed-forward part is the MoE) per layer."""
    return [("attention" if hasattr(layer, "self_attn") else "mamba", hasattr(layer.feed_forward, "router"))
            for layer in model.model.layers]


def initial_state(model, batch: int = 1) -> JambaState:
    """The cache before any token: no keys or values, zero conv and SSM states."""
    cfg = model.config
    inner, dtype = cfg.mamba_expand * cfg.hidden_size, model.model.embed_tokens.weight.dtype
    hd = cfg.hidden_size // cfg.num_attention_heads
    state = JambaState()
    for i, (kind, _) in enumerate(layer_kinds(model)):
        if kind == "attention":
            state.keys[i] = torch.zeros(batch, cfg.num_key_value_heads, 0, hd, dtype=dtype)
            state.values[i] = torch.zeros(batch, cfg.num_key_value_heads, 0, hd, dtype=dtype)
        else:
            state.ssm[i] = torch.zeros(batch, inner, cfg.mamba_d_state, dtype=dtype)
            state.conv[i] = torch.zeros(batch, inner, cfg.mamba_d_conv, dtype=dtype)
    return state


# ---- the layers --------------------------------------------------------------------------------

def _attention(attn, u: torch.Tensor, past_k: torch.Tensor, past_v: torch.Tensor, record, p: str, kernel=None):
    """Grouped-query causal attention over the cached keys and this call's; returns (output, keys, values).
    `kernel`: nanogpt.attention_sublayer's, the softmax and its product with v computed in torch's place."""
    B, T, _ = u.shape
    n_heads, n_kv, hd = attn.config.num_attention_heads, attn.config.num_key_value_heads, attn.head_dim
    q = F.linear(u, attn.q_proj.weight).view(B, T, n_heads, hd).transpose(1, 2)     # (B, H, T, d)
    k_new = F.linear(u, attn.k_proj.weight).view(B, T, n_kv, hd).transpose(1, 2)    # (B, G, T, d)
    v_new = F.linear(u, attn.v_proj.weight).view(B, T, n_kv, hd).transpose(1, 2)
    k, v = torch.cat([past_k, k_new], dim=2), torch.cat([past_v, v_new], dim=2)
    P = past_k.shape[2]
    group = n_heads // n_kv
    # repeat_kv: the query heads of one KV group are adjacent, head h reads group h // group
    k_rep, v_rep = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scores = (q @ k_rep.transpose(-1, -2)) * attn.scaling                          # (B, H, T, P + T)
    future = torch.arange(P + T)[None, :] > (P + torch.arange(T))[:, None]          # key after the query
    masked = scores.masked_fill(future, float("-inf"))
    if kernel is None:
        att = torch.softmax(masked, dim=-1)
        heads = att @ v_rep                                                         # (B, H, T, d)
    else:
        att, heads = outside_attention(kernel, q, k_rep, v_rep, attn.scaling)
    out = F.linear(heads.transpose(1, 2).reshape(B, T, n_heads * hd), attn.o_proj.weight)
    if record is not None:
        for h in range(n_heads):
            hp = f"{p}.attn.head.{h}"
            for name, t in (("q", q), ("scores", scores), ("scores_masked", masked), ("softmax", att),
                            ("out", heads)):
                record(f"{hp}.{name}", t[0, h])
        for g in range(n_kv):
            record(f"{p}.attn.kv_head.{g}.k", k[0, g])
            record(f"{p}.attn.kv_head.{g}.v", v[0, g])
        record(f"{p}.attn.proj", out[0])
    return out, k, v


def _expert_callables(experts) -> list:
    """JambaExperts' fused tensors as one SwiGLU callable per expert: gate_up_proj[e] holds the gate
    rows then the up rows (its .chunk(2)), down_proj[e] the output matrix."""
    f = experts.intermediate_dim

    def one(e: int):
        return lambda x: routing.swiglu(x, experts.gate_up_proj[e, :f], experts.gate_up_proj[e, f:],
                                        experts.down_proj[e])
    return [one(e) for e in range(experts.num_experts)]


def _moe(ff, u: torch.Tensor, top_k: int, record, p: str):
    """JambaSparseMoeBlock: returns (output, routing record)."""
    T = u.shape[1]
    out, rec = routing.moe_forward(u, ff.router.weight, _expert_callables(ff.experts), "softmax_topk", k=top_k,
                                   norm_topk_prob=False, record_contributions=record is not None)
    if record is not None:
        # batch row 0 is the first T of the flattened B·T tokens (as moe_model records it)
        record(f"{p}.moe.router", rec.logits[:T])
        record(f"{p}.moe.probs", rec.probs[:T])
        record(f"{p}.moe.topk", rec.topk[:T])
        record(f"{p}.moe.gates", torch.zeros_like(rec.probs[:T]).scatter_(1, rec.topk[:T], rec.gates[:T]))
        for e in range(ff.router.weight.shape[0]):
            record(f"{p}.moe.expert.{e}.out", rec.contributions[:T, e])
        record(f"{p}.moe.out", out[0])
    return out, rec


def _mlp(ff, u: torch.Tensor, record, p: str) -> torch.Tensor:
    gate = F.linear(u, ff.gate_proj.weight)
    act = F.silu(gate)
    up = F.linear(u, ff.up_proj.weight)
    gated = act * up
    out = F.linear(gated, ff.down_proj.weight)
    if record is not None:
        for name, value in (("gate", gate), ("act", act), ("up", up), ("gated", gated), ("down", out)):
            record(f"{p}.mlp.{name}", value[0])
    return out


def forward(model, idx: torch.Tensor, state: JambaState | None = None, record=None, kernel=None):
    """idx (B, T) token ids → (logits (B, T, vocab), the cache after the last token, the router
    logits of the MoE layers in order, each (B·T, experts)).

    From `state` (default: empty), so calling it chunk by chunk with the returned state gives the
    logits of the whole sequence. `record(id, tensor)`, when given, receives batch row 0's
    intermediates under the layout ids. Differentiable: training calls it. `kernel`: _attention's, for a trace.
    """
    cfg, lm = model.config, model.model
    eps, top_k = cfg.rms_norm_eps, cfg.num_experts_per_tok
    sequence_trace.check_batch(idx)
    state = initial_state(model, idx.shape[0]) if state is None else state
    new = JambaState()
    x = F.embedding(idx, lm.embed_tokens.weight)
    sequence_trace.record_embedding(record, idx, x)
    router_logits = []
    for i, (layer, (kind, moe)) in enumerate(zip(lm.layers, layer_kinds(model))):
        p = f"blocks.{i}"
        h = _rms_norm(x, layer.input_layernorm.weight, eps, record, f"{p}.ln1")
        if kind == "attention":
            out, new.keys[i], new.values[i] = _attention(layer.self_attn, h, state.keys[i], state.values[i], record, p,
                                                         kernel if record is not None else None)
        else:
            out, new.ssm[i], new.conv[i] = mamba_mixer(layer.mamba, h, state.ssm[i], state.conv[i], record, p,
                                                       inner_norm_eps=eps)
        x = x + out
        if record is not None:
            record(f"{p}.resid1", x[0])
        h = _rms_norm(x, layer.pre_ff_layernorm.weight, eps, record, f"{p}.ln2")
        if moe:
            out, rec = _moe(layer.feed_forward, h, top_k, record, p)
            router_logits.append(rec.logits)
        else:
            out = _mlp(layer.feed_forward, h, record, p)
        x = x + out
        if record is not None:
            record(f"{p}.resid2", x[0])
    h = _rms_norm(x, lm.final_layernorm.weight, eps, record, "ln_f")
    logits = sequence_trace.lm_head(h, model.lm_head.weight, record)
    return logits, new, router_logits


# ---- ids -------------------------------------------------------------------------------------

def _kinds(model_or_cfg) -> list[tuple[str, bool]]:
    if hasattr(model_or_cfg, "model"):
        return layer_kinds(model_or_cfg)
    return list(zip(model_or_cfg.layer_kinds(), model_or_cfg.moe_layers()))   # a JambaTinyConfig


def _sizes(model_or_cfg) -> dict[str, int]:
    c = model_or_cfg.config if hasattr(model_or_cfg, "model") else None
    if c is not None:
        return {"heads": c.num_attention_heads, "kv": c.num_key_value_heads, "experts": c.num_experts,
                "d_model": c.hidden_size, "inner": c.mamba_expand * c.hidden_size, "state": c.mamba_d_state,
                "conv": c.mamba_d_conv, "head_dim": c.hidden_size // c.num_attention_heads}
    c = model_or_cfg
    return {"heads": c.n_heads, "kv": c.n_kv_heads, "experts": c.n_experts, "d_model": c.d_model,
            "inner": c.d_inner, "state": c.d_state, "conv": c.d_conv, "head_dim": c.head_dim}


def trace_ids(model_or_cfg) -> list[tuple[str, tuple[str, ...]]]:
    """Every id `trace` records, in data-flow order, with its axes (a model or a JambaTinyConfig)."""
    s = _sizes(model_or_cfg)
    rms = lambda pre: [(f"{pre}.rms", ("t",)), (f"{pre}.out", ("t", "c"))]  # noqa: E731
    ids = [("tokens", ("t",)), ("embed.out", ("t", "c"))]
    for i, (kind, moe) in enumerate(_kinds(model_or_cfg)):
        p = f"blocks.{i}"
        ids += rms(f"{p}.ln1")
        if kind == "attention":
            for h in range(s["heads"]):
                hp = f"{p}.attn.head.{h}"
                ids += [(f"{hp}.q", ("t", "d")), (f"{hp}.scores", ("t", "t'")), (f"{hp}.scores_masked", ("t", "t'")),
                        (f"{hp}.softmax", ("t", "t'")), (f"{hp}.out", ("t", "d"))]
            for g in range(s["kv"]):
                ids += [(f"{p}.attn.kv_head.{g}.k", ("t'", "d")), (f"{p}.attn.kv_head.{g}.v", ("t'", "d"))]
            ids.append((f"{p}.attn.proj", ("t", "c")))
        else:
            m = f"{p}.mamba"
            ids += [(f"{m}.{name}", ("t", "i")) for name in ("x", "z", "conv", "conv_act")]
            ids += [(f"{m}.dt_low", ("t", "r")), (f"{m}.B", ("t", "n")), (f"{m}.C", ("t", "n")),
                    (f"{m}.dt_low_norm", ("t", "r")), (f"{m}.B_norm", ("t", "n")), (f"{m}.C_norm", ("t", "n")),
                    (f"{m}.dt", ("t", "i")), (f"{m}.dA", ("t", "i", "n")), (f"{m}.dB", ("t", "i", "n")),
                    (f"{m}.h", ("t", "i", "n")), (f"{m}.alpha", ("i", "t", "t'")), (f"{m}.y", ("t", "i")),
                    (f"{m}.gated", ("t", "i")), (f"{m}.out", ("t", "c"))]
        ids += [(f"{p}.resid1", ("t", "c"))] + rms(f"{p}.ln2")
        if moe:
            ids += [(f"{p}.moe.router", ("t", "e")), (f"{p}.moe.probs", ("t", "e")), (f"{p}.moe.topk", ("t", "k")),
                    (f"{p}.moe.gates", ("t", "e"))]
            ids += [(f"{p}.moe.expert.{e}.out", ("t", "c")) for e in range(s["experts"])]
            ids.append((f"{p}.moe.out", ("t", "c")))
        else:
            ids += [(f"{p}.mlp.{name}", ("t", "f")) for name in ("gate", "act", "up", "gated")]
            ids.append((f"{p}.mlp.down", ("t", "c")))
        ids.append((f"{p}.resid2", ("t", "c")))
    return ids + rms("ln_f") + [("logits", ("t", "v")), ("probs", ("t", "v"))]


def weight_ids(model_or_cfg) -> list[tuple[str, tuple[str, ...]]]:
    """Every parameter under the layout's ids; matrices (out, in) like torch.nn.Linear. An expert's
    W_gate is under the expert's own id (the block the layout draws for it), its W_up and W_down
    beside it, as moe_model.weights names them; Jamba's inner norms' γ under the inventory's
    mamba.inner_norms, Δ's then B's then C's (no block: folded into the mixer)."""
    s = _sizes(model_or_cfg)
    ids = [("embed.tok.weight", ("v", "c"))]
    for i, (kind, moe) in enumerate(_kinds(model_or_cfg)):
        p = f"blocks.{i}"
        ids.append((f"{p}.ln1.weight", ("c",)))
        if kind == "attention":
            for g in range(s["kv"]):
                ids += [(f"{p}.attn.kv_head.{g}.wk", ("d", "c")), (f"{p}.attn.kv_head.{g}.wv", ("d", "c"))]
            ids += [(f"{p}.attn.head.{h}.wq", ("d", "c")) for h in range(s["heads"])]
            ids.append((f"{p}.attn.proj.weight", ("c", "hd")))
        else:
            m = f"{p}.mamba"
            ids += [(f"{m}.x.weight", ("i", "c")), (f"{m}.z.weight", ("i", "c")), (f"{m}.conv.weight", ("i", "w")),
                    (f"{m}.conv.bias", ("i",)), (f"{m}.dt_low.weight", ("r", "i")), (f"{m}.B.weight", ("n", "i")),
                    (f"{m}.C.weight", ("n", "i")), (f"{m}.inner_norms", ("j",)), (f"{m}.dt.weight", ("i", "r")),
                    (f"{m}.dt.bias", ("i",)), (f"{m}.A_log", ("i", "n")), (f"{m}.D", ("i",)),
                    (f"{m}.out.weight", ("c", "i"))]
        ids.append((f"{p}.ln2.weight", ("c",)))
        if moe:
            ids.append((f"{p}.moe.router.weight", ("e", "c")))
            for e in range(s["experts"]):
                ids += [(f"{p}.moe.expert.{e}", ("f", "c")), (f"{p}.moe.expert.{e}.up.weight", ("f", "c")),
                        (f"{p}.moe.expert.{e}.down.weight", ("c", "f"))]
        else:
            ids += [(f"{p}.mlp.gate.weight", ("f", "c")), (f"{p}.mlp.up.weight", ("f", "c")),
                    (f"{p}.mlp.down.weight", ("c", "f"))]
    return ids + [("ln_f.weight", ("c",)), ("lm_head.weight", ("v", "c"))]


# ---- one sequence ----------------------------------------------------------------------------

@torch.inference_mode()
def trace(model, tokens, kernel=None) -> ActivationTrace:
    """One sequence's intermediates, float32 numpy (token ids and top-k int64) under the layout's
    ids, plus the scan's dA, dB, h and implicit attention α per Mamba layer (SCAN_IDS), the inner
    norms' outputs (INNER_NORM_IDS) and the MoE's probabilities, top-k and per-expert outputs.
    `kernel`: the attention layers' (nanogpt.attention_sublayer's), None for torch."""
    arrays = sequence_trace.recorded(functools.partial(forward, kernel=kernel), model, tokens)
    for i, (kind, _) in enumerate(layer_kinds(model)):
        if kind == "mamba":
            p = f"blocks.{i}.mamba"
            arrays[f"{p}.alpha"] = implicit_attention(arrays[f"{p}.dA"], arrays[f"{p}.dB"], arrays[f"{p}.C_norm"])
    return sequence_trace.in_order(arrays, trace_ids(model))


@torch.inference_mode()
def weights(model) -> ActivationTrace:
    """Every parameter as float32 numpy under the layout's weight ids: attention split per query
    head and per KV group, in_proj into its x and z halves, x_proj into Δ-low, B and C, the conv
    kernel as (d_inner, d_conv), the fused experts per expert."""
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    s = _sizes(model)
    inner, n, hd = s["inner"], s["state"], s["head_dim"]
    r = int(model.config.mamba_dt_rank)
    named = {"embed.tok.weight": sd["model.embed_tokens.weight"], "ln_f.weight": sd["model.final_layernorm.weight"],
             "lm_head.weight": sd["lm_head.weight"]}
    for i, (kind, moe) in enumerate(layer_kinds(model)):
        p, t = f"blocks.{i}", f"model.layers.{i}"
        named[f"{p}.ln1.weight"] = sd[f"{t}.input_layernorm.weight"]
        named[f"{p}.ln2.weight"] = sd[f"{t}.pre_ff_layernorm.weight"]
        if kind == "attention":
            a = f"{t}.self_attn"
            for h, w in enumerate(sd[f"{a}.q_proj.weight"].split(hd, dim=0)):
                named[f"{p}.attn.head.{h}.wq"] = w
            for g, (wk, wv) in enumerate(zip(sd[f"{a}.k_proj.weight"].split(hd, dim=0),
                                             sd[f"{a}.v_proj.weight"].split(hd, dim=0))):
                named[f"{p}.attn.kv_head.{g}.wk"], named[f"{p}.attn.kv_head.{g}.wv"] = wk, wv
            named[f"{p}.attn.proj.weight"] = sd[f"{a}.o_proj.weight"]
        else:
            m, q = f"{t}.mamba", f"{p}.mamba"
            x_w, z_w = sd[f"{m}.in_proj.weight"].split(inner, dim=0)
            dt_low_w, b_w, c_w = sd[f"{m}.x_proj.weight"].split([r, n, n], dim=0)
            named.update({
                f"{q}.x.weight": x_w, f"{q}.z.weight": z_w, f"{q}.conv.weight": sd[f"{m}.conv1d.weight"][:, 0],
                f"{q}.conv.bias": sd[f"{m}.conv1d.bias"], f"{q}.dt_low.weight": dt_low_w, f"{q}.B.weight": b_w,
                f"{q}.C.weight": c_w, f"{q}.dt.weight": sd[f"{m}.dt_proj.weight"],
                f"{q}.dt.bias": sd[f"{m}.dt_proj.bias"],
                f"{q}.A_log": sd[f"{m}.A_log"], f"{q}.D": sd[f"{m}.D"], f"{q}.out.weight": sd[f"{m}.out_proj.weight"],
                f"{q}.inner_norms": torch.cat([sd[f"{m}.{k}_layernorm.weight"] for k in ("dt", "b", "c")])})
        f = f"{t}.feed_forward"
        if moe:
            named[f"{p}.moe.router.weight"] = sd[f"{f}.router.weight"]
            gate_up, down = sd[f"{f}.experts.gate_up_proj"], sd[f"{f}.experts.down_proj"]
            for e in range(s["experts"]):
                w_gate, w_up = gate_up[e].chunk(2, dim=0)
                named[f"{p}.moe.expert.{e}"] = w_gate
                named[f"{p}.moe.expert.{e}.up.weight"] = w_up
                named[f"{p}.moe.expert.{e}.down.weight"] = down[e]
        else:
            for name in ("gate", "up", "down"):
                named[f"{p}.mlp.{name}.weight"] = sd[f"{f}.{name}_proj.weight"]
    return sequence_trace.in_order(sequence_trace.numpy_copies(named), weight_ids(model), "weight")


# ---- the cache: keys and values grow, the Mamba state does not -----------------------------------

def cache_sizes(model_or_cfg, n_tokens: int, bytes_per_value: int = 4) -> dict[str, int]:
    """What the hybrid keeps after `n_tokens` tokens, in values and bytes (float32 by default):
    the attention layers' keys and values, 2 × attention layers × kv_heads × head_dim × tokens, and
    the Mamba layers' state, Mamba layers × d_inner × (d_state + d_conv) whatever the length
    (formulas.md; the conv window as transformers' cache keeps it, d_conv wide)."""
    if n_tokens < 0:
        raise ValueError(f"n_tokens must be at least 0, got {n_tokens}")
    s, kinds = _sizes(model_or_cfg), [k for k, _ in _kinds(model_or_cfg)]
    per_token = 2 * kinds.count("attention") * s["kv"] * s["head_dim"]
    state = kinds.count("mamba") * s["inner"] * (s["state"] + s["conv"])
    return {"kv_values_per_token": per_token, "kv_values": per_token * n_tokens, "state_values": state,
            "kv_bytes": per_token * n_tokens * bytes_per_value, "state_bytes": state * bytes_per_value}


@torch.inference_mode()
def final_state(model, tokens) -> JambaState:
    """The cache after `tokens` (batch 1)."""
    _, state, _ = forward(model, token_tensor(tokens, model.config.vocab_size))
    return state


@torch.inference_mode()
def step(model, token: int, state: JambaState | None = None) -> tuple[np.ndarray, JambaState]:
    """One token from `state` (default: empty) → (logits (vocab,), new state): the keys and values
    gain a row, the Mamba state is replaced by one of the same size."""
    return sequence_trace.step(forward, model, token, state)

