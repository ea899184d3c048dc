"""The explorer window: a thin shell (engine/window.py: pyglet) around the Explorer controller.

Everything a user does is the Explorer's (scenes/explorer/): this module only turns window
events into its calls — imgui gets every event, the scene gets the ones imgui does not want
(typing in a field must not fly the camera; releases always pass, so nothing stays held) — asks
it for a frame, and tells it when the frame was presented (after the buffer swap), so the
profiler's FPS is the window's own. ``--frames N --stats-json F`` runs N frames and writes the
wall-clock figures, so the real window can be benchmarked under Xvfb.
"""
from __future__ import annotations

import json
import sys
import time

from llmviz.engine.input import pyglet_key_name
from llmviz.engine.window import WindowShell, run_shell
from llmviz.scenes.explorer.controller import DEFAULT_SCENE, Explorer


class ExplorerWindow(WindowShell):
    options: dict = {}  # set by run_window before the window is created
    frames_drawn = 0    # how many frames this process has drawn (a failure before the first is the window's)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)  # no exit key: Esc steps out (focus, search, chapters); Ctrl+Q, the menu or the close button quit
        self.explorer = Explorer(self.renderer, self.options.get("scene") or DEFAULT_SCENE,
                                 window_ui_factory=self.ui_overlay, ui_size=self.size,
                                 adaptive_quality=self.options.get("adaptive", True))
        hover = self.options.get("hover")
        self.fixed_pointer = self._to_buffer(*hover) if hover else None  # a pointer held still (screenshots, tests)
        if self.fixed_pointer:
            self.explorer.pointer_moved(*self.fixed_pointer)
        self.scene_buttons: set[str] = set()  # mouse buttons whose press went to the scene, not the UI
        self.frames_left = self.options.get("frames")
        self._last_swap = None
        try:
            from llmviz.engine.input import attach_pyglet_controllers

            self.controllers = attach_pyglet_controllers(self.explorer.input)
        except Exception:  # no joystick support in this pyglet build or platform: keyboard and mouse still work
            self.controllers = None
        if self.options.get("view"):
            self.explorer.start_at_preset(self.options["view"])
        self.explorer.share.clipboard = self.set_clipboard  # for "Copy link"
        if self.options.get("link_view") is not None:  # `llmviz open LINK`
            from llmviz.scenes.explorer.share import apply_view

            self.explorer.notice = apply_view(self.explorer, self.options["link_view"]) or self.explorer.notice
        from llmviz.engine.x_clipboard import window_clipboard

        # X11: the window toolkit never takes a paste request from the queue; the Share menu answers them each frame.
        self.explorer.share.use_window_clipboard(window_clipboard(self.wnd._window))

    # ------------------------------------------------------------------ frames
    def on_render(self, time_s: float, frame_time: float) -> None:
        ex = self.explorer
        if self._last_swap is not None:
            ex.presented()  # the window swapped the previous frame's buffers since the last call
        if self.options.get("screenshot") and self.frames_left == 2:
            # A screenshot is a check of what the scene shows: let a live model's first values land.
            ex.wait_for_values()
            ex.profiler.pause()
        if self.fixed_pointer:
            ex.ui.io.mouse_pos = self.fixed_pointer  # the pointer held still, whatever the real mouse does
        self.follow_window()
        ex.frame(frame_time)
        ExplorerWindow.frames_drawn += 1
        self._last_swap = time.perf_counter()
        if ex.quit_requested:
            self.close_window()
        if self.frames_left is not None:
            self.frames_left -= 1
            if self.frames_left <= 0:
                if self.options.get("screenshot"):
                    self._save_screenshot(self.options["screenshot"])
                if self.options.get("stats_json"):
                    self._write_stats(self.options["stats_json"])
                self.close_window()

    def on_close(self) -> None:
        if self.options.get("frames") is None:  # a user's session, not a scripted run: keep its size
            from llmviz.scenes.window_size import remember_size

            remember_size(self.size)
        self.explorer.close()  # stop the live models' worker threads

    def _write_stats(self, path: str) -> None:
        from llmviz.scenes.cli.bench_cmd import machine

        stats = self.explorer.stats()
        stats.update(scene=self.explorer.session.name, size=f"{self.buffer_size[0]}x{self.buffer_size[1]}",
                     gpu=self.renderer.device_name, backend=self.renderer.backend_name, machine=machine(),
                     measured="the real window: wall-clock time between buffer swaps")
        from llmviz.common.atomic import write_atomic

        write_atomic(path, json.dumps(stats, indent=1) + "\n")

    def _save_screenshot(self, path: str) -> None:
        from PIL import Image

        from llmviz.common.atomic import atomic_path

        with atomic_path(path) as tmp:
            Image.fromarray(self.screen_rgb(), "RGB").save(tmp, format="PNG")

    def on_resize(self, width: int, height: int) -> None:
        self.explorer.ui.renderer.resize(width, height)
        self.follow_window()

    # ------------------------------------------------------------------ events
    def on_key_event(self, key, action, modifiers) -> None:
        ui = self.explorer.ui.renderer
        ui.key_event(key, action, modifiers)
        name = pyglet_key_name(key)
        if self.is_press(action):
            held = [m for m in ("SHIFT", "CTRL", "ALT") if getattr(modifiers, m.lower(), False)]
            self.explorer.key_pressed(name, held)
        elif self.is_release(action):
            self.explorer.key_up(name)

    def on_files_dropped_event(self, x, y, paths) -> None:
        self.explorer.files_dropped([str(p) for p in paths])

    def on_mouse_position_event(self, x, y, dx, dy) -> None:
        self.explorer.ui.renderer.mouse_position_event(x, y, dx, dy)
        if not self.fixed_pointer:
            self.explorer.pointer_moved(*self._to_buffer(x, y))
        self.explorer.input.mouse_move(dx, dy)

    def on_mouse_drag_event(self, x, y, dx, dy) -> None:
        self.explorer.ui.renderer.mouse_drag_event(x, y, dx, dy)
        if not self.fixed_pointer:
            self.explorer.pointer_moved(*self._to_buffer(x, y))
        for name, down in self.buttons_down().items():
            if down and name in self.scene_buttons:
                self.explorer.input.mouse_drag(name, dx, dy)

    def on_mouse_press_event(self, x, y, button) -> None:
        self.explorer.ui.renderer.mouse_press_event(x, y, button)
        name = self.button_name(button)
        if name and not self.explorer.ui_wants_mouse:
            self.scene_buttons.add(name)
            self.explorer.input.mouse_button(name, True)

    def on_mouse_release_event(self, x, y, button) -> None:
        self.explorer.ui.renderer.mouse_release_event(x, y, button)
        name = self.button_name(button)
        if name:
            self.scene_buttons.discard(name)
            self.explorer.input.mouse_button(name, False)

    def on_mouse_scroll_event(self, x_offset, y_offset) -> None:
        self.explorer.ui.renderer.mouse_scroll_event(x_offset, y_offset)
        if not self.explorer.ui_wants_mouse:
            self.explorer.input.mouse_scroll(y_offset)

    def on_unicode_char_entered(self, char) -> None:
        self.explorer.ui.renderer.unicode_char_entered(char)

    def _to_buffer(self, x, y):
        """Window coordinates to framebuffer pixels (they differ on high-DPI screens)."""
        ratio = self.pixel_ratio
        return x * ratio, y * ratio


