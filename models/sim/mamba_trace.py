"""mamba-tiny computed by llmviz: one forward function (torch, float32) over a MambaForCausalLM's
parameters that trains it (batched, autograd), traces it (one sequence, every intermediate under
the layout's tensor ids), carries the recurrent state (conv and SSM) from one call to the next
and steps it token by token; plus the weights under the layout's ids and the implicit attention
of Ali, Zimerman & Wolf 2024.

It follows transformers' slow torch path (modeling_mamba.py: MambaMixer.forward with
mamba_selective_scan's sequential loop) and shared/reference/formulas.md:
Δ = softplus(W_dt·dt_low + b), Ā = exp(Δ·A), B̄ = Δ·B, h_t = Ā_t ⊙ h_{t−1} + B̄_t x_t,
y_t = C_t · h_t + D ⊙ x_t, output = out_proj(y ⊙ SiLU(z)). The scan loops over the sequence
in Python as transformers does, but unbinds Ā and B̄x once instead of indexing them per step:
the same arithmetic, and a backward pass that does not build a zero-filled gradient of the whole
(B, d_inner, T, N) tensor per token, which is where transformers' own forward spends most of a
training step (measured here at batch 32 × 64 characters: 1.1 s a step against 0.25 s).

The implicit attention α costs O(T² · d_inner · d_state): fine for the scene's short sequences;
stream long ones with `step` or `forward` and its state instead of tracing them.

Its backbone (backbone_forward, backbone_streaming) also runs mamba2_trace's Mamba-2 mixer, and its
mixer, with inner norms, jamba_trace's Mamba layers.

Tests (tests/test_mamba_tiny.py) hold it to transformers' logits, hidden states and cache.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from llmviz.models.sim import sequence_trace
from llmviz.models.sim.sequence_trace import token_tensor
from llmviz.models.sim.trace import ActivationTrace

# Axis names beyond tensor_ids.AXES ("t", "t'", "c", "v")
MAMBA_AXES = {"i": "inner channel (d_inner = expand · d_model)", "n": "state dimension (d_state)",
              "r": "Δ low-rank channel (dt_rank)", "k": "conv tap (d_conv, oldest first)",
              "l": "layer"}

# Scan intermediates the trace records that the layout does not draw (yet): the discretised
# A and B, the state after each token and the implicit attention matrix.
SCAN_IDS = ("mamba.dA", "mamba.dB", "mamba.h", "mamba.alpha")


@dataclass
class MambaState:
    """The recurrent state of every layer after some tokens (batch first): `ssm` (B, layers,
    d_inner, d_state), `conv` (B, layers, d_inner, d_conv) the last d_conv inputs of each conv,
    oldest first, zeros before the first token — the same layout as transformers' cache."""
    ssm: torch.Tensor
    conv: torch.Tensor


def _sizes(model) -> tuple[int, int, int, int, int]:
    cfg = model.config
    return (cfg.num_hidden_layers, cfg.intermediate_size, cfg.state_size, cfg.conv_kernel,
            int(cfg.time_step_rank))


def initial_state(model, batch: int = 1) -> MambaState:
    """The state before any token: all zeros."""
    n_layers, inner, n, k, _ = _sizes(model)
    dtype = model.backbone.embeddings.weight.dtype
    return MambaState(torch.zeros(batch, n_layers, inner, n, dtype=dtype),
                      torch.zeros(batch, n_layers, inner, k, dtype=dtype))


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float, record, prefix: str) -> torch.Tensor:
    # MambaRMSNorm: x · rsqrt(mean(x²) + eps) · γ; `rms` is the divisor, sqrt(mean(x²) + eps)
    var = x.pow(2).mean(-1, keepdim=True)
    out = weight * (x * torch.rsqrt(var + eps))
    if record is not None:
        record(f"{prefix}.rms", torch.sqrt(var[0, :, 0] + eps))
        record(f"{prefix}.out", out[0])
    return out


