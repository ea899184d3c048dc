"""Trains llava-tiny (a transformers LlavaForConditionalGeneration) to answer questions about generated shape
pictures (shapes.py), deterministically from a seed, and measures its answers on fresh pictures drawn from
another seed, per question.

As LLaVA starts from a trained CLIP tower and keeps it frozen, the vision tower is clip-tiny's shipped image
tower (the same 64-pixel patches and widths; clip_to_llava re-expresses it for llava's ViT preprocessing), frozen;
the projector and the Llama train. (Measured before, with vit-tiny's encoder as the tower: trained with the rest it
read colour 100% and shape 29%; frozen, shape 64% and colour 74%: a classifier's tower keeps little colour.) Each
sample is one picture and a conversation about it, LLaVA's multi-turn form: the three questions (llava_vocab.QUESTIONS) in
an order drawn per sample, each answer closed by </s>, the loss on the answers' tokens alone. Every batch is
new pictures from a seeded stream. The loop is training.run_steps (warm-up then cosine, AdamW), the loss
computed by llava_trace.forward, the function the trace records. On one machine the same seed gives the same
bytes: transformers' initialisation draws from torch's global generator, seeded here, the pictures and the
question orders from their own generator, and torch runs on one thread.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from llmviz.models.sim import llava_trace, llava_vocab, shapes, training, vit_image
from llmviz.models.sim.llava_model import build_model

DEFAULT_SEED = 0
DEFAULT_STEPS = 700
BATCH_SIZE = 32
EVAL_SEED = 4321            # the accuracy's pictures come from a generator the training never used
EVAL_PICTURES = 300
IGNORE = -100               # F.cross_entropy's ignore_index: no loss on the image, the template, the questions
BATCH_WHAT = f"{BATCH_SIZE} pictures of {shapes.IMAGE_SIZE} x {shapes.IMAGE_SIZE} pixels, 3 questions each"
RECIPE = training.CorpusRecipe(peak_lr=2e-3, warmup_steps=30, weight_decay=0.05, betas=(0.9, 0.98))


@dataclass
class LlavaTrainResult:
    model: object                 # the LlavaForConditionalGeneration, trained, eval mode
    steps: int
    final_loss: float             # cross-entropy of the last batch's answer tokens
    seconds: float
    accuracy: dict                # question kind -> fraction right on EVAL_PICTURES fresh pictures
    eval_loss: dict               # none here: `llmviz train` prints a character model's per-domain loss


def clip_to_llava(model, clip_state: dict) -> None:
    """Copies clip-tiny's vision tower (a CLIPVisionModel of the same shape) into llava-tiny's, re-expressed for
    llava's ViT preprocessing: clip-tiny reads (v - m) / s per channel (CLIP's mean and std), llava-tiny's
    processor gives x = (v - 0.5) / 0.5, so (v - m) / s = a x + b with a = 0.5 / s, b = (0.5 - m) / s. The
    bias-free patch conv takes a on its input channels and the constant W·b, the same for every patch, joins
    the patches' position embeddings: the tower computes clip-tiny's numbers from llava-tiny's pixel values."""
    from llmviz.models.sim import clip_image

    v, c = "model.vision_tower.", "vision_model."
    a = 0.5 / torch.tensor(clip_image.STD, dtype=torch.float64)
    b = (0.5 - torch.tensor(clip_image.MEAN, dtype=torch.float64)) / torch.tensor(clip_image.STD, dtype=torch.float64)
    conv = clip_state[c + "embeddings.patch_embedding.weight"].double()            # (width, 3, p, p)
    pos = clip_state[c + "embeddings.position_embedding.weight"].double().clone()
    pos[1:] += (conv * b[None, :, None, None]).sum((1, 2, 3))
    mapped = {name[len(c):]: value for name, value in clip_state.items() if name.startswith(c)}
    mapped["embeddings.patch_embedding.weight"] = conv * a[None, :, None, None]
    mapped["embeddings.position_embedding.weight"] = pos
    state = model.state_dict()
    with torch.no_grad():
        for name, value in mapped.items():
            state[v + name].copy_(value.to(state[v + name].dtype))


def _clip_state() -> dict:
    from llmviz.models.sim.clip_model import load_weights

    return load_weights().state_dict()


