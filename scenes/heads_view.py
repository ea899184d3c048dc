"""The heads view (H): every head of every layer of the live model as a grid of attention heatmaps for the
current input, coloured by cluster and captioned with its named pattern; the clustering's dendrogram; the
rollout and flow matrices. A click on a head flies to its block in the model. Rollout and flow can also be
drawn in the 3D scene as ribbons between the layers (scenes/attention_ribbons.py), chosen in the window.

The analysis (scenes/attention_live.py, models/attention_analysis.py) runs on this view's own worker,
with its own copy of the model for the batch of inputs the clustering pools over; the frame thread only
hands it the live trace (an immutable mapping) and draws the last result, saying "computing…" while a
newer one is on its way. What a frame draws is derived once per result on the worker: each heatmap as
horizontal runs of equal colour (cells at the background colour left out), packed ImGui colours, cell
rectangles in cell units; a frame turns those into screen rectangles (cached while the window stays put)
and makes one draw-list call per run.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from imgui_bundle import imgui

from llmviz.common.i18n import tr
from llmviz.scenes.explorer.modes import Mode
from llmviz.scenes.panels import AMBER_RGB, DIM_RGB, ERROR_RGB

COLOUR_LEVELS = 32          # colour steps of a heatmap: runs of one step are drawn as one rectangle
TILE_PX = 150               # a head's heatmap is about this wide, in whole pixels per cell
MIN_CELL_PX, MAX_CELL_PX = 2, 20
MATRIX_PX = 220             # the rollout and flow matrices
DENDROGRAM_H = 130
LEAF_PX = 34                # dendrogram width per head
MARGIN = 10.0
GREY = (0.55, 0.55, 0.6)
SHOWN_CELLS = 64            # a longer input (vit-tiny's 257 patches) is drawn as means of blocks of cells
RIBBON_MAX_TOKENS = 64


def pool_factor(tokens: int) -> int:
    return max(1, -(-tokens // SHOWN_CELLS))


def pooled(values: np.ndarray, factor: int) -> np.ndarray:
    """Means of factor x factor blocks of a (T, T) matrix (a partial last block: the mean of the cells it
    has); the matrix itself at factor 1."""
    if factor == 1:
        return values
    T = len(values)
    n = -(-T // factor)
    padded = np.full((n * factor, n * factor), np.nan)
    padded[:T, :T] = values
    return np.nanmean(padded.reshape(n, factor, n, factor), axis=(1, 3))


def _cell_px(tokens: int, width: int) -> int:
    return int(np.clip(width // max(tokens, 1), MIN_CELL_PX, MAX_CELL_PX))


@dataclass(frozen=True)
class Heatmap:
    """A matrix ready to draw: runs (n, 4) as x0, y0, x1, y1 in cells, their packed colours, the background."""

    runs: np.ndarray
    colours: list[int]
    background: int
    size: int                 # T


def heatmap(values: np.ndarray) -> Heatmap:
    """Runs of equal colour along each row of a (T, T) matrix of weights in [0, 1] (magma of √weight, the
    colours of `llmviz attention`'s PNGs, in COLOUR_LEVELS steps); the lowest step is the background."""
    from llmviz.engine.render.colormaps import COLORMAP_MAGMA, LUTS
    from llmviz.scenes.moe_panels import pack_u32

    T = len(values)
    level = np.clip(np.sqrt(np.clip(values, 0, 1)) * COLOUR_LEVELS, 0, COLOUR_LEVELS - 1).astype(np.int64)
    lut = LUTS[COLORMAP_MAGMA][np.linspace(0, len(LUTS[COLORMAP_MAGMA]) - 1, COLOUR_LEVELS).astype(np.int64)]
    packed = pack_u32(lut)
    padded = np.pad(level, ((0, 0), (1, 1)), constant_values=-1)
    starts = np.argwhere(padded[:, 1:-1] != padded[:, :-2])           # (row, col) where a run begins
    ends = np.argwhere(padded[:, 1:-1] != padded[:, 2:])              # (row, col) where a run ends, same order
    keep = level[starts[:, 0], starts[:, 1]] > 0
    starts, ends = starts[keep], ends[keep]
    runs = np.stack([starts[:, 1], starts[:, 0], ends[:, 1] + 1, starts[:, 0] + 1], 1).astype(np.float64)
    colours = packed[level[starts[:, 0], starts[:, 1]]].astype(np.int64).tolist()
    return Heatmap(runs.reshape(-1, 4), colours, int(packed[0]), T)


@dataclass
class HeadsResult:
    """What the worker hands the view for one trace."""

    model_id: str
    current: object            # attention_live.TracedHeads
    analysis: object           # attention_analysis.HeadsAnalysis
    tiles: list[list[Heatmap]]
    rollout: Heatmap
    flow: Heatmap | None
    cluster_rgb: np.ndarray    # (groups, 3)
    ribbons: dict              # "rollout" / "flow" -> (edges (L, T, T), inputs (T,)) into the last token
    pool: int = 1              # each drawn cell the mean of pool x pool entries (pool_factor)
    stacks: tuple = ()         # (prefix, name) of every stack of heads the model has (attention_stacks)
    stack: str = ""
    note: str = ""             # what the clustering pooled over, where it is not the text models' batch

    @property
    def side(self) -> int:
        """Cells drawn a side."""
        return -(-len(self.current.tokens) // self.pool)


class _Analyser:
    """The worker's side: a copy of the model, and `trace(request)` = the analysis of one live trace
    (named so that worker_session.traced_model_compute serves it, loading under its one-at-a-time lock)."""

    def __init__(self, model_id: str):
        import torch

        from llmviz.scenes.attention_live import attention_models

        torch.set_num_threads(1)
        self.model_id = model_id
        self.entry = attention_models()[model_id]
        self.model = self.entry.load(None)

    def weights(self):
        return None

    def trace(self, request) -> HeadsResult:
        from llmviz.models import attention_analysis
        from llmviz.scenes.attention_live import analyse_heads, heads_of
        from llmviz.scenes.moe_live import expert_colors

        live_trace, seed = request
        current = heads_of(live_trace, [int(t) for t in live_trace["tokens"]], self.entry.alphabet)
        analysis = analyse_heads(self.entry, self.model, current, seed=seed)
        distributions = current.distributions
        tiles = [[heatmap(head) for head in layer] for layer in distributions]
        flow = heatmap(analysis.flow) if analysis.flow is not None else None
        groups = int(analysis.clusters.max()) + 1
        last = len(current.tokens) - 1
        ribbons = {"rollout": attention_analysis.rollout_edges(distributions, last)}
        if analysis.flow is not None:
            ribbons["flow"] = attention_analysis.flow_edges(distributions, last)
        return HeadsResult(self.model_id, current, analysis, tiles, heatmap(analysis.rollout[-1]), flow,
                           np.asarray(expert_colors(groups)), ribbons)


class _Lazy:
    """A compute made on its first call (the live scene's factory takes the loading lock, which the worker
    holds while this view's analyser is made)."""

    def __init__(self, make):
        self._make, self._compute = make, None

    def __call__(self, request):
        if self._compute is None:
            self._compute = self._make()
        return self._compute(request)


class _StackAnalyser:
    """The worker's side for the live models with stacks of their own (scenes/attention_stacks.py): the
    live scene's own compute traces the batch; `trace(request)` is the analysis of one stack of one trace."""

    def __init__(self, kind: str, model_id: str):
        import torch

        torch.set_num_threads(1)
        self.kind, self.model_id = kind, model_id
        self._compute = None        # the live scene's compute (_Lazy), traces the samples
        self._batch: dict = {}      # request -> trace (the samples, reused while only the stack changes)

    def weights(self):
        return None

    def trace(self, request) -> HeadsResult:
        from llmviz.models import attention_analysis
        from llmviz.scenes import attention_stacks as st
        from llmviz.scenes.moe_live import expert_colors

        live_trace, seed, prefix, live_request, strings, ids = request
        if self._compute is None:
            self._compute = _Lazy(lambda: st.compute_for(self.kind))
        prefix, stacks, current, analysis, inputs = st.analyse_stack(
            self.kind, live_trace, prefix, live_request, strings, ids, self._compute, self._batch)
        distributions = current.distributions
        factor = pool_factor(len(current.tokens))
        tiles = [[heatmap(pooled(head, factor)) for head in layer] for layer in distributions]
        flow = heatmap(pooled(analysis.flow, factor)) if analysis.flow is not None else None
        ribbons = {}
        if self.kind == "folder" and len(current.tokens) <= RIBBON_MAX_TOKENS:   # the layout's blocks.N: one stack
            last = len(current.tokens) - 1
            ribbons["rollout"] = attention_analysis.rollout_edges(distributions, last)
            if analysis.flow is not None:
                ribbons["flow"] = attention_analysis.flow_edges(distributions, last)
        groups = int(analysis.clusters.max()) + 1
        return HeadsResult(self.model_id, current, analysis, tiles, heatmap(pooled(analysis.rollout[-1], factor)), flow,
                           np.asarray(expert_colors(groups)), ribbons, factor,
                           tuple((p, st.stack_name(self.kind, p)) for p in stacks), prefix,
                           st.stack_batch_note(self.kind, inputs))


class _Rects:
    """A heatmap's screen rectangles, remade only when its origin or cell size changes."""

    def __init__(self):
        self._key = None
        self._rects: list = []

    def draw(self, dl, heat: Heatmap, x: float, y: float, cell: float) -> None:
        key = (id(heat), x, y, cell)
        if key != self._key:
            xy = heat.runs * cell + np.array([x, y, x, y])
            self._rects = [(imgui.ImVec2(a, b), imgui.ImVec2(c, d), colour)
                           for (a, b, c, d), colour in zip(xy.tolist(), heat.colours)]
            self._key = key
        dl.add_rect_filled(imgui.ImVec2(x, y), imgui.ImVec2(x + heat.size * cell, y + heat.size * cell),
                           heat.background)
        for a, b, colour in self._rects:
            dl.add_rect_filled(a, b, colour)


def _rgba(rgb, alpha: float = 1.0) -> tuple:
    return float(rgb[0]), float(rgb[1]), float(rgb[2]), alpha


class HeadsPanel:
    """The window: header, the grid of heads, the dendrogram, rollout and flow. `draw` returns the tensor id
    of a head clicked this frame, or None."""

    def __init__(self):
        self._rects: dict = {}
        self.tile_boxes: dict[str, tuple[float, float, float]] = {}   # tensor id -> last drawn (x, y, side)
        self._width = None
        self.raise_next = True
        self.ribbons = "off"      # the ribbons chosen in the window (HeadsMode reads it back)
        self.stack: str | None = None   # the stack of heads chosen in the window (HeadsMode reads it back)

    def _rects_for(self, key) -> _Rects:
        rects = self._rects.get(key)
        if rects is None:
            rects = self._rects[key] = _Rects()
        return rects

    @staticmethod
    def content_width(result: HeadsResult | None) -> float:
        """Pixels the widest part needs: a row of heads, the dendrogram, or rollout beside flow."""
        if result is None:
            return 520.0
        T = result.side
        heads = max(len(layer) for layer in result.tiles)
        grid = heads * (_cell_px(T, TILE_PX) * T + 14)
        tree = len(result.analysis.heads) * LEAF_PX + 40
        matrices = 2 * (_cell_px(T, MATRIX_PX) * T + 14) + 30
        return float(max(grid, tree, matrices, 520)) + 2 * MARGIN

    def draw(self, area, result: HeadsResult | None, computing: bool, error: str, message: str,
             ribbons: str = "off") -> str | None:
        # as wide as its content, at most the view less the live model's panel beside it
        width = min(self.content_width(result), max(area.width - area.left - MARGIN - 400.0, 520.0))
        imgui.set_next_window_pos(imgui.ImVec2(area.left, area.top), imgui.Cond_.appearing)
        imgui.set_next_window_size(imgui.ImVec2(width, area.height - MARGIN), imgui.Cond_.always
                                   if self._width != width else imgui.Cond_.appearing)
        self._width = width
        imgui.set_next_window_bg_alpha(1.0)   # opaque: the model's panels and legend stay out of the heatmaps
        if self.raise_next:     # just opened: in front of the panels drawn after it (the legend)
            imgui.set_next_window_focus()
            self.raise_next = False
        title = tr("heads.title_model", model=result.model_id) if result is not None else tr("heads.title")
        expanded, _ = imgui.begin(f"{title}###heads", None, imgui.WindowFlags_.no_saved_settings
                                  | imgui.WindowFlags_.horizontal_scrollbar)
        clicked = None
        self.ribbons = ribbons
        if expanded:
            if error:
                imgui.text_colored(ERROR_RGB, error)
            if computing:
                imgui.text_colored(AMBER_RGB, tr("heads.computing"))
            if result is None:
                imgui.text_colored(DIM_RGB, tr("heads.waiting"))
            else:
                clicked = self._body(result)
            if message:
                imgui.text_colored(ERROR_RGB, message)
        imgui.end()
        return clicked

    def _ribbon_choice(self, result: HeadsResult | None) -> None:
        """Rollout or flow as ribbons between the layers in the 3D scene, beside the model (or none)."""
        from llmviz.scenes.attention_ribbons import MODES

        if result is not None and not result.ribbons:
            imgui.text_colored(DIM_RGB, tr("heads.ribbons_unavailable", n=RIBBON_MAX_TOKENS))
            self.ribbons = "off"
            return
        imgui.text(tr("heads.ribbons"))
        for mode in MODES:
            imgui.same_line()
            available = mode != "flow" or result is None or "flow" in result.ribbons
            if imgui.radio_button(f"{tr('heads.ribbon_mode.' + mode)}##ribbons", self.ribbons == mode) and available:
                self.ribbons = mode
        if result is not None and "flow" not in result.ribbons:
            imgui.same_line()
            imgui.text_colored(DIM_RGB, tr("heads.flow_limit"))

    def _body(self, r: HeadsResult) -> str | None:
        a, current = r.analysis, r.current
        if r.stacks:
            text = " ".join(current.labels[:12]) + (" ..." if len(current.labels) > 12 else "")
        else:
            text = "".join(current.labels).replace("\n", "↵")
        imgui.text(tr("heads.input", text=text, n=len(current.tokens)))
        if len(r.stacks) > 1:
            imgui.text(tr("heads.heads_of"))
            for prefix, name in r.stacks:
                imgui.same_line()
                if imgui.radio_button(f"{name}##stack", r.stack == prefix):
                    self.stack = prefix
        imgui.push_text_wrap_pos(0.0)
        if r.note:
            imgui.text_colored(DIM_RGB, r.note)
        if r.pool > 1:
            imgui.text_colored(AMBER_RGB, tr("heads.pooled", n=len(current.tokens), pool=r.pool))
        imgui.text_colored(DIM_RGB, tr("heads.summary", heads=len(a.heads), clusters=int(a.clusters.max()) + 1,
                                       inputs=a.inputs, cut=a.cut))
        imgui.pop_text_wrap_pos()
        clicked = self._grid(r)
        imgui.separator()
        self._dendrogram(r)
        imgui.separator()
        self._ribbon_choice(r)
        self._matrices(r)
        return clicked

    def _grid(self, r: HeadsResult) -> str | None:
        a, current = r.analysis, r.current
        T = r.side
        cell = _cell_px(T, TILE_PX)
        side = cell * T
        dl = imgui.get_window_draw_list()
        clicked = None
        index = 0
        for layer, (block, tiles) in enumerate(zip(current.blocks, r.tiles)):
            imgui.text_colored(DIM_RGB, tr("heads.layer", block=block, kind=current.kinds[layer]))
            for head, heat in enumerate(tiles):
                if head:
                    imgui.same_line()
                rgb = r.cluster_rgb[a.clusters[index]]
                pattern = a.patterns[index]
                imgui.begin_group()
                imgui.text_colored(_rgba(rgb), tr("heads.head", block=block, head=head, pattern=pattern.name))
                p = imgui.get_cursor_screen_pos()
                x, y = float(p.x) + 3.0, float(p.y) + 3.0
                self._rects_for(("tile", layer, head)).draw(dl, heat, x, y, cell)
                self.tile_boxes[current.ids[layer][head]] = (x, y, float(side))
                dl.add_rect(imgui.ImVec2(x - 2, y - 2), imgui.ImVec2(x + side + 2, y + side + 2),
                            imgui.get_color_u32(imgui.ImVec4(*_rgba(rgb))), 0.0, 0, 2.0)
                imgui.invisible_button(f"##head{layer}.{head}", imgui.ImVec2(side + 6, side + 6))
                if imgui.is_item_hovered():
                    self._tooltip(r, layer, head, index, x, y, cell)
                if imgui.is_item_clicked():
                    clicked = current.ids[layer][head]
                imgui.end_group()
                index += 1
        return clicked

    def _tooltip(self, r: HeadsResult, layer: int, head: int, index: int, x: float, y: float, cell: float) -> None:
        current, pattern = r.current, r.analysis.patterns[index]
        mouse = imgui.get_mouse_pos()
        T = len(current.tokens)
        q, k = int((mouse.y - y) // cell) * r.pool, int((mouse.x - x) // cell) * r.pool
        imgui.begin_tooltip()
        imgui.text(tr("heads.tooltip_head", id=current.ids[layer][head], cluster=int(r.analysis.clusters[index])))
        imgui.text(pattern.reason)
        scores = ", ".join(f"{name} {value:.2f}" for name, value in pattern.scores.items() if np.isfinite(value))
        imgui.text_colored(DIM_RGB, tr("heads.scores", scores=scores))
        if r.pool > 1 and 0 <= q < T and 0 <= k < T:
            block = r.current.distributions[layer][head][q:q + r.pool, k:k + r.pool]
            imgui.text(tr("heads.block_reading", q0=q, q1=q + len(block) - 1, q_label=current.labels[q], k0=k,
                          k1=k + block.shape[1] - 1, k_label=current.labels[k], mean=float(block.mean()),
                          largest=float(block.max())))
        elif 0 <= q < T and 0 <= k < T:
            weight = r.current.distributions[layer][head][q, k]
            raw = current.layers[layer][head][q, k]
            imgui.text(tr("heads.cell_reading", q=q, q_label=repr(current.labels[q]), k=k,
                          k_label=repr(current.labels[k]), weight=float(weight))
                       + ("" if np.isclose(weight, raw) else tr("heads.trace_value", raw=float(raw))))
        imgui.text_colored(DIM_RGB, tr("heads.click"))
        imgui.end_tooltip()

    def _dendrogram(self, r: HeadsResult) -> None:
        a, current = r.analysis, r.current
        tree = a.dendrogram
        n = len(a.heads)
        imgui.text(tr("heads.dendrogram"))
        p = imgui.get_cursor_screen_pos()
        x0, y0 = float(p.x) + 20.0, float(p.y) + 6.0
        top = max(float(a.linkage[:, 2].max()) if len(a.linkage) else 1.0, 1e-6)
        dl = imgui.get_window_draw_list()

        def at(x, h):
            return imgui.ImVec2(x0 + x * LEAF_PX + LEAF_PX / 2, y0 + DENDROGRAM_H * (1.0 - h / top))

        leaf_cluster = {leaf: int(a.clusters[leaf]) for leaf in range(n)}
        node_cluster = dict(leaf_cluster)
        for i, ((xa, ha, xb, hb, h), (ca, cb, _, _)) in enumerate(zip(tree.links, a.linkage)):
            same = node_cluster.get(int(ca)) is not None and node_cluster.get(int(ca)) == node_cluster.get(int(cb))
            node_cluster[n + i] = node_cluster[int(ca)] if same else None
            colour = imgui.get_color_u32(imgui.ImVec4(*_rgba(r.cluster_rgb[node_cluster[int(ca)]] if same else GREY)))
            for start, end in ((at(xa, ha), at(xa, h)), (at(xa, h), at(xb, h)), (at(xb, h), at(xb, hb))):
                dl.add_line(start, end, colour, 1.5)
        if a.cut_height is not None and a.cut_height <= top:
            left, right = at(-0.5, a.cut_height), at(n - 0.5, a.cut_height)
            dl.add_line(left, right, imgui.get_color_u32(imgui.ImVec4(*AMBER_RGB)), 1.0)
        for position, leaf in enumerate(tree.order.tolist()):
            layer, head = a.heads[leaf]
            base = at(position, 0.0)
            dl.add_text(imgui.ImVec2(base.x - 14, base.y + 4), imgui.get_color_u32(
                imgui.ImVec4(*_rgba(r.cluster_rgb[leaf_cluster[leaf]]))), f"{current.blocks[layer]}.{head}")
        imgui.dummy(imgui.ImVec2(n * LEAF_PX + 40, DENDROGRAM_H + 28))
        imgui.text_colored(DIM_RGB, tr("heads.leaves"))

    def _matrices(self, r: HeadsResult) -> None:
        a, current = r.analysis, r.current
        T = r.side
        cell = _cell_px(T, MATRIX_PX)
        side = cell * T
        label_w = 14.0 if T <= 40 and not r.stacks else 0.0
        shown = [(tr("heads.rollout"), r.rollout), (tr("heads.flow"), r.flow)]
        dl = imgui.get_window_draw_list()
        for i, (name, heat) in enumerate(shown):
            if i:
                imgui.same_line(0, 30)
            imgui.begin_group()
            imgui.text(name)
            p = imgui.get_cursor_screen_pos()
            x, y = float(p.x) + label_w, float(p.y)
            if heat is None:
                imgui.text_colored(DIM_RGB, a.flow_note)
            else:
                self._rects_for(("matrix", name)).draw(dl, heat, x, y, cell)
                if label_w:
                    colour = imgui.get_color_u32(imgui.ImVec4(*DIM_RGB))
                    for t, label in enumerate(current.labels):
                        shown_label = {"\n": "↵", " ": "·"}.get(label, label)
                        dl.add_text(imgui.ImVec2(x - label_w + 2, y + t * cell + cell / 2 - 8), colour, shown_label)
                imgui.dummy(imgui.ImVec2(side + label_w, side + 4))
                imgui.text_colored(DIM_RGB, tr("heads.axes"))
            imgui.end_group()


class HeadsMode(Mode):
    """H opens and closes the heads view of the live model; its analysis runs on a worker while open."""

    name = "heads"

    def __init__(self, ex, session, model_id: str, kind: str | None = None):
        super().__init__(ex, session)
        self.model_id = model_id
        self.kind = kind            # a live kind with stacks of its own (attention_stacks), or None: a text model
        self.stack: str | None = None
        self.open = False
        self.result: HeadsResult | None = None
        self.error = ""
        self.message = ""
        self.seed = 0
        self.panel = HeadsPanel()
        self._runner = None
        self._asked = -1            # the live trace version last handed to the worker
        self._ticket = None         # the worker's ticket for it, until its result lands
        self._batch_for = None      # a folder's: (request less its batch, the variants) until they are recorded
        self.ribbon_mode = "off"    # rollout or flow ribbons in the scene (scenes/attention_ribbons.py)
        self._ribbons = None
        self.actions = {"toggle_heads": self.toggle, "back": self.toggle}

    def handler(self, action: str):
        """H opens and closes; Esc closes the window when it is open (after a focus or selection steps out:
        the modes before this one take Esc first), never anything else."""
        if action == "back" and not self.open:
            return None
        return super().handler(action)

    def toggle(self) -> None:
        self.open = not self.open
        self.panel.raise_next = self.open

    @property
    def computing(self) -> bool:
        return self._ticket is not None or self._batch_for is not None

    def systems(self):
        return [("simulation", "heads_view", self._update, {})]

    def _update(self, frame) -> None:
        """The heads view's analysis taken from its worker when ready, its ribbons kept in step with the live model."""
        if self._ribbons is not None:     # they stay when the window closes, and follow the live model
            self._ribbons.show(self.result, self.ribbon_mode)
        if not self.open and self.ribbon_mode == "off":
            return
        live = self.session.scene.live.session
        if self._runner is None:
            from llmviz.models.sim.tick import SimulationRunner
            from llmviz.scenes.worker_session import traced_model_compute

            model_id, kind = self.model_id, self.kind
            self._runner = SimulationRunner(traced_model_compute(
                lambda: _StackAnalyser(kind, model_id) if kind else _Analyser(model_id)), name=f"llmviz-heads {model_id}")
        asked = (live.trace_version, self.stack)
        if live.trace is not None and asked != self._asked:
            self._asked = asked
            strings, ids = tuple(getattr(live, "strings", ()) or ()), tuple(getattr(live, "ids", ()) or ())
            if self.kind == "folder":   # its variants go to the folder's own worker first (record_batch)
                from llmviz.scenes.attention_stacks import folder_variants

                variants = folder_variants(ids, self.seed)
                live.record_batch(variants)
                self._batch_for = ((live.trace, self.seed, self.stack), (strings, ids), variants)
            elif self.kind:
                request = getattr(live, "_sent", None) or getattr(live, "_input", None)
                self._ticket = self._runner.submit((live.trace, self.seed, self.stack, request, strings, ids))
            else:
                self._ticket = self._runner.submit((live.trace, self.seed))
        if self._batch_for is not None:
            head, tail, variants = self._batch_for
            recorded = live.batch_recorded(variants)
            if recorded is not None:
                self._batch_for = None
                self._ticket = self._runner.submit((*head, recorded, *tail))
        for result in self._runner.poll():
            if result.ticket != self._ticket:
                continue        # an older trace's analysis: a newer one is on its way
            self._ticket = None
            if result.error:
                self.error = tr("heads.failed", error=result.error)
            else:
                self.result, self.error = result.value, ""

    def wait(self, timeout: float = 60.0) -> bool:
        """Headless (screenshots, tests): block until the current trace's analysis is in."""
        import time

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._batch_for is not None:    # the folder's variants come back through its session's poll
                self.session.scene.live.update(0.0)
            self._update(None)
            if self.result is not None and not self.computing:
                return True
            time.sleep(0.05)
        return False

    def fly_to(self, tensor_id: str) -> None:
        from llmviz.scenes.focus import BLOCK, Node

        model, focus = self.session.model, self.session.focus_mode
        try:
            row = model.layout.index(tensor_id)
        except KeyError:
            self.message = f"no block for {tensor_id} in this scene"
            return
        self.message = ""
        if focus is not None:
            focus.select(Node(BLOCK, int(row)))

    def panels(self, area) -> None:
        if not self.open:
            return
        clicked = self.panel.draw(area, self.result, self.computing, self.error, self.message, self.ribbon_mode)
        if clicked is not None:
            self.fly_to(clicked)
        if self.panel.stack is not None:
            self.stack = self.panel.stack
        self.set_ribbons(self.panel.ribbons)
        self._ribbon_tooltip()

    def set_ribbons(self, mode: str) -> None:
        """Rollout, flow or no ribbons in the scene (drawn from the next frame on)."""
        if mode != "off" and self._ribbons is None:
            from llmviz.scenes.attention_ribbons import AttentionRibbons

            self._ribbons = AttentionRibbons(self.session.engine.world, self.session.model.layout)
        self.ribbon_mode = mode

    def _ribbon_tooltip(self) -> None:
        """The hovered ribbon's value (the ribbons are not pickable: found on the ladder's plane)."""
        ribbons = self._ribbons
        pointer = self.ex.pointer_for(self.session)
        if ribbons is None or self.ribbon_mode == "off" or pointer is None:
            return
        origin, direction = self.session.engine.camera.ray(*pointer)
        index = ribbons.hovered(np.asarray(origin, np.float64), np.asarray(direction, np.float64))
        if index is not None:
            imgui.set_tooltip(ribbons.describe(index))

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()


def heads_mode(ex, session) -> HeadsMode | None:
    """The heads view of a scene whose live model has attention to show (live.ATTENTION_MODEL_IDS)."""
    from llmviz.scenes.live import ATTENTION_MODEL_IDS   # not attention_live: it brings torch, which a scene
                                                         # without one of these models must not wait for
    from llmviz.scenes.attention_stacks import STACK_KINDS

    live, model = session.scene.live, session.model
    if live is None or model is None:
        return None
    kind = getattr(live, "kind", None)
    if kind in STACK_KINDS:
        return HeadsMode(ex, session, model.spec.id, kind)
    if model.spec.id not in ATTENTION_MODEL_IDS:
        return None
    return HeadsMode(ex, session, model.spec.id)
