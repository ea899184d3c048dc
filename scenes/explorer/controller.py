"""The Explorer: the controller behind the window and the headless tools — scenes, views, modes, actions, UI, frame stats.

It owns everything a user interacts with and runs the same with or without a window: the window
(scenes/app.py) feeds it events and presents its frames; ``llmviz bench --app``, the tests and
exports drive it headless. One frame is one table of named systems: the Explorer's own schedule
(events → actions, the scene loader's hand-over, the views, the UI), and inside each view the
scene's engine schedule (model values, MoE routing, chapter animation, camera, transforms,
culling, LOD, picking, flag composition, instancing, packets, labels, drawing). The profiler
shows all of them, and its FPS is wall-clock time between presented frames.

Views: a view is a scene session (scene + engine + camera rig + modes) and a rectangle of the
target; the frame draws every view, then the UI once. Two views side by side is a list of two.

Nothing waits on the frame thread: scenes are built by the loader on a worker (the old one keeps
drawing, a progress line shows), search runs on a worker, torch runs on the models' workers.
"""
from __future__ import annotations

import dataclasses
import re
import sys
import threading
import time
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from imgui_bundle import imgui

from llmviz.common.i18n import tr, translator
from llmviz.engine.camera_control import Pose
from llmviz.engine.ecs.schedule import Schedule
from llmviz.engine.input import InputState, canonical_key_name, load_bindings
from llmviz.engine.math3d import quat_look_rotation
from llmviz.engine.overlay import ProfilerOverlay
from llmviz.engine.profiler import Profiler
from llmviz.engine.quality import AdaptiveQuality
from llmviz.scenes import panels
from llmviz.scenes.bookmarks import load_bookmarks
from llmviz.scenes.explorer.compare import CompareMode
from llmviz.scenes.explorer.loader import SceneLoader, prepare_scene
from llmviz.scenes.explorer.share import Share
from llmviz.scenes.stream_panel import StreamPanel
from llmviz.scenes.explorer.ui_cover import covered_rects, in_view_pixels
from llmviz.scenes.legend import LegendView, scene_cells
from llmviz.scenes.explorer.modes import (ChapterMode, ExploreMode, FocusMode, LiveMode, MoeMode,
                                          shared_expert_slots)

DEFAULT_SCENE = "nano-gpt"  # the live model: what a first-time user should see
# Actions every view of a compare set takes together: the live models run on one timeline.
SHARED_TIMELINE = ("next", "play_pause")
HINT_BAR_PX = 44.0
SWITCH_INTERVAL_S = 0.001
THROUGH_TEXT_FIELDS = frozenset({"quit"})  # actions whose chords reach the table while a text field has the keys
MAX_REPEATS = 32  # presses of one action acted on in one frame (a key held down is one press)


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
        return load_bindings(), tr("window.bindings_not_loaded", error=str(err))


def rumour_line(spec) -> str:
    """For a speculative spec, the sentence of its notes that names the rumour it draws (else the
    first real sentence, else its first source), for the banner; "" for published designs."""
    if not getattr(spec, "speculative", False):
        return ""
    sentences = [x.strip() for x in re.split(r"(?<=[.!?])\s+(?=[A-Z])", spec.notes or "") if x.strip()]
    named = [x for x in sentences if re.search(r"rumou?r", x, re.I)]
    plain = [x for x in sentences if not x.rstrip(".").isupper()]
    line = (named or plain or [str(s) for s in spec.sources[:1]] or [tr("banner.no_sources")])[0]
    if len(line) > 220:
        line = line[:219] + "…"
    return tr("banner.speculative", line=line)


def _preset_key(name: str) -> str:
    return name.lower().replace("-", " ").replace("_", " ").strip()


@dataclass
class PanelArea:
    """Where panels may go this frame (UI pixels): below the menu and banner, above the hint bar."""
    left: float
    top: float
    height: float
    width: float


