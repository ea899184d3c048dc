"""Plays chapters: a timeline built from the steps' durations, pause points, stepping, and scrubbing.

The runner keeps only a position (chapter, time, playing, held at a pause); everything shown
at that position (camera pose, focus, animation frames, text with live numbers) is computed
from it by ``moment()``. So seeking backwards, stepping, or replaying gives exactly what
playing forwards gave: the animation is replay, as in the LLM Visualization's walkthrough.

Each step's camera frames the blocks the step explains (its ``frame`` ids, else its focus, else
its ``block:`` camera's block) so that they fill the runner's ``window``: the part of the viewport
no panel covers, as the window sets it (``set_view``; `llmviz render --chapter` draws the app and
goes that way too), or the whole viewport (`llmviz render --no-ui --chapter`: no panels). The
step's camera field gives the direction it looks from.

Within a step the camera eases from the previous step's target to this step's over the step's
``move`` seconds; the first step of a chapter starts at its own target, so a chapter plays the
same whichever chapter came before it.

A step may show another model's scene (its ``scene`` field, e.g. GPT-3 after nano-GPT's stack):
its camera, focus and references resolve against that model's layout (built once per id and
cached), ``Moment.scene`` names the model the window must show, and the camera cuts rather than
eases where the scene changes.

A step may also show a scene of its own (``scene = "rag"``, scenes/chapters/showable.py): it has no layout,
so its moment has no focus rows or animations, its camera is one of that scene's presets (none: its start
camera), and its text reads that scene's values, which the window binds when it opens the scene
(``bind_scene``); until they arrive the text is None and ``Moment.waits_for`` says what it waits for.
"""
from __future__ import annotations

import bisect
import functools
from collections import ChainMap
from dataclasses import dataclass, replace

import numpy as np

from llmviz.engine.camera import Camera as EngineCamera
from llmviz.engine.camera_control import CameraTransition, Pose, fit_into_window, frame_boxes, smootherstep
from llmviz.scenes.layout import PRESET_DIRECTION, PRESET_FOV_Y

from . import animations as anim
from .format import Chapter, ChapterError, Step
from .showable import chapter_scene, preset_poses
from .text import ALPHABET_KEY, RenderedText, render_text

FRAME_MARGIN = 1.2   # padding around a framed block or group
END_EPSILON = 1e-9


@dataclass(frozen=True)
class Moment:
    """Everything a chapter shows at one position of its timeline."""
    chapter: int                 # index into the runner's chapters
    chapter_number: int
    step: int                    # 0-based step index
    t: float                     # seconds since the chapter's start
    step_time: float             # seconds since the step's start
    camera: Pose
    look_at: np.ndarray          # the point the step's camera frames (an orbit pivot for the UI)
    focus: tuple                 # tensor / group ids in focus
    focus_rows: np.ndarray       # layout rows of the focused blocks
    dim: bool                    # dim every block not in focus
    animations: tuple            # AnimationFrame per animation of the step
    text: RenderedText | None    # None until the model's values have arrived
    title: str
    waiting: bool                # held at a pause point (or the chapter's end) until Space
    scene: str = ""              # registry id of the model this step shows; the window switches to it
                                 # when it differs from the open scene (camera and focus are in its layout)
    snapshot: int | None = None  # the recording's snapshot the blocks show (resolved), None: the live weights
    plot: tuple | None = None    # (series, marked index or None) the text panel draws, e.g. the training loss
    waits_for: str = "chapter_ui.waiting"  # i18n key: what the text panel says while text is None


def _starts_durations(chapter: Chapter) -> tuple[list[float], list[float]]:
    starts, t = [], 0.0
    for step in chapter.steps:
        starts.append(t)
        t += step.duration
    return starts, [s.duration for s in chapter.steps]


def step_timeline(chapter: Chapter) -> list[tuple[float, float]]:
    """(start, duration) in seconds of every step: the data's durations laid end to end."""
    return list(zip(*_starts_durations(chapter)))


@functools.lru_cache(maxsize=16)
def model_spec(model_id: str):
    from llmviz.models.registry import load_registry

    return load_registry().get(model_id)


