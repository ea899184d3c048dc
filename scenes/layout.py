"""The layout of a model: a pure, deterministic function from a ModelSpec to placed tensor blocks.

`layout_model(spec)` returns a `Layout`, a set of columns (one row per block) the scene builder
spawns in bulk: one block per tensor the model computes or holds, named by the tensor ids the
simulation trace uses, so binding a trace to the scene is a lookup. In the spirit of the LLM
Visualization: the residual stream runs down the centre (-y is down the model), each layer's
sequence mixer (attention, Mamba, RWKV time mixing) to its left and its feed-forward part
(MLP, experts) to its right and below; sizes come from the tensor dimensions, compressed on a
log scale past 64 cells (`display_length`), with the true dimensions in the labels; a stack
taller than about three times its width wraps into columns.

Layers, attention, head banks, heads, MLPs and expert banks are hierarchy groups whose bounds
cover their children, for the engine's hierarchical LOD. Blocks lie in the XY plane facing +z;
the renderer shows a block's cells on its ±z faces, columns along +x and rows down -y.

Built columnar: one layer is laid out once as a template (its head bank a numpy tiling of one
head) and copied per layer with offsets, so GPT-3 (96 layers × 96 heads) or Llama-3.1-405B
(126 × 128) lay out in tens of milliseconds. numpy only: no torch, no renderer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from llmviz.models.attention_mask import is_masked_block
from llmviz.models.spec import ModelSpec

from .layout_parts import (CHAR_WIDTH_EM, GAP_MIN, KIND_ACTIVATION, KIND_BIAS, KIND_BUFFER,
                           KIND_COMPONENT, KIND_EXPERT, KIND_NAMES, KIND_NORM_STAT, KIND_RESIDUAL,
                           KIND_SCORES, KIND_TOKENS, KIND_WEIGHT, LINEAR_LIMIT, Part, display_length,
                           grouped, merge, shift)
from llmviz.models.inventory import BIAS, BUFFER, COMPONENT, EXPERT, WEIGHT, drawn_shape, model_tensors

from .layouts import FAMILIES, FamilyLayout, StackPart, family_of

__all__ = ["Layout", "layout_model", "default_tokens", "display_length", "LINEAR_LIMIT",
           "KIND_ACTIVATION", "KIND_RESIDUAL", "KIND_WEIGHT", "KIND_BIAS", "KIND_NORM_STAT",
           "KIND_SCORES", "KIND_TOKENS", "KIND_EXPERT", "KIND_COMPONENT", "KIND_BUFFER", "KIND_NAMES",
           "BLOCK_DEPTH", "PRESET_FOV_Y", "PRESET_ASPECT"]

BLOCK_DEPTH = 1.0          # every block is one cell deep: tensors are slabs facing +z
GROUP_MARGIN = 0.5         # a group's bounds reach this far past its children...
GROUP_MARGIN_FRAC = 0.01   # ... plus this fraction of its largest extent
PRESET_FOV_Y = 60.0        # presets frame their target for the engine camera's default lens
PRESET_ASPECT = 16 / 9
PRESET_DIRECTION = np.array([0.18, 0.22, 1.0]) / np.linalg.norm([0.18, 0.22, 1.0])
TINY_D_MODEL = 64          # models this narrow show every token of their (short) context
TINY_TOKENS, DEFAULT_TOKENS = 11, 8

# Colour per kind (linear RGB 0..1); weights take the model's own colour from its spec.
_KIND_COLORS = {
    KIND_ACTIVATION: (0.62, 0.78, 0.96),
    KIND_RESIDUAL: (0.46, 0.84, 0.56),
    KIND_NORM_STAT: (0.78, 0.64, 0.92),
    KIND_SCORES: (0.98, 0.66, 0.42),
    KIND_TOKENS: (0.98, 0.86, 0.42),
    KIND_COMPONENT: (0.72, 0.72, 0.76),
    KIND_BUFFER: (0.70, 0.72, 0.86),
}


@dataclass(eq=False)
class Layout:
    """Placed blocks, hierarchy groups, text labels and camera presets of one model.

    Blocks (one row each): `ids` tensor ids; `kind` KIND_* codes; `rows`, `cols` the tensor's
    true dimensions (a vector is t × 1 along the token axis, else 1 × n); `center`, `size`
    (n, 3) world boxes (x = displayed columns, y = displayed rows, z = BLOCK_DEPTH); `color`
    (n, 3) RGB; `group` the innermost group holding the block; `label` a caption with true
    dimensions ("Q  t×16"); `compressed` where a dimension was drawn log-compressed (or the
    block stands for more than its cells: experts, components), so one texel per cell is
    not possible.

    Groups: `group_ids` ("model", "blocks.3", "blocks.3.attn.heads", ...), `group_parent`
    (-1 for the root, index 0), `group_label` ("Transformer 3", "Self-attention"),
    `group_center` / `group_size` boxes covering their children with a margin.

    Text labels: `text`, `text_position` (centre of the line), `text_height` (line height in
    world units), `text_group` (the group they title). `presets` maps a name to a camera
    (eye, target) pair. `columns` is how many columns the layer stack wrapped into.
    """
    spec_id: str
    n_tokens: int
    ids: list[str]
    kind: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    center: np.ndarray
    size: np.ndarray
    color: np.ndarray
    group: np.ndarray
    label: list[str]
    compressed: np.ndarray
    group_ids: list[str]
    group_parent: np.ndarray
    group_label: list[str]
    group_center: np.ndarray
    group_size: np.ndarray
    text: list[str]
    text_position: np.ndarray
    text_height: np.ndarray
    text_group: np.ndarray
    presets: dict[str, tuple[np.ndarray, np.ndarray]]
    columns: int
    # Where one stack's output enters another ("memory": "audio.ln_f.out"), for scenes/flow_graph.py.
    links: dict[str, str] = field(default_factory=dict)
    # Each stack's id prefix and title ("": "Whisper base", "audio.": "Audio encoder").
    stacks: dict[str, str] = field(default_factory=dict)
    # The main stack's prefix-LM positions, which attend to each other both ways (0: causal).
    mask_prefix: int = 0
    # Id -> row lookups, built on first use (a 120k-entry dict is not free, and not always needed).
    _index: dict[str, int] | None = field(default=None, init=False, repr=False)
    _group_index: dict[str, int] | None = field(default=None, init=False, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, tensor_id: str) -> int:
        """Row of the block with this tensor id (KeyError if the model has no such tensor)."""
        if self._index is None:
            self._index = {tensor_id: i for i, tensor_id in enumerate(self.ids)}
        return self._index[tensor_id]

    def masked_scores(self) -> list[tuple[int, int]]:
        """(row, prefix) of every masked block (attention's masked scores, a recurrent layer's hidden attention):
        the prefix-LM positions of its stack (0: causal)."""
        others = [p for p in self.stacks if p]
        return [(i, 0 if any(ident.startswith(p) for p in others) else self.mask_prefix)
                for i, ident in enumerate(self.ids) if is_masked_block(ident)]

    def group_index(self, group_id: str) -> int:
        if self._group_index is None:
            self._group_index = {g: i for i, g in enumerate(self.group_ids)}
        return self._group_index[group_id]


def default_tokens(spec: ModelSpec) -> int:
    """Tokens laid out when none are asked for: a tiny model's whole short context (nano-GPT's
    11, every cell visible), else 8; never more than the context holds."""
    arch = spec.architecture
    context = arch.input.n_positions() or arch.context_length
    wanted = TINY_TOKENS if arch.d_model <= TINY_D_MODEL else DEFAULT_TOKENS
    return min(context, wanted) if context else wanted


def layout_model(spec: ModelSpec, n_tokens: int | None = None) -> Layout:
    """Place every tensor of `spec` for a sequence of `n_tokens` tokens (default_tokens).

    The spec's family (scenes/layouts/registry.py) lays the model out as stacks, each whole under
    its own id prefix; they stand side by side, tops level, the main stack where it was drawn."""
    arch = spec.architecture
    t = default_tokens(spec) if n_tokens is None else int(n_tokens)
    context = arch.input.n_positions() or arch.context_length
    if t < 1 or (context is not None and t > context):
        raise ValueError(f"n_tokens must be between 1 and the context ({context}), got {n_tokens}")
    family = FAMILIES[family_of(spec)](spec, t)
    whole = grouped(merge(_side_by_side(family.stacks)), "model", spec.name)
    layout = _finish(spec, family, whole)
    check_against_inventory(spec, layout)
    return layout


class LayoutMismatch(ValueError):
    """The layout draws a learned tensor or buffer the model's inventory (models/inventory.py) does not
    declare, leaves one out, or draws it with another shape or kind."""


_DRAWN_KINDS = {KIND_WEIGHT: WEIGHT, KIND_BIAS: BIAS, KIND_BUFFER: BUFFER, KIND_EXPERT: EXPERT,
                KIND_COMPONENT: COMPONENT}


def check_against_inventory(spec: ModelSpec, layout: Layout) -> None:
    """Every learned block and buffer the layout draws is one tensor of the model's inventory, with its
    shape and kind, and every tensor the inventory says is drawn has its block. A component block is a
    stand-in for a whole component, so only its presence is checked."""
    declared = [t for t in model_tensors(spec) if t.drawn]
    rows = np.flatnonzero(np.isin(layout.kind, list(_DRAWN_KINDS)))
    kinds = [_DRAWN_KINDS[k] for k in layout.kind[rows].tolist()]
    stand_in = np.array([k == COMPONENT for k in kinds], bool)
    r = np.where(stand_in, 0, layout.rows[rows]).tolist()
    c = np.where(stand_in, 0, layout.cols[rows]).tolist()
    drawn = set(zip((layout.ids[i] for i in rows.tolist()), kinds, r, c))
    wanted = {(t.id, t.kind, *((0, 0) if t.kind == COMPONENT else drawn_shape(t))) for t in declared}
    if drawn == wanted:
        return
    expected = {t.id: t for t in declared}
    problems = []
    seen = set()
    for ident, kind, n_rows, n_cols in drawn:
        seen.add(ident)
        t = expected.get(ident)
        if t is None:
            problems.append(f"{ident} is drawn but not declared")
        elif t.kind != kind:
            problems.append(f"{ident} is drawn as a {kind}, declared a {t.kind}")
        elif kind != COMPONENT and (n_rows, n_cols) != drawn_shape(t):
            problems.append(f"{ident} is drawn {n_rows}×{n_cols}, declared {'×'.join(map(str, t.shape))}")
    problems += [f"{ident} is declared but not drawn" for ident in expected.keys() - seen]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise LayoutMismatch(f"{spec.id}: the layout disagrees with the model's tensors: "
                             f"{'; '.join(sorted(problems)[:3])}{more}")


STACK_GAP_FRAC = 0.08      # gap between stacks, as a fraction of the wider neighbour


def _side_by_side(stacks: list[StackPart]) -> list[Part]:
    """The stacks left to right, tops level, the main stack unmoved (a decoder is where it was)."""
    if len(stacks) == 1:
        return [stacks[0].part]
    # How far past its left and right edges a view framing one of its top groups alone reaches (the
    # block presets): the gap to a neighbour is at least that, so such a view shows no other stack.
    reach = []
    for s in stacks:
        lo, hi = _group_bounds(s.part)
        top = np.flatnonzero(s.part.gparent == -1)
        half = np.maximum(PRESET_ASPECT * (hi[top, 1] - lo[top, 1]), hi[top, 0] - lo[top, 0]) / 2
        cx = (lo[top, 0] + hi[top, 0]) / 2
        reach.append((max(0.0, float(s.part.lo[0] - (cx - half).min())) if len(top) else 0.0,
                      max(0.0, float((cx + half).max() - s.part.hi[0])) if len(top) else 0.0))
    lefts, x = [], 0.0
    for k, s in enumerate(stacks):
        if k:
            x += 1.05 * max(GAP_MIN, STACK_GAP_FRAC * max(s.part.width, stacks[k - 1].part.width),
                            reach[k - 1][1], reach[k][0])
        lefts.append(x)
        x += s.part.width
    m = next((k for k, s in enumerate(stacks) if s.main), 0)
    main = stacks[m].part
    origin = lefts[m] - main.lo[0]
    return [shift(s.part, lefts[k] - s.part.lo[0] - origin, main.hi[1] - s.part.hi[1])
            for k, s in enumerate(stacks)]


def _hex_rgb(color: str) -> np.ndarray:
    return np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)], np.float32) / 255.0


def _colors(spec: ModelSpec, kind: np.ndarray) -> np.ndarray:
    base = _hex_rgb(spec.visual.color)
    palette = np.zeros((len(KIND_NAMES), 3), np.float32)
    for k, rgb in _KIND_COLORS.items():
        palette[k] = rgb
    palette[KIND_WEIGHT] = base
    palette[KIND_BIAS] = base + (1.0 - base) * 0.45          # lighter: a vector beside its matrix
    palette[KIND_EXPERT] = base * 0.75
    return palette[kind]


def _group_bounds(part: Part) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (lo, hi in xy) of every group covering its blocks, titles and child groups."""
    n_groups = len(part.gids)
    lo = np.full((n_groups, 2), np.inf)
    hi = np.full((n_groups, 2), -np.inf)
    half = part.size / 2
    np.minimum.at(lo, part.group, part.center - half)
    np.maximum.at(hi, part.group, part.center + half)
    if len(part.text):
        widths = np.array([len(s) for s in part.text]) * CHAR_WIDTH_EM * part.theight
        text_half = np.stack([widths / 2, part.theight / 2], axis=1)
        np.minimum.at(lo, part.tgroup, part.tpos - text_half)
        np.maximum.at(hi, part.tgroup, part.tpos + text_half)
    depth = np.zeros(n_groups, np.int64)
    parent = part.gparent.copy()
    while (parent >= 0).any():
        depth += parent >= 0
        parent = np.where(parent >= 0, part.gparent[np.maximum(parent, 0)], -1)
    for level in range(int(depth.max()), -1, -1):
        at = np.flatnonzero(depth == level)
        margin = GROUP_MARGIN + GROUP_MARGIN_FRAC * (hi[at] - lo[at]).max(axis=1, keepdims=True)
        lo[at] -= margin
        hi[at] += margin
        if level:
            np.minimum.at(lo, part.gparent[at], lo[at])
            np.maximum.at(hi, part.gparent[at], hi[at])
    return lo, hi