def run_window(scene: str | None, size: str | None, frames: int | None = None, screenshot: str | None = None, *,
               view: str | None = None, hover: tuple[float, float] | None = None,
               stats_json: str | None = None, adaptive: bool = True, link_view=None, backend: str = "gl") -> int:
    """Open the explorer on ``scene``; ``view`` names a camera preset to start at, ``hover`` holds the
    pointer still at window pixel (x, y) (screenshots of tooltips and lit cells); with ``frames``,
    ``stats_json`` receives the window's wall-clock figures; ``link_view`` (a link.LinkView) is the view to start at."""
    from llmviz.scenes.cli.common import parse_size
    from llmviz.scenes.registry import SceneError, parse_scene

    from llmviz.scenes.cli.backend_arg import pick_backend

    # wgpu draws into a surface on the window where an adapter can make one; auto says why where it falls back.
    chosen = pick_backend(backend, ("window",))
    ExplorerWindow.backend = backend if chosen == "wgpu" else "gl"
    ExplorerWindow.say = staticmethod(lambda line: print(f"llmviz: --backend {line}", file=sys.stderr))
    scene = scene or DEFAULT_SCENE
    try:
        parse_scene(scene)
    except SceneError as err:
        print(f"llmviz: {err}", file=sys.stderr)
        return 2
    from llmviz.scenes.window_size import choose_size

    ExplorerWindow.window_size = choose_size(parse_size(size) if size else None)
    ExplorerWindow.options = {"scene": scene, "frames": frames, "screenshot": screenshot, "view": view,
                              "hover": hover, "stats_json": stats_json, "adaptive": adaptive, "link_view": link_view}
    from llmviz.engine.render.factory import BackendUnavailable

    try:
        run_shell(ExplorerWindow)
    except BackendUnavailable as err:  # --backend wgpu and no surface on this window: that one line
        print(f"llmviz: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        if ExplorerWindow.frames_drawn == 0:  # no GL 3.3 context, display refused, …: one line, not a traceback
            print(f"llmviz: cannot open the explorer window: {err}", file=sys.stderr)
        else:  # a fault of llmviz's own, after the window was up: the line says so, the report keeps the detail
            print(f"llmviz: the explorer stopped on an internal error: {err} (report: {_crash_report()})",
                  file=sys.stderr)
        return 1
    return 0


def _crash_report() -> str:
    """Write the current exception's traceback beside the user's settings; its path, or why it was not written."""
    import traceback

    from llmviz.common.atomic import write_atomic
    from llmviz.models.registry import config_dir

    path = config_dir() / "last-crash.txt"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, traceback.format_exc().encode())
    except OSError as err:
        return f"not written: {err.strerror or err}"
    return str(path)
