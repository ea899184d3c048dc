"""`llmviz bench`: a headless run along a scene's scripted camera path; prints FPS, frame and system times, counts."""
from __future__ import annotations

import json
import platform

import numpy as np

from llmviz.scenes.cli.backend_arg import add_backend_argument, offscreen_renderer
from llmviz.scenes.cli.common import Progress, parse_size, process_age_s
from llmviz.scenes.cli.main import CliError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("bench", help="benchmark a scene along its camera path (headless)")
    p.add_argument("--scene", help="scene name, e.g. stress:100000, nano-gpt, gpt-3")
    p.add_argument("--switch-models", action="store_true",
                   help="instead: time switching to every registry model (build + first frame) in one window-sized renderer")
    p.add_argument("--compute", action="store_true",
                   help="instead: attention throughput of the WGSL compute kernels against torch on the CPU, "
                        "T 64-4096 x d 16-128 (scenes/cli/compute_bench.py)")
    p.add_argument("--frames", type=int, default=300, help="frames along the path (default 300)")
    p.add_argument("--size", default="1280x720", help="render size WxH (default 1280x720)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--app", action="store_true",
                   help="also run the whole explorer frame (UI, picking, panels, live model) on the same path, "
                        "and report it beside the bare engine")
    p.add_argument("--interact", action="store_true",
                   help="with --app: script a search, MoE top-k and text edits, a chapter, a model switch and back")
    p.add_argument("--ui-cost", action="store_true",
                   help="with --app: run the path once more without the UI, to show what the UI costs")
    p.add_argument("--adaptive", action="store_true",
                   help="with --app: let adaptive quality lower detail to hold 60 FPS (off: full detail, like the engine)")
    p.add_argument("--compare", metavar="B[,C,D]",
                   help="with --app: the scene beside these models in a compare set (split views, cameras in step)")
    p.add_argument("--baseline-frames", type=int, default=5,
                   help="frames for the naive and per-entity baselines of stress scenes (default 5; 0 skips them)")
    add_backend_argument(p)
    p.set_defaults(func=run)


def machine() -> str:
    cores = __import__("os").cpu_count()
    return f"{platform.machine()}, {cores} cores, {platform.python_implementation()} {platform.python_version()}"


def run(args) -> int:
    from llmviz.scenes.registry import SceneError, build_scene

    if args.compute:
        from llmviz.scenes.cli.compute_bench import run as run_compute

        return run_compute(args)
    size = parse_size(args.size)
    if args.switch_models:
        return run_switching(args, size)
    if not args.scene:
        raise CliError("llmviz bench: give --scene NAME or --switch-models")
    if args.frames < 1:
        raise CliError(f"llmviz: --frames must be at least 1, got {args.frames}")
    if args.baseline_frames < 0:
        raise CliError(f"llmviz: --baseline-frames must be 0 or more, got {args.baseline_frames}")
    if (args.interact or args.adaptive or args.ui_cost or args.compare) and not args.app:
        raise CliError("llmviz bench: --interact, --adaptive, --ui-cost and --compare need --app")
    renderer = offscreen_renderer(args.backend, size, needs=("ui",) if args.app else ())
    try:
        scene = build_scene(args.scene, renderer, autoplay=True)
    except SceneError as err:
        raise CliError(f"llmviz: {err}") from None
    try:  # a Ctrl+C mid-run still stops the live model's worker (a thread left in torch aborts the exit)
        report = _bench_bare(args, scene, renderer, size)
    finally:
        scene.close()
    if args.app:
        from llmviz.scenes.cli.bench_app import run_app

        engine = {k: report.pop(k) for k in list(report) if k not in ("scene", "size", "first_frame_s")}
        report["engine_fps_median"] = engine["fps_median"]
        report["engine_fps_p5"] = engine["fps_p5"]
        report["engine"] = engine
        report.update(run_app(args, renderer, engine))
    report["gpu"] = renderer.device_name
    report["backend"] = renderer.backend_name
    report["machine"] = machine()
    if args.json:
        print(json.dumps(report, indent=None))
    elif args.app:
        print_app_report(report)
    else:
        print_report(report)
    return 0


