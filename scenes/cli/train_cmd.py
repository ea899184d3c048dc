"""`llmviz train nano-gpt`: reproduces the shipped sort-model weights from a seed, headless."""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

TRAINABLE = ("nano-gpt",)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a small shipped model from a seed (no display needed)",
                              description="Train a small shipped model deterministically from a seed.")
    p.add_argument("model", help="model to train: " + ", ".join(TRAINABLE))
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the shipped weights' seed)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the shipped recipe)")
    p.add_argument("--out", default=None,
                   help="safetensors file to write (default: the package's assets/weights/nano-gpt.safetensors)")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"llmviz train: error: {message}", file=sys.stderr)
    return 2


def run(args) -> int:
    if args.model not in TRAINABLE:
        return _fail(f"unknown model {args.model!r}; trainable: {', '.join(TRAINABLE)}")
    if args.steps is not None and args.steps < 1:
        return _fail("--steps must be at least 1")
    # torch loads here, not at import, so `llmviz --help` and other commands stay fast.
    from llmviz.models.sim import sort_task, train_nanogpt
    from llmviz.models.sim.nanogpt import save_safetensors, shipped_weights_path

    if args.out is not None:
        out = Path(args.out)
    else:
        shipped = shipped_weights_path()
        if not isinstance(shipped, Path):  # installed inside a zip: there is no file to overwrite
            return _fail("the package's assets are not a folder; pass --out PATH")
        out = shipped
    seed = train_nanogpt.DEFAULT_SEED if args.seed is None else args.seed
    steps = train_nanogpt.DEFAULT_STEPS if args.steps is None else args.steps
    print(f"training nano-gpt (sort task) seed {seed}, {steps} steps, batch {train_nanogpt.BATCH_SIZE}, "
          f"1 torch thread", flush=True)
    result = train_nanogpt.train(seed=seed, steps=steps, log=lambda line: print(line, flush=True))
    try:
        save_safetensors(result.model, out, {"seed": seed, "steps": steps})
    except OSError as exc:
        print(f"llmviz train: error: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    _, held = sort_task.split_inputs()
    digest = hashlib.sha256(out.read_bytes()).hexdigest()[:16]
    print(f"trained in {result.seconds:.1f}s, final loss {result.final_loss:.4g}")
    print(f"held-out accuracy: {100 * result.held_out_accuracy:.1f}% of {train_nanogpt.EVAL_SAMPLES} random "
          f"held-out inputs (drawn from {len(held)} inputs never trained on), greedy decoding")
    print(f"all {len(sort_task.all_inputs())} inputs: {100 * result.all_inputs_accuracy:.1f}% sorted exactly")
    print(f"saved {out} (sha256 {digest}...)")
    return 0
