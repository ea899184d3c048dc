"""mamba2-tiny computed by llmviz: one forward function (torch, float32) over a Mamba2ForCausalLM's
parameters that trains it (batched, autograd), traces it (one sequence, every intermediate under
the layout's tensor ids), carries the recurrent state (conv and SSM) from one call to the next and
steps it token by token; plus the weights under the layout's ids.

It follows transformers' torch path (modeling_mamba2.py: Mamba2Mixer.forward) and
shared/reference/formulas.md, per head h of head_dim channels with one scalar A_h = −exp(A_log_h):
in_proj(u) = [z, xBC, Δ_raw]; xBC → causal depthwise conv → SiLU → [x, B, C] (B, C per group, each
group serving n_heads / n_groups heads); Δ = softplus(Δ_raw + dt_bias) per head;
h_t = exp(Δ_t A) · h_{t−1} + Δ_t · x_t ⊗ B_t  (head_dim × d_state per head);
y_t = h_t · C_t + D ⊙ x_t; output = out_proj(RMSNorm_group(y ⊙ SiLU(z)) · γ).

transformers computes the scan in the chunked SSD form (mamba2_chunk_scan: a masked, attention-like
product inside each chunk of chunk_size tokens, the recurrence only between chunks). Here it is the
plain recurrence, one token at a time, which is what the scene shows and what the state means; the
two are the same sum in another order (tests/test_mamba2_tiny.py holds them together within 1e-5).
The loop over tokens unbinds exp(ΔA) and Δ·x⊗B once rather than indexing them per step, so the
backward pass does not build a zero-filled gradient of the whole tensor per token (as mamba_trace).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from llmviz.models.sim import sequence_trace
from llmviz.models.sim.mamba_trace import backbone_forward, backbone_streaming
from llmviz.models.sim.trace import ActivationTrace

# Axis names beyond tensor_ids.AXES ("t", "c", "v")
MAMBA2_AXES = {"i": "inner channel (d_inner = expand · d_model = n_heads · head_dim)",
               "xbc": "conv channel: x (d_inner), then B, then C (n_groups · d_state each)",
               "head": "SSM head (d_inner / head_dim)", "hp": "channel within a head (head_dim)",
               "n": "state dimension (d_state)", "k": "conv tap (d_conv, oldest first)"}

# Scan intermediates the trace records that the layout does not draw (yet): the decay exp(ΔA) of
# each head and the state after each token.
SCAN_IDS = ("mamba.dA", "mamba.h")


@dataclass
class Mamba2State:
    """The recurrent state of every layer after some tokens (batch first): `ssm` (B, layers, n_heads,
    head_dim, d_state), `conv` (B, layers, conv_dim, d_conv) the last d_conv inputs of each conv
    channel, oldest first, zeros before the first token — the layout of transformers' cache."""
    ssm: torch.Tensor
    conv: torch.Tensor


def _sizes(model) -> dict[str, int]:
    cfg = model.config
    inner = int(cfg.expand * cfg.hidden_size)
    return {"layers": cfg.num_hidden_layers, "inner": inner, "heads": cfg.num_heads, "head_dim": cfg.head_dim,
            "n": cfg.state_size, "groups": cfg.n_groups, "conv_dim": inner + 2 * cfg.n_groups * cfg.state_size,
            "k": cfg.conv_kernel}


def initial_state(model, batch: int = 1) -> Mamba2State:
    """The state before any token: all zeros."""
    s = _sizes(model)
    dtype = model.backbone.embeddings.weight.dtype
    return Mamba2State(torch.zeros(batch, s["layers"], s["heads"], s["head_dim"], s["n"], dtype=dtype),
                       torch.zeros(batch, s["layers"], s["conv_dim"], s["k"], dtype=dtype))


