"""Benchmark: how long the long-context view takes to show exact values when zoomed in, at N tokens, over many zoom
targets: the view's spans from 32 to 1,024 tokens (DETAIL_SPAN), near the diagonal and anywhere below it.

    .venv/bin/python benchmarks/longctx_zoom.py [N] [--jumps J] [--ab-finish] [--no-worker]
        (default 131072, 60 jumps; prints JSON)

Reads the pass the view keeps in the cache folder (run `llmviz render --scene longctx:N …` once first, or this
computes it, minutes at 131,072). Then:
- worker: per span and placement, 30 camera poses; for each, the request the view makes (wanted_region,
  wanted_mid) answered as the worker answers it (scenes/longctx_view.answer_view: the fine grid's window and the
  exact block recomputed from the stored queries, keys and row statistics, log-scaled, max-pooled to at most
  256 x 256), as after a jump (nothing kept).
- frames: the explorer's whole frame headless, as the window draws it (UI, panels, picking at a moving pointer:
  bench --app's driver; the explorer's thread switch interval), its overview drawn first (three frames, timed
  apart: the first frame's shaders and uploads are the scene's opening, not a zoom), then J camera jumps cycling
  through the spans and placements; from the jump to the frame that shows the exact block, with the frames drawn,
  the worker's time, the slowest frame's costliest systems and the garbage collector's pauses inside it; the
  slowest five named. `--ab-finish` alternates the jumps between the renderer's finish, which lets go of the
  interpreter lock as the window's swap does, and moderngl's own, which holds it (an A/B in one run).
Figures, not assertions.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import time

import numpy as np
import torch

SPANS = (32, 64, 256, 512, 1000)        # tokens across the view's width (exact values: at most DETAIL_SPAN)
PLACEMENTS = ("diagonal", "below")      # the key within 4 spans left of the query, or anywhere before it
VIEWPORT = (1280, 720)


def target(rng, length: int, span: int, placement: str) -> tuple[float, float]:
    q = float(rng.integers(2 * span, length - 2 * span))
    k = q - float(rng.integers(0, 4 * span)) if placement == "diagonal" else float(rng.integers(span, q))
    return q, k


def height(span: int) -> float:
    """The view's height in tokens when its width is `span` (camera_over frames a height)."""
    return span * VIEWPORT[1] / VIEWPORT[0]


def summary(ms: list[float]) -> dict:
    ms = sorted(ms)
    return {"median": round(statistics.median(ms), 1), "p95": round(ms[math.ceil(0.95 * len(ms)) - 1], 1),
            "max": round(ms[-1], 1), "n": len(ms)}


def main(argv=None) -> int:
    from llmviz.models.sim.induction_task import HELD_OUT_SEED
    from llmviz.scenes import longctx_view

    parser = argparse.ArgumentParser(description="long-context zoom latency")
    parser.add_argument("length", nargs="?", type=int, default=131_072)
    parser.add_argument("--jumps", type=int, default=60)
    parser.add_argument("--switch-interval-ms", type=float, default=None,
                        help="the interpreter's thread switch interval for the frame path (default: the explorer's)")
    parser.add_argument("--no-worker", action="store_true", help="only the frame path")
    parser.add_argument("--ab-finish", action="store_true",
                        help="alternate jumps between the renderer's finish (the interpreter lock let go) and "
                             "moderngl's own (held), each summarised apart: an A/B in one run")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    long_pass, head = longctx_view._compute_pass(args.length, HELD_OUT_SEED, lambda *a: None)
    report = {"length": args.length, "head": head, "pass_open_s": round(time.perf_counter() - start, 2)}
    fine = longctx_view.fine_pyramid(long_pass.fine_mass[head])
    view = longctx_view.LongContextView(args.length, HELD_OUT_SEED, None)
    base_cell = long_pass.levels[head][0].cell
    rng = np.random.default_rng(0)
    worker = {}
    for span in () if args.no_worker else SPANS:
        for placement in PLACEMENTS:
            times, sizes = [], set()
            for _ in range(30):
                view.camera = view.camera_over(*target(rng, args.length, span, placement), height(span), VIEWPORT)
                detail = view.wanted_region(args.length)
                mid = view.wanted_mid(args.length, base_cell, long_pass.fine_cell)
                state = {"pass": (long_pass, head), "fine": fine}
                t = time.perf_counter()
                longctx_view.answer_view(state, mid, detail)
                times.append(1e3 * (time.perf_counter() - t))
                sizes.add(None if detail is None else detail[1] - detail[0])
            worker[f"{span}_{placement}"] = {**summary(times), "exact_block_sides": sorted(s for s in sizes if s)}
    if worker:
        report["worker_answer_ms"] = worker
    if args.jumps > 0:
        report.update(_frame_path(args.length, args.jumps, rng, args.switch_interval_ms, args.ab_finish))
    print(json.dumps(report, indent=2))
    return 0


def _top(systems: dict, n: int = 3) -> dict:
    """The frame's `n` costliest systems (the explorer's profiler), in ms."""
    return {name: round(ms, 1) for name, ms in sorted(systems.items(), key=lambda kv: -kv[1])[:n]}


