"""Chapters in the window: a ChapterRunner's moment driving the camera rig, the focus flags and the shown values.

Each frame ``update(dt)`` gives the runner the rig's viewport and free window (the part no panel
covers: the step's blocks are framed to fill it; a change re-frames with a smooth move), advances
the runner and, when the moment changed: eases the camera to a
jumped-to position (a step, chapter or scrub) through the rig, or follows the step's own camera
path while playing; writes the focus/dim flags when the step changes; writes the animations'
arrays to their blocks (and, when an animation stops changing a tensor, the live trace's values
back). ``close()`` puts the live values and flags back. Hovering a block reference in the text
lights its blocks with ``light_reference``. Flags go through the engine's FlagLayers (layers
"chapter" and "chapter_reference"), so hover and focus never overwrite them. A paused chapter
costs nothing per frame: the moment is recomputed only when the runner's time, step or the
live values changed.

A step may show a scene of its own with no model (the retrieval scene, ``scene.model`` None): there the
player moves the camera and shows the text from that scene's values, and touches no blocks.
"""
from __future__ import annotations

from collections import ChainMap

import numpy as np

from llmviz.engine.camera_control import Pose
from llmviz.scenes.chapters.apply import apply_focus, chapter_runner

JUMP_SECONDS = 0.8  # a step / chapter jump is a smooth move of this length


