"""Frame statistics as a user gets them: wall-clock time between presented frames, CPU ms per system, counts, memory.

The FPS shown is frames presented per second of wall clock (the interval between two calls of
``presented``), never 1000 / the engine's work: the window also spends time in the UI, picking,
uploads, swapping buffers and the display server, and the user sees all of it. Statistics keep a
bounded window (deques), so a long run does not grow.
"""
from __future__ import annotations

import collections
import os
import time

import numpy as np

HISTORY = 300


def process_memory_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class Profiler:
    """Collects what each frame cost; the overlay, ``llmviz bench`` and ``--stats-json`` all read it."""

    def __init__(self, history: int = HISTORY):
        self.frame_ms = collections.deque(maxlen=history)  # CPU work of a frame, begin → end
        self.wall_ms = collections.deque(maxlen=history)  # presented → presented: what the user sees
        self.system_ms: dict[str, collections.deque] = {}
        self.last: dict = {}
        self._frame_start = None
        self._last_present: float | None = None
        self._memory_checked = 0.0
        self.memory_bytes = process_memory_bytes()

    def begin(self) -> None:
        self._frame_start = time.perf_counter()

    def end(self, timings: dict[str, float], **counts) -> None:
        now = time.perf_counter()
        if self._frame_start is not None:
            self.frame_ms.append((now - self._frame_start) * 1000.0)
        for name, ms in timings.items():
            self.system_ms.setdefault(name, collections.deque(maxlen=self.frame_ms.maxlen)).append(ms)
        if now - self._memory_checked > 0.5:  # reading /proc every frame would show up in the profile
            self.memory_bytes = process_memory_bytes()
            self._memory_checked = now
        self.last = dict(counts, system_ms=dict(timings), memory_bytes=self.memory_bytes)

    def presented(self, now: float | None = None) -> float | None:
        """A frame reached the screen (after the swap, or after glFinish headless); returns the interval in ms."""
        now = time.perf_counter() if now is None else now
        interval = None
        if self._last_present is not None:
            interval = (now - self._last_present) * 1000.0
            self.wall_ms.append(interval)
        self._last_present = now
        return interval

    def pause(self) -> None:
        """Forget the last presented time (a deliberate wait, e.g. a screenshot waiting for values)."""
        self._last_present = None

    @property
    def fps(self) -> float:
        """Presented frames per second (median interval); before two frames were presented, from the CPU work."""
        source = self.wall_ms if self.wall_ms else self.frame_ms
        if not source:
            return 0.0
        return 1000.0 / max(1e-6, float(np.median(source)))

    @property
    def wall_frame_ms(self) -> float:
        return float(np.median(self.wall_ms)) if self.wall_ms else 0.0

    @property
    def cpu_frame_ms(self) -> float:
        return float(np.median(self.frame_ms)) if self.frame_ms else 0.0

    def system_medians(self) -> dict[str, float]:
        return {name: float(np.median(v)) for name, v in self.system_ms.items() if v}
