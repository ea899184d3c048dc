"""`llmviz generate`: runs a shipped model on an input headless and prints its continuation."""
from __future__ import annotations

import json
import math
import sys

GENERATORS = ("nano-gpt",)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("generate", help="continue an input with a small shipped model (no display needed)",
                              description="Continue an input with a small shipped model, e.g. "
                                          "`llmviz generate --model nano-gpt --input CBABBC` prints ABBBCC.")
    p.add_argument("--model", default="nano-gpt", help="model: " + ", ".join(GENERATORS) + " (default nano-gpt)")
    p.add_argument("--input", default=None, help="six letters from A/B/C for nano-gpt, e.g. CBABBC")
    # Parsed in run() rather than by argparse so that every bad value gets one line, exit 2.
    p.add_argument("--temperature", default="0", help="0 = greedy (default); above 0 samples")
    p.add_argument("--seed", default="0", help="seed of the sampler when temperature > 0 (default 0)")
    p.add_argument("--weights", default=None, help="safetensors file instead of the shipped weights")
    p.add_argument("--json", action="store_true", help="print a JSON object with per-step probabilities")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"llmviz generate: error: {message}", file=sys.stderr)
    return 2


def run(args) -> int:
    from llmviz.models.sim import sort_task  # no torch: validation answers instantly

    if args.model not in GENERATORS:
        return _fail(f"unknown model {args.model!r}; available: {', '.join(GENERATORS)}")
    if args.input is None:
        return _fail("--input is required, e.g. --input CBABBC")
    try:
        tokens = sort_task.parse_input(args.input)
    except sort_task.SortInputError as exc:
        return _fail(str(exc))
    try:
        temperature = float(args.temperature)
    except ValueError:
        return _fail(f"--temperature {args.temperature!r} is not a number")
    if not math.isfinite(temperature) or temperature < 0:
        return _fail(f"--temperature must be a finite number >= 0, got {args.temperature}")
    try:
        seed = int(args.seed)
    except ValueError:
        return _fail(f"--seed {args.seed!r} is not an integer")

    import torch
    from llmviz.models.sim.nanogpt import load_nanogpt

    torch.set_num_threads(1)  # 6 steps on 11 tokens: one thread is fastest and leaves the rest free
    try:
        model = load_nanogpt(args.weights)
    except Exception as exc:  # missing or corrupt weights file: one line, not a traceback
        print(f"llmviz generate: error: cannot load weights: {type(exc).__name__}: {exc}".splitlines()[0],
              file=sys.stderr)
        return 1
    steps = model.generate(tokens, sort_task.INPUT_LENGTH, temperature=temperature, seed=seed)
    output = sort_task.decode(s["token"] for s in steps)
    if args.json:
        print(json.dumps({
            "model": args.model, "input": args.input, "output": output,
            "temperature": temperature, "seed": seed,
            "steps": [{"token": sort_task.ALPHABET[s["token"]],
                       "probs": dict(zip(sort_task.ALPHABET, s["probs"]))} for s in steps],
        }, indent=2))
    else:
        print(output)
    return 0
