"""Which block of a model's layout feeds which: the data flow between its tensors, derived from the block ids.

One table, FLOW_RULES, says for each kind of block (by its id, the ids of layout_blocks.py) which
blocks it is computed from: a norm from the stream entering it, a head's queries from the
norm (or MLA's latent), the scores from its queries and keys (its own, its K/V group's or a
shared rotary key), a residual add from the stream and the sub-block's output, and so on for
MLPs, experts, Mamba and RWKV. A block no rule names is computed from the block before it
(layout order is computation order), so a new family still gets the chain of its blocks.
Placeholders: {in} the residual stream entering (the last stream block before it), {ln} the
last norm output before it, {prev} the block before it, {kv} the K/V group of a query head;
a source may list alternatives (the first that exists is used) and "*" stands for every index;
{@name} is a block of another stack, named by the layout's `links` (the encoder's output that
cross-attention reads, the projector's image tokens the decoder's prefix is made of).

A model is a list of stacks, each under its own id prefix ("audio.", "vision."): a block's unit is
its layer ("vision.blocks.3"), else its stack's part before or after the layers, else its own top
group (a projector, the shared embedding space); ids are matched without the stack's prefix, and
the stream starts again at each stack.

Weights and biases are not nodes here: a matrix feeds its output beside it, which the drawing
shows by sending a line into the weight (`weight_of`). The model is cut into units (the part
before the layers, each layer, the part after): a layer's edges are derived once per distinct
layer and copied, so a 96-layer model costs what one layer does. numpy and re only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .layout import KIND_BIAS, KIND_RESIDUAL, KIND_WEIGHT, Layout

IN = -1  # a template's stand-in for the stream entering the unit (a block of the unit before)

_NORM = r"(?P<n>ln\w*)"
_ATT = r"(?P<a>(?:cross_)?attn)"
FLOW_RULES: list[tuple[str, list]] = [
    # norms: statistics of the stream entering, then the normalised output
    (rf"{_NORM}\.(?:mean|rms)", ["{in}"]),
    (rf"{_NORM}\.std", ["{in}", "{n}.mean"]),
    (rf"{_NORM}\.out", ["{in}", "{n}.mean", "{n}.std", "{n}.rms"]),
    # embedding and what feeds it
    (r"embed\.tok", ["tokens"]),
    (r"embed\.patch", ["patches"]),
    (r"embed\.conv1?", ["features"]),
    (r"embed\.conv(?P<k>\d+)_act", ["embed.conv{k}"]),
    (r"embed\.conv2", ["embed.conv1_act"]),
    (r"embed\.pos", []),
    (r"embed\.(?P<m>image|audio)", ["{@{m}}"]),
    (r"embed\.out", [("embed.tok", "embed.patch", "embed.conv2_act", "embed.conv", "tokens", "patches",
                      "features"), "embed.pos", "embed.image", "embed.audio", "components.projector"]),
    (r"components\.projector", ["components.vision"]),
    # a projector between two stacks: its first layer reads the tower's output
    (r"(?P<p>\w+)\.fc1", ["{@projector_in}"]),
    (r"(?P<p>\w+)\.act(?P<k>\d+)", ["{p}.fc{k}"]),
    (r"components\.\w+", []),
    (r"tokens|patches|features", []),
    # attention: MLA latents, per-head (or per K/V group) projections, the pattern, the output projection
    (rf"{_ATT}\.(?:q_latent|kv_latent|k_rope)", ["{ln}"]),
    (r"cross_attn\.(?:head|kv_head)\.\d+\.(?:k|v)", ["{@memory}"]),   # from the encoder's output
    (rf"{_ATT}\.head\.(?P<h>\d+)\.q", [("{a}.q_latent", "{ln}")]),
    (rf"{_ATT}\.(?:head|kv_head)\.\d+\.(?:k|v)", [("{a}.kv_latent", "{ln}")]),
    (r"(?P<u>.+)\.(?P<r>q|k)_rope", ["{u}.{r}"]),
    (rf"{_ATT}\.head\.(?P<h>\d+)\.scores", [("{a}.head.{h}.q_rope", "{a}.head.{h}.q"),
                                            ("{a}.head.{h}.k_rope", "{a}.head.{h}.k", "{kv}.k_rope", "{kv}.k"),
                                            "{a}.k_rope"]),
    (r"(?P<u>.+)\.scores_masked", ["{u}.scores"]),
    (r"(?P<u>.+)\.softmax", [("{u}.scores_masked", "{u}.scores")]),
    (rf"{_ATT}\.head\.(?P<h>\d+)\.out", ["{a}.head.{h}.softmax", ("{a}.head.{h}.v", "{kv}.v")]),
    (rf"{_ATT}\.proj", ["{a}.head.*.out"]),
    # residual adds: the stream entering and the sub-block's output (the block before the add)
    (r"resid\w*", ["{in}", "{prev}"]),
    # MLP, plain or gated
    (r"mlp\.(?:fc|gate|up)", ["{ln}"]),
    (r"mlp\.(?:gelu|act)", [("mlp.gate", "mlp.fc")]),
    (r"mlp\.gated", ["mlp.act", "mlp.up"]),
    (r"mlp\.(?:proj|down)", [("mlp.gated", "mlp.gelu", "mlp.act")]),
    # mixture of experts: router, gates, the experts (each standing for its matrices), the combination
    (r"moe\.router", ["{ln}"]),
    (r"moe\.gates", ["moe.router"]),
    (r"moe\.expert\.\d+", ["{ln}", "moe.gates"]),
    (r"moe\.shared\.\d+", ["{ln}"]),
    (r"moe\.out", ["moe.expert.*", "moe.shared.*"]),
    # Mamba and Mamba-2
    (r"mamba\.(?:x|z|xBC)", ["{ln}"]),
    (r"mamba\.dt", [("mamba.dt_low", "{ln}")]),
    (r"mamba\.conv", [("mamba.x", "mamba.xBC")]),
    (r"mamba\.conv_act", ["mamba.conv"]),
    (r"mamba\.(?:dt_low|B|C)", ["mamba.conv_act"]),
    (r"mamba\.y", ["mamba.conv_act", "mamba.dt", "mamba.B", "mamba.C"]),
    # what each token's output reads from the earlier ones: Mamba's hidden attention, Mamba-2's SSD matrices
    (r"mamba\.(?:alpha|ssd\.\d+)", ["mamba.conv_act", "mamba.dt", "mamba.B", "mamba.C", "mamba.dA"]),
    (r"mamba\.(?:gated|norm)", ["mamba.y", "mamba.z"]),
    (r"mamba\.out", [("mamba.gated", "mamba.norm")]),
    # RWKV time mixing and channel mixing
    (r"time_mix\.(?:receptance|key|value|gate)", ["{ln}"]),
    (r"time_mix\.wkv", ["time_mix.key", "time_mix.value"]),
    (r"time_mix\.alpha", ["time_mix.key"]),
    (r"time_mix\.ln_x", ["time_mix.wkv"]),
    (r"time_mix\.out", [("time_mix.ln_x", "time_mix.wkv"), "time_mix.receptance", "time_mix.gate"]),
    (r"channel_mix\.(?:key|receptance)", ["{ln}"]),
    (r"channel_mix\.act", ["channel_mix.key"]),
    (r"channel_mix\.value", ["channel_mix.act"]),
    (r"channel_mix\.out", ["channel_mix.value", "channel_mix.receptance"]),
    # after the last layer
    (r"logits", [("ln_f.out", "{in}")]),
    (r"probs", [("logits", "classifier")]),
    (r"pool|image_features", [("ln_f.out", "{in}")]),
    (r"classifier", ["pool"]),
    (r"proj", [("pool", "image_features", "ln_f.out", "{in}")]),
    # CLIP's shared embedding space: the two towers' embeddings, their scaled similarity
    (r"contrast\.(?P<m>image|text)", ["{@{m}}"]),
    (r"contrast\.logits", ["contrast.image", "contrast.text"]),
    (r"mtp\.0", ["{in}"]),
]
_COMPILED = [(re.compile(pattern + "$"), sources) for pattern, sources in FLOW_RULES]
_NORM_OUT = re.compile(r"ln\w*\.out$")
_KV_GROUP = re.compile(r".*\.kv_head\.\d+$")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def is_node(kind) -> np.ndarray:
    """Blocks that take part in the flow: everything computed or given, not the weights and biases."""
    kind = np.asarray(kind)
    return (kind != KIND_WEIGHT) & (kind != KIND_BIAS)


# Matrices whose id is not "<output id>.weight".
WEIGHT_NAMES = {"logits": "lm_head.weight"}


def weight_of(layout: Layout, row: int) -> int:
    """Row of the matrix that computes block `row` (its "<id>.weight", a head's wq/wk/wv, or
    WEIGHT_NAMES), else -1."""
    tensor_id = layout.ids[row]
    head, _, last = tensor_id.rpartition(".")
    for candidate in (f"{tensor_id}.weight", f"{head}.w{last}" if last in ("q", "k", "v") else None,
                      WEIGHT_NAMES.get(tensor_id)):
        if candidate is None:
            continue
        try:
            w = layout.index(candidate)
        except KeyError:
            continue
        if layout.kind[w] == KIND_WEIGHT:
            return w
    return -1


@dataclass
class Template:
    """The edges of one kind of unit, in local indices (IN for the stream entering), and local depths."""
    src: np.ndarray
    dst: np.ndarray
    depth: np.ndarray  # per local node: steps after the stream entering (which is 0)
    out_depth: float   # depth of the unit's last stream block (what the next unit receives)
    ext: list = field(default_factory=list)  # (link name, local node): edges from another stack's block


@dataclass
class Unit:
    """A run of the model: the part before the layers, one layer, or the part after."""
    name: str          # "blocks.3", or the section's first group
    rows: np.ndarray   # node rows in layout order
    rels: list[str]    # their ids relative to the unit ("ln1.out"; whole ids outside the layers)
    key: tuple         # units with the same key share one template
    in_row: int        # stream block entering the unit (-1: none)
    out_row: int       # the unit's last stream block, else in_row
    depth0: float = 0.0  # depth of in_row


@dataclass
class FlowGraph:
    """Block-level edges (layout rows) with each node's depth in the forward pass."""
    src: np.ndarray
    dst: np.ndarray
    depth: np.ndarray          # per layout row; NaN for weights and biases
    units: list[Unit]
    templates: dict = field(default_factory=dict)

    def sources(self, row: int) -> np.ndarray:
        return self.src[self.dst == row]


