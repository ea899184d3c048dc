"""Trains mamba-tiny (a transformers MambaForCausalLM) on the four-domain corpus of the small MoE
models, deterministically from a seed, and reports its held-out loss per domain.

The recipe, set-up and loop are training.py's (CorpusRecipe's defaults are this model's recipe): on
one machine the same seed gives the same weights. The loss is computed by mamba_trace.forward, the
function the trace records, over the model's own parameters (the tests hold it to transformers'
forward within 1e-5).

The defaults (1800 steps of 16 windows of 64 characters) took 180 s on the 2-core development
machine, one torch thread, ending at a training loss of 0.48 nats per character.
"""
from __future__ import annotations

from llmviz.models.sim import mamba_trace, training
from llmviz.models.sim.mamba_model import build_model
from llmviz.models.sim.training import DEFAULT_SEED

DEFAULT_STEPS = 1800
# AdamW's betas (0.9, 0.95) and decay on matrices but not A_log (training.decay_but_A_log)
RECIPE = training.CorpusRecipe()
BATCH_SIZE, CONTEXT = RECIPE.batch_size, RECIPE.context   # what `llmviz train` prints
_loss = training.traced_loss(mamba_trace.forward)
train = training.corpus_trainer(build_model, _loss, RECIPE, DEFAULT_SEED, DEFAULT_STEPS)
