"""A live nano-GPT: the input letters, generation one token at a time, and the traces arriving from the worker.

The session never blocks a frame: it submits token lists to the simulation worker and picks
the traces up in ``update``. The worker also hands over the weights once, so the main thread
never imports torch. Sampling happens here, from the trace's probabilities, so what the screen
shows is exactly the distribution the token was drawn from.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from llmviz.models.sim import sort_task
from llmviz.models.sim.tick import SimulationRunner

WEIGHTS_REQUEST = "weights"
DEFAULT_INPUT = "CBABBC"


def _make_compute(weights_path=None):
    def make():
        from llmviz.models.sim.nanogpt import load_nanogpt

        model = load_nanogpt(weights_path)

        def compute(request):
            return model.weights() if request == WEIGHTS_REQUEST else model.trace(request)

        return compute

    return make


@dataclass
class GenerationStep:
    token: int
    probs: np.ndarray  # the distribution it was drawn from (tempered when temperature > 0)


@dataclass
class NanoGptSession:
    """Tokens, the latest trace for them, and the generation controls (step, play/pause, temperature)."""

    input_text: str = DEFAULT_INPUT
    temperature: float = 0.0
    seed: int = 0
    play_interval: float = 0.6  # seconds between generated tokens while playing
    weights_path: object = None
    tokens: list[int] = field(default_factory=list)
    steps: list[GenerationStep] = field(default_factory=list)
    trace: object = None
    weights: object = None
    error: str | None = None
    playing: bool = False

    def __post_init__(self):
        self.tokens = sort_task.parse_input(self.input_text)
        self._rng = np.random.default_rng(self.seed)
        # The session coalesces itself (one request in flight, the latest tokens queued behind it),
        # so the runner must not drop the one-off weights request.
        self._runner = SimulationRunner(_make_compute(self.weights_path), coalesce=False)
        self._runner.submit(WEIGHTS_REQUEST)
        self._pending_ticket = None
        self._queued = False
        self._since_step = 0.0
        self.trace_version = 0  # bumped when a new trace arrives: the scene re-uploads its values
        self.last_tick_seconds = 0.0
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
        self._rng = np.random.default_rng(self.seed)
        self.playing = False
        self._submit()
        return None

    def set_temperature(self, value: float) -> None:
        self.temperature = max(0.0, float(value))

    @property
    def can_generate(self) -> bool:
        return len(self.tokens) < sort_task.INPUT_LENGTH * 2

    @property
    def busy(self) -> bool:
        return self._pending_ticket is not None

    def next_distribution(self) -> np.ndarray | None:
        """P(next letter) at the last position, tempered as sampling will use it."""
        if self.trace is None:
            return None
        logits = np.asarray(self.trace["logits"][-1], np.float64)
        if self.temperature > 0:
            logits = logits / self.temperature
        e = np.exp(logits - logits.max())
        return e / e.sum()

    def step(self) -> bool:
        """Append one token drawn from the current trace; False if there is none yet or the output is full."""
        if self.busy or self.trace is None or not self.can_generate:
            return False
        probs = self.next_distribution()
        token = int(np.argmax(probs)) if self.temperature == 0 else int(self._rng.choice(len(probs), p=probs))
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
    def _handle(self, result) -> bool:
        if result.request == WEIGHTS_REQUEST:
            if result.error:
                self.error = f"simulation: {result.error}"
            self.weights = result.value
            return False
        if result.ticket != self._pending_ticket:
            return False
        self._pending_ticket = None
        if self._queued:  # the tokens changed while this ran: this trace is already stale
            self._queued = False
            self._submit()
            return False
        if result.error:
            self.error = f"simulation: {result.error}"
            return False
        self.error = None
        self.trace = result.value
        self.last_tick_seconds = result.seconds
        self.trace_version += 1
        return True

    def update(self, dt: float) -> bool:
        """Collect finished work and advance playback; True when a new trace arrived."""
        arrived = False
        for result in self._runner.poll():
            arrived |= self._handle(result)
        if self.playing:
            self._since_step += dt
            if self._since_step >= self.play_interval and self.step():
                self._since_step = 0.0
            if not self.can_generate:
                self.playing = False
        return arrived

    def wait(self, timeout: float = 10.0) -> bool:
        """Block until the weights and the trace of the current tokens are in (headless use and tests only)."""
        import time

        deadline = time.monotonic() + timeout
        while (self.busy or self.weights is None) and self.error is None:
            remaining = deadline - time.monotonic()
            result = self._runner.wait(remaining) if remaining > 0 else None
            if result is None:
                break
            self._handle(result)
        return not self.busy and self.weights is not None

    def close(self) -> None:
        self._runner.close()

    def _submit(self) -> None:
        if self._pending_ticket is not None:
            self._queued = True
            return
        self._pending_ticket = self._runner.submit(list(self.tokens))

    @property
    def text(self) -> str:
        return sort_task.decode(self.tokens)
