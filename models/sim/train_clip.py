"""Trains clip-tiny (a transformers CLIPModel) contrastively on generated shape pictures and their captions
(shapes.py, clip_vocab.py), deterministically from a seed, and measures its zero-shot accuracy on fresh
pictures drawn from another seed.

The image tower starts from vit-tiny's trained encoder (start_from_vit: from scratch the outline was barely
learned in the minutes this training has). Each batch is BATCH_SIZE new pictures, each with a caption naming all
three of its attributes ("a small red star") or, half the time, only some ("a red star", "a small shape"). A
caption fits every picture that has what it names, so a batch holds several right pairs: the loss is CLIP's
symmetric cross-entropy over the e^s-scaled cosine matrix with the targets spread evenly over the pairs that fit
(picture to captions, caption to pictures), plus each picture against all 144 full captions, its own the
target (ALL_CAPTIONS_WEIGHT). Pictures start upright on plain backgrounds (CURRICULUM). The loop,
schedule and optimizer are training.run_steps and CorpusRecipe's; the forward is clip_trace's, the one the
trace records. On one machine the same seed gives the same bytes: transformers' initialisation draws from
torch's global generator, seeded here, pictures and captions from their own generators, one torch thread;
the bytes also depend on vit-tiny's shipped weights, read at the start.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from llmviz.models.sim import clip_image, clip_trace, clip_vocab, shapes, training
from llmviz.models.sim.clip_model import LOGIT_SCALE_MAX, build_model

DEFAULT_SEED = 0
DEFAULT_STEPS = 600
BATCH_SIZE = 32
EVAL_SEED = 4321            # zero-shot accuracy on pictures from a generator the training never used
EVAL_PICTURES = 1000
PARTIAL = 0.5               # the share of captions that leave out some attributes
SHAPE_ONLY = 0.5            # of those, the share that name the shape alone ("a star"): the outline is the
                            # attribute the tower learns last, and colour alone would separate most pairs
BATCH_WHAT = f"{BATCH_SIZE} pictures of {shapes.IMAGE_SIZE} x {shapes.IMAGE_SIZE} pixels with captions"
RECIPE = training.CorpusRecipe(peak_lr=1e-3, warmup_steps=60, weight_decay=0.05, betas=(0.9, 0.98))
ATTRIBUTES = ("size", "colour", "shape")
# Beside the batch's pairs, every picture is also scored against all 144 full captions, its own the target:
# "a small red star" against "a small red cross" is a negative no batch of 32 is sure to hold, and the one
# that makes the shape (and the size) the word to get right once the colour is.
ALL_CAPTIONS_WEIGHT = 1.0
# The image tower starts from vit-tiny's trained encoder (start_from_vit): from scratch, 600 steps of this
# recipe named the shape 20.6% (size 67.6%); started from vit-tiny, 62.4% (size 81.8%).
START_FROM_VIT = True
# Pictures start upright on plain, noiseless backgrounds for the first CURRICULUM[0] of the run and reach
# full rotation, texture and noise at CURRICULUM[1] (vit-tiny's curriculum, kept here so that a change to
# vit-tiny's recipe does not change clip-tiny's bytes).
CURRICULUM = (0.1, 0.5)


def difficulty(step: int, steps: int) -> float:
    start, end = (f * steps for f in CURRICULUM)
    return float(np.clip((step - start) / max(1.0, end - start), 0.0, 1.0))


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


def start_from_vit(model, vit_state: dict) -> None:
    """clip-tiny's image tower started from vit-tiny's trained encoder (the same 64-pixel patches, widths and
    layers): the patch conv, [CLS], positions, each layer's norms, attention and MLP, the final norm. vit-tiny
    reads x = (v - 0.5) / 0.5, clip-tiny (v - m) / s, so x = a x' + b with a = s / 0.5, b = (m - 0.5) / 0.5: the
    conv takes a on its channels, and W·b with the conv's bias (CLIP's patch conv has none), the same for every
    patch, joins the patches' positions. CLIP's pre-LayerNorm has no ViT counterpart: its γ is set to the
    embeddings' mean token σ on seeded pictures, so the layers start at the scale they were trained on."""
    e, v = "vit.embeddings.", "vision_model."
    mean, std = (torch.tensor(x, dtype=torch.float64) for x in (clip_image.MEAN, clip_image.STD))
    a, b = std / 0.5, (mean - 0.5) / 0.5
    conv = vit_state[e + "patch_embeddings.projection.weight"].double()
    pos = vit_state[e + "position_embeddings"][0].double().clone()
    pos[1:] += (conv * b[None, :, None, None]).sum((1, 2, 3)) + vit_state[e + "patch_embeddings.projection.bias"]
    mapped = {v + "embeddings.patch_embedding.weight": conv * a[None, :, None, None],
              v + "embeddings.class_embedding": vit_state[e + "cls_token"][0, 0],
              v + "embeddings.position_embedding.weight": pos,
              v + "post_layernorm.weight": vit_state["vit.layernorm.weight"],
              v + "post_layernorm.bias": vit_state["vit.layernorm.bias"]}
    for i in range(model.config.vision_config.num_hidden_layers):
        ours, theirs = f"{v}encoder.layers.{i}.", f"vit.layers.{i}."
        for mine, vits in (("self_attn.q_proj", "attention.q_proj"), ("self_attn.k_proj", "attention.k_proj"),
                           ("self_attn.v_proj", "attention.v_proj"), ("self_attn.out_proj", "attention.o_proj"),
                           ("layer_norm1", "layernorm_before"), ("layer_norm2", "layernorm_after"),
                           ("mlp.fc1", "mlp.fc1"), ("mlp.fc2", "mlp.fc2")):
            for w in ("weight", "bias"):
                mapped[f"{ours}{mine}.{w}"] = vit_state[f"{theirs}{vits}.{w}"]
    state = model.state_dict()
    with torch.no_grad():
        for name, value in mapped.items():
            state[name].copy_(value.to(state[name].dtype))
        pictures = shapes.draw_batch(VIT_SIGMA_SEED, 64)
        pixels = torch.from_numpy(clip_image.preprocess_batch(np.stack([p.pixels for p in pictures])))
        sigma = model.vision_model.embeddings(pixels).std(-1, unbiased=False).mean()
        model.vision_model.pre_layrnorm.weight.fill_(float(sigma))


