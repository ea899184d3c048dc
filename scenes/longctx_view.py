"""The long-context view, scene `longctx:N`: one head of induction-2l's attention over all N tokens (up to
131,072 and beyond) as a flat matrix the camera pans and zooms over, from the whole N x N down to single
cells with their exact values and the tokens as text; with how long-context models make attention
affordable drawn on the same run.

- The overview is the pyramid's base level (models/sim/long_attention.py: at most 512 x 512 cells, each
  the largest probability of its cell, log-scaled): the first-token sink is the bright left column, the
  local band the diagonal, the induction jumps the bright points off it (each copied span attends to the
  token after its earlier occurrence).
- Between the two (fewer than MID_BASE_CELLS of the base level's cells across the view, a few large squares
  at 131,072 tokens), the pass's fine mass grid (cells of 32 tokens there) cut to the view and pooled to at
  most MID_TEXELS a side: the same statistic as the overview, finer.
- Zoomed in (the view spans at most DETAIL_SPAN tokens), a worker recomputes the visible block exactly
  (LongPass.block; coarser than one texel per token only as the exact values' max) and the frame uploads
  it over the overview; at most LABEL_SPAN tokens across, the keys' and queries' tokens appear as text.
- Overlays, from this run: Mistral's 4,096-token sliding window (the band a query would still see), the
  A-shape (sink columns + local window) and vertical-slash pattern (the columns and diagonals holding the
  most mass here) that MInference keeps, the FlashAttention tiles the pass computed one at a time, and a
  caption with what grouped-query and latent (MLA) KV sharing save (models/cache.py).

The long pass runs on the worker (minutes at 131,072 tokens, once: it is kept in the user's cache folder,
written atomically, and reopened); nothing here blocks the frame.
"""
from __future__ import annotations

import hashlib
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from llmviz.engine.bench import BenchPath
from llmviz.engine.camera import Camera
from llmviz.engine.ecs.world import World
from llmviz.engine.render.backend import MATERIAL_TRANSLUCENT
from llmviz.engine.render.colormaps import COLORMAP_MAGMA
from llmviz.scenes.entity_hiding import set_hidden

UNIT_TOKENS = 32          # tokens per world unit: 131,072 tokens span 4,096 units
DETAIL_TEXELS = 256       # the exact block's texture side
DETAIL_SPAN = 1024        # the view spans at most this many tokens: recompute exactly (~20 ms a block)
LABEL_SPAN = 64           # ... at most this many: tokens as text
MID_TEXELS = 512          # the fine grid's window: at most this many cells a side
MID_BASE_CELLS = 300      # fewer of the overview's cells across the view than this: the fine grid is drawn
MID_MIN_CELLS = 16        # the fine grid's window is at least this many fine cells a side
MID_MARGIN = 3.0          # the fine grid's window is at least this many views wide
FINE_POOLINGS = 3         # 2 x 2 sums of the fine grid kept: a window spans at most its FINE_GRID cells, 8 x 8 of them
                          # to a texel bring it to MID_TEXELS
# Colours: log10 (p x (q + 1)), a probability against the uniform share 1/(q + 1) of its row, so that row
# 100,000 and row 100 read alike: 0 is uniform attention, 5 is 10^5 times it (all of row 100,000 on one key).
COLOUR_RANGE = (-1.0, 4.5)
MISTRAL_WINDOW = 4096
SINK_TOKENS = 64          # A-shape: the first tokens kept (StreamingLLM / MInference's "sink")
SLASHES, VERTICALS = 4, 4
BAND_SEGMENTS = 64        # a diagonal band drawn as a staircase of boxes
MIN_LENGTH, MAX_LENGTH = 256, 1 << 20
OVERLAY_Z = 0.04
# Zoomed in past a quarter of the matrix, a scheme's translucent fill would cover most of the view (each such
# layer costs a software rasteriser a whole frame's blending): there each region is drawn by its outline only,
# opaque lines LINE_PX wide, the same regions.
FILL_MIN_SPAN = 0.25
LINE_PX = 2.0
FLAT_LOD = (1e12, 1e-6, 0.0, 0.0)   # LOD thresholds that always pick LOD 1: flat colour, no cell lookup
CAPTION_CHARS = 110
TOKEN_TEXT_CELLS = 0.3     # a token's text height, in cells
# Heights above the plane, kept small: zoomed to a few tokens the camera is under a world unit away, and a
# label lifted far above the cells it names would slide off them in perspective.
DETAIL_Z, MID_Z, TEXT_Z = 0.004, 0.002, 0.01
OVERVIEW_Z = 0.002        # the overview's thickness, under the plane
ORBIT_MIN_DISTANCE = 0.2  # world units: the wheel zooms in until about 7 tokens fill the view's height


