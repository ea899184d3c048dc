"""What a model keeps in memory while it generates, from its spec: the attention layers' key/value cache and the recurrent layers' fixed state.

Counted in values (scalars); multiply by the bytes of the cache's number type (2 for bf16, 4 for float32).

- A standard attention layer caches a key and a value per KV head per position: 2 × kv_heads × head_dim
  values per token (GQA and MQA share keys and values between query heads, so they cache less than MHA).
- DeepSeek's MLA caches the compressed KV latent and the shared rope key instead: kv_lora_rank +
  qk_rope_head_dim values per token (DeepSeek-V3 inference/model.py, the "absorb" cache).
- A sliding-window layer keeps at most its window of positions.
- A recurrent layer keeps a fixed state whatever the length (transformers' caches): Mamba-1 the SSM state
  (d_inner × d_state) and the convolution's window (d_inner × d_conv); Mamba-2 the same state and the window
  of the convolved x, B and C ((d_inner + 2 × n_groups × d_state) × d_conv); RWKV-4 per channel the two
  token shifts and the WKV numerator, denominator and exponent (5 × d_model); RWKV-6 per head a head_size ×
  head_size state and the two token shifts (d_model × (head_size + 2)).

Pure stdlib over models/spec.py: no torch, no rendering.
"""
from __future__ import annotations

from .spec import Architecture


def attention_layers(arch: Architecture) -> int:
    return arch.layer_mixers().count("attention")


def kv_values_per_layer_token(arch: Architecture) -> int:
    """Values one attention layer caches for one position (0 for a stack without attention)."""
    if not attention_layers(arch):
        return 0
    if arch.mla is not None:
        return arch.mla.kv_lora_rank + arch.mla.qk_rope_head_dim
    return 2 * arch.kv_heads * arch.head_width


def kv_values_per_token(arch: Architecture) -> int:
    """Values the whole stack's attention layers cache for one more position (until a window fills)."""
    return attention_layers(arch) * kv_values_per_layer_token(arch)


def cached_positions(arch: Architecture, n_tokens: int) -> int:
    """Positions an attention layer holds after ``n_tokens``: all of them, or at most its sliding window."""
    window = arch.sliding_window
    return n_tokens if window is None else min(n_tokens, window)


def kv_cache_values(arch: Architecture, n_tokens: int) -> int:
    """The attention layers' keys and values after ``n_tokens`` positions."""
    return kv_values_per_token(arch) * cached_positions(arch, n_tokens)


def _mixer_state_values(arch: Architecture, mixer: str) -> int:
    if mixer == "attention":
        return 0
    c = arch.d_model
    if mixer == "rwkv4":
        return 5 * c
    if mixer == "rwkv6":
        return c * (arch.rwkv.head_size + 2)
    ssm = arch.ssm
    inner = ssm.expand * c
    convolved = inner + (2 * ssm.n_groups * ssm.d_state if mixer == "mamba2" else 0)
    return inner * ssm.d_state + convolved * ssm.d_conv


def recurrent_state_values(arch: Architecture) -> int:
    """The recurrent layers' fixed state (Mamba, Mamba-2, RWKV), summed over the stack; 0 for pure attention."""
    return sum(_mixer_state_values(arch, mixer) for mixer in arch.layer_mixers())


def cache_values(arch: Architecture, n_tokens: int) -> int:
    """Everything generation keeps after ``n_tokens``: the KV cache plus the fixed recurrent state."""
    return kv_cache_values(arch, n_tokens) + recurrent_state_values(arch)


# ---- in bytes, at the context lengths people quote -------------------------------------------------

CACHE_BYTES_PER_VALUE = 2   # bf16 (or fp16): what inference servers keep their caches in
# 8K, 128K, Claude's 200K and Gemini 1.5's 1M tokens (public context lengths; see their specs' notes)
QUOTED_CONTEXTS = (("8K", 8_192), ("128K", 131_072), ("200K", 200_000), ("1M", 1_000_000))


def kv_cache_bytes_per_token(arch: Architecture, bytes_per_value: int = CACHE_BYTES_PER_VALUE) -> int:
    """Bytes one more position adds to the attention layers' cache (until a sliding window fills)."""
    return bytes_per_value * kv_values_per_token(arch)


def cache_bytes_at_contexts(arch: Architecture, bytes_per_value: int = CACHE_BYTES_PER_VALUE) -> list[tuple[str, int]]:
    """(label, bytes of everything generation keeps) at each of QUOTED_CONTEXTS."""
    return [(label, bytes_per_value * cache_values(arch, n)) for label, n in QUOTED_CONTEXTS]