class SceneSession:
    """One open scene: its engine, camera rig, presets and modes (made when it is swapped in)."""

    def __init__(self, ex, prepared):
        self.ex = ex
        self.prepared = prepared
        self.scene, self.engine, self.rig = prepared.scene, prepared.engine, prepared.rig
        self.name = self.scene.name
        self.model = self.scene.model
        self.presets = panels.ordered_presets(self.scene.presets)
        self.rig.bookmarks.update(load_bookmarks(self.name))
        self.explore = ExploreMode(ex, self)
        from llmviz.scenes.live import LiveModel

        live_kind = isinstance(self.scene.live, LiveModel) or getattr(self.scene.live, "kind", None) in ("ssm", "vision", "folder", "clip", "llava", "audio", "rag")
        self.live_mode = LiveMode(ex, self) if live_kind else None
        self.focus_mode = FocusMode(ex, self) if self.model is not None else None
        from llmviz.scenes.chapters.showable import chapter_scene

        # a scene of its own a chapter step shows (the retrieval scene) carries that chapter on, too
        self.chapters_mode = ChapterMode(ex, self) if self.model is not None or chapter_scene(self.name) else None
        is_moe = self.model is not None and (hasattr(self.scene.live, "stats") or self.scene.routing_source is not None)
        self.moe_mode = MoeMode(ex, self) if is_moe else None
        from llmviz.scenes.heads_view import heads_mode

        self.heads_mode = heads_mode(ex, self)  # H: every head's attention, clustered (scenes/heads_view.py)
        # Priority for actions: an open chapter first, then a focus, a selection, the MoE, the live model.
        self.modes = [m for m in (self.chapters_mode, self.focus_mode, self.explore, self.moe_mode, self.live_mode,
                                  self.heads_mode) if m is not None]
        schedule = self.engine.schedule
        schedule.add("camera", "camera", self._camera)
        for mode in self.modes:
            for phase, name, system, order in mode.systems():
                schedule.add(phase, name, system, **order)
        if self.model is not None:
            shared = prepared.shared_experts if prepared.shared_experts is not None else shared_expert_slots(self.model)
            if len(shared):
                self.engine.flags.set("shared_experts", shared, soft=True)
        spec = self.model.spec if self.model is not None else None
        self.title = spec.name if spec is not None else self.scene.caption
        self.describe()
        self.legend = LegendView()  # what the colours of the data cells in view mean
        # The preset to re-frame once the panels are known (first UI frame), unless the camera moved first.
        start = getattr(self.scene, "start_preset", None)
        self.frame_start = start if start in self.scene.presets else None

    @property
    def chapters(self):
        return self.chapters_mode.player if self.chapters_mode is not None else None

    def _camera(self, frame) -> None:
        """The camera rig moved by this frame's actions (fly or orbit) and any eased transition."""
        actions = frame.actions
        if actions is None:
            return
        self.rig.update(frame.dt, actions)
        self.explore.save_bookmarks_if_asked(actions)

    def handler(self, action: str):
        for mode in self.modes:
            fn = mode.handler(action)
            if fn is not None:
                return fn
        return None

    def go_to_preset(self, name: str, duration: float | None = None) -> None:
        """A smooth move to one of the scene's camera presets (``duration`` 0: there at once); orbiting then
        turns around its target."""
        eye, target = (np.asarray(v, np.float64) for v in self.scene.presets[name])
        pose = self.rig.framed(Pose(eye, quat_look_rotation(target - eye)), target)
        if duration == 0.0:
            self.rig.transition = None
            pose.apply(self.rig.camera)
        else:
            self.rig.move_to(*pose, duration)
        self.rig.orbit.target = target.copy()

    def describe(self) -> None:
        """The banner's size, status and rumour lines in the chosen language (again after View ▸ Language; a scene
        that cannot write its status again keeps the one it was built with)."""
        spec = self.model.spec if self.model is not None else None
        self.params = panels.params_line(spec) if spec is not None else ""
        again = getattr(self.scene, "describe_status", None)
        self.status = (again() if again is not None else self.scene.status) or tr("banner.stress_status")
        self.rumour = rumour_line(spec) if spec is not None else ""

    def close(self, wait: bool = False) -> threading.Thread:
        """Stop the modes and the scene's workers. The chapter (which writes GL values) closes here;
        the rest joins worker threads that may still be inside torch, so it runs off the frame thread
        (``wait``: until it is done, as at exit, where a thread left inside torch aborts the process)."""
        if self.chapters_mode is not None:
            self.chapters_mode.close()

        def finish():
            for mode in self.modes:
                if mode is not self.chapters_mode:
                    mode.close()
            self.scene.close()

        closing = threading.Thread(target=finish, name=f"close {self.name}", daemon=True)
        closing.start()
        if wait:
            closing.join(120)
        return closing


@dataclass
class View:
    """A scene session drawn into a rectangle of the target: (x, y, w, h) as fractions, top-left origin."""
    session: SceneSession
    rect: tuple = (0.0, 0.0, 1.0, 1.0)

    def pixels(self, size) -> tuple[int, int, int, int]:
        """The rectangle in target pixels, top-left origin."""
        w, h = size
        x0, y0, fw, fh = self.rect
        return int(round(x0 * w)), int(round(y0 * h)), max(1, int(round(fw * w))), max(1, int(round(fh * h)))


