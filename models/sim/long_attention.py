"""induction-2l's forward pass over very long sequences (131,072 tokens and more) with tiled attention, and
what an overview of one head's attention needs, kept in bounded memory: per-cell summaries at several
resolutions (a pyramid) and any block of the matrix recomputed exactly on demand.

The T x T matrix is never held (at 131,072 tokens it is 68.7 GB per head in float32). Each layer's
attention runs one tile of queries against one tile of keys at a time with an online softmax (FlashAttention's
running maximum and sum): layer 0 visits only the key tiles inside its sliding window, layer 1 every tile
on or below the diagonal. Memory is O(T * d_model): the residual stream, one layer's queries, keys and
values, and per row the softmax's maximum and sum.

The summarised layer takes a second pass for its summaries, since a probability needs its row's final
maximum and sum: p = exp(q.k * scale - m_row - log l_row). The matrix is cut into cells of `cell` x `cell`
entries (the base level; at most BASE_GRID cells a side); per cell: the largest probability, the mass (sum
of probabilities; mean = mass / cell^2, the entries above the diagonal counting as 0), the entropy
contribution -sum p ln p (a row's entropy is the sum over its cells), and the TOP_K largest entries with
their (query, key) positions. Coarser levels halve the grid: max of maxima, sums of mass and entropy, the
top-k of the children's top-k, so every level is exactly what the same statistic over its larger cells is.
Finer than the base level, one statistic only: each cell's mass at FINE_GRID cells a side (32 x 32 entries
at 131,072 tokens, 64 MB), what the view draws while it spans a few thousand tokens, where the base level's
256-token cells would be a few large squares and an exact recompute too slow to follow the camera.

`LongPass.block(head, q0, q1, k0, k1)` recomputes any block's probabilities from the stored queries, keys
and row statistics with the same arithmetic as the pass: exact, in O(block) memory. Torch on CPU, one
thread is enough; no transformers needed (the tests hold the logits and probabilities to transformers').
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from llmviz.models.sim.induction_model import TRAINING_LENGTH, InductionTinyConfig, checked_config
from llmviz.models.sim.induction_task import MAX_LENGTH

TILE = 1024            # queries and keys per tile of the attention passes
BASE_GRID = 512        # at most this many summary cells a side at the base level
MIN_CELL = 8
TOP_K = 4              # largest entries kept per cell
FINE_GRID = 4096       # at most this many fine (mass only) cells a side
FINE_MIN_CELL = 4
MAX_TOKENS = MAX_LENGTH   # 2,097,152: a bound on what a pass is asked to hold


@dataclass(frozen=True)
class LayerWeights:
    norm_in: torch.Tensor
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    o: torch.Tensor
    norm_mlp: torch.Tensor
    gate: torch.Tensor
    up: torch.Tensor
    down: torch.Tensor


@dataclass(frozen=True)
class ModelWeights:
    """induction-2l's tensors under plain names, read from a state dict with transformers' names."""
    cfg: InductionTinyConfig
    embed: torch.Tensor
    layers: tuple[LayerWeights, ...]
    norm_out: torch.Tensor

    @classmethod
    def from_state(cls, cfg, state: dict, dtype=torch.float32) -> "ModelWeights":
        def t(name):
            return state[name].detach().to(dtype).contiguous()
        layers = tuple(LayerWeights(
            t(f"model.layers.{i}.input_layernorm.weight"),
            *(t(f"model.layers.{i}.self_attn.{n}_proj.weight") for n in "qkvo"),
            t(f"model.layers.{i}.post_attention_layernorm.weight"),
            *(t(f"model.layers.{i}.mlp.{n}_proj.weight") for n in ("gate", "up", "down")))
            for i in range(cfg.n_layers))
        return cls(checked_config(cfg), t("model.embed_tokens.weight"), layers, t("model.norm.weight"))

    @classmethod
    def from_model(cls, model, dtype=torch.float32) -> "ModelWeights":
        """From a loaded weights file (induction_model.load_weights) or a transformers model; float64 for
        checks that want rounding out of the way."""
        cfg = getattr(model, "cfg", None)
        if cfg is None:
            from llmviz.models.sim.induction_model import our_config
            cfg = our_config(model)
        return cls.from_state(cfg, model.state_dict(), dtype)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    # as transformers' SmolLM3RMSNorm: normalised in float32 whatever the dtype, then cast back and weighted
    x32 = x.float()
    return weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def rotate(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """RoPE as transformers applies it (rotate_half: the first half of a head pairs with the second)."""
    half = x.shape[-1] // 2
    inv_freq = 1.0 / (theta ** (torch.arange(0, 2 * half, 2, dtype=torch.int64).float() / (2 * half)))
    angles = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat([angles, angles], dim=-1)
    cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)   # transformers: float32 angles, cast to the dtype
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def key_range(cfg: InductionTinyConfig, layer: int, q0: int, q1: int) -> tuple[int, int]:
    """The keys a query tile [q0, q1) can see: causal, and inside layer 0's window."""
    low = max(0, q0 - cfg.window + 1) if cfg.layer_types[layer] == "sliding_attention" else 0
    return low, q1


