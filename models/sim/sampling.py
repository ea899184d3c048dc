"""The one next-token sampler of the small models, shared by the window's session and `llmviz generate`.

Both draw from the same numpy generator seeded the same way and turn one uniform number into a
token the same way, so a seed and a temperature give the same text wherever the model runs.
Numbers only: the window's main thread calls it and never imports torch.
"""
from __future__ import annotations

import numpy as np


def next_token_distribution(logits, temperature: float) -> np.ndarray:
    """softmax(logits / temperature) in float64; at temperature 0 (greedy) the plain softmax."""
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    z = np.asarray(logits, np.float64)
    if temperature > 0:
        z = z / temperature
    e = np.exp(z - z.max())  # shifted so that a small temperature cannot overflow
    return e / e.sum()


class Sampler:
    """Picks tokens from distributions: argmax at temperature 0, else one seeded uniform draw per token."""

    def __init__(self, seed: int = 0):
        self._rng = np.random.default_rng(seed)

    def pick(self, probs: np.ndarray, temperature: float) -> int:
        if temperature == 0:
            return int(np.argmax(probs))
        # Inverse CDF of one uniform: the token depends only on the generator's stream and on probs.
        cdf = np.cumsum(probs)
        return int(min(np.searchsorted(cdf, self._rng.random() * cdf[-1], side="right"), len(probs) - 1))
