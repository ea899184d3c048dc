"""The reader at work: a greedy answer to a question over passages, each answer token with its probability,
and each answer token's attention over the prompt summed per passage (and over the question), from the
model's real forward (transformers' eager attention weights, averaged over the heads and layers).

A position's attention weights over the prompt sum to 1; a passage's share is the sum over its ids (its
<p> marker included), the question's share the sum over <q> .. <a>, and what the token attends to among
the answer tokens already written is `answer`. Per passage, `token_attention` keeps the share of each of
its ids, for the passages drawn as text.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmviz.models.rag import reader_vocab as vocab


@dataclass
class AnswerToken:
    id: int
    word: str
    probability: float
    passage_shares: list[float]             # per passage
    question_share: float
    answer_share: float
    token_attention: list[list[float]]      # per passage, per id of it


@dataclass
class Answer:
    text: str
    tokens: list[AnswerToken]
    prompt: vocab.Prompt
    knows: bool                             # False when the answer is "I don't know."
    layer_shares: list[list[float]]         # per layer, per passage: the heads' and answer tokens' mean share

    def passage_shares(self) -> list[float]:
        """Per passage, the mean share over the answer's tokens (the <eos> included)."""
        if not self.tokens:
            return [0.0] * len(self.prompt.spans)
        return np.mean([t.passage_shares for t in self.tokens], axis=0).tolist()


def forward(model, ids: list[int]):
    """(logits (T, vocab) float64 numpy, attention (layers, heads, T, T)) of one sequence."""
    import torch

    with torch.inference_mode():
        out = model(input_ids=torch.tensor([ids]), output_attentions=True, use_cache=False)
    attention = torch.stack([a[0] for a in out.attentions]).double().numpy()
    return out.logits[0].double().numpy(), attention


def answer(model, passages: list[str], question: str) -> Answer:
    """Greedy decoding to <eos> (at most vocab.ANSWER_TOKENS ids), then one forward over prompt + answer
    for every token's probability and attention."""
    prompt = vocab.prompt(passages, question)
    ids = list(prompt.ids)
    for _ in range(vocab.ANSWER_TOKENS):
        logits, _ = forward(model, ids)
        ids.append(int(np.argmax(logits[-1])))
        if ids[-1] == vocab.EOS_ID:
            break
    logits, attention = forward(model, ids)
    mean = attention.mean(axis=(0, 1))                  # (T, T) over layers and heads
    n = len(prompt.ids)
    tokens = []
    for k, token in enumerate(ids[n:]):
        row = mean[n - 1 + k]                            # the position that predicted this token
        z = logits[n - 1 + k] - logits[n - 1 + k].max()
        p = np.exp(z) / np.exp(z).sum()
        q0, q1 = prompt.question_span
        tokens.append(AnswerToken(
            token, vocab.WORDS[token], float(p[token]), [float(row[a:b].sum()) for a, b in prompt.spans],
            float(row[q0:q1].sum()), float(row[n:].sum()), [row[a:b].tolist() for a, b in prompt.spans]))
    answer_ids = ids[n:]
    per_layer = attention.mean(axis=1)[:, n - 1: len(ids) - 1]          # (layers, answer tokens, T)
    layer_shares = [[float(rows[:, a:b].sum(axis=1).mean()) for a, b in prompt.spans] for rows in per_layer]
    return Answer(vocab.answer_text(answer_ids), tokens, prompt,
                  tuple(answer_ids[: len(vocab.UNKNOWN_IDS)]) != vocab.UNKNOWN_IDS, layer_shares)
