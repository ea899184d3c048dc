"""`llmviz scan`: streams a long sequence through a small recurrent model's recurrent form (the
state-space models mamba-tiny and mamba2-tiny, the linear-attention RNN rwkv-tiny, and the hybrid
jamba-tiny, whose attention layer also keeps keys and values), headless, and reports what it cost:
the state it carries, the cache it grew, the memory it grew by, the time per token.

The tokens go through chunk by chunk with the state carried from one call to the next, which gives
the same logits and final state as one forward over the whole sequence (tests/test_mamba_tiny.py,
test_mamba2_tiny.py, test_rwkv_tiny.py, test_scan_cli.py), so memory stays at one chunk's activations
however long the sequence is. The tokens themselves are drawn chunk by chunk too (seeded), never
held whole.

STATE_SPACE_MODELS is the table of models this command (and `llmviz generate`) can run: one entry
names how to load a model, run a chunk from a state, step one token and list the state's tensors
(whatever they are: the table assumes no SSM/conv split), which of them grow with the tokens (a
hybrid's key/value cache: reported apart from the fixed state, both measured off the carried
tensors) and the longest scan worth starting (an attention layer makes each chunk dearer than the
last, so the whole scan is quadratic in its length).
Nothing here imports torch until a scan starts, so bad arguments are answered at once.
"""
from __future__ import annotations

import json
import random
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from functools import partial
from typing import Callable, Iterator

from llmviz.scenes.cli.common import parse_int, shown

MAX_LENGTH = 10_000_000   # minutes to an hour at these models' pace here; the memory would not mind more
CHUNK = 512               # tokens per call: big enough that per-call overhead vanishes, small in memory
MAX_SEED = 2**63 - 1      # as `llmviz generate`
SOURCES = ("corpus", "random")
PROGRESS_AFTER_S = 2.0    # shorter scans print nothing on stderr


@dataclass(frozen=True)
class StateSpaceModel:
    """How to run one small recurrent text model. `run(model, ids, state)` feeds a list of token ids
    from `state` (None: the start) and returns (the last token's logits as numpy (vocab,), the new
    state); `step(model, token, state)` is the same for one token, the recurrent form generation uses;
    `state_tensors(state)` names every tensor the state carries (name -> tensor, any number of them);
    `growing` the state fields among them that grow with the tokens (a key/value cache: a tensor
    named "field" or "field.<anything>" belongs to field), the rest being the fixed state;
    `width_depth(model)` is (d_model, layers); `max_length` the longest --length, `length_note` why
    it is lower than MAX_LENGTH when it is."""

    load: Callable[[str | None], object]
    run: Callable
    step: Callable
    state_tensors: Callable[[object], dict]
    width_depth: Callable[[object], tuple[int, int]]
    alphabet: Callable[[], str]
    needs: tuple[str, ...] = ()       # modules beyond torch that loading it imports
    max_input: int = 10_000           # characters `llmviz generate` accepts as its input
    growing: tuple[str, ...] = ()     # state fields that grow with the tokens (none: a recurrent model)
    max_length: int = MAX_LENGTH      # the longest `llmviz scan --length`
    length_note: str = ""             # why max_length is what it is, when it is not MAX_LENGTH


# ---- the models --------------------------------------------------------------------------------
# All of them are transformers models recomputed by a trace module of the same shape (forward(model,
# idx, state) -> (logits, state), step(model, token, state)) whose state is a dataclass of tensors, so
# one entry is two dotted names; a model that breaks that shape gets its own callables instead.

def _import(dotted: str):
    # import here, not at the top: the table must not pull in torch before the arguments are checked
    import importlib

    module, _, name = dotted.partition(":")
    found = importlib.import_module(module)
    return getattr(found, name) if name else found


def _traced_load(loader: str, path):
    return _import(loader)(path)


def _traced_run(trace: str, model, ids, state):
    import torch

    with torch.inference_mode():
        # (logits, state, ...): a trace may return more after them (jamba_trace the router logits)
        out = _import(trace).forward(model, torch.tensor([list(ids)], dtype=torch.long), state)
    return out[0][0, -1].numpy().copy(), out[1]