def visible(cfg: InductionTinyConfig, layer: int, q0: int, q1: int, k0: int, k1: int) -> torch.Tensor | None:
    """(q1-q0, k1-k0) bool mask of the allowed entries of a block, or None where all are allowed."""
    window = cfg.window if cfg.layer_types[layer] == "sliding_attention" else None
    if k1 - 1 <= q0 and (window is None or q1 - 1 - k0 < window):
        return None
    rows = torch.arange(q0, q1)[:, None]
    cols = torch.arange(k0, k1)[None, :]
    allowed = cols <= rows
    return allowed if window is None else allowed & (cols > rows - window)


def _tiles(start: int, stop: int, size: int):
    for a in range(start - start % size, stop, size):
        yield max(a, start), min(a + size, stop)


def tiled_attention(cfg, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, tile: int = TILE,
                    progress: Callable | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(output (H, T, hd), row max (H, T), row sum (H, T)) of causal softmax attention over (H, T, hd) q, k, v
    (scaled scores), one (query tile, key tile) at a time: an online softmax, never a T x T array."""
    heads, length, _ = q.shape
    out = torch.empty_like(q)
    row_max = torch.empty(heads, length, dtype=q.dtype)
    row_sum = torch.empty(heads, length, dtype=q.dtype)
    starts = list(_tiles(0, length, tile))
    for n, (q0, q1) in enumerate(starts):
        m = torch.full((heads, q1 - q0, 1), -math.inf, dtype=q.dtype)
        l = torch.zeros(heads, q1 - q0, 1, dtype=q.dtype)
        acc = torch.zeros(heads, q1 - q0, q.shape[-1], dtype=q.dtype)
        low, high = key_range(cfg, layer, q0, q1)
        for k0, k1 in _tiles(low, high, tile):
            s = scores(q[:, q0:q1], k[:, k0:k1], visible(cfg, layer, q0, q1, k0, k1))
            m_new = torch.maximum(m, s.amax(-1, keepdim=True))
            # a row with no visible key in this tile yet (the window's first tile) stays at -inf: subtract 0
            shift = torch.where(torch.isinf(m_new), 0.0, m_new)
            scale = torch.exp(m - shift)
            p = torch.exp(s - shift)
            l = l * scale + p.sum(-1, keepdim=True)
            acc = acc * scale + p @ v[:, k0:k1]
            m = m_new
        out[:, q0:q1] = acc / l
        row_max[:, q0:q1], row_sum[:, q0:q1] = m[..., 0], l[..., 0]
        if progress:
            progress(n + 1, len(starts))
    return out, row_max, row_sum


def scores(q: torch.Tensor, k: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
    """Scaled scores q.k / sqrt(hd) of a block, -inf where not allowed."""
    s = (q @ k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
    return s if allowed is None else s.masked_fill(~allowed, -math.inf)


def query_temperature_scale(length: int, temperature: float, floor: int = TRAINING_LENGTH) -> torch.Tensor:
    """Llama 4's attention temperature tuning for layers without RoPE (transformers' Llama4TextAttention,
    attn_temperature_tuning): position p's query times 1 + temperature * ln(1 + floor((p + 1) / floor)), so
    that a query far into the sequence is sharper, against the log T more keys its softmax spreads over.
    1 within the first `floor` positions (here the training length)."""
    positions = torch.arange(length, dtype=torch.float32)
    return torch.log1p(torch.floor((positions + 1.0) / floor)) * temperature + 1.0


def _qkv(w: ModelWeights, layer: int, h: torch.Tensor, temperature: float | None = None):
    cfg, lw = w.cfg, w.layers[layer]
    a = rms_norm(h, lw.norm_in, cfg.rms_eps)
    split = [(a @ m.T).view(len(h), cfg.n_heads, cfg.head_dim).transpose(0, 1).contiguous() for m in (lw.q, lw.k, lw.v)]
    if cfg.no_rope_layers[layer]:
        positions = torch.arange(len(h))
        split[0], split[1] = rotate(split[0], positions, cfg.rope_theta), rotate(split[1], positions, cfg.rope_theta)
    elif temperature:
        split[0] = split[0] * query_temperature_scale(len(h), temperature).to(split[0].dtype)[None, :, None]
    return split


def _mlp(lw: LayerWeights, x: torch.Tensor) -> torch.Tensor:
    return (torch.nn.functional.silu(x @ lw.gate.T) * (x @ lw.up.T)) @ lw.down.T


# ---- the summaries -----------------------------------------------------------------------------

def base_cell(length: int) -> int:
    """Entries per summary cell side: a power of two, at least MIN_CELL, at most BASE_GRID cells a side."""
    cell = MIN_CELL
    while math.ceil(length / cell) > BASE_GRID:
        cell *= 2
    return cell


def fine_cell(length: int) -> int:
    """Entries per fine cell side: a power of two, at least FINE_MIN_CELL, at most FINE_GRID cells a side
    (it divides base_cell: both are powers of two, and FINE_GRID >= BASE_GRID)."""
    cell = FINE_MIN_CELL
    while math.ceil(length / cell) > FINE_GRID:
        cell *= 2
    return cell


@dataclass
class Level:
    """One resolution of the pyramid: (G, G) arrays over cells of `cell` x `cell` entries."""
    cell: int
    max: np.ndarray          # largest probability in the cell
    mass: np.ndarray         # sum of probabilities
    entropy: np.ndarray      # -sum p ln p
    top_p: np.ndarray        # (G, G, TOP_K) largest probabilities, descending (0 where fewer entries)
    top_q: np.ndarray        # (G, G, TOP_K) their query positions (-1 where none)
    top_k: np.ndarray        # (G, G, TOP_K) their key positions

    @property
    def mean(self) -> np.ndarray:
        return self.mass / float(self.cell * self.cell)


def cell_summaries(p: torch.Tensor, q0: int, k0: int, cell: int):
    """Summaries of the cells of a (rows, cols) block of probabilities whose origin (q0, k0) and sides are
    multiples of `cell` (after padding with zeros): max, mass, entropy, and the top entries' p, q, k."""
    rows, cols = p.shape
    pad_r, pad_c = -rows % cell, -cols % cell
    if pad_r or pad_c:
        p = torch.nn.functional.pad(p, (0, pad_c, 0, pad_r))
    gr, gc = p.shape[0] // cell, p.shape[1] // cell
    blocks = p.view(gr, cell, gc, cell).permute(0, 2, 1, 3).reshape(gr, gc, cell * cell)
    plogp = torch.where(blocks > 0, blocks * torch.log(torch.where(blocks > 0, blocks, 1.0)), 0.0)
    top_p, flat = blocks.topk(min(TOP_K, cell * cell), dim=-1)
    base_q = q0 + torch.arange(gr)[:, None, None] * cell
    base_k = k0 + torch.arange(gc)[None, :, None] * cell
    top_q, top_k = base_q + flat // cell, base_k + flat % cell
    none = top_p <= 0
    return (blocks.amax(-1), blocks.sum(-1), -plogp.sum(-1), top_p,
            top_q.masked_fill(none, -1), top_k.masked_fill(none, -1))


