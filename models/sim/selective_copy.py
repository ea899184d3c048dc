"""The selective-copying task of Gu & Dao 2023 (Mamba, section 3.1, figure 2), seeded, over the moe_corpus
alphabet so mamba-copy shares mamba-tiny's tokenizer and scene; and its exact-match score.

A sequence is a window of WINDOW characters holding N_DATA data letters (drawn with replacement from DATA)
at random positions among noise dots, then the marker, then the data letters in order:

    .C..A...H.B...EE...G.D..|CAHBEEGD

The model sees the first CONTEXT = 32 characters (the scene's 32 columns) and is trained to predict the
last N_DATA; the loss is only on those answer positions (the others are IGNORE_INDEX). The positions are
random, so a fixed convolution cannot pick the letters out: the model has to select by content, which a
time-invariant SSM cannot do and Mamba's input-dependent Δ can (large on a letter, near zero on a dot).

Held out: sequences drawn from HELD_OUT_SEED. There are 8^8 · C(24, 8) ≈ 1.2·10^13 sequences, so a
training run's few hundred thousand draws and the held-out ones all but surely never meet.
"""
from __future__ import annotations

import torch

from llmviz.models.sim import moe_corpus

DATA = "ABCDEFGH"          # the letters to copy
NOISE = "."
MARKER = "|"
N_DATA = 8
WINDOW = 24                # data letters and noise, before the marker
LENGTH = WINDOW + 1 + N_DATA   # 33 characters: window, marker, answer
CONTEXT = LENGTH - 1       # what the model sees: the last answer letter is predicted, never read
ANSWER_START = WINDOW      # position whose prediction is the first answer letter (it reads the marker)
IGNORE_INDEX = -100        # cross-entropy skips it: F.cross_entropy's default ignore_index
HELD_OUT_SEED = 4321
HELD_OUT_SEQUENCES = 1024

_DATA_IDS = torch.tensor(moe_corpus.encode(DATA))
_NOISE_ID, _MARKER_ID = moe_corpus.encode(NOISE + MARKER)


def sequences(n: int, generator: torch.Generator) -> torch.Tensor:
    """n whole sequences (n, LENGTH) of token ids, drawn from `generator`."""
    if n < 1:
        raise ValueError(f"need at least one sequence, got {n}")
    # N_DATA distinct positions per row, kept in order: the first N_DATA of a random permutation, sorted
    positions = torch.rand(n, WINDOW, generator=generator).argsort(dim=1)[:, :N_DATA].sort(dim=1).values
    letters = _DATA_IDS[torch.randint(len(DATA), (n, N_DATA), generator=generator)]
    window = torch.full((n, WINDOW), _NOISE_ID, dtype=torch.long).scatter_(1, positions, letters)
    marker = torch.full((n, 1), _MARKER_ID, dtype=torch.long)
    return torch.cat([window, marker, letters], dim=1)


def examples(whole: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) from whole sequences: x the first CONTEXT ids, y the next ids on the answer positions and
    IGNORE_INDEX before them (which letter comes next inside the window is noise, not the task)."""
    x, y = whole[:, :-1], whole[:, 1:].clone()
    y[:, :ANSWER_START] = IGNORE_INDEX
    return x, y


def batch(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A training batch: examples of n fresh sequences."""
    return examples(sequences(n, generator))


def held_out(n: int = HELD_OUT_SEQUENCES, seed: int = HELD_OUT_SEED) -> torch.Tensor:
    """n whole held-out sequences (n, LENGTH), the same ones for every call with the same seed."""
    return sequences(n, torch.Generator().manual_seed(seed))


def text(ids) -> str:
    """A sequence as characters, e.g. '.C..A...H.B...EE...G.D..|CAHBEEGD'."""
    return moe_corpus.decode(ids)


def data_mask(x: torch.Tensor) -> torch.Tensor:
    """Where x's window holds a data letter: bool, x's shape, False on the marker and answer."""
    mask = torch.isin(x, _DATA_IDS)
    mask[..., WINDOW:] = False
    return mask


def noise_mask(x: torch.Tensor) -> torch.Tensor:
    """Where x's window holds a noise dot."""
    mask = x == _NOISE_ID
    mask[..., WINDOW:] = False
    return mask


def exact_matches(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per row (bool), whether the argmax at every answer position is the answer letter.

    With the answer fed back (teacher forcing) this is also greedy decoding's exact match: if the argmax
    is right at every position, greedy decoding feeds back exactly the answer, and if it is first wrong at
    one position, greedy decoding emits that wrong letter there too."""
    answer = y != IGNORE_INDEX
    right = (logits.argmax(-1) == y) | ~answer
    return right.all(dim=-1)


@torch.inference_mode()
def accuracy(model, n: int = HELD_OUT_SEQUENCES, seed: int = HELD_OUT_SEED) -> float:
    """The fraction of n held-out sequences whose N_DATA letters `model` (a causal LM over the alphabet,
    called as transformers' are: model(x).logits) copies exactly, greedy decoding."""
    x, y = examples(held_out(n, seed))
    return exact_matches(model(x).logits, y).float().mean().item()
