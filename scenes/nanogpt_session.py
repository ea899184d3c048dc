"""A live nano-GPT: the input letters, generation one token at a time, and the traces arriving from the worker.

The session never blocks a frame: it submits token lists to the simulation worker and picks
the traces up in ``update``. The worker also hands over the weights once, so the main thread
never imports torch. Sampling happens here, from the trace's probabilities, so what the screen
shows is exactly the distribution the token was drawn from, with models/sim/sampling.py's sampler,
the one `llmviz generate` uses: the same seed and temperature give the same letters in both.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from llmviz.models.sim import sort_task
from llmviz.models.sim.sampling import Sampler, next_token_distribution
from llmviz.scenes.worker_session import WorkerSession, traced_model_compute

DEFAULT_INPUT = "CBABBC"


def _load_nanogpt(weights_path):
    def load():
        from llmviz.models.sim.nanogpt import load_nanogpt

        return load_nanogpt(weights_path)

    return load


@dataclass
class GenerationStep:
    token: int
    probs: np.ndarray  # the distribution it was drawn from (tempered when temperature > 0)


@dataclass
class NanoGptSession(WorkerSession):
    """Tokens, the latest trace for them, and the generation controls (step, play/pause, temperature)."""

    input_text: str = DEFAULT_INPUT
    temperature: float = 0.0
    seed: int = 0
    play_interval: float = 0.6  # seconds between generated tokens while playing
    weights_path: object = None
    attention: object = None   # scenes/trace_attention.TraceAttention: the WGSL kernel under the wgpu backend
    tokens: list[int] = field(default_factory=list)
    steps: list[GenerationStep] = field(default_factory=list)
    playing: bool = False

    alphabet = sort_task.ALPHABET  # the vocabulary, which the hover names tokens in

    def __post_init__(self):
        self.tokens = sort_task.parse_input(self.input_text)
        self._sampler = Sampler(self.seed)
        self._start_worker(traced_model_compute(_load_nanogpt(self.weights_path), self.attention))
        self._since_step = 0.0
        self._submit()

    # ------------------------------------------------------------------ inputs
    def set_input(self, text: str) -> str | None:
        """Restart from new input letters; returns the one-line problem, or None when accepted."""
        text = text.strip().upper()
        try:
            tokens = sort_task.parse_input(text)
        except sort_task.SortInputError as err:
            return str(err)
        self.input_text, self.tokens, self.steps = text, tokens, []
        self._sampler = Sampler(self.seed)
        self.playing = False
        self._submit()
        return None

    def set_temperature(self, value: float) -> None:
        self.temperature = max(0.0, float(value))

    @property
    def can_generate(self) -> bool:
        return len(self.tokens) < sort_task.INPUT_LENGTH * 2

    def next_distribution(self) -> np.ndarray | None:
        """P(next letter) at the last position, tempered as sampling will use it."""
        if self.trace is None:
            return None
        return next_token_distribution(self.trace["logits"][-1], self.temperature)

    def step(self) -> bool:
        """Append one token drawn from the current trace; False if there is none yet or the output is full."""
        if self.busy or self.trace is None or not self.can_generate:
            return False
        probs = self.next_distribution()
        token = self._sampler.pick(probs, self.temperature)
        self.steps.append(GenerationStep(token, probs))
        self.tokens = self.tokens + [token]
        if len(self.tokens) <= sort_task.CONTEXT_LENGTH:
            self._submit()
        # else: the last letter came from the trace on screen, which already holds the full context.
        return True

    def toggle_play(self) -> None:
        self.playing = not self.playing and self.can_generate
        self._since_step = self.play_interval

    # ------------------------------------------------------------------ per frame
    def update(self, dt: float) -> bool:
        """Collect finished work and advance playback; True when a new trace arrived."""
        arrived = self.poll()
        if self.playing:
            self._since_step += dt
            if self._since_step >= self.play_interval and self.step():
                self._since_step = 0.0
            if not self.can_generate:
                self.playing = False
        return arrived

    def _request(self):
        return list(self.tokens)

    @property
    def text(self) -> str:
        return sort_task.decode(self.tokens)
