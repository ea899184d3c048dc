"""Trains rwkv-tiny (a transformers RwkvForCausalLM) on the four-domain corpus of the small MoE
models, deterministically from a seed, and reports its held-out loss per domain.

The recipe is training.CorpusRecipe's (mamba-tiny's numbers) on training.py's set-up and loop, but
for the optimizer (RWKV's parameter groups and betas, below): on one machine the same seed gives the
same weights. The loss is computed by rwkv_trace.forward, the function the trace records, over the
model's own parameters (the tests hold it to transformers' forward).

The defaults (2000 steps of 16 windows of 64 characters) took 171-178 s on the 2-core development
machine, one torch thread, ending at a training loss of 0.537 nats per character (held out: code
0.53, math 1.50, prose 0.36, chat 0.15); a second run wrote the same bytes.
"""
from __future__ import annotations

from llmviz.models.sim import rwkv_trace, training
from llmviz.models.sim.rwkv_model import RwkvTinyConfig, build_model
from llmviz.models.sim.training import DEFAULT_SEED

DEFAULT_STEPS = 2000


def decays_rwkv(name: str, param) -> bool:
    """Weight decay on the projection and embedding matrices only. The token-shift mixes are stored
    (1, 1, d_model), so a dim() >= 2 rule would decay them towards 0 (all previous token); the decay
    and bonus vectors and the LayerNorms are not decayed either."""
    return name.endswith(".weight") and param.dim() == 2


# Betas (0.9, 0.99) as BlinkDL/RWKV-LM trains RWKV-4; the training window is the config's context_length.
RECIPE = training.CorpusRecipe(context=RwkvTinyConfig().context_length, betas=(0.9, 0.99), decays=decays_rwkv)
BATCH_SIZE, CONTEXT = RECIPE.batch_size, RECIPE.context   # what `llmviz train` prints
_loss = training.traced_loss(rwkv_trace.forward)
train = training.corpus_trainer(build_model, _loss, RECIPE, DEFAULT_SEED, DEFAULT_STEPS)
