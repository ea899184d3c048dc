"""The chapter file format (TOML): schema, loading and validation, with errors that name the file and line.

A chapter is data: a title, the model it explains, and a list of ``[[step]]`` tables. Each step
has text (numbers templated from the live trace, block references that light up on hover), a
duration in seconds, and optionally a camera move, a focus set, animations and a pause::

    title = "Embedding"
    model = "nano-gpt"

    [[step]]
    title = "Two lookups"
    text = "Token {letter tokens[0]} picks row {value tokens[0]} of [[embed.tok.weight|E_token]]."
    duration = 4.0
    camera = "preset:embedding"       # or "block:embed.out" (a tensor or group id), or
                                      # { eye = [x, y, z], target = [x, y, z] }
    focus = ["embed.tok.weight", "embed.tok"]   # tensor or group ids; dim = false keeps the rest lit
    frame = ["model"]                 # optional: what the camera frames, when not the focus
    pause = true                      # wait for Space at the end of the step
    scene = "gpt-2-small"             # optional: show another model's scene for this step (a registry
                                      # id; default the chapter's model). Camera, focus and references
                                      # resolve against that model's layout; its text may only use the
                                      # spec templates ({layers}, {d_model}, {heads}, {param_count}, ...).
                                      # Or a scene of its own (scenes/chapters/showable.py: "rag", the
                                      # retrieval scene): no focus, frame or animations there (it has no
                                      # blocks), a camera only one of its presets (none: its start camera),
                                      # its text reading only its values ({value rag.hit.score[0]}, {text rag.answer})

    [[step.animate]]
    kind = "split"                    # split | add | fill | causal_mask | packet
    tensor = "embed.tok.weight"
    index = "tokens[0]"               # an int, or a trace reference read at play time

Every step's camera frames the blocks the step explains: its ``frame`` ids, else its focus, else
the block or group its ``block:`` camera names. They fill the part of the view no panel covers
(margin ``runner.FRAME_MARGIN``). The camera field says where the camera looks from: a preset's or a
pose's direction, or for ``block:`` the presets' view from above right; a step without one keeps the
last direction (and, framing nothing of its own, the last view). A preset or pose on a step that
frames nothing is shown as it stands, moved into the free part of the view.

tomllib gives no positions for values, so lines are found in the source text: the line of a
step's ``[[step]]`` header, of a key inside it, or of the offending text itself.
"""
from __future__ import annotations

import functools
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .showable import chapter_scene
from .text import TemplateError, check_template

ANIMATION_FIELDS = {
    "split": {"tensor": str, "index": (int, str), "axis": str},
    "add": {"tensor": str, "a": str, "b": str},
    "fill": {"tensor": str, "order": str},
    "causal_mask": {"tensor": str},
    "packet": {"path": list, "token": int},
}
ANIMATION_REQUIRED = {"split": {"tensor", "index"}, "add": {"tensor", "a", "b"}, "fill": {"tensor"},
                      "causal_mask": {"tensor"}, "packet": {"path"}}
ANIMATION_TIMING = {"kind": str, "delay": (int, float), "duration": (int, float)}
FILL_ORDERS = ("rows", "columns", "cells")
STEP_FIELDS = {"title": str, "text": str, "duration": (int, float), "camera": (str, dict),
               "move": (int, float), "focus": list, "dim": bool, "pause": bool, "animate": list,
               "scene": str, "frame": list, "snapshot": (int, str), "plot": str}
CHAPTER_FIELDS = {"title": str, "model": str, "summary": str, "step": list, "recording": str, "input": str}
MAX_INPUT_CHARS = 200  # a chapter's input is one question or phrase for its live model
DEFAULT_MOVE = 1.5  # seconds a camera move takes, unless the step says otherwise
# Values of an MoE layer a live trace (and runner.live_values) provides besides its blocks: the router's
# softmax and top-k choice, and the routing statistics (tokens per expert, mean gate, auxiliary loss, cv).
MOE_VALUES = ("probs", "topk", "load", "mean_gate", "aux_loss", "cv")
# Values whisper-tiny's live trace provides besides its blocks (scenes/whisper_live.py STAGE_IDS): the clip, the
# feature stages before the spectrogram block, the token timings and probabilities, the alignment heads.
AUDIO_VALUES = ("input.wave", "stage.power", "stage.mel", "stage.log", "stage.floored", "timing.starts",
                "timing.ends", "timing.path", "token.probabilities", "alignment.heads", "clip.info", "timing.alignment",
                "panel.picture")
