"""The compute kernels' self-check for `llmviz doctor`: both attention kernels on a fixed random case (odd sizes, a
cache offset, a sliding window) against a float64 numpy reference written out from the definition."""
from __future__ import annotations

import numpy as np

TOLERANCE = 1e-5  # absolute, on outputs and probabilities of order one: float32 kernels against float64
CASE = {"heads": 3, "queries": 29, "keys": 45, "head_dim": 20, "window": 24, "seed": 19}


def reference_attention(q, k, v, causal: bool = True, window: int | None = None, scale: float | None = None):
    """(probabilities, output) in float64: scores q.k * scale, key j allowed for query i when j <= i + (Tk - Tq) and
    (with a window) j > i + (Tk - Tq) - window, softmax over the allowed keys, times v."""
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    tq, tk = q.shape[-2], k.shape[-2]
    s = q @ np.swapaxes(k, -1, -2) * (q.shape[-1] ** -0.5 if scale is None else scale)
    if causal:
        i = np.arange(tq)[:, None] + (tk - tq)
        j = np.arange(tk)[None, :]
        allowed = (j <= i) & ((j > i - window) if window else True)
        s = np.where(allowed, s, -np.inf)
    s = s - s.max(-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(-1, keepdims=True)
    return p, p @ v


def run_self_check() -> dict:
    """{'compute_max_error', 'passed', 'tolerance', 'adapter', 'case'}, or {'error': one line} where nothing can run."""
    from llmviz.engine.compute import attention

    problem = attention.compute_unavailable()
    if problem:
        return {"error": problem, "passed": False}
    gen = np.random.default_rng(CASE["seed"])
    heads, tq, tk, d = CASE["heads"], CASE["queries"], CASE["keys"], CASE["head_dim"]
    q = gen.standard_normal((heads, tq, d)).astype(np.float32)
    k = gen.standard_normal((heads, tk, d)).astype(np.float32)
    v = gen.standard_normal((heads, tk, d)).astype(np.float32)
    errors = {}
    for window in (None, CASE["window"]):
        probs, output = reference_attention(q, k, v, window=window)
        full = attention.head_attention(q, k, v, window=window)
        online, _, _ = attention.online_attention(q, k, v, window=window)
        tag = "" if window is None else "_window"
        errors[f"full_probs{tag}"] = float(np.abs(full.probs - probs).max())
        errors[f"full_output{tag}"] = float(np.abs(full.output - output).max())
        errors[f"online_output{tag}"] = float(np.abs(online - output).max())
    worst = max(errors.values())
    return {"compute_max_error": worst, "passed": bool(worst <= TOLERANCE), "tolerance": TOLERANCE,
            "errors": errors, "adapter": attention.adapter_label(), "case": dict(CASE)}
