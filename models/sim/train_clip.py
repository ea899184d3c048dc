"""Trains clip-tiny (a transformers CLIPModel) contrastively on generated shape pictures and their captions
(shapes.py, clip_vocab.py), deterministically from a seed, and measures its zero-shot accuracy on fresh
pictures drawn from another seed.

Each batch is BATCH_SIZE new pictures, each with a caption naming all three of its attributes ("a small
red star") or, half the time, only some ("a red star", "a small shape"). A caption fits every picture that
has what it names, so a batch holds several right pairs: the loss is CLIP's symmetric cross-entropy over
the e^s-scaled cosine matrix with the targets spread evenly over the pairs that fit (picture to captions,
caption to pictures). Pictures start upright on plain backgrounds (train_vit's curriculum). The loop,
schedule and optimizer are training.run_steps and CorpusRecipe's; the forward is clip_trace's, the one the
trace records. On one machine the same seed gives the same bytes: transformers' initialisation draws from
torch's global generator, seeded here, pictures and captions from their own generators, one torch thread.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from llmviz.models.sim import clip_image, clip_trace, clip_vocab, shapes, training
from llmviz.models.sim.clip_model import LOGIT_SCALE_MAX, build_model
from llmviz.models.sim.train_vit import difficulty

DEFAULT_SEED = 0
DEFAULT_STEPS = 600
BATCH_SIZE = 32
EVAL_SEED = 4321            # zero-shot accuracy on pictures from a generator the training never used
EVAL_PICTURES = 1000
PARTIAL = 0.5               # the share of captions that leave out some attributes
SHAPE_ONLY = 0.5            # of those, the share that name the shape alone ("a star"): the outline is the
                            # attribute the tower learns last, and colour alone would separate most pairs
BATCH_WHAT = f"{BATCH_SIZE} pictures of {shapes.IMAGE_SIZE} x {shapes.IMAGE_SIZE} pixels with captions"
RECIPE = training.CorpusRecipe(peak_lr=2e-3, warmup_steps=60, weight_decay=0.05, betas=(0.9, 0.98))
ATTRIBUTES = ("size", "colour", "shape")


@dataclass
class ClipTrainResult:
    model: object                 # the CLIPModel, trained, eval mode
    steps: int
    final_loss: float             # the contrastive loss of the last batch
    seconds: float
    accuracy: dict                # zero-shot, on EVAL_PICTURES fresh pictures: attribute (and "all") -> share
    eval_loss: dict               # none here: `llmviz train` prints a character model's per-domain loss


def named(picture: shapes.ShapePicture, rng: np.random.Generator) -> tuple[str | None, str | None, str | None]:
    """(size, colour, shape) a caption of this picture names: all three, or (PARTIAL of the time) the shape
    alone (SHAPE_ONLY of those) or a random non-empty part of them."""
    keep = np.ones(3, bool)
    if rng.random() < PARTIAL:
        if rng.random() < SHAPE_ONLY:
            keep = np.array([False, False, True])
        while keep.all() or not keep.any():
            keep = rng.random(3) < 0.5
    return tuple(getattr(picture, a) if k else None for a, k in zip(ATTRIBUTES, keep))


def fits(pictures, said) -> np.ndarray:
    """(pictures, captions) bool: caption j names nothing that picture i lacks."""
    have = np.array([[getattr(p, a) for a in ATTRIBUTES] for p in pictures], object)
    want = np.array(said, object)
    return np.all((want[None, :, :] == None) | (want[None, :, :] == have[:, None, :]), axis=-1)  # noqa: E711


def contrastive_loss(logits: torch.Tensor, fit: torch.Tensor) -> torch.Tensor:
    """Symmetric cross-entropy of (pictures, captions) logits against the targets spread over the pairs
    that fit (each row and column has at least its own pair)."""
    target = fit.float()
    to_text = -(target / target.sum(1, keepdim=True) * F.log_softmax(logits, 1)).sum(1).mean()
    to_image = -(target / target.sum(0, keepdim=True) * F.log_softmax(logits, 0)).sum(0).mean()
    return (to_text + to_image) / 2


class CaptionedStream:
    """An endless seeded stream of (pictures, pixel values (n, 3, 64, 64), caption ids, fit matrix)."""

    def __init__(self, seed: int):
        self.pictures, self.words = np.random.default_rng(seed), np.random.default_rng(seed + 1)

    def batch(self, n: int, level: float = 1.0):
        pictures = [shapes.draw_picture(self.pictures, level) for _ in range(n)]
        said = [named(p, self.words) for p in pictures]
        pixels = torch.from_numpy(clip_image.preprocess_batch(np.stack([p.pixels for p in pictures])))
        ids = clip_trace.caption_batch([clip_vocab.caption_for(*s) for s in said])
        return pictures, pixels, ids, torch.from_numpy(fits(pictures, said))


@torch.inference_mode()
def zero_shot(model, seed: int = EVAL_SEED, n: int = EVAL_PICTURES, batch: int = 200) -> dict[str, float]:
    """For `n` fresh pictures from `seed`, the caption of all of clip_vocab.all_full_captions the model
    scores highest: the share whose size, colour, shape (and all three) it names right."""
    captions = clip_vocab.all_full_captions()
    text = clip_trace.embed_captions(model, [c[0] for c in captions])
    words = np.array([c[1:] for c in captions], object)
    rng, right = np.random.default_rng(seed), np.zeros(4)
    for start in range(0, n, batch):
        pictures = [shapes.draw_picture(rng) for _ in range(min(batch, n - start))]
        image = clip_trace.embed_pictures(model, clip_image.preprocess_batch(np.stack([p.pixels for p in pictures])))
        best = words[(image @ text.T).argmax(1)]
        truth = np.array([[getattr(p, a) for a in ATTRIBUTES] for p in pictures], object)
        hit = best == truth
        right += [*hit.sum(0), hit.all(1).sum()]
    return dict(zip((*ATTRIBUTES, "all"), (right / n).tolist()))


def train(seed: int = DEFAULT_SEED, steps: int = DEFAULT_STEPS, log=print, log_every_s: float = 5.0,
          report: bool = True) -> ClipTrainResult:
    """Trains from scratch; `log(line)` receives a progress line every `log_every_s` seconds; with `report`,
    the zero-shot accuracy on fresh pictures."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    torch.set_num_threads(1)  # reproducibility and fairness to the render thread
    torch.manual_seed(seed)
    model = build_model()
    opt = RECIPE.adamw(model)
    stream = CaptionedStream(seed + 1)

    def step_loss(step):
        with torch.no_grad():   # CLIP's clamp of the learned temperature, at most 100
            model.logit_scale.clamp_(0.0, LOGIT_SCALE_MAX)
        _, pixels, ids, fit = stream.batch(BATCH_SIZE, difficulty(step, steps))
        logits = clip_trace.logits_per_image(model, clip_trace.image_features(model, pixels),
                                             clip_trace.text_features(model, ids))
        loss = contrastive_loss(logits, fit)
        right = fit[torch.arange(len(fit)), logits.argmax(1)].float().mean()
        return loss, {"loss": loss.item(), "batch match": float(right)}, f"scale {model.logit_scale.exp().item():.1f}"

    shown, seconds = training.run_steps(model, opt, steps, lambda step: RECIPE.lr(step, steps), step_loss, log,
                                        log_every_s)
    with torch.no_grad():
        model.logit_scale.clamp_(0.0, LOGIT_SCALE_MAX)
    return ClipTrainResult(model, steps, shown["loss"], seconds, zero_shot(model) if report else {}, {})


def report_lines(result: ClipTrainResult, config) -> list[str]:
    """What `llmviz train clip-tiny` prints after training."""
    a = result.accuracy
    return [f"zero-shot on {EVAL_PICTURES} fresh pictures (seed {EVAL_SEED}, never trained on), best of "
            f"{len(clip_vocab.all_full_captions())} captions: size {100 * a['size']:.1f}%, colour "
            f"{100 * a['colour']:.1f}%, shape {100 * a['shape']:.1f}%, all three {100 * a['all']:.1f}%"]
