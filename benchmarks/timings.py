"""Benchmark: the per-call figures the test suite used to assert as time limits, now measured here.

    .venv/bin/python benchmarks/timings.py        (prints JSON; a few seconds)

packets_update_ms   PacketSystem.update for 1000 tokens × top-8 packets, median (the frame budget was 2 ms)
nanogpt_trace_ms    one traced nano-GPT forward over its 11-token context, 1 torch thread, median of 200
                    (what `llmviz bench --scene nano-gpt --json` reports as tick_ms_median, on the worker)
moe4_trace_ms       one traced moe-4 forward over 32 characters, 1 torch thread, median of 20
layout_ms           layout_model for the two largest models, one build each (cold: the layout is not cached)
explain_us          one hover explanation (scenes/dataflow.py explain) of a nano-GPT cell, mean over every traced tensor
Figures, not assertions: the test suite never times anything.
"""
from __future__ import annotations

import json
import statistics
import time

import torch


def _median_ms(fn, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1e3, 3)


def main() -> None:
    torch.set_num_threads(1)
    from llmviz.engine.systems.packets import bench_packets
    from llmviz.models.registry import load_registry
    from llmviz.models.sim import moe_corpus, sort_task
    from llmviz.models.sim.moe_model import load_moe
    from llmviz.models.sim.nanogpt import load_nanogpt
    from llmviz.scenes.dataflow import explain
    from llmviz.scenes.layout import layout_model

    report = {"packets_update_ms": round(bench_packets(1000, 8, repeats=50), 3)}
    nano = load_nanogpt()
    context = sort_task.encode("CBABBCABBBC")
    report["nanogpt_trace_ms"] = _median_ms(lambda: nano.trace(context), 200, warmup=20)
    moe4 = load_moe("moe-4")
    text = moe_corpus.encode("def f(x): return x+1\nprint(f(2)) # ok"[:32])
    report["moe4_trace_ms"] = _median_ms(lambda: moe4.trace(text), 20)
    registry = load_registry(include_user=False)
    report["layout_ms"] = {}
    for model_id in ("gpt-3-175b", "llama-3.1-405b"):
        start = time.perf_counter()
        layout_model(registry.get(model_id))
        report["layout_ms"][model_id] = round((time.perf_counter() - start) * 1e3, 1)
    trace, weights = nano.trace(context), nano.weights()
    ids = list(trace)

    def hover_all():
        for tensor_id in ids:
            explain(tensor_id, 10, None if trace[tensor_id].ndim == 1 else 0, trace, weights)

    hover_all()  # resolve() caches the rule lookup after the first look, as a hovering user has it
    report["explain_us"] = round(_median_ms(hover_all, 5, warmup=0) * 1e3 / len(ids), 1)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
