"""Trains the small MoE models (moe-4, moe-8) on the four-domain corpus, deterministically from a
seed, with transformers' Mixtral load-balancing loss, and reports how each domain is routed.

On one machine the same seed gives the same weights: seeded generators, one torch thread.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from llmviz.models.sim import moe_corpus, routing
from llmviz.models.sim.moe_model import MoEGPT, variant_config
from llmviz.models.sim.train_nanogpt import gpt_adamw, warmup_cosine
from llmviz.models.sim.training import run_steps

DEFAULT_SEED = 0
DEFAULT_STEPS = 2500
BATCH_SIZE = 32
PEAK_LR = 3e-3
WARMUP_STEPS = 100
AUX_LOSS_COEF = 0.01      # Switch's α; Mixtral ships 0.001, too weak to balance a run this short
CORPUS_CHARS = 100_000    # per domain
EVAL_SEED = 4321          # the report's corpus is drawn apart from the training text
EVAL_WINDOWS = 64         # per domain


@dataclass
class TrainResult:
    model: MoEGPT
    steps: int
    final_loss: float
    final_aux: float
    seconds: float
    eval_loss: dict[str, float]                 # domain → held-out cross-entropy (nats per char)
    top1_share: list[dict[str, list[float]]]    # per layer, domain → share of tokens per top-1 expert


def _lr(step: int, steps: int) -> float:
    return warmup_cosine(step, steps, PEAK_LR, WARMUP_STEPS, 0.1)


@torch.inference_mode()
def routing_report(model: MoEGPT, seed: int = EVAL_SEED, windows: int = EVAL_WINDOWS):
    """Per domain: held-out loss, and per layer the share of its tokens whose top-1 expert is e."""
    model.eval()
    corpus = moe_corpus.build_corpus(seed, chars_per_domain=20_000)
    losses: dict[str, float] = {}
    shares: list[dict[str, list[float]]] = [{} for _ in range(model.cfg.n_layers)]
    sampler = moe_corpus.WindowSampler(corpus, model.cfg.context_length, seed)
    for domain in moe_corpus.DOMAINS:
        x, y, _ = sampler.batch(windows, domain)
        logits, records = model(x)
        losses[domain] = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)).item()
        for layer, rec in enumerate(records):
            counts = torch.bincount(rec.topk[:, 0], minlength=model.cfg.n_experts).float()
            shares[layer][domain] = (counts / counts.sum()).tolist()
    return losses, shares


def format_report(shares: list[dict[str, list[float]]]) -> list[str]:
    """Lines of a table: per layer and domain, the percentage of tokens whose top-1 is each expert."""
    lines = []
    for layer, table in enumerate(shares):
        n = len(next(iter(table.values())))
        lines.append(f"layer {layer}: % of each domain's tokens whose top-1 expert is")
        lines.append("  domain " + "".join(f"{'e' + str(e):>7}" for e in range(n)))
        for domain, row in table.items():
            lines.append(f"  {domain:<7}" + "".join(f"{100 * s:7.1f}" for s in row))
    return lines


def train(variant: str, seed: int = DEFAULT_SEED, steps: int = DEFAULT_STEPS, log=print,
          log_every_s: float = 5.0, report: bool = True) -> TrainResult:
    """Trains from scratch; `log(line)` receives a progress line every `log_every_s` seconds."""
    torch.set_num_threads(1)  # reproducibility and fairness to the render thread
    torch.manual_seed(seed)
    cfg = variant_config(variant)
    model = MoEGPT(cfg)
    sampler = moe_corpus.WindowSampler(moe_corpus.build_corpus(seed, CORPUS_CHARS), cfg.context_length, seed + 1)
    opt = gpt_adamw(model, PEAK_LR)

    def step_loss(step):
        x, y, _ = sampler.batch(BATCH_SIZE)
        logits, records = model(x)
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        # transformers' Mixtral loss over all layers' router logits together, as its trainer computes it
        aux = routing.mixtral_load_balancing_loss([r.logits for r in records], cfg.top_k)
        note = f"(uniform aux = {cfg.top_k})  max load CV {max(r.load_cv for r in records):.2f}"
        return ce + AUX_LOSS_COEF * aux, {"loss": ce.item(), "aux": aux.item()}, note

    shown, seconds = run_steps(model, opt, steps, lambda step: _lr(step, steps), step_loss, log, log_every_s)
    loss_value, aux_value = shown["loss"], shown["aux"]
    losses, shares = routing_report(model) if report else ({}, [])
    return TrainResult(model, steps, loss_value, aux_value, seconds, losses, shares)
