"""`llmviz generate`: runs a shipped model on an input headless and prints its continuation."""
from __future__ import annotations

import json
import sys

from llmviz.scenes.cli.common import shown

GENERATORS = ("nano-gpt",)
# 0 is greedy; below MIN the tempered logits overflow float32 and the probabilities turn into NaN.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.01, 100.0
MAX_SEED = 2**63 - 1  # the bound the CLI has always had (numpy's generator, models/sim/sampling.py, takes any)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("generate", help="continue an input with a small shipped model (no display needed)",
                              description="Continue an input with a small shipped model, e.g. "
                                          "`llmviz generate --model nano-gpt --input CBABBC` prints ABBBCC.")
    p.add_argument("--model", default="nano-gpt", help="model: " + ", ".join(GENERATORS) + " (default nano-gpt)")
    p.add_argument("--input", default=None, help="six letters from A/B/C for nano-gpt, e.g. CBABBC")
    # Parsed in run() rather than by argparse so that every bad value gets one line, exit 2.
    p.add_argument("--temperature", default="0",
                   help=f"0 = greedy (default); {MIN_TEMPERATURE:g} to {MAX_TEMPERATURE:g} samples")
    p.add_argument("--seed", default="0", help=f"seed of the sampler when temperature > 0, 0 to 2^63-1 (default 0)")
    p.add_argument("--weights", default=None, help="safetensors file instead of the shipped weights")
    p.add_argument("--json", action="store_true", help="print a JSON object with per-step probabilities")
    p.set_defaults(func=run)


def _fail(message: str, code: int = 2) -> int:
    print(f"llmviz generate: error: {message}", file=sys.stderr)
    return code


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
    from llmviz.scenes.cli.common import parse_int

    try:
        temperature = float(args.temperature)
    except ValueError:
        return _fail(f"--temperature {shown(args.temperature)} is not a number")
    if not (temperature == 0 or MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE):
        return _fail(f"--temperature must be 0 (greedy) or between {MIN_TEMPERATURE:g} and {MAX_TEMPERATURE:g}, "
                     f"got {shown(args.temperature)}")
    try:
        seed = parse_int(args.seed, "--seed", 0, MAX_SEED)
    except ValueError as exc:
        return _fail(str(exc))

    import torch
    from llmviz.models.sim.nanogpt import load_nanogpt

    torch.set_num_threads(1)  # 6 steps on 11 tokens: one thread is fastest and leaves the rest free
    from llmviz.models.sim.weights_file import WeightsError

    try:
        model = load_nanogpt(args.weights)
    except WeightsError as exc:  # names the file and the tensor
        return _fail(f"cannot load weights: {exc}", 1)
    except Exception as exc:  # anything else a broken file provokes: still one line naming it
        return _fail(f"cannot load weights {args.weights or 'shipped'}: {type(exc).__name__}: {exc}".splitlines()[0], 1)
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
