"""Trains rag-llama (reader_model.py) on generated prompts: one to four passages and a question about an
invented person; the answer is the fact's value when that person's card is among the passages and
"I don't know." when it is not. Deterministic from a seed (one torch thread, transformers' init from
torch's seeded global generator, the prompts from random.Random(seed)); the loss is transformers' own
(LlamaForCausalLM with labels on the answer tokens only). No card of training holds a fact of the demo store (facts.store_facts), so the store's questions
are held out.

Passages besides the asked person's card are other people's cards and, one time in four, a stretch of
document-like words (mostly <unk>, as a chunk of the project's docs reads to this vocabulary), so that
the reader learns to pass over text that is not a card.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from llmviz.models.rag import facts, reader_vocab as vocab
from llmviz.models.rag.reader_model import build_model
from llmviz.models.sim.train_nanogpt import warmup_cosine
from llmviz.models.sim.training import decay_but_A_log, run_steps

DEFAULT_SEED = 0
DEFAULT_STEPS = 2500
PHASES = ((2500, 4e-3, 100), (1500, 2e-3, 50))     # (steps, peak learning rate, warm-up steps)
BATCH_SIZE = 24
PEAK_LR, WARMUP, LR_FLOOR = 4e-3, 100, 0.05
P_ANSWERABLE = 0.7
TEXT_WEIGHT = 0.5
IGNORE = -100


@dataclass
class Example:
    ids: list[int]
    answer_start: int               # index of the first answer id
    answerable: bool


def _noise_passage(rng: random.Random) -> str:
    words = [rng.choice(vocab.WORDS[len(vocab.SPECIALS):]) if rng.random() < 0.2 else f"w{rng.randrange(99)}x"
             for _ in range(rng.randint(6, 30))]
    return " ".join(words)


def example(rng: random.Random, banned: set) -> Example:
    """One training prompt and answer (the asked person never has a fact of `banned`)."""
    while True:
        person = facts.random_person(rng)
        if not person.facts() & banned:
            break
    relation = rng.randrange(len(facts.RELATIONS))
    question = rng.choice(facts.RELATIONS[relation].questions).format(name=person.name)
    answerable = rng.random() < P_ANSWERABLE
    n = rng.choice((1, 2, 3, 3))
    others = rng.sample([name for name in facts.NAMES if name != person.name], n)
    passages = [facts.random_person(rng, name).card() if rng.random() >= 0.25 else _noise_passage(rng)
                for name in others[: n - 1 if answerable else n]]
    if answerable:
        passages.insert(rng.randrange(len(passages) + 1), person.card())
    prompt = vocab.prompt(passages, question)
    answer = vocab.answer_ids(person.fact(relation) if answerable else facts.UNKNOWN_ANSWER)
    return Example(prompt.ids + answer, len(prompt.ids), answerable)


def batch(rng: random.Random, size: int, banned: set) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, labels) padded on the right; labels are IGNORE except on the answer's ids (the answer loss);
    the whole prompt's next-word loss is taken on `ids` apart."""
    examples = [example(rng, banned) for _ in range(size)]
    width = max(len(e.ids) for e in examples)
    ids = torch.full((size, width), vocab.PAD_ID, dtype=torch.long)
    labels = torch.full((size, width), IGNORE, dtype=torch.long)
    for row, e in enumerate(examples):
        ids[row, : len(e.ids)] = torch.tensor(e.ids)
        labels[row, e.answer_start: len(e.ids)] = torch.tensor(e.ids[e.answer_start:])
    return ids, labels


@dataclass
class TrainResult:
    model: object
    steps: int
    final_loss: float
    seconds: float


def train(seed: int = DEFAULT_SEED, steps: int = DEFAULT_STEPS, log=print, log_every_s: float = 5.0,
          model=None, peak_lr: float = PEAK_LR, warmup: int = WARMUP) -> TrainResult:
    """One phase: `steps` steps of warm-up-cosine AdamW (a fresh optimizer) from `model`, or from a fresh
    model drawn with `seed`; the prompts from random.Random(seed)."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = build_model() if model is None else model
    named = list(model.named_parameters())
    opt = torch.optim.AdamW([{"params": [p for n, p in named if decay_but_A_log(n, p)], "weight_decay": 0.1},
                             {"params": [p for n, p in named if not decay_but_A_log(n, p)], "weight_decay": 0.0}],
                            lr=peak_lr, betas=(0.9, 0.95))
    rng = random.Random(seed)
    banned = facts.store_facts()

    def step_loss(step):
        ids, labels = batch(rng, BATCH_SIZE, banned)
        logits = model(input_ids=ids, use_cache=False).logits[:, :-1]
        answer = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=IGNORE)
        # the next word of the whole prompt too: a card repeats its name and templates, which is what
        # teaches the copying (induction) heads that the answer then uses, and sooner than the answer alone
        targets = ids[:, 1:].masked_fill(ids[:, 1:] == vocab.PAD_ID, IGNORE)
        text = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE)
        return answer + TEXT_WEIGHT * text, {"answer": answer.item(), "text": text.item()}, ""

    shown, seconds = run_steps(model, opt, steps, lambda s: warmup_cosine(s, steps, peak_lr, warmup, LR_FLOOR),
                               step_loss, log, log_every_s)
    return TrainResult(model, steps, shown["answer"], seconds)


def train_shipped(seed: int = DEFAULT_SEED, log=print, log_every_s: float = 5.0, phases=None) -> TrainResult:
    """The shipped weights' recipe: PHASES run one after another on one model, each with a fresh optimizer
    and its own prompt stream (seed + phase number). The second phase exists because the first, on the
    shared machine's time budget, had learned the answer's form and "I don't know." but copied the
    asked fact's value for only a quarter of the questions."""
    model, total, seconds, last = None, 0, 0.0, None
    for number, (steps, peak_lr, warmup) in enumerate(phases or PHASES):
        log(f"phase {number + 1}: {steps} steps, peak learning rate {peak_lr}")
        last = train(seed + number, steps, log, log_every_s, model, peak_lr, warmup)
        model, total, seconds = last.model, total + steps, seconds + last.seconds
    return TrainResult(model, total, last.final_loss, seconds)
