"""Letters on the axes of a live model's blocks: each token row (and each key column of attention) labelled
with its token, each vocabulary column of logits and probabilities (and row of W_E / W_U) with its entry.

Which axis is which comes from the layout's own captions, which carry the true dimensions with the
token axis named "t" ("Q  t×16", "scores  t×t", "mean  t"); the vocabulary axes are the blocks listed
in VOCABULARY_COLUMNS / VOCABULARY_ROWS. Every label is its own label-only entity beside its row or
column, a child of its block's group (a closed group hides them with the block), laid out with every
other label (they yield to captions and titles: AXIS_PRIORITY) and shown only when a row is tall
enough on screen to read its letter where it stands (never scaled up off its row).

The texts are one string per vocabulary entry, appended to ``world.labels`` once; `show_tokens`
points the token labels at them in one vectorised column write (rows past the input: no text), so a
new input changes no structure and grows no list.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmviz.engine.systems.label_layout import LEGIBLE_PX

# How a symbol without ink is written on an axis.
VISIBLE_SYMBOLS = {" ": "·", "\n": "↵", "\t": "→"}
VOCABULARY_COLUMNS = ("logits", "probs")
VOCABULARY_ROWS = ("embed.tok.weight", "lm_head.weight")
AXIS_PRIORITY = 0.5          # below block captions (1) and section titles (2): they win a collision
LETTER_FRAC = 0.75           # a letter's line height, as a fraction of its row's (or column's) pitch
GAP_FRAC = 0.75              # its centre this many pitches outside the block's edge (clear of its back face
                             # seen at an angle)
# Shown only from the legible size on: the label layout scales a smaller label up about its anchor (by
# at most LEGIBLE_PX / min_px), which would push a letter across its neighbours' rows.
MIN_PX = LEGIBLE_PX
TOKEN_RGB = (0.98, 0.86, 0.42, 1.0)       # the tokens block's colour: these are the input's letters
VOCABULARY_RGB = (0.72, 0.80, 0.92, 1.0)

ROWS, COLUMNS = 0, 1


def shown_symbol(ch: str) -> str:
    """A vocabulary entry as an axis label: spaces and newlines made visible."""
    return VISIBLE_SYMBOLS.get(ch, ch)


def _dims(caption: str) -> str:
    return caption.rsplit("  ", 1)[-1] if "  " in caption else ""


def token_axes(layout) -> tuple[np.ndarray, np.ndarray]:
    """(rows are tokens, columns are tokens) per block, from the dimensions in its caption."""
    dims = [_dims(caption) for caption in layout.label]
    rows = np.array([d == "t" or d.startswith("t×") for d in dims], bool)
    cols = np.array([d.endswith("×t") for d in dims], bool)
    return rows, cols


@dataclass
class AxisLabels:
    """The axis-label entities of one scene: which are tokens (and which token position each shows)."""

    world: object
    ids: np.ndarray            # every axis label entity
    token: np.ndarray          # per label: True where it shows a token (else a fixed vocabulary entry)
    position: np.ndarray       # per label: its token position (token labels) or vocabulary index
    block_row: np.ndarray      # per label: the layout row of the block it labels
    axis: np.ndarray           # per label: ROWS or COLUMNS of that block
    text_base: int             # world.labels index of vocabulary entry 0
    vocabulary: int

    def show_tokens(self, tokens) -> None:
        """Write the tokens (ids into the vocabulary) on the token axes; positions past them go blank."""
        t = np.asarray(tokens, np.int64).reshape(-1)
        known = (t >= 0) & (t < self.vocabulary)
        self._point(np.where(known, self.text_base + t, -1))

    def show_strings(self, strings) -> None:
        """Name token position t by strings[t], for a model whose vocabulary is too big to hold as labels (a user's
        folder): the strings are added to the world's labels; positions past them go blank."""
        base = len(self.world.labels)
        self.world.labels.extend(strings)
        self._point(base + np.arange(len(strings)))

    def _point(self, text_of_position: np.ndarray) -> None:
        """Token position t shows world.labels[text_of_position[t]] (-1: blank); positions past the array blank."""
        pos = self.position[self.token]
        index = np.full(len(pos), -1, np.int32)
        inside = pos < len(text_of_position)
        index[inside] = text_of_position[pos[inside]]
        self.world.set("label", self.ids[self.token], text_index=index)