AUDIO_PRESETS = ("listening",)   # the camera on the 3D strips beside the spectrogram (scenes/whisper_alignment3d.py)
# What clip-tiny's live scene adds beside its blocks (scenes/clip_live.py): the similarity matrix, the embedding
# space's figures, and the camera presets of the two (scenes/clip_space.py).
CLIP_VALUES = ("clip.matrix", "clip.matrix.probs", "clip.embed.pictures", "clip.embed.captions", "clip.space.axes",
               "clip.space.share", "clip.space.gallery", "clip.space.captions", "clip.space.picture", "clip.space.yours")
CLIP_PRESETS = ("similarity matrix", "embedding space 3D")
# What vit-tiny's live scene adds beside its blocks (scenes/vit_live.py, vit_picture.py): the rollout, the
# position-similarity maps, the picture as the model reads it, and the camera preset on the 3D picture.
VIT_VALUES = ("rollout", "embed.pos.similarity", "input.rgb")
VIT_PRESETS = ("picture",)
_REFERENCE = re.compile(r"([A-Za-z_][\w.]*)\[(-?\d{1,6})\]")  # fullmatch: no trailing newline
MAX_CHAPTER_BYTES = 1 << 20  # a chapter is a few KB of text
MAX_NESTING = 16             # tables and lists inside one another; a chapter needs 3
MAX_STEPS = 500
MAX_TOKEN = 4_095            # a packet's token position; the live models hold at most 64


class ChapterError(ValueError):
    """A problem in a chapter file; prints as "file:line: problem"."""

    def __init__(self, file, line: int, problem: str):
        from llmviz.common.text import one_line

        self.file, self.line, self.problem = str(file), int(line), one_line(problem)
        super().__init__(one_line(f"{self.file}:{self.line}: {self.problem}"))


@dataclass(frozen=True)
class Animation:
    kind: str
    params: dict  # the kind's fields: tensor, a, b, index, axis, order, path, token
    delay: float = 0.0
    duration: float | None = None  # None: to the end of the step


@dataclass(frozen=True)
class Camera:
    """Where a step looks: a layout preset, a framed block or group, or an explicit eye and target."""
    preset: str | None = None
    block: str | None = None
    eye: tuple | None = None
    target: tuple | None = None

    def describe(self) -> str:
        if self.preset:
            return f"preset:{self.preset}"
        if self.block:
            return f"block:{self.block}"
        return f"pose:{list(self.eye)}->{list(self.target)}"


@dataclass(frozen=True)
class Step:
    title: str
    text: str
    duration: float
    camera: Camera | None = None
    move: float = DEFAULT_MOVE
    focus: tuple = ()
    frame: tuple = ()  # what the camera frames when it is not the focus (tensor or group ids)
    dim: bool = True
    pause: bool = False
    animations: tuple = ()
    line: int = 0
    scene: str | None = None  # registry id of the model shown for this step; None: the chapter's model
    snapshot: int | str | None = None  # the chapter's recording: the snapshot whose weights the step shows
    plot: str | None = None   # a recorded series the text panel draws (record.loss), the shown snapshot marked


@dataclass(frozen=True)
class Chapter:
    number: int
    title: str
    model: str
    path: str
    summary: str = ""
    steps: tuple = field(default_factory=tuple)
    recording: str | None = None  # a training recording it replays (assets/recordings/NAME; scenes/chapters/recording.py)
    input: str | None = None      # what its live model reads when the chapter starts (chapter 19's question)
    language: str = "en"  # the language its text is in (scenes/chapters/language.py; English where untranslated)

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.steps)

    def scene_of(self, step: int) -> str:
        """The model id the window shows for a step: its ``scene``, else the chapter's model."""
        return self.steps[step].scene or self.model