def _traced_step(trace: str, model, token, state):
    return _import(trace).step(model, int(token), state)


def dataclass_tensors(state) -> dict:
    """Every field of a state dataclass, in its order: what the model carries from token to token
    (mamba's ssm and conv, RWKV's two shifts and its WKV numerator, denominator and maximum), so
    no family's split is assumed and a field added to a state class is counted without an edit here.
    A field that holds a dict of tensors (jamba's per-layer keys, values, ssm and conv) gives one
    entry per key, "field.key" ("keys.2", "ssm.0")."""
    import dataclasses

    tensors = {}
    for f in dataclasses.fields(state):
        value = getattr(state, f.name)
        if isinstance(value, dict):
            tensors.update({f"{f.name}.{key}": tensor for key, tensor in value.items()})
        else:
            tensors[f.name] = value
    return tensors


def _hf_width_depth(model) -> tuple[int, int]:
    # every model here is a transformers model, whose config names width and depth alike
    return int(model.config.hidden_size), int(model.config.num_hidden_layers)


def _corpus_alphabet() -> str:
    from llmviz.models.sim import moe_corpus

    return moe_corpus.ALPHABET


def traced_model(loader: str, trace: str, **more) -> StateSpaceModel:
    """The entry of a model loaded by `loader` ("module:function", taking a weights path or None) and
    run by the trace module `trace` on the moe_corpus alphabet; `more` sets the other fields
    (growing, max_length, length_note)."""
    return StateSpaceModel(load=partial(_traced_load, loader), run=partial(_traced_run, trace),
                           step=partial(_traced_step, trace), state_tensors=dataclass_tensors,
                           width_depth=_hf_width_depth, alphabet=_corpus_alphabet, needs=("transformers",), **more)


# jamba-tiny's attention layer attends from each chunk to every cached key, so a chunk costs more the
# further in it is (here: ~0.05 s at the start, then +~8 ms per 512 cached tokens, more once the scores
# outgrow the caches) and one chunk's scores take 4 heads x 512 x cached tokens x 4 bytes, three times
# over (scores, masked, softmax). Measured on this 2-core machine, one thread: 8,192 tokens 1.7 s and
# +0.26 GB peak RSS; 65,536 tokens 102 s and +1.7 GB. Twice that would be ~4x the time (~7 min) and
# twice the memory, past what a command that says nothing for minutes should ask.
JAMBA_MAX_LENGTH = 65_536

STATE_SPACE_MODELS: dict[str, StateSpaceModel] = {
    "mamba-tiny": traced_model("llmviz.models.sim.mamba_model:load_mamba", "llmviz.models.sim.mamba_trace"),
    "mamba2-tiny": traced_model("llmviz.models.sim.mamba2_model:load_mamba2", "llmviz.models.sim.mamba2_trace"),
    "rwkv-tiny": traced_model("llmviz.models.sim.rwkv_model:load_rwkv", "llmviz.models.sim.rwkv_trace"),
    "jamba-tiny": traced_model(
        "llmviz.models.sim.jamba_model:load_jamba", "llmviz.models.sim.jamba_trace",
        growing=("keys", "values"), max_length=JAMBA_MAX_LENGTH,
        length_note="its attention layer attends to every cached token, so each chunk costs more than the "
                    "last and the scan grows with the square of the length (8,192 tokens take about 2 s, "
                    "65,536 under 2 minutes and 1.7 GB)"),
}


# ---- the command -------------------------------------------------------------------------------

