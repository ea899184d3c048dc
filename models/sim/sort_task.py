"""The letter-sorting task of the nano-GPT, defined once: alphabet, sequence format, data split.

Format (the browser LLM Visualization's sort model, after minGPT's SortDataset):
  * vocabulary A=0, B=1, C=2;
  * an example is 12 tokens: 6 input letters followed by the same letters sorted;
  * the model sees the first 11 tokens (context 11) and is trained to predict tokens 1..11,
    with the loss only on the 6 predictions of sorted letters (positions 5..10 predict
    outputs 0..5); predicting input letters is impossible and is masked out;
  * at inference the 6 inputs are given and 6 letters are generated one at a time; the last
    prediction sees the 6 inputs and the first 5 outputs, exactly the 11-token context.

There are only 3**6 = 729 distinct inputs, so "held out" means a fixed quarter of those
inputs (chosen by a CRC of the letters, independent of any seed) that training never sees.
"""
from __future__ import annotations

import itertools
import zlib

ALPHABET = "ABC"
INPUT_LENGTH = 6
CONTEXT_LENGTH = 2 * INPUT_LENGTH - 1
IGNORE_INDEX = -100  # target value that cross-entropy skips (the input positions)


class SortInputError(ValueError):
    """An input string the sort task cannot take (wrong letters or length)."""


def encode(letters: str) -> list[int]:
    return [ALPHABET.index(ch) for ch in letters]


def decode(tokens) -> str:
    return "".join(ALPHABET[int(t)] for t in tokens)


def parse_input(text: str) -> list[int]:
    """Validates a user's input string; the message names what is wrong, in one line."""
    bad = sorted({ch for ch in text if ch not in ALPHABET})
    if bad:
        raise SortInputError(f"input {text!r} has letters other than {'/'.join(ALPHABET)}: {''.join(bad)!r}")
    if len(text) != INPUT_LENGTH:
        raise SortInputError(f"input {text!r} has {len(text)} letters; the sort task takes exactly {INPUT_LENGTH}")
    return encode(text)


def sorted_answer(tokens: list[int]) -> list[int]:
    return sorted(tokens)


def is_held_out(tokens) -> bool:
    """True for the quarter of all inputs reserved for evaluation (a fixed CRC rule)."""
    return zlib.crc32(bytes(int(t) for t in tokens)) % 4 == 0


def all_inputs() -> list[list[int]]:
    return [list(p) for p in itertools.product(range(len(ALPHABET)), repeat=INPUT_LENGTH)]


def split_inputs() -> tuple[list[list[int]], list[list[int]]]:
    """(train inputs, held-out inputs), disjoint, together all 729 inputs."""
    inputs = all_inputs()
    return [x for x in inputs if not is_held_out(x)], [x for x in inputs if is_held_out(x)]


def example(tokens: list[int]) -> tuple[list[int], list[int]]:
    """(model input of 11 tokens, 11 targets with the input positions ignored)."""
    full = list(tokens) + sorted_answer(tokens)
    targets = full[1:]
    targets[: INPUT_LENGTH - 1] = [IGNORE_INDEX] * (INPUT_LENGTH - 1)
    return full[:-1], targets
