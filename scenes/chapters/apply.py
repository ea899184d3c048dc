"""Puts a scene at one moment of a chapter (the camera, the focus and the dimming): `llmviz render --chapter`."""
from __future__ import annotations

import numpy as np

from llmviz.engine.ecs.components import FLAG_DIMMED, FLAG_HIGHLIGHTED
from llmviz.scenes.model_paths import preset_camera

from .format import ChapterError, Names, load_chapters
from .runner import ChapterRunner, live_values


def apply_focus(model_scene, world, focus_rows: np.ndarray, dim: bool) -> None:
    """Highlight the focused blocks and, with ``dim``, dim every other block; no focus clears both."""
    flags = world["renderable"]["flags"]
    slots = model_scene.block_slots
    both = flags.dtype.type(FLAG_HIGHLIGHTED | FLAG_DIMMED)
    flags[slots] &= ~both  # numpy uint8 complement stays in range
    if len(focus_rows) == 0:
        return
    if dim:
        flags[slots] |= flags.dtype.type(FLAG_DIMMED)
        flags[slots[focus_rows]] &= ~flags.dtype.type(FLAG_DIMMED)
    flags[slots[focus_rows]] |= flags.dtype.type(FLAG_HIGHLIGHTED)


def chapter_runner(scene, viewport) -> ChapterRunner:
    """A runner over the bundled chapters for a built model scene, validated against its layout."""
    layout = scene.model.layout
    chapters = [c for c in load_chapters(Names.of_layout(layout)) if c.model == layout.spec_id]
    if not chapters:
        raise ValueError(f"no chapters for {layout.spec_id!r}")
    values = live_values(scene.live) if scene.live is not None else None
    return ChapterRunner(chapters, layout, values, viewport)


def apply_chapter_moment(scene, engine, chapter_number: int, step_number: int):
    """Show the end of step ``step_number`` (1-based, as `llmviz chapters` lists) of chapter ``chapter_number``.

    Sets the engine camera to the step's final pose and the blocks' focus flags; returns the camera.
    ValueError (ChapterError included) with a one-line message for an unknown chapter or step.
    """
    if scene.model is None:
        raise ValueError(f"--chapter needs a model scene, not {scene.name!r}")
    camera = engine.camera
    runner = chapter_runner(scene, camera.viewport)
    try:
        runner.go_to(runner.chapter_index(chapter_number))
        runner.go_to_step_end(step_number - 1)
    except (KeyError, IndexError) as err:
        raise ValueError(f"--chapter {chapter_number} --step {step_number}: {err.args[0]}") from None
    moment = runner.moment()
    forward_point = moment.camera.position + np.asarray(_forward(moment.camera), np.float64)
    preset_camera((moment.camera.position, forward_point), camera.viewport, runner.layout, camera)
    moment.camera.apply(camera)  # the exact orientation, not one rebuilt from a look-at
    apply_focus(scene.model, scene.world, moment.focus_rows, moment.dim)
    return camera


def _forward(pose) -> np.ndarray:
    from llmviz.engine import math3d

    return math3d.quat_rotate(pose.orientation, [0.0, 0.0, -1.0])


__all__ = ["apply_chapter_moment", "apply_focus", "chapter_runner", "ChapterError"]
