"""The explorer window: a moderngl-window WindowConfig (pyglet) running the engine's frame, with input, camera and UI.

The window adds four systems to the engine's schedule — input (events → actions, model and
preset keys, generation keys), camera (fly / orbit / transitions), picking (the hovered block
and cell, before instancing so its outline and lit source cells show in the same frame) and
imgui (menu bar, model banner, nano-GPT panel, tooltip, F3 profiler, key hints) — so the whole
frame, window parts included, is timed and visible in one order.

Switching model builds the new scene between two frames: the old one is closed, the data atlas
emptied, a new Engine made around the same renderer, and the camera starts at the overview.
"""
from __future__ import annotations

import sys
import threading
import time

import moderngl_window as mglw
import numpy as np
from imgui_bundle import imgui
from moderngl_window.integrations.imgui_bundle import ModernglWindowRenderer

from llmviz.engine.camera_control import CameraRig
from llmviz.engine.ecs.components import FLAG_HIGHLIGHTED
from llmviz.engine.input import InputState, load_bindings, moderngl_window_mouse_button, pyglet_key_name
from llmviz.engine.math3d import quat_look_rotation
from llmviz.engine.overlay import ProfilerOverlay
from llmviz.engine.picking import pick
from llmviz.engine.render.gl import GLRenderer
from llmviz.engine.runtime import Engine
from llmviz.engine.systems.transform import world_box
from llmviz.scenes import panels
from llmviz.scenes.hover import Reading, SourceHighlight, read_pick

DEFAULT_SCENE = "nano-gpt"  # the live model: what a first-time user should see
HINTS = ("WASD move · Q/E down/up · drag look · Shift faster · wheel zoom · Tab fly/orbit · click select · "
         "F frame · Esc back · [ ] model · F5–F9 views · F3 profiler · Ctrl+1..9 save view · 1..9 go")
LIVE_HINTS = " · N step · Space play/pause"


def scene_extent(world) -> tuple[np.ndarray, float]:
    """Centre and radius of everything in a world with bounds (the transform system must have run)."""
    center, half = world_box(world, world.query("world_bounds"))
    if not len(center):
        return np.zeros(3), 10.0
    lo, hi = (center - half).min(axis=0), (center + half).max(axis=0)
    return (lo + hi) / 2, max(1e-3, float(np.linalg.norm(hi - lo)) / 2)