def _top_groups(layout: Layout) -> np.ndarray:
    """Per group, the top-level group (child of the root) above it; the root itself for the root."""
    parent = layout.group_parent
    top = np.arange(len(parent))
    while True:
        up = parent[top]
        climb = (up > 0)
        if not climb.any():
            return top
        top = np.where(climb, up, top)


_LAYER_GROUP = re.compile(r"(?:(?P<p>.+\.))?blocks\.\d+$")
_SECTION = re.compile(r"(?:(?P<p>.+\.))?(?:embed|output)$")


def _group_units(layout: Layout) -> tuple[list[str], list[bool]]:
    """Per group: the stack it belongs to ("" the main stack, "vision." a tower, a projector's own
    id) and whether it is a layer."""
    stacks, layers = [], []
    for g in layout.group_ids:
        m = _LAYER_GROUP.match(g)
        if m:
            stacks.append(m.group("p") or "")
            layers.append(True)
            continue
        m = _SECTION.match(g)
        stacks.append((m.group("p") or "") if m else g + ".")
        layers.append(False)
    return stacks, layers


def _units(layout: Layout) -> list[Unit]:
    rows = np.flatnonzero(is_node(layout.kind))
    top = _top_groups(layout)[layout.group[rows]]
    g_stack, g_layer = _group_units(layout)
    own = {st: not (lay or _SECTION.match(g)) for g, st, lay in zip(layout.group_ids, g_stack, g_layer)}
    # Runs of rows: a layer each; else the rows of one stack before (or after) its layers.
    pieces: list[tuple[str, str, bool, np.ndarray]] = []
    seen_layers: set[str] = set()
    cuts = np.flatnonzero(np.diff(top)) + 1
    for chunk in np.split(np.arange(len(rows)), cuts):
        if not len(chunk):
            continue
        g = int(top[chunk[0]])
        stack, layer = g_stack[g], g_layer[g]
        if layer:
            pieces.append((layout.group_ids[g], stack, True, chunk))
            seen_layers.add(stack)
            continue
        name = stack + ("after" if stack in seen_layers else "before")
        if pieces and pieces[-1][0] == name:
            pieces[-1] = (name, stack, False, np.concatenate([pieces[-1][3], chunk]))
        else:
            pieces.append((name, stack, False, chunk))
    units = []
    stream = layout.kind == KIND_RESIDUAL
    ids = layout.ids
    in_row, current = -1, None
    for name, stack, layer, idx in pieces:
        if stack != current:            # a new stack: its stream starts afresh
            in_row, current = -1, stack
        urows = rows[idx]
        # A layer's ids relative to it, a stack's stem and output without the stack's prefix; a
        # group of its own (a projector) keeps its whole ids.
        cut = len(name) + 1 if layer else (0 if own[stack] else len(stack))
        urels = [ids[r][cut:] for r in urows.tolist()]
        ustream = stream[urows]
        key = (("layer", stack) if layer else name, tuple(urels), ustream.tobytes(), in_row >= 0)
        out_rows = urows[ustream]
        out_row = int(out_rows[-1]) if len(out_rows) else in_row
        units.append(Unit(name, urows, urels, key, in_row, out_row))
        in_row = out_row
    return units


