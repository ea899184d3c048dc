"""Mixture-of-experts routing for the scene: the live small MoE models, simulated routing for MoE
specs without weights, the routing statistics both produce, packet paths and trace export.

`RoutingStats` is what every MoE panel and the packet animation read. It is computed from router
logits alone (routing.py, with x = logits and an identity router), so changing top-k or the
capacity factor recomputes it from the recorded logits without running the model again.

Recomputing runs torch (tens to hundreds of ms on DeepSeek-V3's 58 × 256 experts), so after the
first statistics both routing sources compute on a `RoutingWorker` thread: `set_routing` and
`set_text` return at once, `pending` is True until the newest request's statistics land, and
`stats` / `stats_version` change when they do (collected when `stats` is read, so a reader that
takes `stats` and then `stats_version` sees the two agree).
"""
from __future__ import annotations

import colorsys
import csv
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmviz.models.sim import moe_corpus
from llmviz.models.sim.tick import SimulationRunner
from llmviz.scenes.text_live import LiveTextModel

DEFAULT_TEXT = "def f(x): return x+1"
SIMULATED_TOKENS = 32
SIMULATED_WIDTH = 128       # simulated router input width: the logits' statistics do not need 7168
PACKET_STAGGER = 0.25       # seconds between successive tokens leaving the router
PACKET_DURATION = 1.5       # seconds a packet takes from router to residual

# spec routing name -> (routing.py router, renormalise the top-k)
_SPEC_ROUTING = {"topk-softmax": ("softmax_topk", True), "softmax-topk": ("softmax_topk", False),
                 "sigmoid-grouped": ("deepseek_v3", True)}


@dataclass(frozen=True)
class RouterConfig:
    """How a model routes; top-k and capacity are chosen per computation, not here."""
    routing: str = "softmax_topk"
    norm_topk_prob: bool = True
    n_groups: int = 1
    topk_groups: int = 1
    route_scale: float = 1.0
    default_k: int = 2


def router_config(spec) -> RouterConfig:
    moe = spec.architecture.moe
    if moe is None:
        raise ValueError(f"{spec.id} has no mixture-of-experts layers")
    name, norm = _SPEC_ROUTING[moe.routing]
    return RouterConfig(name, norm, moe.n_groups or 1, moe.topk_groups or 1,
                        moe.route_scale if moe.route_scale is not None else 1.0, moe.top_k)


@dataclass
class RoutingStats:
    """Routing of T tokens through L MoE layers of E experts with top-k; arrays are (L, ...)."""
    model_id: str
    simulated: bool
    config: RouterConfig
    layers: np.ndarray          # (L,) block index of each MoE layer
    tokens: np.ndarray          # (T,) token ids (alphabet indices; simulated runs use them too)
    text: str
    top_k: int
    capacity_factor: float | None
    capacity: int | None        # slots per expert, None when unlimited
    logits: np.ndarray          # (L, T, E) router logits
    bias: np.ndarray | None     # (L, E) DeepSeek-V3 selection bias, else None
    probs: np.ndarray           # (L, T, E) softmax (sigmoid scores for DeepSeek-V3)
    topk: np.ndarray            # (L, T, k) chosen experts, best first
    gates: np.ndarray           # (L, T, k) weights the chosen experts' outputs get
    dropped: np.ndarray         # (L, T, k) over capacity
    counts: np.ndarray          # (L, E) assignments served (after drops): the heatmap
    load: np.ndarray            # (L, E) assignments requested
    mean_gate: np.ndarray       # (L, E) mean over tokens of the gate given to e (0 where not chosen)
    aux_loss: np.ndarray        # (L,) the routing family's balancing loss, without coefficient
    cv: np.ndarray              # (L,) coefficient of variation of the requested load

    @property
    def n_layers(self) -> int:
        return int(self.logits.shape[0])

    @property
    def n_tokens(self) -> int:
        return int(self.logits.shape[1])

    @property
    def n_experts(self) -> int:
        return int(self.logits.shape[2])

    @property
    def top1(self) -> np.ndarray:
        """(L, T) each token's first choice."""
        return self.topk[..., 0]

    @property
    def n_dropped(self) -> np.ndarray:
        """(L,) assignments dropped per layer."""
        return self.dropped.sum(axis=(1, 2))


