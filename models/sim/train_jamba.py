"""Trains jamba-tiny (a transformers JambaForCausalLM) on the four-domain corpus of the small MoE
models, deterministically from a seed, with the router's load-balancing loss, and reports its
held-out loss per domain and how each domain is routed.

The recipe is mamba-tiny's (train_mamba.RECIPE: AdamW with decay on matrices, the fused experts and
the router too, not on A_log) on training.py's set-up and loop: on one machine the same seed gives
the same weights. The loss is computed by jamba_trace.forward, the function the trace records, over
the model's own parameters (the tests hold it to transformers' forward within 1e-5): cross-entropy
plus AUX_LOSS_COEF × transformers' load_balancing_loss_func over the MoE layers' router logits
(routing.mixtral_load_balancing_loss, the same number; uniform routing gives top_k).

The defaults (1000 steps of 16 windows of 64 characters) took 213 s on the 2-core development
machine, one torch thread, ending at a training loss of 0.77 nats per character (held out: code
0.55, math 1.53, prose 0.37, chat 0.16).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from llmviz.models.sim import jamba_trace, routing, training
from llmviz.models.sim.jamba_model import AUX_LOSS_COEF, build_model
from llmviz.models.sim.train_mamba import RECIPE
from llmviz.models.sim.training import DEFAULT_SEED

DEFAULT_STEPS = 1000
BATCH_SIZE, CONTEXT = RECIPE.batch_size, RECIPE.context   # what `llmviz train` prints


@dataclass
class TrainResult(training.TrainResult):
    final_aux: float                            # load-balancing loss of the last batch, without its coefficient
    top1_share: list[dict[str, list[float]]]    # per MoE layer, domain → share of tokens per top-1 expert


def _losses(model, x: torch.Tensor, y: torch.Tensor):
    logits, _, router_logits = jamba_trace.forward(model, x)
    aux = routing.mixtral_load_balancing_loss(router_logits, model.config.num_experts_per_tok)
    return training.cross_entropy(logits, y), aux, router_logits


@torch.inference_mode()
def held_out_report(model, recipe: training.CorpusRecipe = RECIPE):
    """Per domain, the cross-entropy on the held-out windows (training.held_out_batches), and per MoE
    layer the share of that domain's tokens whose top-1 expert is e."""
    n_moe = sum(moe for _, moe in jamba_trace.layer_kinds(model))
    losses: dict[str, float] = {}
    shares: list[dict[str, list[float]]] = [{} for _ in range(n_moe)]
    for domain, x, y in training.held_out_batches(recipe):
        ce, _, router_logits = _losses(model, x, y)
        losses[domain] = ce.item()
        for layer, logits in enumerate(router_logits):
            counts = torch.bincount(logits.argmax(dim=-1), minlength=logits.shape[-1]).float()
            shares[layer][domain] = (counts / counts.sum()).tolist()
    return losses, shares


def train(seed: int = DEFAULT_SEED, steps: int = DEFAULT_STEPS, log=print, log_every_s: float = 5.0,
          report: bool = True) -> TrainResult:
    """Trains from scratch; `log(line)` receives a progress line every `log_every_s` seconds."""
    model, sampler, opt = training.corpus_setup(build_model, RECIPE, seed, steps)
    uniform = f"(uniform = {model.config.num_experts_per_tok})"

    def step_loss(step):
        x, y, _ = sampler.batch(RECIPE.batch_size)
        ce, aux, _ = _losses(model, x, y)
        # the progress line and the result show the cross-entropy without the aux term
        return ce + AUX_LOSS_COEF * aux, {"loss": ce.item(), "aux": aux.item()}, uniform

    shown, seconds = training.run_steps(model, opt, steps, lambda step: RECIPE.lr(step, steps), step_loss, log,
                                        log_every_s)
    losses, shares = held_out_report(model) if report else ({}, [])
    return TrainResult(model, steps, shown["loss"], seconds, losses, shown["aux"], shares)