def mamba_mixer(mixer, u: torch.Tensor, ssm0: torch.Tensor, conv0: torch.Tensor, record, p: str,
                inner_norm_eps: float | None = None):
    """One Mamba mixer over u (B, T, c) from state (ssm0 (B, d_inner, N), conv0 (B, d_inner, K));
    returns (output (B, T, c), final ssm state, final conv state). With `inner_norm_eps`, Jamba's
    mixer (jamba_trace): Δ-low, B and C each pass through an RMSNorm (its dt_layernorm, b_layernorm,
    c_layernorm) between x_proj and the scan, and are recorded before and after it."""
    r, n = int(mixer.time_step_rank), mixer.ssm_state_size
    xz = F.linear(u, mixer.in_proj.weight, mixer.in_proj.bias)
    x, z = xz.chunk(2, dim=-1)                                      # (B, T, d_inner) each
    # causal depthwise conv over the previous d_conv-1 inputs (the state) and this call's
    window = torch.cat([conv0, x.transpose(1, 2)], dim=-1)         # (B, d_inner, K + T)
    conv = F.conv1d(window[..., 1:], mixer.conv1d.weight, mixer.conv1d.bias,
                    groups=mixer.intermediate_size).transpose(1, 2)  # (B, T, d_inner)
    conv_state = window[..., -mixer.conv_kernel_size:]
    xc = F.silu(conv)
    dt_low, B, C = torch.split(F.linear(xc, mixer.x_proj.weight), [r, n, n], dim=-1)
    shown = [("x", x), ("z", z), ("conv", conv), ("conv_act", xc), ("dt_low", dt_low), ("B", B), ("C", C)]
    if inner_norm_eps is not None:
        # Jamba's inner RMSNorms, what makes its mixer differ from Mamba-1's
        dt_low = _rms_norm(dt_low, mixer.dt_layernorm.weight, inner_norm_eps, None, "")
        B = _rms_norm(B, mixer.b_layernorm.weight, inner_norm_eps, None, "")
        C = _rms_norm(C, mixer.c_layernorm.weight, inner_norm_eps, None, "")
        shown += [("dt_low_norm", dt_low), ("B_norm", B), ("C_norm", C)]
    dt = F.softplus(F.linear(dt_low, mixer.dt_proj.weight) + mixer.dt_proj.bias)  # (B, T, d_inner)
    A = -torch.exp(mixer.A_log.float())                             # (d_inner, N)
    dA = torch.exp(dt[..., None] * A)                               # (B, T, d_inner, N)
    dB = dt[..., None] * B[:, :, None, :]
    dBx = dB * xc[..., None]
    h, states = ssm0, []
    for a_t, bx_t in zip(dA.unbind(1), dBx.unbind(1)):
        h = a_t * h + bx_t
        states.append(h)
    hs = torch.stack(states, dim=1)                                 # (B, T, d_inner, N)
    y = torch.matmul(hs, C[..., None])[..., 0] + xc * mixer.D       # C_t · h_t + D ⊙ x_t
    gated = y * F.silu(z)
    out = F.linear(gated, mixer.out_proj.weight, mixer.out_proj.bias)
    if record is not None:
        for name, value in shown + [("dt", dt), ("dA", dA), ("dB", dB), ("h", hs), ("y", y), ("gated", gated),
                                    ("out", out)]:
            record(f"{p}.mamba.{name}", value[0])
    return out, h, conv_state


def forward(model, idx: torch.Tensor, state: MambaState | None = None, record=None):
    """idx (B, T) token ids → (logits (B, T, vocab), the state after the last token).

    From `state` (default: zeros), so calling it chunk by chunk with the returned state gives
    the logits of the whole sequence. `record(id, tensor)`, when given, receives batch row 0's
    intermediates under the layout ids. Differentiable: training calls it.
    """
    return backbone_forward(model, idx, state, record, mamba_mixer, initial_state, MambaState)


def backbone_forward(model, idx: torch.Tensor, state, record, mixer, initial, state_class):
    """The backbone MambaForCausalLM and Mamba2ForCausalLM share: embeddings; per layer x + mixer(RMSNorm(x))
    with `mixer(layer.mixer, h, ssm0, conv0, record, prefix)` → (out, ssm, conv); the final RMSNorm; the tied
    head. From `state` (None: `initial(model, batch)`); returns (logits, `state_class(ssm, conv)`)."""
    backbone = model.backbone
    eps = model.config.layer_norm_epsilon
    sequence_trace.check_batch(idx)
    state = initial(model, idx.shape[0]) if state is None else state
    x = backbone.embeddings(idx)
    sequence_trace.record_embedding(record, idx, x)
    ssm, conv = [], []
    for i, layer in enumerate(backbone.layers):
        p = f"blocks.{i}"
        h = _rms_norm(x, layer.norm.weight, eps, record, f"{p}.ln1")
        out, s, c = mixer(layer.mixer, h, state.ssm[:, i], state.conv[:, i], record, p)
        x = x + out
        ssm.append(s)
        conv.append(c)
        if record is not None:
            record(f"{p}.resid1", x[0])
    h = _rms_norm(x, backbone.norm_f.weight, eps, record, "ln_f")
    logits = sequence_trace.lm_head(h, model.lm_head.weight, record)
    return logits, state_class(torch.stack(ssm, dim=1), torch.stack(conv, dim=1))


