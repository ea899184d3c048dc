"""`llmviz generate`: runs a shipped model on an input headless and prints its continuation.

nano-gpt sorts six letters; the small text models of scan_cmd.STATE_SPACE_MODELS (mamba-tiny,
mamba2-tiny, rwkv-tiny, jamba-tiny: whatever that table lists, nothing here names one) continue a
text token by token in their recurrent form, the cache carried from step to step: for the recurrent
models a fixed state, so each new token costs the same time and memory; for the hybrid jamba-tiny
also its attention layer's keys and values, which gain a row per token.
"""
from __future__ import annotations

import json
import sys

from llmviz.scenes.cli.common import shown
from llmviz.scenes.cli.scan_cmd import CHUNK, STATE_SPACE_MODELS

GENERATORS = ("nano-gpt", *STATE_SPACE_MODELS)
MAX_TOKENS = 1000          # --max-tokens of the text models
DEFAULT_TOKENS = 64
# 0 is greedy; below MIN the tempered logits overflow float32 and the probabilities turn into NaN.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.01, 100.0
MAX_SEED = 2**63 - 1  # the bound the CLI has always had (numpy's generator, models/sim/sampling.py, takes any)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("generate", help="continue an input with a small shipped model (no display needed)",
                              description="Continue an input with a small shipped model, e.g. "
                                          "`llmviz generate --model nano-gpt --input CBABBC` prints ABBBCC.")
    p.add_argument("--model", default="nano-gpt", help="model: " + ", ".join(GENERATORS) + " (default nano-gpt)")
    p.add_argument("--input", default=None,
                   help="six letters from A/B/C for nano-gpt, e.g. CBABBC; a text to continue for the text models")
    p.add_argument("--max-tokens", default=None,
                   help=f"tokens the text models write, 1 to {MAX_TOKENS} (default {DEFAULT_TOKENS}); "
                        "nano-gpt always writes six")
    # Parsed in run() rather than by argparse so that every bad value gets one line, exit 2.
    p.add_argument("--temperature", default="0",
                   help=f"0 = greedy (default); {MIN_TEMPERATURE:g} to {MAX_TEMPERATURE:g} samples")
    p.add_argument("--seed", default="0", help="seed of the sampler when temperature > 0, 0 to 2^63-1 (default 0)")
    p.add_argument("--weights", default=None, help="safetensors file instead of the shipped weights")
    p.add_argument("--json", action="store_true", help="print a JSON object with per-step probabilities")
    p.set_defaults(func=run)


def _fail(message: str, code: int = 2) -> int:
    print(f"llmviz generate: error: {message}", file=sys.stderr)
    return code


def _sampling(args) -> tuple[float, int] | str:
    """(temperature, seed), or a one-line problem with them."""
    from llmviz.scenes.cli.common import parse_int

    try:
        temperature = float(args.temperature)
    except ValueError:
        return f"--temperature {shown(args.temperature)} is not a number"
    if not (temperature == 0 or MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE):
        return (f"--temperature must be 0 (greedy) or between {MIN_TEMPERATURE:g} and {MAX_TEMPERATURE:g}, "
                f"got {shown(args.temperature)}")
    try:
        return temperature, parse_int(args.seed, "--seed", 0, MAX_SEED)
    except ValueError as exc:
        return str(exc)


def run(args) -> int:
    from llmviz.models.sim import sort_task  # no torch: validation answers instantly

    if args.model not in GENERATORS:
        return _fail(f"unknown model {args.model!r}; available: {', '.join(GENERATORS)}")
    if args.model in STATE_SPACE_MODELS:
        return _run_text_model(args)
    if args.input is None:
        return _fail("--input is required, e.g. --input CBABBC")
    try:
        tokens = sort_task.parse_input(args.input)
    except sort_task.SortInputError as exc:
        return _fail(str(exc))
    sampling = _sampling(args)
    if isinstance(sampling, str):
        return _fail(sampling)
    temperature, seed = sampling
    if args.max_tokens is not None:
        return _fail(f"--max-tokens is for the text models ({', '.join(STATE_SPACE_MODELS)}); "
                     f"nano-gpt always writes {sort_task.INPUT_LENGTH} letters")

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


def generate_text(entry, model, input_ids: list[int], max_tokens: int, temperature: float = 0.0,
                  seed: int = 0) -> list[dict]:
    """Continues `input_ids`: the input goes through in chunks (its state carried), then each new token is
    one recurrent step from the state, so nothing is recomputed (a recurrent model's memory does not grow
    with the text; a hybrid's key/value cache grows by a row a token). Per step the chosen token
    and the distribution it came from (the plain softmax at temperature 0, else the tempered one that
    sampling.Sampler(seed) draws from, as nano-gpt and the window do)."""
    from llmviz.models.sim.sampling import Sampler, next_token_distribution

    sampler, state, logits = Sampler(seed), None, None
    for start in range(0, len(input_ids), CHUNK):
        logits, state = entry.run(model, input_ids[start:start + CHUNK], state)
    steps = []
    for i in range(max_tokens):
        probs = next_token_distribution(logits, temperature)
        token = sampler.pick(probs, temperature)
        steps.append({"token": token, "probs": probs.tolist()})
        if i + 1 < max_tokens:  # the last token's successor is not asked for
            logits, state = entry.step(model, token, state)
    return steps


def _run_text_model(args) -> int:
    from llmviz.scenes.cli.common import parse_int
    from llmviz.scenes.cli.scan_cmd import load_model, missing_module

    entry = STATE_SPACE_MODELS[args.model]
    if args.input is None:
        return _fail(f"--input is required, e.g. --input {shown('The old river ')}")
    try:
        max_tokens = parse_int(DEFAULT_TOKENS if args.max_tokens is None else args.max_tokens,
                               "--max-tokens", 1, MAX_TOKENS)
    except ValueError as exc:
        return _fail(str(exc))
    sampling = _sampling(args)
    if isinstance(sampling, str):
        return _fail(sampling)
    temperature, seed = sampling
    from llmviz.scenes.text_live import validate_text

    problem = validate_text(args.input, entry.max_input)
    if problem:
        return _fail(f"--input: {problem}")
    missing = missing_module(entry)
    if missing:
        return _fail(f"{args.model} needs {missing}; install it (pip install 'llmviz[dev]')")

    import torch

    torch.set_num_threads(1)  # one sequence of small matrices: one thread is fastest and leaves the rest free
    model, problem = load_model(entry, args.model, args.weights)
    if problem:
        return _fail(problem, 1)
    alphabet = entry.alphabet()
    input_ids = [alphabet.index(ch) for ch in args.input]
    steps = generate_text(entry, model, input_ids, max_tokens, temperature, seed)
    output_ids = [s["token"] for s in steps]
    output = "".join(alphabet[t] for t in output_ids)
    if args.json:
        print(json.dumps({
            "model": args.model, "input": args.input, "input_ids": input_ids,
            "output": output, "output_ids": output_ids,
            "temperature": temperature, "seed": seed, "max_tokens": max_tokens,
            "vocabulary": alphabet,  # probs[i] is the probability of vocabulary[i]
            "steps": [{"token": alphabet[s["token"]], "token_id": s["token"], "probs": s["probs"]} for s in steps],
        }))
    else:
        print(output)
    return 0
