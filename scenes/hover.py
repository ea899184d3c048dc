"""Reading the block under the pointer: its tensor, the hovered cell's value and formula, and the cells it came from.

`read_pick` turns a pick (entity slot, data cell) on a model scene into a `Reading`: the tensor
id with its true dimensions, what the component does, its shape in model units and its parameter
count (scenes/component_info.py, for every model, live or structure only) and, on a live model,
the cell's indices in the trace, its value and the dataflow formula, with the source cells (the
translation itself is scenes/inspect.py's). A picked group is always a stand-in: the engine draws
a group's box only while its children are skipped, and the reading says so.
`SourceHighlight` lights those cells in the renderer's highlight mask and clears the previous
ones, so only the current hover is lit. Source cells are marked the way `ModelScene.write_values`
draws arrays: a 1-D array down a column when its block has several rows, else along a row.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmviz.common.i18n import tr
from llmviz.models.sim import sort_task
from llmviz.scenes.component_info import info_for
from llmviz.scenes.inspect import inspect_cell



def __getattr__(name: str) -> str:
    """STRUCTURE_ONLY and WAITING in the language chosen now: the scenes that say them import them where they
    build a reading (``from llmviz.scenes.hover import WAITING`` inside a method), so each reading is current."""
    if name in ("STRUCTURE_ONLY", "WAITING"):
        return tr("hover." + name.lower())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Reading:
    """What the tooltip says about one hovered block or cell."""

    tensor_id: str
    label: str = ""          # the block's caption with its true dimensions ("Q  t×16")
    dims: str = ""           # "11 × 16 cells"
    indices: str = ""        # "t=3, d=5" (trace axes), empty when no cell is read
    value: float | None = None
    formula: str = ""        # how the value was computed, with the real numbers
    note: str = ""           # "structure only", "no token here yet", ...
    sources: tuple = ()      # dataflow.Source cells the value came from
    cell: tuple | None = None  # (row, col) of the hovered cell in its block, for lighting it too
    role: str = ""           # what the component does, in a sentence
    shape: str = ""          # in model units: "49152 × 12288 (d_ff × d_model)", "96 heads × 128"
    params: str = ""         # "603,979,776 parameters (604.0M)", or what an activation holds per token

    @property
    def source_cells(self) -> int:
        return sum(len(s.rows) * (1 if s.cols is None else len(s.cols)) for s in self.sources)


def shown_as_column(rows: int, cols: int) -> bool:
    """Whether a block of rows × cols cells shows a 1-D array down a column (as write_values does)."""
    return rows > 1 or cols == 1


_SYMBOL_NAMES = {" ": "hover.space", "\n": "hover.newline", "\t": "hover.tab"}


def symbol_name(alphabet: str, token: int) -> str:
    """A token id in words, in the model's own vocabulary: "letter B" (nano-GPT), "character 'x'" or
    "space" (the MoE models' printable ASCII)."""
    ch = alphabet[token]
    if ch in _SYMBOL_NAMES:
        return tr(_SYMBOL_NAMES[ch])
    return tr("hover.letter", ch=ch) if alphabet.isalpha() else tr("hover.character", ch=ch)


def _letters(alphabet: str, tensor_id: str, index: tuple[int, ...], value: float) -> str:
    """Which symbol of the model's vocabulary a token id or a logit column stands for."""
    if tensor_id == "tokens" and 0 <= int(value) < len(alphabet):
        return symbol_name(alphabet, int(value))
    if tensor_id in ("logits", "probs") and len(index) == 2 and index[1] < len(alphabet):
        return tr("hover.column_is", v=index[1], symbol=symbol_name(alphabet, index[1]))
    return ""


def _group_reading(model, slot: int) -> Reading | None:
    found = np.flatnonzero(model.group_slots == slot)
    if not len(found):
        return None
    g = int(found[0])
    layout = model.layout
    info = info_for(layout, getattr(model, "spec", None))
    # Every group below g: walk all groups' parent chains up at once (a few vector steps, not a loop per group).
    parent = layout.group_parent
    inside = np.arange(len(parent)) == g
    ancestor = np.arange(len(parent))
    while (ancestor >= 0).any():
        ancestor = np.where(ancestor >= 0, parent[np.maximum(ancestor, 0)], -1)
        inside |= ancestor == g
    blocks = int(np.count_nonzero(inside[layout.group]))
    about = info.group(g) if info is not None else None
    # Only a closed group is drawn (and so picked): its box stands in for the blocks inside it.
    note = tr("hover.group_note", blocks=blocks)
    return Reading(layout.group_ids[g], label=layout.group_label[g], note=note,
                   role=about.role if about else "", shape=about.shape if about else "",
                   params=about.params_text if about else "")


def read_pick(model, live, slot: int, cell: tuple[int, int] | None) -> Reading | None:
    """The reading of a pick on a model scene (``live`` is the scene's LiveModel, or None).

    The cell's translation to array indices and values is scenes/inspect.py's, the one the
    scene tests check; this adds what the tooltip and the highlight need around it.
    """
    tensor_id = model.tensor_at(slot)
    if tensor_id is None:
        extra = getattr(live, "reading_at", None)   # entities a live scene adds beside the layout (vit's picture)
        reading = extra(slot, cell) if extra is not None else None
        return reading if reading is not None else _group_reading(model, slot)
    layout = model.layout
    row = layout.index(tensor_id)
    info = info_for(layout, getattr(model, "spec", None))
    about = info.block(row) if info is not None else None
    base = dict(tensor_id=tensor_id, label=layout.label[row], dims=tr("hover.cells", rows=int(layout.rows[row]), cols=int(layout.cols[row])),
                role=about.role if about else "", shape=about.shape if about else "",
                params=about.params_text if about else "")
    if live is None:
        return Reading(**base, note=tr("hover.structure_only"))
    if cell is None:
        return Reading(**base, note=tr("hover.front_face"))
    if live.session.trace is None or live.session.weights is None:
        return Reading(**base, note=tr("hover.waiting"))
    info = inspect_cell(model, live, slot, cell)
    if info.index is None:
        return Reading(**base, indices=tr("hover.row_column", row=cell[0], column=cell[1]), note=info.note, cell=cell)
    e = info.explanation
    if e is None:  # a weight: read, not computed
        axes = ("i",) if len(info.index) == 1 else ("row", "col")
        return Reading(**base, indices=", ".join(f"{a}={i}" for a, i in zip(axes, info.index)), value=info.value,
                       note=info.note, cell=cell)
    alphabet = getattr(live.session, "alphabet", sort_task.ALPHABET)
    return Reading(**base, indices=e.indices, value=e.value, formula=e.formula,
                   note=_letters(alphabet, tensor_id, info.index, e.value), sources=tuple(e.sources), cell=cell)


class SourceHighlight:
    """Lights the cells a reading came from (and the hovered cell) in the renderer's highlight mask."""

    def __init__(self, renderer, model):
        self.renderer = renderer
        self.model = model
        self.marked: list[tuple[int, int, int, int]] = []  # (x, y, cols, rows) regions written non-zero

    def show(self, reading: Reading | None) -> int:
        """Clear the previous cells and light this reading's; returns how many cells are lit."""
        self.clear()
        if reading is None or self.model is None:
            return 0
        masks: dict[int, np.ndarray] = {}  # layout row -> mask over its region
        for source in reading.sources:
            mask = self._mask(source.tensor_id, masks)
            if mask is None:
                continue
            rows, cols = mask.shape
            if source.cols is None:
                index = source.rows[source.rows < (rows if shown_as_column(rows, cols) else cols)]
                if shown_as_column(rows, cols):
                    mask[index, 0] = 1
                else:
                    mask[0, index] = 1
            else:
                mask[np.ix_(source.rows[source.rows < rows], source.cols[source.cols < cols])] = 1
        if reading.cell is not None:
            mask = self._mask(reading.tensor_id, masks)
            if mask is not None:
                mask[reading.cell] = 1
        lit = 0
        for layout_row, mask in masks.items():
            x, y, cols, rows = (int(v) for v in self.model.regions[layout_row])
            self.renderer.write_highlight(x, y, mask)
            self.marked.append((x, y, cols, rows))
            lit += int(np.count_nonzero(mask))
        return lit

    def _mask(self, tensor_id: str, masks: dict) -> np.ndarray | None:
        try:
            layout_row = self.model.layout.index(tensor_id)
        except KeyError:
            return None
        if layout_row not in masks:
            _, _, cols, rows = (int(v) for v in self.model.regions[layout_row])
            if cols == 0:
                return None
            masks[layout_row] = np.zeros((rows, cols), np.uint8)
        return masks[layout_row]

    def clear(self) -> None:
        for x, y, cols, rows in self.marked:
            self.renderer.write_highlight(x, y, np.zeros((rows, cols), np.uint8))
        self.marked.clear()
