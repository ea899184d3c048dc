"""Focus mode: the component tree of a model scene, the selected component, its breadcrumbs, and dimming.

A component is a layout group ("blocks.2.attn.head.1") or a block (a tensor id). The tree is
built once from the layout (child groups from ``group_parent``, child blocks from ``group``);
a group's descendant blocks are found with a few vectorised passes up the parent column (one
per level of nesting, never one per entity). Focusing writes FLAG_HIGHLIGHTED on the focused
component's entities and FLAG_DIMMED on every other renderable, as whole-array numpy operations.

Details for the panel: the component's shape, its parameter count (rows × cols of the learned
weights and biases under it) and, where a trace exists, the min / mean / max / std of its values.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from llmviz.engine.ecs.components import FLAG_DIMMED, FLAG_HIGHLIGHTED
from llmviz.scenes.layout_parts import KIND_BIAS, KIND_WEIGHT

GROUP, BLOCK = "group", "block"
SEARCH_LIMIT = 60  # search results shown at most
_WORD = re.compile(r"[a-z]+|\d+")


def _matches(words: list[str], text: str) -> bool:
    """The query's words appear in the text in order: a word inside a text word ("norm" in "layernorm"),
    a number as a whole number ("1" is not "12"). "transformer 2 head 1" is not "transformer 1 head 2"."""
    tokens = _WORD.findall(text)
    i = 0
    for w in words:
        numeric = w.isdigit()
        while i < len(tokens) and not (tokens[i] == w if numeric else w in tokens[i]):
            i += 1
        if i == len(tokens):
            return False
        i += 1 if numeric else 0
    return True


@dataclass(frozen=True)
class Node:
    """One component: a group (index into the layout's groups) or a block (layout row)."""
    kind: str
    index: int


@dataclass(frozen=True)
class Details:
    title: str
    ident: str
    shape: str
    params: int
    stats: tuple | None  # (min, mean, max, std) or None without a trace
    blocks: int


class ComponentTree:
    """Groups and blocks of a layout as a tree: children, parents, labels, descendant rows, search."""

    def __init__(self, layout):
        self.layout = layout
        parent = np.asarray(layout.group_parent, np.int64)
        n_groups = len(layout.group_ids)
        # Child groups and child blocks of every group, sorted once (argsort, not a loop over blocks).
        order = np.argsort(parent, kind="stable")
        bounds = np.searchsorted(parent[order], np.arange(-1, n_groups + 1))
        self._child_groups = order, bounds
        group = np.asarray(layout.group, np.int64)
        border = np.argsort(group, kind="stable")
        self._child_rows = border, np.searchsorted(group[border], np.arange(-1, n_groups + 1))
        self._rows_cache: dict[int, np.ndarray] = {}
        self._groups_cache: dict[int, np.ndarray] = {}
        self._texts: list[str] | None = None
        self._last_search: tuple = (None, [])

    # ------------------------------------------------------------------ structure
    @property
    def root(self) -> Node:
        return Node(GROUP, 0)

    def child_groups(self, g: int) -> np.ndarray:
        order, bounds = self._child_groups
        return order[bounds[g + 1]:bounds[g + 2]]

    def child_rows(self, g: int) -> np.ndarray:
        order, bounds = self._child_rows
        return order[bounds[g + 1]:bounds[g + 2]]

    def parent(self, node: Node) -> Node | None:
        if node.kind == BLOCK:
            g = int(self.layout.group[node.index])
        else:
            g = int(self.layout.group_parent[node.index])
        return None if g < 0 else Node(GROUP, g)

    def path(self, node: Node) -> list[Node]:
        """Root first, ``node`` last: the breadcrumbs."""
        out = [node]
        while (p := self.parent(out[-1])) is not None:
            out.append(p)
        return out[::-1]

    def label(self, node: Node) -> str:
        layout = self.layout
        if node.kind == GROUP:
            if node.index == 0:
                return "model"
            return layout.group_label[node.index] or layout.group_ids[node.index].rsplit(".", 1)[-1]
        return layout.label[node.index] or layout.ids[node.index]

    def ident(self, node: Node) -> str:
        return (self.layout.group_ids if node.kind == GROUP else self.layout.ids)[node.index]

    def node_of(self, ident: str) -> Node:
        try:
            return Node(BLOCK, self.layout.index(ident))
        except KeyError:
            return Node(GROUP, self.layout.group_index(ident))

    def descendant_groups(self, g: int) -> np.ndarray:
        """Groups under g, g included: one vectorised pass per nesting level."""
        if g not in self._groups_cache:
            parent = np.asarray(self.layout.group_parent, np.int64)
            mask = np.zeros(len(parent), bool)
            current = np.arange(len(parent))
            while (current >= 0).any():
                mask |= current == g
                current = np.where(current >= 0, parent[np.maximum(current, 0)], -1)
            self._groups_cache[g] = np.flatnonzero(mask)
        return self._groups_cache[g]

    def rows(self, node: Node) -> np.ndarray:
        """Layout rows of the blocks a component covers (a block: itself)."""
        if node.kind == BLOCK:
            return np.array([node.index], np.int64)
        g = node.index
        if g not in self._rows_cache:
            inside = np.zeros(len(self.layout.group_ids), bool)
            inside[self.descendant_groups(g)] = True
            group = np.asarray(self.layout.group, np.int64)
            self._rows_cache[g] = np.flatnonzero((group >= 0) & inside[np.maximum(group, 0)])
        return self._rows_cache[g]

    def _group_texts(self) -> list[str]:
        """Each group's labels along its path, lower case ("model transformer 2 self-attention 3 heads head 1")."""
        if self._texts is None:
            layout = self.layout
            texts: list[str] = []
            for g in range(len(layout.group_ids)):
                p = int(layout.group_parent[g])
                # Parents come before their children in the layout's group list; else walk the path.
                above = texts[p] if 0 <= p < g else (" ".join(self.label(n) for n in self.path(Node(GROUP, p)))
                                                     if p >= 0 else "")
                texts.append(f"{above} {self.label(Node(GROUP, g))}".lower())
            self._texts = texts
        return self._texts

    def search(self, query: str, limit: int = SEARCH_LIMIT) -> list[Node]:
        """Components whose label path or id holds the query's words in order; groups first.

        "transformer 2 attention head 1" (or "blocks.2.attn.head.1") finds that head, then its blocks.
        """
        words = _WORD.findall(query.lower())
        if not words:
            return []
        key = (tuple(words), limit)
        if self._last_search[0] == key:  # the panel asks every frame; the answer changes only with the query
            return self._last_search[1]
        out = self._search(words, limit)
        self._last_search = (key, out)
        return out

    def _search(self, words: list[str], limit: int) -> list[Node]:
        layout = self.layout
        texts = self._group_texts()
        out = [Node(GROUP, g) for g, text in enumerate(texts)
               if _matches(words, text) or _matches(words, layout.group_ids[g].lower())][:limit]
        if len(out) >= limit:
            return out
        group = layout.group
        for row, (ident, label) in enumerate(zip(layout.ids, layout.label)):
            g = int(group[row])
            if _matches(words, f"{texts[g] if g >= 0 else ''} {label.lower()}") or _matches(words, ident.lower()):
                out.append(Node(BLOCK, row))
                if len(out) >= limit:
                    break
        return out

    # ------------------------------------------------------------------ details
    def params(self, node: Node) -> int:
        rows = self.rows(node)
        kind = np.asarray(self.layout.kind)[rows]
        learned = rows[(kind == KIND_WEIGHT) | (kind == KIND_BIAS)]
        return int((np.asarray(self.layout.rows, np.int64)[learned] * np.asarray(self.layout.cols, np.int64)[learned]).sum())

    def details(self, node: Node, values=None) -> Details:
        layout = self.layout
        rows = self.rows(node)
        if node.kind == BLOCK:
            shape = f"{int(layout.rows[node.index])} × {int(layout.cols[node.index])}"
        else:
            size = layout.group_size[node.index]
            subgroups = len(self.child_groups(node.index))
            shape = f"{len(rows)} blocks" + (f", {subgroups} sub-groups" if subgroups else "") + \
                f" (box {size[0]:.0f} × {size[1]:.0f} × {size[2]:.0f})"
        stats = None
        if values is not None:
            arrays = []
            for row in rows[:4096]:  # a group of a live model: a few hundred blocks at most
                tensor = layout.ids[row]
                if tensor in values:
                    arrays.append(np.ravel(np.asarray(values[tensor], np.float64)))
            if arrays:
                data = np.concatenate(arrays)
                data = data[np.isfinite(data)]
                if len(data):
                    stats = (float(data.min()), float(data.mean()), float(data.max()), float(data.std()))
        return Details(self.label(node), self.ident(node), shape, self.params(node), stats, len(rows))


class Focus:
    """The selected component and its flags in the world: highlight it, dim all the rest."""

    def __init__(self, tree: ComponentTree, model_scene, world):
        self.tree = tree
        self.model = model_scene
        self.world = world
        self.node: Node | None = None
        self.mask = np.zeros(0, bool)  # slot -> in the focused component

    def is_focused(self, slot: int) -> bool:
        return bool(0 <= slot < len(self.mask) and self.mask[slot])

    def slots(self, node: Node) -> np.ndarray:
        """Entity slots of a component: its blocks and (for a group) its groups and their descendants."""
        blocks = self.model.block_slots[self.tree.rows(node)]
        if node.kind == GROUP:
            groups = self.model.group_slots[self.tree.descendant_groups(node.index)]
            return np.concatenate([blocks, groups[groups >= 0]]).astype(np.int64)
        return np.asarray(blocks, np.int64)

    def box(self, node: Node) -> tuple[np.ndarray, np.ndarray]:
        """Centre and half extents of the component's world box (from the world bounds of its entities)."""
        from llmviz.engine.systems.transform import world_box

        slots = self.model.block_slots[self.tree.rows(node)]
        if node.kind == GROUP and self.model.group_slots[node.index] >= 0:
            slots = np.array([self.model.group_slots[node.index]])
        if len(slots) == 0:
            layout = self.tree.layout
            return layout.group_center[node.index].astype(np.float64), layout.group_size[node.index] / 2.0
        center, half = world_box(self.world, np.asarray(slots))
        lo, hi = (center - half).min(axis=0), (center + half).max(axis=0)
        return (lo + hi) / 2.0, (hi - lo) / 2.0

    def select(self, node: Node | None) -> None:
        self.node = node
        self.apply()

    def step_out(self) -> Node | None:
        """Esc: to the parent group; from the root (or a block directly under it) to no focus."""
        if self.node is None:
            return None
        parent = self.tree.parent(self.node)
        self.select(None if parent is None or parent.index == 0 and self.node.kind == GROUP else parent)
        return self.node

    def clear(self) -> None:
        self.select(None)

    def apply(self) -> None:
        """Write the flags: no focus clears both bits everywhere; else highlight the focus, dim the complement."""
        flags = self.world["renderable"]["flags"]
        has = self.world["renderable"].has
        n = min(len(flags), len(has))
        both = flags.dtype.type(FLAG_HIGHLIGHTED | FLAG_DIMMED)
        flags[:n] &= ~both
        self.mask = focused = np.zeros(n, bool)
        if self.node is None:
            return
        focused[self.slots(self.node)] = True
        flags[:n][has[:n] & ~focused] |= flags.dtype.type(FLAG_DIMMED)
        flags[:n][focused] |= flags.dtype.type(FLAG_HIGHLIGHTED)
