"""Trains mamba2-tiny (a transformers Mamba2ForCausalLM) on the four-domain corpus of the small MoE
models, deterministically from a seed, and reports its held-out loss per domain.

The recipe is mamba-tiny's (train_mamba.RECIPE: its batch, window, schedule, AdamW without decay on
A_log, corpus and held-out draw; training.py's set-up and loop), so the two families are compared on
equal terms. On one machine the same seed gives the same weights. The loss is computed by
mamba2_trace.forward, the function the trace records, over the model's own parameters (the tests
hold it to transformers' forward within 1e-5).

The defaults (1800 steps of 16 windows of 64 characters) took 194 s on the 2-core development
machine, one torch thread, ending at a training loss of 0.50 nats per character (held out: code
0.54, math 1.56, prose 0.36, chat 0.16).
"""
from __future__ import annotations

from llmviz.models.sim import mamba2_trace, training
from llmviz.models.sim.mamba2_model import build_model
from llmviz.models.sim.train_mamba import RECIPE
from llmviz.models.sim.training import DEFAULT_SEED

DEFAULT_STEPS = 1800
BATCH_SIZE, CONTEXT = RECIPE.batch_size, RECIPE.context   # what `llmviz train` prints
_loss = training.traced_loss(mamba2_trace.forward)
train = training.corpus_trainer(build_model, _loss, RECIPE, DEFAULT_SEED, DEFAULT_STEPS)
