"""The connections of a model's layout as drawable data: the residual stream down the centre and a line for each "block A feeds block B".

`flow_lines(layout)` turns the block-level flow (scenes/flow_graph.py) into paths and segments:

- the spine: the stream blocks joined in order (embedding, each layer's adds, the output), one
  vertical line that enters and leaves every layer; where the stack wraps into a new column
  it ends in a short stub below the column and starts again above the next;
- taps: a horizontal line from the spine into each norm that reads the stream;
- edges: every other connection, routed orthogonally around the blocks (scenes/flow_route.py).
  A line into a block computed by a matrix goes into that matrix (the norm's output into W_fc,
  then W_fc to fc), as the LLM Visualization draws it. Lines between a block and the repeated
  units of a bank (every head, every expert) reach the bank once and fan out inside it in a
  comb (scenes/flow_comb.py). A line is no wider than the side of a block it meets.

Every path is cut where it crosses the boxes of the hierarchy groups it passes through and each
piece becomes a child of the innermost group holding it (scenes/flow_hierarchy.py), so a closed
layer or head (drawn as its proxy) draws no line of its own. Lines are thin boxes half a cell
deep, inside the blocks' depth, so a line passing behind a block disappears into it; collinear
pieces of one group merge into one box.

A layer is routed once per distinct kind of layer and copied with an offset (GPT-3's 96 layers
are one routing), and a head's lines once per bank. numpy only, no renderer.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .flow_comb import clean_polyline, comb_paths
from .flow_graph import IN, FlowGraph, flow_graph, weight_of
from .flow_hierarchy import (Hierarchy, common_group, cut_at_groups, endpoint_box, endpoint_group, lift,
                             unit_group)
from .flow_route import route
from .layout import KIND_RESIDUAL, Layout

KIND_EDGE, KIND_BRANCH, KIND_STREAM = 0, 1, 2   # a line inside a sub-block, into or out of the stream, the stream
KIND_COLORS = np.array([(0.50, 0.58, 0.70),     # blue-grey: reads on the dark background, unlike any data colour
                        (0.50, 0.66, 0.62),
                        (0.44, 0.74, 0.54)], np.float32)  # the residual blocks' green, quieter
# Widths as fractions of the stream's drawn width (48 units for nano-GPT, 400 for GPT-3).
WIDTH_FRAC = {KIND_STREAM: 0.05, KIND_BRANCH: 0.03, KIND_EDGE: 0.03}
MEMBER_WIDTH_SCALE = 0.7   # lines inside a head or expert: thinner, like the blocks they join
LAYER_WIDTH_FRAC = 0.07    # line widths follow at least this share of a layer's width
MIN_WIDTH = 0.5
LINE_DEPTH = 0.5           # z thickness; blocks are 1 deep

_DIGITS = re.compile(r"\d+")


@dataclass
class FlowLines:
    """Drawn paths (one per connection) and the segments (boxes) they are built from.

    Paths: `path_points[p]` the polyline (MAX_POINTS, 3) in world space from source to target,
    its first `path_count[p]` points used (the rest repeat the last);
    `path_kind`, `path_width`; `path_start` / `path_end` the depths (steps of the forward pass)
    at which data leaves the source and reaches the target; `pair_path`, `pair_src`,
    `pair_dst` the block-level edges (layout rows) each path stands for; `path_segments`
    the segments a path is drawn with (CSR: `path_seg_offsets`).

    Segments: `seg_center`, `seg_size` (n, 3) boxes, `seg_group` the layout group each is a
    child of, `seg_kind`.
    """
    path_points: np.ndarray
    path_count: np.ndarray
    path_kind: np.ndarray
    path_width: np.ndarray
    path_start: np.ndarray
    path_end: np.ndarray
    pair_path: np.ndarray
    pair_src: np.ndarray
    pair_dst: np.ndarray
    path_seg_offsets: np.ndarray
    path_segments: np.ndarray
    seg_center: np.ndarray
    seg_size: np.ndarray
    seg_group: np.ndarray
    seg_kind: np.ndarray

    def __len__(self) -> int:
        return len(self.seg_center)

    @property
    def n_paths(self) -> int:
        return len(self.path_kind)

    def seg_color(self) -> np.ndarray:
        return KIND_COLORS[self.seg_kind]


# ---------------------------------------------------------------- one unit's connections

@dataclass
class _Edge:
    a: tuple
    b: tuple
    kind: int
    pairs: list          # (src row, dst row) block edges it stands for
    start: float
    end: float
    fan: tuple | None = None   # (bank, the endpoint outside it, which side is the member)


class _Router:
    """Routes the edges of the units, with the obstacles each one's hierarchy shows around it."""

    def __init__(self, layout: Layout, graph: FlowGraph, tree: Hierarchy, stream_width: float):
        self.layout, self.graph, self.tree = layout, graph, tree
        self.s = stream_width
        rows = np.flatnonzero(layout.kind == KIND_RESIDUAL)
        self.stream = float(layout.size[rows[0], 0]) if len(rows) else stream_width
        self._member_cache: dict = {}
        self._geometry_cache: dict = {}

    def width(self, kind: int, lca: int) -> float:
        if self.tree.member[lca] or self._inside_member(lca):  # inside a head: as fine as its blocks
            return max(MIN_WIDTH, WIDTH_FRAC[kind] * MEMBER_WIDTH_SCALE * self.stream)
        return max(MIN_WIDTH, WIDTH_FRAC[kind] * self.s)

    def _inside_member(self, g: int) -> bool:
        return any(self.tree.member[a] for a in self.tree.ancestors(g))

    def chain(self, a, b, lca: int) -> list[int]:
        """The groups a line between a and b runs through: their common group first, then the
        groups holding either end below it."""
        chain = [lca]
        for ep in (a, b):
            g = endpoint_group(self.tree, ep)
            while g >= 0 and g != lca:
                chain.append(g)
                g = int(self.tree.parent[g])
        return chain

    def obstacles(self, a, b, lca: int, neighbours: set) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Boxes a line between a and b should not cross (hard: other blocks and groups; soft: the
        blocks it is related to, which it may pass behind when that saves a long detour) and the
        chain of groups it runs through."""
        tree = self.tree
        chain = self.chain(a, b, lca)
        skip_groups = np.array(sorted(set(chain) | {ep[1] for ep in (a, b) if ep[0] == "g"}), np.int64)
        ends = np.array([ep[1] for ep in (a, b) if ep[0] == "b"], np.int64)
        related = np.array(sorted(neighbours), np.int64)
        hard, soft = [], []
        for g in chain:
            rows = tree.child_blocks(g)
            rows = rows[~np.isin(rows, ends)]
            near = np.isin(rows, related)
            hard.append(tree.block_box[rows[~near]])
            soft.append(tree.block_box[rows[near]])
            groups = tree.child_groups(g)
            hard.append(tree.group_box[groups[~np.isin(groups, skip_groups)]])
        return np.concatenate(hard), np.concatenate(soft), chain

    def route_edge(self, e: _Edge, neighbours: set):
        """(points (k, 2), crossings, width, chain) of one edge."""
        tree = self.tree
        lca = common_group(tree, endpoint_group(tree, e.a), endpoint_group(tree, e.b))
        w = self.width(e.kind, lca)
        key = self._member_key(e, lca)
        if key is not None and key in self._member_cache:
            rel, crossed, w = self._member_cache[key]
            return rel + self._anchor(lca), crossed, w, [lca]
        hard, soft, chain = self.obstacles(e.a, e.b, lca, neighbours)
        points, crossed = self._route(e, w, hard, soft)
        # No thicker than the side of a block it meets (a GPT-3 activation is 8 cells tall and
        # 400 wide): where it would be, route again with the thinner line.
        cap = min(_side_cap(tree, e.a, points[:2]), _side_cap(tree, e.b, points[-2:]))
        if cap < w:
            w = max(MIN_WIDTH, cap)
            points, crossed = self._route(e, w, hard, soft)
        if key is not None:
            self._member_cache[key] = (points - self._anchor(lca), crossed, w)
        return points, crossed, w, chain

    def _route(self, e: _Edge, w: float, hard: np.ndarray, soft: np.ndarray):
        tree = self.tree
        a, b = endpoint_box(tree, e.a, w / 2), endpoint_box(tree, e.b, w / 2)
        # The same boxes around the same obstacles (a sub-block shared by several kinds of layer,
        # Jamba's Mamba band with an MLP or with experts) route the same way, moved.
        origin = a[:2].copy()
        shape = np.round(np.concatenate([a, b, hard.ravel(), [-1.0, -1.0], soft.ravel()]).reshape(-1, 2) - origin, 6)
        geometry = (w, shape.tobytes())
        hit = self._geometry_cache.get(geometry)
        if hit is None:
            points, crossed = route(a, b, hard, w, soft=soft)
            self._geometry_cache[geometry] = (points - origin, crossed)
        else:
            points, crossed = hit[0] + origin, hit[1]
        return points, crossed

    def _anchor(self, g: int) -> np.ndarray:
        rows = self.tree.child_blocks(g)
        return self.layout.center[rows[0], :2].astype(np.float64) if len(rows) else \
            self.tree.group_box[g, :2]

    def _member_key(self, e: _Edge, lca: int):
        """Edges inside one head (or expert) repeat in every copy: one routing serves them all."""
        if not self.tree.member[lca] or e.a[0] != "b" or e.b[0] != "b":
            return None
        gid = self.layout.group_ids[lca]
        ids = [self.layout.ids[e.a[1]], self.layout.ids[e.b[1]]]
        if not all(i.startswith(gid + ".") for i in ids):
            return None
        return (_DIGITS.sub("#", gid), ids[0][len(gid):], ids[1][len(gid):], e.kind)


SIDE_FRAC = 0.6  # a line is at most this share of the side of a block it leaves or enters


def _side_cap(tree: Hierarchy, ep, leg: np.ndarray) -> float:
    """The widest a line may be where its leg meets a block: a share of that side's length."""
    if ep[0] != "b" or len(leg) < 2:
        return np.inf
    x0, y0, x1, y1 = tree.block_box[ep[1]]
    horizontal = abs(leg[1][1] - leg[0][1]) < 1e-9
    return SIDE_FRAC * ((y1 - y0) if horizontal else (x1 - x0))