class ConversationStream:
    """An endless seeded stream of training batches: (pixels (n, 3, 64, 64) float32, ids (n, T), labels
    (n, T), labels[t] the token at t + 1 where it is part of an answer, IGNORE elsewhere)."""

    def __init__(self, seed: int, n_image: int):
        self.rng = np.random.default_rng(seed)
        self.n_image = n_image
        self.kinds = list(llava_vocab.QUESTIONS)
        self.questions = {k: llava_vocab.question_ids(q) for k, q in llava_vocab.QUESTIONS.items()}

    def sample(self, picture: shapes.ShapePicture) -> tuple[list[int], list[int]]:
        ids, labels = [llava_vocab.IMAGE_ID] * self.n_image, [IGNORE] * self.n_image
        for k in self.rng.permutation(len(self.kinds)):
            kind = self.kinds[int(k)]
            turn = llava_vocab.turn(self.questions[kind])
            answer = llava_vocab.encode(llava_vocab.answer(picture, kind)) + [llava_vocab.EOS_ID]
            ids += turn + answer
            labels += [IGNORE] * len(turn) + answer
        return ids, labels[1:] + [IGNORE]

    def batch(self, n: int):
        pictures = [shapes.draw_picture(self.rng) for _ in range(n)]
        pairs = [self.sample(p) for p in pictures]
        pixels = vit_image.preprocess_batch(np.stack([p.pixels for p in pictures]))
        return (torch.from_numpy(pixels), torch.tensor([a for a, _ in pairs]), torch.tensor([b for _, b in pairs]))


def answer_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE)


@torch.inference_mode()
def accuracy(model, seed: int = EVAL_SEED, n: int = EVAL_PICTURES, batch: int = 100) -> dict:
    """Per question kind, the fraction of `n` fresh pictures from `seed` answered exactly right (greedy, one
    question after the image, as `llmviz ask` asks); for "describe", also each word's fraction."""
    rng = np.random.default_rng(seed)
    pictures = [shapes.draw_picture(rng) for _ in range(n)]
    right = {k: 0 for k in llava_vocab.QUESTIONS}
    words = {"size": 0, "colour": 0, "shape": 0}
    for start in range(0, n, batch):
        chunk = pictures[start:start + batch]
        pixels = torch.from_numpy(vit_image.preprocess_batch(np.stack([p.pixels for p in chunk])))
        for kind, question in llava_vocab.QUESTIONS.items():
            got = llava_trace.batch_answers(model, pixels, llava_vocab.question_ids(question))
            for p, ids in zip(chunk, got):
                said = llava_vocab.answer_text(ids)
                right[kind] += said == llava_vocab.answer(p, kind)
                if kind == "describe":
                    parts = said.split()
                    for i, (field, want) in enumerate((("size", p.size), ("colour", p.colour), ("shape", p.shape))):
                        words[field] += len(parts) == 4 and parts[i + 1] == want
    out = {k: v / n for k, v in right.items()}
    out.update({f"describe: {k}": v / n for k, v in words.items()})
    return out


def train(seed: int = DEFAULT_SEED, steps: int = DEFAULT_STEPS, log=print, log_every_s: float = 5.0,
          report: bool = True, clip_state: dict | None = None) -> LlavaTrainResult:
    """Trains from clip-tiny's vision tower (`clip_state`, default its shipped weights), frozen; `log(line)`
    receives a progress line every `log_every_s` seconds; with `report`, the answers' accuracy on fresh pictures."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    torch.set_num_threads(1)  # reproducibility and fairness to the render thread
    torch.manual_seed(seed)
    model = build_model()
    clip_to_llava(model, clip_state if clip_state is not None else _clip_state())
    for p in model.model.vision_tower.parameters():   # frozen, as LLaVA keeps its CLIP tower
        p.requires_grad_(False)
    opt = RECIPE.adamw(model)
    stream = ConversationStream(seed + 1, model.config.image_seq_length)

    def step_loss(step):
        pixels, ids, labels = stream.batch(BATCH_SIZE)
        logits = llava_trace.forward(model, pixels, ids)
        loss = answer_loss(logits, labels)
        shown = labels != IGNORE
        right = (logits.argmax(-1)[shown] == labels[shown]).float().mean()
        return loss, {"loss": loss.item(), "answer tokens right": float(right)}, ""

    shown, seconds = training.run_steps(model, opt, steps, lambda step: RECIPE.lr(step, steps), step_loss, log,
                                        log_every_s)
    return LlavaTrainResult(model, steps, shown["loss"], seconds, accuracy(model) if report else {}, {})


def report_lines(result: LlavaTrainResult, config) -> list[str]:
    """What `llmviz train llava-tiny` prints after training."""
    acc = result.accuracy
    lines = [f"answers on {EVAL_PICTURES} fresh pictures (seed {EVAL_SEED}, never trained on), greedy:"]
    for kind, question in llava_vocab.QUESTIONS.items():
        lines.append(f"  {question!r:<22} {100 * acc[kind]:5.1f}% exactly right")
    lines.append("  describe it, word by word: " + ", ".join(f"{k.split(': ')[1]} {100 * v:.1f}%"
                                                              for k, v in acc.items() if k.startswith("describe: ")))
    return lines