def _kv_rel(layout: Layout, row: int, unit: str) -> str | None:
    """The K/V group (relative id) holding a query head's block, for the {kv} placeholder."""
    g = layout.group[row]
    parent = layout.group_parent[g]
    if parent < 0:
        return None
    gid = layout.group_ids[parent]
    if not _KV_GROUP.match(gid):
        return None
    prefix = unit + "."
    return gid[len(prefix):] if gid.startswith(prefix) else gid


def _template(rels: list[str], stream: tuple, kv: tuple, has_in: bool, links=()) -> Template:
    index = {r: i for i, r in enumerate(rels)}
    ext: list[tuple[str, int]] = []
    norm_out = [bool(_NORM_OUT.match(r)) for r in rels]
    src, dst = [], []
    last_stream, last_norm = (IN if has_in else None), None  # before block i, in layout order
    for i, rel in enumerate(rels):
        special = {"in": last_stream, "ln": last_norm, "prev": i - 1 if i > 0 else last_stream}
        sources = ["{prev}"]
        bound: dict[str, str] = {}
        for pattern, rule_sources in _COMPILED:
            m = pattern.match(rel)
            if m:
                sources, bound = rule_sources, {k: v for k, v in m.groupdict().items() if v is not None}
                break
        if kv[i] is not None:
            bound["kv"] = kv[i]
        found: list[int] = []
        for spec in sources:
            for alternative in (spec if isinstance(spec, tuple) else (spec,)):
                link = _link(alternative, bound)
                if link is not None:
                    if link in links:
                        ext.append((link, i))
                        break
                    continue
                hits = _resolve(alternative, special, bound, index)
                if hits:
                    found += hits
                    break
        for j in dict.fromkeys(found):
            if j != i:
                src.append(j)
                dst.append(i)
        if stream[i]:
            last_stream = i
        if norm_out[i]:
            last_norm = i
    src_a, dst_a = np.array(src, np.int64), np.array(dst, np.int64)
    depth = _depths(len(rels), src_a, dst_a)
    stream_idx = [i for i, s in enumerate(stream) if s]
    out_depth = float(depth[stream_idx[-1]]) if stream_idx else 0.0
    return Template(src_a, dst_a, depth, out_depth, ext)


