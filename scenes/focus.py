"""Focus mode: the component tree of a model scene, the selected component, its breadcrumbs, and dimming.

A component is a layout group ("blocks.2.attn.head.1") or a block (a tensor id). The tree is
built once from the layout (child groups from ``group_parent``, child blocks from ``group``);
a group's descendant blocks are found with a few vectorised passes up the parent column (one
per level of nesting, never one per entity). Focusing writes FLAG_HIGHLIGHTED on the focused
component's entities and FLAG_DIMMED on every other renderable, as whole-array numpy operations.

Search reads an index built once per model (a few hundred ms on GPT-3, on a worker thread if the
caller likes): the texts as a few token patterns with their numbers factored out, so a keystroke
costs about a millisecond, not a regex over every block.

Details for the panel: what the component does, its shape in model units ("128 × 12288 (head_dim ×
d_model)", "96 heads × 128"), its parameter count (scenes/component_info.py: weights and biases, a
whole expert's MLP, a component's own count; a group's is the sum below it) and, where a trace
exists, the min / mean / max / std of its values. Never world units: how big a box is drawn says
nothing about the model.
"""
from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass

import numpy as np

from llmviz.scenes.layout_parts import KIND_BIAS, KIND_WEIGHT

GROUP, BLOCK = "group", "block"
SEARCH_LIMIT = 60  # search results shown at most
_WORD = re.compile(r"[a-z]+|\d+")


def _matches(words: list[str], text: str) -> bool:
    """The query's words appear in the text in order: a word inside a text word ("norm" in "layernorm"),
    a number as a whole number ("1" is not "12"). "transformer 2 head 1" is not "transformer 1 head 2".

    The definition of a match: search answers from an index (_SearchIndex) that must agree with it."""
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
    shape: str           # a block's true rows × cols ("16 × 48"); a group's contents ("14 blocks")
    params: int          # counted in the model's total
    stats: tuple | None  # (min, mean, max, std) or None without a trace
    blocks: int
    role: str = ""       # what it does, in a sentence
    units: str = ""      # the shape in model units: "16 × 48 (head_dim × d_model)", "3 heads × 16"
    params_text: str = ""  # "768 parameters", "activation, not parameters: 16 values per token ..."
    group: bool = False  # a group (its `shape` lists its contents), not one block
    cache: str = ""      # the whole model's: its generation cache at quoted context lengths (cache_text)


class ComponentTree:
    """Groups and blocks of a layout as a tree: children, parents, labels, descendant rows, search."""

    def __init__(self, layout, spec=None):
        self.layout = layout
        self.spec = spec  # the model's spec; None: the registry's spec of layout.spec_id, looked up on first use
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
        self._index: _SearchIndex | None = None
        self._index_lock = threading.Lock()

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

    def build_search_index(self) -> None:
        """Build the search index once (about a few hundred ms on GPT-3's 122k blocks).

        Safe to call from a worker thread; ``search`` builds it on first use if nobody did.
        """
        with self._index_lock:
            if self._index is None:
                self._index = _SearchIndex(self)

    @property
    def search_index_ready(self) -> bool:
        """Whether ``search`` will answer without building the index first."""
        return self._index is not None

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
        self.build_search_index()
        out = self._index.search(words, limit)
        self._last_search = (key, out)
        return out

    # ------------------------------------------------------------------ details
    @property
    def info(self):
        """The layout's roles, model units and parameter counts (scenes/component_info.py), or None."""
        from llmviz.scenes.component_info import info_for

        return info_for(self.layout, self.spec)

    def params(self, node: Node) -> int:
        info = self.info
        if info is not None:
            counts = info.block_params if node.kind == BLOCK else info.group_params
            return int(counts[node.index])
        rows = self.rows(node)  # no spec to count by: the learned blocks' cells
        kind = np.asarray(self.layout.kind)[rows]
        learned = rows[(kind == KIND_WEIGHT) | (kind == KIND_BIAS)]
        return int((np.asarray(self.layout.rows, np.int64)[learned] * np.asarray(self.layout.cols, np.int64)[learned]).sum())

    def details(self, node: Node, values=None) -> Details:
        layout = self.layout
        rows = self.rows(node)
        info = self.info
        if node.kind == BLOCK:
            shape = f"{int(layout.rows[node.index])} × {int(layout.cols[node.index])}"
            about = info.block(node.index) if info is not None else None
        else:
            subgroups = len(self.child_groups(node.index))
            shape = f"{len(rows):,} blocks" + (f", {subgroups:,} sub-groups" if subgroups else "")
            about = info.group(node.index) if info is not None else None
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
        params = self.params(node)
        return Details(self.label(node), self.ident(node), shape, params, stats, len(rows),
                       role=about.role if about else "", units=about.shape if about else "",
                       params_text=about.params_text if about else f"{params:,} parameters",
                       group=node.kind == GROUP,
                       cache=cache_text(info.spec) if info is not None and node == self.root else "")


