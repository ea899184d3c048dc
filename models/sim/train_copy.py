"""Trains mamba-copy, mamba-tiny's architecture on the selective-copying task (selective_copy.py),
deterministically from a seed, and holds its weights file: mamba-tiny's format under its own name.

The model is mamba_model.build_model() as it is (transformers' MambaForCausalLM, 2 layers, d_model 64,
d_state 16), so everything that reads mamba-tiny (mamba_trace, the scene's SSM blocks, export-hf) reads
this one too. The schedule, AdamW groups and loop are training.py's (a CorpusRecipe instance and
run_steps); only the batches differ: fresh sequences from a generator seeded with seed + 1, the loss on
the answer positions only. The loss is computed by mamba_trace.forward, the function the trace records.

The defaults (1000 steps of 64 sequences) took 223 s on the 2-core development machine, one torch
thread, ending at a training loss of 0.0006 nats per answer letter and 99.7% of the held-out sequences
copied exactly. `python -m llmviz.models.sim.train_copy [OUT]` trains them and writes the shipped file.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from llmviz.models.sim import mamba_model, mamba_trace, selective_copy, training
# the config class is re-exported: `llmviz train` reads a model module's *TinyConfig for its banner
from llmviz.models.sim.mamba_model import MambaTinyConfig, build_model  # noqa: F401

MODEL_ID = "mamba-copy"
DEFAULT_SEED = training.DEFAULT_SEED
DEFAULT_STEPS = 1000
# No weight decay: every batch is fresh sequences, so there is nothing to overfit, and decay pulls x_proj and
# dt_proj (Δ's dependence on the input) towards a time-invariant Δ. Measured with mamba-tiny's decay of 0.1
# (and lr 4e-3, 1200 steps): 98.9% copied, but Δ barely left its initialisation (letters/dots 1.02) and
# making it constant cost only 13 points; without decay, constant Δ in layer 0 leaves 10%. The price: the
# residual stream grows to ~10^3 (the final RMSNorm takes the scale away). A peak lr of 1e-2 copies 99%
# after 1000 steps, where 4e-3 took 1200 steps for 98.9%.
RECIPE = training.CorpusRecipe(batch_size=64, context=selective_copy.CONTEXT, peak_lr=1e-2, warmup_steps=60,
                               weight_decay=0.0)
BATCH_SIZE, CONTEXT = RECIPE.batch_size, RECIPE.context   # what `llmviz train` prints

# mamba-tiny's weights file (tensor names, config metadata, checks) under this model's id and file name
FILES = replace(mamba_model.FILES, model_id=MODEL_ID)
state_tensors, safetensors_bytes = FILES.state_tensors, FILES.safetensors_bytes
shipped_weights_path, load_weights, load_mamba_copy = FILES.shipped_weights_path, FILES.load_weights, FILES.load_model
TASK = "selective copying"


def save_safetensors(model, path, extra_metadata: dict | None = None) -> None:
    """mamba_model's file, atomically written, its metadata also naming the task the weights solve."""
    FILES.save(model, path, {"task": TASK, **(extra_metadata or {})})


@dataclass
class CopyResult(training.TrainResult):
    accuracy: float = float("nan")   # held-out exact match (selective_copy.accuracy), when reported


def train(seed: int = DEFAULT_SEED, steps: int = DEFAULT_STEPS, log=print, log_every_s: float = 5.0,
          report: bool = True) -> CopyResult:
    """Trains a fresh model from `seed`; `log(line)` receives a progress line every `log_every_s` seconds;
    with `report`, the held-out answer loss (eval_loss) and exact-match accuracy."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    # as training.corpus_setup: one thread, and transformers' init drawn from torch's global generator
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = build_model()
    batches = torch.Generator().manual_seed(seed + 1)
    opt = RECIPE.adamw(model)

    def step_loss(step):
        x, y = selective_copy.batch(RECIPE.batch_size, batches)
        logits = mamba_trace.forward(model, x)[0]
        loss = training.cross_entropy(logits, y)   # ignore_index: only the answer positions count
        exact = selective_copy.exact_matches(logits.detach(), y).float().mean().item()
        return loss, {"loss": loss.item(), "exact": exact}, ""

    shown, seconds = training.run_steps(model, opt, steps, lambda step: RECIPE.lr(step, steps), step_loss, log,
                                        log_every_s)
    eval_loss, accuracy = {}, float("nan")
    if report:
        x, y = selective_copy.examples(selective_copy.held_out())
        with torch.inference_mode():
            eval_loss = {"selective copy": training.cross_entropy(mamba_trace.forward(model, x)[0], y).item()}
        accuracy = selective_copy.accuracy(model)
    return CopyResult(model, steps, shown["loss"], seconds, eval_loss, accuracy)


def main(argv=None) -> int:
    """Trains the defaults and writes them (to the shipped file unless a path is given), with the figures."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    out = args[0] if args else str(shipped_weights_path())
    result = train()
    save_safetensors(result.model, out, {"seed": DEFAULT_SEED, "steps": DEFAULT_STEPS})
    print(f"trained in {result.seconds:.1f}s, final loss {result.final_loss:.4g}, held-out answer loss "
          f"{result.eval_loss['selective copy']:.4g}, exact match {100 * result.accuracy:.1f}% of "
          f"{selective_copy.HELD_OUT_SEQUENCES} held-out sequences; saved {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