def coarser(level: Level) -> Level:
    """The next level: cells twice as wide, each statistic over the four children."""
    g = level.max.shape[0]
    if g % 2:
        pad = ((0, 1), (0, 1))
        level = Level(level.cell, *(np.pad(a, pad + ((0, 0),) * (a.ndim - 2), constant_values=c) for a, c in (
            (level.max, 0), (level.mass, 0), (level.entropy, 0), (level.top_p, 0), (level.top_q, -1),
            (level.top_k, -1))))
        g += 1
    h = g // 2

    def four(a):
        return a.reshape(h, 2, h, 2, *a.shape[2:]).swapaxes(1, 2).reshape(h, h, 4, *a.shape[2:])
    top_p = four(level.top_p).reshape(h, h, -1)
    order = np.argsort(-top_p, axis=-1, kind="stable")[..., :TOP_K]
    pick = lambda a: np.take_along_axis(four(a).reshape(h, h, -1), order, -1)  # noqa: E731
    return Level(level.cell * 2, four(level.max).max(2), four(level.mass).sum(2), four(level.entropy).sum(2),
                 pick(level.top_p), pick(level.top_q), pick(level.top_k))


def pyramid(base: Level) -> list[Level]:
    """The base level, then each coarser one down to a single cell."""
    levels = [base]
    while levels[-1].max.shape[0] > 1:
        levels.append(coarser(levels[-1]))
    return levels


