"""The profiling overlay (F3): what each frame costs, drawn with Dear ImGui over the scene.

It only reads the Profiler; every figure it shows is labelled with its unit.
"""
from __future__ import annotations

import numpy as np
from imgui_bundle import imgui

from ..common.i18n import tr
from .profiler import Profiler


GRAPH_WIDTH_PX = 320.0
TEXT_WIDTH_PX = 340.0  # where the panel's lines wrap
MIN_PANEL_HEIGHT_PX = 80.0  # the title and the FPS line, however short the window


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return tr("profiler.bytes", n=n, unit=unit) if unit == "B" else tr("profiler.kib", n=n, unit=unit)
        n /= 1024.0
    return tr("profiler.kib", n=n, unit="GiB")


class ProfilerOverlay:
    def __init__(self):
        self.visible = True

    def draw(self, profiler: Profiler, position=(10.0, 10.0), *, quality: str = "", gpu_note: str = "",
             max_height: float | None = None) -> float:
        """The panel at ``position`` (its first placement), at most ``max_height`` pixels tall (it scrolls inside):
        in a short window it stops above the key-hint bar instead of running under it. Its lines wrap at
        `TEXT_WIDTH_PX`, so a long reason or count never widens it over the scene's panels. Returns its width in
        pixels (0 when hidden), for the panels beside it."""
        if not self.visible:
            return 0.0
        last = profiler.last
        imgui.set_next_window_pos(imgui.ImVec2(*position), imgui.Cond_.first_use_ever)
        if max_height is not None:
            tallest = max(float(max_height), MIN_PANEL_HEIGHT_PX)
            imgui.set_next_window_size_constraints(imgui.ImVec2(0.0, 0.0), imgui.ImVec2(1.0e6, tallest))
        imgui.set_next_window_bg_alpha(0.82)
        flags = imgui.WindowFlags_.always_auto_resize | imgui.WindowFlags_.no_focus_on_appearing
        expanded, _ = imgui.begin(tr("profiler.title") + "###profiler", None, flags)
        width = imgui.get_window_width()
        if expanded:
            imgui.push_text_wrap_pos(imgui.get_cursor_pos_x() + TEXT_WIDTH_PX)
            # Wall clock between presented frames: what reaches the screen, UI and swap included.
            frame_ms = np.asarray(profiler.wall_ms or profiler.frame_ms, np.float32)
            median = float(np.median(frame_ms)) if len(frame_ms) else 0.0
            imgui.text_wrapped(tr("profiler.fps", fps=profiler.fps, ms=median, n=len(frame_ms)))
            imgui.text_wrapped(tr("profiler.cpu", ms=profiler.cpu_frame_ms) + (tr("profiler.quality", quality=quality) if quality else ""))
            if len(frame_ms):
                top = max(33.4, float(np.percentile(frame_ms, 99)) * 1.1)  # one slow start-up frame must not flatten the graph
                imgui.plot_lines("##frame_ms", frame_ms, overlay_text=tr("profiler.graph", top=top), scale_min=0.0,
                                 scale_max=top, graph_size=imgui.ImVec2(GRAPH_WIDTH_PX, 60))
            gpu = last.get("gpu_ms")
            imgui.text_wrapped(tr("profiler.gpu", ms=gpu) if gpu is not None else tr("profiler.gpu_none", note=gpu_note or "n/a"))
            imgui.separator()
            imgui.text_wrapped(tr("profiler.systems"))
            if imgui.begin_table("systems", 2, imgui.TableFlags_.sizing_fixed_fit):
                for name, ms in profiler.system_medians().items():
                    imgui.table_next_row()
                    imgui.table_next_column()
                    imgui.text(name)
                    imgui.table_next_column()
                    imgui.text_wrapped(tr("profiler.system_ms", ms=ms))
                imgui.end_table()
            imgui.separator()
            counts = {name: int(last.get(name, 0)) for name in ("draw_calls", "triangles", "entities", "visible", "culled",
                                                                  "frustum_culled", "hlod_skipped", "too_small", "proxies")}
            for key in ("profiler.draws", "profiler.entities", "profiler.culling"):
                imgui.text_wrapped(tr(key, **counts))
            per_lod = last.get("instances_per_lod", [])
            imgui.text_wrapped(tr("profiler.per_lod", levels=", ".join(tr("profiler.lod", i=i, n=n)
                                                               for i, n in enumerate(per_lod) if n or i < 3)))
            imgui.text_wrapped(tr("profiler.memory", process=_bytes(last.get("memory_bytes", 0)),
                          buffers=_bytes(last.get("buffer_bytes", 0))))
            imgui.pop_text_wrap_pos()
        imgui.end()
        return width
