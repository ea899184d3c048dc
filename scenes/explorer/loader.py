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

import threading
import time
from dataclasses import dataclass

import numpy as np

from llmviz.common.i18n import tr
from llmviz.engine.camera_control import CameraRig
from llmviz.engine.render.datatex import DataStaging
from llmviz.engine.runtime import Engine
from llmviz.engine.systems.transform import world_box
from llmviz.scenes.explorer.latest_job import LatestJob


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
    outline: bool = False  # only the model's outline: the full scene follows


def prepare_outline(spec, layout, renderer, viewport, started: float) -> PreparedScene:
    """The model's outline (scenes/model_scene.py build_outline_world) as a scene to show at once."""
    from llmviz.scenes.model_paths import model_path, preset_camera
    from llmviz.scenes.model_scene import build_outline_world
    from llmviz.scenes.registry import BuiltScene

    world, slots = build_outline_world(layout)
    presets = layout.presets
    scene = BuiltScene(spec.id, world, lambda vp: preset_camera(presets["overview"], vp, layout), model_path(layout),
                       slots, caption=spec.name, presets=presets, start_preset="overview",
                       status=tr("loader.outline"))
    camera = scene.start_camera(viewport)
    engine = Engine(world, camera, renderer)
    engine.transform.update()
    if engine.labels is not None:
        engine.labels.rebuild(world)
    center, radius = scene_extent(world)
    rig = CameraRig(camera, scene_center=center, scene_radius=radius)
    width = renderer.data_packer.width if renderer is not None else 2048
    return PreparedScene(spec.id, scene, engine, rig, DataStaging(width, width, getattr(renderer, "data_packer", None)),
                         started, time.perf_counter() - started, outline=True)


def prepare_scene(name: str, renderer, viewport, *, autoplay: bool = False, started: float | None = None,
                  progress=None, share_atlas: bool = False, packer=None, on_outline=None) -> PreparedScene:
    """Everything of opening ``name`` that needs no GL: safe on a worker thread. ``share_atlas`` allocates
    data regions beside the scenes already shown (another view) instead of replacing them; ``packer``, beside
    those of scenes prepared but not shown yet (a compare set, swapped in together). ``on_outline``
    receives the model's outline (a PreparedScene) as soon as its layout exists."""
    from llmviz.scenes.registry import build_scene

    started = time.perf_counter() if started is None else started
    report = progress or (lambda stage, done: None)
    report(tr("loader.layout"), 0.1)
    width = renderer.data_packer.width if renderer is not None else 2048
    if packer is None and share_atlas and renderer is not None:
        packer = renderer.data_packer
    staging = DataStaging(width, width, packer)
    def show_outline(spec, layout):
        on_outline(prepare_outline(spec, layout, renderer, viewport, started))
        report(tr("loader.spawning"), 0.3)

    scene = build_scene(name, renderer, autoplay=autoplay, data=staging,
                        on_layout=show_outline if on_outline is not None else None)
    report(tr("loader.camera"), 0.6)
    camera = scene.start_camera(viewport)
    engine = Engine(scene.world, camera, renderer)
    scene.attach(engine)
    engine.transform.update()  # world bounds, for the rig's scale and the first frame's culling
    report(tr("loader.hierarchy"), 0.75)
    engine.visibility.index()
    if engine.labels is not None:
        report(tr("loader.labels"), 0.85)
        engine.labels.rebuild(scene.world)
    center, radius = scene_extent(scene.world)
    rig = CameraRig(camera, scene_center=center, scene_radius=radius)
    rig.set_mode(scene.camera_mode)
    rig.orbit._min_distance = getattr(scene, "orbit_min_distance", None)   # noqa: SLF001 - a scene zoomed to cells
    tree = chapters = shared = None
    size = 0.0
    if scene.model is not None:
        from llmviz.scenes.explorer.modes import model_chapters, packet_size, shared_expert_slots
        from llmviz.scenes.focus import ComponentTree

        report(tr("loader.components"), 0.9)
        tree = ComponentTree(scene.model.layout, scene.model.spec)
        tree.build_search_index()  # here, not on the first keystroke
        chapters = model_chapters(scene.model)
        shared = shared_expert_slots(scene.model)
        size = packet_size(scene.model.layout)
    report("ready", 1.0)
    return PreparedScene(name, scene, engine, rig, staging, started, time.perf_counter() - started,
                         tree, chapters, shared, size)


class SceneLoader:
    """One scene build at a time on a worker thread; ``poll()`` on the frame thread returns it once."""

    def __init__(self, renderer):
        self.renderer = renderer
        self._lock = threading.Lock()
        self._job = LatestJob("scene loader")
        self._done: list = []  # (PreparedScene | None, name, error)
        self.pending: str | None = None  # the name being built, for the progress line
        self.stage, self.fraction = "", 0.0

    @property
    def busy(self) -> bool:
        return self.pending is not None

    def request(self, name: str, viewport, autoplay: bool = False) -> None:
        started = time.perf_counter()
        with self._lock:  # ordered with a finishing build's check for a newer request
            self.pending = name
            self._job.submit(lambda: self._build(name, tuple(viewport), autoplay, started))

    def _progress(self, stage: str, fraction: float) -> None:
        self.stage, self.fraction = stage, fraction

    def _build(self, name: str, viewport, autoplay: bool, started: float) -> None:
        try:
            prepared = prepare_scene(name, self.renderer, viewport, autoplay=autoplay, started=started,
                                     progress=self._progress, on_outline=self._post_outline)
            result = (prepared, name, None)
        except Exception as err:  # a scene that fails to build is named on screen; the old one stays
            result = (None, name, tr("loader.failed", name=name, error=str(err)))
        with self._lock:
            if self._job.superseded and result[0] is not None:
                result[0].scene.close()  # a newer request came in: this one is never shown
            else:
                self._done.append(result)
                if not self._job.superseded:
                    self.pending = None

    def close(self, timeout: float = 120.0) -> None:
        """Drop what is queued, let a build in progress finish, and close whatever it built."""
        self._job.cancel()
        self._job.join(timeout)
        while (result := self.poll()) is not None:
            if result[0] is not None:
                result[0].scene.close()

    def _post_outline(self, prepared: PreparedScene) -> None:
        with self._lock:
            if not self._job.superseded:
                self._done.append((prepared, prepared.name, None))

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
            if not self.busy and self._job.idle:
                return None
            time.sleep(0.005)
        return None
