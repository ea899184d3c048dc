"""A one-slot background worker: the newest submission waits, older waiting ones are dropped, one runs at a time.

What the explorer hands off the frame thread (a scene to build, a search to run) only matters in
its newest form: a keystroke makes the previous query's search moot, a click on another model
the previous build. The thread exists only while there is work.
"""
from __future__ import annotations

import threading


class LatestJob:
    def __init__(self, name: str):
        self.name = name
        self._lock = threading.Lock()
        self._waiting = None
        self._thread: threading.Thread | None = None

    @property
    def superseded(self) -> bool:
        """A newer submission is waiting (for a running job to drop its now useless result)."""
        return self._waiting is not None

    def submit(self, fn) -> None:
        with self._lock:
            self._waiting = fn
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def cancel(self) -> None:
        """Drop what waits (a running job still finishes)."""
        with self._lock:
            self._waiting = None

    def join(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    @property
    def idle(self) -> bool:
        return self._thread is None

    def _run(self) -> None:
        while True:
            with self._lock:
                fn, self._waiting = self._waiting, None
                if fn is None:
                    self._thread = None
                    return
            fn()
