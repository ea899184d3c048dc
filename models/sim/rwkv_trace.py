"""rwkv-tiny computed by llmviz: one forward function (torch, float32) over an RwkvForCausalLM's
parameters that trains it (batched, autograd), traces it (one sequence, every intermediate under
the layout's tensor ids), carries the recurrent state from one call to the next and steps it
token by token; plus the weights under the layout's ids.

It follows transformers' CPU path (modeling_rwkv.py: RwkvSelfAttention, RwkvFeedForward and
rwkv_linear_attention_cpu, operation for operation) and shared/reference/formulas.md (RWKV-4):
token shift x'_t = x_{t-1} (the previous token's LayerNorm output, the state's before the first),
k, v, r from the mixes μ⊙x_t + (1−μ)⊙x'_t, and
wkv_t = (a_{t−1} + e^{u+k_t} v_t) / (b_{t−1} + e^{u+k_t}),  a_t = e^{−w} a_{t−1} + e^{k_t} v_t,
b_t = e^{−w} b_{t−1} + e^{k_t}, with w = exp(time_decay) and u = time_first; time-mix output
W_o(σ(r) ⊙ wkv); channel mix σ(W_r x_r) ⊙ W_v relu(W_k x_k)².

The recurrence runs on a, b scaled by e^{−p} with a running maximum exponent p, as transformers
does, so nothing overflows; the state carried between calls is that scaled triple (num, den, p),
in transformers' own layout. The trace records the unscaled a_t, b_t (num·e^p, den·e^p, computed in
float64) as time_mix.num / time_mix.den: finite in float32 while the keys stay below ~80 (the
trained model's stay under 10 on its corpus; its largest a_t, b_t are about 10^4).

Tests (tests/test_rwkv_tiny.py) hold it to transformers' logits, hidden states and state.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from llmviz.models.sim import sequence_trace
from llmviz.models.sim.sequence_trace import token_tensor
from llmviz.models.sim.trace import ActivationTrace

# State the trace records that the layout does not draw (yet): the WKV numerator and denominator
# after each token and the token-shifted inputs of both mixes.
STATE_IDS = ("time_mix.num", "time_mix.den", "time_mix.shift", "channel_mix.shift")

NO_TOKEN_YET = -1e38   # the running maximum before any token: "minus infinity" that exp() takes to 0


@dataclass
class RwkvState:
    """The recurrent state of every layer after some tokens, in transformers' layout and order:
    each (B, d_model, layers). `ffn_shift` / `att_shift` are the last ln2 / ln1 outputs (the next
    token's shifted inputs); `num`, `den` the WKV numerator and denominator scaled by e^{−max},
    `max` that running maximum exponent."""
    ffn_shift: torch.Tensor
    att_shift: torch.Tensor
    num: torch.Tensor
    den: torch.Tensor
    max: torch.Tensor

    def as_list(self) -> list[torch.Tensor]:
        """transformers' `state` argument and output (a fresh list; ours is never edited in place)."""
        return [self.ffn_shift.clone(), self.att_shift.clone(), self.num.clone(), self.den.clone(),
                self.max.clone()]

    @classmethod
    def from_list(cls, state) -> "RwkvState":
        return cls(*(s.detach().clone() for s in state))


def initial_state(model, batch: int = 1) -> RwkvState:
    """The state before any token: zero shifts, num and den, the maximum at minus infinity."""
    shape = (batch, model.config.hidden_size, model.config.num_hidden_layers)
    zeros = [torch.zeros(shape) for _ in range(4)]
    return RwkvState(*zeros, torch.full(shape, NO_TOKEN_YET))


def _layer_norm(x: torch.Tensor, ln, record, prefix: str) -> torch.Tensor:
    out = F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps)
    if record is not None:
        # the statistics LayerNorm uses (biased variance), as nanogpt's trace shows them
        record(f"{prefix}.mean", x[0].mean(-1))
        record(f"{prefix}.std", torch.sqrt(x[0].var(-1, unbiased=False) + ln.eps))
        record(f"{prefix}.out", out[0])
    return out


