"""Puts a scene at one moment of a chapter (the camera, the focus and the dimming): `llmviz render --chapter`."""
from __future__ import annotations

import numpy as np

from llmviz.engine.ecs.components import FLAG_DIMMED, FLAG_HIGHLIGHTED
from llmviz.scenes.model_paths import preset_camera

from .format import ChapterError, Names, load_chapters, model_names
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


def _all_chapters(layout):
    """Every bundled chapter, each validated against its own model (this scene's layout for its own)."""
    own = Names.of_layout(layout)
    return load_chapters(lambda model: own if model == layout.spec_id else model_names(model))


def chapter_runner(scene, viewport) -> ChapterRunner:
    """A runner over the bundled chapters for a built model scene, validated against its layout."""
    layout = scene.model.layout
    everything = _all_chapters(layout)
    chapters = [c for c in everything if c.model == layout.spec_id]
    if not chapters:
        others = sorted({c.model for c in everything})
        raise ValueError(f"no chapters for {layout.spec_id!r} (chapters play on {', '.join(others)})")
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
    layout = scene.model.layout
    everything = _all_chapters(layout)
    found = [c for c in everything if c.number == chapter_number]
    if not found:
        raise ValueError(f"--chapter {chapter_number} --step {step_number}: no chapter {chapter_number} "
                         f"(chapters: {', '.join(str(c.number) for c in everything)})")
    chapter = found[0]
    own = chapter.model == layout.spec_id
    values = live_values(scene.live) if own and scene.live is not None else None
    runner = ChapterRunner([chapter], layout, values, camera.viewport)  # other models' layouts: built
    try:
        runner.go_to_step_end(step_number - 1)
    except IndexError as err:
        raise ValueError(f"--chapter {chapter_number} --step {step_number}: {err.args[0]}") from None
    shown = runner.scene_of()
    if shown != layout.spec_id:
        what = f"chapter {chapter_number}" if shown == chapter.model else f"chapter {chapter_number} step {step_number}"
        raise ValueError(f"--chapter {chapter_number} --step {step_number}: {what} shows {shown}, "
                         f"not {layout.spec_id}: use --scene {shown}")
    moment = runner.moment()
    forward_point = moment.camera.position + np.asarray(_forward(moment.camera), np.float64)
    preset_camera((moment.camera.position, forward_point), camera.viewport, layout, camera)
    moment.camera.apply(camera)  # the exact orientation, not one rebuilt from a look-at
    apply_focus(scene.model, scene.world, moment.focus_rows, moment.dim)
    return camera


def _forward(pose) -> np.ndarray:
    from llmviz.engine import math3d

    return math3d.quat_rotate(pose.orientation, [0.0, 0.0, -1.0])


__all__ = ["apply_chapter_moment", "apply_focus", "chapter_runner", "ChapterError"]