VIT_SIGMA_SEED = 5


def _vit_state() -> dict:
    from llmviz.models.sim.vit_model import load_weights

    return load_weights().state_dict()


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
          report: bool = True, vit_state: dict | None = None) -> ClipTrainResult:
    """Trains from scratch; `log(line)` receives a progress line every `log_every_s` seconds; with `report`,
    the zero-shot accuracy on fresh pictures."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    torch.set_num_threads(1)  # reproducibility and fairness to the render thread
    torch.manual_seed(seed)
    model = build_model()
    if START_FROM_VIT:
        start_from_vit(model, vit_state if vit_state is not None else _vit_state())
    opt = RECIPE.adamw(model)
    stream = CaptionedStream(seed + 1)
    captions = clip_vocab.all_full_captions()
    every_caption = clip_trace.caption_batch([c[0] for c in captions])
    caption_index = {c[1:]: i for i, c in enumerate(captions)}

    def step_loss(step):
        with torch.no_grad():   # CLIP's clamp of the learned temperature, at most 100
            model.logit_scale.clamp_(0.0, LOGIT_SCALE_MAX)
        pictures, pixels, ids, fit = stream.batch(BATCH_SIZE, difficulty(step, steps))
        image = clip_trace.image_features(model, pixels)
        logits = clip_trace.logits_per_image(model, image, clip_trace.text_features(model, ids))
        loss = contrastive_loss(logits, fit)
        right = fit[torch.arange(len(fit)), logits.argmax(1)].float().mean()
        shown = {"loss": loss.item(), "batch match": float(right)}
        if ALL_CAPTIONS_WEIGHT:
            scores = clip_trace.logits_per_image(model, image, clip_trace.text_features(model, every_caption))
            own = torch.tensor([caption_index[(p.size, p.colour, p.shape)] for p in pictures])
            named_right = F.cross_entropy(scores, own)
            loss = loss + ALL_CAPTIONS_WEIGHT * named_right
            shown["caption loss"] = named_right.item()
            shown["shape right"] = float(np.mean([captions[int(i)][3] == p.shape
                                                  for i, p in zip(scores.argmax(1), pictures)]))
        return loss, shown, f"scale {model.logit_scale.exp().item():.1f}"

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
