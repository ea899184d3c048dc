"""`llmviz bench --app`: the whole Explorer frame, headless, as a user gets it — beside the bare engine, in one run.

Along the scene's camera path, every frame is the Explorer's: the UI drawn into the offscreen
frame, picking at a pointer that sweeps the view, the model's panels open, the live model
generating; each frame waits for the GPU (glFinish) and counts as presented then, so frame
times are wall clock. The bare engine (no UI, no picking, no panels) runs the same path first, in
the same process and renderer, so ``ratio_app_vs_engine`` compares like with like. Live models
also play their chapters for a third of the frames more (reported apart: the chapter moves the
camera off the path).

``--interact`` then scripts what users do, every frame counted: a 6-letter search typed in the
component tree, the MoE top-k swept through its range, the MoE text edited, a chapter played,
a switch to the next model and back. ``frames_over_50ms`` counts the frames a user would see stall.
"""
from __future__ import annotations

import math
import time

import numpy as np

from llmviz.scenes.cli.main import CliError

SEARCH_WORD = "attent"
STALL_MS = 50.0
SWITCH_TIMEOUT_S = 60.0


class FrameTimes:
    """Per-frame wall times in a preallocated array (a long run never grows), and the slow ones counted."""

    def __init__(self, capacity: int):
        self.ms = np.zeros(max(1, capacity), np.float64)
        self.n = 0
        self.over = 0
        self.max = 0.0

    def add(self, ms: float) -> None:
        if self.n < len(self.ms):
            self.ms[self.n] = ms
        self.n += 1
        self.over += ms > STALL_MS
        self.max = max(self.max, ms)

    def summary(self, prefix: str = "") -> dict:
        ms = self.ms[:min(self.n, len(self.ms))]
        if not len(ms):
            return {}
        return {f"{prefix}fps_median": float(1000.0 / np.median(ms)),
                f"{prefix}fps_p5": float(1000.0 / np.percentile(ms, 95)),
                f"{prefix}frame_ms_median": float(np.median(ms)), f"{prefix}frame_ms_max": float(self.max),
                f"{prefix}frames_over_50ms": int(self.over), f"{prefix}frames_counted": int(self.n)}


class AppDriver:
    """Runs an Explorer headless one frame at a time, timing each as presented (after glFinish)."""

    def __init__(self, explorer, renderer, times: FrameTimes, dt: float = 1.0 / 60.0):
        self.ex, self.renderer, self.times, self.dt = explorer, renderer, times, dt
        self.frame_index = 0

    def sweep_pointer(self) -> None:
        """A pointer moving over the view (a Lissajous figure): picking and hover work every frame."""
        w, h = self.renderer.size
        t = self.frame_index / 60.0
        self.ex.pointer_moved(w * (0.5 + 0.35 * math.sin(1.3 * t)), h * (0.5 + 0.3 * math.sin(2.1 * t + 0.5)))

    def step(self, before=None) -> float:
        start = time.perf_counter()
        if before is not None:
            before()
        self.sweep_pointer()
        self.ex.frame(self.dt)
        self.renderer.finish()
        self.ex.presented()
        ms = (time.perf_counter() - start) * 1000.0
        self.times.add(ms)
        self.frame_index += 1
        return ms


def run_app(args, renderer, engine_report: dict) -> dict:
    """The app run (and the interaction script) in ``renderer``; returns the keys of the JSON report."""
    from llmviz.scenes.explorer import Explorer

    renderer.reset_data()  # the bare engine's scene is closed; the Explorer's takes the data atlas
    try:
        ex = Explorer(renderer, args.scene, autoplay=True, adaptive_quality=args.adaptive)
    except Exception as err:  # the scene was built once already; a failure here is the app's, named
        raise CliError(f"llmviz: {args.scene}: the explorer could not open it: {err}") from None
    if not ex.wait_for_values():
        ex.close()
        raise CliError(f"llmviz: {args.scene}: the model's values did not arrive")
    ex.warm_up.join(120)  # the start-up import of torch is not what a user meets after the first seconds
    try:  # a Ctrl+C mid-run still closes the explorer's workers
        if getattr(args, "compare", None):
            _open_compare(ex, renderer, [args.scene] + [n.strip() for n in args.compare.split(",")])
        return _measure(args, ex, renderer, engine_report)
    finally:
        ex.close()


def _open_compare(ex, renderer, names: list[str]) -> None:
    """The compare set built as the window builds it (frames drawn meanwhile), its live values arrived."""
    problem = ex.compare.open(names)
    if problem:
        raise CliError(f"llmviz bench: --compare: {problem}")
    deadline = time.perf_counter() + SWITCH_TIMEOUT_S
    while ex.compare.build is not None and time.perf_counter() < deadline:
        ex.frame(1.0 / 60.0)
        renderer.finish()
        ex.presented()
    if not ex.compare.on:
        raise CliError(f"llmviz bench: --compare: {ex.notice or 'the compare set was not built in time'}")
    for view in ex.views:
        view.session.scene.wait_for_values()