MAX_POINTS = 12  # a routed path has at most 5 legs, and a comb into a bank adds up to 5


class _Collected:
    """Paths and pieces gathered while routing one unit, then frozen into arrays (a chunk)."""

    def __init__(self):
        self.points, self.kind, self.width, self.start, self.end = [], [], [], [], []
        self.pair_path, self.pair_src, self.pair_dst = [], [], []
        self.piece_a, self.piece_b, self.piece_group, self.piece_path = [], [], [], []
        self.piece_width = []

    def add(self, points, kind, width, start, end, pairs, pieces, piece_width=None) -> None:
        """One path and the pieces it is drawn with (each the path's width unless given)."""
        p = len(self.points)
        self.points.append(np.asarray(points, np.float64))
        self.kind.append(kind)
        self.width.append(width)
        self.start.append(start)
        self.end.append(end)
        for s, d in pairs:
            self.pair_path.append(p)
            self.pair_src.append(s)
            self.pair_dst.append(d)
        for i, (a, b, g) in enumerate(pieces):
            self.piece_a.append(a)
            self.piece_b.append(b)
            self.piece_group.append(g)
            self.piece_path.append(p)
            self.piece_width.append(width if piece_width is None else piece_width[i])

    def freeze(self) -> dict:
        n = len(self.points)
        pts = np.zeros((n, MAX_POINTS, 2))
        count = np.zeros(n, np.int64)
        for i, p in enumerate(self.points):
            k = min(len(p), MAX_POINTS)
            pts[i, :k] = p[:k]
            pts[i, k:] = p[k - 1]
            count[i] = k
        return {"points": pts, "count": count, "kind": np.array(self.kind, np.int8),
                "width": np.array(self.width, np.float64), "start": np.array(self.start, np.float64),
                "end": np.array(self.end, np.float64), "pair_path": np.array(self.pair_path, np.int64),
                "pair_src": np.array(self.pair_src, np.int64), "pair_dst": np.array(self.pair_dst, np.int64),
                "piece_a": np.array(self.piece_a, np.float64).reshape(-1, 2),
                "piece_b": np.array(self.piece_b, np.float64).reshape(-1, 2),
                "piece_group": np.array(self.piece_group, np.int64),
                "piece_path": np.array(self.piece_path, np.int64),
                "piece_width": np.array(self.piece_width, np.float64)}


