"""`llmviz longctx [--model NAME] --length N [--head H] [--seed S] [--json]`: the long-context pass from the
command line. The induction model reads N tokens of recurring spans (models/sim/induction_task.py) with tiled
attention (models/sim/long_attention.py), never holding the N x N matrix; prints how well it predicted the
recurring spans, the time, the peak resident memory and a checksum of the tile summaries."""
from __future__ import annotations

import json
import resource
import sys
import time

DEFAULT_MODEL = "induction-2l"
LONG_MODELS = (DEFAULT_MODEL,)   # models with a tiled long pass
MIN_LENGTH = 16
PROBE_TOKENS = 1024              # the prefix on which the induction head is picked
MAX_TEMPERATURE = 4.0
ATTENTION_BACKENDS = ("torch", "wgpu")


def add_parser(subparsers) -> None:
    from llmviz.models.sim.induction_task import MAX_LENGTH as MAX_TOKENS   # numpy only: no torch to parse

    p = subparsers.add_parser("longctx", help="run the induction model over N tokens with tiled attention",
                              description="Run a long-context pass with tiled attention (no N x N matrix held) "
                                          "and print its accuracy, time, peak memory and summary checksum.")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model (default {DEFAULT_MODEL}); one of: "
                                                          + ", ".join(LONG_MODELS))
    p.add_argument("--length", required=True, help=f"tokens, {MIN_LENGTH} to {MAX_TOKENS:,} (e.g. 131072)")
    p.add_argument("--head", default=None, help="head of the last layer to summarise (default: the induction head)")
    p.add_argument("--seed", default=None, help="seed of the token sequence (default: the held-out seed)")
    p.add_argument("--temperature-tuning", default=None, metavar="S",
                   help=f"scale the NoPE layer's queries as Llama 4 does, 1 + S ln(1 + floor((p+1)/256)), S in "
                        f"[0, {MAX_TEMPERATURE:g}] (not the model's transformers forward; e.g. 0.3)")
    p.add_argument("--attention", default="torch", choices=ATTENTION_BACKENDS,
                   help="who computes the tiled attention: torch on the CPU (default), or the wgpu backend's WGSL "
                        "online-softmax kernels (engine/compute/attention.py), where a wgpu device exists")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"llmviz longctx: error: {message}", file=sys.stderr)
    return 2


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(args) -> int:
    from llmviz.scenes.cli.common import parse_int

    if args.model not in LONG_MODELS:
        return _fail(f"no long pass for model {str(args.model)[:40]!r}; available: {', '.join(LONG_MODELS)}")
    from llmviz.models.sim.induction_task import MAX_LENGTH as MAX_TOKENS

    try:
        length = parse_int(args.length, "--length", MIN_LENGTH, MAX_TOKENS)
        head = None if args.head is None else parse_int(args.head, "--head", 0, 63)
        seed = None if args.seed is None else parse_int(args.seed, "--seed", 0, 2**63 - 1)
        temperature = None if args.temperature_tuning is None else _temperature(args.temperature_tuning)
    except ValueError as err:
        return _fail(str(err))
    attention = None
    if args.attention == "wgpu":
        from llmviz.engine.compute.attention import compute_unavailable

        reason = compute_unavailable()
        if reason is not None:
            return _fail(f"--attention wgpu: {reason}")
        attention = wgpu_attention
    return _long_pass(length, head, seed, args.json, temperature, attention)


def wgpu_attention(cfg, layer: int, q, k, v, tile: int, progress=None):
    """long_attention.tiled_attention's contract on the engine's WGSL online-softmax kernels: the causal mask,
    layer 0's sliding window; torch tensors in and out (the kernels take float32 numpy)."""
    import numpy as np
    import torch

    from llmviz.engine.compute.attention import online_attention

    window = cfg.window if cfg.layer_types[layer] == "sliding_attention" else None
    arrays = (np.ascontiguousarray(t.float().numpy()) for t in (q, k, v))
    out, row_max, row_sum = online_attention(*arrays, causal=True, window=window, progress=progress)
    return tuple(torch.from_numpy(np.asarray(a)).to(q.dtype) for a in (out, row_max, row_sum))