def _frame(center: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An eye that sees a whole box (slightly from above right), and the box centre as target."""
    tan = math.tan(math.radians(PRESET_FOV_Y) / 2)
    distance = 1.1 * max(size[1] / 2 / tan, size[0] / 2 / (tan * PRESET_ASPECT)) + size[2]
    eye = center + PRESET_DIRECTION * distance
    return eye.astype(np.float32), center.astype(np.float32)


def _frame_alone(g: int, lo: np.ndarray, hi: np.ndarray, others: np.ndarray, depth: float,
                 margin: float = 1.1) -> tuple[np.ndarray, np.ndarray]:
    """A square-on eye that sees group g's whole box (lo, hi in xy) and no part of the boxes `others`.

    The view's rectangle on the blocks' front faces is centred on the box; it gets up to `margin`
    times the box's fitting size, less where that would reach a neighbour (the layout leaves the
    room: layers have a gap between them and columns the pitch layouts.stack.wrap gives them).
    """
    center, size = (lo[g] + hi[g]) / 2, hi[g] - lo[g]
    half_h = max(size[1], size[0] / PRESET_ASPECT) / 2  # the box just fits
    room = np.inf
    for o in others:
        d = np.abs((lo[o] + hi[o]) / 2 - center)
        half = (hi[o] - lo[o]) / 2
        # the rectangle (A·hh, hh) misses box o if it stops short of it along x or along y
        room = min(room, max((d[0] - half[0]) / PRESET_ASPECT, d[1] - half[1]))
    half_h = max(half_h, min(margin * half_h, room * 0.999))
    distance = half_h / math.tan(math.radians(PRESET_FOV_Y) / 2) + depth / 2
    target = np.array([center[0], center[1], 0.0])
    return (target + np.array([0.0, 0.0, distance])).astype(np.float32), target.astype(np.float32)


def _finish(spec: ModelSpec, family: FamilyLayout, whole: Part) -> Layout:
    n_tokens = family.n_tokens
    columns = max(s.columns for s in family.stacks)
    n = len(whole.ids)
    center = np.zeros((n, 3), np.float32)
    center[:, :2] = whole.center
    size = np.full((n, 3), BLOCK_DEPTH, np.float32)
    size[:, :2] = whole.size
    kind = whole.kind.astype(np.int8)
    compressed = ((whole.rows > LINEAR_LIMIT) | (whole.cols > LINEAR_LIMIT)
                  | np.isin(kind, (KIND_EXPERT, KIND_COMPONENT)))
    lo, hi = _group_bounds(whole)
    group_center = np.zeros((len(whole.gids), 3), np.float32)
    group_center[:, :2] = (lo + hi) / 2
    group_size = np.full((len(whole.gids), 3), 2.0 * BLOCK_DEPTH, np.float32)
    group_size[:, :2] = hi - lo
    text_position = np.zeros((len(whole.text), 3), np.float32)
    text_position[:, :2] = whole.tpos

    gindex = {g: i for i, g in enumerate(whole.gids)}
    last = spec.architecture.n_layers - 1
    wanted = {"overview": "model", "embedding": "embed", "first block": "blocks.0",
              "first head": "blocks.0.attn.head.0", "last block": f"blocks.{last}",
              "output": "output" if "output" in gindex else f"blocks.{last}"}
    presets = {name: _frame(group_center[gindex[g]].astype(np.float64),
                            group_size[gindex[g]].astype(np.float64))
               for name, g in wanted.items() if g in gindex}
    # A block preset shows that block and nothing of its neighbours: square on, so the view's
    # edges run along the gaps between the stacked layers and columns.
    top = np.flatnonzero(whole.gparent == 0)
    for name in ("first block", "last block"):
        if wanted[name] in gindex:
            g = gindex[wanted[name]]
            presets[name] = _frame_alone(g, lo, hi, top[top != g], float(group_size[g, 2]))
    # Each other stack (an encoder, a tower, a projector) framed whole: its top-level groups' box.
    for s in family.stacks:
        if s.main:
            continue
        mine = [g for g in top.tolist() if whole.gids[g] == s.prefix.rstrip(".") or whole.gids[g].startswith(s.prefix)]
        if mine:
            b_lo, b_hi = lo[mine].min(axis=0), hi[mine].max(axis=0)
            box_c = np.array([*(b_lo + b_hi) / 2, 0.0])
            box_s = np.array([*(b_hi - b_lo), 2.0 * BLOCK_DEPTH])
            presets[s.title.lower()] = _frame(box_c, box_s)
    return Layout(spec_id=spec.id, n_tokens=n_tokens, ids=whole.ids, kind=kind,
                  rows=whole.rows.astype(np.int64), cols=whole.cols.astype(np.int64),
                  center=center, size=size, color=_colors(spec, kind),
                  group=whole.group.astype(np.int64), label=whole.label, compressed=compressed,
                  group_ids=whole.gids, group_parent=whole.gparent.astype(np.int64),
                  group_label=whole.glabel, group_center=group_center, group_size=group_size,
                  text=whole.text, text_position=text_position,
                  text_height=whole.theight.astype(np.float32),
                  text_group=whole.tgroup.astype(np.int64), presets=presets, columns=columns,
                  links=dict(family.links), stacks={s.prefix: s.title for s in family.stacks},
                  mask_prefix=family.bidirectional)