@functools.lru_cache(maxsize=16)
def scene_layout(model_id: str):
    """A model's layout, built once per id (GPT-3's takes about 0.1 s)."""
    from llmviz.scenes.layout import layout_model

    return layout_model(model_spec(model_id))


def _moe_extras(session) -> dict:
    """A LiveMoE's routing statistics per layer, as values templates can read, and its alphabet."""
    from llmviz.models.sim import moe_corpus

    extras = {ALPHABET_KEY: moe_corpus.ALPHABET}
    stats = getattr(session, "stats", None)
    if stats is None:
        return extras
    for k, layer in enumerate(stats.layers):
        prefix = f"blocks.{int(layer)}.moe."
        extras[prefix + "load"] = np.asarray(stats.load[k], np.float64)
        extras[prefix + "mean_gate"] = np.asarray(stats.mean_gate[k], np.float64)
        extras[prefix + "aux_loss"] = np.atleast_1d(np.asarray(stats.aux_loss[k], np.float64))
        extras[prefix + "cv"] = np.atleast_1d(np.asarray(stats.cv[k], np.float64))
    return extras


def live_values(live):
    """A values callable for the runner from a live model (nano-GPT, a small MoE, mamba-tiny): the current
    trace over the weights, with the model's alphabet (and, for an MoE, its routing statistics:
    blocks.i.moe.load, .mean_gate, .aux_loss, .cv)."""
    def values():
        session = live.session
        if session.trace is None or session.weights is None:
            return None
        if hasattr(session, "stats"):  # LiveMoE
            return ChainMap(dict(session.trace), _moe_extras(session), dict(session.weights))
        alphabet = getattr(session, "alphabet", None)
        extras = {ALPHABET_KEY: alphabet} if alphabet is not None else {}
        return ChainMap(dict(session.trace), extras, dict(session.weights))
    return values