# ---- the pass ----------------------------------------------------------------------------------

@dataclass
class LongPass:
    """What a long pass keeps: the tokens, the model's greedy predictions, the summarised layer's queries
    and keys with each row's softmax maximum and sum (enough to recompute any block exactly), and per
    summarised head the pyramid of cell summaries."""
    cfg: InductionTinyConfig
    tokens: np.ndarray
    predicted: np.ndarray                   # argmax of the logits at every position
    layer: int
    queries: torch.Tensor                   # (H, T, hd), rotated where the layer rotates
    keys: torch.Tensor
    row_max: torch.Tensor                   # (H, T) the softmax's maximum score per row
    row_log_sum: torch.Tensor               # (H, T) log of its sum
    levels: dict[int, list[Level]] = field(default_factory=dict)   # head -> pyramid, base level first
    fine_mass: dict[int, np.ndarray] = field(default_factory=dict)  # head -> (G, G) mass of fine_cell cells
    seconds: dict[str, float] = field(default_factory=dict)
    logits: torch.Tensor | None = None      # (T, vocab), only when asked for (short sequences)

    @property
    def length(self) -> int:
        return len(self.tokens)

    def block(self, head: int, q0: int, q1: int, k0: int, k1: int) -> np.ndarray:
        """The exact probabilities of rows [q0, q1) and columns [k0, k1) of one head (0 above the
        diagonal and outside the window), as the pass computed them."""
        T = self.length
        q0, q1, k0, k1 = max(0, q0), min(T, q1), max(0, k0), min(T, k1)
        if q1 <= q0 or k1 <= k0:
            return np.zeros((max(0, q1 - q0), max(0, k1 - k0)), self.queries.numpy().dtype)
        s = scores(self.queries[head, q0:q1], self.keys[head, k0:k1], visible(self.cfg, self.layer, q0, q1, k0, k1))
        return _probabilities(s, self.row_max[head, q0:q1], self.row_log_sum[head, q0:q1]).numpy()

    def block_log_probs(self, head: int, q0: int, q1: int, k0: int, k1: int, row_shift: torch.Tensor | None = None
                        ) -> torch.Tensor:
        """ln p of a block (rows and columns clipped to the sequence; -inf above the diagonal and outside the
        window), plus row_shift[r] on row r when given: one matrix product of [q / sqrt(hd), shift - row max - row
        log-sum] by [k, 1], so that each entry is written once and masked once (a view that pools the block then
        takes exp or log of the pooled cells only)."""
        T = self.length
        q0, q1, k0, k1 = max(0, q0), min(T, q1), max(0, k0), min(T, k1)
        if q1 <= q0 or k1 <= k0:
            return torch.full((max(0, q1 - q0), max(0, k1 - k0)), -math.inf, dtype=self.queries.dtype)
        q, k = self.queries[head, q0:q1], self.keys[head, k0:k1]
        offset = -(self.row_max[head, q0:q1] + self.row_log_sum[head, q0:q1])
        if row_shift is not None:
            offset = offset + row_shift
        s = torch.cat([q * (q.shape[-1] ** -0.5), offset[:, None]], 1) @ torch.cat([k, torch.ones_like(k[:, :1])], 1).T
        allowed = visible(self.cfg, self.layer, q0, q1, k0, k1)
        return s if allowed is None else s.masked_fill_(~allowed, -math.inf)

    @property
    def fine_cell(self) -> int:
        return fine_cell(self.length)

    def checksum(self) -> str:
        """sha256 (first 16 hex digits) of every summarised head's base-level summaries."""
        digest = hashlib.sha256()
        for head in sorted(self.levels):
            base = self.levels[head][0]
            for array in (base.max, base.mass, base.entropy, base.top_p, base.top_q, base.top_k):
                digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()[:16]

    def summary_bytes(self) -> int:
        return sum(a.nbytes for levels in self.levels.values() for lv in levels
                   for a in (lv.max, lv.mass, lv.entropy, lv.top_p, lv.top_q, lv.top_k)) + sum(
                       a.nbytes for a in self.fine_mass.values())