def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "scan", help="stream a long sequence through a recurrent model's recurrent form (no display needed)",
        description="Stream N tokens through a small recurrent model (" + ", ".join(STATE_SPACE_MODELS) + ") "
                    "chunk by chunk, the state carried between "
                    "chunks, and report the state's size (and a hybrid's growing key/value cache apart), "
                    "peak memory and time per token, e.g. "
                    "`llmviz scan --model mamba-tiny --length 131072 --json`.")
    p.add_argument("--model", default="mamba-tiny",
                   help="model: " + ", ".join(STATE_SPACE_MODELS) + " (default mamba-tiny)")
    # Parsed in run() rather than by argparse so that every bad value gets one line, exit 2.
    bounds = "; ".join(f"{m} at most {e.max_length:,}" for m, e in STATE_SPACE_MODELS.items()
                       if e.max_length != MAX_LENGTH)
    p.add_argument("--length", default=None,
                   help=f"tokens to stream, 1 to {MAX_LENGTH:,}"
                        + (f" ({bounds}: its attention grows)" if bounds else ""))
    p.add_argument("--tokens", default="corpus",
                   help="where the tokens come from: corpus (the training corpus's generator, default) or random")
    p.add_argument("--seed", default="0", help="seed of the tokens, 0 to 2^63-1 (default 0)")
    p.add_argument("--weights", default=None, help="safetensors file instead of the shipped weights")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _fail(message: str, code: int = 2) -> int:
    print(f"llmviz scan: error: {message}", file=sys.stderr)
    return code


def missing_module(entry: StateSpaceModel) -> str | None:
    """The first module the model needs that is not installed, or None."""
    import importlib.util

    return next((name for name in entry.needs if importlib.util.find_spec(name) is None), None)


def load_model(entry: StateSpaceModel, model_id: str, weights):
    """(model, None) or (None, a one-line reason) — what a broken weights file provokes, never a traceback."""
    from llmviz.models.sim.weights_file import WeightsError

    try:
        return entry.load(weights), None
    except WeightsError as exc:  # names the file and the tensor
        return None, f"cannot load weights: {exc}"
    except Exception as exc:  # anything else a broken file provokes: still one line naming it
        return None, f"cannot load {model_id} weights {weights or 'shipped'}: {type(exc).__name__}: {exc}".splitlines()[0]


def token_chunks(source: str, seed: int, length: int, vocab: int, chunk: int = CHUNK) -> Iterator[list[int]]:
    """`length` token ids in lists of `chunk` (the last shorter), drawn as they are needed: samples of
    the training corpus (domains in a seeded random order) or uniform random ids below `vocab`."""
    left = length
    if source == "random":
        import numpy as np

        rng = np.random.default_rng(seed)
        while left:
            n = min(chunk, left)
            yield rng.integers(0, vocab, n).tolist()
            left -= n
        return
    from llmviz.models.sim import moe_corpus

    rng, pending = random.Random(seed), []
    while left:
        n = min(chunk, left)
        while len(pending) < n:
            pending += moe_corpus.encode(moe_corpus.sample(rng.choice(moe_corpus.DOMAINS), rng))
        yield pending[:n]
        pending = pending[n:]
        left -= n


def _mb(kilobytes_or_bytes: int) -> float:
    # ru_maxrss is kilobytes on Linux, bytes on macOS
    return kilobytes_or_bytes / (1024 * 1024 if sys.platform == "darwin" else 1024)


def peak_rss_mb() -> float:
    return _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def current_rss_mb() -> float | None:
    """Resident memory now (Linux /proc), which unlike the peak can also show a scan that grows nothing."""
    import os

    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


class ScanProgress:
    """Tokens done / N and tokens per second on stderr once a scan has run PROGRESS_AFTER_S: one line
    updated in place on a terminal, a new line every 10 s elsewhere (a log file stays short)."""

    def __init__(self, clock=time.perf_counter, stream=None):
        self.clock, self.stream = clock, stream or sys.stderr
        self.live = self.stream.isatty()
        self.start = self.clock()
        self.last = None   # when the last line was printed

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        elapsed = now - self.start
        if elapsed < PROGRESS_AFTER_S:
            return
        finished = done >= total
        if self.last is not None and now - self.last < (0.25 if self.live else 10.0) and not finished:
            return
        if self.last is None and finished and not self.live:
            return  # a scan that ends just past the threshold needs no lone progress line in a log
        self.last = now
        text = f"scan: {done:,}/{total:,} tokens, {done / elapsed:,.0f} tokens/s, {elapsed:.1f} s"
        if self.live:
            print("\r" + text, end="\n" if finished else "", file=self.stream, flush=True)
        else:
            print(text, file=self.stream, flush=True)


