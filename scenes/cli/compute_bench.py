"""`llmviz bench --compute [--json]`: attention throughput of engine/compute's WGSL kernels against torch on the CPU,
the same shapes on the same machine (benchmarks/compute_attention.py runs the same measurement on its own shapes).

Per shape (heads, tokens, head dim; causal) the median wall time and process CPU time of REPEATS calls after one
warm-up, numpy in to numpy out (uploads and read-back included, as a caller sees it), and the largest difference of
the two outputs (a fast wrong answer is no figure):
  full    wgpu head_attention (probabilities and output: what a live trace takes)  vs  torch: scores, mask, softmax,
          times V (the same two)
  online  wgpu online_attention (output, row max, row sum)  vs  torch scaled_dot_product_attention (output only, its
          fused CPU kernel, the fastest torch path)
GFLOP/s count the dense square (2 x 2 x H x Tq x Tk x d multiply-adds), a measure of size rather than of work:
wgpu's P.V and online kernel and torch's fused kernel skip masked keys.
"""
from __future__ import annotations

import os
import statistics
import time

import numpy as np

TOKENS = (64, 256, 1024, 4096)
HEAD_DIMS = (16, 32, 64, 128)
HEADS = 1                 # one head, the kernels' unit (a trace's heads go in as a stack of them)
REPEATS = 3


def table_shapes() -> dict[str, list[tuple[int, int, int]]]:
    """kind -> (heads, tokens, head dim) for every tokens x head dim of the table."""
    return {kind: [(HEADS, t, d) for t in TOKENS for d in HEAD_DIMS] for kind in ("full", "online")}


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
    """(probabilities, output) of causal attention by torch, written out: scores, mask, softmax, times V."""
    import torch

    s = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    mask = torch.ones(s.shape[-2:], dtype=torch.bool).tril()
    p = torch.softmax(s.masked_fill(~mask, float("-inf")), dim=-1)
    return p, p @ v


def measure(shapes: dict, repeats: int = REPEATS, progress=None) -> dict:
    """{'adapter', 'torch_threads', 'cpus', 'repeats', 'load_average_at_end', 'results': one row per shape}; raises
    ComputeUnavailable (one line) where the kernels cannot run."""
    import torch

    from llmviz.engine.compute import attention as compute

    problem = compute.compute_unavailable()
    if problem:
        raise compute.ComputeUnavailable(problem)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    rng = np.random.default_rng(0)
    rows = []
    todo = [(kind, shape) for kind, kind_shapes in shapes.items() for shape in kind_shapes]
    for n, (kind, (heads, tokens, d)) in enumerate(todo):
        q, k, v = (rng.standard_normal((heads, tokens, d)).astype(np.float32) for _ in range(3))
        tq, tk, tv = (torch.from_numpy(a) for a in (q, k, v))
        if kind == "full":
            ours, theirs = (lambda: compute.head_attention(q, k, v)), (lambda: torch_full(tq, tk, tv))
            difference = np.abs(ours().output - theirs()[1].numpy()).max()
        else:
            ours, theirs = (lambda: compute.online_attention(q, k, v)), (lambda: sdpa(tq, tk, tv, is_causal=True))
            difference = np.abs(ours()[0] - theirs().numpy()).max()
        gpu, cpu = median_ms(ours, repeats), median_ms(theirs, repeats)
        flops = 2 * 2 * heads * tokens * tokens * d
        rows.append({"kind": kind, "heads": heads, "tokens": tokens, "head_dim": d,
                     "output_max_abs_difference": float(difference),
                     "wgpu_ms": round(gpu[0], 2), "torch_ms": round(cpu[0], 2),
                     "wgpu_process_cpu_ms": round(gpu[1], 2), "torch_process_cpu_ms": round(cpu[1], 2),
                     "wgpu_gflops_wall": round(flops / gpu[0] / 1e6, 3),
                     "torch_gflops_wall": round(flops / cpu[0] / 1e6, 3),
                     "wgpu_time_over_torch_wall": round(gpu[0] / cpu[0], 2),
                     "wgpu_time_over_torch_cpu": round(gpu[1] / max(cpu[1], 1e-3), 2)})
        if progress is not None:
            progress(n + 1, len(todo))
    return {"adapter": compute.adapter_label(), "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
            "repeats": repeats, "load_average_at_end": [round(x, 2) for x in os.getloadavg()], "results": rows}


def print_table(report: dict) -> None:
    print(f"WGSL attention kernels on {report['adapter']} against torch CPU (torch threads: {report['torch_threads']}), "
          f"median of {report['repeats']} calls; load {report['load_average_at_end'][0]}")
    print(f"{'kind':<7}{'T':>6}{'d':>5}{'wgpu ms':>11}{'torch ms':>11}{'wgpu/torch':>12}{'GFLOP/s wgpu':>14}"
          f"{'torch':>8}{'max |diff|':>12}")
    for r in report["results"]:
        print(f"{r['kind']:<7}{r['tokens']:>6}{r['head_dim']:>5}{r['wgpu_ms']:>11.2f}{r['torch_ms']:>11.2f}"
              f"{r['wgpu_time_over_torch_wall']:>12.2f}{r['wgpu_gflops_wall']:>14.2f}{r['torch_gflops_wall']:>8.2f}"
              f"{r['output_max_abs_difference']:>12.1e}")


def run(args) -> int:
    import json

    from llmviz.engine.compute.attention import ComputeUnavailable
    from llmviz.scenes.cli.common import Progress
    from llmviz.scenes.cli.main import CliError

    try:
        report = measure(table_shapes(), REPEATS, progress=Progress("bench --compute"))
    except ComputeUnavailable as err:
        raise CliError(f"llmviz bench --compute: {err}") from None
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0
