"""Trains rag-llama (reader_model.py) on generated prompts: one to three passages and a question about an
invented person; the answer is the fact's sentence when that person's card is among the passages and
"I don't know." when it is not. Deterministic from a seed (one torch thread, transformers' init from
torch's seeded global generator, the prompts from random.Random(seed)). No card of training holds a fact
of the demo store (facts.store_facts), so the store's questions are held out.

The loss is the answer's next-word loss, the prompt's (weighted TEXT_WEIGHT) and two attention terms that
teach the copy the answer needs (the model stays a plain LlamaForCausalLM: they only shape training):
- NAME_HEAD (layer 0, head 0) attends from every position to the latest name at or before it, so that
  each word of a card carries whose card it is;
- COPY_HEAD (layer 1, head 0) attends, where the answer's value is to be written, to that value in the
  asked person's card (the name and the kind of value match there and nowhere else).
Without them 4,000 steps had learned the relation (the answer's head read the same kind of value in every
card, a third each) but not whose card it was: 17% exact. The embedding starts at EMBED_STD and is not
decayed, so that a value's own word stays visible in the residual stream at its position: at the default
0.02 with decay the values of one kind drifted to one direction (cosine 0.8-0.9 between towns), which the
copy cannot tell apart.

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
DEFAULT_STEPS = 2000
PHASES = ((2000, 4e-3, 100),)       # (steps, peak learning rate, warm-up steps)
BATCH_SIZE = 24
PEAK_LR, WARMUP, LR_FLOOR = 4e-3, 100, 0.05
P_ANSWERABLE = 0.7
TEXT_WEIGHT = 0.2
VALUE_WEIGHT = 1.0                  # the answer's value word once more on its own: it is what must be copied
ATTENTION_WEIGHT = 1.0              # each of the two attention terms
NAME_HEAD = (0, 0)                  # (layer, head)
COPY_HEAD = (1, 0)
EMBED_STD = 0.125                   # about 1 / sqrt(d_model): a word's vector of about unit length
IGNORE = -100


@dataclass
class Example:
    ids: list[int]
    answer_start: int               # index of the first answer id
    answerable: bool
    copy: tuple[int, int] | None    # (position that writes the value, the value's position in its card)


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
    copy = None
    if answerable:
        fact = vocab.encode(person.fact(relation), vocab.PASSAGE_TOKENS)[0]
        at = fact.index(vocab.IDS[person.values[relation].lower()])
        start, end = prompt.spans[passages.index(person.card())]
        card = prompt.ids[start:end]
        found = next(i for i in range(len(card) - len(fact) + 1) if card[i: i + len(fact)] == fact)
        copy = (len(prompt.ids) + at - 1, start + found + at)
    return Example(prompt.ids + answer, len(prompt.ids), answerable, copy)


NAME_IDS = sorted(vocab.IDS[name.lower()] for name in facts.NAMES)


@dataclass
class Batch:
    ids: torch.Tensor               # (B, T) padded on the right
    labels: torch.Tensor            # IGNORE except on the answer's ids
    latest_name: torch.Tensor       # (B, T) position of the latest name at or before each position, -1: none
    copy_rows: torch.Tensor         # the answerable rows,
    copy_query: torch.Tensor        # their position that writes the value
    copy_key: torch.Tensor          # and the value's position in the card


def batch(rng: random.Random, size: int, banned: set) -> Batch:
    examples = [example(rng, banned) for _ in range(size)]
    width = max(len(e.ids) for e in examples)
    ids = torch.full((size, width), vocab.PAD_ID, dtype=torch.long)
    labels = torch.full((size, width), IGNORE, dtype=torch.long)
    for row, e in enumerate(examples):
        ids[row, : len(e.ids)] = torch.tensor(e.ids)
        labels[row, e.answer_start: len(e.ids)] = torch.tensor(e.ids[e.answer_start:])
    positions = torch.arange(width).expand(size, width)
    named = torch.where(torch.isin(ids, torch.tensor(NAME_IDS)), positions, torch.full_like(positions, -1))
    latest = named.cummax(dim=1).values.masked_fill(ids == vocab.PAD_ID, -1)
    copies = [(row, *e.copy) for row, e in enumerate(examples) if e.copy is not None]
    rows, query, key = (torch.tensor(c, dtype=torch.long) for c in zip(*copies)) if copies else \
        (torch.zeros(0, dtype=torch.long),) * 3
    return Batch(ids, labels, latest, rows, query, key)


def attention_terms(attentions, b: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(NAME_HEAD's, COPY_HEAD's) mean -log of the attention on their targets."""
    layer, head = NAME_HEAD
    name = attentions[layer][:, head]
    has = b.latest_name >= 0
    picked = name.gather(2, b.latest_name.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    name_term = -(torch.log(picked + 1e-6) * has).sum() / has.sum().clamp(min=1)
    if not len(b.copy_rows):
        return name_term, torch.zeros(())
    layer, head = COPY_HEAD
    copy = attentions[layer][b.copy_rows, head, b.copy_query, b.copy_key]
    return name_term, -torch.log(copy + 1e-6).mean()


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
    if model is None:
        model = build_model()
        with torch.no_grad():
            model.model.embed_tokens.weight.normal_(0.0, EMBED_STD)
    named = list(model.named_parameters())
    decayed = [p for n, p in named if decay_but_A_log(n, p) and "embed_tokens" not in n]
    undecayed = [p for _, p in named if all(p is not q for q in decayed)]     # gains and the embedding
    opt = torch.optim.AdamW([{"params": decayed, "weight_decay": 0.1}, {"params": undecayed, "weight_decay": 0.0}],
                            lr=peak_lr, betas=(0.9, 0.95))
    rng = random.Random(seed)
    banned = facts.store_facts()

    def step_loss(step):
        b = batch(rng, BATCH_SIZE, banned)
        out = model(input_ids=b.ids, use_cache=False, output_attentions=True)
        logits = out.logits[:, :-1]
        answer = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), b.labels[:, 1:].reshape(-1),
                                 ignore_index=IGNORE)
        # the next word of the whole prompt too, lightly: a card repeats its name and templates
        targets = b.ids[:, 1:].masked_fill(b.ids[:, 1:] == vocab.PAD_ID, IGNORE)
        text = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE)
        value = F.cross_entropy(out.logits[b.copy_rows, b.copy_query], b.ids[b.copy_rows, b.copy_query + 1]) \
            if len(b.copy_rows) else torch.zeros(())
        name_term, copy_term = attention_terms(out.attentions, b)
        loss = answer + TEXT_WEIGHT * text + VALUE_WEIGHT * value + ATTENTION_WEIGHT * (name_term + copy_term)
        return loss, {"answer": answer.item(), "value": value.item(), "name_head": name_term.item(),
                      "copy_head": copy_term.item()}, ""

    shown, seconds = run_steps(model, opt, steps, lambda s: warmup_cosine(s, steps, peak_lr, warmup, LR_FLOOR),
                               step_loss, log, log_every_s)
    return TrainResult(model, steps, shown["answer"], seconds)


def train_shipped(seed: int = DEFAULT_SEED, log=print, log_every_s: float = 5.0, phases=None) -> TrainResult:
    """The shipped weights' recipe: PHASES run one after another on one model, each with a fresh optimizer
    and its own prompt stream (seed + phase number)."""
    model, total, seconds, last = None, 0, 0.0, None
    for number, (steps, peak_lr, warmup) in enumerate(phases or PHASES):
        log(f"phase {number + 1}: {steps} steps, peak learning rate {peak_lr}")
        last = train(seed + number, steps, log, log_every_s, model, peak_lr, warmup)
        model, total, seconds = last.model, total + steps, seconds + last.seconds
    return TrainResult(model, total, last.final_loss, seconds)