def scan(entry: StateSpaceModel, model, length: int, seed: int = 0, source: str = "corpus",
         chunk: int = CHUNK, progress=None):
    """Streams `length` tokens through `model` from the zero state → (final state, seconds per token of
    each chunk, total seconds including drawing the tokens)."""
    vocab = len(entry.alphabet())
    state, per_token, done = None, [], 0
    start = time.perf_counter()
    for ids in token_chunks(source, seed, length, vocab, chunk):
        t = time.perf_counter()
        _, state = entry.run(model, ids, state)
        per_token.append((time.perf_counter() - t) / len(ids))
        done += len(ids)
        if progress is not None:
            progress(done, length)
    return state, per_token, time.perf_counter() - start


@dataclass(frozen=True)
class StateReport:
    """The carried tensors as they are held after a scan, split in two: `fixed` the state the same at
    any length (a recurrent model's all of it, jamba's Mamba ssm and conv), `growing` what grows with
    the tokens (jamba's attention keys and values; empty for a recurrent model). Bytes are numel x
    element size of the tensors themselves, shapes name -> list, dtype(s) as torch names them (e.g.
    "float32", so a model carrying another precision is reported as it is)."""

    fixed_bytes: int
    fixed_shapes: dict[str, list[int]]
    growing_bytes: int
    growing_shapes: dict[str, list[int]]
    dtype: str

    @property
    def total_bytes(self) -> int:
        return self.fixed_bytes + self.growing_bytes


def _field(name: str) -> str:
    return name.partition(".")[0]


def state_report(entry: StateSpaceModel, state) -> StateReport:
    """What `state` holds, measured off its tensors, the fields `entry.growing` names apart."""
    tensors = entry.state_tensors(state)
    unknown = set(entry.growing) - {_field(name) for name in tensors}
    if unknown:  # a table naming a field the state lacks would report a cache of 0 bytes as measured
        raise ValueError(f"the state has no field {', '.join(sorted(unknown))}")
    dtypes = sorted({str(t.dtype).removeprefix("torch.") for t in tensors.values()})
    parts = {False: {}, True: {}}
    for name, t in tensors.items():
        parts[_field(name) in entry.growing][name] = t
    size = lambda part: sum(t.numel() * t.element_size() for t in part.values())  # noqa: E731
    shapes = lambda part: {name: list(t.shape) for name, t in part.items()}  # noqa: E731
    return StateReport(size(parts[False]), shapes(parts[False]), size(parts[True]), shapes(parts[True]),
                       "/".join(dtypes))


def _shape_text(shapes: dict[str, list[int]]) -> str:
    return ", ".join(f"{name} {'x'.join(map(str, s))}" for name, s in shapes.items())


