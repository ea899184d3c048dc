"""The explorer window: a moderngl-window WindowConfig (pyglet) running the engine's frame, with input, camera and overlay.

The window adds three systems to the engine's schedule — input (events → actions), camera
(fly / orbit / transitions) and overlay (hover picking, the F3 profiler, the status bar) — so
the whole frame, window parts included, is timed and visible in one order.
"""
from __future__ import annotations

import sys

import moderngl_window as mglw
import numpy as np
from imgui_bundle import imgui
from moderngl_window.integrations.imgui_bundle import ModernglWindowRenderer

from llmviz.engine.camera_control import CameraRig
from llmviz.engine.ecs.components import FLAG_HIGHLIGHTED
from llmviz.engine.input import InputState, load_bindings, moderngl_window_mouse_button, pyglet_key_name
from llmviz.engine.overlay import ProfilerOverlay
from llmviz.engine.picking import pick
from llmviz.engine.render.gl import GLRenderer
from llmviz.engine.runtime import Engine
from llmviz.engine.systems.transform import world_box

DEFAULT_SCENE = "stress:100000"
HINTS = ("WASD move · Q/E down/up · drag look · Shift faster · Tab fly/orbit · wheel zoom · click select · "
         "F frame · Esc back · F3 profiler · Ctrl+1..9 save view · 1..9 go")


