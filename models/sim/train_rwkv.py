"""Trains rwkv-tiny (a transformers RwkvForCausalLM) on the four-domain corpus of the small MoE
models, deterministically from a seed, and reports its held-out loss per domain.

The recipe is train_mamba's, on the shared loop of training.run_steps: on one machine the same
seed gives the same weights (transformers' RWKV initialisation draws from torch's global
generator, seeded here; batches come from a seeded generator; torch runs on one thread). The loss is computed by rwkv_trace.forward, the function
the trace records, over the model's own parameters (the tests hold it to transformers' forward).

The defaults (2000 steps of 16 windows of 64 characters) took 171-178 s on the 2-core development
machine, one torch thread, ending at a training loss of 0.537 nats per character (held out: code
0.53, math 1.50, prose 0.36, chat 0.15); a second run wrote the same bytes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from llmviz.models.sim import moe_corpus, rwkv_trace
from llmviz.models.sim.rwkv_model import RwkvTinyConfig, build_model
from llmviz.models.sim.train_mamba import TrainResult
from llmviz.models.sim.train_nanogpt import warmup_cosine
from llmviz.models.sim.training import run_steps

DEFAULT_SEED = 0
DEFAULT_STEPS = 2000
# The recipe's numbers are train_mamba's, written out here so the shipped weights do not change
# when mamba-tiny's recipe does.
BATCH_SIZE = 16
CONTEXT = RwkvTinyConfig().context_length   # training window: the config's context_length
PEAK_LR = 4e-3
WARMUP_STEPS = 60
WEIGHT_DECAY = 0.1
CORPUS_CHARS = 100_000    # per domain, as for the MoE models
EVAL_SEED = 4321          # the report's corpus is drawn apart from the training text
EVAL_WINDOWS = 32         # per domain


def rwkv_adamw(model, lr: float):
    """AdamW with weight decay on the projection and embedding matrices only. The token-shift
    mixes are stored (1, 1, d_model), so a dim() >= 2 rule would decay them towards 0 (all
    previous token); the decay and bonus vectors and the LayerNorms are not decayed either.
    Betas (0.9, 0.99) as BlinkDL/RWKV-LM trains RWKV-4."""
    named = list(model.named_parameters())
    is_matrix = {n: n.endswith(".weight") and p.dim() == 2 for n, p in named}
    return torch.optim.AdamW([{"params": [p for n, p in named if is_matrix[n]], "weight_decay": WEIGHT_DECAY},
                              {"params": [p for n, p in named if not is_matrix[n]], "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.99))


def _lr(step: int, steps: int) -> float:
    return warmup_cosine(step, steps, PEAK_LR, min(WARMUP_STEPS, max(1, steps // 10)), 0.1)


def _loss(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits, _ = rwkv_trace.forward(model, x)
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
    opt = rwkv_adamw(model, PEAK_LR)

    def step_loss(step):
        x, y, _ = sampler.batch(BATCH_SIZE)
        loss = _loss(model, x, y)
        return loss, {"loss": loss.item()}, ""

    shown, seconds = run_steps(model, opt, steps, lambda step: _lr(step, steps), step_loss, log, log_every_s)
    loss_value = shown["loss"]
    return TrainResult(model, steps, loss_value, seconds, held_out_loss(model) if report else {})