def _measure(args, ex, renderer, engine_report: dict) -> dict:
    from llmviz.scenes.cli.common import Progress

    session = ex.session
    ex.overlay.visible = False  # what a user has on screen by default; F3 is an extra window
    path = session.scene.path
    times = FrameTimes(args.frames)
    driver = AppDriver(ex, renderer, times)
    progress = Progress(f"bench --app {args.scene}")
    loop_start = time.perf_counter()
    for i in range(args.frames):
        driver.step(lambda: path.pose(i / max(1, args.frames), ex.session.engine.camera))
        progress(i + 1, args.frames)
    loop_s = time.perf_counter() - loop_start
    report = {"app": times.summary(), "wall_fps": args.frames / loop_s, "profiler_fps": ex.profiler.fps,
              "systems_ms": ex.profiler.system_medians(), "quality": ex.quality.level.name,
              "adaptive_quality": bool(args.adaptive)}
    app = report.pop("app")
    report.update(app)
    if args.ui_cost:  # the same path, the same picking and panels' work, nothing drawn by ImGui
        ui, ex.ui = ex.ui, None
        no_ui = FrameTimes(args.frames)
        driver.times = no_ui
        for i in range(args.frames):
            driver.step(lambda: path.pose(i / max(1, args.frames), ex.session.engine.camera))
        ex.ui = ui
        report.update(no_ui.summary("without_ui_"))
    if session.chapters_mode is not None and session.chapters_mode.chapter_list:
        chapter_times = FrameTimes(args.frames // 3)
        driver.times = chapter_times
        ex.toggle_chapters()
        ex.do("play_pause")
        for _ in range(max(1, args.frames // 3)):
            driver.step()
        ex.toggle_chapters()
        report.update(chapter_times.summary("chapters_"))
    if args.interact:
        report["interact"] = run_interaction(ex, renderer, driver)
    report["profiler_vs_wall"] = report["profiler_fps"] / max(1e-9, report["wall_fps"])
    engine_fps = engine_report.get("fps_median")
    if engine_fps:
        report["ratio_app_vs_engine"] = report["wall_fps"] / engine_fps
    return report


def run_interaction(ex, renderer, driver) -> dict:
    """What users do, one action a frame, every frame timed; returns per-step and total figures."""
    steps: dict[str, FrameTimes] = {}

    def run(name: str, frames: int, before=None) -> None:
        times = steps.setdefault(name, FrameTimes(frames + 600))
        driver.times = times
        for k in range(frames):
            driver.step((lambda k=k: before(k)) if before is not None else None)

    session = ex.session
    if session.focus_mode is not None:
        ex.do("search")
        run("search", 2)
        run("search", len(SEARCH_WORD), lambda k: ex.type_text(SEARCH_WORD[k]))
        run("search", 30)  # the results arrive from the worker and are drawn
        steps["search"].result_count = len(session.focus_mode.results.get(session.focus_mode.query) or [])
        session.focus_mode.close_search()
    moe = session.moe_mode
    if moe is not None:
        if moe.routing is None:
            run("moe top-k", 1)
            moe.wait()
            run("moe top-k", 30)
        stats = getattr(moe.routing, "stats", None)
        if stats is not None:
            top = int(getattr(stats, "n_experts", 0) or 8)
            ks = list(range(1, min(top, 8) + 1)) + list(range(min(top, 8) - 1, 0, -1))
            factor = getattr(stats, "capacity_factor", None)
            run("moe top-k", len(ks), lambda k: moe.routing.set_routing(ks[k], factor))
            run("moe top-k", 30)
            base = getattr(moe.routing, "text", None) or getattr(stats, "text", "") or "hello"
            edits = [base + " x = 3 + 4"[: k + 1] for k in range(10)]
            if hasattr(moe.routing, "set_text"):
                run("moe text", len(edits), lambda k: moe.routing.set_text(edits[k]))
                run("moe text", 30)
    if session.chapters_mode is not None and session.chapters_mode.chapter_list:
        ex.toggle_chapters()
        ex.do("play_pause")
        run("chapter", 90)
        ex.toggle_chapters()
    here = ex.session.name
    ex.do("next_model")
    away = ex.loader.pending
    switch = steps.setdefault("switch", FrameTimes(4000))
    seconds = []
    for target in (away, here):
        driver.times = switch
        deadline = time.perf_counter() + SWITCH_TIMEOUT_S
        while not (ex.session.name == target and not ex.session.prepared.outline) and time.perf_counter() < deadline:
            driver.step()  # the outline, then the whole scene: every frame of the wait counts
        run("switch", 10)
        seconds.append(ex.switch_seconds)
        if target == away:
            ex.request_scene(here)  # back where it started ([ would go to the menu's neighbour)
    out = {name: t.summary() for name, t in steps.items()}
    if "search" in steps:
        out["search"]["results"] = getattr(steps["search"], "result_count", 0)
    out["switch"].update(to=away, back_to=ex.session.name, seconds=seconds)
    total = sum(t.over for t in steps.values())
    return {"steps": out, "frames_over_50ms": int(total), "frame_ms_max": float(max(t.max for t in steps.values())),
            "frames": int(sum(t.n for t in steps.values()))}
