"""Adaptive quality: when frames take longer than the budget, draw less detail until they fit, and more when there is room.

Levels are a table, coarsest last: each lowers the detail scale of visibility/LOD (groups close
and blocks drop to cheaper LODs at a larger on-screen size) and, at the last levels, the render
scale (fewer pixels for the software rasteriser). The controller looks at the median wall-clock
frame time over a short window so one slow frame does not flip the level, and waits after each
change so a level is judged on frames drawn at that level. A step down that does not make frames
at least GAIN faster is taken back and no lower level is tried for a while: when the time goes
elsewhere (the buffer swap, the display server) less detail would only make the picture worse.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np

DEFAULT_BUDGET_MS = 1000.0 / 60.0
GAIN = 0.9  # a lower level must bring the median frame time under this share of the level above's
HOLD_FRAMES = 600  # after a useless step down, frames before lower levels are tried again


@dataclass(frozen=True)
class QualityLevel:
    name: str
    detail: float  # multiplies projected sizes in visibility and LOD
    render_scale: float  # fraction of the target's pixels drawn for the 3D scene


LEVELS = (
    QualityLevel("full", 1.0, 1.0),
    QualityLevel("detail 70%", 0.7, 1.0),
    QualityLevel("detail 50%", 0.5, 1.0),
    QualityLevel("detail 35%", 0.35, 1.0),
    QualityLevel("detail 35%, 75% pixels", 0.35, 0.75),
    QualityLevel("detail 25%, 50% pixels", 0.25, 0.5),
)


class AdaptiveQuality:
    """Raises or lowers the quality level from measured frame times; ``enabled`` False pins it at full."""

    def __init__(self, budget_ms: float = DEFAULT_BUDGET_MS, *, window: int = 20, settle_frames: int = 20,
                 headroom: float = 0.6, enabled: bool = True):
        self.budget_ms = float(budget_ms)
        self.enabled = enabled
        self.index = 0
        self.headroom = headroom  # step back up when frames take less than this share of the budget
        self.settle_frames = settle_frames
        self._times = collections.deque(maxlen=window)
        self._wait = settle_frames
        self._before_drop: float | None = None  # the median that made the last step down
        self._hold = 0  # frames left before a lower level may be tried again

    @property
    def level(self) -> QualityLevel:
        return LEVELS[self.index if self.enabled else 0]

    def observe(self, frame_ms: float | None) -> bool:
        """Feed one frame's wall time; True when the level changed."""
        if not self.enabled or frame_ms is None:
            return False
        self._hold = max(0, self._hold - 1)
        if self._wait > 0:  # frames just after a change show the change, not the level
            self._wait -= 1
            return False
        self._times.append(float(frame_ms))
        if len(self._times) < self._times.maxlen:
            return False
        median = float(np.median(self._times))
        if self._before_drop is not None:  # the first judgement of a level just stepped down to
            useless = median > self._before_drop * GAIN
            self._before_drop = None
            if useless:
                self._hold = HOLD_FRAMES
                return self._step(-1)
        if median > self.budget_ms and self.index < len(LEVELS) - 1 and not self._hold:
            self._before_drop = median
            return self._step(1)
        if median < self.budget_ms * self.headroom and self.index > 0:
            return self._step(-1)
        return False

    def _step(self, step: int) -> bool:
        self.index += step
        self._times.clear()
        self._wait = self.settle_frames
        return True

    def reset(self) -> None:
        """Start again at full quality (a new scene: its cost is not the old one's)."""
        self.index = 0
        self._times.clear()
        self._wait = self.settle_frames
        self._before_drop, self._hold = None, 0