def _stream_x(layout: Layout, unit) -> float:
    """Where the stream runs through a unit: its stream blocks', else its first norm output's centre."""
    rows = unit.rows
    stream = rows[layout.kind[rows] == KIND_RESIDUAL]
    if len(stream):
        return float(layout.center[stream[0], 0])
    for r, rel in zip(rows, unit.rels):
        if rel.endswith(".out") and rel.split(".")[0].startswith("ln"):
            return float(layout.center[r, 0])
    return float(layout.center[rows[0], 0])


def _on_stream(tree: Hierarchy, row: int, sx: float) -> bool:
    x0, _, x1, _ = tree.block_box[row]
    return x0 - 1e-6 <= sx <= x1 + 1e-6


def _stream_links(layout: Layout, tree: Hierarchy, unit, tpl) -> tuple[list, list]:
    """Local indices of the blocks on the stream that the stream entering a unit feeds: the first
    continues the spine into the unit; any other (DeepSeek's MTP module under the output) is routed
    on its own. The same for every unit of a kind, so found once per template."""
    sx = _stream_x(layout, unit)
    spine, far = [], []
    for s_loc, d_loc in zip(tpl.src.tolist(), tpl.dst.tolist()):
        if s_loc == IN and _on_stream(tree, int(unit.rows[d_loc]), sx):
            (far if spine else spine).append(d_loc)
    return spine, far


