"""`llmviz routing`: routes a text through a mixture-of-experts model headless and prints, per
layer, the load CV, auxiliary loss, drops and each token's top-1 expert; optionally exports it.

moe-4 and moe-8 run their trained weights; other MoE specs (mixtral-8x7b, deepseek-v3, ...) are
routed by a seeded random router on random inputs and say "simulated routing".
"""
from __future__ import annotations

import json
import math
import sys

# Simulated routing holds (layers x tokens x experts) arrays: DeepSeek-V3 (58 MoE layers x 256
# experts) on 2,048 tokens peaks near 1 GB resident, torch included; 120,000 characters passed 4 GB.
MAX_SIMULATED_CHARS = 2_048
MAX_CAPACITY_FACTOR = 1_000.0  # above n_experts every expert takes every token anyway


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("routing", help="show how a mixture-of-experts model routes a text (no display needed)",
                              description="Route a text through a mixture-of-experts model, e.g. "
                                          "`llmviz routing --model moe-4 --text \"def f(x): return x+1\"`.")
    p.add_argument("--model", default="moe-4", help="moe-4, moe-8 (trained) or any MoE spec (simulated routing)")
    p.add_argument("--text", default=None, help="input text: printable ASCII, at most 64 characters for moe-4/moe-8, "
                                                "2,048 for simulated routing")
    # Parsed in run() so that every bad value gets one line and exit code 2.
    p.add_argument("--top-k", default=None, help="experts per token (default: the model's)")
    p.add_argument("--capacity-factor", default=None, help="expert capacity factor (default: unlimited)")
    p.add_argument("--out", default=None, help="write the routing trace to FILE.npz or FILE.csv")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"llmviz routing: error: {message}", file=sys.stderr)
    return 2


def run(args) -> int:
    from llmviz.models.registry import UnknownModelError, load_registry
    from llmviz.scenes import moe_live
    from llmviz.scenes.live import LIVE_MOE_MODELS
    from llmviz.scenes.text_live import validate_text

    try:
        spec = load_registry().get(args.model)
    except UnknownModelError as exc:
        return _fail(str(exc))
    if spec.architecture.moe is None:
        return _fail(f"{spec.id} has no mixture-of-experts layers")
    live = spec.id in LIVE_MOE_MODELS
    text = args.text if args.text is not None else (moe_live.DEFAULT_TEXT if live else "")
    problem = validate_text(text, spec.architecture.context_length) if (live or text) else None
    if problem:
        return _fail(problem)
    if not live and len(text) > MAX_SIMULATED_CHARS:
        return _fail(f"the text has {len(text):,} characters; simulated routing takes at most {MAX_SIMULATED_CHARS:,}")
    from llmviz.scenes.cli.common import check_output_path, parse_int, shown
    from llmviz.scenes.cli.main import CliError

    top_k = None
    if args.top_k is not None:
        moe = spec.architecture.moe
        # group-limited routing can only choose among the experts of the kept groups
        k_max = moe.n_experts // moe.n_groups * moe.topk_groups if moe.n_groups else moe.n_experts
        try:
            top_k = parse_int(args.top_k, "--top-k", 1, k_max)
        except ValueError as exc:
            return _fail(str(exc))
    factor = None
    if args.capacity_factor is not None:
        try:
            factor = float(args.capacity_factor)
        except ValueError:
            return _fail(f"--capacity-factor {shown(args.capacity_factor)} is not a number")
        if not (math.isfinite(factor) and 0 < factor <= MAX_CAPACITY_FACTOR):
            return _fail(f"--capacity-factor must be a number > 0 and at most {MAX_CAPACITY_FACTOR:g}, "
                         f"got {shown(args.capacity_factor)}")
    if args.out is not None:
        try:
            args.out = check_output_path(args.out, suffixes=(".npz", ".csv"), reserve=1 << 20)
        except CliError as exc:
            return _fail(str(exc).removeprefix("llmviz: "))

    import numpy as np
    import torch

    torch.set_num_threads(1)
    if live:
        from llmviz.models.sim import moe_corpus
        from llmviz.models.sim.moe_model import load_moe

        from llmviz.models.sim.weights_file import WeightsError

        try:
            model = load_moe(spec.id)
        except WeightsError as exc:  # names the file and the tensor
            return _fail(f"cannot load weights: {exc}")
        except Exception as exc:  # anything else a broken file provokes: still one line
            return _fail(f"cannot load weights of {spec.id}: {type(exc).__name__}: {exc}".splitlines()[0])
        tokens = moe_corpus.encode(text)
        trace = model.trace(tokens)
        logits = np.stack([trace[f"blocks.{i}.moe.router"] for i in range(model.cfg.n_layers)])
        stats = moe_live.compute_stats(spec.id, logits, moe_live.RouterConfig(default_k=model.cfg.top_k),
                                       range(model.cfg.n_layers), tokens, text, top_k, factor)
    else:
        stats = moe_live.SimulatedRouting(spec, text, top_k=top_k, capacity_factor=factor).stats
    if args.out:
        try:  # atomic: a full disk leaves no partial file and the old one intact
            moe_live.export_routing(stats, args.out)
        except OSError as exc:
            return _fail(f"--out {args.out!r}: cannot write: {exc.strerror or exc}")

    layers = [{"layer": int(stats.layers[r]), "cv": round(float(stats.cv[r]), 6),
               "aux_loss": round(float(stats.aux_loss[r]), 6), "dropped": int(stats.n_dropped[r]),
               "tokens_per_expert": stats.counts[r].tolist(), "top1": stats.top1[r].tolist()}
              for r in range(stats.n_layers)]
    if args.json:
        print(json.dumps({"model": spec.id, "simulated": stats.simulated, "text": stats.text,
                          "top_k": stats.top_k, "capacity_factor": stats.capacity_factor,
                          "capacity": stats.capacity, "layers": layers, "out": args.out}))
        return 0
    label = "simulated routing (random router, random inputs)" if stats.simulated else "trained weights"
    cap = "unlimited" if stats.capacity is None else f"{stats.capacity} per expert (factor {factor})"
    print(f"{spec.id}: {label}; {stats.n_tokens} tokens, top-{stats.top_k}, capacity {cap}")
    for row in layers:
        print(f"layer {row['layer']:>3}: CV {row['cv']:.3f}  aux {row['aux_loss']:.4f}  "
              f"dropped {row['dropped']}/{stats.n_tokens * stats.top_k}  top-1 "
              + " ".join(str(e) for e in row["top1"]))
    if args.out:
        print(f"wrote {args.out}")
    return 0
