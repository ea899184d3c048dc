"""Trains vit-tiny (a transformers ViTForImageClassification) on generated shape pictures (shapes.py),
deterministically from a seed, and measures its accuracy on fresh pictures drawn from another seed.

The loop is training.run_steps and the schedule and optimizer CorpusRecipe's (warm-up then cosine, AdamW
with decay on matrices), with this model's own rates; every batch is new pictures from a seeded stream, so
the model never sees a picture twice, easy ones first (CURRICULUM). Progressive resolution (as FixRes and
FlexiViT train at a lower resolution first): the first LOW_RES_FRACTION of the steps see the pictures averaged
down to 32 × 32 pixels, the same 4 × 4 patches on an 8 × 8 grid (65 tokens, a step of 64 pictures about a
fifth of the cost of one at 64 pixels), with the 16 × 16 position embeddings averaged over 2 × 2 blocks in the
forward (half_resolution_logits), so the model is the 64-pixel ViTForImageClassification throughout and the
last steps train it on the full pictures. At equal CPU seconds this lifted the accuracy from 52% to 71%; the
3,800 shipped steps (~530 s of CPU on one thread) reach 96.7% on 1,000 fresh pictures (BENCHMARKS.md, stop 30).
The full-resolution loss is computed by vit_trace.forward, the function the trace records. On one machine
the same seed gives the same bytes: transformers' initialisation draws from torch's global generator, seeded
here, the pictures from their own generator, and torch runs on one thread.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from llmviz.models.sim import shapes, training, vit_image, vit_trace
from llmviz.models.sim.vision_encoder import VIT_LAYER, embed_patches, encoder, layer_norm
from llmviz.models.sim.vit_model import build_model

DEFAULT_SEED = 0
DEFAULT_STEPS = 3800
BATCH_SIZE = 32            # at full resolution
LOW_RES_BATCH = 64         # at half resolution, where a picture costs more to draw than to learn from
LOW_RES_FRACTION = 0.75    # of the steps, first
EVAL_SEED = 4321            # the accuracy's pictures come from a generator the training never used
EVAL_PICTURES = 1000
# What `llmviz train` prints of a batch (the character models print their context).
_FULL, _HALF = shapes.IMAGE_SIZE, shapes.IMAGE_SIZE // 2
BATCH_WHAT = (f"{LOW_RES_BATCH} pictures averaged to {_HALF} x {_HALF} pixels for the first {LOW_RES_FRACTION:.0%} "
              f"of the steps, then {BATCH_SIZE} of {_FULL} x {_FULL}")
RECIPE = training.CorpusRecipe(peak_lr=1e-3, warmup_steps=100, weight_decay=0.05, betas=(0.9, 0.999))
# The curriculum: pictures start upright on plain, noiseless backgrounds (shapes.draw_picture's difficulty 0),
# stay so for the first CURRICULUM[0] of the run, and reach the full rotation, texture and noise at CURRICULUM[1].
# Without it the model sat at chance (loss ln 6) for every recipe tried here in the few hundred steps there
# was time for: the class lies in the outline alone, independent of colour, size and place.
CURRICULUM = (0.1, 0.5)


def difficulty(step: int, steps: int) -> float:
    start, end = (f * steps for f in CURRICULUM)
    return float(np.clip((step - start) / max(1.0, end - start), 0.0, 1.0))


@dataclass
class VitTrainResult:
    model: object                 # the ViTForImageClassification, trained, eval mode
    steps: int
    final_loss: float             # cross-entropy of the last batch
    seconds: float
    accuracy: float               # on EVAL_PICTURES fresh pictures from EVAL_SEED
    eval_loss: dict               # none here: `llmviz train` prints a character model's per-domain loss


def pixel_batch(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(vit_image.preprocess_batch(pixels))


def half_resolution_logits(model, pixels: torch.Tensor) -> torch.Tensor:
    """The 64-pixel model's logits for (B, 3, 32, 32) pixel values: the same layers, its 4 × 4 patches on an
    8 × 8 grid, each grid position's embedding the mean of the 2 × 2 block of the 16 × 16 it covers ([CLS]'s
    its own). Differentiable into the full-resolution parameters."""
    cfg, vit = model.config, model.vit
    emb = vit.embeddings
    conv = emb.patch_embeddings.projection
    positions = emb.position_embeddings[0]
    grid = cfg.image_size // cfg.patch_size
    patches = positions[1:].reshape(1, grid, grid, -1).permute(0, 3, 1, 2)
    pooled = F.avg_pool2d(patches, 2).permute(0, 2, 3, 1).reshape(-1, positions.shape[-1])
    x = embed_patches(pixels, cfg.patch_size, conv.weight, conv.bias, emb.cls_token,
                      torch.cat([positions[:1], pooled]))
    x = encoder(vit.layers, VIT_LAYER, x, cfg.num_attention_heads)
    return F.linear(layer_norm(vit.layernorm, x, None, "ln_f")[:, 0], model.classifier.weight,
                    model.classifier.bias)


@torch.inference_mode()
def accuracy(model, seed: int = EVAL_SEED, n: int = EVAL_PICTURES, batch: int = 250) -> float:
    """The fraction of `n` fresh pictures from `seed` whose shape the model names first."""
    stream, right = shapes.PictureStream(seed), 0
    for start in range(0, n, batch):
        pixels, labels = stream.batch(min(batch, n - start))
        right += int((vit_trace.forward(model, pixel_batch(pixels)).argmax(-1).numpy() == labels).sum())
    return right / n


def train(seed: int = DEFAULT_SEED, steps: int = DEFAULT_STEPS, log=print, log_every_s: float = 5.0,
          report: bool = True) -> VitTrainResult:
    """Trains from scratch; `log(line)` receives a progress line every `log_every_s` seconds; with `report`,
    the accuracy on fresh pictures."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    torch.set_num_threads(1)  # reproducibility and fairness to the render thread
    torch.manual_seed(seed)
    model = build_model()
    opt = RECIPE.adamw(model)
    stream = shapes.PictureStream(seed + 1)

    low_res_steps = int(LOW_RES_FRACTION * steps)

    def step_loss(step):
        if step < low_res_steps:
            pixels, labels = stream.batch(LOW_RES_BATCH, difficulty(step, steps))
            logits = half_resolution_logits(model, F.avg_pool2d(pixel_batch(pixels), 2))
        else:
            pixels, labels = stream.batch(BATCH_SIZE, difficulty(step, steps))
            logits = vit_trace.forward(model, pixel_batch(pixels))
        loss = F.cross_entropy(logits, torch.from_numpy(labels))
        right = (logits.argmax(-1).numpy() == labels).mean()
        return loss, {"loss": loss.item(), "batch accuracy": float(right)}, ""

    shown, seconds = training.run_steps(model, opt, steps, lambda step: RECIPE.lr(step, steps), step_loss, log,
                                        log_every_s)
    return VitTrainResult(model, steps, shown["loss"], seconds, accuracy(model) if report else float("nan"), {})


def report_lines(result: VitTrainResult, config) -> list[str]:
    """What `llmviz train vit-tiny` prints after training."""
    return [f"accuracy on {EVAL_PICTURES} fresh pictures (seed {EVAL_SEED}, never trained on): "
            f"{100 * result.accuracy:.1f}%"]
