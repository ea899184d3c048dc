"""Orthogonal routing of one connection between two boxes around obstacle boxes: pure 2D geometry, numpy only.

`route(a, b, obstacles, width)` returns the polyline (k, 2) of the cheapest axis-aligned path
from box a's edge to box b's edge and how many obstacles it crosses. Candidates are tried all
at once: a straight line where the boxes face each other, the two L shapes, Z shapes through
one channel and U shapes through two, the channels being the middles of the gaps between the
obstacles' and endpoints' edges (where a layout leaves its room). A line has a thickness: a
candidate that would graze a neighbour counts as crossing it. The cost is crossings first,
then length, then bends, so a clean detour beats a short line through a block.

Boxes are (x0, y0, x1, y1) with x0 <= x1, y0 <= y1.
"""
from __future__ import annotations

import numpy as np

CROSSING_COST = 1e9
BEND_COST = 4.0        # in line widths: a bend costs this much extra length
SOFT_COST = 1.0        # a length behind a related block counts this much more than one in the open
CLEARANCE = 0.25       # in line widths: the gap a line keeps from blocks it passes
MAX_CHANNELS = 48      # channel coordinates per axis, nearest the endpoints first


def _channels(coords: np.ndarray, lo: float, hi: float, margin: float) -> np.ndarray:
    """Middles of the gaps between distinct coordinates, plus one margin outside them all,
    restricted to [lo, hi] and to the MAX_CHANNELS nearest the centre of that window."""
    v = np.unique(coords)
    mids = (v[1:] + v[:-1]) / 2 if len(v) > 1 else np.zeros(0)
    out = np.concatenate([mids, [v.min() - margin, v.max() + margin]]) if len(v) else np.zeros(0)
    out = out[(out >= lo) & (out <= hi)]
    if len(out) > MAX_CHANNELS:
        centre = (lo + hi) / 2
        out = out[np.argsort(np.abs(out - centre), kind="stable")[:MAX_CHANNELS]]
    return out


def _outside(v, lo, hi):
    return (v < lo) | (v > hi)


def _family(n: int, xs: list, ys: list) -> np.ndarray:
    """n paths of up to 5 points from per-point x and y (scalars or length-n arrays); shorter lists
    repeat their last point."""
    out = np.empty((n, 5, 2))
    k = len(xs)
    for i in range(5):
        out[:, i, 0] = xs[min(i, k - 1)]
        out[:, i, 1] = ys[min(i, k - 1)]
    return out