def _link(alternative: str, bound: dict) -> str | None:
    """"{@memory}" (or "{@{m}}" with m bound) -> "memory": a block of another stack; else None."""
    if not alternative.startswith("{@"):
        return None
    try:
        text = _PLACEHOLDER.sub(lambda m: bound[m.group(1)], alternative[2:-1])
    except KeyError:
        return ""
    return text


def _resolve(alternative: str, special: dict, bound: dict, index: dict) -> list[int]:
    name = alternative[1:-1] if alternative.startswith("{") and alternative.endswith("}") else None
    if name in special:
        j = special[name]
        return [] if j is None else [j]
    try:
        text = _PLACEHOLDER.sub(lambda m: bound[m.group(1)], alternative)
    except KeyError:
        return []
    if "*" in text:
        pattern = re.compile(re.escape(text).replace(r"\*", r"\d+") + "$")
        return [j for r, j in index.items() if pattern.match(r)]
    j = index.get(text)
    return [] if j is None else [j]


def _depths(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Longest path from the stream entering (depth 0) to each node, sources before targets (Kahn's order)."""
    depth = np.zeros(n)
    local = src >= 0
    depth[dst[~local]] = 1.0  # the stream entering feeds its targets at depth 1
    s, d = src[local], dst[local]
    order = np.argsort(s, kind="stable")
    s, d = s[order], d[order]
    starts = np.searchsorted(s, np.arange(n))
    ends = np.searchsorted(s, np.arange(n), side="right")
    indegree = np.bincount(d, minlength=n)
    ready = [i for i in range(n) if indegree[i] == 0]
    while ready:
        i = ready.pop()
        for k in range(starts[i], ends[i]):
            j = d[k]
            depth[j] = max(depth[j], depth[i] + 1.0)
            indegree[j] -= 1
            if indegree[j] == 0:
                ready.append(j)
    return depth


def _has(layout: Layout, tensor_id: str) -> bool:
    try:
        layout.index(tensor_id)
    except KeyError:
        return False
    return True


def flow_graph(layout: Layout) -> FlowGraph:
    """Every block-level edge of the model, and each node's depth (steps from the input)."""
    units = _units(layout)
    links = {name: target for name, target in getattr(layout, "links", {}).items() if _has(layout, target)}
    templates: dict = {}
    src, dst = [], []
    depth = np.full(len(layout.ids), np.nan)
    d0 = 0.0
    for unit in units:
        tpl = templates.get(unit.key)
        if tpl is None:
            stream = tuple(bool(b) for b in layout.kind[unit.rows] == KIND_RESIDUAL)
            kv = tuple(_kv_rel(layout, r, unit.name) for r in unit.rows.tolist())
            tpl = templates[unit.key] = _template(unit.rels, stream, kv, unit.in_row >= 0, links)
        unit.depth0 = d0
        depth[unit.rows] = d0 + tpl.depth
        s = np.where(tpl.src == IN, unit.in_row, unit.rows[np.maximum(tpl.src, 0)])
        src.append(s)
        dst.append(unit.rows[tpl.dst])
        if tpl.ext:  # edges from another stack: the encoder's output, the projector's tokens
            src.append(np.array([layout.index(links[name]) for name, _ in tpl.ext], np.int64))
            dst.append(unit.rows[[i for _, i in tpl.ext]])
        if unit.out_row != unit.in_row:
            d0 = float(depth[unit.out_row])
    return FlowGraph(np.concatenate(src) if src else np.zeros(0, np.int64),
                     np.concatenate(dst) if dst else np.zeros(0, np.int64), depth, units, templates)
