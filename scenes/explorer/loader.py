"""Scenes built off the frame thread: layout, world, engine, hierarchy and glyph tables on a worker, then handed over.

Opening a model used to build its scene between two frames (0.65 s for GPT-3). Now the frame
thread asks the loader for a scene and keeps drawing the old one; a worker builds everything that
does not touch GL — the layout, the world, the Engine with its transforms, hierarchy index and
label glyph table, the camera rig's scale — with the data atlas's allocations and uploads staged
(engine/render/datatex.py DataStaging). When it is done the frame thread plays the staged uploads
back and swaps the scene in: a few milliseconds. Only the newest request is built; a request made
while another builds waits for it and then replaces it.
"""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from llmviz.engine.camera_control import CameraRig
from llmviz.engine.render.datatex import DataStaging
from llmviz.engine.runtime import Engine
from llmviz.engine.systems.transform import world_box


def scene_extent(world) -> tuple[np.ndarray, float]:
    """Centre and radius of everything in a world with bounds (the transform system must have run)."""
    center, half = world_box(world, world.query("world_bounds"))
    if not len(center):
        return np.zeros(3), 10.0
    lo, hi = (center - half).min(axis=0), (center + half).max(axis=0)
    return (lo + hi) / 2, max(1e-3, float(np.linalg.norm(hi - lo)) / 2)


@dataclass
class PreparedScene:
    """A scene ready to be swapped in: built, with its engine and rig, its GL uploads still staged."""
    name: str
    scene: object  # BuiltScene
    engine: Engine
    rig: CameraRig
    staging: DataStaging
    started: float  # perf_counter when it was requested
    build_seconds: float
    tree: object = None  # the model's ComponentTree (focus mode), built here rather than on the frame
    chapters: object = None  # (chapters of this model, error or "") read from the bundled files
    shared_experts: object = None  # entity slots always lit
    packet_size: float = 0.0  # routing packets' size (MoE scenes)


def prepare_scene(name: str, renderer, viewport, *, autoplay: bool = False, started: float | None = None,
                  progress=None, share_atlas: bool = False) -> PreparedScene:
    """Everything of opening ``name`` that needs no GL: safe on a worker thread. ``share_atlas`` allocates
    data regions beside the scenes already shown (another view) instead of replacing them."""
    from llmviz.scenes.registry import build_scene

    started = time.perf_counter() if started is None else started
    report = progress or (lambda stage, done: None)
    report("building the layout and the world", 0.1)
    width = renderer.data_packer.width if renderer is not None else 2048
    staging = DataStaging(width, width, renderer.data_packer if share_atlas and renderer is not None else None)
    scene = build_scene(name, renderer, autoplay=autoplay, data=staging)
    report("placing the camera", 0.6)
    camera = scene.start_camera(viewport)
    engine = Engine(scene.world, camera, renderer)
    scene.attach(engine)
    engine.transform.update()  # world bounds, for the rig's scale and the first frame's culling
    report("indexing the hierarchy", 0.75)
    engine.visibility.index()
    if engine.labels is not None:
        report("laying out the labels", 0.85)
        engine.labels.rebuild(scene.world)
    center, radius = scene_extent(scene.world)
    rig = CameraRig(camera, scene_center=center, scene_radius=radius)
    rig.set_mode(scene.camera_mode)
    tree = chapters = shared = None
    size = 0.0
    if scene.model is not None:
        from llmviz.scenes.explorer.modes import model_chapters, packet_size, shared_expert_slots
        from llmviz.scenes.focus import ComponentTree

        report("indexing the components", 0.9)
        tree = ComponentTree(scene.model.layout)
        tree.build_search_index()  # here, not on the first keystroke
        chapters = model_chapters(scene.model)
        shared = shared_expert_slots(scene.model)
        size = packet_size(scene.model.layout)
    report("ready", 1.0)
    return PreparedScene(name, scene, engine, rig, staging, started, time.perf_counter() - started,
                         tree, chapters, shared, size)


class FrameGate:
    """Lets background work give way to frames: the frame thread marks its frames, and a worker that
    installed ``yield_to_frames`` pauses briefly, every couple of milliseconds of its own Python, while
    a frame is being drawn. Both share one interpreter lock; without this a build on the worker
    stretches frames to 30-50 ms on a two-core machine."""

    def __init__(self, slice_s: float = 0.002, pause_s: float = 0.0005):
        self.drawing = threading.Event()
        self.slice_s, self.pause_s = slice_s, pause_s

    def yield_to_frames(self) -> None:
        """Call on the worker thread: from now on its Python function calls check the gate."""
        clock, drawing, slice_s, pause_s = time.perf_counter, self.drawing, self.slice_s, self.pause_s
        last = [clock()]

        def check(frame, event, arg):
            if event != "call":
                return
            now = clock()
            if now - last[0] > slice_s:
                if drawing.is_set():
                    time.sleep(pause_s)  # releases the interpreter to the frame thread
                last[0] = clock()

        sys.setprofile(check)


class SceneLoader:
    """One scene build at a time on a worker thread; ``poll()`` on the frame thread returns it once."""

    def __init__(self, renderer, gate: FrameGate | None = None):
        self.renderer = renderer
        self.gate = gate
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._queued: tuple | None = None  # (name, viewport, autoplay, started) waiting for the worker
        self._done: list = []  # (PreparedScene | None, name, error)
        self.pending: str | None = None  # the name being built, for the progress line
        self.stage, self.fraction = "", 0.0

    @property
    def busy(self) -> bool:
        return self.pending is not None

    def request(self, name: str, viewport, autoplay: bool = False) -> None:
        with self._lock:
            self._queued = (name, tuple(viewport), autoplay, time.perf_counter())
            self.pending = name
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="scene loader", daemon=True)
                self._thread.start()

    def _progress(self, stage: str, fraction: float) -> None:
        self.stage, self.fraction = stage, fraction

    def _work(self) -> None:
        if self.gate is not None:
            self.gate.yield_to_frames()
        while True:
            with self._lock:
                job, self._queued = self._queued, None
                if job is None:
                    self._thread = None
                    return
            name, viewport, autoplay, started = job
            try:
                prepared = prepare_scene(name, self.renderer, viewport, autoplay=autoplay, started=started,
                                         progress=self._progress)
                result = (prepared, name, None)
            except Exception as err:  # a scene that fails to build is named on screen; the old one stays
                result = (None, name, f"could not open {name}: {err}")
            with self._lock:
                superseded = self._queued is not None
                if superseded and result[0] is not None:
                    result[0].scene.close()  # a newer request came in: this one is never shown
                else:
                    self._done.append(result)
                    self.pending = None

    def close(self, timeout: float = 120.0) -> None:
        """Drop what is queued, let a build in progress finish, and close whatever it built."""
        with self._lock:
            self._queued = None
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        while (result := self.poll()) is not None:
            if result[0] is not None:
                result[0].scene.close()

    def poll(self):
        """(PreparedScene or None, name, error) once a build finished; None while nothing finished."""
        with self._lock:
            return self._done.pop(0) if self._done else None

    def wait(self, timeout: float = 60.0):
        """Headless only (tests, tools): block until the current build finishes; returns poll()'s result."""
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            result = self.poll()
            if result is not None:
                return result
            if not self.busy and self._thread is None:
                return None
            time.sleep(0.005)
        return None
