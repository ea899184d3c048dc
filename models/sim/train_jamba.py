"""Trains jamba-tiny (a transformers JambaForCausalLM) on the four-domain corpus of the small MoE
models, deterministically from a seed, with the router's load-balancing loss, and reports its
held-out loss per domain and how each domain is routed.

On one machine the same seed gives the same weights: transformers' initialisation draws from
torch's global generator, seeded here; batches come from a seeded generator; torch runs on one
thread. The loss is computed by jamba_trace.forward, the function the trace records, over the
model's own parameters (the tests hold it to transformers' forward within 1e-5): cross-entropy
plus AUX_LOSS_COEF × transformers' load_balancing_loss_func over the MoE layers' router logits
(routing.mixtral_load_balancing_loss, the same number; uniform routing gives top_k).

The defaults (1000 steps of 16 windows of 64 characters) took 213 s on the 2-core development
machine, one torch thread, ending at a training loss of 0.77 nats per character (held out: code
0.55, math 1.53, prose 0.37, chat 0.16).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from llmviz.models.sim import jamba_trace, moe_corpus, routing
from llmviz.models.sim.jamba_model import AUX_LOSS_COEF, build_model
from llmviz.models.sim.train_mamba import mamba_adamw
from llmviz.models.sim.train_nanogpt import warmup_cosine

DEFAULT_SEED = 0
DEFAULT_STEPS = 1000
BATCH_SIZE = 16
CONTEXT = 64              # training window; the model itself has no context limit
PEAK_LR = 4e-3
WARMUP_STEPS = 60
CORPUS_CHARS = 100_000    # per domain, as for the MoE models
EVAL_SEED = 4321          # the report's corpus is drawn apart from the training text
EVAL_WINDOWS = 32         # per domain


@dataclass
class TrainResult:
    model: object             # transformers.JambaForCausalLM
    steps: int
    final_loss: float         # cross-entropy of the last batch (nats per char), without the aux term
    final_aux: float          # load-balancing loss of the last batch, without its coefficient
    seconds: float
    eval_loss: dict[str, float]                 # domain → held-out cross-entropy (nats per char)
    top1_share: list[dict[str, list[float]]]    # per MoE layer, domain → share of tokens per top-1 expert


def _lr(step: int, steps: int) -> float:
    return warmup_cosine(step, steps, PEAK_LR, min(WARMUP_STEPS, max(1, steps // 10)), 0.1)


def _losses(model, x: torch.Tensor, y: torch.Tensor):
    logits, _, router_logits = jamba_trace.forward(model, x)
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    aux = routing.mixtral_load_balancing_loss(router_logits, model.config.num_experts_per_tok)
    return ce, aux, router_logits


@torch.inference_mode()
def held_out_report(model, seed: int = EVAL_SEED, windows: int = EVAL_WINDOWS):
    """Per domain, the cross-entropy on windows of a corpus drawn with another seed, and per MoE
    layer the share of that domain's tokens whose top-1 expert is e."""
    corpus = moe_corpus.build_corpus(seed, chars_per_domain=20_000)
    sampler = moe_corpus.WindowSampler(corpus, CONTEXT, seed)
    n_moe = sum(moe for _, moe in jamba_trace.layer_kinds(model))
    losses: dict[str, float] = {}
    shares: list[dict[str, list[float]]] = [{} for _ in range(n_moe)]
    for domain in moe_corpus.DOMAINS:
        x, y, _ = sampler.batch(windows, domain)
        ce, _, router_logits = _losses(model, x, y)
        losses[domain] = ce.item()
        for layer, logits in enumerate(router_logits):
            counts = torch.bincount(logits.argmax(dim=-1), minlength=logits.shape[-1]).float()
            shares[layer][domain] = (counts / counts.sum()).tolist()
    return losses, shares


def train(seed: int = DEFAULT_SEED, steps: int = DEFAULT_STEPS, log=print, log_every_s: float = 5.0,
          report: bool = True) -> TrainResult:
    """Trains from scratch; `log(line)` receives a progress line every `log_every_s` seconds."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    torch.set_num_threads(1)  # reproducibility and fairness to the render thread
    torch.manual_seed(seed)
    model = build_model()
    sampler = moe_corpus.WindowSampler(moe_corpus.build_corpus(seed, CORPUS_CHARS), CONTEXT, seed + 1)
    # AdamW as for mamba-tiny: decay on matrices (the fused experts and the router too), not on A_log
    opt = mamba_adamw(model, PEAK_LR)
    model.train()
    start = last_log = time.perf_counter()
    loss_value = aux_value = float("nan")
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = _lr(step, steps)
        x, y, _ = sampler.batch(BATCH_SIZE)
        ce, aux, _ = _losses(model, x, y)
        loss = ce + AUX_LOSS_COEF * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss_value, aux_value = ce.item(), aux.item()
        now = time.perf_counter()
        if now - last_log >= log_every_s or step == steps - 1:
            log(f"step {step + 1:5d}/{steps}  loss {loss_value:.4f}  aux {aux_value:.4f} "
                f"(uniform = {model.config.num_experts_per_tok})  elapsed {now - start:6.1f}s")
            last_log = now
    seconds = time.perf_counter() - start
    model.eval()
    losses, shares = held_out_report(model) if report else ({}, [])
    return TrainResult(model, steps, loss_value, aux_value, seconds, losses, shares)
