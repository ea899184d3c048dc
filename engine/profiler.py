"""Frame statistics: frame times over a rolling window, CPU ms per system, render and entity counts, memory."""
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
    """Collects what one frame cost; the overlay and the benchmark both read it."""

    def __init__(self, history: int = HISTORY):
        self.frame_ms = collections.deque(maxlen=history)
        self.system_ms: dict[str, collections.deque] = {}
        self.last: dict = {}
        self._frame_start = None
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

    @property
    def fps(self) -> float:
        if not self.frame_ms:
            return 0.0
        return 1000.0 / max(1e-6, float(np.median(self.frame_ms)))

    def system_medians(self) -> dict[str, float]:
        return {name: float(np.median(v)) for name, v in self.system_ms.items() if v}
