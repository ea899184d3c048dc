"""One trained model on the simulation worker: its weights fetched once, one trace in flight, the latest request queued.

The live nano-GPT and the live small MoEs both talk to the worker this way. The session
coalesces by itself (a request made while one runs waits, and only the latest is sent), so
the runner must not coalesce: it would drop the one-off weights request.
"""
from __future__ import annotations

import abc
import threading
import time

from llmviz.models.sim.tick import SimulationRunner

WEIGHTS_REQUEST = "weights"


# One model loads at a time: transformers resolves its classes lazily and not thread-safely, so two workers
# starting together (a compare set of live models) could each see a half-initialised module.
_LOADING = threading.Lock()


def traced_model_compute(load_model, attention=None):
    """Worker-side compute for a model with `.weights()` and `.trace(tokens)`; loading happens on the worker.
    `attention` (scenes/trace_attention.TraceAttention), when given, picks who computes the traces' attention."""
    def make():
        with _LOADING:
            model = load_model()
        if attention is not None:
            attention.attach(model)

        def compute(request):
            return model.weights() if request == WEIGHTS_REQUEST else model.trace(request)

        return compute

    return make


class WorkerSession(abc.ABC):
    """Subclasses provide `_request()` (what to trace now) and may react in `_on_weights` / `_on_trace`."""

    def _start_worker(self, make_compute) -> None:
        self.trace = None
        self.weights = None
        self.error: str | None = None
        self.trace_version = 0  # bumped when a new trace arrives
        self.last_tick_seconds = 0.0
        self._pending: int | None = None
        self._queued = False
        self._runner = SimulationRunner(make_compute, coalesce=False)
        self._runner.submit(WEIGHTS_REQUEST)

    @property
    def busy(self) -> bool:
        return self._pending is not None

    @abc.abstractmethod
    def _request(self):
        """What to trace now (the token list)."""

    def _on_weights(self) -> None:
        """Called once the weights have arrived."""

    def _on_trace(self, result) -> None:
        """Called after a new trace has been stored."""

    def _submit(self) -> None:
        if self._pending is not None:
            self._queued = True
            return
        self._pending = self._runner.submit(self._request())

    def _handle(self, result) -> bool:
        """Store one worker result; True when it was a new trace of the current request."""
        if result.request == WEIGHTS_REQUEST:
            if result.error:
                self.error = f"simulation: {result.error}"
            self.weights = result.value
            if self.weights is not None:
                self._on_weights()
            return False
        if result.ticket != self._pending:
            return False
        self._pending = None
        if self._queued:  # the request changed while this ran: this trace is already stale
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
        self._on_trace(result)
        return True

    def poll(self) -> bool:
        """Collect whatever the worker finished (never blocks); True when a new trace arrived."""
        arrived = False
        for result in self._runner.poll():
            arrived |= self._handle(result)
        return arrived

    def wait(self, timeout: float = 10.0) -> bool:
        """Block until the weights and the current trace are in (headless use and tests only)."""
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