@dataclass(frozen=True)
class Names:
    """What a chapter may refer to in one model: tensor ids, group ids and camera presets."""
    tensors: frozenset
    groups: frozenset
    presets: frozenset
    values: frozenset = frozenset()  # ids templates may read that have no block (an MoE's probs, topk, load)
    model: str | None = None
    shapes: dict | None = field(default=None, compare=False, hash=False)  # tensor id -> (rows, cols)

    @classmethod
    def of_layout(cls, layout) -> "Names":
        values = set()
        for tensor_id in layout.ids:
            if tensor_id.endswith(".moe.router"):
                prefix = tensor_id[: -len("router")]
                values |= {prefix + v for v in MOE_VALUES}
            if tensor_id == "audio.features":
                values |= set(AUDIO_VALUES)
        clip = getattr(layout, "spec_id", None) == "clip-tiny"
        values |= set(CLIP_VALUES) if clip else set()
        vit = getattr(layout, "spec_id", None) == "vit-tiny"
        values |= set(VIT_VALUES) if vit else set()
        shapes = None
        if getattr(layout, "rows", None) is not None:
            shapes = {t: (int(r), int(c)) for t, r, c in zip(layout.ids, layout.rows, layout.cols)}
        audio = "audio.features" in layout.ids
        presets = set(layout.presets) | (set(CLIP_PRESETS) if clip else set()) | (set(VIT_PRESETS) if vit else set()) \
            | (set(AUDIO_PRESETS) if audio else set())
        return cls(frozenset(layout.ids), frozenset(layout.group_ids), frozenset(presets), frozenset(values),
                   getattr(layout, "spec_id", None), shapes)


class _Lines:
    """Finds the source line of a step, a key within it, or a fragment of text."""

    def __init__(self, source: str):
        self.lines = source.splitlines()
        self.steps = [i + 1 for i, s in enumerate(self.lines) if re.match(r"\s*\[\[\s*step\s*\]\]", s)]

    def step(self, index: int) -> int:
        return self.steps[index] if index < len(self.steps) else 1

    def _end(self, index: int) -> int:
        return self.steps[index + 1] - 1 if index + 1 < len(self.steps) else len(self.lines)

    def find(self, needle: str, index: int | None = None, key: bool = False) -> int:
        """Line of the first occurrence (of ``needle =`` when key) inside step ``index`` (or the header)."""
        lo = self.step(index) if index is not None else 1
        hi = self._end(index) if index is not None else (self.steps[0] - 1 if self.steps else len(self.lines))
        pattern = re.compile(rf"^\s*{re.escape(needle)}\s*=") if key else None
        for n in range(lo, hi + 1):
            text = self.lines[n - 1]
            if (pattern.match(text) if key else needle in text):
                return n
        return lo


def _type_name(expected) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list",
             dict: "a table"}
    return " or ".join(names[t] for t in types)


def _check_type(value, expected) -> bool:
    types = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool) and bool not in types:
        return False  # TOML's true is not a number here
    return isinstance(value, types)


def load_chapter(path, names=None, number: int | None = None, lang: str | None = "en") -> Chapter:
    """Parse and validate one chapter file; with ``names`` (Names, or model id -> Names), every id it
    mentions must exist in the model. Its text in ``lang`` where a translation gives it (None: the
    interface's language), English elsewhere."""
    from .language import current_language, translated

    return translated(_load_structure(path, names, number), current_language() if lang is None else lang)


def _load_structure(path, names=None, number: int | None = None) -> Chapter:
    return parse_chapter(read_source(path), path, names, number)


