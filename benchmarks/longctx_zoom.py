"""Benchmark: how long the long-context view takes to show exact values when zoomed in, at N tokens.

    .venv/bin/python benchmarks/longctx_zoom.py [N]      (default 131072; prints JSON)

Reads the pass the view keeps in the cache folder (run `llmviz render --scene longctx:N …` once first, or
this computes it, minutes at 131,072), then per zoom size times what the worker does for one request
(scenes/longctx_view.exact_region: the block recomputed from the stored queries, keys and row statistics,
log-scaled, max-pooled to at most 256 x 256) over 30 random places near the diagonal, and the frame's
upload of the result. Figures, not assertions.
"""
from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np
import torch


def main(argv=None) -> int:
    from llmviz.models.sim.induction_task import HELD_OUT_SEED
    from llmviz.scenes import longctx_view

    args = sys.argv[1:] if argv is None else argv
    length = int(args[0]) if args else 131_072
    torch.set_num_threads(1)
    start = time.perf_counter()
    long_pass, head = longctx_view._compute_pass(length, HELD_OUT_SEED, lambda *a: None)
    opened = time.perf_counter() - start
    rng = np.random.default_rng(0)
    report = {"length": length, "head": head, "pass_open_s": round(opened, 2)}
    for span in (32, 256, 2048):
        times = []
        for _ in range(30):
            q0 = int(rng.integers(span, length - span))
            k0 = max(0, q0 - int(rng.integers(0, 4 * span)))
            t = time.perf_counter()
            longctx_view.exact_region(long_pass, head, q0, q0 + span, k0, k0 + span)
            times.append(time.perf_counter() - t)
        report[f"exact_{span}x{span}_ms_median"] = round(1e3 * statistics.median(times), 2)
        report[f"exact_{span}x{span}_ms_max"] = round(1e3 * max(times), 2)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
