"""Trains induction-2l (induction_model.py, transformers' SmolLM3ForCausalLM) on the induction task
(induction_task.py), deterministically from a seed, and reports how well it predicts recurring spans at
its training length and at 16 times that.

The schedule, AdamW groups and loop are training.py's (a CorpusRecipe instance and run_steps); the
batches are fresh sequences from a numpy generator seeded with seed + 1, the loss only on the positions a
copy determines. `python -m llmviz.models.sim.train_induction [OUT]` trains the defaults and writes them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from llmviz.models.sim import induction_task, training
# the config class is re-exported: `llmviz train` reads a model module's *TinyConfig for its banner
from llmviz.models.sim.induction_model import InductionTinyConfig, build_model, save_safetensors  # noqa: F401
from llmviz.models.sim.induction_model import TRAINING_LENGTH, shipped_weights_path  # noqa: F401

DEFAULT_SEED = training.DEFAULT_SEED
DEFAULT_STEPS = 1100
# Fresh sequences every step, so there is nothing to overfit: no weight decay. Measured on the 2-core machine
# (loaded): 600 steps of 32 sequences at lr 3e-3 took 280 s for 87% at 256 tokens and 73% at 4,096; 1100
# steps of 16 at 4e-3 took 275 s for 96% and 82%: more, smaller steps win in the same time.
RECIPE = training.CorpusRecipe(batch_size=16, context=TRAINING_LENGTH, peak_lr=4e-3, warmup_steps=40,
                               weight_decay=0.0)
BATCH_SIZE, CONTEXT = RECIPE.batch_size, RECIPE.context   # what `llmviz train` prints
REPORT_LENGTHS = (CONTEXT, 16 * CONTEXT)


@dataclass
class InductionResult(training.TrainResult):
    accuracy: dict = None   # sequence length -> share of predictable positions predicted (greedy)


@torch.inference_mode()
def induction_accuracy(model, length: int, seed: int = induction_task.HELD_OUT_SEED) -> float:
    """Greedy accuracy on the predictable positions of one held-out sequence of `length` tokens."""
    tokens, predictable = induction_task.long_sequence(length, seed)
    logits = model(torch.from_numpy(tokens)[None]).logits[0]
    return induction_task.accuracy(logits.argmax(-1).numpy(), tokens, predictable)


def train(seed: int = DEFAULT_SEED, steps: int = DEFAULT_STEPS, log=print, log_every_s: float = 5.0,
          report: bool = True) -> InductionResult:
    """Trains a fresh model from `seed`; `log(line)` receives a progress line every `log_every_s` seconds;
    with `report`, the held-out loss and accuracy at REPORT_LENGTHS."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    torch.set_num_threads(1)   # as training.corpus_setup: reproducibility, and a core left for others
    torch.manual_seed(seed)
    model = build_model(attention="sdpa")   # the same maths as eager, faster to train
    rng = np.random.default_rng(seed + 1)
    opt = RECIPE.adamw(model)

    def step_loss(step):
        x, y = (torch.from_numpy(a) for a in induction_task.batch(RECIPE.batch_size, RECIPE.context, rng))
        logits = model(x).logits
        loss = training.cross_entropy(logits, y)   # ignore_index: only the predictable positions count
        scored = y != induction_task.IGNORE_INDEX
        hit = (logits.detach().argmax(-1) == y)[scored].float().mean().item()
        return loss, {"loss": loss.item(), "acc": hit}, ""

    shown, seconds = training.run_steps(model, opt, steps, lambda step: RECIPE.lr(step, steps), step_loss, log,
                                        log_every_s)
    eval_loss, accuracy = {}, {}
    if report:
        x, y = (torch.from_numpy(a) for a in induction_task.batch(8, CONTEXT, np.random.default_rng(
            induction_task.HELD_OUT_SEED)))
        with torch.inference_mode():
            eval_loss = {"induction": training.cross_entropy(model(x).logits, y).item()}
        accuracy = {length: induction_accuracy(model, length) for length in REPORT_LENGTHS}
    return InductionResult(model, steps, shown["loss"], seconds, eval_loss, accuracy)


def report_lines(result: InductionResult, config=None) -> list[str]:
    """What `llmviz train` prints after training: the accuracy per length."""
    return [f"recurring-span accuracy at {length:,} tokens: {100 * acc:.1f}%" for length, acc in result.accuracy.items()]


def main(argv=None) -> int:
    import sys

    args = sys.argv[1:] if argv is None else argv
    out = args[0] if args else str(shipped_weights_path())
    result = train()
    save_safetensors(result.model, out, {"seed": DEFAULT_SEED, "steps": DEFAULT_STEPS, "task": "induction"})
    print(f"trained in {result.seconds:.1f}s, final loss {result.final_loss:.4g}; " + "; ".join(report_lines(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