def read_source(path) -> str:
    """A chapter (or translation) file's text: a regular file of at most MAX_CHAPTER_BYTES, UTF-8."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CHAPTER_BYTES or not path.is_file():
            raise ChapterError(path, 1, f"not a regular file of at most {MAX_CHAPTER_BYTES:,} bytes")
        with open(path, "rb") as f:
            raw = f.read(MAX_CHAPTER_BYTES + 1)
    except OSError as err:
        raise ChapterError(path, 1, f"cannot read: {err.strerror or err}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ChapterError(path, raw[:err.start].count(b"\n") + 1, f"not UTF-8 text (byte {err.start})") from None


def parse_toml(source: str, path) -> dict:
    """The TOML table of a chapter file's text, bounded first; a problem is a ChapterError at its line."""
    from llmviz.common.text import nesting_depth

    if len(source) > MAX_CHAPTER_BYTES:
        raise ChapterError(path, 1, f"more than {MAX_CHAPTER_BYTES:,} characters")
    if nesting_depth(source) > MAX_NESTING:
        raise ChapterError(path, 1, f"tables and lists nest more than {MAX_NESTING} deep")
    try:
        return tomllib.loads(source)
    except RecursionError:
        raise ChapterError(path, 1, f"tables and lists nest too deeply") from None
    except tomllib.TOMLDecodeError as err:
        match = re.search(r"\(at line (\d+), column \d+\)|at end of document", str(err))
        line = int(match.group(1)) if match and match.group(1) else max(1, len(source.splitlines()))
        problem = re.sub(r"\s*\(at line \d+, column \d+\)|\s*\(at end of document\)", "", str(err))
        raise ChapterError(path, line, f"not valid TOML: {problem}") from None


def parse_chapter(source: str, path, names=None, number: int | None = None) -> Chapter:
    path = Path(path)
    data = parse_toml(source, path)
    lines = _Lines(source)

    for key, value in data.items():
        if key not in CHAPTER_FIELDS:
            raise ChapterError(path, lines.find(key, key=True),
                               f"unknown chapter field {key!r} (known: {', '.join(CHAPTER_FIELDS)})")
        if not _check_type(value, CHAPTER_FIELDS[key]):
            raise ChapterError(path, lines.find(key, key=True), f"{key!r} must be {_type_name(CHAPTER_FIELDS[key])}")
    for key in ("title", "step"):
        if key not in data:
            raise ChapterError(path, 1, f"missing {key!r}" + (" (a chapter needs at least one [[step]])"
                                                               if key == "step" else ""))
    lookup = names if callable(names) else model_names if names is not None else None
    if callable(names):  # a lookup model id -> Names: validate against the chapter's own model
        try:
            names = names(data.get("model", "nano-gpt"))
        except (LookupError, ValueError) as err:
            raise ChapterError(path, lines.find("model", key=True), f"model: {err}") from None
    recording = data.get("recording")
    if recording is not None:
        recording = _check_recording(recording, lambda p: ChapterError(path, lines.find("recording", key=True), p))
        if names is not None:
            from dataclasses import replace

            from .recording import RECORD_VALUES

            names = replace(names, values=names.values | frozenset(RECORD_VALUES))
    if number is None:
        match = re.match(r"(\d+)", path.stem)
        number = int(match.group(1)) if match else 0
    model = data.get("model", "nano-gpt")
    if not data["step"] or len(data["step"]) > MAX_STEPS:
        raise ChapterError(path, lines.find("step", key=True), f"a chapter needs 1 to {MAX_STEPS} [[step]] tables")
    for i, raw in enumerate(data["step"]):
        if not isinstance(raw, dict):
            raise ChapterError(path, lines.step(i) if i < len(lines.steps) else lines.find("step", key=True),
                               f"step {i + 1}: each step is a [[step]] table, not {type(raw).__name__}")
    steps = tuple(_parse_step(raw, i, path, lines, names, model, lookup, recording)
                  for i, raw in enumerate(data["step"]))
    if steps[0].camera is None:
        raise ChapterError(path, steps[0].line, "the first step must set a camera (a chapter plays on its own)")
    given = data.get("input")
    if given is not None and not (0 < len(given) <= MAX_INPUT_CHARS and "\n" not in given):
        raise ChapterError(path, lines.find("input", key=True),
                           f"input must be one line of 1 to {MAX_INPUT_CHARS} characters, got {len(given)}")
    return Chapter(number, data["title"], data.get("model", "nano-gpt"), str(path), data.get("summary", ""), steps,
                   recording, input=given)


