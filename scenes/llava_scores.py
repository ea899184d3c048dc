"""llava-tiny's attention scores, drawn at half resolution: with 257 tower tokens and 273 decoder tokens, the raw
scores (q·k/√d, and the decoder's masked copy) of every head would need 1.7M cells of the data atlas beside the
2.7M the rest of the scene takes, more than its 4.2M. Each score block gets a region of a quarter of its cells:
a drawn cell is the mean of POOL × POOL scores (of the ones the causal mask keeps, in the masked blocks), the
block's caption says so, and the hover names the cells a drawn cell covers and computes each of them exactly
from q and k. The softmax beside each is drawn cell for cell.

`reserve` adds the regions when the scene is built (through the loader's DataStaging on a worker, or the
renderer); `pooled` makes the arrays written to them; `explain` is the hover's rule for a drawn cell, and puts
other cells' sources that fall in a pooled block at the drawn cell that holds them. Numbers only: no torch.
"""
from __future__ import annotations

import numpy as np

from llmviz.engine.render.colormaps import COLORMAP_DIVERGING

POOL = 2
SCORE_IDS = (".scores", ".scores_masked")


def is_pooled(tensor_id: str) -> bool:
    return tensor_id.endswith(SCORE_IDS)


def pooled_shape(rows: int, cols: int) -> tuple[int, int]:
    return -(-rows // POOL), -(-cols // POOL)


def reserve(scene, allocator) -> list[str]:
    """Half-resolution atlas regions for the scene's score blocks (those still without one); returns their ids."""
    layout, world = scene.layout, scene.world
    rows = [i for i, ident in enumerate(layout.ids) if is_pooled(ident) and scene.regions[i, 2] == 0]
    if not rows:
        return []
    for i in rows:
        r, c = pooled_shape(int(layout.rows[i]), int(layout.cols[i]))
        x, y = allocator.alloc_data(r, c)
        scene.regions[i] = (x, y, c, r)
        allocator.write_data(x, y, np.full((r, c), np.nan, np.float32))
    slots = scene.block_slots[rows]
    world.add("datatex", world.ids(slots), region=scene.regions[rows].astype(np.int32), value_range=(-1.0, 1.0),
              colormap=COLORMAP_DIVERGING)
    for i in rows:   # the block's caption says what its cells are
        layout.label[i] = f"{layout.label[i]}  (drawn as {POOL} x {POOL} means)"
    # and so does its label on screen
    label = world["label"]
    for slot in slots:
        if label.has[slot] and label["text_index"][slot] >= 0:
            k = int(label["text_index"][slot])
            world.labels[k] = f"{world.labels[k]}, {CAPTION}"
    return [layout.ids[i] for i in rows]


CAPTION = f"drawn as {POOL} x {POOL} means"


def pooled(values: np.ndarray) -> np.ndarray:
    """(ceil(r / POOL), ceil(c / POOL)) means of the finite values in each POOL × POOL block (a partial block at the
    edge averages the cells it has); −∞ where every cell is −∞ (masked)."""
    v = np.asarray(values, np.float64)
    r, c = v.shape
    pr, pc = pooled_shape(r, c)
    padded = np.full((pr * POOL, pc * POOL), np.nan)
    padded[:r, :c] = v
    blocks = padded.reshape(pr, POOL, pc, POOL).transpose(0, 2, 1, 3).reshape(pr, pc, POOL * POOL)
    finite = np.isfinite(blocks)
    count = finite.sum(-1)
    total = np.where(finite, blocks, 0.0).sum(-1)
    out = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    out[(count == 0) & np.isneginf(blocks).any(-1)] = -np.inf
    return out.astype(np.float32)


def pooled_values(trace, ids) -> dict:
    """{id: pooled(trace[id])} for the pooled ids the trace holds."""
    return {i: pooled(trace[i]) for i in ids if i in trace}


def _pooled_sources(sources, ids) -> list:
    """Sources on a pooled block, moved to the drawn cells that hold them."""
    from llmviz.scenes.dataflow import Source

    out = []
    for s in sources:
        if s.tensor_id in ids:
            s = Source(s.tensor_id, np.unique(np.asarray(s.rows) // POOL),
                       None if s.cols is None else np.unique(np.asarray(s.cols) // POOL))
        out.append(s)
    return out


def explain(tensor_id: str, row: int, col, trace, weights, ids, exact):
    """The hover's explanation of a cell: for a pooled block, drawn cell (row, col), the mean of the scores it
    covers, each computed by `exact` (dataflow.explain) from q and k; other blocks' sources moved onto the drawn
    cells of pooled blocks."""
    from dataclasses import replace

    from llmviz.scenes.dataflow import Explanation, format_number as f

    if tensor_id not in ids:
        e = exact(tensor_id, row, col, trace, weights)
        return replace(e, sources=_pooled_sources(e.sources, ids))
    full = np.asarray(trace[tensor_id])
    rows = range(row * POOL, min(full.shape[0], (row + 1) * POOL))
    cols = range(col * POOL, min(full.shape[1], (col + 1) * POOL))
    cells = [exact(tensor_id, r, c, trace, weights) for r in rows for c in cols]
    kept = [e for e in cells if np.isfinite(e.value)]
    where = f"t={rows[0]}..{rows[-1]}, t'={cols[0]}..{cols[-1]}"
    sources = []
    for e in cells:
        sources.extend(e.sources)
    if not kept:
        return Explanation(tensor_id, row, col, "pooled", -np.inf, where,
                           f"all {len(cells)} cells here are removed by the causal mask (−∞)", sources, -np.inf, True)
    value = float(np.mean([e.value for e in kept]))
    first = kept[0]
    formula = (f"drawn cell = mean of the {len(kept)} scores it covers (the atlas holds this block at "
               f"{POOL} x {POOL}): (" + " + ".join(f(e.value) for e in kept) + f") / {len(kept)} = {f(value)}; "
               f"the first, [t={first.row}, t'={first.col}]: {first.formula}")
    return Explanation(tensor_id, row, col, "pooled", value, where, formula, _pooled_sources(sources, ids), value,
                       len(kept) < len(cells))