def cache_text(spec) -> str:
    """What generation keeps at 8K, 128K, 200K and 1M tokens (bf16, models/cache.py), and the context
    window the spec states (for a speculative spec, its one public fact)."""
    from llmviz.models.cache import (CACHE_BYTES_PER_VALUE, cache_bytes_at_contexts, kv_cache_bytes_per_token,
                                     recurrent_state_values)

    arch = spec.architecture
    sizes = " · ".join(f"{label} {_bytes_text(size)}" for label, size in cache_bytes_at_contexts(arch))
    state = CACHE_BYTES_PER_VALUE * recurrent_state_values(arch)
    parts = f"{kv_cache_bytes_per_token(arch):,} B of keys and values per token" + (
        f" + {_bytes_text(state)} of fixed state" if state else "")
    window = f"; context window {arch.context_length:,} tokens" if arch.context_length else ""
    public = " (public; the architecture is speculative)" if spec.speculative and window else ""
    return f"cache (bf16, {parts}): {sizes}{window}{public}"


def _bytes_text(n: int) -> str:
    """Decimal units, as memory is quoted: 2.15 GB, 575.7 MB."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}" if n / size < 100 else f"{n / size:.0f} {unit}"
    return f"{n} B"


# ---------------------------------------------------------------------- search index
# Thousands of texts share a few shapes ("blocks.#.attn.head.#.wq"): a table keeps each text as its
# shape (a pattern) plus the numbers in its slots, so a query is matched once per pattern and per
# way the query's numbers can sit in the slots, not once per text.
_SEP, _SLOT = "\x00", "\x01"  # join texts / stand for a number in a pattern: neither is a token character
_DIGITS = re.compile(r"\d+")  # the numbers of _WORD
_PATTERN_WORD = re.compile(r"[a-z]+|" + _SLOT)


_CHUNK_CHARS = 1 << 16


def _chunks(joined: str) -> list[str]:
    """``joined`` cut at separators into pieces of about _CHUNK_CHARS (each a run of whole texts)."""
    out, start = [], 0
    while True:
        end = joined.find(_SEP, start + _CHUNK_CHARS)
        if end < 0:
            out.append(joined[start:])  # the rest, however short (an empty last text included)
            return out
        out.append(joined[start:end])
        start = end + 1


class _TokenTable:
    """Lower-case texts as patterns (token tuples: a word, or the int k of the text's k-th number)
    and, per text, its pattern and the codes of its numbers (-1 past the pattern's slots)."""

    def __init__(self, texts: list[str]):
        joined = _SEP.join(texts)
        if _SLOT in joined or joined.count(_SEP) != max(len(texts) - 1, 0):  # neither is a token: blank them
            joined = _SEP.join(t.replace(_SEP, " ").replace(_SLOT, " ") for t in texts)
        # Regex passes over many texts at once (per-text calls cost 2 µs each, 0.25 s on GPT-3's ids),
        # in chunks: one call over all of GPT-3 holds the interpreter for ~90 ms, and the index is
        # built on a worker while frames are drawn, which must get the interpreter every few ms.
        chunks = _chunks(joined)
        shapes = list(itertools.chain.from_iterable(_DIGITS.sub(_SLOT, c).split(_SEP) for c in chunks)) \
            if texts else []
        patterns: dict[str, int] = {}
        self.pattern = np.fromiter((patterns.setdefault(s, len(patterns)) for s in shapes), np.int64, len(shapes))
        self.tokens: list[tuple] = []
        for shape in patterns:
            slot = itertools.count()
            self.tokens.append(tuple(next(slot) if t == _SLOT else t for t in _PATTERN_WORD.findall(shape)))
        self.numbers: dict[str, int] = {}  # number text -> code ("01" and "1" differ, as in _matches)
        numbers = itertools.chain.from_iterable(_DIGITS.findall(c) for c in chunks)
        codes = np.fromiter((self.numbers.setdefault(x, len(self.numbers)) for x in numbers), np.int64)
        per_pattern = np.array([sum(isinstance(t, int) for t in p) for p in self.tokens] or [0], np.int64)
        per_text = per_pattern[self.pattern]
        first = np.cumsum(per_text) - per_text
        self.slots = np.full((len(shapes), int(per_pattern.max())), -1, np.int64)
        for k in range(self.slots.shape[1]):
            has = per_text > k
            self.slots[has, k] = codes[first[has] + k]

    def matched(self, words: list[str]) -> np.ndarray:
        """Per text, how many of ``words`` it holds in order (greedily, as _matches): all of them is a match."""
        numbers = list(dict.fromkeys(w for w in words if w.isdigit() and w in self.numbers))
        base, n_slots = len(numbers) + 1, self.slots.shape[1]
        key = self.pattern
        if numbers:
            # Each slot says which query number it holds (1..D) or none (0); with the pattern that
            # decides the answer: key = pattern * base**K + sum_k holds_k * base**k.
            holds = np.zeros(len(self.numbers) + 1, np.int64)  # the last entry stands for slot -1
            holds[[self.numbers[x] for x in numbers]] = np.arange(1, base)
            key = key * base ** n_slots
            for k in range(n_slots):
                key = key + holds[self.slots[:, k]] * base ** k
        else:
            base = 1
        size = len(self.tokens) * base ** n_slots
        if size <= 1 << 22:
            present = np.flatnonzero(np.bincount(key, minlength=size))
            inverse = None
        else:  # too many combinations for a table: list the keys that occur
            present, inverse = np.unique(key, return_inverse=True)
        query = [(w, numbers.index(w) + 1 if w in numbers else -1) if w.isdigit() else (w, None) for w in words]
        values = np.array([_matched_prefix(self.tokens[k // base ** n_slots],
                                           [k // base ** s % base for s in range(n_slots)], query)
                           for k in present.tolist()], np.int64)
        if inverse is not None:
            return values[inverse.ravel()]
        table = np.zeros(size, np.int64)
        table[present] = values
        return table[key]


def _matched_prefix(tokens: tuple, holds: list[int], query: list[tuple]) -> int:
    """How many query words _matches' greedy scan places in a pattern whose slot k holds query number
    holds[k] (0: none). query: (word, None) for a word, (number, its 1-based index or -1) for a number."""
    i, n = 0, len(tokens)
    for j, (w, number) in enumerate(query):
        while i < n:
            t = tokens[i]
            if isinstance(t, int):
                if number is not None and holds[t] == number:
                    break
            elif t == w if number is not None else w in t:
                break
            i += 1
        if i == n:
            return j
        i += 1 if number is not None else 0
    return len(query)


class _SearchIndex:
    """The texts search reads, tokenised once: group label paths and ids, block labels and ids.

    A block's text is its group's label path then its own label, so _matches' scan on it is the
    scan on the path (it stops after some words) continued on the label from that word: the few
    distinct labels are matched once per starting word, not once per block.
    """

    def __init__(self, tree: ComponentTree):
        layout = tree.layout
        self.group_texts = _TokenTable(tree._group_texts())
        self.group_ids = _TokenTable([g.lower() for g in layout.group_ids])
        self.block_ids = _TokenTable([x.lower() for x in layout.ids])
        labels: dict[str, int] = {}
        self.block_label = np.fromiter((labels.setdefault(x, len(labels)) for x in layout.label), np.int64,
                                       len(layout.label))
        self.labels = _TokenTable([x.lower() for x in labels])
        group = np.asarray(layout.group, np.int64)
        self.block_group = np.where(group >= 0, group, len(layout.group_ids))  # no group: the path is empty

    def search(self, words: list[str], limit: int) -> list[Node]:
        q = len(words)
        on_path = self.group_texts.matched(words)
        groups = np.flatnonzero((on_path == q) | (self.group_ids.matched(words) == q))[:limit]
        out = [Node(GROUP, g) for g in groups.tolist()]
        if len(out) >= limit:
            return out
        # label_ok[s, l]: label l holds words[s:] (row q: nothing left to hold).
        start = np.append(on_path, 0)[self.block_group]
        label_ok = np.zeros((q + 1, len(self.labels.pattern)), bool)
        for s in np.flatnonzero(np.bincount(start, minlength=q + 1)).tolist():
            label_ok[s] = self.labels.matched(words[s:]) == q - s
        hit = label_ok.ravel()[start * label_ok.shape[1] + self.block_label]
        hit |= self.block_ids.matched(words) == q
        out += [Node(BLOCK, r) for r in np.flatnonzero(hit)[:limit - len(out)].tolist()]
        return out


class Focus:
    """The selected component and its layer of the world's flags: highlight it, dim all the rest.

    ``flags`` is the engine's FlagLayers (the one writer of highlight/dim); without one (tools,
    tests of this module alone) Focus keeps a composer of its own and applies it at once.
    """

    def __init__(self, tree: ComponentTree, model_scene, world, flags=None):
        from llmviz.engine.systems.flag_layers import FlagLayers

        self.tree = tree
        self.model = model_scene
        self.world = world
        self._own_flags = flags is None
        self.flags = FlagLayers(world) if flags is None else flags
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
        """Set the focus layer: none without a focus; else the focus lit and every other renderable dimmed."""
        has = self.world["renderable"].has
        n = min(self.world.size, len(has))
        self.mask = focused = np.zeros(n, bool)
        if self.node is None:
            self.flags.clear("focus")
        else:
            focused[self.slots(self.node)] = True
            self.flags.set("focus", np.flatnonzero(focused), dim=np.flatnonzero(has[:n] & ~focused))
        if self._own_flags:
            self.flags()
