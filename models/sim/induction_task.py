"""The induction task of induction-2l: sequences of random pseudo-words in which spans recur, seeded; and
how well a model predicts a recurring span's next token (at any length: 256 tokens in training, 131,072
in the long-context pass).

A sequence starts with "<s>", then random tokens; every so often a span of SPAN_MIN..SPAN_MAX tokens is
copied from anywhere earlier in the sequence. Inside a copy, from its second token on, the next token is
determined by the earlier occurrence: that is what the loss and the accuracy count (the other targets are
IGNORE_INDEX). To learn to match on more than one token (which a 131,072-token sequence over a
2,047-word vocabulary needs: a single word recurs about 64 times there, a pair of words almost never),
each training sequence draws its words from a random sub-vocabulary, as small as 16 words, so that a
single-token match is often ambiguous within 256 tokens.
"""
from __future__ import annotations

import numpy as np

from llmviz.models.sim.induction_model import BOS_ID, VOCAB_SIZE

IGNORE_INDEX = -100     # F.cross_entropy's default
SPAN_MIN, SPAN_MAX = 4, 24
COPY_SHARE = 0.5        # about this share of a sequence's tokens lie in copies
SUBVOCAB_MIN = 16
HELD_OUT_SEED = 4321
MAX_LENGTH = 1 << 21    # a bound on any sequence asked for (2M tokens)


def sequence(length: int, rng: np.random.Generator, subvocab: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, predictable): `length` token ids starting with <s>, and a mask of the positions whose next
    token a copy determines (so targets[t] = tokens[t + 1] is scored where predictable[t])."""
    if not 2 <= length <= MAX_LENGTH:
        raise ValueError(f"length must be between 2 and {MAX_LENGTH:,}, got {length}")
    words = VOCAB_SIZE - 1
    pool = np.arange(1, VOCAB_SIZE) if subvocab is None else 1 + rng.choice(words, size=subvocab, replace=False)
    tokens = pool[rng.integers(0, len(pool), size=length)]
    tokens[0] = BOS_ID
    predictable = np.zeros(length, dtype=bool)
    mean_gap = (SPAN_MIN + SPAN_MAX) / 2 * (1 - COPY_SHARE) / COPY_SHARE
    at = 1 + SPAN_MAX
    while True:
        at += int(rng.integers(1, 2 * mean_gap + 1))
        span = int(rng.integers(SPAN_MIN, SPAN_MAX + 1))
        if at + span > length:
            break
        source = int(rng.integers(1, at - span + 1))   # an earlier, whole span (it may overlap earlier copies)
        tokens[at:at + span] = tokens[source:source + span]
        predictable[at:at + span - 1] = True          # from the copy's first token, its next is known
        at += span
    return tokens, predictable


def batch(n: int, length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): n training sequences, each over a sub-vocabulary of log-uniform size, y the next tokens on
    the predictable positions and IGNORE_INDEX elsewhere."""
    xs, ys = [], []
    for _ in range(n):
        size = int(np.exp(rng.uniform(np.log(SUBVOCAB_MIN), np.log(VOCAB_SIZE - 1))))
        tokens, predictable = sequence(length + 1, rng, size)
        xs.append(tokens[:-1])
        ys.append(np.where(predictable[:-1], tokens[1:], IGNORE_INDEX))
    return np.stack(xs), np.stack(ys)


def long_sequence(length: int, seed: int = HELD_OUT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The evaluation sequence: the whole vocabulary, copies reaching back anywhere (up to `length`)."""
    return sequence(length, np.random.default_rng(seed))


def accuracy(predicted: np.ndarray, tokens: np.ndarray, predictable: np.ndarray) -> float:
    """Share of the predictable positions t whose predicted next token is tokens[t + 1]."""
    scored = predictable[:-1]
    return float((predicted[:-1][scored] == tokens[1:][scored]).mean()) if scored.any() else float("nan")
