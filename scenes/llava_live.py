"""llava-tiny live: a picture and a question in, the answer generated token by token, every pass's trace on the
scene's blocks (the tower, the projector, the decoder with the image tokens as its prefix), and what each answer
token's attention draws from the image patches.

The model runs on the session's worker (scenes/worker_session.py): `set_image_path`, `set_question`, `step` and
`toggle_play` return at once; the worker reads the picture (bounded, models/sim/vit_image.py), prepares it as
the exported processor would, and traces the whole sequence: 256 image tokens, the question, the answer so far.
Generation is greedy and stepped as nano-GPT's is: each step appends the most likely next token of the trace on
screen and traces again, until </s> or MAX_ANSWER_TOKENS; while playing, a step every PLAY_INTERVAL seconds.
`update(dt)` once per frame collects what finished and writes it to the blocks. With ``autoplay`` (the
benchmark) it keeps answering, on the next sample picture and question when an answer is done.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from llmviz.models.sim import llava_vocab
from llmviz.scenes.legend import watch_cells
from llmviz.scenes.vit_live import DEFAULT_IMAGE, PICTURE_ID, SAMPLE_IMAGES, sample_path
from llmviz.scenes.worker_session import _LOADING, WEIGHTS_REQUEST, WorkerSession

WHAT_IT_IS = "a small model trained here on generated shapes (a CLIP tower, a projector and a Llama, 181,440 weights)"
DEFAULT_QUESTION = llava_vocab.QUESTIONS["describe"]
PLAY_INTERVAL = 0.5
ANSWER_ID = "answer"   # beside the layout's ids: [prompt length, then the answer so far] (the panel's words)


def drawn_ids(layout) -> set[str]:
    """The blocks given full-size atlas regions when the scene is built: every one but the raw attention scores,
    which with 273 and 257 tokens would not fit beside everything else; those are drawn at half resolution
    (scenes/llava_scores.py, regions reserved by LiveLlava)."""
    from llmviz.scenes.llava_scores import is_pooled

    return {i for i in layout.ids if not is_pooled(i)}


@dataclass(frozen=True)
class PatchChoice:
    """Whose attention the picture shows: answer token `token` (its position is the one that predicted it; None:
    the next token's, from the last position), one `layer` or the mean over layers (None), one `head` or the
    heads' mean (None)."""

    token: int | None = None
    layer: int | None = None
    head: int | None = None


def _llava_compute():
    """Worker-side compute: loads llava-tiny on the worker (torch is imported there, not on the frame thread)."""
    def make():
        from llmviz.models.sim import llava_model, llava_trace, vit_image
        from llmviz.models.sim.trace import ActivationTrace

        with _LOADING:
            model = llava_model.load_llava()
        size = model.config.vision_config.image_size
        last = {}   # the picture last read: a question or a generated token does not read the file again

        def pixels_of(image):
            if last.get("key") is not image:
                kind, value = image
                rgb = vit_image.read_image(value) if kind == "path" else value
                last.update(key=image, pixels=vit_image.preprocess(rgb, size))
            return last["pixels"]

        def compute(request):
            if request == WEIGHTS_REQUEST:
                return llava_trace.weights(model)
            image, question, answer = request
            pixels = pixels_of(image)
            ids = llava_trace.sequence(model, question, answer)
            trace = llava_trace.trace(model, pixels, ids)
            seen = np.asarray(np.clip((pixels.transpose(1, 2, 0) + 1.0) * 0.5, 0.0, 1.0), np.float32)
            entries = [(i, trace[i], trace.axes(i)) for i in trace]
            entries += [(PICTURE_ID, seen, ("y", "x", "rgb")),
                        (ANSWER_ID, np.asarray([len(ids) - len(answer), *answer], np.float32), ("t",))]
            return ActivationTrace(entries)

        return compute

    return make


class LiveLlava(WorkerSession):
    """A picture and a question in, the answer out token by token. ``scene`` and ``renderer`` may be None."""

    kind = "llava"
    about = WHAT_IT_IS

    PICTURE_ID = PICTURE_ID

    def __init__(self, scene, renderer, image_path=None, question: str = DEFAULT_QUESTION, autoplay: bool = False,
                 data=None):
        """`data`: where the 3D picture's and the pooled scores' atlas regions are reserved (the loader's
        DataStaging for a scene built on a worker; the renderer by default)."""
        self.scene, self.renderer = scene, renderer
        self.picture = None
        self.pooled_ids: frozenset[str] = frozenset()
        if scene is not None and (data or renderer) is not None:
            from llmviz.scenes.llava_picture import LlavaPicture
            from llmviz.scenes.llava_scores import reserve

            self.pooled_ids = frozenset(reserve(scene, data or renderer))
            self.picture = LlavaPicture(scene, data or renderer)
        self.shown_image = None   # the picture of the trace on screen
        self._sent = None
        self.choice = PatchChoice()
        self.values_version = 0
        self.tick_seconds: list[float] = []
        self.autoplay = autoplay
        self.playing = True
        self.source = ""
        self.answer: list[tuple[int, float]] = []     # (token, its probability when it was chosen)
        self.cells = watch_cells(scene) if scene is not None else None
        self._since_step = 0.0
        self._next_sample = 1
        self._start_worker(_llava_compute())
        problem = self.set_question(question)
        if problem:
            raise ValueError(problem)
        self.set_image_path(str(sample_path(DEFAULT_IMAGE)) if image_path is None else image_path)

    @property
    def session(self):
        """LiveModel's interface, where callers read live.session.error / .trace / .weights."""
        return self

    @property
    def tokens_generated(self) -> int:
        """What the benchmark counts: the passes traced (each a token generated or a new picture or question)."""
        return len(self.tick_seconds)

    @property
    def grid(self) -> int:
        return int(round(self.trace["projector.fc2"].shape[0] ** 0.5)) if self.trace is not None else 0

    # ------------------------------------------------------------------ events
    def set_image_path(self, path: str) -> None:
        """A new picture (read on the worker, a bad file becomes `error`); the answer starts again."""
        self.source = str(path)
        self._restart(("path", str(path)))

    def open_dropped(self, path: str) -> None:
        """A file dropped onto the window (scenes/explorer/controller.py files_dropped)."""
        self.set_image_path(path)

    def set_image(self, rgb: np.ndarray, source: str = "picture") -> None:
        """An already decoded (height, width, 3) uint8 picture."""
        self.source = source
        self._restart(("rgb", np.asarray(rgb, np.uint8)))

    def set_question(self, text: str) -> str | None:
        """A new question; returns the one-line problem (an unknown word, too long), or None when accepted."""
        try:
            ids = llava_vocab.question_ids(text)
        except llava_vocab.QuestionError as err:
            return str(err)
        self.question, self.question_ids = " ".join(llava_vocab.decode(ids)), ids
        if hasattr(self, "_image"):
            self._restart(self._image)
        return None

    def _restart(self, image) -> None:
        self._image = image
        self.answer = []
        self.choice = PatchChoice(layer=self.choice.layer, head=self.choice.head)
        self.playing = True
        self._since_step = 0.0
        self._submit()

    def choose(self, **changes) -> None:
        """A new PatchChoice (its fields); the picture follows."""
        self.choice = replace(self.choice, **changes)

    @property
    def done(self) -> bool:
        """The answer is closed (</s>) or as long as answers get."""
        return bool(self.answer) and (self.answer[-1][0] == llava_vocab.EOS_ID
                                      or len(self.answer) >= llava_vocab.MAX_ANSWER_TOKENS)

    def next_distribution(self) -> np.ndarray | None:
        """P(next token) at the last position of the trace on screen, None before the first."""
        return None if self.trace is None else np.asarray(self.trace["probs"][-1], np.float64)

    def step(self) -> bool:
        """Append the most likely next token and trace again; False while busy, before a trace, or when done."""
        if self.busy or self.trace is None or self.done or self.trace_answer() != [t for t, _ in self.answer]:
            return False
        probs = self.next_distribution()
        token = int(np.argmax(probs))
        self.answer = self.answer + [(token, float(probs[token]))]
        self._submit()
        return True

    def toggle_play(self) -> None:
        self.playing = not self.playing
        self._since_step = PLAY_INTERVAL

    # ------------------------------------------------------------------ per frame
    def update(self, dt: float) -> bool:
        changed = self.poll()
        if self.picture is not None:
            self.picture.update(self.renderer, self, dt)
        if self.playing:
            self._since_step += dt
            if self._since_step >= PLAY_INTERVAL and self.step():
                self._since_step = 0.0
            if self.done and not self.busy:
                self.playing = False
                if self.autoplay:
                    self._next_question()
        if changed:
            self.values_version += 1
        return changed

    def _next_question(self) -> None:
        """The benchmark's loop: the next question, and after the three the next sample picture."""
        kinds = list(llava_vocab.QUESTIONS.values())
        k = (kinds.index(self.question) + 1) % len(kinds) if self.question in kinds else 0
        self.set_question(kinds[k])
        if k == 0:
            self.set_image_path(str(sample_path(SAMPLE_IMAGES[self._next_sample % len(SAMPLE_IMAGES)])))
            self._next_sample += 1

    def next_sample(self) -> None:
        """The next shipped sample picture (the panel's button)."""
        self.set_image_path(str(sample_path(SAMPLE_IMAGES[self._next_sample % len(SAMPLE_IMAGES)])))
        self._next_sample += 1

    def wait(self, timeout: float = 30.0) -> bool:
        """Headless only (render, tests): block until the weights are in and the answer is complete."""
        import time

        deadline = time.monotonic() + timeout
        while super().wait(max(0.0, deadline - time.monotonic())) and self.error is None:
            if self.done or not self.step():
                self.poll()
                self.playing = False
                return True
        return False

    def _request(self):
        self._sent = (self._image, tuple(self.question_ids), tuple(t for t, _ in self.answer))
        return self._sent

    def _show(self, values) -> None:
        if self.renderer is not None:
            from llmviz.scenes.llava_scores import pooled_values

            self.scene.write_values(self.renderer, values, ids=[i for i in values if i not in self.pooled_ids])
            self.scene.write_values(self.renderer, pooled_values(values, self.pooled_ids))
        self.values_version += 1

    def _on_weights(self) -> None:
        self._show(self.weights)

    def _on_trace(self, result) -> None:
        self.tick_seconds.append(result.seconds)
        self.shown_image = self._sent[0]
        self._show(self.trace)

    def explain(self, tensor_id, row, col, trace, weights):
        """The hover's explanation of a cell (scenes/llava_scores.py for the half-resolution score blocks)."""
        from llmviz.scenes import dataflow
        from llmviz.scenes.llava_scores import explain

        return explain(tensor_id, row, col, trace, weights, self.pooled_ids, dataflow.explain)

    def reading_at(self, slot: int, cell):
        """The hover reading of the 3D picture's patches (None elsewhere)."""
        return self.picture.reading(self, slot, cell) if self.picture is not None else None

    # ------------------------------------------------------------------ what the panel reads
    def prompt_length(self) -> int:
        return int(self.trace[ANSWER_ID][0]) if self.trace is not None else 0

    def trace_answer(self) -> list[int]:
        """The answer tokens the trace on screen holds."""
        return [int(t) for t in self.trace[ANSWER_ID][1:]] if self.trace is not None else []

    def query_row(self, token: int | None) -> int:
        """The decoder position whose output chose answer token `token` (None: the next one, the last position)."""
        n = len(self.trace_answer())
        k = n if token is None or token >= n else token
        return self.prompt_length() - 1 + k

    def heat(self) -> np.ndarray | None:
        """(grid, grid) the chosen token's attention to the image tokens (models/sim/llava_trace.patch_attention)."""
        from llmviz.models.sim.llava_trace import patch_attention

        if self.trace is None:
            return None
        c = self.choice
        return patch_attention(self.trace, self.query_row(c.token), self.grid, c.layer, c.head)

    def heat_words(self) -> str:
        c = self.choice
        n = len(self.trace_answer())
        who = (f"answer token {c.token} ({llava_vocab.WORDS[self.trace_answer()[c.token]]!r})"
               if c.token is not None and c.token < n else "the next token")
        where = "mean over layers and heads" if c.layer is None else (
            f"layer {c.layer}, " + ("the heads' mean" if c.head is None else f"head {c.head}"))
        return f"{who}: its attention to the 256 image tokens, {where}"