def cache_path(length: int, seed: int, head: int | None, weights_digest: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "llmviz" / "longctx"
    return base / f"induction-2l-{length}-s{seed}-h{'auto' if head is None else head}-{weights_digest}.npz"


def _compute_pass(length: int, seed: int, progress) -> tuple[object, int]:
    """(LongPass, head) for the induction model over the held-out sequence: from the cache, or computed and
    then cached. Runs on the worker."""
    from llmviz.models.sim import induction_task, long_attention
    from llmviz.models.sim.induction_model import load_weights, shipped_weights_path

    digest = hashlib.sha256(shipped_weights_path().read_bytes()).hexdigest()[:12]
    weights = long_attention.ModelWeights.from_model(load_weights())
    path = cache_path(length, seed, None, digest)
    key = path.name
    cached = long_attention.load_pass(path, weights.cfg, key)
    if cached is not None and len(cached.levels) == 1:
        return cached, next(iter(cached.levels))
    tokens, _ = induction_task.long_sequence(length, seed)
    head = int(np.argmax(long_attention.induction_scores(weights, tokens[:1024])))
    result = long_attention.run(weights, tokens, heads=[head], progress=progress)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        long_attention.save_pass(result, path, key)
    except OSError as err:  # the view still has its pass; only the next opening will compute it again
        print(f"llmviz: long-context cache not written to {path}: {err.strerror or err}; the next opening "
              "recomputes the pass", file=sys.stderr)
    return result, head


TRAINED_LENGTH = 256      # induction-2l's training sequences (models/sim/train_induction.py)


def accuracy_caption(long_pass, seed: int) -> str:
    """Where the model's claim to length holds and where it degrades, from this run: the recurring-span
    accuracy of the positions in each stretch of the sequence (the predictable ones: a copy's next token)."""
    from llmviz.models.sim import induction_task

    _, predictable = induction_task.long_sequence(long_pass.length, seed)
    tokens, predicted = long_pass.tokens, long_pass.predicted
    hit = predicted[:-1] == tokens[1:]
    edges = [e for e in (0, TRAINED_LENGTH, 4096, 32768) if e < long_pass.length] + [long_pass.length]
    parts = []
    for a, b in zip(edges[:-1], edges[1:]):
        scored = predictable[a:min(b, long_pass.length - 1)]
        if scored.any():
            parts.append(f"{a:,}-{b:,}: {100 * hit[a:b][scored].mean():.0f}%")
    return (f"honestly: trained on {TRAINED_LENGTH}-token sequences; no position is new to it at any length (RoPE "
            f"only inside layer 0's 8-token window, no positions in layer 1), yet its recurring-span accuracy "
            f"falls with position in this run ({', '.join(parts)}): the induction jumps stay visible, but the "
            f"softmax spreads over ever more keys")


def log_values(p: np.ndarray, masked: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """log10 (p x (row + 1)) for the colour map (COLOUR_RANGE); NaN (the empty colour) where no entry exists."""
    with np.errstate(divide="ignore"):
        out = np.log10(np.maximum(p, 1e-30) * (np.asarray(rows, np.float64).reshape(-1, 1) + 1)).astype(np.float32)
    out[masked] = np.nan
    return out


def exact_region(long_pass, head: int, q0: int, q1: int, k0: int, k1: int, texels: int = DETAIL_TEXELS):
    """(values, stride): the colour values (log_values) of a block's exact probabilities, as at most texels x
    texels cells; a cell coarser than one entry holds the largest exact value inside it. Above the diagonal: NaN."""
    import torch
    import torch.nn.functional as F

    q1, k1 = min(q1, long_pass.length), min(k1, long_pass.length)
    stride = max(1, math.ceil(max(q1 - q0, k1 - k0) / texels))
    # ln (p x (q + 1)) in one product (LongPass.block_log_probs), the largest of each cell, then to log10: the
    # maximum commutes with the logarithm, so only the pooled cells are scaled (a 2,048² block at 131,072
    # tokens: ~4x faster than exp, log and numpy's nanmax over every entry)
    shift = torch.log(torch.arange(q0, q1, dtype=torch.float64) + 1.0).to(long_pass.queries.dtype)
    values = long_pass.block_log_probs(head, q0, q1, k0, k1, row_shift=shift)
    if stride > 1:
        values = F.max_pool2d(values[None, None], stride, ceil_mode=True)[0, 0]
    out = (values * (1.0 / math.log(10.0))).numpy()
    out[np.isneginf(out)] = np.nan    # above the diagonal: no entry
    return out, stride


def answer_view(state: dict, mid, detail) -> tuple:
    """The worker's answer to one camera request (LongContextLive; benchmarks/longctx_zoom.py times it): (the fine
    grid's window, or None; (region, values, stride, the probabilities where a texel is one entry) of the exact
    block, or None). `state` holds the pass, the head's fine_pyramid and the last window (kept while panning
    inside it)."""
    long_pass, head = state["pass"]
    if mid is not None and state.get("mid", (None,))[0] != mid:
        state["mid"] = (mid, *mid_region(long_pass, head, *mid, levels=state["fine"]))
    exact = None
    if detail is not None:
        values, stride = exact_region(long_pass, head, *detail)
        # one entry per texel (at most 256², cheap): the probabilities themselves, for the hover's exact value
        exact = (detail, values, stride, long_pass.block(head, *detail) if stride == 1 else None)
    return (state["mid"] if mid is not None else None), exact


def fine_pyramid(grid: np.ndarray, levels: int = FINE_POOLINGS) -> list[np.ndarray]:
    """The fine mass grid and its 2 x 2 sums, `levels` times (made once per pass on the worker: a window of
    the view is then a slice, not a pooling of up to 4,096^2 cells per camera move)."""
    out = [grid]
    for _ in range(levels):
        g = out[-1]
        if g.shape[0] < 2:
            break
        g = np.pad(g, ((0, g.shape[0] % 2), (0, g.shape[1] % 2)))
        out.append(g.reshape(g.shape[0] // 2, 2, g.shape[1] // 2, 2).sum((1, 3), dtype=np.float32))
    return out


def mid_region(long_pass, head: int, q0: int, q1: int, k0: int, k1: int, texels: int = MID_TEXELS, levels=None):
    """(values, cell): the fine mass grid over a region whose origin lies on its cells, summed into cells of
    `cell` tokens (a power-of-two multiple of the fine cell) so that at most `texels` fit a side; the colour
    value of each cell's mean probability, as the overview's (log10 of mean x (q + 1), q its middle row).
    `levels`: fine_pyramid of the head's grid, when the caller keeps it."""
    fine = long_pass.fine_cell
    levels = levels or fine_pyramid(long_pass.fine_mass[head])
    n = 0
    while math.ceil(max(q1 - q0, k1 - k0) / (fine << n)) > texels:
        n += 1
    if n >= len(levels):
        raise ValueError(f"a window of {max(q1 - q0, k1 - k0):,} tokens needs more than {texels} cells a side")
    cell = fine << n
    rows, cols = math.ceil((q1 - q0) / cell), math.ceil((k1 - k0) / cell)
    part = levels[n][q0 // cell:q0 // cell + rows, k0 // cell:k0 // cell + cols]
    mass = np.zeros((rows, cols), np.float32)   # past the grid's end: no entries
    mass[:part.shape[0], :part.shape[1]] = part
    return log_values(mass / float(cell * cell), mass <= 0, q0 + (np.arange(rows) + 0.5) * cell), cell


def _staircase(length: int, width_of, segments: int = BAND_SEGMENTS):
    """Boxes (x0, x1, y0, y1 in tokens) covering a band below the diagonal: for each slab of queries
    [a, b), the keys from a - width_of(a) to b."""
    edges = np.linspace(0, length, segments + 1).astype(np.int64)
    return [(max(0, a - width_of(a)), b, a, b) for a, b in zip(edges[:-1], edges[1:])]


def outline_segments(boxes) -> np.ndarray:
    """(n, 4) segments x0, x1, y0, y1 (x0 == x1: vertical, y0 == y1: horizontal) outlining the union of each
    run of boxes stacked one under the next (a staircase band: its two stepped sides, no rungs inside) and
    every other box's four sides."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not len(b):
        return np.zeros((0, 4))
    # a box continues the run above it when it starts where that one ends and their keys overlap
    joined = np.r_[False, (b[1:, 2] == b[:-1, 3]) & (b[1:, 0] < b[:-1, 1]) & (b[:-1, 0] < b[1:, 1])]
    first, last = ~joined, ~np.r_[joined[1:], False]
    sides = [np.c_[b[:, 0], b[:, 0], b[:, 2], b[:, 3]], np.c_[b[:, 1], b[:, 1], b[:, 2], b[:, 3]],  # left, right
             np.c_[b[first, 0], b[first, 1], b[first, 2], b[first, 2]],                            # run tops
             np.c_[b[last, 0], b[last, 1], b[last, 3], b[last, 3]]]                                # run bottoms
    step = np.flatnonzero(joined)             # where box k meets box k - 1: the steps of both sides
    for column in (0, 1):
        lo = np.minimum(b[step - 1, column], b[step, column])
        hi = np.maximum(b[step - 1, column], b[step, column])
        sides.append(np.c_[lo, hi, b[step, 2], b[step, 2]])
    out = np.concatenate(sides)
    return out[(out[:, 1] > out[:, 0]) | (out[:, 3] > out[:, 2])]


def _overlay_boxes(long_pass, head: int) -> list[tuple[str, tuple[float, float, float, float], list]]:
    """(caption, colour, boxes in tokens) per affordable-attention scheme, from this run."""
    from llmviz.models.sim.long_attention import TILE

    length = long_pass.length
    base = long_pass.levels[head][0]
    cell, grid = base.cell, base.max.shape[0]
    total = float(base.mass.sum())
    schemes = []
    if length > MISTRAL_WINDOW:
        band = _staircase(length, lambda a: MISTRAL_WINDOW)
        rows, cols = np.indices(base.mass.shape)
        inside = (rows - cols) * cell < MISTRAL_WINDOW
        share = float(base.mass[inside].sum()) / total
        schemes.append((f"sliding window {MISTRAL_WINDOW:,} (Mistral 7B): each query keeps its last "
                        f"{MISTRAL_WINDOW:,} keys; here they hold {100 * share:.0f}% of this head's attention",
                        (0.2, 0.8, 1.0, 0.16), band))
    sink_mass = float(base.mass[:, 0].sum()) / total
    local = _staircase(length, lambda a: 4 * cell)
    schemes.append((f"A-shape (StreamingLLM / MInference): the first {SINK_TOKENS} tokens (the sink: "
                    f"{100 * sink_mass:.0f}% of the attention in its first column of cells) and a local window",
                    (0.3, 1.0, 0.4, 0.22), [(0, SINK_TOKENS, 0, length)] + local))
    columns = np.argsort(-base.mass.sum(0), kind="stable")[:VERTICALS]
    diagonal_mass = np.array([np.trace(base.mass, -d) for d in range(grid)])
    slashes = np.argsort(-diagonal_mass, kind="stable")[:SLASHES]
    kept = base.mass[:, columns].sum() + diagonal_mass[slashes].sum()
    boxes = [(int(c) * cell, (int(c) + 1) * cell, int(c) * cell, length) for c in columns]
    for d in slashes.tolist():
        boxes += [(max(0, a - (d + 1) * cell), max(0, b - d * cell), a, b)
                  for _, _, a, b in _staircase(length, lambda a: 0) if b - d * cell > 0]
    schemes.append((f"vertical-slash (MInference): {VERTICALS} columns and {SLASHES} diagonals of cells, "
                    f"{100 * (len(columns) + len(slashes)) / grid:.1f}% of the cells' width, hold about "
                    f"{min(100.0, 100 * kept / total):.0f}% of the attention", (1.0, 0.85, 0.2, 0.25), boxes))
    tiles = math.ceil(length / TILE)
    schemes.append((f"FlashAttention-style tiles: {tiles * (tiles + 1) // 2:,} tiles of {TILE} x {TILE} on or "
                    f"below the diagonal, one at a time with an online softmax; a float32 {length:,}^2 matrix "
                    f"would be {4 * length * length / 1e9:.1f} GB per head", (1.0, 1.0, 1.0, 0.10),
                    [(t * TILE, min(length, t * TILE + max(1, TILE // 64)), t * TILE, length) for t in range(tiles)]))
    return schemes


def _kv_sharing_caption(length: int) -> str:
    """What grouped-query and latent attention save at this length, from the registry's specs."""
    from dataclasses import replace

    from llmviz.models.cache import CACHE_BYTES_PER_VALUE, kv_cache_values
    from llmviz.models.registry import load_registry

    registry = load_registry()
    llama, deepseek = registry.get("llama-3-8b").architecture, registry.get("deepseek-v3").architecture
    gqa = CACHE_BYTES_PER_VALUE * kv_cache_values(llama, length)
    mha = CACHE_BYTES_PER_VALUE * kv_cache_values(replace(llama, n_kv_heads=None), length)
    mla = CACHE_BYTES_PER_VALUE * kv_cache_values(deepseek, length)
    return (f"KV sharing at {length:,} tokens (bf16): Llama-3-8B's grouped-query cache ({llama.kv_heads} KV heads "
            f"for {llama.n_heads}) {gqa / 1e9:.1f} GB, {mha / 1e9:.1f} GB as full multi-head; DeepSeek-V3's "
            f"latent (MLA, {deepseek.mla.kv_lora_rank}+{deepseek.mla.qk_rope_head_dim} values per token and "
            f"layer) {mla / 1e9:.1f} GB for 61 layers")


def hover_text(view, lp, head_index: int, detail_p, entity: int, cell) -> str | None:
    """What the pointer is over, in words (the explorer's tooltip): at one entry per texel the exact
    probability and both tokens; coarser, the cell's span of queries and keys and its statistics (the
    overview's: max, mean, mass, entropy and the largest entries with their positions)."""
    from llmviz.models.sim.induction_model import vocabulary

    words = vocabulary()
    row, col = cell
    head = f"layer {lp.layer} head {head_index}"
    if entity == int(view.world.ids(view.world.slots(view.detail))[0]) and view.detail_region is not None:
        q0, _, k0, _ = view.detail_region
        stride = view.detail_stride
        q, k = q0 + row * stride, k0 + col * stride
        if stride == 1 and detail_p is not None:
            p = float(detail_p[row, col])
            if k > q:
                return f"query {q:,}, key {k:,}: above the diagonal (causal: a token never reads a later one)"
            return (f"query {q:,} {words[lp.tokens[q]]!r} reads key {k:,} {words[lp.tokens[k]]!r}\n"
                    f"p = {p:.6g}, exact: recomputed from the pass's queries, keys and row statistics\n"
                    f"{p * (q + 1):.3g} x uniform attention (1/{q + 1:,}); {head}")
        return (f"queries {q:,}-{q + stride - 1:,}, keys {k:,}-{k + stride - 1:,}: the largest exact entry of "
                f"these {stride} x {stride}; zoom in for each one's value; {head}")
    if entity == int(view.world.ids(view.world.slots(view.mid))[0]) and view.mid_region is not None:
        q0, _, k0, _ = view.mid_region
        side, fine = view.mid_cell, lp.fine_cell
        q, k = q0 + row * side, k0 + col * side
        mass = lp.fine_mass[head_index][q // fine:(q + side) // fine, k // fine:(k + side) // fine].sum()
        return (f"queries {q:,}-{q + side - 1:,}, keys {k:,}-{k + side - 1:,} ({side} x {side} entries)\n"
                f"attention mass {mass:.4g}, mean p {mass / side ** 2:.3g} (the pass's fine summaries); "
                f"zoom in for the exact entries; {head}")
    if entity == int(view.world.ids(view.world.slots(view.overview))[0]):
        base = lp.levels[head_index][0]
        if row >= base.max.shape[0] or col >= base.max.shape[1]:
            return None
        side = base.cell
        q, k = row * side, col * side
        top = [f"({int(tq):,}, {int(tk):,}) {float(tp):.3g}" for tp, tq, tk in
               zip(base.top_p[row, col], base.top_q[row, col], base.top_k[row, col]) if tq >= 0]
        return (f"queries {q:,}-{q + side - 1:,}, keys {k:,}-{k + side - 1:,} ({side} x {side} entries)\n"
                f"max p {base.max[row, col]:.4g}, mean p {base.mean[row, col]:.3g}, mass {base.mass[row, col]:.4g}, "
                f"entropy {base.entropy[row, col]:.4g} nats\n"
                f"largest (query, key) p: {'; '.join(top) if top else 'none (above the diagonal)'}; {head}")
    return None


class LongContextLive:
    """The view's worker and uploads: the pass once, then the exact block under the camera when zoomed in."""

    def __init__(self, view: "LongContextView", renderer):
        from llmviz.models.sim.tick import SimulationRunner

        self.view, self.renderer = view, renderer
        self.error: str | None = None
        self.session = self           # what render's error line reads (scene.live.session.error)
        self.progress = ("starting", 0, 1)
        self.long_pass = None
        self.head = None
        self.values_version = 0
        self.detail_latency_s: list[float] = []   # request to upload, per exact block shown
        self.tick_seconds: list[float] = []       # worker time per exact block (what bench reports as ticks)
        self.detail_regions: list[tuple] = []     # the block each of them showed
        self.tokens_generated = 0                 # bench's field: nothing is generated here
        self._asked: tuple | None = None           # the exact region last requested
        self._mid_asked: tuple | None = None       # the fine grid's window last requested
        self._mid_shown: tuple | None = None
        self.detail_p = None                      # the shown exact block's probabilities, one per texel
        self._asked_at = 0.0
        self._shown: tuple | None = None
        self._pass_ticket = None
        self.runner = SimulationRunner(self._make_compute, coalesce=True, name="llmviz-longctx")
        self._pass_ticket = self.runner.submit(("pass",))

    def _make_compute(self):
        state = {}

        def compute(request):
            if request[0] == "pass":
                state["pass"] = _compute_pass(self.view.length, self.view.seed,
                                              lambda stage, d, t: setattr(self, "progress", (stage, d, t)))
                long_pass, head = state["pass"]
                state["fine"] = fine_pyramid(long_pass.fine_mass[head])   # once: every window is then a slice
                return ("pass", *state["pass"], accuracy_caption(state["pass"][0], self.view.seed))
            _, mid, detail = request
            return ("view", *answer_view(state, mid, detail))
        return compute

    def update(self, dt: float) -> bool:
        changed = False
        for result in self.runner.poll():
            if result.error:
                self.error = result.error
                continue
            kind = result.value[0]
            if kind == "pass":
                _, self.long_pass, self.head, self.view.accuracy = result.value
                self.view.show_overview(self.renderer, self.long_pass, self.head)
                changed = True
            elif kind == "view":
                _, mid, exact = result.value
                if mid is not None and mid[0] == self._mid_asked and mid[0] != self._mid_shown:
                    self.view.show_mid(self.renderer, *mid)
                    self._mid_shown = mid[0]
                    changed = True
                if exact is not None and exact[0] == self._asked and exact[0] != self._shown:
                    self.view.show_detail(self.renderer, exact[0], exact[1], self.long_pass)
                    self.detail_p = exact[3]
                    self._shown = exact[0]
                    self.detail_latency_s.append(time.perf_counter() - self._asked_at)
                    self.tick_seconds.append(result.seconds)
                    self.detail_regions.append(exact[0])
                    changed = True
        if self.long_pass is None and self.progress[0] != "starting":
            self.view.show_progress(*self.progress)
        if self.long_pass is not None:
            length = self.long_pass.length
            wanted = self.view.wanted_region(length)
            mid = self.view.wanted_mid(length, self.long_pass.levels[self.head][0].cell, self.long_pass.fine_cell)
            if wanted is None and self._shown is not None:
                self.view.hide_detail()
                self._shown = self._asked = self.detail_p = None
                changed = True
            if mid is None and self._mid_shown is not None:
                self.view.hide_mid()
                self._mid_shown = self._mid_asked = None
                changed = True
            if (wanted is not None and wanted != self._asked) or (mid is not None and mid != self._mid_asked):
                if wanted != self._asked:
                    self._asked_at = time.perf_counter()
                self._asked, self._mid_asked = wanted, mid
                # the fine grid's window moved under a block already shown: only the window is asked for (the
                # exact block again would cost the worker a block's time and count as a second zoom)
                self.runner.submit(("view", mid, wanted if wanted != self._shown else None))
            self.view.stack_layers()
        if changed:
            self.values_version += 1
        return changed

    def stats_json(self) -> dict:
        """What `--stats-json` adds for this scene: from the frame that asked for an exact block to the frame that
        uploaded it, over every block shown (the issue's "exact values within 200 ms")."""
        ms = np.asarray(self.detail_latency_s, np.float64) * 1e3
        if not len(ms):
            return {"exact_blocks_shown": 0}
        return {"exact_blocks_shown": int(len(ms)), "zoom_to_exact_ms_median": float(np.median(ms)),
                "zoom_to_exact_ms_max": float(ms.max()),
                "worker_ms_median": float(np.median(self.tick_seconds)) * 1e3 if self.tick_seconds else None,
                "slowest": [{"ms": float(ms[i]), "worker_ms": 1e3 * float(self.tick_seconds[i]),
                             "region": list(self.detail_regions[i])} for i in np.argsort(-ms)[:3]]}

    def describe_hit(self, hit) -> str | None:
        """The explorer's tooltip for the matrix under the pointer (hover_text)."""
        if self.long_pass is None or hit.cell is None:
            return None
        return hover_text(self.view, self.long_pass, self.head, self.detail_p, hit.entity, hit.cell)

    def wait(self, timeout: float = 30.0) -> bool:
        """Headless: block until the pass is shown (however long it takes, with progress on stderr), then
        up to `timeout` for the fine grid and the exact block the camera asks for."""
        from llmviz.scenes.cli.common import Progress

        bars: dict = {}
        while self.long_pass is None and self.error is None:
            result = self.runner.wait(0.5)
            if result is not None:
                self.runner._results.put(result)   # noqa: SLF001 - handed back to update()
            stage, done, total = self.progress
            if stage != "starting":
                bars.setdefault(stage, Progress(f"longctx:{self.view.length} {stage}"))(done, total)
            self.update(0.0)
        if self.error is not None:
            return False
        deadline = time.perf_counter() + timeout
        self.update(0.0)
        while ((self._asked is not None and self._shown != self._asked)
               or (self._mid_asked is not None and self._mid_shown != self._mid_asked)) and time.perf_counter() < deadline:
            time.sleep(0.01)
            self.update(0.0)
        return True

    def close(self) -> None:
        self.runner.close()


class LongContextView:
    """The world of the view: the overview box, the exact detail box, overlays, token labels."""

    def __init__(self, length: int, seed: int, renderer):
        self.length, self.seed = length, seed
        self.side = length / UNIT_TOKENS
        self.world = World(capacity=4096)
        self.camera: Camera | None = None      # the engine's camera, read each frame for the region
        s = self.side
        # everything lies on the plane z = 0, what is not shown hidden there (never parked below it): the
        # orbit's pivot is the middle of the world's extent, and the wheel zooms onto the matrix, not under it
        self.overview = self.world.spawn(1, transform={"position": [[s / 2, -s / 2, -OVERVIEW_Z / 2]],
                                                       "scale": [[s, s, OVERVIEW_Z]]},
                                         bounds={}, renderable={"color": [[0.16, 0.16, 0.19, 1.0]],
                                                                "material": MATERIAL_TRANSLUCENT}, pickable={})
        self.detail = self.world.spawn(1, transform={"position": [[s / 2, -s / 2, DETAIL_Z / 2]], "scale": [[1, 1, DETAIL_Z]]},
                                       bounds={}, renderable={"color": [[1, 1, 1, 1.0]], "material": MATERIAL_TRANSLUCENT},
                                       pickable={})
        self.mid = self.world.spawn(1, transform={"position": [[s / 2, -s / 2, MID_Z / 2]], "scale": [[1, 1, MID_Z]]},
                                    bounds={}, renderable={"color": [[1, 1, 1, 1.0]], "material": MATERIAL_TRANSLUCENT},
                                    pickable={})
        self.mid_region = self.detail_region = None   # (q0, q1, k0, k1) of what each shows
        self.mid_cell = self.detail_stride = 1
        self._layers_hidden = (False, True, True)     # overview, fine grid, exact block (stack_layers)
        for ids in (self.mid, self.detail):
            self._hide(ids, True)
        # translucent (opaque in colour): the label layout keeps text off opaque boxes, and the tokens'
        # text belongs over the cells
        self.renderer = renderer
        self._detail_xy = self._mid_xy = None
        if renderer is not None:
            from llmviz.models.sim.long_attention import BASE_GRID

            self._overview_xy = renderer.alloc_data(BASE_GRID, BASE_GRID)
            self._detail_xy = renderer.alloc_data(DETAIL_TEXELS, DETAIL_TEXELS)
            self._mid_xy = renderer.alloc_data(MID_TEXELS, MID_TEXELS)
        self.key_labels = self.row_labels = None
        self.caption_ids = None
        self.overlays: list = []   # (ids, outlined) per scheme: its translucent fills, shown zoomed out
        self.lines = None          # their outlines (opaque, LINE_PX wide), shown until the exact block covers the view
        self._line_vertical = None
        self._line_width = None    # the outlines' width in world units, as last set
        self._zoomed_in = False    # the exact block covers the view: overview and overlays stand aside
        self._fills_shown = True
        self.accuracy = ""         # where the model's length claim degrades, from the run (accuracy_caption)
        # while the worker computes the pass (minutes at 131,072 tokens, once), its progress over the matrix
        self.progress_label = self._label_holders(np.array([[s / 2, -s / 2, 0.1]]))
        self.world.add_labels(self.progress_label, [f"computing the attention over {length:,} tokens on a worker..."],
                              height=s * 0.025, min_px=4.0, offset=np.zeros((1, 3)))
        self._progress_text = ""

    def show_progress(self, stage: str, done: int, total: int) -> None:
        """The pass's progress as the label over the matrix (a new string only when the text changes)."""
        text = f"computing the attention over {self.length:,} tokens on a worker: {stage} {done}/{total}"
        if text != self._progress_text:
            self._progress_text = text
            self.world.labels.append(text)
            self.world.set("label", self.progress_label, text_index=[len(self.world.labels) - 1])

    # ---- what the camera sees ----
    def visible_tokens(self) -> tuple[float, float, float, float] | None:
        """(q0, q1, k0, k1) of the matrix under the camera: its viewport's corners on the plane z = 0."""
        cam = self.camera
        if cam is None:
            return None
        w, h = cam.viewport
        hits = []
        for px, py in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)):
            origin, direction = cam.ray(px, py)
            if direction[2] >= -1e-6:
                return None            # a corner looks above the horizon: the view is not a zoom
            t = -origin[2] / direction[2]
            hits.append(origin + t * direction)
        hits = np.array(hits)
        k0, k1 = hits[:, 0].min() * UNIT_TOKENS, hits[:, 0].max() * UNIT_TOKENS
        q0, q1 = -hits[:, 1].max() * UNIT_TOKENS, -hits[:, 1].min() * UNIT_TOKENS
        return q0, q1, k0, k1

    def wanted_region(self, length: int) -> tuple[int, int, int, int] | None:
        """The block to recompute exactly, snapped so small camera moves reuse it; None when zoomed out."""
        seen = self.visible_tokens()
        if seen is None:
            return None
        q0, q1, k0, k1 = seen
        span = max(q1 - q0, k1 - k0)
        if span > DETAIL_SPAN or q1 < 0 or k1 < 0 or q0 > length or k0 > length:
            return None
        size = 1 << max(4, math.ceil(math.log2(max(span, 1) * 1.5)))   # a power of two, a margin around
        if size > DETAIL_TEXELS:   # coarser than an entry a texel: a whole number of them, no more than the margin
            size = DETAIL_TEXELS * math.ceil(span * 1.5 / DETAIL_TEXELS)   # needs (a 1,536² block, not 2,048²)
        step = max(1, size // 4)
        cq, ck = (q0 + q1) / 2, (k0 + k1) / 2
        a = int(np.clip(round((cq - size / 2) / step) * step, 0, max(0, length - size)))
        b = int(np.clip(round((ck - size / 2) / step) * step, 0, max(0, length - size)))
        return a, min(length, a + size), b, min(length, b + size)

    def wanted_mid(self, length: int, base_cell: int, fine: int) -> tuple[int, int, int, int] | None:
        """The fine grid's window to draw (a square a power of two wide, on its cells' grid, snapped to a
        quarter of its side so that small camera moves reuse it); None while the overview's own cells are
        fine enough (MID_BASE_CELLS across) or the view is not over the matrix."""
        seen = self.visible_tokens()
        if seen is None:
            return None
        q0, q1, k0, k1 = seen
        span = max(q1 - q0, k1 - k0)
        if span / base_cell >= MID_BASE_CELLS or q1 < 0 or k1 < 0 or q0 > length or k0 > length:
            return None
        # a margin of a view or more each side: panning on, the shown window still covers the view while the
        # next one is on the worker (one that does not keeps the overview drawn under it: two layers' fill)
        size = 1 << max(math.ceil(math.log2(max(span, 1) * MID_MARGIN)), int(math.log2(fine * MID_MIN_CELLS)))
        step = size // 4
        top = max(0, -(-length // step) * step - size)
        cq, ck = (q0 + q1) / 2, (k0 + k1) / 2
        a = int(np.clip(round((cq - size / 2) / step) * step, 0, top))
        b = int(np.clip(round((ck - size / 2) / step) * step, 0, top))
        return a, a + size, b, b + size

    def stack_layers(self) -> None:
        """Per frame: the overview, the fine grid and the exact block, each drawn only where it is shown and
        the layer above it does not cover the whole view (each full-screen layer costs a software rasteriser
        a frame's fill); one that covers only part of the view (the camera moved on, its successor is on
        the worker) keeps the coarser one under it."""
        seen = self.visible_tokens()
        detail = mid = False
        if seen is not None:
            q0, q1, k0, k1 = max(0.0, seen[0]), min(self.length, seen[1]), max(0.0, seen[2]), min(self.length, seen[3])

            def covers(region):
                return region is not None and region[0] <= q0 and q1 <= region[1] and region[2] <= k0 and k1 <= region[3]
            detail, mid = covers(self.detail_region), covers(self.mid_region)
        hidden = (detail or mid, self.mid_region is None or detail, self.detail_region is None)
        if hidden != self._layers_hidden:
            self._layers_hidden = hidden
            for ids, off in zip((self.overview, self.mid, self.detail), hidden):
                self._hide(ids, off)

    # ---- uploads (frame thread) ----
    def show_overview(self, renderer, long_pass, head: int) -> None:
        self._hide(self.progress_label, True)   # at z = -1000 it was still in view, its label drawn
        base = long_pass.levels[head][0]
        grid = base.max.shape[0]
        # a cell's mass against what uniform attention would give it (cell rows x cell keys / (q + 1)): at
        # 256 x 256 entries a cell almost always holds one strong entry, so its largest says little
        values = log_values(base.mass / float(base.cell * base.cell), base.mass <= 0,
                            (np.arange(grid) + 0.5) * base.cell)
        if renderer is not None:
            x, y = self._overview_xy
            renderer.write_data(x, y, values)
            self.world.add("datatex", self.overview, region=[[x, y, grid, grid]], value_range=COLOUR_RANGE,
                           colormap=COLORMAP_MAGMA)
        covered = grid * base.cell / UNIT_TOKENS       # the grid may overhang the last token
        self.world.set("transform", self.overview, position=[[covered / 2, -covered / 2, -OVERVIEW_Z / 2]],
                       scale=[[covered, covered, OVERVIEW_Z]])
        self._add_overlays(long_pass, head)
        self._add_token_labels()

    def _lay_block(self, renderer, ids, xy, region, values, cell: int, thickness: float) -> None:
        """A block of colour values over `region`, each value `cell` tokens a side, uploaded at `xy`."""
        q0, _, k0, _ = region
        rows, cols = values.shape
        if renderer is not None:
            renderer.write_data(*xy, values)
            self.world.add("datatex", ids, region=[[*xy, cols, rows]], value_range=COLOUR_RANGE, colormap=COLORMAP_MAGMA)
        w, h = cols * cell / UNIT_TOKENS, rows * cell / UNIT_TOKENS
        x0, y0 = k0 / UNIT_TOKENS, -q0 / UNIT_TOKENS
        self.world.set("transform", ids, position=[[x0 + w / 2, y0 - h / 2, thickness / 2]], scale=[[w, h, thickness]])

    def show_detail(self, renderer, region, values, long_pass) -> None:
        q0, q1, k0, k1 = region
        stride = max(1, math.ceil(max(q1 - q0, k1 - k0) / DETAIL_TEXELS))
        self._lay_block(renderer, self.detail, self._detail_xy, region, values, stride, DETAIL_Z)
        self.detail_region, self.detail_stride = region, stride
        self._show_tokens(long_pass, region, stride)
        self._show_overlays(False)

    def hide_detail(self) -> None:
        self.detail_region = None
        self._hide_tokens()
        self._show_overlays(True)

    def show_mid(self, renderer, region, values, cell: int) -> None:
        self._lay_block(renderer, self.mid, self._mid_xy, region, values, cell, MID_Z)
        self.mid_region, self.mid_cell = region, cell

    def hide_mid(self) -> None:
        self.mid_region = None

    def _show_overlays(self, shown: bool) -> None:
        """Zoomed in, the schemes' overlays step aside (hidden, not drawn beneath): the exact block covers the
        view with a margin. The overview and the fine grid step aside per frame (stack_layers)."""
        self._zoomed_in = not shown
        self.follow_camera(force=True)

    def _hide(self, ids, hidden: bool) -> None:
        set_hidden(self.world, ids, hidden)

    def follow_camera(self, force: bool = False) -> None:
        """Per frame: the schemes' fills only while a quarter of the matrix or more is in view, their outlines
        LINE_PX wide at the camera's scale (one vectorised write when the scale changed by 5%)."""
        seen = self.visible_tokens() if self.camera is not None else None
        span = self.length if seen is None else max(seen[1] - seen[0], seen[3] - seen[2])
        fills = not self._zoomed_in and span >= FILL_MIN_SPAN * self.length
        if fills != self._fills_shown or force:
            self._fills_shown = fills
            for ids, outlined in self.overlays:
                self._hide(ids, self._zoomed_in or (outlined and not fills))
            if self.lines is not None:
                self._hide(self.lines, self._zoomed_in or fills)
        if self.lines is None or self.camera is None:
            return
        w, h = self.camera.viewport
        width = max(LINE_PX * span / UNIT_TOKENS / max(min(w, h), 1), 1e-4)
        if force or self._line_width is None or abs(width / self._line_width - 1.0) > 0.05:
            self._line_width = width
            scale = self._line_base.copy()
            scale[self._line_vertical, 0] = width
            scale[~self._line_vertical, 1] = width
            self.world.set("transform", self.lines, scale=scale)

    # ---- overlays and captions ----
    def _add_overlays(self, long_pass, head: int) -> None:
        schemes = _overlay_boxes(long_pass, head)
        s = self.side
        captions, segments, line_rgba, line_z = [], [], [], []
        for n, (caption, rgba, boxes) in enumerate(schemes):
            b = np.array(boxes, np.float64) / UNIT_TOKENS
            centres = np.c_[(b[:, 0] + b[:, 1]) / 2, -(b[:, 2] + b[:, 3]) / 2, np.full(len(b), OVERLAY_Z + 0.004 * n)]
            scales = np.c_[np.maximum(b[:, 1] - b[:, 0], 1e-3), np.maximum(b[:, 3] - b[:, 2], 1e-3),
                           np.full(len(b), 0.002)]
            ids = self.world.spawn(len(b), transform={"position": centres, "scale": scales}, bounds={},
                                   renderable={"color": np.tile(rgba, (len(b), 1)), "material": MATERIAL_TRANSLUCENT})
            # the tiles are strips already (a line each when zoomed out): kept as they are
            outlined = not caption.startswith("FlashAttention")
            self.overlays.append((ids, outlined))
            segments.append(outline_segments(boxes if outlined else []))
            line_rgba.append(np.tile((*rgba[:3], 1.0), (len(segments[-1]), 1)))
            line_z.append(np.full(len(segments[-1]), OVERLAY_Z + 0.02 + 0.004 * n))
            captions.append((caption, rgba))
        self._add_lines(np.concatenate(segments) / UNIT_TOKENS, np.concatenate(line_rgba), np.concatenate(line_z))
        captions.append((_kv_sharing_caption(long_pass.length), (0.85, 0.85, 0.95, 1.0)))
        if self.accuracy:
            captions.append((self.accuracy, (1.0, 0.6, 0.45, 1.0)))
        captions.insert(0, (f"induction-2l, layer {long_pass.layer} head {head}: attention over all "
                            f"{long_pass.length:,} tokens; colour: log10 of p x (q + 1) against uniform attention "
                            f"(0 = uniform), each cell's mean here, each entry's own when zoomed in; "
                            f"sink = left column, local band = diagonal, induction jumps = points off it", (1, 1, 1, 1)))
        # below the matrix, centred, one line each (a label wider than the view is not drawn)
        lines = [(part, rgba) for caption, rgba in captions for part in wrap_words(caption, CAPTION_CHARS)]
        n = len(lines)
        anchors = self._label_holders(np.c_[np.full(n, s / 2), -s * (1.04 + 0.04 * np.arange(n)), np.zeros(n)])
        captions = lines
        self.world.add_labels(anchors, [c for c, _ in captions], height=s * 0.015,
                              color=np.array([(r, g, b, 1.0) for _, (r, g, b, _) in captions]), min_px=4.0,
                              offset=np.zeros((n, 3)))
        self.caption_ids = anchors

    def _add_lines(self, seg: np.ndarray, rgba: np.ndarray, z: np.ndarray) -> None:
        """The outlines: opaque boxes of flat colour (LOD 1 always: no cell lookup per pixel), their
        width set per frame by follow_camera."""
        n = len(seg)
        self._line_vertical = seg[:, 0] == seg[:, 1]
        self._line_base = np.c_[seg[:, 1] - seg[:, 0], seg[:, 3] - seg[:, 2], np.full(n, 0.002)]
        centres = np.c_[(seg[:, 0] + seg[:, 1]) / 2, -(seg[:, 2] + seg[:, 3]) / 2, z]
        self.lines = self.world.spawn(n, transform={"position": centres, "scale": self._line_base.copy()}, bounds={},
                                      renderable={"color": rgba})
        self.world.add("lod", self.lines, thresholds=np.tile(np.array(FLAT_LOD, np.float32), (n, 1)))
        self._line_width = None
        self.follow_camera(force=True)

    def _label_holders(self, positions: np.ndarray):
        """Entities that only carry a label: a speck of a box, invisible, so visibility lists them."""
        n = len(positions)
        return self.world.spawn(n, transform={"position": positions, "scale": np.full((n, 3), 1e-3)}, bounds={},
                                renderable={"color": np.zeros((n, 4)), "material": MATERIAL_TRANSLUCENT})

    # ---- tokens as text ----
    def _add_token_labels(self) -> None:
        from llmviz.models.sim.induction_model import vocabulary

        words = list(vocabulary())
        n = LABEL_SPAN * 2
        centre = [self.side / 2, -self.side / 2, TEXT_Z]
        self.key_labels = self._label_holders(np.tile(centre, (n, 1)))
        self.row_labels = self._label_holders(np.tile(centre, (n, 1)))
        for ids in (self.key_labels, self.row_labels):   # a word is about one cell wide
            self.world.add_labels(ids, [words[0]] * n, height=TOKEN_TEXT_CELLS / UNIT_TOKENS, min_px=6.0,
                                  offset=np.zeros((n, 3)), color=(0.75, 0.95, 1.0, 1.0))
            self._hide(ids, True)
        self._vocab_start = len(self.world.labels)
        self.world.labels.extend(words)   # one string per token id: a label's text is a lookup

    def _show_tokens(self, long_pass, region, stride: int) -> None:
        q0, q1, k0, k1 = region
        seen = self.visible_tokens()
        if self.key_labels is None or stride > 1 or seen is None or max(seen[1] - seen[0], seen[3] - seen[2]) > LABEL_SPAN:
            self._hide_tokens()
            return
        n = len(self.key_labels)
        vq0, vk0 = max(q0, int(seen[0])), max(k0, int(seen[2]))
        keys = np.arange(vk0, min(k1, vk0 + n))
        rows = np.arange(vq0, min(q1, vq0 + n))
        # inside the view, a little in from its top and left edges (the banner covers the very top)
        cell = 1.0 / UNIT_TOKENS
        span = seen[1] - seen[0]
        top = -(max(q0, seen[0]) + 0.2 * span) / UNIT_TOKENS
        left = (max(k0, seen[2]) + 1.5) / UNIT_TOKENS
        self._place(self.key_labels, keys, np.c_[(keys + 0.5) * cell, np.full(len(keys), top), np.full(len(keys), TEXT_Z)],
                    long_pass.tokens)
        self._place(self.row_labels, rows, np.c_[np.full(len(rows), left), -(rows + 0.5) * cell, np.full(len(rows), TEXT_Z)],
                    long_pass.tokens)

    def _place(self, ids, positions_tokens, xyz, tokens) -> None:
        n = len(ids)
        pos = np.tile([self.side / 2, -self.side / 2, TEXT_Z], (n, 1))
        pos[:len(xyz)] = xyz
        index = np.full(n, self._vocab_start, np.int32)
        index[:len(positions_tokens)] = self._vocab_start + tokens[positions_tokens]
        self.world.set("transform", ids, position=pos)
        self.world.set("label", ids, text_index=index)
        self._hide(ids, np.arange(n) >= len(xyz))

    def _hide_tokens(self) -> None:
        for ids in (self.key_labels, self.row_labels):
            if ids is not None:
                self._hide(ids, True)

    def follow(self, camera) -> None:
        """The frame's camera system: the region and the overlays follow the camera the engine draws with."""
        self.camera = camera
        self.follow_camera()

    # ---- cameras ----
    def camera_over(self, q: float, k: float, span_tokens: float, viewport) -> Camera:
        """Looking straight down at (query q, key k), `span_tokens` tall in view."""
        cam = Camera(viewport=viewport, near=0.01, far=max(100.0, self.side * 4))
        height = span_tokens / UNIT_TOKENS / (2 * math.tan(math.radians(cam.fov_y) / 2))
        cam.position = np.array([k / UNIT_TOKENS, -q / UNIT_TOKENS, height])
        cam.look_at([k / UNIT_TOKENS, -q / UNIT_TOKENS, 0.0], up=(0.0, 1.0, 0.0))
        return cam

    def overview_camera(self, viewport) -> Camera:
        # the matrix and, below it, the captions
        return self.camera_over(self.length * 0.84, self.length * 0.5, self.length * 2.1, viewport)

    def bench_pose(self, t: float, cam: Camera) -> None:
        """Pan along the diagonal while zooming from the whole matrix to ~64 tokens and back (bench --app)."""
        zoom = 0.5 - 0.5 * math.cos(2 * math.pi * t)                # 0 -> 1 -> 0
        span = self.length * 1.1 * (64 / (self.length * 1.1)) ** zoom
        q = self.length * (0.2 + 0.6 * t)
        k = q - span * 0.3
        pose = self.camera_over(q, k, span, cam.viewport)
        cam.position, cam.orientation, cam.near, cam.far = pose.position, pose.orientation, pose.near, pose.far


def wrap_words(text: str, width: int) -> list[str]:
    """Lines of at most `width` characters, broken at spaces."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = "  " + word
        else:
            line = f"{line} {word}" if line else word
    return lines + [line] if line else lines


def parse_length(text: str) -> int:
    digits = text.lstrip("0") or "0"
    length = int(digits) if len(digits) <= 8 else MAX_LENGTH + 1
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise ValueError(f"N must be between {MIN_LENGTH} and {MAX_LENGTH:,}")
    return length


def build_longctx_scene(name: str, length: int, renderer, data=None):
    """The BuiltScene of `longctx:N` (scenes/registry.py)."""
    from llmviz.models.sim.induction_task import HELD_OUT_SEED
    from llmviz.scenes.registry import BuiltScene

    # regions are reserved through the staging when the scene is built off the frame thread; the values
    # arrive later and go to the renderer itself, on the frame thread (as the live models' do)
    view = LongContextView(length, HELD_OUT_SEED, data or renderer)
    live = LongContextLive(view, renderer) if renderer is not None else None

    def start(viewport):
        cam = view.overview_camera(viewport)
        view.camera = cam
        return cam

    def pose(t, cam):
        view.bench_pose(t, cam)
        view.camera = cam

    built = BuiltScene(name, view.world, start, BenchPath(pose), view.world.slots(view.overview),
                       caption=f"long context: induction-2l over {length:,} tokens", camera_mode="orbit", live=live,
                       status="live: real trained weights; zoomed cells are exact recomputed values")
    built.longctx_view = view
    built.orbit_min_distance = ORBIT_MIN_DISTANCE
    original_attach = built.attach

    def attach(engine):
        original_attach(engine)
        view.camera = engine.camera   # the region follows the camera the engine draws with
        engine.schedule.add("simulation", "longctx_camera", lambda frame: view.follow(engine.camera))
    built.attach = attach
    return built
