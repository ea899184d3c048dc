"""What an animation shows at a given progress, as plain data the scene applies: no drawing, no state.

Every function takes the animation's parameters and a progress in [0, 1] and returns a frozen
``AnimationFrame``: which cells of which tensor are filled so far, which rows of a causal mask
have fallen into place, how far a split-out row or column has lifted, where a token's packet is
on its path. Being pure functions of progress, they replay identically when the timeline is
scrubbed back and forth.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

LIFT_SHARE = 0.35  # a split row or column rises during the first third, travels, then settles


@dataclass(frozen=True)
class AnimationFrame:
    kind: str
    tensor: str
    progress: float
    cells: np.ndarray | None = None      # (rows, cols) bool: cells drawn so far (fill, add, causal_mask)
    masked: np.ndarray | None = None     # (rows, cols) bool: cells the causal mask has removed (set to −∞)
    sources: tuple = ()                  # tensors feeding the cells being filled (add: a and b)
    row: int | None = None               # the row being worked on (add, fill by rows, causal_mask)
    index: int | None = None             # split: which row or column of ``tensor`` is split out
    axis: str | None = None              # split: "row" or "column"
    lift: float = 0.0                    # split: 0 in the matrix .. 1 fully out
    travel: float = 0.0                  # split: 0 at the matrix .. 1 arrived at its destination
    position: np.ndarray | None = None   # packet: world position
    segment: int | None = None           # packet: index of the path leg it is on
    extra: dict = field(default_factory=dict)


def _clamp01(x: float) -> float:
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else float(x)


def _count(progress: float, n: int) -> int:
    """How many of n items are done at this progress (all of them exactly at 1)."""
    return n if progress >= 1.0 else min(n, int(math.floor(progress * n + 1e-9)))


def fill_cells(shape: tuple[int, int], progress: float, order: str = "rows") -> np.ndarray:
    """The cells written so far when a tensor is filled progressively in ``order`` (rows, columns or cells)."""
    rows, cols = shape
    if order == "rows":
        flat = np.zeros((rows, cols), bool)
        flat[:_count(progress, rows)] = True
        return flat
    if order == "columns":
        flat = np.zeros((rows, cols), bool)
        flat[:, :_count(progress, cols)] = True
        return flat
    flat = np.zeros(rows * cols, bool)
    flat[:_count(progress, rows * cols)] = True
    return flat.reshape(rows, cols)


def fill(tensor: str, shape, progress: float, order: str = "rows") -> AnimationFrame:
    p = _clamp01(progress)
    cells = fill_cells(shape, p, order)
    row = min(_count(p, shape[0]), shape[0] - 1) if order == "rows" else None
    return AnimationFrame("fill", tensor, p, cells=cells, row=row)


def add(tensor: str, a: str, b: str, shape, progress: float) -> AnimationFrame:
    """a + b = tensor, one row (token) at a time: that row of a and of b light up, then its sum appears."""
    p = _clamp01(progress)
    done = _count(p, shape[0])
    return AnimationFrame("add", tensor, p, cells=fill_cells(shape, p, "rows"), sources=(a, b),
                          row=min(done, shape[0] - 1))


def causal_mask(tensor: str, shape, progress: float) -> AnimationFrame:
    """The mask falls row by row: in each revealed row t, the scores of positions after t are removed."""
    p = _clamp01(progress)
    rows, cols = shape
    revealed = _count(p, rows)
    upper = np.triu(np.ones((rows, cols), bool), k=1)
    masked = upper & (np.arange(rows)[:, None] < revealed)
    cells = np.zeros((rows, cols), bool)
    cells[:revealed] = True
    return AnimationFrame("causal_mask", tensor, p, cells=cells, masked=masked, row=min(revealed, rows - 1))


def split(tensor: str, index: int, axis: str, progress: float) -> AnimationFrame:
    """One row or column lifts out of its matrix, then travels to where it is used."""
    p = _clamp01(progress)
    lift = _smooth(p / LIFT_SHARE)
    travel = _smooth((p - LIFT_SHARE) / (1.0 - LIFT_SHARE))
    return AnimationFrame("split", tensor, p, index=int(index), axis=axis, lift=lift, travel=travel)


def packet(path: list[str], points, progress: float) -> AnimationFrame:
    """A token's packet moving along ``points`` (one per tensor of ``path``) at constant speed."""
    p = _clamp01(progress)
    points = np.asarray(points, np.float64)
    legs = np.linalg.norm(np.diff(points, axis=0), axis=1)
    total = float(legs.sum())
    if total <= 0.0:
        return AnimationFrame("packet", path[-1], p, position=points[-1].copy(), segment=len(legs) - 1)
    along = p * total
    ends = np.cumsum(legs)
    segment = min(int(np.searchsorted(ends, along, side="left")), len(legs) - 1)
    start = ends[segment] - legs[segment]
    f = 0.0 if legs[segment] == 0 else (along - start) / legs[segment]
    position = points[segment] + (points[segment + 1] - points[segment]) * _clamp01(f)
    return AnimationFrame("packet", path[segment + 1], p, position=position, segment=segment,
                          extra={"path": tuple(path)})


def _smooth(t: float) -> float:
    t = _clamp01(t)
    return t * t * (3.0 - 2.0 * t)


def shown_values(frame: AnimationFrame, array) -> np.ndarray | None:
    """The values a tensor's block shows at this frame, or None when the animation does not change them.

    Cells not filled yet are NaN (drawn empty); while the causal mask falls, the masked cells of
    rows it has not reached yet are empty too, and turn into −∞ as it passes. The scene writes
    the result with ModelScene.write_values, as it writes a trace.
    """
    if frame.cells is None:
        return None
    values = np.array(array, np.float32, copy=True)
    grid = values if values.ndim == 2 else values.reshape(-1, 1)
    rows = min(grid.shape[0], frame.cells.shape[0])
    cols = min(grid.shape[1], frame.cells.shape[1])
    if frame.kind == "causal_mask":
        waiting = np.zeros(grid.shape, bool)
        waiting[:rows, :cols] = ~frame.masked[:rows, :cols]
        grid[waiting & np.isneginf(grid)] = np.nan
    else:
        empty = np.ones(grid.shape, bool)
        empty[:rows, :cols] = ~frame.cells[:rows, :cols]
        grid[empty] = np.nan
    return grid.reshape(values.shape)


def progress_at(local_time: float, delay: float, duration: float) -> float:
    """An animation's progress at ``local_time`` seconds into its step."""
    if duration <= 0.0:
        return 1.0 if local_time >= delay else 0.0
    return _clamp01((local_time - delay) / duration)
