"""A tour: a camera path through the whole model, from the layout, played through the camera rig.

Stops: the overview, the embedding, every top-level block group in order (each transformer layer,
framed), the output, and back to the overview. The rig flies each leg as a smooth transition
(its own easing and duration); the tour holds ``dwell`` seconds at each stop. Any steering input
ends the tour where the camera is (the user took the controls), as it ends any transition.
"""
from __future__ import annotations

import numpy as np

from llmviz.engine.camera_control import Pose, frame_bounds
from llmviz.engine.math3d import quat_look_rotation
from llmviz.scenes.layout import PRESET_DIRECTION

MAX_BLOCK_STOPS = 24  # a 96-layer model visits an evenly spaced subset


def tour_stops(layout, camera) -> list[tuple[str, Pose, np.ndarray]]:
    """(name, pose, look-at point) of each stop, in order."""
    stops = []

    def preset(name):
        if name in layout.presets:
            eye, target = (np.asarray(v, np.float64) for v in layout.presets[name])
            stops.append((name, Pose(eye, quat_look_rotation(target - eye)), target))

    preset("overview")
    preset("embedding")
    top = [g for g in np.flatnonzero(np.asarray(layout.group_parent) == 0)
           if layout.group_ids[g].startswith("blocks.") or layout.group_ids[g].startswith("layers.")]
    if len(top) > MAX_BLOCK_STOPS:
        top = [top[i] for i in np.linspace(0, len(top) - 1, MAX_BLOCK_STOPS).round().astype(int)]
    for g in top:
        center = layout.group_center[g].astype(np.float64)
        pose = frame_bounds(camera, center, layout.group_size[g] / 2.0, 1.15, direction=-np.asarray(PRESET_DIRECTION))
        stops.append((layout.group_label[g] or layout.group_ids[g], pose, center))
    preset("output")
    preset("overview")
    return stops


class Tour:
    """Plays the stops through a CameraRig: ``update(dt, steering)`` each frame after the rig's update."""

    def __init__(self, rig, layout, dwell: float = 1.5, leg_seconds: float | None = 2.5):
        self.rig = rig
        self.stops = tour_stops(layout, rig.camera)
        self.dwell = dwell
        self.leg_seconds = leg_seconds
        self.index = -1
        self.waited = 0.0
        self.playing = False

    @property
    def stop_name(self) -> str:
        return self.stops[self.index][0] if 0 <= self.index < len(self.stops) else ""

    def start(self) -> None:
        self.playing = bool(self.stops)
        self.index = -1
        self._next()

    def stop(self) -> None:
        self.playing = False

    def toggle(self) -> None:
        self.stop() if self.playing else self.start()

    def _next(self) -> None:
        self.index += 1
        self.waited = 0.0
        if self.index >= len(self.stops):
            self.playing = False
            return
        _, pose, point = self.stops[self.index]
        self.rig.move_to(pose.position, pose.orientation, self.leg_seconds)
        self.rig.orbit.target = np.array(point, np.float64)

    def update(self, dt: float, steering: bool = False) -> None:
        if not self.playing:
            return
        if steering:
            self.playing = False
            return
        if self.rig.transition is not None:
            return
        self.waited += dt
        if self.waited >= self.dwell:
            self._next()
