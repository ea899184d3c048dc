"""Benchmark: what the MoE window costs the frame thread, headless (Dear ImGui + a standalone EGL context).

    .venv/bin/python benchmarks/moe_panels.py [MODEL ...]     (default: deepseek-v3; prints JSON)

Per tab of the MoE window: `panel_ms`, the median CPU ms of building the window (ImGui new_frame
→ MoePanel.draw → render) on a steady frame; `panel_after_restat_ms`, the same on the frame after
new statistics arrived (what is derived per statistics object is rebuilt then); `imgui_render_ms`,
the median of drawing ImGui's draw data with moderngl-window's renderer plus ctx.finish().
Then, for the routing controls: `set_routing_call_ms` / `set_text_call_ms`, how long the call
blocks the caller (the frame), and `routing_result_ms`, how long until the new statistics land.
Figures, not assertions: the test suite never times anything.
"""
from __future__ import annotations

import json
import sys
import time

import moderngl
import numpy as np
from imgui_bundle import imgui
from moderngl_window.integrations.imgui_bundle import ModernGLRenderer

from llmviz.models.registry import load_registry
from llmviz.scenes import moe_live, moe_panels

SIZE = (1280, 800)
TEXT = "def f(x): return x+1"


def _median(values) -> float:
    return round(float(np.median(values)), 3)


def panel_costs(routing, frames: int = 60) -> dict:
    ctx = moderngl.create_standalone_context(backend="egl", require=330)
    fbo = ctx.simple_framebuffer(SIZE)
    fbo.use()
    imgui_ctx = imgui.create_context()
    io = imgui.get_io()
    io.set_ini_filename("")
    io.display_size = imgui.ImVec2(*SIZE)
    gl = ModernGLRenderer(ctx=ctx, display_size=SIZE)
    panel = moe_panels.MoePanel("moe", live=False)
    # statistics objects to swap in, as recomputations would deliver them
    fresh = [moe_live.restat(routing.stats, k, routing.stats.capacity_factor) for k in (1, 2, 3, 4) * 3]

    def frame(stats=None):
        if stats is not None:
            routing._set_stats(stats)
        io.delta_time = 1 / 60
        start = time.perf_counter()
        imgui.new_frame()
        panel.draw(10, 10, SIZE[1] - 20, routing, 3, False, "")
        imgui.render()
        built = time.perf_counter()
        gl.render(imgui.get_draw_data())
        ctx.finish()
        return (built - start) * 1e3, (time.perf_counter() - built) * 1e3

    out = {}
    try:
        for tab in moe_panels.MOE_TABS:
            panel.select_tab = tab
            for _ in range(5):   # warm up; the tab is brought forward
                frame()
            steady = [frame() for _ in range(frames)]
            cold = [frame(stats)[0] for stats in fresh]
            out[tab] = {"panel_ms": _median([b for b, _ in steady]), "panel_after_restat_ms": _median(cold),
                        "imgui_render_ms": _median([r for _, r in steady])}
    finally:
        gl.shutdown()
        imgui.destroy_context(imgui_ctx)
        ctx.release()
    return out


def control_costs(routing, repeats: int = 10) -> dict:
    calls, results, texts = [], [], []
    for i in range(repeats):
        start = time.perf_counter()
        routing.set_routing(1 + i % 4, None)
        calls.append((time.perf_counter() - start) * 1e3)
        routing.wait_routing(60.0)
        results.append((time.perf_counter() - start) * 1e3)
        start = time.perf_counter()
        routing.set_text(TEXT[: 8 + i])
        texts.append((time.perf_counter() - start) * 1e3)
        routing.wait_routing(60.0)
    return {"set_routing_call_ms": _median(calls), "routing_result_ms": _median(results),
            "set_text_call_ms": _median(texts)}


def main(models: list[str]) -> None:
    registry = load_registry(include_user=False)
    report = {}
    for model in models:
        routing = moe_live.SimulatedRouting(registry.get(model), TEXT, capacity_factor=1.0)
        try:
            report[model] = {"tabs": panel_costs(routing), **control_costs(routing)}
        finally:
            routing.close()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:] or ["deepseek-v3"])