def _shift(x: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """x'_t = x_{t−1}; the first token's comes from the state (zeros at the start)."""
    return torch.cat([previous[:, None], x[:, :-1]], dim=1)


def _mix(x: torch.Tensor, shifted: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    return x * mu + shifted * (1 - mu)


def _time_mix(att, x: torch.Tensor, state: RwkvState, i: int, record, p: str):
    """One time-mixing block over x (B, T, c), the ln1 output; returns (output, num, den, max)."""
    shifted = _shift(x, state.att_shift[:, :, i])
    r = F.linear(_mix(x, shifted, att.time_mix_receptance), att.receptance.weight)
    k = F.linear(_mix(x, shifted, att.time_mix_key), att.key.weight)
    v = F.linear(_mix(x, shifted, att.time_mix_value), att.value.weight)
    decay, bonus = -torch.exp(att.time_decay), att.time_first        # −w, u
    num, den, top = state.num[:, :, i], state.den[:, :, i], state.max[:, :, i]
    wkv, nums, dens, tops = [], [], [], []
    for k_t, v_t in zip(k.unbind(1), v.unbind(1)):
        # this token's output: the state plus the bonus-weighted current token
        out_top = torch.maximum(top, k_t + bonus)
        e1, e2 = torch.exp(top - out_top), torch.exp(k_t + bonus - out_top)
        wkv.append((e1 * num + e2 * v_t) / (e1 * den + e2))
        # the state after it: decay the past one step, add the token with weight e^{k_t}
        new_top = torch.maximum(top + decay, k_t)
        e1, e2 = torch.exp(top + decay - new_top), torch.exp(k_t - new_top)
        num, den, top = e1 * num + e2 * v_t, e1 * den + e2, new_top
        if record is not None:
            nums.append(num[0])
            dens.append(den[0])
            tops.append(top[0])
    wkv = torch.stack(wkv, dim=1)
    out = F.linear(torch.sigmoid(r) * wkv, att.output.weight)
    if record is not None:
        scale = torch.exp(torch.stack(tops).double())                # fold the offset back in
        for name, value in (("shift", shifted[0]), ("receptance", r[0]), ("key", k[0]), ("value", v[0]),
                            ("num", (torch.stack(nums).double() * scale).float()),
                            ("den", (torch.stack(dens).double() * scale).float()),
                            ("wkv", wkv[0]), ("out", out[0])):
            record(f"{p}.time_mix.{name}", value)
    return out, num, den, top


def _channel_mix(ffn, x: torch.Tensor, state: RwkvState, i: int, record, p: str) -> torch.Tensor:
    """One channel-mixing block over x (B, T, c), the ln2 output."""
    shifted = _shift(x, state.ffn_shift[:, :, i])
    key = F.linear(_mix(x, shifted, ffn.time_mix_key), ffn.key.weight)
    act = torch.square(torch.relu(key))
    value = F.linear(act, ffn.value.weight)
    r = F.linear(_mix(x, shifted, ffn.time_mix_receptance), ffn.receptance.weight)
    out = torch.sigmoid(r) * value
    if record is not None:
        for name, t in (("shift", shifted), ("key", key), ("act", act), ("value", value), ("receptance", r),
                        ("out", out)):
            record(f"{p}.channel_mix.{name}", t[0])
    return out


def forward(model, idx: torch.Tensor, state: RwkvState | None = None, record=None):
    """idx (B, T) token ids → (logits (B, T, vocab), the state after the last token).

    From `state` (default: zeros), so calling it chunk by chunk with the returned state gives
    the logits of the whole sequence. `record(id, tensor)`, when given, receives batch row 0's
    intermediates under the layout ids. Differentiable: training calls it.
    """
    cfg, rwkv = model.config, model.rwkv
    sequence_trace.check_batch(idx)
    if 0 < cfg.rescale_every <= cfg.num_hidden_layers:
        # transformers would halve the hidden state every rescale_every layers at inference
        raise ValueError(f"rwkv_trace computes rescale_every = 0 models, this one has {cfg.rescale_every}")
    state = initial_state(model, idx.shape[0]) if state is None else state
    x = F.embedding(idx, rwkv.embeddings.weight)
    sequence_trace.record_embedding(record, idx, x)
    new = {name: [] for name in ("ffn_shift", "att_shift", "num", "den", "max")}
    for i, block in enumerate(rwkv.blocks):
        p = f"blocks.{i}"
        if i == 0:
            x = _layer_norm(x, block.pre_ln, record, "ln0")
        h = _layer_norm(x, block.ln1, record, f"{p}.ln1")
        out, num, den, top = _time_mix(block.attention, h, state, i, record, p)
        x = x + out
        new["att_shift"].append(h[:, -1])
        new["num"].append(num)
        new["den"].append(den)
        new["max"].append(top)
        if record is not None:
            record(f"{p}.resid1", x[0])
        h = _layer_norm(x, block.ln2, record, f"{p}.ln2")
        x = x + _channel_mix(block.feed_forward, h, state, i, record, p)
        new["ffn_shift"].append(h[:, -1])
        if record is not None:
            record(f"{p}.resid2", x[0])
    h = _layer_norm(x, rwkv.ln_out, record, "ln_f")
    logits = sequence_trace.lm_head(h, model.head.weight, record)
    return logits, RwkvState(**{name: torch.stack(parts, dim=-1) for name, parts in new.items()})


# ---- ids -------------------------------------------------------------------------------------

def _ln_ids(prefix: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(f"{prefix}.mean", ("t",)), (f"{prefix}.std", ("t",)), (f"{prefix}.out", ("t", "c"))]


def trace_ids(n_layers: int) -> list[tuple[str, tuple[str, ...]]]:
    """Every id `trace` records, in data-flow order, with its axes ("f": channel-mix hidden)."""
    ids = [("tokens", ("t",)), ("embed.out", ("t", "c"))] + _ln_ids("ln0")
    for i in range(n_layers):
        p = f"blocks.{i}"
        ids += _ln_ids(f"{p}.ln1")
        ids += [(f"{p}.time_mix.{name}", ("t", "c"))
                for name in ("shift", "receptance", "key", "value", "num", "den", "wkv", "out")]
        ids.append((f"{p}.time_mix.alpha", ("c", "t", "t'")))
        ids += [(f"{p}.resid1", ("t", "c"))] + _ln_ids(f"{p}.ln2")
        ids += [(f"{p}.channel_mix.shift", ("t", "c")), (f"{p}.channel_mix.key", ("t", "f")),
                (f"{p}.channel_mix.act", ("t", "f"))]
        ids += [(f"{p}.channel_mix.{name}", ("t", "c")) for name in ("value", "receptance", "out")]
        ids.append((f"{p}.resid2", ("t", "c")))
    return ids + _ln_ids("ln_f") + [("logits", ("t", "v")), ("probs", ("t", "v"))]


def weight_ids(n_layers: int) -> list[tuple[str, tuple[str, ...]]]:
    """Every parameter under the layout's ids; matrices (out, in) like torch.nn.Linear.

    time_mix.decay holds transformers' time_decay as stored: the per-token decay factor of the
    WKV state is exp(−exp(decay)). time_mix.bonus is time_first, u, the current token's extra
    weight. The mixes μ are (d_model,) vectors (transformers stores them (1, 1, d_model))."""
    ids = [("embed.tok.weight", ("v", "c")), ("ln0.weight", ("c",)), ("ln0.bias", ("c",))]
    for i in range(n_layers):
        p = f"blocks.{i}"
        ids += [(f"{p}.ln1.weight", ("c",)), (f"{p}.ln1.bias", ("c",))]
        ids += [(f"{p}.time_mix.{m}", ("c",)) for m in ("mix_k", "mix_v", "mix_r")]
        ids += [(f"{p}.time_mix.{m}.weight", ("c", "c")) for m in ("receptance", "key", "value")]
        ids += [(f"{p}.time_mix.decay", ("c",)), (f"{p}.time_mix.bonus", ("c",)),
                (f"{p}.time_mix.out.weight", ("c", "c")), (f"{p}.ln2.weight", ("c",)), (f"{p}.ln2.bias", ("c",)),
                (f"{p}.channel_mix.mix_k", ("c",)), (f"{p}.channel_mix.mix_r", ("c",)),
                (f"{p}.channel_mix.key.weight", ("f", "c")), (f"{p}.channel_mix.value.weight", ("c", "f")),
                (f"{p}.channel_mix.receptance.weight", ("c", "c"))]
    return ids + [("ln_f.weight", ("c",)), ("ln_f.bias", ("c",)), ("lm_head.weight", ("v", "c"))]


# ---- one sequence ----------------------------------------------------------------------------

@torch.inference_mode()
def trace(model, tokens, state=None) -> ActivationTrace:
    """One sequence's intermediates, float32 numpy under the layout's ids, plus the WKV state
    and the shifted inputs per token (STATE_IDS) and the implicit attention α per layer.
    From `state` (default: zeros): the state after earlier tokens, left untraced."""
    arrays = sequence_trace.recorded(forward, model, tokens, state)
    for i, block in enumerate(model.rwkv.blocks):
        att = block.attention
        carried = None if state is None else \
            (torch.log(state.den[0, :, i].double()) + state.max[0, :, i].double()).detach().numpy()
        arrays[f"blocks.{i}.time_mix.alpha"] = implicit_attention(
            arrays[f"blocks.{i}.time_mix.key"], torch.exp(att.time_decay).numpy(), att.time_first.numpy(), carried)
    return sequence_trace.in_order(arrays, trace_ids(model.config.num_hidden_layers))


def implicit_attention(key: np.ndarray, decay: np.ndarray, bonus: np.ndarray,
                       carried_log_den: np.ndarray | None = None) -> np.ndarray:
    """α (d_model, T, T): the WKV output as attention, per channel c,
    wkv_t = Σ_{s≤t} α[c, t, s] · v_s (+ the carried state's share), with
    α[c, t, s] ∝ e^{−(t−1−s)·w + k_s} for s < t and e^{u + k_t} for s = t, normalised over s ≤ t and, in a
    stream, the state carried in (whose denominator, e^{carried_log_den}, has decayed by e^{−t·w} at t).
    Rows sum to 1 from a zero state: RWKV-4's time mixing is a softmax attention whose scores are the
    key plus a distance penalty, computed as a recurrence.

    key (T, d_model), decay w = exp(time_decay) and bonus u = time_first (d_model,); float64 inside."""
    T = key.shape[0]
    k, w, u = key.astype(np.float64).T, decay.astype(np.float64), bonus.astype(np.float64)   # k (d, T)
    t, s = np.arange(T)[:, None], np.arange(T)[None, :]
    logits = np.where(s < t, -(t - 1 - s)[None] * w[:, None, None] + k[:, None, :], -np.inf)
    logits[:, np.arange(T), np.arange(T)] = u[:, None] + k
    carried = np.full((len(w), T), -np.inf) if carried_log_den is None else \
        carried_log_den.astype(np.float64)[:, None] - np.arange(T)[None] * w[:, None]
    top = np.maximum(logits.max(-1), carried)                                  # (d, T)
    weights = np.exp(logits - top[..., None])
    total = weights.sum(-1) + np.exp(carried - top)
    return (weights / total[..., None]).astype(np.float32)


@torch.inference_mode()
def weights(model) -> ActivationTrace:
    """Every parameter as float32 numpy under the layout's weight ids (see weight_ids)."""
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    named = {"embed.tok.weight": sd["rwkv.embeddings.weight"], "lm_head.weight": sd["head.weight"],
             "ln0.weight": sd["rwkv.blocks.0.pre_ln.weight"], "ln0.bias": sd["rwkv.blocks.0.pre_ln.bias"],
             "ln_f.weight": sd["rwkv.ln_out.weight"], "ln_f.bias": sd["rwkv.ln_out.bias"]}
    for i in range(model.config.num_hidden_layers):
        p, b = f"blocks.{i}", f"rwkv.blocks.{i}"
        a, m = f"{b}.attention", f"{b}.feed_forward"
        named.update({
            f"{p}.ln1.weight": sd[f"{b}.ln1.weight"], f"{p}.ln1.bias": sd[f"{b}.ln1.bias"],
            f"{p}.ln2.weight": sd[f"{b}.ln2.weight"], f"{p}.ln2.bias": sd[f"{b}.ln2.bias"],
            f"{p}.time_mix.mix_k": sd[f"{a}.time_mix_key"].reshape(-1),
            f"{p}.time_mix.mix_v": sd[f"{a}.time_mix_value"].reshape(-1),
            f"{p}.time_mix.mix_r": sd[f"{a}.time_mix_receptance"].reshape(-1),
            f"{p}.time_mix.receptance.weight": sd[f"{a}.receptance.weight"],
            f"{p}.time_mix.key.weight": sd[f"{a}.key.weight"], f"{p}.time_mix.value.weight": sd[f"{a}.value.weight"],
            f"{p}.time_mix.decay": sd[f"{a}.time_decay"], f"{p}.time_mix.bonus": sd[f"{a}.time_first"],
            f"{p}.time_mix.out.weight": sd[f"{a}.output.weight"],
            f"{p}.channel_mix.mix_k": sd[f"{m}.time_mix_key"].reshape(-1),
            f"{p}.channel_mix.mix_r": sd[f"{m}.time_mix_receptance"].reshape(-1),
            f"{p}.channel_mix.key.weight": sd[f"{m}.key.weight"],
            f"{p}.channel_mix.value.weight": sd[f"{m}.value.weight"],
            f"{p}.channel_mix.receptance.weight": sd[f"{m}.receptance.weight"]})
    ids = weight_ids(model.config.num_hidden_layers)
    return sequence_trace.in_order(sequence_trace.numpy_copies(named), ids, "weight")


# ---- state and streaming ---------------------------------------------------------------------

@torch.inference_mode()
def final_state(model, tokens) -> list[np.ndarray]:
    """The state after `tokens` as transformers returns it (`state` with use_cache=True, batch row
    0): [ffn shift, attention shift, num, den, max], each (d_model, layers)."""
    _, state = forward(model, token_tensor(tokens, model.config.vocab_size))
    return [s[0].numpy().copy() for s in state.as_list()]


@torch.inference_mode()
def step(model, token: int, state: RwkvState | None = None) -> tuple[np.ndarray, RwkvState]:
    """The recurrent form: one token from `state` (default: zeros) → (logits (vocab,), new state).
    A sequence of any length streams through in constant memory."""
    return sequence_trace.step(forward, model, token, state)