def print_app_report(r: dict) -> None:
    print(f"scene {r['scene']} at {r['size']} on {r['gpu']}: the whole app frame (UI, picking, panels, live model)")
    print(f"  app: wall {r['wall_fps']:.1f} FPS, median {r['fps_median']:.1f}, p5 {r['fps_p5']:.1f}; "
          f"max frame {r['frame_ms_max']:.1f} ms, {r['frames_over_50ms']} frames over 50 ms; "
          f"the profiler would show {r['profiler_fps']:.1f}")
    print(f"  bare engine on the same path: {r['engine_fps_median']:.1f} FPS -> app/engine "
          f"{r.get('ratio_app_vs_engine', float('nan')):.2f}")
    print("  ms per system (median): " + ", ".join(f"{k} {v:.2f}" for k, v in r["systems_ms"].items()))
    if "chapters_fps_median" in r:
        print(f"  chapters playing: {r['chapters_fps_median']:.1f} FPS, {r['chapters_frames_over_50ms']} frames over 50 ms")
    if "interact" in r:
        i = r["interact"]
        print(f"  interaction script: {i['frames']} frames, {i['frames_over_50ms']} over 50 ms, max {i['frame_ms_max']:.1f} ms")
        for name, step in i["steps"].items():
            print(f"    {name:10s} {step.get('frames_counted', 0):5d} frames, max {step.get('frame_ms_max', 0):6.1f} ms, "
                  f"{step.get('frames_over_50ms', 0)} over 50 ms")


def _bench_bare(args, scene, renderer, size) -> dict:
    """The bare engine along the scene's path (and, for stress scenes, the naive baselines)."""
    from llmviz.engine.bench import flat_cull_lod_ms, run_frames, run_naive, run_per_entity
    from llmviz.engine.runtime import Engine

    engine = Engine(scene.world, scene.start_camera(size), renderer)
    scene.attach(engine)
    if not scene.wait_for_values():
        raise CliError(f"llmviz: {args.scene}: the model's values did not arrive: {scene.live.session.error or 'timed out'}")
    engine.frame(0.0)
    renderer.finish()
    first_frame_s = process_age_s()

    report = {"scene": args.scene, "size": f"{size[0]}x{size[1]}", "first_frame_s": round(first_frame_s, 3)}
    report.update(run_frames(engine, scene.path, args.frames, renderer.finish, Progress(f"bench {args.scene}")))
    if scene.is_stress and args.baseline_frames:
        n = args.baseline_frames
        report.update(run_per_entity(engine, scene.path, n))
        report.update(flat_cull_lod_ms(engine, scene.path, n))
        report.update(run_naive(engine, scene.path, scene.leaf_slots, n, renderer.finish))
        if "naive_fps_median" in report:
            report["ratio_fps_vs_naive"] = report["fps_median"] / report["naive_fps_median"]
        report["ratio_cull_lod_per_entity_vs_vectorized"] = (
            report["cull_lod_ms_per_entity"] / max(1e-9, report["cull_lod_ms_vectorized"]))
        # Same algorithm both sides: isolates column storage from hierarchical LOD.
        report["ratio_cull_lod_flat_per_entity_vs_flat_vectorized"] = (
            report["cull_lod_ms_per_entity"] / max(1e-9, report["cull_lod_ms_all_open"]))
        report["ratio_cull_lod_hierarchical_per_entity_vs_vectorized"] = (
            report["cull_lod_ms_per_entity_hierarchical"] / max(1e-9, report["cull_lod_ms_vectorized"]))
    if scene.live is not None:
        report["generated_tokens"] = scene.live.tokens_generated
        ticks = np.array(scene.live.tick_seconds) * 1000.0
        # Worker-thread time per traced forward pass, measured while the main thread renders.
        report["tick_ms_median"] = float(np.median(ticks)) if len(ticks) else None
        report["tick_ms_min"] = float(ticks.min()) if len(ticks) else None
    return report