def _unit_edges(layout: Layout, graph: FlowGraph, tree: Hierarchy, unit, tpl) -> list[_Edge]:
    """The edges to draw inside one unit, before routing: taps, weights as entries, lifted endpoints."""
    rows = unit.rows
    is_stream = layout.kind == KIND_RESIDUAL
    depth = graph.depth
    sx = _stream_x(layout, unit)
    edges: dict[tuple, _Edge] = {}
    weight_links: dict[int, int] = {}

    def add(a, b, kind, pair, start, end):
        e = edges.get((a, b))
        if e is None:
            edges[(a, b)] = _Edge(a, b, kind, [pair], start, end)
        else:
            e.pairs.append(pair)
            e.start, e.end = min(e.start, start), max(e.end, end)

    for s_loc, d_loc in zip(tpl.src, tpl.dst):
        dst = int(rows[d_loc])
        src = int(rows[s_loc]) if s_loc != IN else int(unit.in_row)
        start, end = float(depth[src]), float(depth[dst])
        src_stream = bool(is_stream[src])
        if s_loc == IN and _on_stream(tree, dst, sx):
            continue  # the spine (_stream_links)
        if src_stream and not _on_stream(tree, dst, sx):
            # A tap: from the spine, level with the block it feeds.
            a = ("p", (sx, float(layout.center[dst, 1])), unit_group(tree, dst))
            add(a, ("b", dst), KIND_BRANCH, (src, dst), start, end)
            continue
        kind = KIND_STREAM if src_stream and is_stream[dst] else \
            KIND_BRANCH if src_stream or is_stream[dst] else KIND_EDGE
        w = weight_of(layout, dst)
        if w >= 0 and not src_stream:
            weight_links[dst] = w
            add(("b", src), ("b", w), kind, (src, dst), start, end - 0.5)
        else:
            add(("b", src), ("b", dst), kind, (src, dst), start, end)
    # A matrix into its output; also for outputs no other block feeds (the position embedding).
    fed = set(rows[tpl.dst].tolist())
    for dst in rows.tolist():
        if dst not in fed and dst not in weight_links:
            w = weight_of(layout, dst)
            if w >= 0:
                weight_links[dst] = w
    for dst, w in weight_links.items():
        add(("b", w), ("b", dst), KIND_EDGE, (w, dst), float(depth[dst]) - 0.5, float(depth[dst]))

    # Lift endpoints inside repeated units; the lifted ones form a fan per bank.
    lifted: dict[tuple, _Edge] = {}
    for e in edges.values():
        lca = common_group(tree, endpoint_group(tree, e.a), endpoint_group(tree, e.b))
        a, bank_a = lift(tree, e.a, lca)
        b, bank_b = lift(tree, e.b, lca)
        if bank_a >= 0 and bank_b >= 0:
            continue  # unit to unit across banks: no such flow in these families
        fan = (bank_b, a, "b") if bank_b >= 0 else (bank_a, b, "a") if bank_a >= 0 else None
        old = lifted.get((a, b))
        if old is not None:
            old.pairs += e.pairs
            old.start, old.end = min(old.start, e.start), max(old.end, e.end)
        else:
            lifted[(a, b)] = _Edge(a, b, e.kind, list(e.pairs), e.start, e.end, fan)
    return list(lifted.values())