class UiHost:
    """Dear ImGui for the Explorer: one context per process, the bundled font, a renderer for the target.

    The window passes its own ImGui integration (which also feeds imgui the window's events); headless, the
    renderer's ``ui_overlay`` draws into the offscreen target and the Explorer feeds imgui."""

    _context = None
    _font_ratio = None  # the pixel ratio the context's font was rasterised for

    def __init__(self, renderer, display_size, window_renderer_factory=None, pixel_ratio: float = 1.0):
        if UiHost._context is None:
            UiHost._context = imgui.create_context()
        imgui.set_current_context(UiHost._context)
        if UiHost._font_ratio != pixel_ratio:  # before the renderer is made: it uploads the font texture
            panels.load_font(pixel_ratio)
            UiHost._font_ratio = pixel_ratio
        if window_renderer_factory is not None:
            self.renderer = window_renderer_factory()
            self.headless = False
        else:
            self.renderer = renderer.ui_overlay(tuple(display_size), pixel_ratio)
            self.headless = True
        self.io = imgui.get_io()
        if self.headless:  # a picture larger than its view: the UI laid out for the view, drawn scaled up
            self.io.display_framebuffer_scale = imgui.ImVec2(pixel_ratio, pixel_ratio)

    def resize(self, size) -> None:
        self.io.display_size = imgui.ImVec2(*size)


def warm_up() -> None:
    """Import what later scenes need (torch for live and simulated routing) while the first scene is on
    screen, then freeze what the imports made out of the cyclic collector's way.

    Both would otherwise land on a frame the user is looking at: importing torch holds the
    interpreter for ~0.2 s wherever it happens (its libraries load under the GIL), and a full
    collection that walks its hundreds of thousands of long-lived objects costs 40-50 ms."""
    import gc

    try:
        import torch  # noqa: F401

        from llmviz.scenes import moe_live, moe_panels  # noqa: F401
    except Exception:  # a missing or broken torch shows where a live model needs it, not here
        return
    gc.collect()
    gc.freeze()


