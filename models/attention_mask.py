"""Which keys each query may attend to: causal, or a prefix-LM's bidirectional prefix (PaliGemma).

One rule for everything that draws or explains a mask: the scene paints the masked cells of a model's
scores from it, and the captions name the same prefix.
"""
from __future__ import annotations

import re

import numpy as np

# Blocks whose cells for later keys are removed by construction: attention's masked scores (−∞ before the
# softmax), and what a recurrent layer's output reads from each earlier token — Mamba's and RWKV's hidden
# attention α and Mamba-2's SSD matrices, zero for later tokens because the recurrence has not reached them.
_MASKED_BLOCK = re.compile(r".*\.(scores_masked|alpha|ssd\.\d+)$")


def is_masked_block(tensor_id: str) -> bool:
    """Whether the block's query × key cells follow a mask (the scene hatches the removed ones)."""
    return _MASKED_BLOCK.fullmatch(tensor_id) is not None


def key_visible(n_queries: int, n_keys: int, prefix: int = 0) -> np.ndarray:
    """(n_queries, n_keys) booleans: query t sees key s when s <= t (causal) or both lie in the first
    ``prefix`` positions, which attend to each other both ways (a prefix-LM: the image and the prompt)."""
    t = np.arange(n_queries)[:, None]
    s = np.arange(n_keys)[None, :]
    return (s <= t) | (s < prefix)


def mask_caption(n_positions: int, prefix: int = 0) -> str:
    """The masked scores' caption: "causal mask", or which part of a prefix-LM is causal."""
    if prefix <= 0:
        return "causal mask"
    return f"prefix-LM mask: first {prefix} both ways, last {n_positions - prefix} causal"


def masked_scores_template(n_queries: int, n_keys: int, prefix: int = 0) -> np.ndarray:
    """What a masked-scores block holds before any values arrive: −∞ where the mask removes a score,
    NaN (empty) elsewhere."""
    out = np.full((n_queries, n_keys), np.nan, np.float32)
    out[~key_visible(n_queries, n_keys, prefix)] = -np.inf
    return out