class _Neighbours:
    """Blocks a line may pass behind (soft obstacles): the other inputs of its targets and other readers of its
    sources (a line from the stream into a norm's output passes its statistics), and their matrices."""

    def __init__(self, layout: Layout, src: np.ndarray, dst: np.ndarray):
        self.layout = layout
        self.inputs: dict[int, set] = {}
        self.readers: dict[int, set] = {}
        for s, d in zip(src.tolist(), dst.tolist()):
            self.inputs.setdefault(d, set()).add(s)
            self.readers.setdefault(s, set()).add(d)
        self._weights: dict[int, int] = {}

    def __call__(self, e: _Edge) -> set:
        out = set()
        for s, d in e.pairs:
            out |= self.inputs.get(d, set())
            out |= self.readers.get(s, set())
        for r in list(out):
            w = self._weights.get(r)
            if w is None:
                w = self._weights[r] = weight_of(self.layout, r)
            if w >= 0:
                out.add(w)
        return out


def _route_unit(layout, graph, tree, unit, tpl, router: _Router, sink: _Collected) -> None:
    edges = _unit_edges(layout, graph, tree, unit, tpl)
    neighbours = _Neighbours(layout, np.where(tpl.src == IN, unit.in_row, unit.rows[np.maximum(tpl.src, 0)]),
                             unit.rows[tpl.dst])
    fans: dict[tuple, list[_Edge]] = {}
    plain = []
    for e in edges:
        (fans.setdefault(e.fan, []) if e.fan is not None else plain).append(e)
    for e in plain:
        points, _, w, chain = router.route_edge(e, neighbours(e))
        sink.add(points, e.kind, w, e.start, e.end, e.pairs, cut_at_groups(tree, points, chain))
    for (bank, other, side), members in fans.items():
        _route_fan(tree, router, sink, bank, other, side, members, neighbours)


def _route_fan(tree: Hierarchy, router: _Router, sink: _Collected, bank: int, other, side: str,
               members: list[_Edge], neighbours) -> None:
    """Lines between one block and every unit of a bank (each head, each expert): one line to the
    bank's box, then a comb inside it, a bus along each row of units with a drop into each, joined
    by a trunk beside the rows. Every unit gets its own path (its pulse), drawn with shared pieces."""
    inward = side == "b"
    units = [e.b if inward else e.a for e in members]
    all_pairs = [p for e in members for p in e.pairs]
    whole = _Edge(other, ("g", bank), members[0].kind, all_pairs, 0.0, 0.0) if inward else \
        _Edge(("g", bank), other, members[0].kind, all_pairs, 0.0, 0.0)
    lca = common_group(tree, endpoint_group(tree, whole.a), endpoint_group(tree, whole.b))
    if lca == bank:
        # The block is inside the bank (a K/V group's keys and its query heads): start at its edge.
        w = router.width(members[0].kind, lca)
        box = endpoint_box(tree, other, 0.0)
        grid = np.array([endpoint_box(tree, u, 0.0) for u in units])
        above = box[1] >= grid[:, 3].max()
        below = box[3] <= grid[:, 1].min()
        cx = (box[0] + box[2]) / 2
        entry = np.array([cx, box[1] if above else box[3] if below else (box[1] + box[3]) / 2])
        outside = entry[None]
    else:
        outside, _, w, _ = router.route_edge(whole, neighbours(whole))
        if not inward:
            outside = outside[::-1]
        entry = outside[-1]
    combs, w_comb = comb_paths(tree, bank, units, entry, inward, w)
    for e, comb in zip(members, combs):
        chain = router.chain(e.a, e.b, common_group(tree, endpoint_group(tree, e.a), endpoint_group(tree, e.b)))
        pieces = cut_at_groups(tree, outside, chain) if len(outside) > 1 else []
        widths = [w] * len(pieces)
        inner = cut_at_groups(tree, comb, chain)
        pieces += inner
        widths += [w_comb] * len(inner)
        points = clean_polyline(np.concatenate([outside, comb[1:]]))
        if not inward:
            points = points[::-1]
        sink.add(points, e.kind, w_comb, e.start, e.end, e.pairs, pieces, widths)