def compute_stats(model_id: str, logits: np.ndarray, config: RouterConfig, layers, tokens, text: str,
                  top_k: int | None = None, capacity_factor: float | None = None,
                  bias: np.ndarray | None = None, simulated: bool = False) -> RoutingStats:
    """Route recorded logits (L, T, E) again with routing.py at the given top-k and capacity."""
    import torch

    from llmviz.models.sim import routing

    logits = np.asarray(logits, np.float32)
    L, T, E = logits.shape
    k = int(np.clip(config.default_k if top_k is None else top_k, 1, E))
    if config.routing == "deepseek_v3":
        # the top-k must fit inside the kept groups
        k = min(k, E // config.n_groups * config.topk_groups)
    eye = torch.eye(E)
    cap = None if capacity_factor is None else routing.expert_capacity(T, E, capacity_factor, k)
    out = {name: [] for name in ("probs", "topk", "gates", "dropped", "counts", "load", "aux", "cv")}
    for layer in range(L):
        x = torch.from_numpy(logits[layer])
        b = None if bias is None else torch.from_numpy(np.asarray(bias[layer], np.float32))
        r, aux = routing.route(x, eye, config.routing, k=k, norm_topk_prob=config.norm_topk_prob,
                               expert_bias=b, n_groups=config.n_groups, topk_groups=config.topk_groups,
                               route_scale=config.route_scale)
        c = routing.apply_capacity(r.topk, E, cap)
        for name, value in (("probs", r.probs), ("topk", r.topk), ("gates", r.gates), ("dropped", c.dropped),
                            ("counts", c.kept), ("load", c.load)):
            out[name].append(value.numpy())
        out["aux"].append(float(aux))
        out["cv"].append(c.load_cv)
    topk, gates = np.stack(out["topk"]), np.stack(out["gates"]).astype(np.float32)
    dense = np.zeros((L, T, E), np.float32)
    np.put_along_axis(dense, topk, gates, axis=2)
    return RoutingStats(model_id, simulated, config, np.asarray(layers, np.int64), np.asarray(tokens, np.int64),
                        text, k, capacity_factor, cap, logits, None if bias is None else np.asarray(bias, np.float32),
                        np.stack(out["probs"]).astype(np.float32), topk, gates, np.stack(out["dropped"]),
                        np.stack(out["counts"]).astype(np.int64), np.stack(out["load"]).astype(np.int64),
                        dense.mean(axis=1), np.array(out["aux"], np.float32), np.array(out["cv"], np.float32))


def restat(stats: RoutingStats, top_k: int | None, capacity_factor: float | None) -> RoutingStats:
    """The same logits routed with another top-k or capacity factor (no model run)."""
    return compute_stats(stats.model_id, stats.logits, stats.config, stats.layers, stats.tokens, stats.text,
                         top_k, capacity_factor, stats.bias, stats.simulated)


@functools.lru_cache(maxsize=16)
def expert_colors(n: int) -> np.ndarray:
    """(n, 3) distinct RGB colours, one per expert, spread around the hue circle (read-only:
    cached, since the panels ask for them every frame)."""
    hues = (np.arange(n) * 0.618034) % 1.0
    colors = np.array([colorsys.hsv_to_rgb(h, 0.65, 0.95) for h in hues], np.float32).reshape(n, 3)
    colors.flags.writeable = False
    return colors


# ---------------------------------------------------------------- off the frame thread

class RoutingWorker:
    """Routing statistics computed on a worker thread: `post` returns at once, the newest post wins.

    A post made while another computes replaces any post still waiting (the runner coalesces)
    and makes the one computing stale: its result is dropped when it lands. The thread starts on
    the first post, so a routing source that is never changed costs no thread.
    """

    def __init__(self, name: str = "llmviz-routing"):
        self._name = name
        self._runner: SimulationRunner | None = None
        self._latest = 0   # ticket of the newest post
        self._landed = 0   # ticket of the newest result taken

    @property
    def pending(self) -> bool:
        return self._latest != self._landed

    def post(self, compute: Callable[[], RoutingStats]) -> None:
        if self._runner is None:
            self._runner = SimulationRunner(lambda: _call, name=self._name)
        self._latest = self._runner.submit(compute)

    def take(self):
        """The newest post's TickResult once it has landed, else None (never blocks)."""
        newest = None
        for result in self._runner.poll() if self._runner is not None else ():
            newest = self._accept(result) or newest
        return newest

    def wait(self, timeout: float = 20.0):
        """Block until the newest post has landed (headless use and tests only); its TickResult or None."""
        deadline = time.monotonic() + timeout
        newest = self.take()
        while self.pending and (remaining := deadline - time.monotonic()) > 0:
            result = self._runner.wait(remaining)
            if result is None:
                break
            newest = self._accept(result) or newest
        return newest

    def _accept(self, result):
        if result.ticket != self._latest:
            return None  # stale: a newer request was posted while this one computed
        self._landed = result.ticket
        return result

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()


def _call(request):
    return request()


class _AsyncStats:
    """`stats`, `stats_version`, `pending` and `wait_routing` for a routing source that posts its
    recomputations to `self._routing` (a RoutingWorker)."""

    _stats: RoutingStats | None = None
    _stats_version = 0

    @property
    def stats(self) -> RoutingStats | None:
        """The newest routing statistics that have landed (collecting any that just did)."""
        self._collect()
        return self._stats

    @property
    def stats_version(self) -> int:
        """Bumped when `stats` changes (read `stats` first: that is when a landed result is taken)."""
        return self._stats_version

    @property
    def pending(self) -> bool:
        """A recomputation is on the worker: the panel shows "recomputing routing…" meanwhile."""
        return self._routing.pending

    def _set_stats(self, stats: RoutingStats) -> None:
        self._stats = stats
        self._stats_version += 1

    def _collect(self, result=None) -> bool:
        result = result or self._routing.take()
        if result is None:
            return False
        if result.error:
            self.error = f"routing: {result.error}"
            return False
        if self.error and self.error.startswith("routing: "):
            self.error = None
        self._set_stats(result.value)
        return True

    def wait_routing(self, timeout: float = 20.0) -> bool:
        """Block until the newest request's statistics are in (headless use and tests only)."""
        self._collect(self._routing.wait(timeout))
        return not self.pending


# ---------------------------------------------------------------- the live small MoE

def _load_moe(variant: str, weights_path=None):
    def load():
        from llmviz.models.sim.moe_model import load_moe

        return load_moe(variant, weights_path)

    return load


class LiveRouted(_AsyncStats, LiveTextModel):
    """A small trained text model with mixture-of-experts layers, bound to its scene: text in, trace on the
    blocks, routing stats out (of the layers `moe_layers`, under `config`).

    `update(dt)` once per frame collects finished traces and statistics (never blocks); `set_text`,
    `step`, `toggle_play` and `set_routing` answer UI events and return at once: the model runs on
    the session's worker, the routing statistics of each trace on a RoutingWorker.
    """

    def __init__(self, scene, renderer, model_id: str, load_model, context_length: int, config: RouterConfig,
                 moe_layers, text: str, top_k: int | None = None, capacity_factor: float | None = None,
                 play_interval: float = 0.4, autoplay: bool = False):
        self.variant = model_id
        self.simulated = False
        self.top_k, self.capacity_factor = top_k, capacity_factor
        self.config = config
        self.moe_layers = list(moe_layers)
        self._routing = RoutingWorker(f"llmviz-routing {model_id}")
        super().__init__(scene, renderer, load_model, context_length, text,
                         play_interval=play_interval, autoplay=autoplay)

    # ------------------------------------------------------------------ events
    def set_routing(self, top_k: int | None, capacity_factor: float | None) -> None:
        """Re-route the recorded logits at another top-k / capacity factor (the model is not re-run);
        returns at once, the statistics follow when the worker has them."""
        if (top_k, capacity_factor) == (self.top_k, self.capacity_factor):
            return  # already requested (the panel repeats a request until its result lands)
        self.top_k, self.capacity_factor = top_k, capacity_factor
        if self.trace is not None:
            self._post_stats()

    @property
    def pending(self) -> bool:
        """A trace or its routing statistics are still being computed."""
        return self.busy or self._routing.pending

    # ------------------------------------------------------------------ per frame
    def _per_frame(self) -> None:
        self._collect()

    def wait(self, timeout: float = 20.0) -> bool:
        """Block until the weights, the current trace and its routing statistics are in (headless, tests)."""
        deadline = time.monotonic() + timeout
        traced = super().wait(timeout)
        return self.wait_routing(max(deadline - time.monotonic(), 0.0)) and traced

    def close(self) -> None:
        self._routing.close()
        super().close()

    def _on_trace(self, result) -> None:
        # Expert blocks show the expert's W_gate (d_ff, c); the trace's (t, c) contributions are
        # named blocks.i.moe.expert.e.out, which no block shows, so they cannot land on them.
        super()._on_trace(result)
        self._post_stats(result.request)

    def _post_stats(self, tokens=None) -> None:
        """Route the current trace's logits on the worker at the chosen top-k / capacity."""
        logits = np.stack([self.trace[f"blocks.{i}.moe.router"] for i in self.moe_layers])
        tokens = list(self.tokens if tokens is None else tokens)
        args = (self.variant, logits, self.config, list(self.moe_layers), tokens, moe_corpus.decode(tokens),
                self.top_k, self.capacity_factor)
        self._routing.post(lambda: compute_stats(*args))


class LiveMoE(LiveRouted):
    """A trained moe-4 / moe-8: every layer's MLP is a Mixtral-style MoE, softmax top-k renormalised."""

    def __init__(self, scene, renderer, variant: str | None = None, text: str = DEFAULT_TEXT,
                 top_k: int | None = None, capacity_factor: float | None = None, weights_path=None,
                 play_interval: float = 0.4, autoplay: bool = False):
        from llmviz.models.sim.moe_model import variant_config

        variant = variant or scene.spec.id
        self.cfg = variant_config(variant)
        super().__init__(scene, renderer, variant, _load_moe(variant, weights_path), self.cfg.context_length,
                         RouterConfig("softmax_topk", True, default_k=self.cfg.top_k), range(self.cfg.n_layers),
                         text, top_k, capacity_factor, play_interval, autoplay)

# ---------------------------------------------------------------- simulated routing

class SimulatedRouting(_AsyncStats):
    """Routing from a seeded random router on random inputs, for MoE specs without weights.

    Each alphabet character gets a fixed random input vector, so the same text routes the same
    way; each MoE layer has its own random router (and, for DeepSeek-V3, a zero selection bias:
    the trained bias is not known). The spec's routing rule is applied exactly.

    The first statistics are computed in the constructor (callers build it off the frame, and
    `llmviz routing` reads `.stats` at once); later `set_text` / `set_routing` calls post to a
    RoutingWorker and return at once.
    """

    def __init__(self, spec, text: str = "", n_tokens: int = SIMULATED_TOKENS, seed: int = 0,
                 top_k: int | None = None, capacity_factor: float | None = None):
        arch = spec.architecture
        self.spec, self.seed = spec, seed
        self.simulated = True
        self.config = router_config(spec)
        self.layers = np.array([i for i in range(arch.n_layers) if arch.is_moe_layer(i)], np.int64)
        self.n_experts = arch.moe.n_experts
        width = min(arch.d_model, SIMULATED_WIDTH)
        rng = np.random.default_rng(seed)
        # Router rows of norm ~1 and unit inputs give logits of unit variance at any width.
        self._routers = rng.normal(0, 1 / np.sqrt(width), (len(self.layers), self.n_experts, width)).astype(np.float32)
        self._inputs = rng.normal(0, 1, (len(moe_corpus.ALPHABET), width)).astype(np.float32)
        self._bias = (np.zeros((len(self.layers), self.n_experts), np.float32)
                      if arch.moe.router_bias else None)
        self._n_tokens = n_tokens
        self.top_k, self.capacity_factor = top_k, capacity_factor
        self.error: str | None = None
        self._routing = RoutingWorker(f"llmviz-routing {spec.id}")
        self._tokens, self._text = self._input(text)
        self._set_stats(self._compute(self._tokens, self._text, top_k, capacity_factor))

    @property
    def busy(self) -> bool:
        """The same as `pending` (the live sessions' name for work in flight)."""
        return self.pending

    def set_text(self, text: str) -> str | None:
        """Route another text (empty: the seeded random tokens); returns the one-line problem, or None
        when accepted. Returns at once; the statistics follow."""
        bad = sorted({ch for ch in text if ch not in moe_corpus.ALPHABET})
        if bad:
            return f"characters outside the alphabet (printable ASCII and newline): {''.join(bad)!r}"
        self._tokens, self._text = self._input(text)
        self._post()
        return None

    def set_routing(self, top_k: int | None, capacity_factor: float | None) -> None:
        """Route again at another top-k / capacity factor; returns at once, the statistics follow."""
        if (top_k, capacity_factor) == (self.top_k, self.capacity_factor):
            return  # already requested (the panel repeats a request until its result lands)
        self.top_k, self.capacity_factor = top_k, capacity_factor
        self._post()

    def update(self, dt: float) -> bool:
        self._collect()
        return False

    def close(self) -> None:
        self._routing.close()

    def _input(self, text: str) -> tuple[np.ndarray, str]:
        if text:
            return np.array(moe_corpus.encode(text), np.int64), text
        tokens = np.random.default_rng(self.seed + 1).integers(0, len(moe_corpus.ALPHABET), self._n_tokens)
        return tokens, moe_corpus.decode(tokens)

    def _post(self) -> None:
        args = (self._tokens, self._text, self.top_k, self.capacity_factor)
        self._routing.post(lambda: self._compute(*args))

    def _compute(self, tokens: np.ndarray, text: str, top_k, capacity_factor) -> RoutingStats:
        """Runs on the worker (or in the constructor): reads only arrays fixed at construction."""
        logits = np.einsum("tw,lew->lte", self._inputs[tokens], self._routers)
        return compute_stats(self.spec.id, logits, self.config, self.layers, tokens, text,
                             top_k, capacity_factor, self._bias, simulated=True)


# ---------------------------------------------------------------- packets

def _center(layout, tensor_id: str, fallback: str | None = None) -> np.ndarray:
    try:
        return layout.center[layout.index(tensor_id)]
    except KeyError:
        return layout.center[layout.index(fallback)]


def routing_packets(layout, stats: RoutingStats, layer_row: int, tokens=None,
                    stagger: float = PACKET_STAGGER, duration: float = PACKET_DURATION,
                    lift: float | None = None) -> dict:
    """PacketSystem.set_packets arguments for one MoE layer: per (token, rank) a path router →
    expert → MoE out → residual, width and brightness by gate weight, colour by expert.

    Token j leaves at j × stagger. A dropped assignment skips its expert (it passes through on
    the residual) and is drawn grey. Paths run `lift` in front of the block centres (default:
    the blocks' depth), since at the centres the blocks would hide the packets.
    """
    block = int(stats.layers[layer_row])
    p = f"blocks.{block}"
    tok = np.arange(stats.n_tokens) if tokens is None else np.asarray(tokens, np.int64)
    router = _center(layout, f"{p}.moe.router")
    out = _center(layout, f"{p}.moe.out")
    resid = _center(layout, f"{p}.resid2", f"{p}.moe.out")
    experts = np.stack([_center(layout, f"{p}.moe.expert.{e}") for e in range(stats.n_experts)])
    chosen = stats.topk[layer_row, tok]                                   # (n, k)
    dropped = stats.dropped[layer_row, tok].reshape(-1)
    n, k = chosen.shape
    pts = np.empty((n * k, 4, 3), np.float32)
    pts[:, 0] = router
    pts[:, 1] = experts[chosen.reshape(-1)]
    pts[dropped, 1] = (router + out) / 2
    pts[:, 2] = out
    pts[:, 3] = resid
    if lift is None:
        ids = [f"{p}.moe.router", f"{p}.moe.out"]
        lift = float(max(layout.size[layout.index(i), 2] for i in ids))
    pts[:, :, 2] += lift
    gates = stats.gates[layer_row, tok]
    share = (gates / np.maximum(gates.sum(axis=1, keepdims=True), 1e-12)).reshape(-1)
    color = np.c_[expert_colors(stats.n_experts)[chosen.reshape(-1)], np.ones(n * k, np.float32)]
    color[dropped, :3] = 0.5
    return {"waypoints": pts, "width": 0.3 + 0.7 * share, "brightness": 0.35 + 0.65 * share,
            "color": color, "start": np.repeat(np.arange(n) * stagger, k), "duration": duration}


def token_arrival_time(j: int, stagger: float = PACKET_STAGGER, duration: float = PACKET_DURATION) -> float:
    """Clock time at which token j's packets reach the residual (for stepping token by token)."""
    return j * stagger + duration


# ---------------------------------------------------------------- export

NPZ_FIELDS = ("layers", "tokens", "logits", "probs", "topk", "gates", "dropped", "counts", "load", "mean_gate",
              "aux_loss", "cv")


def export_routing(stats: RoutingStats, path) -> Path:
    """Write the routing trace: .npz (every array) or .csv (one row per layer, token, rank), atomically:
    a failure (a full disk) leaves no partial file and any old one as it was."""
    from llmviz.common.atomic import atomic_path

    path = Path(path)
    if path.suffix not in (".npz", ".csv"):
        raise ValueError(f"export to .npz or .csv, not {path.suffix or 'no extension'!r}")
    with atomic_path(path) as tmp:
        _write_routing(stats, tmp)
    return path


def _write_routing(stats: RoutingStats, path: Path) -> None:
    if path.suffix == ".npz":
        extra = {"top_k": stats.top_k, "capacity_factor": np.nan if stats.capacity_factor is None
                 else stats.capacity_factor, "capacity": -1 if stats.capacity is None else stats.capacity,
                 "simulated": stats.simulated, "model_id": stats.model_id, "text": stats.text,
                 "routing": stats.config.routing}
        np.savez_compressed(path, **{f: getattr(stats, f) for f in NPZ_FIELDS}, **extra)
    elif path.suffix == ".csv":
        L, T, k = stats.topk.shape
        probs = np.take_along_axis(stats.probs, stats.topk, axis=2)
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["layer", "token", "char", "rank", "expert", "gate", "prob", "dropped"])
            for li in range(L):
                for t in range(T):
                    ch = moe_corpus.ALPHABET[stats.tokens[t]] if 0 <= stats.tokens[t] < len(moe_corpus.ALPHABET) else ""
                    for r in range(k):
                        w.writerow([int(stats.layers[li]), t, ch, r, int(stats.topk[li, t, r]),
                                    f"{stats.gates[li, t, r]:.6g}", f"{probs[li, t, r]:.6g}",
                                    int(stats.dropped[li, t, r])])
