"""The optimisation loop every small model trained here shares: schedule, step, clip, and a progress line."""
from __future__ import annotations

import time
from typing import Callable

import torch

CLIP_NORM = 1.0  # gradient-norm clip of every recipe here


def run_steps(model, opt, steps: int, lr_at: Callable[[int], float], step_loss, log=print,
              log_every_s: float = 5.0) -> tuple[dict[str, float], float]:
    """Runs `steps` optimizer steps; returns the last step's shown values and the seconds taken.

    ``step_loss(step)`` computes one batch: (the loss to minimise, {name: value} to report, a note for the
    progress line or ""). ``log(line)`` receives a progress line every ``log_every_s`` seconds and after
    the last step, so a long run always shows that it is moving.
    """
    model.train()
    start = last_log = time.perf_counter()
    shown: dict[str, float] = {}
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        loss, shown, note = step_loss(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
        opt.step()
        now = time.perf_counter()
        if now - last_log >= log_every_s or step == steps - 1:
            values = "  ".join(f"{name} {value:.4f}" for name, value in shown.items())
            log(f"step {step + 1:5d}/{steps}  {values}{'  ' + note if note else ''}  elapsed {now - start:6.1f}s")
            last_log = now
    seconds = time.perf_counter() - start
    model.eval()
    return shown, seconds