# ---------------------------------------------------------------- the whole model

def _spine_gap(layout: Layout, tree: Hierarchy) -> float:
    """The gap between stacked top-level groups (layers), for the stubs where the stream changes column."""
    top = np.flatnonzero(layout.group_parent == 0)
    boxes = tree.group_box[top]
    gaps = boxes[:-1, 1] - boxes[1:, 3]
    same_column = np.abs((boxes[:-1, 0] + boxes[:-1, 2]) - (boxes[1:, 0] + boxes[1:, 2])) < 1e-3 * np.abs(boxes).max()
    gaps = gaps[same_column & (gaps > 0)]
    return float(np.median(gaps)) if len(gaps) else 1.0


def _add_spine(layout, graph, tree, router: _Router, sink: _Collected, src: int, dst: int) -> None:
    """The stream from one unit's last stream block into the next unit's first block on the stream."""
    w = router.width(KIND_STREAM, 0)
    depth = graph.depth
    start, end = float(depth[src]), float(depth[dst])
    a, b = tree.block_box[src], tree.block_box[dst]
    ax, bx = (a[0] + a[2]) / 2, (b[0] + b[2]) / 2
    chain = [common_group(tree, int(layout.group[src]), int(layout.group[dst]))]
    for row in (src, dst):
        g = int(layout.group[row])
        while g >= 0 and g != chain[0]:
            chain.append(g)
            g = int(tree.parent[g])
    if abs(ax - bx) < 1e-3 * max(1.0, abs(ax)) or (min(a[2], b[2]) > max(a[0], b[0])):
        x = (max(a[0], b[0]) + min(a[2], b[2])) / 2
        points = np.array([(x, a[1]), (x, b[3])])
        sink.add(points, KIND_STREAM, w, start, end, [(src, dst)], cut_at_groups(tree, points, chain))
        return
    # A new column: a stub out of the bottom of one and into the top of the next.
    half_gap = 0.5 * _spine_gap(layout, tree)
    below = tree.group_box[unit_group(tree, src), 1] - half_gap
    above = tree.group_box[unit_group(tree, dst), 3] + half_gap
    middle = (start + end) / 2
    for pts, s0, s1 in ((np.array([(ax, a[1]), (ax, below)]), start, middle),
                        (np.array([(bx, above), (bx, b[3])]), middle, end)):
        sink.add(pts, KIND_STREAM, w, s0, s1, [(src, dst)], cut_at_groups(tree, pts, chain))


def _copy_chunk(layout: Layout, chunk: dict, ref, unit) -> dict:
    """The reference unit's chunk (paths and merged segments) moved onto another unit of its kind:
    a layer is a copy of the same template, so its blocks and groups follow the reference's at a
    fixed row offset and its geometry at a fixed offset in space."""
    offset = layout.center[unit.rows[0], :2].astype(np.float64) - layout.center[ref.rows[0], :2]
    lo, hi = int(ref.rows[0]), int(ref.rows[-1])

    def rows(r: np.ndarray) -> np.ndarray:
        moved = np.where((r >= lo) & (r <= hi), r + (int(unit.rows[0]) - lo), r)
        return np.where(r == ref.in_row, unit.in_row, moved)

    g_ref, g_unit = layout.group_index(ref.name), layout.group_index(unit.name)
    g_count = _group_count(layout, ref.name, g_ref)
    g = chunk["seg_group"]
    out = dict(chunk)
    out["points"] = chunk["points"] + offset
    out["start"] = chunk["start"] + (unit.depth0 - ref.depth0)
    out["end"] = chunk["end"] + (unit.depth0 - ref.depth0)
    out["pair_src"], out["pair_dst"] = rows(chunk["pair_src"]), rows(chunk["pair_dst"])
    center = chunk["seg_center"].copy()
    center[:, :2] += offset
    out["seg_center"] = center
    out["seg_group"] = np.where((g >= g_ref) & (g < g_ref + g_count), g + (g_unit - g_ref), g)
    return out


