"""A small character-level model trained here, bound to its scene: text in, its trace on the blocks, greedy generation.

The live small MoEs (scenes/moe_live.py) and the live state-space models (scenes/ssm_live.py) are
this, plus what their family adds (routing statistics; the scan's state). The model runs on the
session's worker (scenes/worker_session.py): `set_text`, `step` and `toggle_play` return at once,
`update(dt)` once per frame collects what finished and writes it to the blocks.
"""
from __future__ import annotations

import random

import numpy as np

from llmviz.models.sim import moe_corpus
from llmviz.scenes.axis_labels import attach_axis_labels
from llmviz.scenes.legend import watch_cells
from llmviz.scenes.trace_attention import for_renderer
from llmviz.scenes.worker_session import WorkerSession, traced_model_compute


def validate_text(text: str, limit: int) -> str | None:
    """One-line problem with a text input for the small character models, or None."""
    if not text:
        return "the text is empty"
    bad = sorted({ch for ch in text if ch not in moe_corpus.ALPHABET})
    if bad:
        return f"characters outside the alphabet (printable ASCII and newline): {''.join(bad)!r}"
    if len(text) > limit:
        return f"the text has {len(text)} characters; the context holds {limit}"
    return None


class LiveTextModel(WorkerSession):
    """Text in, trace out; subclasses name the model (`load_model`, `context_length`) and may add to
    `_on_trace` and `_per_frame`.

    ``scene`` may be None (a benchmark runs the model alone), and so may ``renderer`` (nothing drawn).
    With ``autoplay`` it keeps generating, restarting on a new corpus sample when the context is full.
    """

    alphabet = moe_corpus.ALPHABET  # the vocabulary, which the hover and the token axes name tokens in
    # A recurrent model keeps generating past the scene's window: the scene shows the last `context_length`
    # characters, the state carries the rest (scenes/ssm_live.py). Bounded so a forgotten autoplay stops.
    streams = False
    STREAM_LIMIT = 100_000
    AUTOPLAY_STREAM = 2_000  # a benchmark's stream restarts on a new sample after this many characters

    def __init__(self, scene, renderer, load_model, context_length: int, text: str,
                 play_interval: float = 0.4, autoplay: bool = False):
        self.scene, self.renderer = scene, renderer
        self.context_length = context_length
        self.play_interval, self.playing = play_interval, False
        self.values_version = 0      # bumped when block values change
        self.tick_seconds: list[float] = []
        self.tokens: list[int] = []
        self.tokens_generated = 0
        self.autoplay = autoplay
        self._samples = random.Random(7)
        self.cells = watch_cells(scene) if scene is not None else None
        self.axis_labels = attach_axis_labels(scene, self.alphabet) if scene is not None else None
        self.attention = for_renderer(renderer)   # the WGSL kernel computes attention under the wgpu backend
        self._start_worker(traced_model_compute(load_model, self.attention))
        self._since_step = 0.0
        problem = self.set_text(text)
        if problem:
            raise ValueError(problem)
        self.playing = autoplay

    @property
    def session(self):
        """LiveModel's interface, where callers read live.session.error / .trace / .weights."""
        return self

    @property
    def text(self) -> str:
        return moe_corpus.decode(self.tokens)

    # ------------------------------------------------------------------ events
    def set_text(self, text: str) -> str | None:
        """Trace a new text; returns the one-line problem, or None when accepted."""
        problem = validate_text(text, self.context_length)
        if problem:
            return problem
        self.tokens = moe_corpus.encode(text)
        self.n_typed = len(self.tokens)  # the rest of `tokens` is generated
        self.playing = False
        self._submit()
        return None

    def next_token(self) -> int | None:
        """The model's most likely next character after the current trace (None before the first)."""
        if self.trace is None:
            return None
        return int(np.argmax(self.trace["logits"][-1]))

    @property
    def full(self) -> bool:
        """No more characters can be generated (the context, or a stream's limit)."""
        return len(self.tokens) >= (self.STREAM_LIMIT if self.streams else self.context_length)

    def step(self) -> bool:
        """Append the model's most likely next character and trace again; False when it cannot."""
        if self.busy or self.trace is None or self.full:
            return False
        self.tokens = self.tokens + [self.next_token()]
        self.tokens_generated += 1
        self._submit()
        return True

    def toggle_play(self) -> None:
        self.playing = not self.playing
        self._since_step = self.play_interval

    # ------------------------------------------------------------------ per frame
    def update(self, dt: float) -> bool:
        """Collect finished work, write it to the blocks, advance playback; True when values changed."""
        changed = self.poll()
        self._per_frame()
        if self.playing:
            self._since_step += dt
            if self._since_step >= self.play_interval and self.step():
                self._since_step = 0.0
            limit = self.AUTOPLAY_STREAM if self.streams and self.autoplay else None
            if (self.full or (limit is not None and len(self.tokens) >= limit)) and not self.busy:
                self.playing = False
                if self.autoplay:
                    domain = self._samples.choice(moe_corpus.DOMAINS)
                    self.set_text(moe_corpus.sample(domain, self._samples)[: self.context_length // 2])
                    self.playing = True
        if changed:
            self.values_version += 1
        return changed

    def _per_frame(self) -> None:
        """What a subclass collects every frame besides the trace (routing statistics)."""

    def _request(self):
        return list(self.tokens)

    def _on_weights(self) -> None:
        if self.renderer is not None:
            self.scene.write_values(self.renderer, self.weights)
        self.values_version += 1

    def _on_trace(self, result) -> None:
        self.tick_seconds.append(result.seconds)
        if self.renderer is not None:
            self.scene.write_values(self.renderer, self.trace)
        if self.axis_labels is not None:
            self.axis_labels.show_tokens(self.trace["tokens"])
