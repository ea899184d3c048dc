"""The explorer window: a moderngl-window WindowConfig (pyglet) running the engine's frame, with input, camera and UI.

The window adds four systems to the engine's schedule — input (events → actions, model and
preset keys, generation keys), camera (fly / orbit / transitions), picking (the hovered block
and cell, before instancing so its outline and lit source cells show in the same frame) and
imgui (menu bar, model banner, nano-GPT panel, tooltip, F3 profiler, key hints) — so the whole
frame, window parts included, is timed and visible in one order.

Mixture-of-experts scenes (a scene with ``.routing``: the live moe-4 / moe-8, or simulated routing
for MoE specs without weights, built in a background thread since it imports torch) also get the
MoE window (scenes/moe_panels.py: text, play / pause / step token, gating, heatmap, load balance,
specialisation, export), a PacketSystem in the instancing phase drawing the routing of the MoE
layer in view, and their shared experts always lit. Space and N drive the routing animation there.

Every action (a key, a gamepad button, or a menu item, which presses its action for a frame) goes
through ``do``: chapters (scenes/chapter_view.py: Space, N, Backspace, PageUp/PageDown, C), focus
(scenes/focus.py: click or search, Esc steps out), the tour (scenes/tour.py: T) and bookmarks
(the rig's Ctrl+1..9 / 1..9, kept per model by scenes/bookmarks.py). The user's bindings.toml in the
config directory overrides the defaults; a malformed one is named (file:line: problem) and skipped.

Switching model builds the new scene between two frames: the old one is closed, the data atlas
emptied, a new Engine made around the same renderer, and the camera starts at the overview.
"""
from __future__ import annotations

import dataclasses
import re
import sys
import threading
import time

import moderngl_window as mglw
import numpy as np
from imgui_bundle import imgui
from moderngl_window.integrations.imgui_bundle import ModernglWindowRenderer

from llmviz.engine.camera_control import CameraRig
from llmviz.engine.ecs.components import FLAG_DIMMED, FLAG_HIGHLIGHTED
from llmviz.engine.input import InputState, load_bindings, moderngl_window_mouse_button, pyglet_key_name
from llmviz.engine.math3d import quat_look_rotation
from llmviz.engine.overlay import ProfilerOverlay
from llmviz.engine.picking import pick
from llmviz.engine.render.gl import GLRenderer
from llmviz.engine.runtime import Engine
from llmviz.engine.systems.packets import PacketSystem
from llmviz.engine.systems.transform import world_box
from llmviz.scenes import panels
from llmviz.scenes.bookmarks import load_bookmarks, save_bookmarks
from llmviz.scenes.focus import BLOCK, ComponentTree, Focus, Node
from llmviz.scenes.hover import Reading, SourceHighlight, read_pick
from llmviz.scenes.tour import Tour

DEFAULT_SCENE = "nano-gpt"  # the live model: what a first-time user should see
HINTS = ("WASD move · Q/E down/up · drag look · Shift faster · wheel zoom · Tab fly/orbit · click focus · "
         "F frame · Esc step out · Ctrl+F search · [ ] model · F5–F9 views · T tour · F3 profiler · "
         "Ctrl+1..9 save view · 1..9 go")
LIVE_HINTS = " · N step · Space play/pause · C chapters"
MOE_HINTS = " · Space play/pause routing · N step token"
PACKET_REFRESH_S = 0.5  # how often the packets' layer follows the camera
CHAPTER_HINTS = ("Chapters: Space play/pause/continue · N next step · Backspace back a step · PageUp/PageDown chapters · "
                 "C close · pad: Start, dpad ←/↓/↑ · drag to look around")
# Actions the window itself runs (the rig runs toggle_mode and the bookmarks from the same snapshot).
WINDOW_ACTIONS = ("toggle_profiler", "back", "frame_selection", "next_model", "previous_model", "play_pause", "next",
                  "previous", "back_step", "next_chapter", "previous_chapter", "toggle_chapters", "toggle_tour",
                  "search")