def _group_count(layout: Layout, name: str, first: int) -> int:
    """How many groups a layer has (itself and everything below it, listed after it)."""
    prefix = name + "."
    n = 1
    while first + n < len(layout.group_ids) and layout.group_ids[first + n].startswith(prefix):
        n += 1
    return n


def _line_scale(layout: Layout) -> float:
    """What line widths are fractions of: the stream's drawn width, or for models whose layers are
    far wider than their stream (a grid of 96 heads) a share of a layer's width, so the lines
    stay visible at the distance that shows a whole layer."""
    stream_rows = np.flatnonzero(layout.kind == KIND_RESIDUAL)
    s = float(layout.size[stream_rows[0], 0]) if len(stream_rows) else float(np.median(layout.size[:, 0]))
    top = np.flatnonzero(layout.group_parent == 0)
    layer = float(np.median(layout.group_size[top, 0])) if len(top) else 0.0
    return max(s, LAYER_WIDTH_FRAC * layer)


def flow_lines(layout: Layout, graph: FlowGraph | None = None) -> FlowLines:
    """The model's spine, taps and edges as paths and segments (see the module docstring)."""
    graph = graph or flow_graph(layout)
    tree = Hierarchy(layout)
    router = _Router(layout, graph, tree, _line_scale(layout))
    by_key: dict = {}
    for unit in graph.units:
        by_key.setdefault(unit.key, []).append(unit)
    chunks = []
    for key, units in by_key.items():
        sink = _Collected()
        _route_unit(layout, graph, tree, units[0], graph.templates[key], router, sink)
        chunk = _merge(sink.freeze())
        chunks.append(chunk)
        chunks += [_copy_chunk(layout, chunk, units[0], unit) for unit in units[1:]]
    # What joins the units: the spine, and the rare edge from the stream to a block far below it.
    sink = _Collected()
    links = {key: _stream_links(layout, tree, units[0], graph.templates[key]) for key, units in by_key.items()}
    for unit in graph.units:
        spine, far = links[unit.key]
        for d_loc in spine:
            _add_spine(layout, graph, tree, router, sink, int(unit.in_row), int(unit.rows[d_loc]))
        for src, dst in ((int(unit.in_row), int(unit.rows[d])) for d in far):
            e = _Edge(("b", src), ("b", dst), KIND_BRANCH, [(src, dst)], float(graph.depth[src]),
                      float(graph.depth[dst]))
            points, _, w, chain = router.route_edge(e, set())
            sink.add(points, e.kind, w, e.start, e.end, e.pairs, cut_at_groups(tree, points, chain))
    # Across stacks (the encoder's output into each decoder layer's cross-attention, the projector's
    # tokens into the decoder): one line per layer and source, into the first block it feeds there.
    links = getattr(layout, "links", {})
    for unit in graph.units:
        ext = graph.templates[unit.key].ext
        first: dict[str, int] = {}
        for name, i in ext:
            first.setdefault(name, int(unit.rows[i]))
        for name, dst in first.items():
            try:
                src = layout.index(links[name])
            except KeyError:
                continue
            e = _Edge(("b", src), ("b", dst), KIND_BRANCH, [(src, dst)], float(graph.depth[src]),
                      float(graph.depth[dst]))
            points, _, w, chain = router.route_edge(e, set())
            sink.add(points, e.kind, w, e.start, e.end, e.pairs, cut_at_groups(tree, points, chain))
    chunks.append(_merge(sink.freeze()))
    # One set of arrays: each chunk's path and segment indices shifted past the chunks before it.
    paths = np.cumsum([0] + [len(c["kind"]) for c in chunks])
    segs = np.cumsum([0] + [len(c["seg_group"]) for c in chunks])
    cat = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    cat["pair_path"] = np.concatenate([c["pair_path"] + b for c, b in zip(chunks, paths)])
    cat["link_path"] = np.concatenate([c["link_path"] + b for c, b in zip(chunks, paths)])
    cat["link_seg"] = np.concatenate([c["link_seg"] + b for c, b in zip(chunks, segs)])
    offsets = np.searchsorted(cat["link_path"], np.arange(len(cat["kind"]) + 1))
    points = np.zeros(cat["points"].shape[:2] + (3,), np.float32)
    points[..., :2] = cat["points"]
    return FlowLines(points, cat["count"], cat["kind"], cat["width"].astype(np.float32), cat["start"],
                     cat["end"], cat["pair_path"], cat["pair_src"], cat["pair_dst"], offsets, cat["link_seg"],
                     cat["seg_center"], cat["seg_size"], cat["seg_group"], cat["seg_kind"])


