"""Benchmark: attention throughput of the WGSL compute kernels (engine/compute) against torch on the CPU, same machine.

    .venv/bin/python benchmarks/compute_attention.py [--repeats N] [--quick]     (prints JSON)

Per shape (heads, tokens, head dim; causal), the median wall time and process CPU time of N calls after one
warm-up, numpy in to numpy out (uploads and read-back included, as a caller sees it), and the largest difference
of the two outputs (a fast wrong answer is no figure):
  full    wgpu head_attention (probabilities and output)  vs  torch: scores, mask, softmax, times V (the same two)
  online  wgpu online_attention (output, row max, row sum) vs  torch scaled_dot_product_attention (output only,
          its fused CPU kernel, the fastest torch path)
GFLOP/s count the dense square (2 x 2 x H x Tq x Tk x d multiply-adds), a measure of size rather than of work:
wgpu's P.V and online kernel and torch's fused kernel skip masked keys. Figures, not assertions.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch

from llmviz.engine.compute import attention as compute

SHAPES = {  # kind -> (heads, tokens, head dim)
    "full": [(12, 128, 64), (12, 512, 64), (1, 2048, 64)],
    "online": [(12, 512, 64), (1, 4096, 64), (1, 16384, 64)],
}
QUICK = {"full": [(2, 64, 32)], "online": [(2, 64, 32)]}


def median_ms(fn, repeats: int) -> tuple[float, float]:
    """(median wall ms, median process CPU ms) of ``repeats`` calls after one warm-up. The CPU time counts every
    thread of this process, lavapipe's and torch's included: on a shared machine it says what a call costs where
    the wall time says mostly how busy the other processes were."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def torch_full(q, k, v):
    s = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    mask = torch.ones(s.shape[-2:], dtype=torch.bool).tril()
    p = torch.softmax(s.masked_fill(~mask, float("-inf")), dim=-1)
    return p, p @ v


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="WGSL attention kernels against torch CPU")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one tiny shape per kind (a smoke run)")
    args = parser.parse_args(argv)
    problem = compute.compute_unavailable()
    if problem:
        print(json.dumps({"error": problem}))
        return 1
    rng = np.random.default_rng(0)
    rows = []
    for kind, shapes in (QUICK if args.quick else SHAPES).items():
        for heads, tokens, d in shapes:
            q, k, v = (rng.standard_normal((heads, tokens, d)).astype(np.float32) for _ in range(3))
            tq, tk, tv = (torch.from_numpy(a) for a in (q, k, v))
            if kind == "full":
                gpu = median_ms(lambda: compute.head_attention(q, k, v), args.repeats)
                cpu = median_ms(lambda: torch_full(tq, tk, tv), args.repeats)
                ours, theirs = compute.head_attention(q, k, v).output, torch_full(tq, tk, tv)[1]
            else:
                gpu = median_ms(lambda: compute.online_attention(q, k, v), args.repeats)
                cpu = median_ms(lambda: torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True),
                                args.repeats)
                ours = compute.online_attention(q, k, v)[0]
                theirs = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
            flops = 2 * 2 * heads * tokens * tokens * d
            rows.append({"kind": kind, "heads": heads, "tokens": tokens, "head_dim": d,
                         "output_max_abs_difference": float(np.abs(ours - theirs.numpy()).max()),
                         "wgpu_ms": round(gpu[0], 2), "torch_ms": round(cpu[0], 2),
                         "wgpu_process_cpu_ms": round(gpu[1], 2), "torch_process_cpu_ms": round(cpu[1], 2),
                         "wgpu_gflops_wall": round(flops / gpu[0] / 1e6, 3),
                         "torch_gflops_wall": round(flops / cpu[0] / 1e6, 3),
                         "wgpu_time_over_torch_wall": round(gpu[0] / cpu[0], 2),
                         "wgpu_time_over_torch_cpu": round(gpu[1] / max(cpu[1], 1e-3), 2)})
    print(json.dumps({"adapter": compute.adapter_label(), "torch_threads": torch.get_num_threads(),
                      "cpus": os.cpu_count(), "repeats": args.repeats,
                      "load_average_at_end": [round(x, 2) for x in os.getloadavg()], "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
