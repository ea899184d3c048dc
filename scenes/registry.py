"""Scene names the command line and the app accept, and how each is built.

A scene is a world, a camera to start from and a scripted camera path for benchmarks.
``stress:N`` is the engine's own stress scene; model scenes join this table as they arrive.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from llmviz.engine.bench import BenchPath
from llmviz.engine.camera import Camera
from llmviz.engine.ecs.world import World

MAX_STRESS = 5_000_000


class SceneError(ValueError):
    """An unknown or malformed scene name; the message lists what is accepted."""


@dataclass
class BuiltScene:
    name: str
    world: World
    start_camera: Callable[[tuple[int, int]], Camera]
    path: BenchPath
    leaf_slots: object  # slots the naive benchmark draws one by one
    is_stress: bool = False
    caption: str = ""
    camera_mode: str = "orbit"  # the window's starting camera mode: "fly" or "orbit"


def _build_stress(name: str, count: int, renderer) -> BuiltScene:
    from llmviz.engine.stress import build_stress

    scene = build_stress(count, renderer=renderer)

    def start(viewport):
        cam = scene.camera_at(0.0)
        cam.viewport = viewport
        return cam

    return BuiltScene(name, scene.world, start, BenchPath(lambda t, cam: scene.camera_at(t, cam)),
                      scene.world.slots(scene.boxes), is_stress=True,
                      caption=f"stress: {count:,} boxes in {len(scene.groups):,} clusters", camera_mode="fly")


def scene_names() -> list[str]:
    return ["stress:N (N boxes, e.g. stress:100000)"]


def parse_scene(name: str) -> tuple[str, int]:
    match = re.fullmatch(r"stress:(\d+)", name.strip())
    if match:
        count = int(match.group(1))
        if not 1 <= count <= MAX_STRESS:
            raise SceneError(f"scene {name!r}: N must be between 1 and {MAX_STRESS:,}")
        return "stress", count
    raise SceneError(f"unknown scene {name!r}; known scenes: {', '.join(scene_names())}")


def build_scene(name: str, renderer=None) -> BuiltScene:
    kind, count = parse_scene(name)
    return _build_stress(name, count, renderer)
