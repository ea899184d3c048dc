"""Benchmark: how long the long-context view takes to show exact values when zoomed in, at N tokens.

    .venv/bin/python benchmarks/longctx_zoom.py [N]      (default 131072; prints JSON)

Reads the pass the view keeps in the cache folder (run `llmviz render --scene longctx:N …` once first, or
this computes it, minutes at 131,072), then per zoom size times what the worker does for one request
(scenes/longctx_view.exact_region: the block recomputed from the stored queries, keys and row statistics,
log-scaled, max-pooled to at most 256 x 256) over 30 random places near the diagonal; then, in the scene
drawn headless, the time from a camera jump to the frame that shows the exact block. Figures, not assertions.
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
    report.update(_frame_path(length, rng))
    print(json.dumps(report, indent=2))
    return 0


def _frame_path(length: int, rng) -> dict:
    """The whole path in the scene, headless: the camera jumps to a place ~40 tokens across, frames are drawn
    until the exact block under it is on screen; from the jump to the frame that shows it."""
    from llmviz.engine.runtime import Engine
    from llmviz.scenes.cli.common import headless_renderer
    from llmviz.scenes.registry import build_scene

    renderer = headless_renderer((1280, 720))
    scene = build_scene(f"longctx:{length}", renderer)
    view, live = scene.longctx_view, scene.live
    engine = Engine(scene.world, scene.start_camera((1280, 720)), renderer)
    scene.attach(engine)
    scene.wait_for_values()
    latencies, frames = [], []
    for _ in range(20):
        q = float(rng.integers(1000, length - 1000))
        pose = view.camera_over(q, q - float(rng.integers(0, 5000)), 40, (1280, 720))
        engine.camera.position, engine.camera.orientation = pose.position, pose.orientation
        engine.camera.near, engine.camera.far = pose.near, pose.far
        start, n = time.perf_counter(), 0
        engine.frame(1 / 60)
        renderer.finish()
        while live._shown is None or live._shown != live._asked:   # noqa: SLF001 - the benchmark reads the state
            engine.frame(1 / 60)
            renderer.finish()
            n += 1
        latencies.append(time.perf_counter() - start)
        frames.append(n + 1)
    scene.close()
    return {"zoom_to_exact_ms_median": round(1e3 * statistics.median(latencies), 1),
            "zoom_to_exact_ms_max": round(1e3 * max(latencies), 1),
            "zoom_to_exact_frames_median": statistics.median(frames)}


if __name__ == "__main__":
    raise SystemExit(main())
