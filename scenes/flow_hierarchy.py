"""The layout's hierarchy as arrays, for drawing lines in it: boxes, ancestors, children, common groups, cutting a path at group boxes.

A line between two things (a block, a group's box, a point on the stream) runs through the
groups that hold them; `cut_at_groups` splits its path where it crosses their boxes so each
piece can be a child of the innermost group holding it (closed, that group draws none of it).
Repeated units (a head, a K/V group, an expert) are where lines from outside stop (`lift`).
"""
from __future__ import annotations

import re

import numpy as np

from .layout import Layout

MEMBER_GROUP = re.compile(r".*\.(?:head|kv_head)\.\d+$")   # a repeated unit that is a group
MEMBER_BLOCK = re.compile(r".*\.(?:expert|shared)\.\d+$")  # ... or a single block (an expert)


class Hierarchy:
    """Boxes of blocks and groups (xy), nesting depths, ancestors and children of the layout."""

    def __init__(self, layout: Layout):
        self.layout = layout
        c, h = layout.center[:, :2].astype(np.float64), layout.size[:, :2].astype(np.float64) / 2
        self.block_box = np.c_[c - h, c + h]
        gc, gh = layout.group_center[:, :2].astype(np.float64), layout.group_size[:, :2].astype(np.float64) / 2
        self.group_box = np.c_[gc - gh, gc + gh]
        parent = layout.group_parent
        self.parent = parent
        depth = np.zeros(len(parent), np.int64)
        p = parent.copy()
        while (p >= 0).any():
            depth += p >= 0
            p = np.where(p >= 0, parent[np.maximum(p, 0)], -1)
        self.depth = depth
        order = np.argsort(layout.group, kind="stable")
        self._block_order = order
        self._block_start = np.searchsorted(layout.group[order], np.arange(len(parent) + 1))
        gorder = np.argsort(parent, kind="stable")
        gorder = gorder[parent[gorder] >= 0]
        self._group_order = gorder
        self._group_start = np.searchsorted(parent[gorder], np.arange(len(parent) + 1))
        self.member = np.array([bool(MEMBER_GROUP.match(g)) for g in layout.group_ids])

    def child_blocks(self, g: int) -> np.ndarray:
        return self._block_order[self._block_start[g]:self._block_start[g + 1]]

    def child_groups(self, g: int) -> np.ndarray:
        return self._group_order[self._group_start[g]:self._group_start[g + 1]]

    def ancestors(self, g: int) -> list[int]:
        out = []
        while g >= 0:
            out.append(int(g))
            g = int(self.parent[g])
        return out


# An endpoint of a drawn line: a block ("b", row), a group's box ("g", group) or a point on the
# spine ("p", (x, y), the group holding it).
def endpoint_box(tree: Hierarchy, ep, half: float) -> np.ndarray:
    kind, value = ep[0], ep[1]
    if kind == "b":
        return tree.block_box[value]
    if kind == "g":
        return tree.group_box[value]
    x, y = value
    return np.array([x - half, y - half, x + half, y + half])


def endpoint_group(tree: Hierarchy, ep) -> int:
    if ep[0] == "b":
        return int(tree.layout.group[ep[1]])
    if ep[0] == "g":
        return int(tree.parent[ep[1]])
    return int(ep[2])


def common_group(tree: Hierarchy, ga: int, gb: int) -> int:
    above = set(tree.ancestors(ga))
    for g in tree.ancestors(gb):
        if g in above:
            return g
    return 0



def lift(tree: Hierarchy, ep, lca: int):
    """A block inside a repeated unit below `lca` becomes that unit: (endpoint, bank or -1)."""
    if ep[0] != "b":
        return ep, -1
    layout = tree.layout
    row = ep[1]
    outer = -1
    g = int(layout.group[row])
    while g >= 0 and g != lca:
        if tree.member[g]:
            outer = g
        g = int(tree.parent[g])
    if outer >= 0:
        return ("g", outer), int(tree.parent[outer])
    if MEMBER_BLOCK.match(layout.ids[row]) and int(layout.group[row]) != lca:
        return ep, int(layout.group[row])
    return ep, -1


def cut_at_groups(tree: Hierarchy, points: np.ndarray, chain: list[int]) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """The path cut at the chain's group boxes, each piece with the innermost group that holds it."""
    lca = chain[0]
    inner = [g for g in chain[1:]]
    out = []
    for p, q in zip(points[:-1], points[1:]):
        axis = 0 if abs(q[1] - p[1]) < 1e-9 else 1
        other = 1 - axis
        lo, hi = min(p[axis], q[axis]), max(p[axis], q[axis])
        cuts = {lo, hi}
        for g in inner:
            box = tree.group_box[g]
            if box[other] <= p[other] <= box[other + 2]:
                for c in (box[axis], box[axis + 2]):
                    if lo < c < hi:
                        cuts.add(float(c))
        cuts = sorted(cuts)
        for c0, c1 in zip(cuts[:-1], cuts[1:]):
            mid = (c0 + c1) / 2
            best, best_depth = lca, -1
            for g in inner:
                box = tree.group_box[g]
                if box[other] <= p[other] <= box[other + 2] and box[axis] <= mid <= box[axis + 2] \
                        and tree.depth[g] > best_depth:
                    best, best_depth = g, tree.depth[g]
            a = p.copy()
            b = p.copy()
            a[axis], b[axis] = c0, c1
            if q[axis] < p[axis]:
                a, b = b, a
            out.append((a, b, best))
    return out


def unit_group(tree: Hierarchy, row: int) -> int:
    """The top-level group (a layer, the embedding, the output) holding a block."""
    chain = tree.ancestors(int(tree.layout.group[row]))
    return chain[-2] if len(chain) >= 2 else chain[-1]