class Explorer:
    """The explorer's controller. ``frame(dt)`` draws one frame into the renderer's target; the caller presents it
    and calls ``presented()``. Events come in through ``key_down``/``key_up``/``pointer_moved``/… ."""

    def __init__(self, renderer, scene: str = DEFAULT_SCENE, *, ui: bool = True, window_ui_factory=None,
                 ui_size=None, bindings=None, adaptive_quality: bool = True, autoplay: bool = False,
                 background_imports: bool = True):
        # Workers (scene loader, search, routing) share the interpreter with the frame thread: a
        # shorter switch interval hands it back within 1 ms instead of 5 each time the frame yields it.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self.renderer = renderer
        self.autoplay = autoplay
        if bindings is None:
            bindings, problem = load_user_bindings()
        else:
            problem = None
        self.notice = problem or ""
        self.open_path = ""   # the Model menu's "your model" path, kept between frames
        self.input = InputState(bindings)
        self.overlay = ProfilerOverlay()
        self.overlay.visible = scene.startswith("stress:")  # the stress scene is about cost; F3 shows it anywhere
        self.profiler = Profiler()
        self.quality = AdaptiveQuality(enabled=adaptive_quality)
        self.catalog = panels.model_catalog()
        self.loader = SceneLoader(renderer)
        self.share = Share(self)  # the Share menu: copy link, export picture / SVG
        self.stream = StreamPanel(self)  # the Server menu: live tokens from an OpenAI-compatible server
        self.compare = CompareMode(self)
        self.ui = UiHost(renderer, ui_size or renderer.size, window_ui_factory,
                         pixel_ratio=getattr(renderer, "pixel_ratio", 1.0)) if ui else None
        self.pointer: tuple[float, float] | None = None  # target pixels; None: not over the window
        self.menu_actions: set[str] = set()  # actions chosen in a menu, pressed on the next frame
        self.switch_seconds: float | None = None  # from choosing a model to its first frame on screen
        self.outline_seconds: float | None = None  # from choosing a model to its outline on screen
        self._switch_started: float | None = None
        self._frame_end: float | None = None
        self.present_ms = 0.0  # time from the end of the frame's work to its presentation (swap, display)
        self.frames = 0
        self.global_actions = {"toggle_profiler": self.toggle_profiler, "next_model": lambda: self._step_model(+1),
                               "previous_model": lambda: self._step_model(-1), "toggle_chapters": self.toggle_chapters,
                               "toggle_tour": self.toggle_tour, "search": self.open_search, "quit": self.quit,
                               "toggle_quality": self.toggle_quality, "write_report": self.write_report,
                               "toggle_compare": self.compare.toggle, "toggle_camera_sync": self.compare.toggle_sync,
                               "toggle_stream": self.stream.toggle}
        self.quit_requested = False
        self.schedule = Schedule()
        self.schedule.add("input", "events", self._input)
        self.schedule.add("simulation", "scene_loader", self._take_loaded_scene)
        self.schedule.add("simulation", "compare_loader", self.compare.poll)
        self.schedule.add("render", "views", self._draw_views)
        self.schedule.add("overlay", "ui", self._draw_ui)
        self.schedule.add("overlay", "quality", self._adapt)
        self.views: list[View] = []
        self.ui_rects = np.zeros((0, 4))  # display pixels the UI covered last frame
        self.legend_report: list[dict] = []  # the legend drawn last frame, for frame reports
        self._open_now(scene)
        if hasattr(renderer, "warm_up"):
            renderer.warm_up(self.session.engine.camera)
        # A one-shot picture (`llmviz render`) has no later scene to warm up for.
        self.warm_up = threading.Thread(target=warm_up if background_imports else (lambda: None),
                                        name="warm-up", daemon=True)
        self.warm_up.start()

    # ------------------------------------------------------------------ scenes
    @property
    def session(self) -> SceneSession:
        """The session the UI and the keys talk to: the first view's, or in a compare set the leading view's."""
        return self.views[self.compare.leader if self.compare.on else 0].session

    def _view_size(self, view: View | None = None):
        rect = (view or View(None)).pixels(self.renderer.size)
        return rect[2], rect[3]

    def _open_now(self, name: str) -> None:
        """Build and show ``name`` on this thread (start-up: there is no old scene to keep drawing)."""
        prepared = prepare_scene(name, self.renderer, self._view_size(), autoplay=self.autoplay)
        self._adopt(prepared)

    def request_scene(self, name: str, then=None) -> None:
        """Open ``name`` without stalling: the loader builds it on a worker; the current scene keeps drawing.
        ``then(session)`` runs once its full scene (not its outline) is on screen."""
        self._after_open = (name, then) if then is not None else None
        if self.compare.on:  # a compare set changes the leading view's model: the set is built again
            names = list(self.compare.names)
            names[self.compare.leader] = name
            if name not in self.compare.names:
                self.compare.open(names)
            return
        if name == self.session.name and not self.loader.busy:
            return
        self._switch_started = time.perf_counter()
        self._pending_first_frame = False  # the first frame that counts is the new scene's
        self.loader.request(name, self._view_size(), self.autoplay)

    def _take_loaded_scene(self, frame) -> None:
        """A scene the loader finished on its worker swapped in (its staged uploads played back), else nothing."""
        result = self.loader.poll()
        if result is None:
            return
        prepared, name, error = result
        if error:
            self.notice = error
            print(f"llmviz: {error}", file=sys.stderr)
            return
        self._adopt(prepared)
        self.notice = ""

    def _adopt(self, prepared) -> None:
        """Swap a prepared scene into the first view: staged uploads played back, modes made, the old one closed.

        A model's outline comes first (progressive loading); when its full scene follows, the camera
        stays where the user had it meanwhile."""
        prepared.staging.apply(self.renderer)
        session = SceneSession(self, prepared)
        if self.views:
            old = self.views[0].session
            if old.prepared.outline and old.name == session.name:
                session.frame_start = old.frame_start  # the outline's start view, framed or not, carries over
                session.rig.camera.position = old.rig.camera.position.copy()
                session.rig.camera.orientation = old.rig.camera.orientation.copy()
                session.rig.transition = old.rig.transition
            self.views[0] = View(session, self.views[0].rect)
            old.close()
        else:
            self.views.append(View(session))
        self.quality.reset()
        self._apply_quality()
        self._pending_first_frame = not prepared.outline
        after = getattr(self, "_after_open", None)
        if after is not None and not prepared.outline and after[0] == session.name:
            self._after_open = None
            after[1](session)
        if prepared.outline and self._switch_started is not None:
            self.outline_seconds = time.perf_counter() - self._switch_started

    def add_view(self, name: str, rect) -> View:
        """Show scene ``name`` in another rectangle of the frame (split screen); built here, beside the others."""
        rect = tuple(float(v) for v in rect)
        w, h = View(None, rect).pixels(self.renderer.size)[2:]
        prepared = prepare_scene(name, self.renderer, (w, h), autoplay=self.autoplay, share_atlas=True)
        prepared.staging.apply(self.renderer)
        view = View(SceneSession(self, prepared), rect)
        self.views.append(view)
        self._apply_quality()
        return view

    def wait_for_scene(self, timeout: float = 60.0) -> None:
        """Headless only: block until a requested scene is built (its outline, then the scene), swapping each in."""
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            result = self.loader.wait(max(0.0, end - time.perf_counter()))
            if result is None:
                return
            self.loader._done.insert(0, result)
            self._take_loaded_scene(None)
            if result[0] is None or not result[0].outline:
                return

    def wait_for_values(self, timeout: float | None = None) -> bool:
        """Headless only: block until the live model's first values (and simulated routing) are ready."""
        session = self.session
        if session.moe_mode is not None:
            from llmviz.scenes.live_wait import wait_with_progress

            wait_with_progress(session.moe_mode.wait, timeout, what="the simulated routing")
        return session.scene.wait_for_values(timeout)

    def _step_model(self, step: int) -> None:
        names = [entry.scene for entry in self.catalog]
        current = self.loader.pending or self.session.name
        here = names.index(current) if current in names else (-1 if step > 0 else 0)
        self.request_scene(names[(here + step) % len(names)])

    def start_at_preset(self, view: str) -> None:
        names = {_preset_key(n): n for n in self.session.presets}
        if _preset_key(view) in names:
            self.session.go_to_preset(names[_preset_key(view)], duration=0.0)
            self.session.frame_start = names[_preset_key(view)]  # framed around the panels once they are known
        else:
            print(f"llmviz: scene {self.session.name!r} has no camera preset {view!r} "
                  f"(presets: {', '.join(self.session.presets) or 'none'}); starting at the overview", file=sys.stderr)

    # ------------------------------------------------------------------ actions
    def do(self, name: str) -> bool:
        """Run one action (a key, a gamepad button or a menu item); False when nothing takes it now."""
        fn = self.global_actions.get(name) or self.session.handler(name)
        if fn is None:
            return False
        if self.compare.on and name in SHARED_TIMELINE and self.session.chapters is None:
            self.compare.timeline(name)
            return True
        fn()
        return True

    def toggle_profiler(self) -> None:
        self.overlay.visible = not self.overlay.visible

    def toggle_chapters(self, chapter: int | None = None, step: int = 0) -> None:
        mode = self.session.chapters_mode
        if mode is None:
            self.notice = tr("menu.chapters.none")
            return
        mode.toggle(chapter, step)

    def toggle_tour(self) -> None:
        self.session.explore.toggle_tour()

    def open_search(self) -> None:
        if self.session.focus_mode is not None:
            self.session.focus_mode.open_search()

    def toggle_quality(self) -> None:
        """Adaptive quality on or off (off: full detail whatever the frame time)."""
        self.quality.enabled = not self.quality.enabled
        self.quality.reset()
        self._apply_quality()

    def quit(self) -> None:
        self.quit_requested = True

    def write_report(self) -> threading.Thread:
        """The View menu's "Write frame report": what the last frame showed, as JSON in the config
        directory's reports folder (written on a worker; the banner names the file or the problem)."""
        from llmviz.common.atomic import write_atomic
        from llmviz.models.registry import config_dir
        from llmviz.scenes.explorer.frame_report import frame_report, report_json

        data = report_json(frame_report(self))
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = config_dir() / "reports" / f"frame-{re.sub(r'[^A-Za-z0-9._-]+', '_', self.session.name)}-{stamp}.json"

        def write():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(path, data)
                self.notice = tr("window.report_written", path=str(path))
            except OSError as err:
                self.notice = tr("window.report_failed", path=str(path), error=str(err.strerror or err))

        worker = threading.Thread(target=write, name="frame report", daemon=True)
        worker.start()
        return worker

    # ------------------------------------------------------------------ events (from the window or a script)
    def key_down(self, name: str) -> None:
        self.input.key_down(name)

    def key_up(self, name: str) -> None:
        self.input.key_up(name)

    def key_pressed(self, name: str, modifiers: Iterable[str] = ()) -> None:
        """A key pressed in the window with ``modifiers`` held (the window's own report of them). A focused text
        field keeps it, except Esc (it closes the search or steps out) and the chords of `THROUGH_TEXT_FIELDS`
        (Ctrl+Q quits while the search field is being typed in)."""
        if not self.ui_wants_keyboard or canonical_key_name(name) == "ESCAPE":
            self.key_down(name)
            return
        through = THROUGH_TEXT_FIELDS.intersection(self.input.chord_actions(name, modifiers))
        self.menu_actions.update(through)  # pressed on the next frame, as a menu item's action is

    def pointer_moved(self, x: float | None, y: float | None = None) -> None:
        """The pointer at target pixel (x, y), top-left origin; None: it left the window."""
        self.pointer = None if x is None else (float(x), float(y))

    def pointer_for(self, session) -> tuple[float, float] | None:
        """The pointer in the pixels of the view showing ``session``, or None (outside it, or over the UI)."""
        if self.pointer is None or (self.ui is not None and self.ui.io.want_capture_mouse):
            return None
        for view in self.views:
            if view.session is session:
                x0, y0, w, h = view.pixels(self.renderer.size)
                x, y = self.pointer[0] - x0, self.pointer[1] - y0
                return (x, y) if 0 <= x < w and 0 <= y < h else None
        return None

    def type_text(self, text: str) -> None:
        """Characters typed into the focused UI field (headless scripts; the window feeds imgui itself)."""
        if self.ui is not None:
            for ch in text:
                self.ui.io.add_input_character(ord(ch))

    def files_dropped(self, paths) -> None:
        """Files dropped onto the window: the first goes to a live scene that opens files (vit-tiny's pictures);
        read on that scene's worker, never here."""
        open_file = getattr(self.session.scene.live, "open_dropped", None)
        if not paths:
            return
        if open_file is None:
            self.notice = tr("window.drop_ignored")
        else:
            open_file(str(paths[0]))

    @property
    def ui_wants_keyboard(self) -> bool:
        return self.ui is not None and self.ui.io.want_capture_keyboard

    @property
    def ui_wants_mouse(self) -> bool:
        return self.ui is not None and self.ui.io.want_capture_mouse

    # ------------------------------------------------------------------ the frame
    def frame(self, dt: float) -> None:
        """One whole frame: input, hand-over of a loaded scene, every view, the UI. Timed system by system."""
        self.profiler.begin()
        self._dt = min(max(float(dt), 0.0), 0.1)
        self.schedule.run(self)
        timings = {name: ms for name, ms in self.schedule.timings.items() if name != "views"}
        for i, view in enumerate(self.views):
            prefix = "" if i == 0 else f"view {i + 1}/"
            timings.update({prefix + name: ms for name, ms in view.session.engine.schedule.timings.items()})
        timings["present"] = self.present_ms
        self.profiler.end(timings, **self.session.engine.counts(self._last_frame))
        self._frame_end = time.perf_counter()
        self.frames += 1

    def presented(self) -> None:
        """The frame reached the screen (the window swapped buffers; headless: the GPU finished)."""
        now = time.perf_counter()
        if self._frame_end is not None:
            self.present_ms = (now - self._frame_end) * 1000.0
        interval = self.profiler.presented(now)
        if not self.warm_up.is_alive():  # start-up imports are not what the scene costs
            self.quality.observe(interval)
        if getattr(self, "_pending_first_frame", False) and self._switch_started is not None:
            self.switch_seconds = now - self._switch_started
            self._switch_started = None
        self._pending_first_frame = False

    def _input(self, ex) -> None:
        """Window events become actions through the one input table (menu items press the same actions)."""
        actions = self.input.frame(self._dt)
        if self.menu_actions:  # a menu item is its action pressed: the same path as its key or button
            actions = dataclasses.replace(actions, pressed=actions.pressed | frozenset(self.menu_actions))
            self.menu_actions.clear()
        self._actions = actions
        pressed = [name for name in actions.pressed if name in self.global_actions or self.session.handler(name)]
        if "back_step" in pressed and "previous" in pressed:  # one button bound to both (the d-pad's left)
            pressed.remove("previous")
        for name in sorted(pressed):
            for _ in range(min(actions.press_count(name), MAX_REPEATS)):
                self.do(name)
        for i, name in enumerate(self.session.presets[:5], start=1):
            if actions.was_pressed(f"preset_{i}"):
                self.session.go_to_preset(name)

    def _draw_views(self, ex) -> None:
        """Each view's scene schedule run into its viewport (one view, or two to four in compare mode)."""
        r = self.renderer
        target_h = r.size[1]
        frame = None
        comparing = self.compare.on
        order = list(range(len(self.views)))
        if comparing:  # the leading view moves first, so the others can follow it in the same frame
            self.compare.lead_from_pointer()
            order.remove(self.compare.leader)
            order.insert(0, self.compare.leader)
        for k in order:
            view = self.views[k]
            x, y, w, h = view.pixels(r.size)
            r.set_viewport(None if len(self.views) == 1 else (x, target_h - y - h, w, h))
            actions = self.compare.actions_for(k, self._actions) if comparing else self._actions
            drawn = view.session.engine.frame(self._dt, actions)
            view.session.last_drawn = drawn.visibility.drawn  # for frame reports
            if k == order[0]:
                frame = drawn
                if comparing:
                    self.compare.follow()
        r.set_viewport(None)
        self._last_frame = frame

    def _apply_quality(self) -> None:
        level = self.quality.level
        for view in self.views:
            view.session.engine.visibility.detail = level.detail
        self.renderer.render_scale = level.render_scale

    def _adapt(self, ex) -> None:
        """The quality level adaptive quality chose (from the last frames' times) applied to every view: detail, pixels."""
        self._apply_quality()

    # ------------------------------------------------------------------ the UI
    def _draw_ui(self, ex) -> None:
        """The Dear ImGui overlay: menus, banner, panels, legend, hint bar, tooltips, drawn over the views."""
        if self.ui is None:
            return
        io = self.ui.io
        io.delta_time = max(self._dt, 1e-4)
        if self.ui.headless:
            io.display_size = imgui.ImVec2(*self.renderer.size)
            if self.pointer is not None:
                io.add_mouse_pos_event(*self.pointer)
        imgui.new_frame()
        w, h = io.display_size.x, io.display_size.y
        session = self.session
        chapters = session.chapters_mode
        state = panels.MenuState(chapters.chapter_list if chapters else [], session.chapters is not None,
                                 session.explore.tour is not None and session.explore.tour.playing,
                                 session.focus_mode is not None and session.focus_mode.tree_on,
                                 tuple(sorted(session.rig.bookmarks)),
                                 session.focus_mode is not None and session.focus_mode.node is not None,
                                 session.scene.live is not None, self.quality.enabled,
                                 self.compare.on or self.compare.chooser_open, self.compare.sync, self.open_path)
        choice = panels.main_menu(self.catalog, session.name, session.presets, self.overlay.visible, session.rig.mode,
                                  state)
        self.share.menu()
        self.stream.menu()
        top = choice.height + panels.banner(choice.height, w, session.title, session.params, session.status,
                                            session.scene.live is not None, self._note(), session.rumour) + 8
        hints = self._hints()
        below = max(HINT_BAR_PX, panels.hint_bar_height(hints, w))  # the key-hint bar along the bottom
        profiler_width = self.overlay.draw(self.profiler, position=(10.0, top), quality=self.quality.level.name
                                           if self.quality.enabled else tr("profiler.quality_off"),
                                           gpu_note=getattr(self.renderer, "gpu_timing_note", ""),
                                           max_height=h - top - below - 4.0)
        left = 10.0 + (profiler_width + 10.0 if profiler_width else 0.0)
        area = PanelArea(left, top, h - top - below, w)
        self._set_free_window(session, area, w, h)
        if session.chapters is not None:
            session.chapters_mode.panels(area)
        else:
            # In a compare set the live models share one panel (compare.draw): input, outputs side by side.
            modes = (session.focus_mode,) if self.compare.on else (session.live_mode, session.moe_mode, session.focus_mode,
                                                                   session.heads_mode)
            for mode in modes:
                if mode is not None:
                    mode.panels(area)
        legend_left = area.left - 10.0
        if session.chapters is None and session.focus_mode is not None and session.focus_mode.tree_on:
            legend_left += panels.TOC_WIDTH + 20.0  # beside the component tree, not under it
        session.legend.draw(session.engine, scene_cells(session.scene), legend_left, area.top + area.height)
        self.legend_report = session.legend.report()
        self.compare.draw(area)
        self.stream.draw()
        panels.hint_bar(hints, w, h)
        session.explore.tooltip()
        imgui.render()
        draw_data = imgui.get_draw_data()
        self._cover_views(covered_rects(draw_data), (w, h))
        self.ui.renderer.render(draw_data)
        if choice.open_path is not None:
            self.open_path = choice.open_path
        if choice.scene:
            self.request_scene(choice.scene)
        if choice.preset:
            session.go_to_preset(choice.preset)
        if choice.toggle_profiler:
            self.toggle_profiler()
        if choice.toggle_mode:
            session.rig.toggle_mode()
        if choice.action:
            self.menu_actions.add(choice.action)
        if choice.chapter is not None:
            self.toggle_chapters(*choice.chapter)
        if choice.language is not None:
            self.choose_language(choice.language)

    def choose_language(self, code: str) -> threading.Thread:
        """View ▸ Language: the language's files are read on a worker; every panel speaks it from the frame after
        (they read tr() as they draw), and the banner's lines and the Model menu are written again; remembered."""
        def switch():
            from llmviz.common.i18n import LanguageError
            from llmviz.scenes.language import choose_in_menu

            try:
                choose_in_menu(code)
            except LanguageError as err:
                self.notice = str(err)
                return
            self.catalog = panels.model_catalog()   # the Model menu's sizes and tags (it reads the user's specs)
            for view in self.views:
                view.session.describe()
                if view.session.chapters_mode is not None:
                    view.session.chapters_mode.reload_chapters()
            self.notice = tr("window.language_chosen", name=translator().language.name)

        worker = threading.Thread(target=switch, name="language", daemon=True)
        worker.start()
        return worker

    def _cover_views(self, rects: np.ndarray, display_size) -> None:
        """The UI's window rectangles, in each view's pixels, for its label layout (next frame's labels
        keep out from under this frame's UI) and for frame reports."""
        self.ui_rects = rects
        for view in self.views:
            labels = view.session.engine.labels
            if labels is not None:
                labels.ui_rects = in_view_pixels(rects, view.pixels(self.renderer.size), display_size,
                                                 self.renderer.size)

    def _set_free_window(self, session, area: PanelArea, w: float, h: float) -> None:
        """The part of the view no panel covers, in framebuffer pixels, for the rig's framing
        (presets, focus, chapters aim there, not under the banner or a side panel)."""
        left, right = area.left - 10.0, w
        if session.chapters is not None:
            left += panels.TOC_WIDTH + 20.0
            right -= panels.CHAPTER_PANEL_WIDTH + 20.0
        else:
            if session.focus_mode is not None and session.focus_mode.tree_on:
                left += panels.TOC_WIDTH + 50.0
            if session.moe_mode is not None:
                right -= panels.MOE_PANEL_WIDTH + 20.0
            elif session.live_mode is not None or (session.focus_mode is not None and session.focus_mode.node):
                right -= panels.PANEL_WIDTH + 20.0
        if right - left < 0.25 * w:  # a narrow window: panels overlap the view whatever we do
            left, right = 0.0, w
        sx, sy = self.renderer.size[0] / max(w, 1.0), self.renderer.size[1] / max(h, 1.0)
        window = (left * sx, area.top * sy, right * sx, (area.top + area.height) * sy)
        for view in self.views:
            view.session.rig.window = window if len(self.views) == 1 else None
        if session.frame_start and not self._actions.steers_camera:
            name, session.frame_start = session.frame_start, None
            session.go_to_preset(name, duration=0.0)

    def _note(self) -> str:
        build = self.compare.build
        if build is not None:
            return tr("window.building_compare", stage=build.stage, fraction=build.fraction)
        if self.loader.busy:
            return tr("window.opening", name=self.loader.pending, stage=self.loader.stage, fraction=self.loader.fraction)
        tour = self.session.explore.tour
        if tour is not None and tour.playing:
            return tr("window.tour", stop=panels.preset_label(tour.stop_name), i=tour.index + 1, n=len(tour.stops))
        if self.notice:
            return self.notice
        return tr("window.opened_in", seconds=self.switch_seconds) if self.switch_seconds is not None else ""

    def _hints(self) -> str:
        session = self.session
        if session.chapters is not None:
            return tr("hints.chapters")
        if self.compare.on:
            return tr("hints.compare")
        extra = tr("hints.live") if session.live_mode else tr("hints.moe") if session.moe_mode else ""
        return tr("hints.fly" if session.rig.mode == "fly" else "hints.orbit") + " · " + tr("hints.explore") + extra

    # ------------------------------------------------------------------ stats
    def stats(self) -> dict:
        """Wall-clock figures of the frames so far, as the profiler and ``--stats-json`` report them."""
        p = self.profiler
        wall = np.asarray(p.wall_ms, np.float64)
        out = {"frames": self.frames, "fps_median": p.fps, "frame_ms_median": p.wall_frame_ms,
               "frame_ms_max": float(wall.max()) if len(wall) else 0.0,
               "frames_over_50ms": int((wall > 50.0).sum()), "cpu_frame_ms_median": p.cpu_frame_ms,
               "systems_ms": p.system_medians(), "quality": self.quality.level.name}
        live_stats = getattr(self.session.scene.live, "stats_json", None)
        if callable(live_stats):   # a scene's own figures (the long-context view's zoom to exact values)
            out["scene_figures"] = live_stats()
        return out

    def close(self) -> None:
        """At exit: every session closed and its workers joined; a scene still building is closed too."""
        self.compare.close()
        self.stream.close()
        for view in self.views:
            view.session.close(wait=True)
        self.loader.close()
        self.warm_up.join(120)  # a thread still importing torch at exit aborts the process