# ---- ids -------------------------------------------------------------------------------------

def trace_ids(n_layers: int) -> list[tuple[str, tuple[str, ...]]]:
    """Every id `trace` records, in data-flow order, with its axes."""
    ids = [("tokens", ("t",)), ("embed.out", ("t", "c"))]
    for i in range(n_layers):
        p = f"blocks.{i}"
        ids += [(f"{p}.ln1.rms", ("t",)), (f"{p}.ln1.out", ("t", "c"))]
        ids += [(f"{p}.mamba.{name}", ("t", "i")) for name in ("x", "z", "conv", "conv_act")]
        ids += [(f"{p}.mamba.dt_low", ("t", "r")), (f"{p}.mamba.B", ("t", "n")), (f"{p}.mamba.C", ("t", "n")),
                (f"{p}.mamba.dt", ("t", "i")), (f"{p}.mamba.dA", ("t", "i", "n")),
                (f"{p}.mamba.dB", ("t", "i", "n")), (f"{p}.mamba.h", ("t", "i", "n")),
                (f"{p}.mamba.alpha", ("i", "t", "t'")), (f"{p}.mamba.y", ("t", "i")),
                (f"{p}.mamba.gated", ("t", "i")), (f"{p}.mamba.out", ("t", "c")), (f"{p}.resid1", ("t", "c"))]
    return ids + [("ln_f.rms", ("t",)), ("ln_f.out", ("t", "c")), ("logits", ("t", "v")), ("probs", ("t", "v"))]


def weight_ids(n_layers: int) -> list[tuple[str, tuple[str, ...]]]:
    """Every parameter under the layout's ids; matrices (out, in) like torch.nn.Linear."""
    ids = [("embed.tok.weight", ("v", "c"))]
    for i in range(n_layers):
        p = f"blocks.{i}"
        ids += [(f"{p}.ln1.weight", ("c",)), (f"{p}.mamba.x.weight", ("i", "c")), (f"{p}.mamba.z.weight", ("i", "c")),
                (f"{p}.mamba.conv.weight", ("i", "k")), (f"{p}.mamba.conv.bias", ("i",)),
                (f"{p}.mamba.dt_low.weight", ("r", "i")), (f"{p}.mamba.B.weight", ("n", "i")),
                (f"{p}.mamba.C.weight", ("n", "i")), (f"{p}.mamba.dt.weight", ("i", "r")),
                (f"{p}.mamba.dt.bias", ("i",)), (f"{p}.mamba.A_log", ("i", "n")), (f"{p}.mamba.D", ("i",)),
                (f"{p}.mamba.out.weight", ("c", "i"))]
    # the output head is the embedding (tied); the layout draws it twice, so it is listed twice
    return ids + [("ln_f.weight", ("c",)), ("lm_head.weight", ("v", "c"))]


# ---- one sequence ----------------------------------------------------------------------------

@torch.inference_mode()
def trace(model, tokens, state=None) -> ActivationTrace:
    """One sequence's intermediates, float32 numpy under the layout's ids, plus the scan's
    dA, dB, h and the implicit attention α per layer (SCAN_IDS).
    From `state` (default: zeros): the state after earlier tokens, left untraced."""
    arrays = sequence_trace.recorded(forward, model, tokens, state)
    for i in range(model.config.num_hidden_layers):
        p = f"blocks.{i}.mamba"
        arrays[f"{p}.alpha"] = implicit_attention(arrays[f"{p}.dA"], arrays[f"{p}.dB"], arrays[f"{p}.C"])
    return sequence_trace.in_order(arrays, trace_ids(model.config.num_hidden_layers))