def scene_extent(world) -> tuple[np.ndarray, float]:
    """Centre and radius of everything in a world with bounds (the transform system must have run)."""
    center, half = world_box(world, world.query("world_bounds"))
    if not len(center):
        return np.zeros(3), 10.0
    lo, hi = (center - half).min(axis=0), (center + half).max(axis=0)
    return (lo + hi) / 2, max(1e-3, float(np.linalg.norm(hi - lo)) / 2)


def user_bindings_path():
    """The user's key bindings file: bindings.toml in the config directory (it may not exist)."""
    from llmviz.models.registry import config_dir

    return config_dir() / "bindings.toml"


def load_user_bindings():
    """(bindings, problem): the defaults with the user's file over them; a malformed user file is
    reported (file, line and problem, in one line) and the defaults are used."""
    from llmviz.engine.input import BindingsError

    path = user_bindings_path()
    try:
        return load_bindings(path if path.exists() else None), None
    except BindingsError as err:
        print(f"llmviz: {err} (using the default bindings)", file=sys.stderr)
        return load_bindings(), f"bindings not loaded: {err}"


def rumour_line(spec) -> str:
    """For a speculative spec, the sentence of its notes that names the rumour it draws (else the
    first real sentence, else its first source), for the banner; "" for published designs."""
    if not getattr(spec, "speculative", False):
        return ""
    sentences = [x.strip() for x in re.split(r"(?<=[.!?])\s+(?=[A-Z])", spec.notes or "") if x.strip()]
    named = [x for x in sentences if re.search(r"rumou?r", x, re.I)]
    plain = [x for x in sentences if not x.rstrip(".").isupper()]
    line = (named or plain or [str(s) for s in spec.sources[:1]] or ["no sources"])[0]
    if len(line) > 220:
        line = line[:219] + "…"
    return f"Speculative, not a published design: {line}"


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
        bindings, problem = load_user_bindings()
        self.input = InputState(bindings)
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
        self.notice = problem or ""
        self.menu_actions: set[str] = set()  # actions chosen in a menu, pressed on the next frame
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
        schedule.add("camera", "camera", self._camera)
        schedule.add("lod", "picking", self._picking)  # after LOD fills visibility.drawn, before instancing reads the flags
        schedule.add("overlay", "imgui", self._overlay)
        self.scene, self.engine, self.rig = scene, engine, rig
        self.presets = panels.ordered_presets(scene.presets)
        # The nano-GPT panel drives a nano-GPT session; other live models (the small MoEs) bring their own panels.
        from llmviz.scenes.live import LiveModel

        self.panel = panels.NanoGptPanel(scene.live.session) if isinstance(scene.live, LiveModel) else None
        self.highlight = SourceHighlight(self.renderer, scene.model) if scene.model is not None else None
        self.hovered = self.selected = None
        self.reading: Reading | None = None
        self._reading_key = None
        model = scene.model
        self.tree = ComponentTree(model.layout) if model is not None else None
        self.focus = Focus(self.tree, model, scene.world) if model is not None else None
        self.tree_on, self.query, self._focus_search = False, "", False
        self._details, self._details_key = None, None
        self.tour = Tour(rig, model.layout) if model is not None else None
        self.chapters = None  # a ChapterPlayer while the chapters are open
        self.chapter_list = self._chapter_list(model)
        rig.bookmarks.update(load_bookmarks(scene.name))
        if scene.model is not None:
            spec = scene.model.spec
            self.title_text, self.params_text = spec.name, panels.params_line(spec)
        else:
            self.title_text, self.params_text = scene.caption, ""
        self.status_text = scene.status or "engine stress scene: no model, no values"
        self.rumour_text = rumour_line(scene.model.spec) if scene.model is not None else ""
        self._open_moe(scene, engine)

    # ------------------------------------------------------------------ mixture of experts
    def _open_moe(self, scene, engine) -> None:
        """For MoE scenes: the routing source (built off the frame when simulated), the packet
        system, and the shared experts lit."""
        model = scene.model
        self.routing = None
        self.moe_panel = None
        self.moe_error = ""
        self._routing_ready: list = []  # (scene, routing, error) once ready; a list per scene, so a late
        # thread of a scene switched away from cannot fill the next scene's
        self._packets_key = None
        self._packet_layer = None  # a layer row chosen in the heatmap; None: the one nearest the camera
        self._packet_clock = 0.0
        self.packets = None
        self._routing_thread = None
        ids = np.asarray(model.layout.ids if model is not None else [], dtype=str)
        shared = np.char.find(ids, ".moe.shared.") >= 0 if len(ids) else np.zeros(0, bool)
        self.shared_slots = np.asarray(model.block_slots[shared], np.int64) if len(ids) else np.zeros(0, np.int64)
        self.is_moe = model is not None and (hasattr(scene.live, "stats") or scene.routing_source is not None)
        if self.shared_slots.size:
            engine.schedule.add("instancing", "shared_experts", self._light_shared, before="instancing")
        if not self.is_moe:
            return
        self.packets = PacketSystem(base_size=self._packet_size(model.layout))
        engine.schedule.add("simulation", "moe_routing", self._moe_update)
        engine.schedule.add("instancing", "packets", self.packets, after="instancing")
        if hasattr(scene.live, "stats"):
            self._routing_ready.append((scene, scene.live, None))
        else:  # simulated routing imports torch (a second or more): build it off the frame
            self._routing_thread = threading.Thread(target=self._prepare_routing, args=(scene, self._routing_ready),
                                                    name=f"routing {scene.name}", daemon=True)
            self._routing_thread.start()

    @staticmethod
    def _packet_size(layout) -> float:
        experts = [i for i, name in enumerate(layout.ids) if ".moe.expert." in name]
        sizes = np.asarray(layout.size, np.float64)[experts or list(range(len(layout.ids)))]
        return float(max(np.median(sizes[:, :2].min(axis=1)) * 0.18, 1e-3))

    @staticmethod
    def _prepare_routing(scene, ready: list) -> None:
        try:
            routing = scene.routing
            from llmviz.scenes import moe_panels  # noqa: F401  (imports torch too, here rather than on a frame)
            ready.append((scene, routing, None))
        except Exception as err:  # a routing that fails to build is named in the panel; the window stays up
            ready.append((scene, None, f"simulated routing failed: {err}"))

    def wait_for_routing(self, timeout: float = 30.0) -> None:
        """Headless only (screenshots, tests): block until simulated routing is built."""
        if self._routing_thread is not None:
            self._routing_thread.join(timeout)

    def _moe_update(self, frame) -> None:
        """Per frame: take the routing once it is ready, rebuild the packets when the stats (or the
        layer in view) change, loop the animation."""
        if self.moe_panel is None and self._routing_ready:
            scene, routing, error = self._routing_ready[0]
            if scene is self.scene and error:
                self.moe_error = error  # the placeholder names it, in red
            elif scene is self.scene:
                from llmviz.scenes.moe_panels import MoePanel

                self.routing = routing
                name = scene.model.spec.name
                simulated = getattr(routing, "simulated", False)
                self.moe_panel = MoePanel(f"Mixture of experts: {name}" + (" (simulated routing)" if simulated else ""),
                                          live=not simulated)
                self.packets.playing = True
        routing = self.routing
        stats = getattr(routing, "stats", None)
        if stats is None or not stats.n_layers or not stats.n_tokens:
            return
        self._packet_clock += frame.dt
        row = self._packet_layer
        if row is None or row >= stats.n_layers:
            row = self._layer_in_view(stats) if (self._packets_key is None or self._packet_clock >= PACKET_REFRESH_S) \
                else self._packets_key[1]
        if self._packet_clock >= PACKET_REFRESH_S:
            self._packet_clock = 0.0
        key = (routing.stats_version, row)
        if key != self._packets_key:
            from llmviz.scenes.moe_live import routing_packets

            try:
                self.packets.set_packets(**routing_packets(self.scene.model.layout, stats, row))
            except (KeyError, ValueError) as err:  # a layout without an expert block: no packets, a note
                self.moe_error = f"no routing packets: {err}"
                self.packets.set_packets(np.zeros((0, 2, 3), np.float32))
            self._packets_key = key
        if self.packets.playing and self.packets.time > self.packets.end_time + 0.5:
            self.packets.seek(0.0)  # loop

    def _layer_in_view(self, stats) -> int:
        """The MoE layer row whose router is on screen nearest its centre; the first MoE layer when none is."""
        layout = self.scene.model.layout
        centers = []
        for block in stats.layers:
            try:
                centers.append(layout.center[layout.index(f"blocks.{int(block)}.moe.router")])
            except KeyError:
                centers.append(np.full(3, np.inf))
        camera = self.engine.camera
        w, h = camera.viewport
        centers = np.asarray(centers, np.float64)
        finite = np.isfinite(centers).all(axis=1)
        px = np.full((len(centers), 3), np.nan)
        px[finite] = camera.project(centers[finite])
        on_screen = finite & (px[:, 2] > 0) & (px[:, 0] >= 0) & (px[:, 0] <= w) & (px[:, 1] >= 0) & (px[:, 1] <= h)
        if not on_screen.any():
            return 0  # no router in view (the overview of a deep model, a dense block): the first MoE layer
        off = np.hypot(px[:, 0] - w / 2, px[:, 1] - h / 2)
        return int(np.argmin(np.where(on_screen, off, np.inf)))

    @property
    def moe_token(self) -> int:
        """The token whose packets are half way along their paths at the animation's clock."""
        from llmviz.scenes.moe_live import PACKET_DURATION, PACKET_STAGGER

        stats = getattr(self.routing, "stats", None)
        n = stats.n_tokens if stats is not None else 1
        return int(np.clip(round((self.packets.time - PACKET_DURATION / 2) / PACKET_STAGGER), 0, max(n - 1, 0)))

    def moe_play_pause(self) -> None:
        if self.packets is not None:
            self.packets.playing = not self.packets.playing

    def moe_step(self) -> None:
        """Pause and move the animation on by one token (its packets half way to their experts)."""
        from llmviz.scenes.moe_live import PACKET_DURATION, PACKET_STAGGER

        stats = getattr(self.routing, "stats", None)
        if self.packets is None or stats is None:
            return
        self.packets.playing = False
        j = (self.moe_token + 1) % max(stats.n_tokens, 1)
        self.packets.seek(j * PACKET_STAGGER + PACKET_DURATION / 2)

    def fly_to_expert(self, block: int, expert: int) -> None:
        """Focus (and fly the camera to) expert ``expert`` of block ``block``; packets follow that layer."""
        model = self.scene.model
        try:
            row = model.layout.index(f"blocks.{block}.moe.expert.{expert}")
        except KeyError:
            self.moe_error = f"no block for expert {expert} of layer {block}"
            return
        stats = getattr(self.routing, "stats", None)
        if stats is not None:
            rows = np.flatnonzero(np.asarray(stats.layers) == block)
            self._packet_layer = int(rows[0]) if len(rows) else None
        self.select_component(Node(BLOCK, int(row)))

    def export_routing(self, folder=".") -> str:
        """Write routing.npz and routing.csv into ``folder``; returns the confirmation line (raises OSError)."""
        from pathlib import Path

        from llmviz.scenes.moe_live import export_routing

        stats = getattr(self.routing, "stats", None)
        if stats is None:
            raise OSError("no routing trace yet")
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise OSError(f"no such folder: {folder}")
        written = [export_routing(stats, folder / name) for name in ("routing.npz", "routing.csv")]
        return f"wrote {written[0].resolve()} and {written[1].name} ({stats.n_layers} layers × {stats.n_tokens} tokens)"

    def _light_shared(self, frame) -> None:
        """Shared experts are always lit, unless a focus elsewhere dims them."""
        flags = self.engine.world["renderable"]["flags"]
        slots = self.shared_slots
        dimmed = (flags[slots] & flags.dtype.type(FLAG_DIMMED)) != 0
        flags[slots[~dimmed]] |= flags.dtype.type(FLAG_HIGHLIGHTED)

    def _moe_window(self, x: float, y: float, height: float) -> None:
        if self.moe_panel is None:
            panels.moe_placeholder(x, y, self.moe_error or "preparing simulated routing…", bool(self.moe_error))
            return
        stats = getattr(self.routing, "stats", None)
        row = self._packets_key[1] if self._packets_key is not None else None
        layer = f"layer {int(stats.layers[row])}" if stats is not None and row is not None and row < stats.n_layers else ""
        choice = self.moe_panel.draw(x, y, height, self.routing, self.moe_token, self.packets.playing, layer)
        if self.moe_error:
            self.moe_panel.message, self.moe_panel.message_ok = self.moe_error, False
            self.moe_error = ""
        if choice.play_pause:
            self.moe_play_pause()
        if choice.step:
            self.moe_step()
        if choice.generate and hasattr(self.routing, "step"):
            self.routing.step()
        if choice.toggle_generation and hasattr(self.routing, "toggle_play"):
            self.routing.toggle_play()
        if choice.routing is not None:
            self.routing.set_routing(*choice.routing)
        if choice.fly_to is not None:
            self.fly_to_expert(*choice.fly_to)
        if choice.export:
            try:
                self.moe_panel.message, self.moe_panel.message_ok = self.export_routing(self.moe_panel.export_dir), True
            except (OSError, ValueError) as err:
                self.moe_panel.message, self.moe_panel.message_ok = f"export failed: {err}", False

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
        if self.menu_actions:  # a menu item is its action pressed: the same path as its key or button
            actions = dataclasses.replace(actions, pressed=actions.pressed | frozenset(self.menu_actions))
            self.menu_actions.clear()
        frame.actions = actions
        pressed = [name for name in WINDOW_ACTIONS if actions.was_pressed(name)]
        if "back_step" in pressed and "previous" in pressed:  # one button bound to both (the d-pad's left)
            pressed.remove("previous")
        for name in pressed:
            self.do(name)
        for i, name in enumerate(self.presets[:5], start=1):
            if actions.was_pressed(f"preset_{i}"):
                self.go_to_preset(name)

    def do(self, name: str) -> None:
        """Run one window action (from a key, a gamepad button or a menu item)."""
        player, live = self.chapters, self.scene.live
        if name == "toggle_profiler":
            self.overlay.visible = not self.overlay.visible
        elif name == "back":
            if player is not None:
                self.toggle_chapters()  # Esc leaves the chapters
            elif self.focus is not None and self.focus.node is not None:
                self.focus.step_out()
                self._after_focus_change(frame=True)
            elif self.selected is not None:
                self._set_flag(self.selected, False)
                self.selected = None
        elif name == "frame_selection":
            if self.focus is not None and self.focus.node is not None:
                self._frame_focus()
            elif self.selected is not None:
                self._focus(self.selected)
        elif name == "next_model":
            self.request_scene(self._neighbour(+1))
        elif name == "previous_model":
            self.request_scene(self._neighbour(-1))
        elif name == "toggle_chapters":
            self.toggle_chapters()
        elif name == "toggle_tour" and self.tour is not None:
            self.tour.toggle()
        elif name == "search" and self.tree is not None:
            self.tree_on = True
            self._focus_search = True
        elif player is not None:
            if name == "play_pause":
                player.press_space()
            elif name == "next":
                player.next_step()
            elif name in ("previous", "back_step"):
                player.previous_step()
            elif name == "next_chapter":
                player.next_chapter()
            elif name == "previous_chapter":
                player.previous_chapter()
        elif self.is_moe:
            if name == "play_pause":
                self.moe_play_pause()
            elif name == "next":
                self.moe_step()
        elif live is not None:
            if name == "play_pause":
                live.session.toggle_play()
            elif name == "next":
                live.session.step()

    # ------------------------------------------------------------------ chapters, focus, tour
    def _chapter_list(self, model) -> list:
        if model is None:
            return []
        from llmviz.scenes.chapters.format import ChapterError, load_chapters

        try:
            return [c for c in load_chapters() if c.model == model.layout.spec_id]
        except (ChapterError, OSError) as err:  # a broken chapter file names itself; the window stays up
            self.notice = f"chapters not loaded: {err}"
            print(f"llmviz: {err}", file=sys.stderr)
            return []

    def toggle_chapters(self, chapter: int | None = None, step: int = 0) -> None:
        """Open the chapters (at ``chapter``/``step`` if given) or, with none given, close them."""
        if self.chapters is not None and chapter is None:
            self.chapters.close()
            self.chapters = None
            self.rig.transition = None
            return
        if self.chapters is None:
            if not self.chapter_list:
                self.notice = "this model has no chapters (nano-GPT has)"
                return
            from llmviz.scenes.chapter_view import ChapterPlayer

            try:
                self.chapters = ChapterPlayer(self.scene, self.engine, self.rig, self.renderer, self.wnd.buffer_size)
            except ValueError as err:
                self.notice = str(err)
                print(f"llmviz: {err}", file=sys.stderr)
                return
            if self.focus is not None:
                self.focus.node = None  # the chapter owns the flags now
            if self.tour is not None:
                self.tour.stop()
        if chapter is not None:
            self.chapters.go_to(chapter, step)

    def select_component(self, node: Node | None) -> None:
        """Focus a component (block or group): frame it, highlight it, dim the rest; None clears."""
        if self.focus is None:
            return
        if self.chapters is not None:
            self.toggle_chapters()
        if self.selected is not None:
            self._set_flag(self.selected, False)
            self.selected = None
        self.focus.select(node)
        self._after_focus_change(frame=True)

    def _after_focus_change(self, frame: bool) -> None:
        self._details_key = None
        if frame and self.focus.node is not None:
            self._frame_focus()

    def _frame_focus(self) -> None:
        center, half = self.focus.box(self.focus.node)
        self.rig.focus(center, half)

    def _camera(self, frame) -> None:
        actions = frame.actions
        self.rig.update(frame.dt, actions)
        if any(name.startswith("bookmark_save_") for name in actions.pressed):
            try:
                save_bookmarks(self.scene.name, self.rig.bookmarks)
            except OSError as err:
                self.notice = f"cannot save bookmarks: {err}"
        if self.tour is not None:
            self.tour.update(frame.dt, actions.steers_camera)
        if self.chapters is not None:
            self.chapters.update(frame.dt, actions.steers_camera)

    def _picking(self, frame) -> None:
        if self.mouse is None or imgui.get_io().want_capture_mouse:
            hit = None
        else:
            origin, direction = frame.camera.ray(*self.mouse)
            hit = pick(self.engine.world, frame.visibility.drawn, origin, direction)
        hovered = None if hit is None else hit.slot
        if hovered != (self.hovered.slot if self.hovered else None):
            left = self.hovered.slot if self.hovered is not None else None
            # The block the pointer left loses its glow, unless it is selected or focused.
            keeps_glow = left == self.selected or (self.focus is not None and left is not None
                                                   and self.focus.is_focused(left))
            if left is not None and not keeps_glow:
                self._set_flag(left, False)
                if self.chapters is not None:
                    self.chapters.refresh_flags()
            if hovered is not None:
                self._set_flag(hovered, True)
        elif hovered is not None and self.chapters is not None:
            self._set_flag(hovered, True)  # a chapter step re-writes the flags; the hovered block keeps its glow
        self.hovered = hit
        self._read(hit)
        if frame.actions is not None and frame.actions.was_pressed("select") and hit is not None:
            row = self.scene.model.row_of_slot[hit.slot] if self.scene.model is not None else -1
            if row >= 0:
                self.select_component(Node(BLOCK, int(row)))
                return
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
        state = panels.MenuState(self.chapter_list, self.chapters is not None,
                                 self.tour is not None and self.tour.playing, self.tree_on,
                                 tuple(sorted(self.rig.bookmarks)), self.focus is not None and self.focus.node is not None,
                                 self.scene.live is not None)
        choice = panels.main_menu(self.catalog, self.scene.name, self.presets, self.overlay.visible, self.rig.mode,
                                  state)
        note = self.notice or (f"opened in {self.switch_seconds:.2f} s" if self.switch_seconds is not None else "")
        if self.tour is not None and self.tour.playing:
            note = f"tour: {self.tour.stop_name} ({self.tour.index + 1} of {len(self.tour.stops)}) · T stops"
        top = choice.height + panels.banner(choice.height, w, self.title_text, self.params_text, self.status_text,
                                            self.scene.live is not None, note, self.rumour_text) + 8
        self.overlay.draw(self.engine.profiler, position=(10.0, top))
        hint_h = 44.0
        left = 10.0 + (300.0 if self.overlay.visible else 0.0)
        if self.chapters is not None:
            self._chapter_panels(left, top, h - top - hint_h, w)
        else:
            if self.panel is not None:
                self.panel.draw(w - panels.PANEL_WIDTH - 10, top)
            if self.is_moe:
                self._moe_window(w - panels.MOE_PANEL_WIDTH - 10, top, h - top - hint_h - 8)
            self._focus_panels(left, top, h - top - hint_h, w)
        hints = CHAPTER_HINTS if self.chapters is not None else f"{self.rig.mode} mode · {HINTS}" + (
            LIVE_HINTS if self.panel else MOE_HINTS if self.is_moe else "")
        panels.hint_bar(hints, w, h)
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
        if choice.action:
            self.menu_actions.add(choice.action)
        if choice.chapter is not None:
            self.toggle_chapters(*choice.chapter)

    def _chapter_panels(self, left: float, top: float, height: float, width: float) -> None:
        player = self.chapters
        if player.moment is None:
            return
        choice = panels.ChapterChoice()
        panels.chapter_contents(player.runner, left, top, height, choice)
        panels.chapter_text_panel(player, width - panels.CHAPTER_PANEL_WIDTH - 10, top, choice)
        player.light_reference(choice.hovered_reference)
        if choice.go_to is not None:
            player.go_to(*choice.go_to)
        if choice.seek is not None:
            player.seek(choice.seek)
        if choice.action:
            self.menu_actions.add(choice.action)
        if choice.close:
            self.toggle_chapters()

    def _focus_panels(self, left: float, top: float, height: float, width: float) -> None:
        if self.focus is None:
            return
        choice = panels.FocusChoice()
        node = self.focus.node
        crumbs_h = 0.0
        if node is not None:
            crumbs_h = panels.breadcrumbs(self.tree, node, left, top, choice) + 6
            details = self._focus_details(node)
            y = top + (0 if self.panel is None else 430) + (crumbs_h if self.is_moe else 0)  # beside the MoE window
            x = width - panels.PANEL_WIDTH - 10 - (panels.MOE_PANEL_WIDTH + 10 if self.is_moe else 0)
            panels.details_panel(details, x, y)
        if self.tree_on:
            panels.component_tree(self.tree, node, self.query, left, top + crumbs_h, height - crumbs_h, choice,
                                  self._focus_search)
            self._focus_search = False
        if choice.search is not None:
            self.query = choice.search
        if choice.clear:
            self.select_component(None)
        elif choice.select is not None:
            self.select_component(choice.select)

    def _focus_details(self, node: Node):
        live = self.scene.live
        version = live.values_version if live is not None else 0
        if self._details_key != (node, version):
            values = None
            session = getattr(live, "session", None)
            if getattr(session, "trace", None) is not None:
                from collections import ChainMap

                values = ChainMap(dict(session.trace), dict(getattr(session, "weights", None) or {}))
            self._details = self.tree.details(node, values)
            self._details_key = (node, version)
        return self._details

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
            self.wait_for_routing()
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