def _merge(cat: dict) -> dict:
    """A chunk's pieces as boxes, collinear overlapping pieces of one group merged into one segment;
    the chunk gains its segments and, per path, the segments drawing it (link_path, link_seg)."""
    a, b, group, path = cat["piece_a"], cat["piece_b"], cat["piece_group"], cat["piece_path"]
    kind = cat["kind"]
    w = cat["piece_width"]
    horizontal = np.abs(b[:, 1] - a[:, 1]) < 1e-9
    lo = np.where(horizontal, np.minimum(a[:, 0], b[:, 0]), np.minimum(a[:, 1], b[:, 1])) - w / 2
    hi = np.where(horizontal, np.maximum(a[:, 0], b[:, 0]), np.maximum(a[:, 1], b[:, 1])) + w / 2
    fixed = np.where(horizontal, a[:, 1], a[:, 0])
    seg_kind = kind[path]
    # Merge key: same group, direction, line, width and kind; then overlapping intervals join.
    scale = max(1.0, float(np.abs(np.r_[lo, hi]).max())) if len(lo) else 1.0
    columns = (group, horizontal, np.round(fixed / scale * 1e7), np.round(w / scale * 1e7), seg_kind)
    by_key = np.lexsort(columns[::-1])
    changed = np.zeros(len(group), bool)
    for col in columns:
        c = np.asarray(col)[by_key]
        changed[1:] |= c[1:] != c[:-1]
    gid = np.empty(len(group), np.int64)
    gid[by_key] = np.cumsum(changed) - (1 if len(group) else 0)
    order = np.lexsort((lo, gid))
    span = (hi.max() - lo.min() + 1.0) if len(lo) else 1.0
    lo_s, hi_s = lo[order] + gid[order] * span * 2, hi[order] + gid[order] * span * 2
    run_hi = np.maximum.accumulate(hi_s) if len(hi_s) else hi_s
    new_run = np.r_[True, lo_s[1:] > run_hi[:-1] + 1e-9] if len(lo_s) else np.zeros(0, bool)
    run = np.cumsum(new_run) - 1
    n = int(run[-1]) + 1 if len(run) else 0
    run_of_piece = np.empty(len(order), np.int64)
    run_of_piece[order] = run
    seg_lo = np.full(n, np.inf)
    seg_hi = np.full(n, -np.inf)
    np.minimum.at(seg_lo, run_of_piece, lo)
    np.maximum.at(seg_hi, run_of_piece, hi)
    first = np.zeros(n, np.int64)
    first[run[::-1]] = order[::-1]  # any piece of each run (all share group, line, width, kind)
    seg_h = horizontal[first]
    seg_w = w[first]
    mid = (seg_lo + seg_hi) / 2
    length = seg_hi - seg_lo
    center = np.zeros((n, 3), np.float32)
    size = np.full((n, 3), LINE_DEPTH, np.float32)
    center[:, 0] = np.where(seg_h, mid, fixed[first])
    center[:, 1] = np.where(seg_h, fixed[first], mid)
    size[:, 0] = np.where(seg_h, length, seg_w)
    size[:, 1] = np.where(seg_h, seg_w, length)
    # Which segments draw each path (for the pulses: a path is shown when any of them is).
    packed = np.unique(path * max(n, 1) + run_of_piece)
    link_path, link_seg = np.divmod(packed, max(n, 1))
    out = {k: v for k, v in cat.items() if not k.startswith("piece_")}
    out.update(seg_center=center, seg_size=size, seg_group=group[first], seg_kind=seg_kind[first],
               link_path=link_path, link_seg=link_seg)
    return out