def _preset_key(name: str) -> str:
    return name.lower().replace("-", " ").replace("_", " ").strip()


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
        imgui.create_context()
        panels.load_font()
        self.imgui = ModernglWindowRenderer(self.wnd)
        self.renderer = GLRenderer(self.ctx, self.wnd.fbo, self.wnd.buffer_size)
        self.input = InputState(load_bindings())
        self.overlay = ProfilerOverlay()
        # The profiler starts open on the stress test (that scene is about cost); F3 shows it anywhere.
        self.overlay.visible = (self.options.get("scene") or DEFAULT_SCENE).startswith("stress:")
        self.catalog = panels.model_catalog()
        hover = self.options.get("hover")
        self.fixed_pointer = hover  # window pixels; a pointer held still there (screenshots, tests)
        self.mouse = self._to_buffer(*hover) if hover else None  # no picking until the pointer is over the window
        self.scene_buttons: set[str] = set()  # mouse buttons whose press went to the scene, not the UI
        self.frames_left = self.options.get("frames")
        self.scene = None
        self.pending_scene: str | None = None
        self.switch_started = 0.0  # when the pending scene was chosen
        self.switch_seconds: float | None = None  # from choosing a model to its first frame on screen
        self.notice = ""
        try:
            from llmviz.engine.input import attach_pyglet_controllers

            self.controllers = attach_pyglet_controllers(self.input)
        except Exception:  # no joystick support in this pyglet build or platform: keyboard and mouse still work
            self.controllers = None
        self._open(self.options["scene"])
        view = self.options.get("view")
        if view:
            self._start_at_preset(view)

    # ------------------------------------------------------------------ scenes
    def _open(self, name: str) -> None:
        """Build scene ``name`` and a fresh engine around the renderer (the old scene must be closed)."""
        from llmviz.scenes.registry import build_scene

        scene = build_scene(name, self.renderer)
        camera = scene.start_camera(self.wnd.buffer_size)
        engine = Engine(scene.world, camera, self.renderer)
        scene.attach(engine)
        engine.transform.update()  # world bounds, for the rig's scale, before the first frame
        center, radius = scene_extent(scene.world)
        rig = CameraRig(camera, scene_center=center, scene_radius=radius)
        rig.set_mode(scene.camera_mode)
        schedule = engine.schedule
        schedule.add("input", "input", self._input)
        schedule.add("camera", "camera", lambda frame: self.rig.update(frame.dt, frame.actions))
        schedule.add("lod", "picking", self._picking)  # after LOD fills visibility.drawn, before instancing reads the flags
        schedule.add("overlay", "imgui", self._overlay)
        self.scene, self.engine, self.rig = scene, engine, rig
        self.presets = panels.ordered_presets(scene.presets)
        self.panel = panels.NanoGptPanel(scene.live.session) if scene.live is not None else None
        self.highlight = SourceHighlight(self.renderer, scene.model) if scene.model is not None else None
        self.hovered = self.selected = None
        self.reading: Reading | None = None
        self._reading_key = None
        if scene.model is not None:
            spec = scene.model.spec
            self.title_text, self.params_text = spec.name, panels.params_line(spec)
        else:
            self.title_text, self.params_text = scene.caption, ""
        self.status_text = scene.status or "engine stress scene: no model, no values"

    def request_scene(self, name: str) -> None:
        """Switch to scene ``name`` before the next frame (never inside one: its systems belong to the old engine)."""
        if self.pending_scene is None and name != self.scene.name:
            self.pending_scene = name
            self.switch_started = time.perf_counter()

    def _switch(self, name: str) -> None:
        old = self.scene
        if old.live is not None:
            # Closing joins the model's worker thread, which may still be importing torch (a second
            # or more): let that wait happen off the frame. Closing touches no GL state.
            threading.Thread(target=old.close, name=f"close {old.name}", daemon=True).start()
        else:
            old.close()
        self.renderer.reset_data()
        try:
            self._open(name)
            self.notice = ""
        except Exception as err:  # a scene that fails to build must not take the window down with it
            self.renderer.reset_data()
            self._open(DEFAULT_SCENE)
            self.notice = f"could not open {name}: {err}"
            print(f"llmviz: {self.notice}", file=sys.stderr)

    def _neighbour(self, step: int) -> str:
        names = [entry.scene for entry in self.catalog]
        here = names.index(self.scene.name) if self.scene.name in names else (-1 if step > 0 else 0)
        return names[(here + step) % len(names)]

    def go_to_preset(self, name: str, duration: float | None = None) -> None:
        """A smooth move to one of the scene's camera presets; orbiting then turns around its target."""
        eye, target = (np.asarray(v, np.float64) for v in self.scene.presets[name])
        self.rig.move_to(eye, quat_look_rotation(target - eye), duration)
        self.rig.orbit.target = target.copy()

    def _start_at_preset(self, view: str) -> None:
        names = {_preset_key(n): n for n in self.presets}
        if _preset_key(view) in names:
            self.go_to_preset(names[_preset_key(view)], duration=0.0)
        else:
            print(f"llmviz: scene {self.scene.name!r} has no camera preset {view!r} "
                  f"(presets: {', '.join(self.presets) or 'none'}); starting at the overview", file=sys.stderr)

    # ------------------------------------------------------------------ systems
    def _input(self, frame) -> None:
        actions = self.input.frame(frame.dt)
        frame.actions = actions
        if actions.was_pressed("toggle_profiler"):
            self.overlay.visible = not self.overlay.visible
        if actions.was_pressed("back") and self.selected is not None:
            self._set_flag(self.selected, False)
            self.selected = None
        if actions.was_pressed("frame_selection") and self.selected is not None:
            self._focus(self.selected)
        if actions.was_pressed("next_model"):
            self.request_scene(self._neighbour(+1))
        elif actions.was_pressed("previous_model"):
            self.request_scene(self._neighbour(-1))
        for i, name in enumerate(self.presets[:5], start=1):
            if actions.was_pressed(f"preset_{i}"):
                self.go_to_preset(name)
        if self.scene.live is not None:
            session = self.scene.live.session
            if actions.was_pressed("play_pause"):
                session.toggle_play()
            if actions.was_pressed("next"):
                session.step()

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
        self._read(hit)
        if frame.actions is not None and frame.actions.was_pressed("select") and hit is not None:
            if self.selected is not None and self.selected != hit.slot:
                self._set_flag(self.selected, False)
            self.selected = hit.slot
            self._focus(hit.slot)

    def _read(self, hit) -> None:
        """The hovered block's reading and lit source cells, recomputed only when the cell or the values change."""
        model, live = self.scene.model, self.scene.live
        if model is None:
            return
        version = live.values_version if live is not None else 0
        key = None if hit is None else (hit.slot, hit.cell, version)
        if key == self._reading_key:
            return
        self._reading_key = key
        if hit is None:
            self.reading = None
        else:
            try:
                self.reading = read_pick(model, live, hit.slot, hit.cell)
            except (KeyError, IndexError, ValueError) as err:  # a tooltip must never take the frame down
                self.reading = Reading(model.tensor_at(hit.slot) or "?", note=f"cannot explain this cell: {err}")
        self.highlight.show(self.reading)

    def _overlay(self, frame) -> None:
        if self.fixed_pointer:
            imgui.get_io().mouse_pos = imgui.ImVec2(*self.fixed_pointer)
        imgui.new_frame()
        w, h = self.wnd.size
        choice = panels.main_menu(self.catalog, self.scene.name, self.presets, self.overlay.visible, self.rig.mode)
        note = self.notice or (f"opened in {self.switch_seconds:.2f} s" if self.switch_seconds is not None else "")
        top = choice.height + panels.banner(choice.height, w, self.title_text, self.params_text, self.status_text,
                                            self.scene.live is not None, note) + 8
        self.overlay.draw(self.engine.profiler, position=(10.0, top))
        if self.panel is not None:
            self.panel.draw(w - panels.PANEL_WIDTH - 10, top)
        panels.hint_bar(f"{self.rig.mode} mode · {HINTS}" + (LIVE_HINTS if self.panel else ""), w, h)
        if self.reading is not None:
            panels.cell_tooltip(self.reading)
        elif self.hovered is not None:
            self._tooltip(self.hovered)
        imgui.render()
        self.imgui.render(imgui.get_draw_data())
        if choice.scene:
            self.request_scene(choice.scene)
        if choice.preset:
            self.go_to_preset(choice.preset)
        if choice.toggle_profiler:
            self.overlay.visible = not self.overlay.visible
        if choice.toggle_mode:
            self.rig.toggle_mode()

    # ------------------------------------------------------------------ helpers
    def _set_flag(self, slot: int, on: bool) -> None:
        flags = self.engine.world["renderable"]["flags"]
        bit = flags.dtype.type(FLAG_HIGHLIGHTED)  # ~ of a numpy uint8 stays in range; ~1 as a Python int is -2
        flags[slot] = (flags[slot] | bit) if on else (flags[slot] & ~bit)

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

    # ------------------------------------------------------------------ window callbacks
    def on_render(self, time_s: float, frame_time: float) -> None:
        switching = self.pending_scene is not None
        if switching:
            self._switch(self.pending_scene)
            self.pending_scene = None
            frame_time = 0.0  # the build's wait is not simulation time
        if self.options.get("screenshot") and self.frames_left == 2:
            # A screenshot is a check of what the scene shows: let a live model's first values land
            # (the worker needs a second or two to start) so the last frames draw them.
            self.scene.wait_for_values()
        self.renderer.set_target(self.wnd.fbo, self.wnd.buffer_size)
        self.engine.frame(min(frame_time, 0.1))
        if switching:
            self.ctx.finish()  # the first frame counts once the GPU has drawn it
            self.switch_seconds = time.perf_counter() - self.switch_started
        if self.frames_left is not None:
            self.frames_left -= 1
            if self.frames_left <= 0:
                if self.options.get("screenshot"):
                    self._save_screenshot(self.options["screenshot"])
                self.wnd.close()

    def on_close(self) -> None:
        self.scene.close()  # stop a live model's worker thread

    def _save_screenshot(self, path: str) -> None:
        from PIL import Image

        w, h = self.wnd.buffer_size
        data = self.wnd.fbo.read(components=3, alignment=1)
        Image.frombytes("RGB", (w, h), data).transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(path)

    def on_resize(self, width: int, height: int) -> None:
        self.imgui.resize(width, height)
        self.renderer.set_target(self.wnd.fbo, self.wnd.buffer_size)

    # Events reach the scene only when the UI does not want them (typing in the input field must
    # not fly the camera); releases always do, so nothing stays held down.
    def on_key_event(self, key, action, modifiers) -> None:
        self.imgui.key_event(key, action, modifiers)
        name = pyglet_key_name(key)
        if action == self.wnd.keys.ACTION_PRESS:
            if not imgui.get_io().want_capture_keyboard:
                self.input.key_down(name)
        elif action == self.wnd.keys.ACTION_RELEASE:
            self.input.key_up(name)

    def on_mouse_position_event(self, x, y, dx, dy) -> None:
        self.imgui.mouse_position_event(x, y, dx, dy)
        if not self.fixed_pointer:
            self.mouse = self._to_buffer(x, y)
        self.input.mouse_move(dx, dy)

    def on_mouse_drag_event(self, x, y, dx, dy) -> None:
        self.imgui.mouse_drag_event(x, y, dx, dy)
        if not self.fixed_pointer:
            self.mouse = self._to_buffer(x, y)
        states = self.wnd.mouse_states
        for name, down in (("left", states.left), ("right", states.right), ("middle", states.middle)):
            if down and name in self.scene_buttons:
                self.input.mouse_drag(name, dx, dy)

    def on_mouse_press_event(self, x, y, button) -> None:
        self.imgui.mouse_press_event(x, y, button)
        name = moderngl_window_mouse_button(button)
        if name and not imgui.get_io().want_capture_mouse:
            self.scene_buttons.add(name)
            self.input.mouse_button(name, True)

    def on_mouse_release_event(self, x, y, button) -> None:
        self.imgui.mouse_release_event(x, y, button)
        name = moderngl_window_mouse_button(button)
        if name:
            self.scene_buttons.discard(name)
            self.input.mouse_button(name, False)

    def on_mouse_scroll_event(self, x_offset, y_offset) -> None:
        self.imgui.mouse_scroll_event(x_offset, y_offset)
        if not imgui.get_io().want_capture_mouse:
            self.input.mouse_scroll(y_offset)

    def on_unicode_char_entered(self, char) -> None:
        self.imgui.unicode_char_entered(char)

    def _to_buffer(self, x, y):
        """Window coordinates to framebuffer pixels (they differ on high-DPI screens)."""
        ratio = self.wnd.pixel_ratio
        return x * ratio, y * ratio


def run_window(scene: str | None, size: str, frames: int | None = None, screenshot: str | None = None, *,
               view: str | None = None, hover: tuple[float, float] | None = None) -> int:
    """Open the explorer on ``scene``; ``view`` names a camera preset to start at, ``hover`` holds the
    pointer still at window pixel (x, y) (screenshots of tooltips and lit cells)."""
    from llmviz.scenes.cli.common import parse_size
    from llmviz.scenes.registry import SceneError, parse_scene

    scene = scene or DEFAULT_SCENE
    try:
        parse_scene(scene)
    except SceneError as err:
        print(f"llmviz: {err}", file=sys.stderr)
        return 2
    ExplorerWindow.window_size = parse_size(size)
    ExplorerWindow.options = {"scene": scene, "frames": frames, "screenshot": screenshot, "view": view,
                              "hover": hover}
    try:
        mglw.run_window_config(ExplorerWindow, args=["--window", "pyglet"])
    except Exception as err:  # no GL 3.3 context, display refused, …: one line, not a traceback
        print(f"llmviz: cannot open the explorer window: {err}", file=sys.stderr)
        return 1
    return 0
