"""The profiling overlay (F3): what each frame costs, drawn with Dear ImGui over the scene.

It only reads the Profiler; every figure it shows is labelled with its unit.
"""
from __future__ import annotations

import numpy as np
from imgui_bundle import imgui

from .profiler import Profiler


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n:.1f} GiB"


class ProfilerOverlay:
    def __init__(self):
        self.visible = True

    def draw(self, profiler: Profiler, position=(10.0, 10.0), *, quality: str = "", gpu_note: str = "") -> None:
        if not self.visible:
            return
        last = profiler.last
        imgui.set_next_window_pos(imgui.ImVec2(*position), imgui.Cond_.first_use_ever)
        imgui.set_next_window_bg_alpha(0.82)
        flags = imgui.WindowFlags_.always_auto_resize | imgui.WindowFlags_.no_focus_on_appearing
        expanded, _ = imgui.begin("Profiler (F3)", None, flags)
        if expanded:
            # Wall clock between presented frames: what reaches the screen, UI and swap included.
            frame_ms = np.asarray(profiler.wall_ms or profiler.frame_ms, np.float32)
            median = float(np.median(frame_ms)) if len(frame_ms) else 0.0
            imgui.text(f"FPS {profiler.fps:6.1f} (presented)    frame {median:6.2f} ms (median of {len(frame_ms)})")
            imgui.text(f"CPU work per frame {profiler.cpu_frame_ms:6.2f} ms (median)"
                       + (f"    quality: {quality}" if quality else ""))
            if len(frame_ms):
                top = max(33.4, float(np.percentile(frame_ms, 99)) * 1.1)  # one slow start-up frame must not flatten the graph
                imgui.plot_lines("##frame_ms", frame_ms, overlay_text=f"frame ms, 0-{top:.0f}", scale_min=0.0,
                                 scale_max=top, graph_size=imgui.ImVec2(320, 60))
            gpu = last.get("gpu_ms")
            imgui.text(f"GPU {gpu:.2f} ms (timer query)" if gpu is not None else f"GPU ms {gpu_note or 'n/a'}")
            imgui.separator()
            imgui.text("CPU ms per system (median)")
            if imgui.begin_table("systems", 2, imgui.TableFlags_.sizing_fixed_fit):
                for name, ms in profiler.system_medians().items():
                    imgui.table_next_row()
                    imgui.table_next_column()
                    imgui.text(name)
                    imgui.table_next_column()
                    imgui.text(f"{ms:7.3f}")
                imgui.end_table()
            imgui.separator()
            imgui.text(f"draw calls {last.get('draw_calls', 0)}    triangles {last.get('triangles', 0):,}")
            imgui.text(f"entities {last.get('entities', 0):,}: visible {last.get('visible', 0):,}, "
                       f"culled {last.get('culled', 0):,}")
            imgui.text(f"  frustum-culled {last.get('frustum_culled', 0):,}, under closed groups "
                       f"{last.get('hlod_skipped', 0):,}, too small {last.get('too_small', 0):,}, "
                       f"group proxies {last.get('proxies', 0):,}")
            per_lod = last.get("instances_per_lod", [])
            imgui.text("instances per LOD: " + ", ".join(f"L{i} {n:,}" for i, n in enumerate(per_lod) if n or i < 3))
            imgui.text(f"process memory {_bytes(last.get('memory_bytes', 0))}    "
                       f"GPU buffers {_bytes(last.get('buffer_bytes', 0))}")
        imgui.end()