def _frame_path(length: int, jumps: int, rng, switch_interval_ms: float | None = None, ab_finish: bool = False
                ) -> dict:
    """The whole path in the explorer's frame, headless, as the window draws it (UI, picking at a moving pointer,
    panels; bench --app's driver): the camera jumps, frames are drawn until the exact block under it is on screen;
    from the jump to the frame that shows it. `switch_interval_ms`: the interpreter's thread switch interval
    instead of the explorer's own (an A/B of what the frame thread's hold on the interpreter costs the worker)."""
    import sys

    from llmviz.scenes.cli.bench_app import AppDriver, FrameTimes
    from llmviz.scenes.cli.common import headless_renderer
    from llmviz.scenes.explorer import Explorer

    renderer = headless_renderer(VIEWPORT)
    own_finish = renderer.finish
    ex = Explorer(renderer, f"longctx:{length}", adaptive_quality=False)
    if switch_interval_ms is not None:
        sys.setswitchinterval(switch_interval_ms / 1e3)
    scene = ex.session.scene
    view, live = scene.longctx_view, scene.live
    ex.wait_for_values()
    ex.warm_up.join(120)
    ex.overlay.visible = False
    driver = AppDriver(ex, renderer, FrameTimes(64 + 64 * jumps))
    # the overview drawn first, as a user sees it before zooming: the scene's first frames (shaders, the
    # overview's upload) are not a zoom's cost
    opening = [round(driver.step(), 1) for _ in range(3)]
    pauses: list[float] = []
    began = {}

    def collector(phase, info):
        if phase == "start":
            began["t"] = time.perf_counter()
        elif "t" in began:
            pauses.append(1e3 * (time.perf_counter() - began.pop("t")))

    gc.callbacks.append(collector)
    cases = [(span, placement) for span in SPANS for placement in PLACEMENTS]
    rows = []
    try:
        for n in range(jumps):
            span, placement = cases[n % len(cases)]
            pose = view.camera_over(*target(rng, length, span, placement), height(span), VIEWPORT)
            held = ab_finish and (n + n // len(cases)) % 2 == 1   # each case both ways, interleaved
            renderer.finish = renderer.ctx.finish if held else own_finish

            def hold(pose=pose):   # the rig would ease the camera elsewhere: the jump is held every frame
                cam = ex.session.engine.camera
                cam.position, cam.orientation, cam.near, cam.far = pose.position, pose.orientation, pose.near, pose.far
            pauses.clear()
            ticks = len(live.tick_seconds)
            start, frame_ms, systems = time.perf_counter(), [], []
            while True:
                frame_ms.append(driver.step(hold))
                systems.append(ex.profiler.last.get("system_ms", {}))
                if live._asked is None or live._shown == live._asked:   # noqa: SLF001 - the benchmark reads it
                    break
                if time.perf_counter() - start > 30:
                    raise SystemExit(f"jump {n}: the exact block did not arrive in 30 s")
            rows.append({"jump": n, "span": span, "placement": placement, "finish_holds_lock": held,
                         "ms": round(1e3 * (time.perf_counter() - start), 1), "frames": len(frame_ms),
                         "slowest_frame_ms": round(max(frame_ms), 1),
                         "slowest_frame_systems_ms": _top(systems[int(np.argmax(frame_ms))]),
                         "worker_ms": round(1e3 * live.tick_seconds[-1], 1) if len(live.tick_seconds) > ticks else None,
                         "gc_pause_ms": round(sum(pauses), 1)})
    finally:
        gc.callbacks.remove(collector)
        ex.close()
    by_span = {str(span): summary([r["ms"] for r in rows if r["span"] == span]) for span in SPANS
               if any(r["span"] == span for r in rows)}
    ab = {}
    if ab_finish:
        for held in (False, True):
            part = [r for r in rows if r["finish_holds_lock"] == held]
            ab["finish_holding_the_lock" if held else "finish_letting_go"] = {
                "zoom_to_exact_ms": summary([r["ms"] for r in part]),
                "worker_in_scene_ms": summary([r["worker_ms"] for r in part if r["worker_ms"] is not None]),
                "slowest_frame_ms": summary([r["slowest_frame_ms"] for r in part])}
    return {**({"ab_finish": ab} if ab else {}), "switch_interval_ms": round(1e3 * sys.getswitchinterval(), 3), "opening_frames_ms": opening,
            "zoom_to_exact_ms": summary([r["ms"] for r in rows]), "zoom_to_exact_ms_by_span": by_span,
            "zoom_to_exact_frames_median": statistics.median(r["frames"] for r in rows),
            "worker_in_scene_ms": summary([r["worker_ms"] for r in rows if r["worker_ms"] is not None]),
            "slowest_frame_per_jump_ms": summary([r["slowest_frame_ms"] for r in rows]),
            "slowest_jumps": sorted(rows, key=lambda r: -r["ms"])[:5]}


if __name__ == "__main__":
    raise SystemExit(main())