def _probabilities(s: torch.Tensor, row_max: torch.Tensor, row_log_sum: torch.Tensor) -> torch.Tensor:
    return torch.exp(s - (row_max + row_log_sum)[:, None])


def summarise_head(cfg, layer: int, q: torch.Tensor, k: torch.Tensor, row_max: torch.Tensor,
                   row_log_sum: torch.Tensor, tile: int = TILE, progress: Callable | None = None
                   ) -> tuple[Level, np.ndarray]:
    """The base level of one head's summaries and its fine mass grid: a second tiled pass over its
    normalised probabilities."""
    length = q.shape[0]
    cell, fine = base_cell(length), fine_cell(length)
    fine_mass = np.zeros((math.ceil(length / fine),) * 2, np.float32)
    tile = max(tile - tile % cell, cell)
    g = math.ceil(length / cell)
    out = Level(cell, np.zeros((g, g), np.float32), np.zeros((g, g), np.float32), np.zeros((g, g), np.float32),
                np.zeros((g, g, TOP_K), np.float32), np.full((g, g, TOP_K), -1, np.int64),
                np.full((g, g, TOP_K), -1, np.int64))
    starts = list(_tiles(0, length, tile))
    for n, (q0, q1) in enumerate(starts):
        low, high = key_range(cfg, layer, q0, q1)
        for k0, k1 in _tiles(low - low % cell, high, tile):
            s = scores(q[q0:q1], k[k0:k1], visible(cfg, layer, q0, q1, k0, k1))
            p = _probabilities(s, row_max[q0:q1], row_log_sum[q0:q1])
            block = _cell_sums(p, fine)
            fine_mass[q0 // fine:q0 // fine + block.shape[0], k0 // fine:k0 // fine + block.shape[1]] = block
            mx, mass, ent, tp, tq, tk = (a.numpy() for a in cell_summaries(p, q0, k0, cell))
            r, c = q0 // cell, k0 // cell
            rows, cols = slice(r, r + mx.shape[0]), slice(c, c + mx.shape[1])
            kept = min(TOP_K, cell * cell)
            out.max[rows, cols], out.mass[rows, cols], out.entropy[rows, cols] = mx, mass, ent
            out.top_p[rows, cols, :kept], out.top_q[rows, cols, :kept], out.top_k[rows, cols, :kept] = tp, tq, tk
        if progress:
            progress(n + 1, len(starts))
    return out, fine_mass


def _cell_sums(p: torch.Tensor, cell: int) -> np.ndarray:
    """Sums over `cell` x `cell` cells of a block whose origin is on the cells' grid (padded with zeros)."""
    pad_r, pad_c = -p.shape[0] % cell, -p.shape[1] % cell
    if pad_r or pad_c:
        p = torch.nn.functional.pad(p, (0, pad_c, 0, pad_r))
    return p.view(p.shape[0] // cell, cell, p.shape[1] // cell, cell).sum((1, 3)).numpy()


@torch.inference_mode()
def run(weights: ModelWeights, tokens, heads=None, layer: int | None = None, tile: int = TILE,
        keep_logits: bool = False, progress: Callable | None = None,
        query_temperature: float | None = None, attention: Callable | None = None) -> LongPass:
    """The whole forward pass over `tokens` (1-D ids), tiled; summaries of `heads` (default: all) of
    `layer` (default: the last). `progress(stage, done, total)` is told of each query tile. With
    `query_temperature`, the NoPE layer's queries are scaled as Llama 4 does (query_temperature_scale): no
    longer SmolLM3's forward, an inference-time change this model was not trained with. `attention`, when
    given, replaces tiled_attention with the same contract (scenes/cli/longctx_cmd.py passes the engine's
    WGSL online-softmax kernels there: models do not import the engine)."""
    cfg = weights.cfg
    tokens = np.asarray(tokens, dtype=np.int64)
    if tokens.ndim != 1 or not 1 <= len(tokens) <= MAX_TOKENS:
        raise ValueError(f"tokens must be one sequence of 1 to {MAX_TOKENS:,} ids")
    if tokens.min() < 0 or tokens.max() >= cfg.vocab_size:
        raise ValueError(f"token ids must lie in [0, {cfg.vocab_size})")
    layer = cfg.n_layers - 1 if layer is None else layer
    heads = list(range(cfg.n_heads)) if heads is None else list(heads)
    seconds, started = {}, time.perf_counter()
    h = weights.embed[torch.from_numpy(tokens)]
    kept = None
    for i, lw in enumerate(weights.layers):
        q, k, v = _qkv(weights, i, h, query_temperature)
        told = (lambda d, t, i=i: progress(f"layer {i} attention", d, t)) if progress else None
        out, row_max, row_sum = (attention or tiled_attention)(cfg, i, q, k, v, tile, told)
        if i == layer:
            kept = (q, k, row_max, torch.log(row_sum))
        del v
        h = h + out.transpose(0, 1).reshape(len(h), -1) @ lw.o.T
        h = h + _mlp(lw, rms_norm(h, lw.norm_mlp, cfg.rms_eps))
        seconds[f"layer {i}"] = time.perf_counter() - started
    final = rms_norm(h, weights.norm_out, cfg.rms_eps)
    predicted = np.empty(len(tokens), np.int64)
    logits = torch.empty(len(tokens), cfg.vocab_size, dtype=h.dtype) if keep_logits else None
    for a, b in _tiles(0, len(tokens), 4 * tile):   # the (T, vocab) logits are not held at length
        block = final[a:b] @ weights.embed.T
        predicted[a:b] = block.argmax(-1).numpy()
        if logits is not None:
            logits[a:b] = block
    seconds["forward"] = time.perf_counter() - started
    q, k, row_max, row_log_sum = kept
    result = LongPass(cfg, tokens, predicted, layer, q, k, row_max, row_log_sum, logits=logits)
    for n, head in enumerate(heads):
        told = (lambda d, t, n=n: progress(f"summaries head {heads[n]}", d, t)) if progress else None
        base, result.fine_mass[head] = summarise_head(cfg, layer, q[head], k[head], row_max[head],
                                                      row_log_sum[head], tile, told)
        result.levels[head] = pyramid(base)
    seconds["total"] = time.perf_counter() - started
    result.seconds = seconds
    return result


def induction_scores(weights: ModelWeights, tokens, layer: int | None = None) -> np.ndarray:
    """Per head of `layer`, the mean attention from a position t to the key just after the previous
    occurrence of tokens[t] (s - 1 < t with tokens[s - 1] == tokens[t]), on a short sequence: which head
    is the induction head."""
    tokens = np.asarray(tokens)
    result = run(weights, tokens, heads=[], layer=layer)
    last: dict[int, int] = {}
    pairs = []
    for t, token in enumerate(tokens.tolist()):
        if token in last and last[token] + 1 < t:
            pairs.append((t, last[token] + 1))
        last[token] = t
    if not pairs:
        return np.zeros(weights.cfg.n_heads)
    rows, cols = np.array(pairs).T
    return np.array([result.block(h, 0, len(tokens), 0, len(tokens))[rows, cols].mean()
                     for h in range(weights.cfg.n_heads)])


# ---- a pass kept on disk (the long-context view reopens it instead of recomputing minutes of work) -------

MAX_SAVED_BYTES = 1 << 30   # a saved pass at 2M tokens is ~0.6 GB; anything larger is no file of ours
_LEVEL_FIELDS = ("max", "mass", "entropy", "top_p", "top_q", "top_k")


def save_pass(result: LongPass, path, key: str) -> None:
    """The pass as an .npz (tokens, predictions, queries and keys of the summarised layer, row statistics,
    every level), written atomically; `key` says what it was computed from (checked by load_pass)."""
    import io

    from llmviz.common.atomic import write_atomic

    arrays = {"key": np.array(key), "tokens": result.tokens, "predicted": result.predicted,
              "layer": np.array(result.layer), "queries": result.queries.numpy(), "keys": result.keys.numpy(),
              "row_max": result.row_max.numpy(), "row_log_sum": result.row_log_sum.numpy(),
              "heads": np.array(sorted(result.levels), np.int64)}
    for head, levels in result.levels.items():
        arrays[f"h{head}_cells"] = np.array([lv.cell for lv in levels], np.int64)
        arrays[f"h{head}_fine_mass"] = result.fine_mass[head]
        for n, level in enumerate(levels):
            arrays.update({f"h{head}_l{n}_{name}": getattr(level, name) for name in _LEVEL_FIELDS})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomic(path, buffer.getvalue())


def load_pass(path, cfg: InductionTinyConfig, key: str) -> LongPass | None:
    """A saved pass if `path` holds one for `key` with consistent shapes; None for anything else (a missing,
    foreign, truncated or oversized file is recomputed, never trusted)."""
    import os
    import zipfile

    try:
        if not os.path.isfile(path) or os.path.getsize(path) > MAX_SAVED_BYTES:
            return None
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key:
                return None
            tokens, queries = data["tokens"], data["queries"]
            length = len(tokens)
            heads_shape = (cfg.n_heads, length, cfg.head_dim)
            if queries.shape != heads_shape or data["keys"].shape != heads_shape or length > MAX_TOKENS:
                return None
            result = LongPass(cfg, tokens.astype(np.int64), data["predicted"].astype(np.int64), int(data["layer"]),
                              torch.from_numpy(queries.copy()), torch.from_numpy(data["keys"].copy()),
                              torch.from_numpy(data["row_max"].copy()), torch.from_numpy(data["row_log_sum"].copy()))
            for head in data["heads"].tolist():
                cells = data[f"h{head}_cells"].tolist()
                if not cells or cells[0] != base_cell(length):
                    return None
                result.levels[int(head)] = [
                    Level(cell, *(data[f"h{head}_l{n}_{name}"] for name in _LEVEL_FIELDS)) for n, cell in enumerate(cells)]
                fine = data[f"h{head}_fine_mass"]   # a pass saved before the fine grid existed: recomputed
                if fine.shape != (math.ceil(length / fine_cell(length)),) * 2 or fine.dtype != np.float32:
                    return None
                result.fine_mass[int(head)] = fine
            return result
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
        return None