class ChapterPlayer:
    def __init__(self, scene, engine, rig, renderer, viewport, runner=None):
        """``runner``: carry a chapter on in another scene (a step that shows another model: the window
        switches to it and the same runner, at the same moment, drives it there)."""
        self.scene, self.engine, self.rig, self.renderer = scene, engine, rig, renderer
        # ValueError where the model has no chapters
        self.runner = runner if runner is not None else chapter_runner(scene, viewport, rig.window)
        self.runner.bind_scene(scene)  # this scene's values for the steps it shows
        self.moment = None
        self._jump = True
        self._last_pose: Pose | None = None
        self._flags_key = None
        self._values_key = None
        self._written: set[str] = set()
        self._moment_key = None
        self._snapshot_key = None  # what snapshot's weights the blocks show (None: the live model's)
        self.keep_input = False    # the input was given (render --text): a chapter's own input does not replace it
        self._input_for = None     # the chapter whose input the live model was given

    # ------------------------------------------------------------------ controls (keys, panels)
    def press_space(self) -> None:
        before = self.runner.chapter
        self.runner.press_space()
        self._jump |= self.runner.chapter != before

    def _nav(self, fn, *args) -> None:
        fn(*args)
        self._jump = True

    def next_step(self):
        self._nav(self.runner.next_step)

    def previous_step(self):
        self._nav(self.runner.previous_step)

    def next_chapter(self):
        self._nav(self.runner.next_chapter)

    def previous_chapter(self):
        self._nav(self.runner.previous_chapter)

    def go_to(self, chapter: int, step: int = 0):
        self._nav(self.runner.go_to, chapter, step)

    def seek(self, t: float):
        self._nav(self.runner.seek, t)

    def retell(self, chapters) -> None:
        """The chapter's words in another language (the same chapters, loaded again): shown from this frame on."""
        if self.runner.retell(chapters):
            self._moment_key = None

    @property
    def settled(self) -> bool:
        """The moment is shown in full: its text filled in and, on a recording's step, its snapshot on the blocks
        (a headless render waits for this)."""
        m = self.moment
        return m is not None and m.text is not None and (
            m.snapshot is None or (self._snapshot_key is not None and self._snapshot_key[0] == m.snapshot))

    def give_chapter_input(self) -> None:
        """A chapter that names an input (chapter 19's question) has its live model read it when the chapter starts
        on that model's scene, and again when the window comes back to it from another scene's step (the scene is
        built afresh, on its own text); a text typed meanwhile stays until then, and a given one (keep_input)
        always."""
        runner = self.runner
        chapter = runner.current
        if chapter.input is None or self.keep_input or self._input_for == runner.chapter:
            return
        model = self.scene.model
        if model is None or model.layout.spec_id != chapter.model:
            return
        from llmviz.scenes.live import input_setter

        setter = input_setter(self.scene.live)
        self._input_for = runner.chapter
        if setter is not None:
            setter(chapter.input)   # a text the model cannot read (a problem line) leaves its own

    # ------------------------------------------------------------------ per frame
    def update(self, dt: float, steering: bool = False) -> None:
        runner = self.runner
        self._jump |= runner.set_view(self.rig.camera.viewport, self.rig.window)
        runner.update(dt)
        self.give_chapter_input()
        live = self.scene.live
        replayed = runner.poll_replays()  # a recording's snapshots, computed on their own worker
        key = (runner.chapter, runner.step_index, runner.t, live.values_version if live is not None else 0, replayed)
        if key == self._moment_key and not self._jump:
            return  # paused, nothing new: no template parsing, no copies, no masks this frame
        self._moment_key = key
        m = self.moment = runner.moment()
        pose = m.camera
        changed = self._last_pose is None or not (np.allclose(pose.position, self._last_pose.position)
                                                  and np.allclose(pose.orientation, self._last_pose.orientation))
        if changed:
            # The runner framed the pose into the rig's free window already (set_view above).
            if self._jump:
                self.rig.move_to(pose.position, pose.orientation, JUMP_SECONDS)
            elif self.rig.transition is None and not steering:
                pose.apply(self.rig.camera)  # the step's own eased path, frame by frame
            self.rig.orbit.target = np.array(m.look_at, np.float64)
            self._last_pose = pose
        self._jump = False
        key = (m.chapter, m.step, m.dim)
        if key != self._flags_key:
            apply_focus(self.scene.model, self.engine.flags, m.focus_rows, m.dim)
            self._flags_key = key
        self._write_values(m)
        self._write_snapshot(m, replayed)

    def _write_snapshot(self, m, replayed: int) -> None:
        """A step of a training recording: that snapshot's weights and trace on the blocks (the live model's
        back once a step shows none); written when the snapshot, its values or the live values change."""
        live = self.scene.live
        key = (m.snapshot, replayed, live.values_version if live is not None else 0)
        if m.snapshot is None and self._snapshot_key is None or key == self._snapshot_key:
            return
        if not self._shown_here(m):
            return
        arrays = self.runner.snapshot_arrays(m) if m.snapshot is not None else None
        if arrays is None:
            if m.snapshot is None:
                self._restore_live()
            return
        self.scene.model.write_values(self.renderer, arrays)
        self._show_tokens(arrays.get("tokens"))
        self._snapshot_key = key

    def _shown_here(self, m) -> bool:
        """The moment's step shows this scene's model (not another model's, nor a scene without blocks)."""
        model = self.scene.model
        return model is not None and (not m.scene or m.scene == model.layout.spec_id)

    def _restore_live(self) -> None:
        if self.scene.model is None:
            return
        source = self._live_source()
        if source is not None:
            self.scene.model.write_values(self.renderer, source)
            self._show_tokens(source.get("tokens"))
        self._snapshot_key = None

    def _show_tokens(self, tokens) -> None:
        labels = getattr(self.scene.live, "axis_labels", None)
        if labels is not None and tokens is not None:
            labels.show_tokens(tokens)

    def _live_source(self):
        live = self.scene.live
        session = getattr(live, "session", None)
        if getattr(session, "trace", None) is None:
            return None
        return ChainMap(dict(session.trace), dict(getattr(session, "weights", None) or {}))

    def _write_values(self, m) -> None:
        live = self.scene.live
        version = live.values_version if live is not None else 0
        key = (m.chapter, m.step, round(m.t, 4), version)
        if key == self._values_key:
            return
        self._values_key = key
        if not self._shown_here(m):
            return  # this step shows another model (or a scene without blocks): the window is switching to it
        arrays = self.runner.animated_values(m)
        stale = self._written - set(arrays)
        if stale:
            self._restore(stale)
        if arrays:
            self.scene.model.write_values(self.renderer, arrays)
        self._written = set(arrays)

    def _restore(self, ids) -> None:
        if self.scene.model is None:
            return
        source = self._live_source()
        if source is not None:
            self.scene.model.write_values(self.renderer, source, ids=[i for i in ids if i in source])

    def light_reference(self, target: str | None) -> None:
        """Light the blocks a hovered text reference names (None: only the step's own flags)."""
        if target is None or self.scene.model is None:
            self.engine.flags.clear("chapter_reference")
            return
        try:
            rows = self.runner.focus_rows([target])
        except KeyError:
            return
        self.engine.flags.set("chapter_reference", self.scene.model.block_slots[rows])

    def close(self) -> None:
        """Leave the chapter: the live values back on the animated blocks, no focus flags."""
        if self._written:
            self._restore(self._written)
        self._written = set()
        if self._snapshot_key is not None:
            self._restore_live()
        self.runner.close()  # a recording's worker; reopened on the next request
        apply_focus(self.scene.model, self.engine.flags, np.array([], np.int64), False)
        self.engine.flags.clear("chapter_reference")