def _check_recording(name: str, error) -> str:
    """A recording the package ships (assets/recordings/NAME with its loss table)."""
    from .recording import recording_folder

    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,63}", name) or not recording_folder(name).joinpath("loss.safetensors").is_file():
        raise error(f"recording {name!r}: no such recording in assets/recordings (`llmviz train nano-gpt --record` makes one)")
    return name


def _parse_step(raw: dict, index: int, path, lines: _Lines, names: Names | None, model: str = "nano-gpt",
                lookup=None, recording: str | None = None) -> Step:
    where = lines.step(index)

    def fail(problem: str, key: str | None = None, fragment: str | None = None):
        line = (lines.find(fragment, index) if fragment else lines.find(key, index, key=True) if key else where)
        raise ChapterError(path, line, f"step {index + 1}: {problem}")

    for key, value in raw.items():
        if key not in STEP_FIELDS:
            fail(f"unknown step field {key!r} (known: {', '.join(STEP_FIELDS)})", key)
        if not _check_type(value, STEP_FIELDS[key]):
            fail(f"{key!r} must be {_type_name(STEP_FIELDS[key])}", key)
    for key in ("text", "duration"):
        if key not in raw:
            fail(f"missing {key!r}")
    duration = float(raw["duration"])
    if not (math.isfinite(duration) and duration > 0):
        fail(f"duration must be a positive number of seconds, got {raw['duration']}", "duration")
    move = float(raw.get("move", DEFAULT_MOVE))
    if not (math.isfinite(move) and move >= 0):
        fail(f"move must be zero or more seconds, got {raw['move']}", "move")

    scene = None
    own = chapter_scene(raw.get("scene"))
    if own is not None:
        return _parse_own_scene_step(raw, index, where, own, duration, move, fail)
    if "scene" in raw:
        try:
            scene = _registry().get(raw["scene"]).id
        except (LookupError, ValueError) as err:
            fail(f"scene: {err.args[0] if err.args else err}", "scene")
        if scene == _canonical(model):
            scene = None  # the chapter's own model
        elif names is not None:
            try:
                names = (lookup or model_names)(scene)
            except (LookupError, ValueError) as err:
                fail(f"scene {scene!r}: {err}", "scene")
    known = (names.tensors | names.groups | names.values) if names else None
    try:
        check_template(raw["text"], known, live=scene)
    except TemplateError as err:
        fail(str(err), "text", err.fragment)

    camera = _parse_camera(raw["camera"], names, lambda p: fail(p, "camera")) if "camera" in raw else None
    blocks = (names.tensors | names.groups) if names else None
    focus, frame = tuple(raw.get("focus", ())), tuple(raw.get("frame", ()))
    for key, items in (("focus", focus), ("frame", frame)):
        for item in items:
            if not isinstance(item, str):
                fail(f"{key} entries must be tensor or group ids (strings)", key)
            if blocks is not None and item not in blocks:
                fail(f"{key}: no tensor or group {item!r} in the model", fragment=f'"{item}"')
    snapshot, plot = raw.get("snapshot"), raw.get("plot")
    if (snapshot is not None or plot is not None) and recording is None:
        fail("snapshot and plot need the chapter's recording = \"NAME\"", "snapshot" if snapshot is not None else "plot")
    if isinstance(snapshot, str) and snapshot != "first_correct":
        fail(f"snapshot is a snapshot's index (negative from the end) or \"first_correct\", not {snapshot!r}", "snapshot")
    if isinstance(snapshot, int) and not -64 <= snapshot < 64:
        fail(f"snapshot index {snapshot} is outside -64..63", "snapshot")
    if plot is not None and plot != "record.loss":
        fail(f"plot {plot!r}: the recorded series a step can plot is record.loss", "plot")
    if scene is not None and snapshot is not None:
        fail("a step shown on another model's scene cannot show a snapshot", "snapshot")
    animations = tuple(_parse_animation(a, names, fail) for a in raw.get("animate", ()))
    for a in animations:
        if a.delay + (a.duration or 0.0) > duration + 1e-9:
            fail(f"animation {a.kind!r} runs past the end of the step ({a.delay} + {a.duration} > {duration} s)",
                 fragment=f'"{a.kind}"')
    return Step(title=raw.get("title", f"Step {index + 1}"), text=raw["text"], duration=duration, camera=camera,
                move=min(move, duration), focus=focus, frame=frame, dim=raw.get("dim", True), pause=raw.get("pause", False),
                animations=animations, line=where, scene=scene, snapshot=snapshot, plot=plot)


