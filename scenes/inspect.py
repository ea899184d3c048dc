"""What a picked cell of a model scene is: its tensor, its indices in the trace or weights, its value and how it was computed.

The window's hover tooltip and the tests share this one translation from a picked (row, col)
on a block's face to the arrays behind it, so what the screen says is what the tests check.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmviz.common.i18n import tr
from llmviz.scenes import dataflow


@dataclass
class CellInfo:
    tensor_id: str
    dims: str  # true dimensions, "t×48"
    index: tuple[int, ...] | None  # index into the array, None when the cell holds no value
    value: float | None
    explanation: object = None  # a dataflow.Explanation for activations of a live model
    note: str = ""  # "weight, learned in training", "no token here yet", "structure only"

    @property
    def text(self) -> str:
        lines = [f"{self.tensor_id}  ({self.dims})"]
        if self.explanation is not None:
            lines.append(self.explanation.tooltip)
        elif self.value is not None:
            lines.append(f"[{', '.join(map(str, self.index))}] = {dataflow.format_number(self.value)}")
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def array_index(values: np.ndarray, block_rows: int, row: int, col: int) -> tuple[int, ...] | None:
    """The array index shown at face cell (row, col), or None where the block has no value (padding).

    A 1-D array along tokens is drawn as a column (t rows); any other 1-D array as a row.
    """
    if values.ndim == 1:
        i = row if block_rows > 1 else col
        return (i,) if i < values.shape[0] else None
    if row < values.shape[0] and col < values.shape[1]:
        return (row, col)
    return None


def inspect_cell(model_scene, live, slot: int, cell: tuple[int, int] | None) -> CellInfo | None:
    """Describe the picked cell of block ``slot``; None when the slot is not a tensor block."""
    tensor_id = model_scene.tensor_at(slot)
    if tensor_id is None:
        return None
    layout = model_scene.layout
    row_index = layout.index(tensor_id)
    dims = layout.label[row_index].split("  ")[-1] if "  " in layout.label[row_index] else \
        f"{layout.rows[row_index]}×{layout.cols[row_index]}"
    session = getattr(live, "session", None)
    if session is None or cell is None:
        return CellInfo(tensor_id, dims, None, None, note=tr("inspect.structure_only"))
    trace, weights = session.trace, session.weights
    source = trace if trace is not None and tensor_id in trace else weights
    if source is None or tensor_id not in source:
        recorded = not getattr(session, "explains", True)
        return CellInfo(tensor_id, dims, None, None,
                        note=tr("inspect.not_recorded") if recorded else tr("inspect.not_computed"))
    values = source[tensor_id]
    index = array_index(values, int(layout.rows[row_index]), *cell)
    if index is None:
        return CellInfo(tensor_id, dims, None, None, note=tr("inspect.no_token"))
    value = float(values[index])
    if source is weights:
        return CellInfo(tensor_id, dims, index, value, note=tr("inspect.weight"))
    if not getattr(session, "explains", True):   # a recording of a model llmviz has no dataflow rules for
        return CellInfo(tensor_id, dims, index, value, note=tr("inspect.recorded"))
    try:
        # a live model whose trace needs its own routing (clip-tiny's prefixed tower) explains its cells itself
        explain = getattr(session, "explain", None) or dataflow.explain
        explanation = explain(tensor_id, index[0], index[1] if len(index) > 1 else None, trace, weights)
    except KeyError:  # a value shown without a declared formula (none of the live models has one today)
        return CellInfo(tensor_id, dims, index, value, note=tr("inspect.no_formula"))
    return CellInfo(tensor_id, dims, index, value, explanation)