def run_switching(args, size) -> int:
    """Switch through every registry model as the window does (same renderer, data reset) and time each."""
    import time

    from llmviz.engine.runtime import Engine
    from llmviz.models.registry import load_registry
    from llmviz.scenes.registry import build_scene

    renderer = offscreen_renderer(args.backend, size, needs=("ui",))
    ids = load_registry().ids()
    progress = Progress("switching models")
    timings = {}
    for i, model_id in enumerate(ids):
        start = time.perf_counter()
        renderer.reset_data()
        scene = build_scene(model_id, renderer)
        engine = Engine(scene.world, scene.start_camera(size), renderer)
        scene.attach(engine)
        engine.frame(0.0)
        renderer.finish()
        timings[model_id] = (time.perf_counter() - start) * 1000.0
        scene.close()
        progress(i + 1, len(ids))
    values = np.array(list(timings.values()))
    report = {"switch_ms": timings, "switch_ms_median": float(np.median(values)),
              "switch_ms_max": float(values.max()), "slowest": max(timings, key=timings.get),
              "size": f"{size[0]}x{size[1]}", "gpu": renderer.device_name,
              "machine": machine()}
    if args.json:
        print(json.dumps(report))
    else:
        for model_id, ms in timings.items():
            print(f"  {model_id:22s} {ms:7.1f} ms to first frame")
        print(f"median {report['switch_ms_median']:.1f} ms, slowest {report['slowest']} {report['switch_ms_max']:.1f} ms")
    return 0


def print_report(r: dict) -> None:
    print(f"scene {r['scene']} at {r['size']}, {r['frames']} frames on {r['gpu']}")
    print(f"  FPS median {r['fps_median']:.1f}, p5 {r['fps_p5']:.1f}; frame ms median {r['frame_ms_median']:.2f}, "
          f"p95 {r['frame_ms_p95']:.2f}; first frame {r['first_frame_s']:.2f} s after start")
    print(f"  entities {r['entities']:,}: visible {r['visible']:,}, culled {r['culled']:,} (medians)")
    print(f"  draw calls {r['draw_calls']}, triangles {r['triangles']:,}, instances per LOD {r['instances_per_lod']}")
    print("  ms per system (median): " + ", ".join(f"{k} {v:.2f}" for k, v in r["systems_ms"].items()))
    print(f"  visibility + LOD + instancing: {r['visibility_lod_instancing_ms']:.2f} ms")
    if "naive_fps_median" in r:
        print(f"  naive (one draw per entity, no culling, no LOD): {r['naive_fps_median']:.2f} FPS "
              f"-> instanced path is {r['ratio_fps_vs_naive']:.1f}x faster")
        print(f"  cull+LOD, esper-style per-entity loop over every entity: {r['cull_lod_ms_per_entity']:.1f} ms "
              f"vs vectorised in the scene {r['cull_lod_ms_vectorized']:.2f} ms "
              f"-> {r['ratio_cull_lod_per_entity_vs_vectorized']:.0f}x")
        print(f"  same algorithm both sides: flat {r['cull_lod_ms_per_entity']:.1f} vs {r['cull_lod_ms_all_open']:.2f} ms "
              f"({r['ratio_cull_lod_flat_per_entity_vs_flat_vectorized']:.0f}x); hierarchical "
              f"{r['cull_lod_ms_per_entity_hierarchical']:.1f} vs {r['cull_lod_ms_vectorized']:.2f} ms "
              f"({r['ratio_cull_lod_hierarchical_per_entity_vs_vectorized']:.0f}x); "
              f"instancing with all groups open {r['instancing_ms_all_open']:.2f} ms")
