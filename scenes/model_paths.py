"""Cameras for model scenes: a preset as a camera, and the benchmark's path (whole model, then down the stack)."""
from __future__ import annotations

import math

import numpy as np

from llmviz.engine.bench import BenchPath
from llmviz.engine.camera import Camera

OVERVIEW_SHARE = 0.25  # the first quarter of the path holds the whole model in view
STACK_STOPS = 8  # layers visited on the way down


def _far_plane(layout) -> float:
    return float(np.linalg.norm(layout.group_size[0])) * 4.0 + 100.0


def preset_camera(preset, viewport, layout, camera: Camera | None = None) -> Camera:
    eye, target = preset
    camera = camera or Camera(viewport=viewport)
    camera.viewport = viewport
    camera.far = _far_plane(layout)
    camera.near = max(0.05, camera.far * 1e-5)
    camera.position = np.asarray(eye, np.float64).copy()
    camera.look_at(np.asarray(target, np.float64))
    return camera


def _layer_stops(layout) -> list[tuple[np.ndarray, np.ndarray]]:
    """A view of every k-th layer, square on, from the first to the last."""
    layers = [i for i, g in enumerate(layout.group_ids) if g.startswith("blocks.") and g.count(".") == 1]
    if not layers:
        return []
    picks = sorted({layers[round(k * (len(layers) - 1) / max(1, STACK_STOPS - 1))] for k in range(STACK_STOPS)})
    stops = []
    for g in picks:
        center, size = layout.group_center[g], layout.group_size[g]
        distance = 0.75 * max(size[0], size[1]) / math.tan(math.radians(30.0))
        stops.append((center + np.array([0.0, 0.0, distance]), center.copy()))
    return stops


def model_path(layout) -> BenchPath:
    overview = layout.presets["overview"]
    stops = [tuple(np.asarray(v, np.float64) for v in overview)] + _layer_stops(layout)
    stops.append(tuple(np.asarray(v, np.float64) for v in layout.presets["output"]))
    eyes = np.array([s[0] for s in stops])
    targets = np.array([s[1] for s in stops])
    far = _far_plane(layout)

    def pose(t: float, camera: Camera) -> None:
        if t < OVERVIEW_SHARE:
            # A slow turn around the whole model: everything in view, the view changing.
            angle = (t / OVERVIEW_SHARE - 0.5) * 0.5
            eye, target = eyes[0], targets[0]
            offset = eye - target
            rot = np.array([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]])
            camera.position = target + rot @ offset
            camera.look_at(target)
        else:
            u = (t - OVERVIEW_SHARE) / (1.0 - OVERVIEW_SHARE) * (len(stops) - 1)
            i = min(int(u), len(stops) - 2)
            f = u - i
            f = f * f * (3 - 2 * f)
            camera.position = eyes[i] * (1 - f) + eyes[i + 1] * f
            camera.look_at(targets[i] * (1 - f) + targets[i + 1] * f)
        camera.far = far
        camera.near = max(0.05, far * 1e-5)

    return BenchPath(pose)