def candidates(a: np.ndarray, b: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Every candidate path from a to b as (n, 5, 2) points (shorter paths repeat their last point)."""
    ax0, ay0, ax1, ay1 = (float(v) for v in a)
    bx0, by0, bx1, by1 = (float(v) for v in b)
    acx, acy, bcx, bcy = (ax0 + ax1) / 2, (ay0 + ay1) / 2, (bx0 + bx1) / 2, (by0 + by1) / 2
    paths = []

    def facing(lo, hi, toward):  # the edge of an interval facing a coordinate
        return np.where(toward > hi, hi, lo)

    # Straight lines where the boxes face each other.
    lo, hi = max(ax0, bx0), min(ax1, bx1)
    if hi >= lo and (by1 <= ay0 or by0 >= ay1):
        x = (lo + hi) / 2
        paths.append(_family(1, [x, x], [ay0, by1] if by1 <= ay0 else [ay1, by0]))
    lo, hi = max(ay0, by0), min(ay1, by1)
    if hi >= lo and (bx1 <= ax0 or bx0 >= ax1):
        y = (lo + hi) / 2
        paths.append(_family(1, [ax0, bx1] if bx1 <= ax0 else [ax1, bx0], [y, y]))
    # L shapes: out of a's side, into b's top or bottom; and out of a's top or bottom, into b's side.
    if _outside(bcx, ax0, ax1) and _outside(acy, by0, by1):
        paths.append(_family(1, [ax1 if bcx > ax1 else ax0, bcx, bcx], [acy, acy, by1 if acy > by1 else by0]))
    if _outside(acx, bx0, bx1) and _outside(bcy, ay0, ay1):
        paths.append(_family(1, [acx, acx, bx1 if acx > bx1 else bx0], [ay1 if bcy > ay1 else ay0, bcy, bcy]))
    # Z shapes through one horizontal channel (vertical out, across, vertical in), or one vertical.
    y = ys[_outside(ys, ay0, ay1) & _outside(ys, by0, by1)]
    if len(y):
        paths.append(_family(len(y), [acx, acx, bcx, bcx], [facing(ay0, ay1, y), y, y, facing(by0, by1, y)]))
    x = xs[_outside(xs, ax0, ax1) & _outside(xs, bx0, bx1)]
    if len(x):
        paths.append(_family(len(x), [facing(ax0, ax1, x), x, x, facing(bx0, bx1, x)], [acy, acy, bcy, bcy]))
    # U shapes through a vertical then a horizontal channel (side out, top/bottom in), and the reverse.
    x, y = xs[_outside(xs, ax0, ax1)], ys[_outside(ys, by0, by1)]
    if len(x) and len(y):
        gx, gy = (g.ravel() for g in np.meshgrid(x, y))
        paths.append(_family(len(gx), [facing(ax0, ax1, gx), gx, gx, bcx, bcx],
                             [acy, acy, gy, gy, facing(by0, by1, gy)]))
    x, y = xs[_outside(xs, bx0, bx1)], ys[_outside(ys, ay0, ay1)]
    if len(x) and len(y):
        gx, gy = (g.ravel() for g in np.meshgrid(x, y))
        paths.append(_family(len(gx), [acx, acx, gx, gx, facing(bx0, bx1, gx)],
                             [facing(ay0, ay1, gy), gy, gy, bcy, bcy]))
    return np.concatenate(paths) if paths else np.zeros((0, 5, 2))


def crossings(paths: np.ndarray, boxes: np.ndarray, half_width: float) -> np.ndarray:
    """(n,) how many (leg, box) pairs overlap: each leg a rectangle of the given half width
    across it (no extension along it, so a leg ending on a box's edge does not count)."""
    if len(boxes) == 0 or len(paths) == 0:
        return np.zeros(len(paths), np.int64)
    p, q = paths[:, :-1], paths[:, 1:]                      # (n, 4, 2) leg ends
    length = np.abs(q - p).sum(axis=2)
    horizontal = np.abs(q[..., 1] - p[..., 1]) < 1e-9
    lo, hi = np.minimum(p, q), np.maximum(p, q)
    pad_x = np.where(horizontal, 0.0, half_width)
    pad_y = np.where(horizontal, half_width, 0.0)
    x0, x1 = lo[..., 0] - pad_x, hi[..., 0] + pad_x
    y0, y1 = lo[..., 1] - pad_y, hi[..., 1] + pad_y
    eps = 1e-6
    bx0, by0, bx1, by1 = (boxes[:, i][None, None, :] for i in range(4))
    hit = ((x0[..., None] < bx1 - eps) & (x1[..., None] > bx0 + eps)
           & (y0[..., None] < by1 - eps) & (y1[..., None] > by0 + eps))
    hit &= (length > 1e-9)[..., None]
    return hit.sum(axis=(1, 2))


def hidden_length(paths: np.ndarray, boxes: np.ndarray, half_width: float) -> np.ndarray:
    """(n,) how much of each path runs behind the boxes (length along its legs inside them)."""
    if len(boxes) == 0 or len(paths) == 0:
        return np.zeros(len(paths))
    p, q = paths[:, :-1], paths[:, 1:]
    horizontal = np.abs(q[..., 1] - p[..., 1]) < 1e-9
    lo, hi = np.minimum(p, q), np.maximum(p, q)
    bx0, by0, bx1, by1 = (boxes[:, i][None, None, :] for i in range(4))
    along_lo = np.where(horizontal[..., None], np.maximum(lo[..., 0, None], bx0), np.maximum(lo[..., 1, None], by0))
    along_hi = np.where(horizontal[..., None], np.minimum(hi[..., 0, None], bx1), np.minimum(hi[..., 1, None], by1))
    across = np.where(horizontal[..., None], p[..., 1, None], p[..., 0, None])
    across_lo = np.where(horizontal[..., None], by0, bx0) - half_width
    across_hi = np.where(horizontal[..., None], by1, bx1) + half_width
    inside = (across > across_lo) & (across < across_hi)
    return (np.clip(along_hi - along_lo, 0.0, None) * inside).sum(axis=(1, 2))


def path_cost(paths: np.ndarray, crossed: np.ndarray, width: float) -> np.ndarray:
    legs = np.abs(np.diff(paths, axis=1)).sum(axis=2)
    bends = (legs > 1e-9).sum(axis=1) - 1
    return crossed * CROSSING_COST + legs.sum(axis=1) + bends * BEND_COST * width


def route(a, b, obstacles, width: float, soft=None) -> tuple[np.ndarray, int]:
    """The cheapest orthogonal path from box a to box b: (points (k, 2) without repeats, obstacles
    crossed). `soft` boxes (blocks the line is related to) may be crossed: freely by a straight line,
    by a bent one at SOFT_COST times the length it runs behind them."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    obstacles = np.asarray(obstacles, np.float64).reshape(-1, 4)
    soft = np.zeros((0, 4)) if soft is None else np.asarray(soft, np.float64).reshape(-1, 4)
    span = max(a[2], b[2]) - min(a[0], b[0]), max(a[3], b[3]) - min(a[1], b[1])
    reach = max(span) + 4 * width
    margin = 2.0 * width
    edges = np.concatenate([obstacles, soft, a[None], b[None]])
    xs = _channels(edges[:, [0, 2]].ravel(), min(a[0], b[0]) - reach, max(a[2], b[2]) + reach, margin)
    ys = _channels(edges[:, [1, 3]].ravel(), min(a[1], b[1]) - reach, max(a[3], b[3]) + reach, margin)
    paths = candidates(a, b, xs, ys)
    if len(paths) == 0:  # overlapping boxes: no way out of one into the other; a point
        c = (a[:2] + a[2:]) / 2
        return c[None], 0
    # The endpoints are obstacles too: a path may leave a and enter b only once, at its ends.
    half = width * (0.5 + CLEARANCE)
    crossed = crossings(paths, np.concatenate([obstacles, a[None], b[None]]), half)
    # A straight line may pass behind related blocks (it still reads as one line, like the MLP's
    # output behind W_proj into the stream); a bent one pays for what it hides, corners above all.
    legs = (np.abs(np.diff(paths, axis=1)).sum(axis=2) > 1e-9).sum(axis=1)
    cost = path_cost(paths, crossed, width) + hidden_length(paths, soft, half) * SOFT_COST * (legs > 1)
    best = int(np.argmin(cost))
    points = paths[best]
    keep = np.r_[True, np.abs(np.diff(points, axis=0)).sum(axis=1) > 1e-9]
    points = points[keep]
    # Drop middle points where the path goes straight on (a Z whose channel lies on its line).
    if len(points) > 2:
        d1, d2 = points[1:-1] - points[:-2], points[2:] - points[1:-1]
        straight = np.abs(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]) < 1e-9
        points = points[np.r_[True, ~straight, True]]
    return points, int(crossed[best])