class ExplorerWindow(mglw.WindowConfig):
    gl_version = (3, 3)
    title = "llmviz"
    window_size = (1280, 720)
    resizable = True
    vsync = True
    aspect_ratio = None
    options: dict = {}  # set by run_window before the window is created

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        from llmviz.scenes.registry import build_scene

        imgui.create_context()
        self.imgui = ModernglWindowRenderer(self.wnd)
        size = self.wnd.buffer_size
        self.renderer = GLRenderer(self.ctx, self.wnd.fbo, size)
        self.scene = build_scene(self.options["scene"], self.renderer)
        camera = self.scene.start_camera(size)
        self.engine = Engine(self.scene.world, camera, self.renderer)
        center, half = world_box(self.scene.world, self.scene.world.query("world_bounds"))
        lo, hi = (center - half).min(axis=0), (center + half).max(axis=0)
        self.rig = CameraRig(camera, scene_center=(lo + hi) / 2, scene_radius=float(np.linalg.norm(hi - lo)) / 2)
        self.rig.set_mode(self.scene.camera_mode)
        self.input = InputState(load_bindings())
        self.overlay = ProfilerOverlay()
        self.hovered = None
        self.selected = None
        self.mouse = None  # no hover picking until the pointer has been over the window
        self.frames_left = self.options.get("frames")
        try:
            from llmviz.engine.input import attach_pyglet_controllers

            self.controllers = attach_pyglet_controllers(self.input)
        except Exception:  # no joystick support in this pyglet build or platform: keyboard and mouse still work
            self.controllers = None
        schedule = self.engine.schedule
        schedule.add("input", "input", self._input)
        schedule.add("camera", "camera", lambda frame: self.rig.update(frame.dt, frame.actions))
        schedule.add("overlay", "picking", self._picking)
        schedule.add("overlay", "imgui", self._overlay)

    # ------------------------------------------------------------------ systems
    def _input(self, frame) -> None:
        io = imgui.get_io()
        actions = self.input.frame(frame.dt)
        frame.actions = actions
        if io.want_capture_mouse or io.want_capture_keyboard:
            # The overlay has the pointer or keyboard: the scene must not also react to it.
            self.input.release_all()
        if actions.was_pressed("toggle_profiler"):
            self.overlay.visible = not self.overlay.visible
        if actions.was_pressed("back") and self.selected is not None:
            self._set_flag(self.selected, False)
            self.selected = None
        if actions.was_pressed("frame_selection") and self.selected is not None:
            self._focus(self.selected)

    def _picking(self, frame) -> None:
        if self.mouse is None or imgui.get_io().want_capture_mouse:
            hit = None
        else:
            origin, direction = frame.camera.ray(*self.mouse)
            hit = pick(self.engine.world, frame.visibility.drawn, origin, direction)
        hovered = None if hit is None else hit.slot
        if hovered != (self.hovered.slot if self.hovered else None):
            if self.hovered is not None and self.hovered.slot != self.selected:
                self._set_flag(self.hovered.slot, False)
            if hovered is not None:
                self._set_flag(hovered, True)
        self.hovered = hit
        if frame.actions is not None and frame.actions.was_pressed("select") and hit is not None:
            if self.selected is not None and self.selected != hit.slot:
                self._set_flag(self.selected, False)
            self.selected = hit.slot
            self._focus(hit.slot)

    def _overlay(self, frame) -> None:
        imgui.new_frame()
        self.overlay.draw(self.engine.profiler)
        self._status_bar()
        if self.hovered is not None:
            self._tooltip(self.hovered)
        imgui.render()
        self.imgui.render(imgui.get_draw_data())

    # ------------------------------------------------------------------ helpers
    def _set_flag(self, slot: int, on: bool) -> None:
        flags = self.engine.world["renderable"]["flags"]
        flags[slot] = (flags[slot] | FLAG_HIGHLIGHTED) if on else (flags[slot] & ~FLAG_HIGHLIGHTED)

    def _focus(self, slot: int) -> None:
        center, half = world_box(self.engine.world, np.array([slot]))
        self.rig.focus(center[0], half[0])

    def _tooltip(self, hit) -> None:
        world = self.engine.world
        text = f"entity {hit.entity} (slot {hit.slot})"
        if world["label"].has[hit.slot]:
            text = world.labels[world["label"]["text_index"][hit.slot]] + "\n" + text
        if hit.cell is not None:
            text += f"\ncell row {hit.cell[0]}, column {hit.cell[1]}"
        text += f"\ndistance {hit.distance:.1f}"
        imgui.set_tooltip(text)

    def _status_bar(self) -> None:
        w, h = self.wnd.size
        imgui.set_next_window_pos(imgui.ImVec2(0, h - 28))
        imgui.set_next_window_size(imgui.ImVec2(w, 28))
        flags = (imgui.WindowFlags_.no_decoration | imgui.WindowFlags_.no_inputs | imgui.WindowFlags_.no_saved_settings
                 | imgui.WindowFlags_.no_focus_on_appearing | imgui.WindowFlags_.no_nav)
        imgui.set_next_window_bg_alpha(0.6)
        imgui.begin("status", None, flags)
        imgui.text(f"{self.scene.caption}  ·  {self.rig.mode} mode  ·  {HINTS}")
        imgui.end()

    # ------------------------------------------------------------------ window callbacks
    def on_render(self, time: float, frame_time: float) -> None:
        self.renderer.set_target(self.wnd.fbo, self.wnd.buffer_size)
        self.engine.frame(min(frame_time, 0.1))
        if self.frames_left is not None:
            self.frames_left -= 1
            if self.frames_left <= 0:
                if self.options.get("screenshot"):
                    self._save_screenshot(self.options["screenshot"])
                self.wnd.close()

    def _save_screenshot(self, path: str) -> None:
        from PIL import Image

        w, h = self.wnd.buffer_size
        data = self.wnd.fbo.read(components=3, alignment=1)
        Image.frombytes("RGB", (w, h), data).transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(path)

    def on_resize(self, width: int, height: int) -> None:
        self.imgui.resize(width, height)
        self.renderer.set_target(self.wnd.fbo, self.wnd.buffer_size)

    def on_key_event(self, key, action, modifiers) -> None:
        self.imgui.key_event(key, action, modifiers)
        name = pyglet_key_name(key)
        if action == self.wnd.keys.ACTION_PRESS:
            self.input.key_down(name)
        elif action == self.wnd.keys.ACTION_RELEASE:
            self.input.key_up(name)

    def on_mouse_position_event(self, x, y, dx, dy) -> None:
        self.imgui.mouse_position_event(x, y, dx, dy)
        self.mouse = self._to_buffer(x, y)
        self.input.mouse_move(dx, dy)

    def on_mouse_drag_event(self, x, y, dx, dy) -> None:
        self.imgui.mouse_drag_event(x, y, dx, dy)
        self.mouse = self._to_buffer(x, y)
        states = self.wnd.mouse_states
        for name, down in (("left", states.left), ("right", states.right), ("middle", states.middle)):
            if down:
                self.input.mouse_drag(name, dx, dy)

    def on_mouse_press_event(self, x, y, button) -> None:
        self.imgui.mouse_press_event(x, y, button)
        name = moderngl_window_mouse_button(button)
        if name:
            self.input.mouse_button(name, True)

    def on_mouse_release_event(self, x, y, button) -> None:
        self.imgui.mouse_release_event(x, y, button)
        name = moderngl_window_mouse_button(button)
        if name:
            self.input.mouse_button(name, False)

    def on_mouse_scroll_event(self, x_offset, y_offset) -> None:
        self.imgui.mouse_scroll_event(x_offset, y_offset)
        self.input.mouse_scroll(y_offset)

    def on_unicode_char_entered(self, char) -> None:
        self.imgui.unicode_char_entered(char)

    def _to_buffer(self, x, y):
        """Window coordinates to framebuffer pixels (they differ on high-DPI screens)."""
        ratio = self.wnd.pixel_ratio
        return x * ratio, y * ratio


def run_window(scene: str | None, size: str, frames: int | None = None, screenshot: str | None = None) -> int:
    from llmviz.scenes.cli.common import parse_size
    from llmviz.scenes.registry import SceneError, parse_scene

    scene = scene or DEFAULT_SCENE
    try:
        parse_scene(scene)
    except SceneError as err:
        print(f"llmviz: {err}", file=sys.stderr)
        return 2
    ExplorerWindow.window_size = parse_size(size)
    ExplorerWindow.options = {"scene": scene, "frames": frames, "screenshot": screenshot}
    try:
        mglw.run_window_config(ExplorerWindow, args=["--window", "pyglet"])
    except Exception as err:  # no GL 3.3 context, display refused, …: one line, not a traceback
        print(f"llmviz: cannot open the explorer window: {err}", file=sys.stderr)
        return 1
    return 0