def _gated_rms_norm(y: torch.Tensor, z: torch.Tensor, weight: torch.Tensor, groups: int, eps: float) -> torch.Tensor:
    # MambaRMSNormGated with norm_before_gate=False: gate first, then RMS over each group's channels
    g = y * F.silu(z)
    g = g.view(*g.shape[:-1], groups, g.shape[-1] // groups)
    g = g * torch.rsqrt(g.pow(2).mean(-1, keepdim=True) + eps)
    return weight * g.flatten(-2)


def _mixer(mixer, u: torch.Tensor, ssm0: torch.Tensor, conv0: torch.Tensor, record, p: str):
    """One Mamba-2 mixer over u (B, T, c) from state (ssm0 (B, H, P, N), conv0 (B, conv_dim, K));
    returns (output (B, T, c), final ssm state, final conv state)."""
    batch, T, _ = u.shape
    inner, conv_dim, H, P = mixer.intermediate_size, mixer.conv_dim, mixer.num_heads, mixer.head_dim
    G, N = mixer.n_groups, mixer.ssm_state_size
    proj = F.linear(u, mixer.in_proj.weight, mixer.in_proj.bias)
    z, xBC, dt_raw = proj.split([inner, conv_dim, H], dim=-1)
    # causal depthwise conv over the previous d_conv-1 inputs (the state) and this call's
    window = torch.cat([conv0, xBC.transpose(1, 2)], dim=-1)           # (B, conv_dim, K + T)
    conv = F.conv1d(window[..., 1:], mixer.conv1d.weight, mixer.conv1d.bias, groups=conv_dim).transpose(1, 2)
    conv_state = window[..., -mixer.conv_kernel_size:]
    act = F.silu(conv)
    x, B, C = act.split([inner, G * N, G * N], dim=-1)
    dt = F.softplus(dt_raw + mixer.dt_bias)                            # (B, T, H)
    dt = torch.clamp(dt, *mixer.time_step_limit)                       # transformers' limit, (0, inf) here
    A = -torch.exp(mixer.A_log.float())                                # (H,): one decay rate per head
    dA = torch.exp(dt * A)                                             # (B, T, H)
    xh = x.view(batch, T, H, P)
    Bh = B.view(batch, T, G, N).repeat_interleave(H // G, dim=2)       # (B, T, H, N): each group's heads
    Ch = C.view(batch, T, G, N).repeat_interleave(H // G, dim=2)
    # Δ · x ⊗ B per token, time first and contiguous, so each step of the loop reads one block
    dBx = (dt[..., None] * xh).transpose(0, 1)[..., None] * Bh.transpose(0, 1)[:, :, :, None, :]
    h, states = ssm0, []
    for a_t, bx_t in zip(dA.transpose(0, 1)[..., None, None].unbind(0), dBx.unbind(0)):
        h = a_t * h + bx_t
        states.append(h)
    hs = torch.stack(states, dim=1)                                    # (B, T, H, P, N)
    y = ((hs * Ch[:, :, :, None, :]).sum(-1) + mixer.D[:, None] * xh).reshape(batch, T, inner)
    normed = _gated_rms_norm(y, z, mixer.norm.weight, G, mixer.norm.variance_epsilon)
    out = F.linear(normed, mixer.out_proj.weight, mixer.out_proj.bias)
    if record is not None:
        for name, value in (("z", z), ("xBC", xBC), ("dt", dt), ("conv", conv), ("conv_act", act),
                            ("dA", dA), ("h", hs), ("y", y), ("norm", normed), ("out", out)):
            record(f"{p}.mamba.{name}", value[0])
    return out, h, conv_state


def forward(model, idx: torch.Tensor, state: Mamba2State | None = None, record=None):
    """idx (B, T) token ids → (logits (B, T, vocab), the state after the last token): mamba_trace's
    backbone (the same embeddings, norms, residuals and tied head) around the Mamba-2 mixer.

    From `state` (default: zeros), so calling it chunk by chunk with the returned state gives the
    logits of the whole sequence. `record(id, tensor)`, when given, receives batch row 0's
    intermediates under the layout ids. Differentiable: training calls it.
    """
    return backbone_forward(model, idx, state, record, _mixer, initial_state, Mamba2State)


# ---- ids -------------------------------------------------------------------------------------

def trace_ids(n_layers: int) -> list[tuple[str, tuple[str, ...]]]:
    """Every id `trace` records, in data-flow order, with its axes."""
    ids = [("tokens", ("t",)), ("embed.out", ("t", "c"))]
    for i in range(n_layers):
        p = f"blocks.{i}"
        ids += [(f"{p}.ln1.rms", ("t",)), (f"{p}.ln1.out", ("t", "c")), (f"{p}.mamba.z", ("t", "i")),
                (f"{p}.mamba.xBC", ("t", "xbc")), (f"{p}.mamba.dt", ("t", "head")),
                (f"{p}.mamba.conv", ("t", "xbc")), (f"{p}.mamba.conv_act", ("t", "xbc")),
                (f"{p}.mamba.dA", ("t", "head")), (f"{p}.mamba.h", ("t", "head", "hp", "n")),
                (f"{p}.mamba.y", ("t", "i")), (f"{p}.mamba.norm", ("t", "i")), (f"{p}.mamba.out", ("t", "c")),
                (f"{p}.resid1", ("t", "c"))]
    return ids + [("ln_f.rms", ("t",)), ("ln_f.out", ("t", "c")), ("logits", ("t", "v")), ("probs", ("t", "v"))]


def weight_ids(n_layers: int) -> list[tuple[str, tuple[str, ...]]]:
    """Every parameter under the layout's ids; matrices (out, in) like torch.nn.Linear."""
    ids = [("embed.tok.weight", ("v", "c"))]
    for i in range(n_layers):
        p = f"blocks.{i}"
        ids += [(f"{p}.ln1.weight", ("c",)), (f"{p}.mamba.z.weight", ("i", "c")),
                (f"{p}.mamba.xBC.weight", ("xbc", "c")), (f"{p}.mamba.dt.weight", ("head", "c")),
                (f"{p}.mamba.dt_bias", ("head",)), (f"{p}.mamba.conv.weight", ("xbc", "k")),
                (f"{p}.mamba.conv.bias", ("xbc",)), (f"{p}.mamba.A_log", ("head",)), (f"{p}.mamba.D", ("head",)),
                (f"{p}.mamba.norm.weight", ("i",)), (f"{p}.mamba.out.weight", ("c", "i"))]
    # the output head is the embedding (tied); the layout draws it twice, so it is listed twice
    return ids + [("ln_f.weight", ("c",)), ("lm_head.weight", ("v", "c"))]


# ---- one sequence ----------------------------------------------------------------------------

@torch.inference_mode()
def trace(model, tokens, state=None) -> ActivationTrace:
    """One sequence's intermediates, float32 numpy under the layout's ids, plus the scan's exp(ΔA)
    and state h per layer (SCAN_IDS).
    From `state` (default: zeros): the state after earlier tokens, left untraced."""
    arrays = sequence_trace.recorded(forward, model, tokens, state)
    return sequence_trace.in_order(arrays, trace_ids(model.config.num_hidden_layers))


@torch.inference_mode()
def weights(model) -> ActivationTrace:
    """Every parameter as float32 numpy under the layout's weight ids: in_proj split into its z, xBC
    and Δ rows, the conv kernel as (conv_dim, d_conv)."""
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    s = _sizes(model)
    named = {"embed.tok.weight": sd["backbone.embeddings.weight"], "lm_head.weight": model.lm_head.weight.detach(),
             "ln_f.weight": sd["backbone.norm_f.weight"]}
    for i in range(s["layers"]):
        p, m = f"blocks.{i}", f"backbone.layers.{i}.mixer"
        z_w, xbc_w, dt_w = sd[f"{m}.in_proj.weight"].split([s["inner"], s["conv_dim"], s["heads"]], dim=0)
        named.update({
            f"{p}.ln1.weight": sd[f"backbone.layers.{i}.norm.weight"],
            f"{p}.mamba.z.weight": z_w, f"{p}.mamba.xBC.weight": xbc_w, f"{p}.mamba.dt.weight": dt_w,
            f"{p}.mamba.dt_bias": sd[f"{m}.dt_bias"],
            f"{p}.mamba.conv.weight": sd[f"{m}.conv1d.weight"][:, 0], f"{p}.mamba.conv.bias": sd[f"{m}.conv1d.bias"],
            f"{p}.mamba.A_log": sd[f"{m}.A_log"], f"{p}.mamba.D": sd[f"{m}.D"],
            f"{p}.mamba.norm.weight": sd[f"{m}.norm.weight"], f"{p}.mamba.out.weight": sd[f"{m}.out_proj.weight"]})
    return sequence_trace.in_order(sequence_trace.numpy_copies(named), weight_ids(s["layers"]), "weight")


# ---- the SSD form ---------------------------------------------------------------------------

def ssd_matrices(dt: np.ndarray, dA: np.ndarray, B: np.ndarray, C: np.ndarray) -> np.ndarray:
    """M (heads, T, T), the scan as one lower-triangular matrix per head (Dao & Gu 2024, state-space
    duality): M_h[t, s] = (C_t · B_s) · a_{s+1} ⋯ a_t · Δ_s for s ≤ t, else 0, with a = exp(ΔA), so that
    y_t = Σ_s M_h[t, s] · x_s + D_h · x_t for every channel of head h, from a zero state.

    dt, dA (T, heads); B, C (T, groups, d_state), each group serving heads / groups heads. The decay
    products are differences of cumulative log decays (segment sums, as SSD computes them), in
    float64: every product is at most 1, so nothing overflows."""
    T, heads = dt.shape
    groups = B.shape[1]
    per_group = heads // groups
    cb = np.einsum("tgn,sgn->gts", C.astype(np.float64), B.astype(np.float64))        # (groups, T, T)
    cb = np.repeat(cb, per_group, axis=0)                                             # (heads, T, T)
    log_a = np.cumsum(np.log(dA.astype(np.float64)), axis=0).T                        # (heads, T)
    causal = np.tril(np.ones((T, T), bool))
    decay = np.where(causal, np.exp(np.where(causal, log_a[:, :, None] - log_a[:, None, :], 0.0)), 0.0)
    return (cb * decay * dt.astype(np.float64).T[:, None, :]).astype(np.float32)


# ---- state and streaming ---------------------------------------------------------------------

# final_state: (ssm (layers, n_heads, head_dim, d_state), conv (layers, conv_dim, d_conv)) after the tokens;
# step: one token from a state (default: zeros) → (logits (vocab,), new state), as mamba_trace's
final_state, step = backbone_streaming(forward)
