"""Puts a scene at one moment of a chapter (the camera, the focus and the dimming): `llmviz render --no-ui --chapter`."""
from __future__ import annotations

import numpy as np

from llmviz.scenes.model_paths import preset_camera

from .format import ChapterError, Names, load_chapters, model_names
from .runner import ChapterRunner, live_values


def apply_focus(model_scene, flags, focus_rows: np.ndarray, dim: bool) -> None:
    """The chapter's layer of the engine's flags (FlagLayers): the focused blocks lit and, with
    ``dim``, every other block dimmed; no focus (or a scene with no model: the retrieval scene) clears the layer."""
    if model_scene is None:
        flags.clear("chapter")
        return
    slots = model_scene.block_slots
    focus_rows = np.asarray(focus_rows, np.int64)
    if len(focus_rows) == 0:
        flags.clear("chapter")
        return
    rest = np.ones(len(slots), bool)
    rest[focus_rows] = False
    flags.set("chapter", slots[focus_rows], dim=slots[rest] if dim else None)


def _all_chapters(layout):
    """Every bundled chapter, each validated against its own model (this scene's layout for its own)."""
    own = Names.of_layout(layout)
    return load_chapters(lambda model: own if model == layout.spec_id else model_names(model))


def chapter_runner(scene, viewport, window=None) -> ChapterRunner:
    """A runner over the bundled chapters for a built model scene, validated against its layout; its
    cameras frame into ``window`` of the viewport (None: all of it)."""
    layout = scene.model.layout
    everything = _all_chapters(layout)
    chapters = [c for c in everything if c.model == layout.spec_id]
    if not chapters:
        others = sorted({c.model for c in everything})
        raise ValueError(f"no chapters for {layout.spec_id!r} (chapters play on {', '.join(others)})")
    values = live_values(scene.live) if scene.live is not None else None
    return ChapterRunner(chapters, layout, values, viewport, window)


def apply_chapter_moment(scene, engine, chapter_number: int, step_number: int, window=None):
    """Show the end of step ``step_number`` (1-based, as `llmviz chapters` lists) of chapter ``chapter_number``.

    Sets the engine camera to the step's final pose and the blocks' focus flags; returns the camera.
    The step's blocks fill ``window`` (x0, y0, x1, y1 pixels of the camera's viewport), by default the
    whole image: `llmviz render --no-ui --chapter` has no panels, so its picture is the step's blocks as
    large as the margin allows. (`llmviz render --chapter` draws the whole app instead: its ChapterPlayer
    frames the same blocks into the part of the view the panels leave free, as the window does.)
    ValueError (ChapterError included) with a one-line message for an unknown chapter or step.
    """
    from .showable import chapter_scene

    if scene.model is None and chapter_scene(scene.name) is None:
        raise ValueError(f"--chapter needs a model scene, not {scene.name!r}")
    camera = engine.camera
    layout = scene.model.layout if scene.model is not None else None   # None: a scene of its own (rag)
    here = layout.spec_id if layout is not None else scene.name
    everything = _all_chapters(layout) if layout is not None else load_chapters(model_names)
    found = [c for c in everything if c.number == chapter_number]
    if not found:
        raise ValueError(f"--chapter {chapter_number} --step {step_number}: no chapter {chapter_number} "
                         f"(chapters: {', '.join(str(c.number) for c in everything)})")
    chapter = found[0]
    own = chapter.model == here
    values = live_values(scene.live) if own and scene.live is not None else None
    runner = ChapterRunner([chapter], layout, values, camera.viewport, window)  # other models' layouts: built
    runner.bind_scene(scene)
    try:
        moment = _step_end_moment(runner, chapter, here, step_number)
    finally:
        runner.close()   # a recording's replay worker started by the moment: left running, it aborts the exit
    if layout is not None:
        forward_point = moment.camera.position + np.asarray(_forward(moment.camera), np.float64)
        preset_camera((moment.camera.position, forward_point), camera.viewport, layout, camera)
    moment.camera.apply(camera)  # the exact orientation, not one rebuilt from a look-at
    apply_focus(scene.model, engine.flags, moment.focus_rows, moment.dim)
    engine.flags()
    return camera


def _step_end_moment(runner, chapter, here: str, step_number: int):
    """The runner's moment at the end of step ``step_number`` (1-based) of ``chapter`` shown on scene ``here``."""
    chapter_number = chapter.number
    try:
        runner.go_to_step_end(step_number - 1)
    except IndexError as err:
        raise ValueError(f"--chapter {chapter_number} --step {step_number}: {err.args[0]}") from None
    shown = runner.scene_of()
    if shown != here:
        what = f"chapter {chapter_number}" if shown == chapter.model else f"chapter {chapter_number} step {step_number}"
        raise ValueError(f"--chapter {chapter_number} --step {step_number}: {what} shows {shown}, "
                         f"not {here}: use --scene {shown}")
    return runner.moment()


def _forward(pose) -> np.ndarray:
    from llmviz.engine import math3d

    return math3d.quat_rotate(pose.orientation, [0.0, 0.0, -1.0])


__all__ = ["apply_chapter_moment", "apply_focus", "chapter_runner", "ChapterError"]
