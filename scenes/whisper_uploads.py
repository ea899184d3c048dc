"""Block values written to the atlas a few at a time, so that no frame of the whisper-tiny scene stalls: a new
clip brings about 120 encoder tensors at once and every revealed decoder row about 130 more, and writing them
in one frame (each write also restyles its block) made the slowest frames (measured: up to 39 ms of the frame
thread at load 14 for one clip's writes, against 0.1 ms for a frame without).

`put` queues values (a later value for the same block replaces the queued one); `flush` writes queued
values, oldest first, until a frame's time budget is spent (always at least one batch, so the queue drains);
`flush(everything=True)` writes everything (headless renders, tests and chapters want the whole state at once).
"""
from __future__ import annotations

import time

BUDGET_S = 0.002           # frame-thread seconds a frame may spend on writes
BATCH = 8                  # tensors per write call between two looks at the clock


class PacedWrites:
    def __init__(self, scene, renderer, budget_s: float = BUDGET_S):
        self.scene, self.renderer, self.budget_s = scene, renderer, budget_s
        self.pending: dict = {}

    def __len__(self) -> int:
        return len(self.pending)

    def put(self, values: dict) -> None:
        for key, value in values.items():
            self.pending.pop(key, None)     # to the back: written after what was queued before it
            self.pending[key] = value

    def flush(self, everything: bool = False) -> int:
        """Writes queued values until the budget is spent (`everything`: all of them); how many it wrote."""
        if not self.pending or self.renderer is None:
            return 0
        start, written = time.perf_counter(), 0
        while self.pending:
            keys = list(self.pending) if everything else list(self.pending)[:BATCH]
            batch = {k: self.pending.pop(k) for k in keys}
            self.scene.write_values(self.renderer, batch)
            written += len(batch)
            if not everything and time.perf_counter() - start >= self.budget_s:
                break
        return written
