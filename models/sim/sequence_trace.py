"""What the traces of the transformers-format text models share (mamba_trace, mamba2_trace, rwkv_trace,
jamba_trace): token ids checked into one row, the two ends of a forward (the input check, the embedding
and the head, recorded under the layout's ids), a recorded forward turned into an ActivationTrace in the
order its ids list, and the recurrent form's one-token step."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from llmviz.models.sim.trace import ActivationTrace


def token_tensor(tokens, vocab: int) -> torch.Tensor:
    """`tokens` as a (1, T) int64 tensor, refused in one line when empty or outside [0, vocab)."""
    idx = torch.as_tensor(np.asarray(list(tokens), dtype=np.int64)).view(1, -1)
    if idx.numel() < 1:
        raise ValueError("tokens: at least one token is needed")
    if int(idx.min()) < 0 or int(idx.max()) >= vocab:
        raise ValueError(f"tokens: ids must lie in [0, {vocab}), got {int(idx.min())}..{int(idx.max())}")
    return idx


def check_batch(idx: torch.Tensor) -> None:
    """A forward's input: (batch, tokens) ids, at least one token."""
    if idx.dim() != 2 or idx.shape[1] < 1:
        raise ValueError(f"idx must be (batch, tokens) with at least one token, got shape {tuple(idx.shape)}")


def record_embedding(record, idx: torch.Tensor, x: torch.Tensor) -> None:
    """Batch row 0's token ids and embeddings, where a forward records."""
    if record is not None:
        record("tokens", idx[0])
        record("embed.out", x[0])


def lm_head(h: torch.Tensor, weight: torch.Tensor, record) -> torch.Tensor:
    """The logits of the final norm's output h, recorded with their softmax where a forward records."""
    logits = F.linear(h, weight)
    if record is not None:
        record("logits", logits[0])
        record("probs", torch.softmax(logits[0], dim=-1))
    return logits


def numpy_copies(tensors: dict) -> dict[str, np.ndarray]:
    """Each tensor as a numpy array of its own (the trace is shared with the render thread)."""
    return {k: v.detach().contiguous().numpy().copy() for k, v in tensors.items()}


def recorded(forward, model, tokens, state=None) -> dict[str, np.ndarray]:
    """Everything `forward(model, idx, state, record=...)` records for one sequence, as numpy arrays; from
    `state` (None: the model's zero state), the state after earlier tokens that are not traced."""
    got: dict[str, torch.Tensor] = {}
    forward(model, token_tensor(tokens, model.config.vocab_size), state, record=got.__setitem__)
    return numpy_copies(got)


def in_order(arrays: dict[str, np.ndarray], ids: list[tuple[str, tuple[str, ...]]],
             what: str = "trace") -> ActivationTrace:
    """The arrays as an ActivationTrace in the order of `ids` (id, axes), which must name exactly them."""
    if set(arrays) != {i for i, _ in ids}:
        raise RuntimeError(f"{what} ids differ from {what}_ids: {sorted(set(arrays) ^ {i for i, _ in ids})}")
    return ActivationTrace([(i, arrays[i], axes) for i, axes in ids])


def step(forward, model, token: int, state):
    """One token through `forward` from `state` → (logits (vocab,) as numpy, the state after it)."""
    out = forward(model, token_tensor([token], model.config.vocab_size), state)
    return out[0][0, -1].numpy().copy(), out[1]
