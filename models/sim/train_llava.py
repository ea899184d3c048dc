"""Trains llava-tiny (a transformers LlavaForConditionalGeneration) to answer questions about generated shape
pictures (shapes.py), deterministically from a seed, and measures its answers on fresh pictures drawn from
another seed, per question.

As LLaVA starts from a trained CLIP tower and keeps it frozen, the vision tower is vit-tiny's shipped weights (the
same 64-pixel patches and widths; vit_to_clip maps them), frozen; the projector and the Llama train. (Measured
here on 900 steps: the tower trained too reached 29% on the shape question, frozen 64%; colour 100% and 74%.) Each sample is one
picture and a conversation about it, LLaVA's multi-turn form: the three questions (llava_vocab.QUESTIONS) in
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


def vit_to_clip(model, vit_state: dict) -> None:
    """Copies vit-tiny's encoder into the CLIP vision tower: the patch conv, [CLS], positions (the conv's bias,
    which CLIP's patch embedding lacks, folded into the patches' positions), each layer's norms, attention and
    MLP. CLIP's pre-LayerNorm has no ViT counterpart: scaled to vit-tiny's token σ, the tower starts near
    vit-tiny's, not equal to it."""
    e, v = "vit.embeddings", "model.vision_tower"
    pos = vit_state[f"{e}.position_embeddings"][0].clone()
    pos[1:] += vit_state[f"{e}.patch_embeddings.projection.bias"]
    mapped = {f"{v}.embeddings.patch_embedding.weight": vit_state[f"{e}.patch_embeddings.projection.weight"],
              f"{v}.embeddings.class_embedding": vit_state[f"{e}.cls_token"][0, 0],
              f"{v}.embeddings.position_embedding.weight": pos,
              f"{v}.post_layernorm.weight": vit_state["vit.layernorm.weight"],
              f"{v}.post_layernorm.bias": vit_state["vit.layernorm.bias"]}
    for i in range(model.config.vision_config.num_hidden_layers):
        ours, theirs = f"{v}.encoder.layers.{i}", f"vit.layers.{i}"
        for a, b in (("self_attn.q_proj", "attention.q_proj"), ("self_attn.k_proj", "attention.k_proj"),
                     ("self_attn.v_proj", "attention.v_proj"), ("self_attn.out_proj", "attention.o_proj"),
                     ("layer_norm1", "layernorm_before"), ("layer_norm2", "layernorm_after"),
                     ("mlp.fc1", "mlp.fc1"), ("mlp.fc2", "mlp.fc2")):
            for w in ("weight", "bias"):
                mapped[f"{ours}.{a}.{w}"] = vit_state[f"{theirs}.{b}.{w}"]
    # CLIP's pre-LayerNorm gives every token σ 1 where vit-tiny's residual stream starts near σ 0.18: its γ
    # starts at vit-tiny's mean token σ (seeded pictures), so the stream starts at the scale vit-tiny's layers know
    mapped[f"{v}.pre_layrnorm.weight"] = torch.full_like(state_of(model, f"{v}.pre_layrnorm.weight"),
                                                         _token_sigma(vit_state))
    state = model.state_dict()
    with torch.no_grad():
        for name, value in mapped.items():
            state[name].copy_(value)


def state_of(model, name: str) -> torch.Tensor:
    return model.state_dict()[name]


SIGMA_SEED, SIGMA_PICTURES = 5, 64


def _token_sigma(vit_state: dict) -> float:
    """vit-tiny's mean per-token σ of its embeddings ([CLS] and patches + positions) on seeded pictures."""
    e = "vit.embeddings"
    pictures = shapes.draw_batch(SIGMA_SEED, SIGMA_PICTURES)
    pixels = torch.from_numpy(vit_image.preprocess_batch(np.stack([p.pixels for p in pictures])))
    conv = vit_state[f"{e}.patch_embeddings.projection.weight"]
    with torch.no_grad():
        patches = F.linear(llava_trace.cut_patches(pixels, conv.shape[-1]), conv.reshape(conv.shape[0], -1),
                           vit_state[f"{e}.patch_embeddings.projection.bias"])
        cls = vit_state[f"{e}.cls_token"].expand(len(pictures), 1, -1)
        x = torch.cat([cls, patches], 1) + vit_state[f"{e}.position_embeddings"]
        return float(x.std(-1, unbiased=False).mean())


def _vit_state() -> dict:
    from llmviz.models.sim.vit_model import load_weights

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
          report: bool = True, vit_state: dict | None = None) -> LlavaTrainResult:
    """Trains from vit-tiny's tower (`vit_state`, default the shipped weights); `log(line)` receives a progress
    line every `log_every_s` seconds; with `report`, the answers' accuracy on fresh pictures."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    torch.set_num_threads(1)  # reproducibility and fairness to the render thread
    torch.manual_seed(seed)
    model = build_model()
    vit_to_clip(model, vit_state if vit_state is not None else _vit_state())
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