@torch.inference_mode()
def weights(model) -> ActivationTrace:
    """Every parameter as float32 numpy under the layout's weight ids: in_proj split into its x and
    z halves, x_proj into its dt_low, B and C slices, the conv kernel as (d_inner, d_conv)."""
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    n_layers, inner, n, _, r = _sizes(model)
    named = {"embed.tok.weight": sd["backbone.embeddings.weight"], "lm_head.weight": model.lm_head.weight.detach(),
             "ln_f.weight": sd["backbone.norm_f.weight"]}
    for i in range(n_layers):
        p, m = f"blocks.{i}", f"backbone.layers.{i}.mixer"
        x_w, z_w = sd[f"{m}.in_proj.weight"].split(inner, dim=0)
        dt_low_w, b_w, c_w = sd[f"{m}.x_proj.weight"].split([r, n, n], dim=0)
        named.update({
            f"{p}.ln1.weight": sd[f"backbone.layers.{i}.norm.weight"],
            f"{p}.mamba.x.weight": x_w, f"{p}.mamba.z.weight": z_w,
            f"{p}.mamba.conv.weight": sd[f"{m}.conv1d.weight"][:, 0], f"{p}.mamba.conv.bias": sd[f"{m}.conv1d.bias"],
            f"{p}.mamba.dt_low.weight": dt_low_w, f"{p}.mamba.B.weight": b_w, f"{p}.mamba.C.weight": c_w,
            f"{p}.mamba.dt.weight": sd[f"{m}.dt_proj.weight"], f"{p}.mamba.dt.bias": sd[f"{m}.dt_proj.bias"],
            f"{p}.mamba.A_log": sd[f"{m}.A_log"], f"{p}.mamba.D": sd[f"{m}.D"],
            f"{p}.mamba.out.weight": sd[f"{m}.out_proj.weight"]})
    return sequence_trace.in_order(sequence_trace.numpy_copies(named), weight_ids(n_layers), "weight")


def implicit_attention(dA: np.ndarray, dB: np.ndarray, C: np.ndarray) -> np.ndarray:
    """α (d_inner, T, T): α[i, t, s] = Σ_n C_t[n] · Π_{k=s+1..t} Ā_k[i, n] · B̄_s[i, n] for s ≤ t, else 0,
    so that y_t = Σ_s α[i, t, s] · x_s[i] + D[i] · x_t[i] (Ali, Zimerman & Wolf 2024).

    dA, dB (T, d_inner, N), C (T, N). The products are built one row t at a time, each from the
    previous (in float64), so there is no division by a vanishing product."""
    T, inner, _ = dA.shape
    dA64, dB64, C64 = dA.astype(np.float64), dB.astype(np.float64), C.astype(np.float64)
    alpha = np.zeros((inner, T, T))
    carried = np.zeros((0, inner, dA.shape[2]))         # row t: Π_{k=s+1..t} Ā_k ⊙ B̄_s for s < t
    for t in range(T):
        carried = np.concatenate([carried * dA64[t], dB64[t][None]], axis=0)   # (t + 1, d_inner, N)
        alpha[:, t, :t + 1] = np.einsum("sin,n->is", carried, C64[t])
    return alpha.astype(np.float32)


# ---- state and streaming ---------------------------------------------------------------------

def backbone_streaming(forward):
    """(final_state, step) over a backbone `forward`, this module's or mamba2_trace's: both families
    carry the same two-part state (MambaState, Mamba2State), so they stream alike."""

    @torch.inference_mode()
    def final_state(model, tokens) -> tuple[np.ndarray, np.ndarray]:
        """(ssm state, conv state) after `tokens`, batch row 0: (layers, d_inner, d_state) and
        (layers, d_inner, d_conv) here, Mamba2State's shapes without the batch for Mamba-2."""
        _, state = forward(model, token_tensor(tokens, model.config.vocab_size))
        return state.ssm[0].numpy().copy(), state.conv[0].numpy().copy()

    @torch.inference_mode()
    def step(model, token: int, state=None) -> tuple[np.ndarray, object]:
        """The recurrent form: one token from `state` (default: zeros) → (logits (vocab,), new state).
        A sequence of any length streams through in constant memory."""
        return sequence_trace.step(forward, model, token, state)

    return final_state, step


final_state, step = backbone_streaming(forward)