def _temperature(text: str) -> float:
    from llmviz.scenes.cli.common import shown

    try:
        value = float(text) if len(text) <= 20 else float("nan")
    except ValueError:
        raise ValueError(f"--temperature-tuning {shown(text)} is not a number") from None
    if not 0.0 <= value <= MAX_TEMPERATURE:   # NaN fails too
        raise ValueError(f"--temperature-tuning must be a number in [0, {MAX_TEMPERATURE:g}], got {shown(text)}")
    return value


def _long_pass(length: int, head: int | None, seed: int | None, as_json: bool, temperature: float | None,
               attention=None) -> int:
    import numpy as np
    import torch

    from llmviz.models.sim import induction_task, long_attention
    from llmviz.models.sim.induction_model import load_weights
    from llmviz.scenes.cli.common import Progress

    from llmviz.models.sim.weights_file import WeightsError

    torch.set_num_threads(1)
    started = time.perf_counter()
    try:
        weights = long_attention.ModelWeights.from_model(load_weights())
    except WeightsError as err:
        print(f"llmviz longctx: error: {err} (llmviz train {DEFAULT_MODEL} writes them)", file=sys.stderr)
        return 1
    if head is not None and head >= weights.cfg.n_heads:
        return _fail(f"--head must be below {weights.cfg.n_heads} ({weights.cfg.n_heads} heads)")
    tokens, predictable = induction_task.long_sequence(length, induction_task.HELD_OUT_SEED if seed is None else seed)
    if head is None:
        head = int(np.argmax(long_attention.induction_scores(weights, tokens[:PROBE_TOKENS])))
    bars: dict[str, Progress] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bars.setdefault(stage, Progress(f"llmviz longctx: {stage}"))(done, total)

    result = long_attention.run(weights, tokens, heads=[head], progress=progress, query_temperature=temperature,
                                attention=attention)
    seconds = time.perf_counter() - started
    base = result.levels[head][0]
    report = {
        "model": DEFAULT_MODEL, "length": length, "layer": result.layer, "head": head,
        "attention": "torch" if attention is None else "wgpu",
        "temperature_tuning": temperature,
        "induction_accuracy": round(induction_task.accuracy(result.predicted, tokens, predictable), 4),
        "predictable_positions": int(predictable[:-1].sum()),
        "seconds": round(seconds, 2),
        "seconds_by_stage": {k: round(v, 2) for k, v in result.seconds.items()},
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "summary_checksum": result.checksum(),
        "summary_levels": len(result.levels[head]), "base_cell": base.cell, "base_grid": int(base.max.shape[0]),
        "summary_bytes": result.summary_bytes(),
        "dense_matrix_bytes_per_head": 4 * length * length,   # what a float32 T x T would take
    }
    if as_json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{DEFAULT_MODEL} over {length:,} tokens, layer {result.layer} head {head} summarised: "
          f"recurring-span accuracy {100 * report['induction_accuracy']:.1f}% "
          f"({report['predictable_positions']:,} positions)"
          + (f", NoPE queries temperature-tuned (Llama 4's rule) with S = {temperature:g}" if temperature else ""))
    print(f"time {seconds:.1f} s, peak_rss_mb {report['peak_rss_mb']:.0f} "
          f"(a float32 {length:,}^2 matrix would be {report['dense_matrix_bytes_per_head'] / 1e9:.1f} GB per head)")
    print(f"summaries: {report['summary_levels']} levels from {report['base_grid']}^2 cells of {base.cell}^2 "
          f"entries, {report['summary_bytes'] / 1e6:.1f} MB; checksum {report['summary_checksum']}")
    return 0