class ChapterRunner:
    def __init__(self, chapters: list[Chapter], layout, values=None, viewport=(1280, 720), window=None):
        """``values()``: the live model's values (None until they arrive). A chapter with a ``recording``
        reads it through a RecordingReplay (scenes/chapters/recording.py), made when first needed."""
        if not chapters:
            raise ValueError("no chapters to play")
        self.replays: dict = {}  # recording name -> RecordingReplay
        self.chapters = list(chapters)
        self._layouts = {} if layout is None else {getattr(layout, "spec_id", None): layout}
        # the open scene's layout (normally the chapters' own model; None on a scene of its own); others are built
        self.layout = layout if layout is not None else self.layout_for(self.chapters[0].model)
        self.values = values or (lambda: None)
        self.scene_values: dict = {}  # a scene of its own (rag) -> its values callable, bound by the window
        self.viewport = tuple(int(v) for v in viewport)
        self.window = None if window is None else tuple(float(v) for v in window)
        self.chapter = 0
        self.t = 0.0
        self.playing = False
        self.held: int | None = None  # step index the runner waits at (its end), None when not held
        self._timelines = [_starts_durations(c) for c in self.chapters]
        self._shots = [self._step_shots(c) for c in self.chapters]
        self._targets = [self._camera_targets(shots) for shots in self._shots]

    def set_view(self, viewport, window=None) -> bool:
        """The viewport and its free window (x0, y0, x1, y1 pixels, top-left origin; None: all of it)
        the cameras frame into; returns whether that changed (the steps' poses are then new)."""
        viewport = tuple(int(v) for v in viewport)
        window = None if window is None else tuple(float(v) for v in window)
        if viewport == self.viewport and window == self.window:
            return False
        self.viewport, self.window = viewport, window
        self._targets = [self._camera_targets(shots) for shots in self._shots]
        return True

    def retell(self, chapters) -> int:
        """The words of ``chapters`` (the same chapters in another language) in place of these, at the same chapter,
        step and time: only titles, summaries and step texts change, since a translation carries the English file's
        structure. A chapter is matched by model and number and taken only with the same number of steps; returns
        how many were retold."""
        by_key = {(c.model, c.number): c for c in chapters}
        retold, told = [], 0
        for old in self.chapters:
            new = by_key.get((old.model, old.number))
            if new is None or len(new.steps) != len(old.steps):
                retold.append(old)
                continue
            steps = tuple(replace(a, title=b.title, text=b.text) for a, b in zip(old.steps, new.steps))
            retold.append(replace(old, title=new.title, summary=new.summary, steps=steps, language=new.language))
            told += 1
        self.chapters = retold
        return told

    # ------------------------------------------------------------------ timeline
    def timeline(self, chapter: int | None = None) -> list[tuple[float, float]]:
        """(start, duration) of every step of a chapter, in seconds."""
        starts, durations = self._timelines[self.chapter if chapter is None else chapter]
        return list(zip(starts, durations))

    @property
    def current(self) -> Chapter:
        return self.chapters[self.chapter]

    @property
    def duration(self) -> float:
        return self.current.duration

    @property
    def step_index(self) -> int:
        if self.held is not None:
            return self.held
        starts = self._timelines[self.chapter][0]
        return max(0, min(len(starts) - 1, bisect.bisect_right(starts, self.t) - 1))

    @property
    def step(self) -> Step:
        return self.current.steps[self.step_index]

    @property
    def at_end(self) -> bool:
        return self.t >= self.duration - END_EPSILON

    # ------------------------------------------------------------------ playback
    def play(self) -> None:
        self.playing = True

    def pause(self) -> None:
        self.playing = False

    def press_space(self) -> None:
        """Space: go on from a pause point (or into the next chapter at the end); else play/pause."""
        if self.at_end:
            if self.chapter + 1 < len(self.chapters):
                self.go_to(self.chapter + 1)
                self.playing = True
        elif self.held is not None:
            self.held, self.playing = None, True
        else:
            self.playing = not self.playing

    def update(self, dt: float) -> None:
        """Advance by dt seconds while playing; stop at the end of a step with a pause, or of the chapter."""
        if not self.playing or dt <= 0:
            return
        starts, durations = self._timelines[self.chapter]
        new_t = self.t + dt
        for k, step in enumerate(self.current.steps):
            end = starts[k] + durations[k]
            # Crossing from before the end only: after Space at a pause point, t sits on the end and moves on.
            if step.pause and self.t < end - END_EPSILON and new_t >= end - END_EPSILON:
                self.t, self.held, self.playing = end, k, False
                return
        self.t = min(new_t, self.duration)
        if self.at_end:
            self.t, self.held, self.playing = self.duration, len(self.current.steps) - 1, False

    # ------------------------------------------------------------------ navigation
    def seek(self, t: float) -> None:
        """Scrub to t seconds into the current chapter (play state unchanged)."""
        self.t = min(max(0.0, float(t)), self.duration)
        self.held = None

    def go_to(self, chapter: int, step: int = 0) -> None:
        if not 0 <= chapter < len(self.chapters):
            raise IndexError(f"no chapter at index {chapter}")
        self.chapter = chapter
        n = len(self.current.steps)
        if not 0 <= step < n:
            raise IndexError(f"chapter {self.current.number} has steps 1 to {n}")
        self.seek(self._timelines[chapter][0][step])

    def go_to_step_end(self, step: int) -> None:
        """The final state of a step: its camera arrived, its animations complete."""
        starts, durations = self._timelines[self.chapter]
        if not 0 <= step < len(starts):
            raise IndexError(f"chapter {self.current.number} has steps 1 to {len(starts)}")
        self.t, self.held = starts[step] + durations[step], step

    def chapter_index(self, number: int) -> int:
        for i, c in enumerate(self.chapters):
            if c.number == number:
                return i
        raise KeyError(f"no chapter {number} (chapters: {', '.join(str(c.number) for c in self.chapters)})")

    def next_step(self) -> None:
        k = self.step_index
        if k + 1 < len(self.current.steps):
            self.seek(self._timelines[self.chapter][0][k + 1])
        else:
            self.next_chapter()

    def previous_step(self) -> None:
        k = self.step_index
        if k > 0:
            self.seek(self._timelines[self.chapter][0][k - 1])
        elif self.chapter > 0:
            self.go_to(self.chapter - 1, len(self.chapters[self.chapter - 1].steps) - 1)
        else:
            self.seek(0.0)

    def next_chapter(self) -> None:
        if self.chapter + 1 < len(self.chapters):
            self.go_to(self.chapter + 1)

    def previous_chapter(self) -> None:
        self.go_to(max(0, self.chapter - 1))

    # ------------------------------------------------------------------ what is shown
    def scene_of(self, step: int | None = None, chapter: int | None = None) -> str:
        """The model id a step shows (its ``scene``, else its chapter's model)."""
        c = self.chapters[self.chapter if chapter is None else chapter]
        return c.scene_of(self.step_index if step is None else step)

    def bind_scene(self, scene) -> None:
        """The scene the window shows now: its values for the steps it shows. A scene of its own gives its
        values callable (the retrieval scene's last result); the chapters' own model, opened anew after a step on
        another scene, gives its live model's values (the one the runner started with was closed)."""
        own = chapter_scene(scene.name)
        if own is not None:
            from .showable import scene_values

            self.scene_values[own.id] = scene_values(scene)
        elif scene.model is not None and scene.live is not None and \
                all(c.model == scene.model.layout.spec_id for c in self.chapters):
            self.values = live_values(scene.live)

    def layout_for(self, model_id: str):
        """The layout a step's camera, focus and packets resolve against; built once per model id (None for a
        scene of its own, which has none)."""
        if chapter_scene(model_id) is not None:
            return None
        if model_id not in self._layouts:
            self._layouts[model_id] = scene_layout(model_id)
        return self._layouts[model_id]

    def _lens(self) -> EngineCamera:
        return EngineCamera(fov_y=PRESET_FOV_Y, viewport=self.viewport)

    def _step_shots(self, chapter: Chapter) -> list:
        """What each step's camera shows, independent of the viewport: (direction, boxes) where boxes
        are the (centers, half extents) of the blocks it frames, or (pose, point) for a preset or pose
        shown as it stands; None keeps the previous step's view."""
        shots, direction = [], -PRESET_DIRECTION
        for k, step in enumerate(chapter.steps):
            cam, layout = step.camera, self.layout_for(chapter.scene_of(k))
            own = chapter_scene(chapter.scene_of(k))
            if own is not None:  # the scene's preset as it stands (its start camera without one), moved into the window
                direction, fixed = self._standing(*preset_poses(own.id)[cam.preset if cam is not None else own.start])
                shots.append(("fixed", fixed))
                continue
            fixed = None
            if cam is not None and (cam.preset is not None or cam.eye is not None):
                # a preset a live scene adds when it is built (vit-tiny's "picture") is not in a layout made
                # without it (a structure-only check): the overview stands in; the chapter files' names are
                # checked against the known presets when they are read (scenes/chapters/format.py)
                presets = layout.presets
                eye, point = (presets.get(cam.preset, presets["overview"]) if cam.preset is not None
                              else (cam.eye, cam.target))
                direction, fixed = self._standing(eye, point)
            elif cam is not None:
                direction = -PRESET_DIRECTION
            ids = step.frame or step.focus or ((cam.block,) if cam is not None and cam.block else ())
            if ids:
                shots.append(("boxes", direction, self._boxes(ids, layout)))
            else:
                shots.append(("fixed", fixed) if fixed is not None else None)
        return shots

    def _standing(self, eye, point) -> tuple[np.ndarray, tuple]:
        """(view direction, (pose, point)) of a camera at `eye` looking at `point`, shown as it stands."""
        eye, point = np.asarray(eye, np.float64), np.asarray(point, np.float64)
        lens = self._lens()
        lens.position = eye
        lens.look_at(point)
        return point - eye, (Pose.of(lens), point)

    def _boxes(self, ids, layout) -> tuple[np.ndarray, np.ndarray]:
        """Centers and half extents of the blocks named or lying under the named groups (a group
        without blocks: its own box)."""
        centers, halves = [], []
        for name in ids:
            rows = self.focus_rows([name], layout)
            if len(rows):
                centers.append(layout.center[rows].astype(np.float64))
                halves.append(layout.size[rows].astype(np.float64) / 2.0)
            else:
                g = layout.group_index(name)
                centers.append(layout.group_center[g][None].astype(np.float64))
                halves.append(layout.group_size[g][None].astype(np.float64) / 2.0)
        return np.concatenate(centers), np.concatenate(halves)

    def _camera_targets(self, shots) -> list[tuple[Pose, np.ndarray]]:
        """Each step's camera target (a pose and the point it frames) for this viewport and window."""
        targets, last, lens = [], None, self._lens()
        for shot in shots:
            if shot is not None and shot[0] == "boxes":
                _, direction, (centers, halves) = shot
                lo, hi = (centers - halves).min(axis=0), (centers + halves).max(axis=0)
                last = (frame_boxes(lens, centers, halves, direction, self.window, FRAME_MARGIN), (lo + hi) / 2.0)
            elif shot is not None:
                pose, point = shot[1]
                last = (fit_into_window(pose, point, lens, self.window) if self.window is not None else pose, point)
            targets.append(last)
        return targets

    def camera_at(self, step: int, step_time: float) -> tuple[Pose, np.ndarray]:
        targets = self._targets[self.chapter]
        target, point = targets[step]
        if step == 0 or self.current.scene_of(step) != self.current.scene_of(step - 1):
            return target, point  # a chapter's start, or a cut to another model's scene
        start = targets[step - 1][0]
        move = self.current.steps[step].move
        s = 1.0 if move <= 0 or step_time >= move else smootherstep(step_time / move)
        if s >= 1.0:
            return target, point
        return CameraTransition(start, target, move).pose_at(s), point

    def focus_rows(self, ids, layout=None) -> np.ndarray:
        """Layout rows of blocks named directly or lying anywhere under a named group."""
        layout = layout if layout is not None else self.layout
        mask = np.zeros(len(layout.ids), bool)
        for name in ids:
            try:
                mask[layout.index(name)] = True
                continue
            except KeyError:
                pass
            g = layout.group_index(name)
            current = layout.group.copy()
            while (current >= 0).any():
                mask |= current == g
                current = np.where(current >= 0, layout.group_parent[np.maximum(current, 0)], -1)
        return np.flatnonzero(mask)

    def _shape(self, tensor: str, values, layout=None) -> tuple[int, int]:
        if values is not None and tensor in values:
            shape = np.shape(values[tensor])
            return (shape[0], 1) if len(shape) == 1 else (shape[0], shape[1]) if len(shape) == 2 else (1, 1)
        layout = layout if layout is not None else self.layout
        row = layout.index(tensor)
        return int(layout.rows[row]), int(layout.cols[row])

    def _point(self, tensor: str, token: int, layout=None) -> np.ndarray:
        """Front face of a tensor's block at a token's row (its centre for one-row blocks)."""
        layout = layout if layout is not None else self.layout
        row = layout.index(tensor)
        center, size, rows = layout.center[row], layout.size[row], int(layout.rows[row])
        point = center.astype(np.float64).copy()
        if rows > 1:
            point[1] = center[1] + size[1] / 2 - (min(token, rows - 1) + 0.5) * size[1] / rows
        point[2] = center[2] + size[2] / 2
        return point

    def _frame(self, a, step: Step, step_time: float, values, layout=None) -> anim.AnimationFrame:
        duration = a.duration if a.duration is not None else max(0.0, step.duration - a.delay)
        p = anim.progress_at(step_time, a.delay, duration)
        params = a.params
        if a.kind == "fill":
            return anim.fill(params["tensor"], self._shape(params["tensor"], values, layout), p, params["order"])
        if a.kind == "add":
            return anim.add(params["tensor"], params["a"], params["b"],
                            self._shape(params["tensor"], values, layout), p)
        if a.kind == "causal_mask":
            return anim.causal_mask(params["tensor"], self._shape(params["tensor"], values, layout), p)
        if a.kind == "split":
            return anim.split(params["tensor"], _index(params["index"], values), params["axis"], p)
        token = params["token"]
        return anim.packet(list(params["path"]), [self._point(t, token, layout) for t in params["path"]], p)

    def animated_values(self, moment: Moment) -> dict:
        """tensor id -> the array its block shows at this moment, for the tensors the animations change
        (none on a step shown on another model's scene: the live values are the chapter model's)."""
        if self.chapters[moment.chapter].steps[moment.step].scene is not None:
            return {}
        values = self.values()
        out = {}
        for frame in moment.animations:
            if values is not None and frame.tensor in values:
                shown = anim.shown_values(frame, values[frame.tensor])
                if shown is not None:
                    out[frame.tensor] = shown
        return out

    def moment(self) -> Moment:
        """This instant of the chapter; a problem met while building it (a template that cannot be
        filled from these values, an index out of range) is a ChapterError naming the step's file:line."""
        try:
            return self._moment()
        except ChapterError:
            raise
        except (LookupError, ValueError, TypeError) as err:
            step = self.current.steps[self.step_index]
            raise ChapterError(self.current.path, step.line, f"step {self.step_index + 1}: {err}") from None

    def _moment(self) -> Moment:
        k = self.step_index
        step = self.current.steps[k]
        starts = self._timelines[self.chapter][0]
        step_time = min(step.duration, max(0.0, self.t - starts[k]))
        pose, point = self.camera_at(k, step_time)
        scene = self.current.scene_of(k)
        layout = self.layout_for(scene)
        offer = chapter_scene(scene)
        if offer is not None:  # a scene of its own: its values once the window opened it and they arrived
            values = self.scene_values.get(offer.id, lambda: None)()
            text = render_text(step.text, values) if values is not None else None
            return Moment(self.chapter, self.current.number, k, self.t, step_time, pose, point, (),
                          np.zeros(0, np.int64), False, (), text, step.title,
                          self.held is not None or (self.at_end and not self.playing), scene,
                          waits_for=offer.waiting)
        own = step.scene is None
        values = self.values() if own else None  # another model's scene has no live values here
        snapshot = None
        if own and self.current.recording is not None:
            replay = self.replay(self.current.recording)
            if replay.error:
                raise ChapterError(self.current.path, step.line, replay.error)
            values = replay.values(values, step.snapshot)
            if step.snapshot is not None and values is not None:
                snapshot = int(values["record.first_index"][0]) if step.snapshot == "first_correct" \
                    else int(step.snapshot) % len(values["record.steps"])
        frames = tuple(self._frame(a, step, step_time, values, layout) for a in step.animations)
        spec = _spec_or_none(scene)
        text = render_text(step.text, values, spec) if (values is not None or not own) else None
        plot = None
        if step.plot is not None and values is not None:
            plot = (np.asarray(values[step.plot], np.float64),
                    int(values["record.step"][0]) if "record.step" in values else None)
        return Moment(self.chapter, self.current.number, k, self.t, step_time, pose, point, step.focus,
                      self.focus_rows(step.focus, layout), step.dim and bool(step.focus), frames, text, step.title,
                      self.held is not None or (self.at_end and not self.playing), scene, snapshot, plot)

    # ------------------------------------------------------------------ recordings
    def replay(self, name: str):
        """The RecordingReplay of a recording the chapters name (its worker starts on the first request)."""
        if name not in self.replays:
            from .recording import RecordingReplay

            self.replays[name] = RecordingReplay(name)
        return self.replays[name]

    def poll_replays(self) -> int:
        """Collect what the recordings' workers finished; returns a number that changes when anything arrived."""
        for replay in self.replays.values():
            replay.poll()
        return sum(r.version for r in self.replays.values())

    def snapshot_arrays(self, moment: Moment) -> dict | None:
        """tensor id -> array of the snapshot a moment shows: its weights and its trace (None: live weights)."""
        if moment.snapshot is None:
            return None
        chapter = self.chapters[moment.chapter]
        replay = self.replays.get(chapter.recording)
        return replay.arrays(self.values(), chapter.steps[moment.step].snapshot) if replay else None

    def close(self) -> None:
        for replay in self.replays.values():
            replay.close()
        self.replays.clear()


def _spec_or_none(model_id: str):
    try:
        return model_spec(model_id)
    except (LookupError, ValueError):
        return None


def _index(index, values) -> int:
    """A split's row or column: a literal, or read from the trace ("tokens[2]"), 0 until values arrive."""
    if isinstance(index, int):
        return index
    name, _, rest = index.partition("[")
    if values is None or name not in values:
        return 0
    return int(np.ravel(values[name])[int(rest.rstrip("]"))])
