"""One frame of the engine: the systems wired into the schedule, from input to the rendered image.

An ``Engine`` owns a world, a camera rig's camera, the frame systems and (optionally) a
renderer. Windowed and headless runs call the same ``Engine.frame``; only who provides the
GL context and who reads the pixels differ.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .camera import Camera
from .ecs.schedule import Schedule
from .ecs.world import World
from .profiler import Profiler
from .systems.flag_layers import FlagLayers
from .systems.instancing import InstancingSystem
from .systems.labels import LabelSelector
from .systems.transform import TransformSystem
from .systems.visibility import LodSystem, VisibilityResult, VisibilitySystem


@dataclass
class Frame:
    """What the systems of one frame read and write."""

    world: World
    camera: Camera
    dt: float = 0.0
    actions: object = None
    visibility: VisibilityResult = field(default_factory=VisibilityResult)
    batches: list = field(default_factory=list)
    glyphs: np.ndarray | None = None
    clear_color: tuple = (0.06, 0.07, 0.09, 1.0)


class Engine:
    def __init__(self, world: World, camera: Camera, renderer=None):
        self.world = world
        self.camera = camera
        self.renderer = renderer
        self.schedule = Schedule()
        self.profiler = Profiler()
        self.transform = TransformSystem(world)
        self.visibility = VisibilitySystem(world)
        self.lod = LodSystem(world)
        self.instancing = InstancingSystem(world)
        self.flags = FlagLayers(world)  # the one writer of highlight / dim: modes set layers in it
        # Labels are laid out with the renderer's glyph atlas; without a renderer there is nothing to lay out.
        self.labels = LabelSelector(renderer.glyph_atlas) if renderer is not None else None
        self.clear_color = (0.06, 0.07, 0.09, 1.0)
        s = self.schedule
        s.add("transform", "transform", self.transform)
        s.add("visibility", "frustum_hlod", self.visibility)
        s.add("lod", "lod", self.lod)
        s.add("instancing", "flags", self.flags)
        s.add("instancing", "instancing", self.instancing)
        s.add("instancing", "labels", self._build_labels)
        s.add("render", "render", self._render)

    def _build_labels(self, frame: Frame) -> None:
        """The labels in view laid out on screen (legible sizes, no overlaps) and their glyph rows built."""
        if self.labels is None:
            return
        # The in-view slots go in as they are (no world-sized mask): the cost follows what is in view.
        frame.glyphs = self.labels(self.world, frame.visibility.in_view, frame.camera, frame.visibility.drawn)

    def _render(self, frame: Frame) -> None:
        """The frame's batches and labels drawn by the renderer into the view's target."""
        r = self.renderer
        if r is None:
            return
        r.begin_frame(frame.clear_color)
        r.draw_batches(frame.camera, frame.batches)
        if frame.glyphs is not None and len(frame.glyphs):
            r.draw_labels(frame.camera, frame.glyphs)
        r.end_frame()

    def frame(self, dt: float = 0.0, actions=None) -> Frame:
        if self.renderer is not None:  # the view's rectangle, not the whole target (split views)
            self.camera.viewport = getattr(self.renderer, "view_size", self.renderer.size)
        frame = Frame(self.world, self.camera, dt, actions, clear_color=self.clear_color)
        self.profiler.begin()
        self.schedule.run(frame)
        self.profiler.end(self.schedule.timings, **self.counts(frame))
        return frame

    def counts(self, frame: Frame) -> dict:
        v = frame.visibility
        stats = self.renderer.stats.as_dict() if self.renderer is not None else {}
        return {
            "entities": self.world.count,
            "visible": int(len(v.drawn)),
            "culled": int(self.world.count - len(v.drawn)),
            "frustum_culled": v.frustum_culled,
            "hlod_skipped": v.hlod_skipped,
            "too_small": v.too_small,
            "tested": v.tested,
            "proxies": v.proxies,
            "instances_per_lod": list(self.instancing.instances_per_lod),
            **stats,
        }
