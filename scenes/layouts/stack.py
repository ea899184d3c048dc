"""One stack laid out whole: its stem, every layer (one template per distinct kind of layer, tiled),
its output part, wrapped into columns once it is tall; ids under the stack's own prefix.

Every family uses it for each of its stacks (the text decoder, an audio encoder, a vision tower):
the family builds the stem and output parts, this places them around the layers.
"""
from __future__ import annotations

import math

import numpy as np

from ..layout_blocks import Dims
from ..layout_parts import GAP_MIN, Part, merge, renamed, shift, tile, title_height
from .layers import LAYER_NAMES, layer_template

WRAP_ASPECT = 3.0          # wrap the stack once it is taller than this times its width
COLUMN_GAP_FRAC = 0.15     # gap between wrapped columns, as a fraction of a column's width
LAYER_GAP_FRAC = 0.05      # gap between layers, as a fraction of a layer's height (× spec spacing)
LAYER_TITLE_FRAC = 0.03    # "Transformer 3": line height as a fraction of the layer's width
PRESET_ASPECT = 16 / 9     # the aspect the layout's presets frame for (layout.PRESET_ASPECT)


def stack_part(d: Dims, embed: Part, output: Part | None, *, prefix: str = "", layer_word: str | None = None,
               spacing: float = 1.0, circular: bool = False) -> tuple[Part, int]:
    """The stem `embed`, the layers of d.arch and `output`, down the residual stream and wrapped
    into columns; every id under `prefix` ("" for the main stack, "vision." for a tower).
    Returns the part (its top-level groups: embed, blocks.{i}, output) and its column count."""
    arch = d.arch
    templates: dict[tuple, Part] = {}
    keys = []
    for i, mixer in enumerate(arch.layer_mixers()):
        key = (mixer, arch.is_moe_layer(i), arch.has_ffn(i))
        if key not in templates:
            templates[key] = layer_template(d, *key, circular=circular)
        keys.append(key)
    titles = [f"{layer_word or LAYER_NAMES[key[0]]} {i}" for i, key in enumerate(keys)]
    width = max(p.width for p in templates.values())
    title_h = title_height(width, max(titles, key=len), LAYER_TITLE_FRAC)

    items = [embed] + [templates[k] for k in keys] + ([output] if output is not None else [])
    rooms = [0.0] + [2.0 * title_h] * len(keys) + ([0.0] if output is not None else [])
    layer_h = float(np.median([templates[k].height + 2.0 * title_h for k in keys]))
    gap = max(GAP_MIN, LAYER_GAP_FRAC * layer_h * spacing)
    tops, xs, columns = wrap(items, rooms, gap)

    parts = [renamed(shift(embed, xs[0], tops[0] - embed.hi[1]), prefix)]
    for i, key in enumerate(keys):
        tpl = templates[key]
        offset = [(xs[i + 1], tops[i + 1] - rooms[i + 1] - tpl.hi[1])]
        parts.append(tile(tpl, offset, [f"{prefix}blocks.{i}"], group_labels=[titles[i]],
                          titles=[titles[i]], title_h=title_h))
    if output is not None:
        parts.append(renamed(shift(output, xs[-1], tops[-1] - output.hi[1]), prefix))
    return merge(parts), columns


def wrap(items: list[Part], rooms: list[float], gap: float) -> tuple[list[float], list[float], int]:
    """Top y and residual-stream x of each item, stacked down and wrapped into columns.

    Columns share one pitch (the widest item's reach left and right of the stream), wide
    enough that a view framing any one item alone (the "first block" preset) reaches no
    other column. The number of columns makes the whole about as tall as WRAP_ASPECT times
    its width at most; an item goes to the column its midpoint falls in, which balances
    their heights.
    """
    heights = np.array([p.height + room for p, room in zip(items, rooms)])
    left = max(-p.lo[0] for p in items)
    right = max(p.hi[0] for p in items)
    # A tall item framed whole at PRESET_ASPECT shows PRESET_ASPECT × its height across, centred on it.
    alone = max(max(PRESET_ASPECT * h, p.hi[0] - p.lo[0]) / 2 + abs(p.hi[0] + p.lo[0]) / 2
                for p, h in zip(items, heights))
    pitch = max((left + right) * (1.0 + COLUMN_GAP_FRAC), alone + max(left, right) + gap)
    total = float(heights.sum() + gap * (len(items) - 1))
    columns = max(1, min(len(items), math.ceil(math.sqrt(total / (WRAP_ASPECT * pitch)))))
    starts = np.concatenate([[0.0], np.cumsum(heights + gap)[:-1]])
    column = np.minimum(((starts + heights / 2) / (total / columns)).astype(np.int64), columns - 1)
    columns = int(column.max()) + 1
    tops, xs = [], []
    y, current = 0.0, 0
    for h, col in zip(heights, column):
        if col != current:
            y, current = 0.0, col
        tops.append(y)
        xs.append(left + col * pitch)
        y -= h + gap
    return tops, xs, columns
