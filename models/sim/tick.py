"""Runs simulations on a worker thread so that no frame ever waits for torch.

The main thread calls `submit(request)` (returns at once with a ticket) and, once per
frame, `poll()` (never blocks) to collect finished results. The worker builds its compute
function itself, so importing torch and loading weights also stay off the render thread.
"""
from __future__ import annotations

import atexit
import collections
import queue
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


_RUNNING: "weakref.WeakSet[SimulationRunner]" = weakref.WeakSet()


EXIT_JOIN_S = 15.0   # at exit, how long the workers together may take to finish what they are computing


@atexit.register
def _close_all() -> None:
    # A worker still inside torch while the interpreter tears down (Ctrl+C of render, a script's last
    # frame) aborts the process ("terminate called without an active exception"): every runner is told
    # to stop at once, then each joined, so the slowest computation finishes before the interpreter goes.
    runners = list(_RUNNING)
    for runner in runners:
        runner.close(timeout=0.0)
    deadline = time.perf_counter() + EXIT_JOIN_S
    for runner in runners:
        runner.close(timeout=max(0.0, deadline - time.perf_counter()))


@dataclass(frozen=True)
class TickResult:
    ticket: int          # the number submit() returned; 0 for a failure while starting up
    request: Any
    value: Any           # what the compute function returned (an ActivationTrace for nano-GPT)
    error: str | None    # one line when the computation raised; value is then None
    seconds: float       # time spent computing, on the worker


class SimulationRunner:
    """A single worker thread fed by submit() and drained by poll().

    With `coalesce` (the default) a new request replaces any request still waiting, so a
    user editing tokens faster than the model runs sees the latest input, not a backlog;
    a replaced ticket never gets a result.
    """

    def __init__(self, make_compute: Callable[[], Callable[[Any], Any]], *, coalesce: bool = True,
                 name: str = "llmviz-simulation"):
        self._make_compute = make_compute
        self._coalesce = coalesce
        self._pending: collections.deque[tuple[int, Any]] = collections.deque()
        self._wake = threading.Condition()
        self._results: queue.SimpleQueue[TickResult] = queue.SimpleQueue()
        self._next_ticket = 1
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        _RUNNING.add(self)

    def submit(self, request: Any) -> int:
        with self._wake:
            if self._closed:
                raise RuntimeError("simulation runner is closed")
            ticket = self._next_ticket
            self._next_ticket += 1
            if self._coalesce:
                self._pending.clear()
            self._pending.append((ticket, request))
            self._wake.notify()
        return ticket

    def poll(self) -> list[TickResult]:
        """Every result finished since the last poll, oldest first; empty when none."""
        out = []
        while True:
            try:
                out.append(self._results.get_nowait())
            except queue.Empty:
                return out

    def wait(self, timeout: float) -> TickResult | None:
        """Blocks for the next result (for headless callers and tests, never for a frame)."""
        try:
            return self._results.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self, timeout: float = 2.0) -> None:
        with self._wake:
            self._closed = True
            self._pending.clear()
            self._wake.notify()
        self._thread.join(timeout)

    def __enter__(self) -> SimulationRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self) -> None:
        import torch
        # torch's intra-op thread count is effectively process-wide; one thread here leaves
        # the other cores to rendering, and for 11-token inputs more threads only add overhead.
        torch.set_num_threads(1)
        try:
            self._serve()
        except BaseException:  # noqa: BLE001 - at interpreter exit (Ctrl+C) the thread ends quietly
            if not self._closed:
                raise

    def _serve(self) -> None:
        import torch

        start_error = None
        try:
            compute = self._make_compute()
        except Exception as exc:  # reported to the main thread instead of dying silently
            start_error = _one_line(exc)
            self._results.put(TickResult(0, None, None, start_error, 0.0))
            compute = None
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                ticket, request = self._pending.popleft()
            start = time.perf_counter()
            if compute is None:
                value, error = None, f"simulation failed to start: {start_error}"
            else:
                try:
                    with torch.inference_mode():
                        value, error = compute(request), None
                except Exception as exc:
                    value, error = None, _one_line(exc)
            self._results.put(TickResult(ticket, request, value, error, time.perf_counter() - start))


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def nanogpt_runner(weights_path=None) -> SimulationRunner:
    """A runner whose requests are token lists and whose results are ActivationTraces."""
    def make_compute():
        from llmviz.models.sim.nanogpt import load_nanogpt
        return load_nanogpt(weights_path).trace
    return SimulationRunner(make_compute)
