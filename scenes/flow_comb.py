"""Combs: the lines from one block to every unit of a bank (each head of an attention, each expert), inside the bank.

One line reaches the bank's box; inside it a bus runs along each row of units, in the gap above
the row for lines going in and below it for lines coming out, a drop joins each unit, and a
trunk beside the rows joins the buses. Every unit gets its own path (its own pulse); the pieces
they share merge into one segment when drawn.
"""
from __future__ import annotations

import numpy as np

from .flow_hierarchy import Hierarchy, endpoint_box

BUS_AT = 0.3               # a comb's bus lies this far across the gap from the row it serves
COMB_FRAC = 0.2            # a comb's lines: at most this share of the gaps between the rows they run in
DROP_AT = 0.2              # where along a unit's top (or bottom) its drop meets it
MIN_WIDTH = 0.5


def comb_paths(tree: Hierarchy, bank: int, units: list, entry: np.ndarray, inward: bool,
               width: float) -> tuple[list[np.ndarray], float]:
    """From the entry point on (or at) the bank's box to each unit, in the gaps between its rows:
    buses above the rows for lines going in (below them for lines coming out), a trunk on the side
    of the rows nearest the entry. Returns the paths, each from the entry point to the unit's edge,
    and the comb's line width."""
    boxes = np.array([endpoint_box(tree, u, 0.0) for u in units])
    bank_box = tree.group_box[bank]
    # Rows: units whose vertical extents overlap, top row first.
    order = np.argsort(-(boxes[:, 1] + boxes[:, 3]), kind="stable")
    row = np.zeros(len(units), np.int64)
    r, floor = 0, None  # floor: the lowest bottom of the row being filled
    for i in order:
        if floor is not None and boxes[i, 3] <= floor:
            r, floor = r + 1, boxes[i, 1]
        else:
            floor = boxes[i, 1] if floor is None else min(floor, boxes[i, 1])
        row[i] = r
    n_rows = r + 1
    top = np.array([boxes[row == k, 3].max() for k in range(n_rows)])
    bottom = np.array([boxes[row == k, 1].min() for k in range(n_rows)])
    # Buses in the gap above each row for lines going in, below each row for lines coming out,
    # each nearer its own row, so the two never share a line (nor do the two trunks).
    if inward:
        bus = top + BUS_AT * (np.r_[bank_box[3], bottom[:-1]] - top)
        near = 0
    else:
        bus = bottom - BUS_AT * (bottom - np.r_[top[1:], bank_box[1]])
        near = n_rows - 1
    # Drops come in left of centre: captions and titles ("head 3", "expert 17") sit over the centre.
    drop_x = boxes[:, 0] + DROP_AT * (boxes[:, 2] - boxes[:, 0])
    drop_end = boxes[:, 3] if inward else boxes[:, 1]
    col_gap = float(np.median(_row_gaps(boxes, row)))
    row_gap = float(np.median(np.r_[bank_box[3] - top[0], bottom[:-1] - top[1:]]))
    # Two buses share each gap between rows (in and out), so the comb's lines are finer than the
    # line that reaches the bank: a fraction of the gaps, never wider than that line.
    width = min(width, COMB_FRAC * row_gap, COMB_FRAC * col_gap if col_gap > 0 else np.inf)
    width = max(MIN_WIDTH, width)
    gap = max(width * 2.0, col_gap)
    reach = gap * (BUS_AT if inward else 1.0 - BUS_AT)
    left, right = boxes[:, 0].min() - reach, boxes[:, 2].max() + reach
    trunk = left if abs(entry[0] - left) <= abs(entry[0] - right) else right
    on_near_edge = abs(entry[1] - (bank_box[3] if inward else bank_box[1])) < 1e-6 * (1 + abs(entry[1])) \
        or (entry[1] >= top.max() if inward else entry[1] <= bottom.min())
    out = []
    for i in range(len(units)):
        k = row[i]
        if on_near_edge:
            pts = [entry, (entry[0], bus[near])]
            if k != near:
                pts += [(trunk, bus[near]), (trunk, bus[k])]
        else:  # entered from a side: along to the trunk, then to the row
            trunk = left if entry[0] <= (left + right) / 2 else right
            pts = [entry, (trunk, entry[1]), (trunk, bus[k])]
        pts += [(drop_x[i], bus[k]), (drop_x[i], drop_end[i])]
        out.append(clean_polyline(np.array(pts, np.float64)))
    return out, width


def _row_gaps(boxes: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Horizontal gaps between neighbours in the same row (the grid's column gaps)."""
    gaps = []
    for k in np.unique(row):
        b = boxes[row == k]
        b = b[np.argsort(b[:, 0])]
        g = b[1:, 0] - b[:-1, 2]
        gaps += g[g > 0].tolist()
    return np.array(gaps) if gaps else np.array([0.0])


def clean_polyline(points) -> np.ndarray:
    """A polyline without repeated points or points where it goes straight on (plain Python: a
    dozen points, thousands of times)."""
    out: list[tuple[float, float]] = []
    for x, y in (tuple(p) for p in np.asarray(points, np.float64).tolist()):
        if out and abs(x - out[-1][0]) + abs(y - out[-1][1]) <= 1e-9:
            continue
        if len(out) >= 2:
            (x0, y0), (x1, y1) = out[-2], out[-1]
            if (abs(x0 - x1) <= 1e-9 and abs(x1 - x) <= 1e-9) or (abs(y0 - y1) <= 1e-9 and abs(y1 - y) <= 1e-9):
                out[-1] = (x, y)  # straight on (axis-aligned legs): drop the middle point
                continue
        out.append((x, y))
    return np.array(out, np.float64)


