"""Trains mamba-tiny (a transformers MambaForCausalLM) on the four-domain corpus of the small MoE
models, deterministically from a seed, and reports its held-out loss per domain.

On one machine the same seed gives the same weights: transformers' initialisation draws from
torch's global generator, seeded here; batches come from a seeded generator; torch runs on one
thread. The loss is computed by mamba_trace.forward, the function the trace records, over the
model's own parameters (the tests hold it to transformers' forward within 1e-5).

The defaults (1800 steps of 16 windows of 64 characters) took 180 s on the 2-core development
machine, one torch thread, ending at a training loss of 0.48 nats per character.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from llmviz.models.sim import mamba_trace, moe_corpus
from llmviz.models.sim.mamba_model import build_model
from llmviz.models.sim.train_nanogpt import warmup_cosine
from llmviz.models.sim.training import run_steps

DEFAULT_SEED = 0
DEFAULT_STEPS = 1800
BATCH_SIZE = 16
CONTEXT = 64              # training window; the model itself has no context limit
PEAK_LR = 4e-3
WARMUP_STEPS = 60
WEIGHT_DECAY = 0.1
CORPUS_CHARS = 100_000    # per domain, as for the MoE models
EVAL_SEED = 4321          # the report's corpus is drawn apart from the training text
EVAL_WINDOWS = 32         # per domain


@dataclass
class TrainResult:
    model: object             # transformers.MambaForCausalLM
    steps: int
    final_loss: float
    seconds: float
    eval_loss: dict[str, float]   # domain → held-out cross-entropy (nats per char)


def mamba_adamw(model, lr: float):
    """AdamW with train_nanogpt.gpt_adamw's betas and decay on matrices, except A_log: the
    state-spaces/mamba reference marks A_log (and D) _no_weight_decay, since decaying A_log
    drags every state's decay rate towards exp(-1) rather than towards zero."""
    named = list(model.named_parameters())
    decay = [p for n, p in named if p.dim() >= 2 and not n.endswith("A_log")]
    no_decay = [p for n, p in named if not (p.dim() >= 2 and not n.endswith("A_log"))]
    return torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95))


def _lr(step: int, steps: int) -> float:
    return warmup_cosine(step, steps, PEAK_LR, min(WARMUP_STEPS, max(1, steps // 10)), 0.1)


def _loss(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits, _ = mamba_trace.forward(model, x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


@torch.inference_mode()
def held_out_loss(model, seed: int = EVAL_SEED, windows: int = EVAL_WINDOWS) -> dict[str, float]:
    """Per domain, the cross-entropy on windows of a corpus drawn with another seed."""
    corpus = moe_corpus.build_corpus(seed, chars_per_domain=20_000)
    sampler = moe_corpus.WindowSampler(corpus, CONTEXT, seed)
    out = {}
    for domain in moe_corpus.DOMAINS:
        x, y, _ = sampler.batch(windows, domain)
        out[domain] = _loss(model, x, y).item()
    return out


def train(seed: int = DEFAULT_SEED, steps: int = DEFAULT_STEPS, log=print, log_every_s: float = 5.0,
          report: bool = True) -> TrainResult:
    """Trains from scratch; `log(line)` receives a progress line every `log_every_s` seconds."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    torch.set_num_threads(1)  # reproducibility and fairness to the render thread
    torch.manual_seed(seed)
    model = build_model()
    sampler = moe_corpus.WindowSampler(moe_corpus.build_corpus(seed, CORPUS_CHARS), CONTEXT, seed + 1)
    opt = mamba_adamw(model, PEAK_LR)

    def step_loss(step):
        x, y, _ = sampler.batch(BATCH_SIZE)
        loss = _loss(model, x, y)
        return loss, {"loss": loss.item()}, ""

    shown, seconds = run_steps(model, opt, steps, lambda step: _lr(step, steps), step_loss, log, log_every_s)
    loss_value = shown["loss"]
    return TrainResult(model, steps, loss_value, seconds, held_out_loss(model) if report else {})
