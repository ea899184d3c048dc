"""Benchmark: whisper-tiny's training step with its batch made on the other core (training.Prefetch, as
`llmviz train whisper-tiny` runs) against the batch made in the step itself, the two alternating in blocks in
one run, on the same model, stream and phase-2 augmentation.

    .venv/bin/python benchmarks/whisper_train_steps.py [--blocks 6] [--steps 40] [--pool 300]
        (prints JSON: the median seconds per step of each way, and their ratio)

The pool is synthesised with espeak-ng (the wide pool's voices; cached in the temporary folder as training's
pools are). Figures, not assertions.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

import numpy as np
import torch


class _Inline:
    """The batch made when the step asks for it: the loop before the prefetch."""

    def __init__(self, make):
        self.next = make


def main() -> None:
    from llmviz.models.sim import speech_digits, train_whisper, training

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=6, help="blocks of each way, alternating")
    parser.add_argument("--steps", type=int, default=40, help="steps in a block")
    parser.add_argument("--pool", type=int, default=300, help="utterances synthesised for the stream")
    args = parser.parse_args()
    torch.set_num_threads(1)
    digits, speech = speech_digits.utterance_pool(7, args.pool, log=None, kind=speech_digits.WIDE)
    torch.manual_seed(0)
    model = train_whisper.build_model()
    phase = dataclasses.replace(train_whisper.FINE_TUNE, steps=args.steps)
    stream = speech_digits.ClipStream(digits, speech, 1)
    make = train_whisper.batch_maker(stream, phase, np.random.default_rng(2), model.config.max_source_positions)
    per_step: dict[str, list[float]] = {"prefetched": [], "inline": []}
    for block in range(2 * args.blocks):
        way = "prefetched" if block % 2 else "inline"
        batches = training.Prefetch(make, args.steps) if way == "prefetched" else _Inline(make)
        opt = phase.recipe.adamw(model)
        start = time.perf_counter()
        training.run_steps(model, opt, args.steps, lambda step: phase.recipe.lr(step, args.steps),
                           train_whisper.step_loss_fn(model, batches, phase), log=lambda line: None,
                           log_every_s=1e9)
        per_step[way].append((time.perf_counter() - start) / args.steps)
        if way == "prefetched":
            batches.close()
    medians = {way: statistics.median(v) for way, v in per_step.items()}
    print(json.dumps({"seconds_per_step_median": medians, "blocks": args.blocks, "steps_per_block": args.steps,
                      "inline_over_prefetched": medians["inline"] / medians["prefetched"],
                      "seconds_per_step": per_step}, indent=2))


if __name__ == "__main__":
    main()