def run(args) -> int:
    entry = STATE_SPACE_MODELS.get(args.model)
    if entry is None:
        return _fail(f"unknown model {shown(args.model)}; available: {', '.join(STATE_SPACE_MODELS)}")
    if args.length is None:
        return _fail(f"--length is required, e.g. --length 131072 (1 to {entry.max_length:,} tokens"
                     f"{' for ' + args.model if entry.max_length != MAX_LENGTH else ''})")
    try:
        length = parse_int(args.length, "--length", 1, MAX_LENGTH)
        seed = parse_int(args.seed, "--seed", 0, MAX_SEED)
    except ValueError as exc:
        return _fail(str(exc))
    if length > entry.max_length:
        return _fail(f"--length for {args.model} must be at most {entry.max_length:,}, got {length:,}: "
                     f"{entry.length_note or 'the longest scan it runs'}")
    if args.tokens not in SOURCES:
        return _fail(f"--tokens must be one of {', '.join(SOURCES)}, got {shown(args.tokens)}")
    missing = missing_module(entry)
    if missing:
        return _fail(f"{args.model} needs {missing}; install it (pip install 'llmviz[dev]')")

    import torch

    # One sequence of small matrices, paced by the scan's per-token loop: more threads only add overhead
    # (and this machine's cores are shared).
    torch.set_num_threads(1)
    model, problem = load_model(entry, args.model, args.weights)
    if problem:
        return _fail(problem, 1)
    rss_before, peak_before = current_rss_mb(), peak_rss_mb()
    state, per_token, seconds = scan(entry, model, length, seed, args.tokens, progress=ScanProgress())
    peak_after, rss_after = peak_rss_mb(), current_rss_mb()

    report = state_report(entry, state)
    width, depth = entry.width_depth(model)
    kv_bytes = 2 * depth * width * length * 4
    compared = (f"the keys and values an attention model of the same width (d_model {width}) and depth "
                f"({depth} layers) would cache for {length:,} tokens, 2 x layers x d_model x tokens x 4 bytes (float32)")
    grows = bool(report.growing_shapes)
    result = {
        "model": args.model, "tokens": length, "source": args.tokens, "seed": seed,
        "chunk": CHUNK, "chunks": len(per_token), "torch_threads": torch.get_num_threads(),
        # the fixed part only: what grows is kv_cache_bytes, and the two together total_cache_bytes
        "state_bytes": report.fixed_bytes, "state_shapes": report.fixed_shapes, "state_dtype": report.dtype,
        "state_grows": False,
        "kv_cache_bytes": report.growing_bytes, "kv_cache_shapes": report.growing_shapes,
        "kv_cache_grows": grows,
        "kv_cache_bytes_per_token": round(report.growing_bytes / length, 3),
        "total_cache_bytes": report.total_bytes,
        "kv_cache_bytes_same_width": kv_bytes,
        "kv_cache_note": f"a comparison, not a measured model: {compared}",
        "rss_before_mb": None if rss_before is None else round(rss_before, 1),
        "rss_after_mb": None if rss_after is None else round(rss_after, 1),
        "peak_rss_before_mb": round(peak_before, 1),
        "peak_rss_mb": round(peak_after, 1),
        "peak_rss_growth_mb": round(peak_after - peak_before, 1),
        "ms_per_token": round(1000 * seconds / length, 4),
        "ms_per_token_median_chunk": round(1000 * statistics.median(per_token), 4),
        "ms_per_token_last_chunk": round(1000 * per_token[-1], 4),
        "seconds": round(seconds, 3),
    }
    if args.json:
        print(json.dumps(result))
        return 0
    dtype = report.dtype
    print(f"{args.model}: {length:,} tokens ({args.tokens}, seed {seed}) in {seconds:.2f} s, "
          f"{len(per_token)} chunks of {CHUNK}")
    print(f"  state carried:      {report.fixed_bytes:,} bytes ({_shape_text(report.fixed_shapes)}, {dtype}), "
          "the same at any length")
    if grows:
        print(f"  KV cache carried:   {report.growing_bytes:,} bytes "
              f"({_shape_text(report.growing_shapes)}, {dtype}), GROWS with the tokens: {result['kv_cache_bytes_per_token']:,g} bytes per token, measured")
        print(f"  total carried:      {report.total_bytes:,} bytes at this length "
              f"({report.fixed_bytes:,} fixed + {report.growing_bytes:,} growing)")
    print(f"  attention KV cache: {kv_bytes:,} bytes at this length, {compared} (a comparison, not a measured model)")
    if rss_before is not None:
        print(f"  resident memory:    {rss_before:.1f} MB before the scan, {rss_after:.1f} MB after")
    print(f"  peak RSS:           {peak_before:.1f} MB before the scan, {peak_after:.1f} MB after "
          f"(+{peak_after - peak_before:.1f} MB)")
    print(f"  time per token:     {result['ms_per_token']:.4f} ms overall, "
          f"{result['ms_per_token_median_chunk']:.4f} ms median over chunks, "
          f"{result['ms_per_token_last_chunk']:.4f} ms in the last")
    return 0