def _parse_own_scene_step(raw: dict, index: int, where: int, own, duration: float, move: float, fail) -> Step:
    """A step on a scene of its own (the retrieval scene): what needs a model's layout is refused, the camera is
    one of the scene's presets or none, the text reads the scene's values."""
    for key, what in (("focus", "blocks to focus"), ("frame", "blocks to frame"), ("animate", "blocks to animate"),
                      ("snapshot", "recording's snapshot to show"), ("plot", "recording to plot")):
        if key in raw:
            fail(f"{key}: scene {own.id!r} is not a model's layout and has no {what}; leave {key} out "
                 f"(its own entities show the step)", *((None, "animate") if key == "animate" else (key,)))
    camera = None
    if "camera" in raw:
        value = raw["camera"]
        kind, _, name = value.partition(":") if isinstance(value, str) else ("", "", "")
        if kind != "preset" or name not in own.presets:
            fail(f"camera {value!r}: a step on scene {own.id!r} takes one of its presets "
                 f"({', '.join('preset:' + p for p in own.presets)}) or none (its start camera, "
                 f"preset:{own.start})", "camera")
        camera = Camera(preset=name)
    try:
        check_template(raw["text"], frozenset(own.values), own_scene=own.id)
    except TemplateError as err:
        known = f" (scene {own.id!r} offers {', '.join(own.values)})" if "no tensor or group" in str(err) else ""
        fail(str(err).replace(" in the model", "") + known, "text", err.fragment)
    return Step(title=raw.get("title", f"Step {index + 1}"), text=raw["text"], duration=duration, camera=camera,
                move=min(move, duration), dim=raw.get("dim", True), pause=raw.get("pause", False), line=where,
                scene=own.id)


def _parse_camera(value, names: Names | None, fail) -> Camera:
    if isinstance(value, dict):
        if set(value) != {"eye", "target"}:
            fail("a camera pose is { eye = [x, y, z], target = [x, y, z] }")
        points = []
        for key in ("eye", "target"):
            p = value[key]
            if not (isinstance(p, list) and len(p) == 3 and all(_check_type(v, (int, float)) for v in p)
                    and all(math.isfinite(v) and abs(v) <= 1e7 for v in p)):
                fail(f"camera {key} must be three finite numbers (within ±1e7)")
            points.append(tuple(float(v) for v in p))
        if points[0] == points[1]:
            fail("camera eye and target are the same point")
        return Camera(eye=points[0], target=points[1])
    kind, _, name = value.partition(":")
    if kind == "preset":
        if names is not None and name not in names.presets:
            fail(f"no camera preset {name!r} (presets: {', '.join(sorted(names.presets))})")
        return Camera(preset=name)
    if kind == "block":
        if names is not None and name not in names.tensors | names.groups:
            fail(f"camera: no tensor or group {name!r} in the model")
        return Camera(block=name)
    fail(f"camera {value!r} is not 'preset:NAME', 'block:ID' or {{ eye = [...], target = [...] }}")


