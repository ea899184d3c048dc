"""Trains the nano-GPT on the sort task, deterministically from a seed, and evaluates it.

The shipped weights (assets/weights/nano-gpt.safetensors) are `train(seed=DEFAULT_SEED)`
with the defaults below; on one machine the same seed gives bit-identical weights because
every random draw comes from seeded generators and torch runs on a single thread.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from llmviz.models.sim import sort_task
from llmviz.models.sim.nanogpt import NanoGPT, NanoGPTConfig
from llmviz.models.sim.training import run_steps

DEFAULT_SEED = 0
DEFAULT_STEPS = 1000
BATCH_SIZE = 128
PEAK_LR = 3e-3
WARMUP_STEPS = 100
EVAL_SEED = 1234          # the held-out draw is fixed, whatever the training seed
EVAL_SAMPLES = 1000


@dataclass
class TrainResult:
    model: NanoGPT
    steps: int
    final_loss: float
    seconds: float
    held_out_accuracy: float   # share of EVAL_SAMPLES random held-out inputs sorted exactly
    all_inputs_accuracy: float  # share of all 729 inputs sorted exactly


def _tensors(inputs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = [sort_task.example(x) for x in inputs]
    return (torch.tensor([p[0] for p in pairs], dtype=torch.long),
            torch.tensor([p[1] for p in pairs], dtype=torch.long))


def warmup_cosine(step: int, steps: int, peak: float, warmup: int, floor: float) -> float:
    """Linear warm-up to ``peak``, then cosine decay to ``floor`` × peak: the usual GPT schedule."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (floor + (1.0 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def gpt_adamw(model, lr: float):
    """AdamW as in GPT-2/minGPT: weight decay only on matrices (decaying gains and biases hurts)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95))


def _lr(step: int, steps: int) -> float:
    # Decay to 5% of the peak: here that ends training in a sharp minimum where every held-out
    # input sorts correctly.
    return warmup_cosine(step, steps, PEAK_LR, WARMUP_STEPS, 0.05)


def held_out_sample(n: int = EVAL_SAMPLES, seed: int = EVAL_SEED) -> torch.Tensor:
    """(n, 6) inputs drawn with replacement from the held-out quarter of all inputs."""
    _, held = sort_task.split_inputs()
    pick = torch.randint(len(held), (n,), generator=torch.Generator().manual_seed(seed))
    return torch.tensor(held, dtype=torch.long)[pick]


def sort_accuracy(model: NanoGPT, inputs: torch.Tensor) -> float:
    """Share of rows that greedy decoding sorts exactly (all six letters right)."""
    got = model.eval().sort_greedy(inputs)
    return (got == inputs.sort(dim=1).values).all(dim=1).float().mean().item()


def train(seed: int = DEFAULT_SEED, steps: int = DEFAULT_STEPS, log=print, log_every_s: float = 2.0,
          record=None) -> TrainResult:
    """Trains from scratch; `log(line)` receives a progress line every `log_every_s` seconds. ``record``
    (a models.sim.nanogpt_record.Recorder) receives every step's loss and the weights at its chosen steps,
    without changing the training (it draws no random numbers)."""
    torch.set_num_threads(1)  # reproducibility (fixed reduction order) and fairness to the render thread
    torch.manual_seed(seed)
    model = NanoGPT(NanoGPTConfig())
    train_inputs, _ = sort_task.split_inputs()
    xs, ys = _tensors(train_inputs)
    batch_gen = torch.Generator().manual_seed(seed + 1)

    opt = gpt_adamw(model, PEAK_LR)

    def step_loss(step):
        if record is not None:
            record.snapshot(step, model)  # the weights this step's forward pass uses
        pick = torch.randint(len(xs), (BATCH_SIZE,), generator=batch_gen)
        logits = model(xs[pick])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ys[pick].reshape(-1),
                               ignore_index=sort_task.IGNORE_INDEX)
        if record is not None:
            record.loss(step, loss.item())
        return loss, {"loss": loss.item()}, ""

    shown, seconds = run_steps(model, opt, steps, lambda step: _lr(step, steps), step_loss, log, log_every_s)
    if record is not None:
        record.snapshot(steps, model)  # the trained weights
    loss_value = shown["loss"]
    held = sort_accuracy(model, held_out_sample())
    everything = sort_accuracy(model, torch.tensor(sort_task.all_inputs(), dtype=torch.long))
    return TrainResult(model, steps, loss_value, seconds, held, everything)
