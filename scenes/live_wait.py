"""How long headless work (render, bench, video, tests) waits for a live model's first values, with a progress line.

A window never waits: it draws the last values it has. Batch work needs the real values before its first
picture, and on a machine shared by many jobs loading torch and a model's weights can take minutes, so
every caller uses the one limit here and says on stderr that it is waiting rather than looking frozen.
"""
from __future__ import annotations

import sys
import time
from typing import Callable

VALUES_TIMEOUT_S = 300.0  # a busy 2-core machine has taken over 60 s for torch + weights + the first pass
PROGRESS_AFTER_S = 5.0    # quiet for a normal start; a line every PROGRESS_EVERY_S after that
PROGRESS_EVERY_S = 10.0


def wait_with_progress(wait: Callable[[float], bool], timeout: float | None = None, what: str = "the live model",
                       report: Callable[[str], None] | None = None,
                       failed: Callable[[], object] | None = None) -> bool:
    """Call ``wait(slice_s)`` until it returns True or ``timeout`` (default VALUES_TIMEOUT_S) has passed.

    ``wait`` is a live model's own blocking wait; it must return True as soon as (and every time after) its
    values have arrived. ``failed()`` returning something true (the live model's error) ends the wait at
    once with False: an error is not worth waiting out. A line is reported when the wait runs past PROGRESS_AFTER_S and then every
    PROGRESS_EVERY_S, so a user of ``llmviz render`` sees why nothing has happened yet."""
    limit = VALUES_TIMEOUT_S if timeout is None else float(timeout)
    report = report or _stderr_line
    start = time.monotonic()
    next_report = start + PROGRESS_AFTER_S
    while True:
        now = time.monotonic()
        left = start + limit - now
        if left <= 0:
            return bool(wait(0.0))
        if wait(min(left, max(0.05, next_report - now))):
            return True
        if failed is not None and failed():
            return False
        now = time.monotonic()
        if now >= next_report and now - start < limit:
            report(f"llmviz: waiting for {what}'s first values ({now - start:.0f} s of at most {limit:.0f} s)")
            next_report = now + PROGRESS_EVERY_S


def _stderr_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