def _parse_animation(raw, names: Names | None, fail) -> Animation:
    if not isinstance(raw, dict):
        fail("each animation is a table with a kind", "animate")
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in ANIMATION_FIELDS:
        fail(f"animation kind {kind!r} is not one of {', '.join(ANIMATION_FIELDS)}", "kind")
    fields = ANIMATION_FIELDS[kind]
    for key, value in raw.items():
        expected = fields.get(key) or ANIMATION_TIMING.get(key)
        if expected is None:
            fail(f"unknown field {key!r} for a {kind!r} animation (known: "
                 f"{', '.join(list(fields) + list(ANIMATION_TIMING))})", key)
        if not _check_type(value, expected):
            fail(f"{kind} animation: {key!r} must be {_type_name(expected)}", key)
    missing = ANIMATION_REQUIRED[kind] - set(raw)
    if missing:
        fail(f"{kind} animation needs {', '.join(sorted(missing))}", fragment=f'"{kind}"')
    params = {k: v for k, v in raw.items() if k in fields}
    ids = [params[k] for k in ("tensor", "a", "b") if k in params] + list(params.get("path", ()))
    if kind == "split":
        if params.setdefault("axis", "row") not in ("row", "column"):
            fail("split animation: axis is 'row' or 'column'", "axis")
        index = params["index"]
        if isinstance(index, str):
            match = _REFERENCE.fullmatch(index)
            if not match:
                fail(f"split animation: index {index!r} is not an integer or ID[i]", fragment=index)
            ids.append(match.group(1))
    if kind == "fill" and params.setdefault("order", "rows") not in FILL_ORDERS:
        fail(f"fill animation: order is one of {', '.join(FILL_ORDERS)}", "order")
    if kind == "packet":
        if not 2 <= len(params["path"]) <= 64 or not all(isinstance(p, str) for p in params["path"]):
            fail("packet animation: path is a list of 2 to 64 tensor ids", "path")
        params.setdefault("token", 0)
        if not 0 <= params["token"] <= MAX_TOKEN:
            fail(f"packet animation: token is a position from 0 to {MAX_TOKEN}, got {params['token']}", "token")
    if names is not None:
        for tensor_id in ids:
            if not isinstance(tensor_id, str) or tensor_id not in names.tensors:
                fail(f"{kind} animation: no tensor {tensor_id!r} in the model", fragment=f'"{tensor_id}"')
    if kind == "split" and isinstance(params["index"], int) and names is not None and names.shapes:
        rows, cols = names.shapes.get(params["tensor"], (None, None))
        size = rows if params["axis"] == "row" else cols
        if size is not None and not -size <= params["index"] < size:
            fail(f"split animation: index {params['index']} is outside the {size} {params['axis']}s of "
                 f"{params['tensor']!r}", "index")
    delay = float(raw.get("delay", 0.0))
    duration = float(raw["duration"]) if "duration" in raw else None
    if not (math.isfinite(delay) and delay <= 1e6) or (duration is not None and not math.isfinite(duration)):
        fail(f"{kind} animation: delay and duration must be finite numbers of seconds",
             "delay" if not math.isfinite(delay) else "duration")
    if delay < 0 or (duration is not None and not duration > 0):
        fail(f"{kind} animation: delay must be >= 0 and duration > 0", "delay" if delay < 0 else "duration")
    return Animation(kind, params, delay, duration)


def chapter_folder() -> Path:
    import importlib.resources

    return Path(str(importlib.resources.files("llmviz.assets").joinpath("chapters")))


def chapter_files(folder=None) -> list[Path]:
    """The chapter files in play order (their names start with the chapter number)."""
    folder = Path(folder) if folder is not None else chapter_folder()
    return sorted(folder.glob("[0-9]*.toml"), key=lambda p: int(re.match(r"\d+", p.name).group()))


def load_chapters(names=None, folder=None, lang: str | None = None) -> list[Chapter]:
    """Every chapter of a folder in play order, its text in ``lang`` (None: the interface's language)."""
    return [load_chapter(p, names, lang=lang) for p in chapter_files(folder)]


@functools.lru_cache(maxsize=1)
def _registry():
    from llmviz.models.registry import load_registry

    return load_registry()


def _canonical(model_id: str) -> str:
    try:
        return _registry().get(model_id).id
    except (LookupError, ValueError):
        return model_id


@functools.lru_cache(maxsize=16)
def model_names(model_id: str = "nano-gpt") -> Names:
    """Names of a model's layout, without a renderer or weights (for validating and listing)."""
    from llmviz.models.registry import load_registry
    from llmviz.scenes.layout import layout_model

    return Names.of_layout(layout_model(load_registry().get(model_id)))