def _outside_blocks(points: np.ndarray, half: np.ndarray, layout) -> np.ndarray:
    """Whether each label's box (centre, half size in x and y) stays clear of every block."""
    lo = layout.center[:, :2] - layout.size[:, :2] / 2
    hi = layout.center[:, :2] + layout.size[:, :2] / 2
    p_lo, p_hi = points[:, None, :2] - half[:, None, :], points[:, None, :2] + half[:, None, :]
    hits = np.all((p_lo < hi[None]) & (p_hi > lo[None]), axis=2)
    return ~hits.any(axis=1)


def attach_axis_labels(scene, alphabet: str) -> AxisLabels:
    """Spawn the axis labels of a live model scene (before its first frame: this changes the world's
    structure once); token labels start blank until `show_tokens`."""
    layout, world = scene.layout, scene.world
    has_data = scene.regions[:, 2] > 0
    token_rows, token_cols = token_axes(layout)
    ids = np.asarray(layout.ids, object)
    vocab_cols = np.isin(ids, VOCABULARY_COLUMNS) & has_data
    vocab_rows = np.isin(ids, VOCABULARY_ROWS) & has_data
    token_rows &= has_data
    token_cols &= has_data

    # One table of (block, axis, index along it, shows a token) for every label, built with numpy.
    def along(blocks: np.ndarray, counts: np.ndarray, axis: int, is_token: bool):
        block = np.repeat(blocks, counts)
        index = np.arange(len(block)) - np.repeat(np.cumsum(counts) - counts, counts)
        return block, index, np.full(len(block), axis), np.full(len(block), is_token)

    rows, cols = layout.rows.astype(np.int64), layout.cols.astype(np.int64)
    vocabulary = len(alphabet)
    parts = [along(np.flatnonzero(token_rows), rows[token_rows], ROWS, True),
             along(np.flatnonzero(token_cols), cols[token_cols], COLUMNS, True),
             along(np.flatnonzero(vocab_rows), np.minimum(rows[vocab_rows], vocabulary), ROWS, False),
             along(np.flatnonzero(vocab_cols), np.minimum(cols[vocab_cols], vocabulary), COLUMNS, False)]
    block, index, axis, is_token = (np.concatenate(p) for p in zip(*parts))

    center, size = layout.center[block], layout.size[block]
    n_along = np.where(axis == ROWS, rows[block], cols[block])
    pitch = np.where(axis == ROWS, size[:, 1], size[:, 0]) / np.maximum(n_along, 1)
    height = LETTER_FRAC * pitch
    top, left = center[:, 1] + size[:, 1] / 2, center[:, 0] - size[:, 0] / 2
    # Rows: left of the block, on the row's centre line. Columns: under the block, below each column.
    x = np.where(axis == ROWS, left - GAP_FRAC * pitch, left + (index + 0.5) * pitch)
    y = np.where(axis == ROWS, top - (index + 0.5) * pitch, top - size[:, 1] - GAP_FRAC * pitch)
    z = center[:, 2] + size[:, 2] / 2  # on the plane of the data face, not hidden behind a neighbour's side
    points = np.c_[x, y, z]
    clear = _outside_blocks(points, np.c_[0.4 * height, 0.5 * height], layout)  # mean | std sit closer than a letter
    block, index, axis, is_token = block[clear], index[clear], axis[clear], is_token[clear]
    points, height = points[clear], height[clear]
    n = len(block)

    text_base = len(world.labels)
    world.labels.extend(shown_symbol(ch) for ch in alphabet)
    entities = world.spawn(n, transform={"position": points, "scale": np.c_[height, height, np.full(n, 1e-3)]},
                           bounds={})
    world.add("parent", entities, slot=scene.group_slots[layout.group[block]])
    text_index = np.where(is_token, -1, text_base + index).astype(np.int32)
    color = np.where(is_token[:, None], np.array(TOKEN_RGB), np.array(VOCABULARY_RGB))
    world.add("label", entities, text_index=text_index, height=height, color=color, min_px=MIN_PX,
              priority=AXIS_PRIORITY)
    return AxisLabels(world, entities, is_token, index, block, axis, text_base, vocabulary)
