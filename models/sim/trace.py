"""ActivationTrace: the numbers one forward pass produced, keyed by the layout's tensor ids.

The same container carries a model's weights (see NanoGPT.weights), so the scene binds
activations and parameters to boxes the same way: look up the id, read the axes.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np


class ActivationTrace(Mapping):
    """An ordered, read-only map tensor id -> numpy array, with the meaning of each axis.

    `axes[id]` names every axis of `trace[id]` (see tensor_ids.AXES), for example
    ("t", "c") for a residual-stream tensor or ("t", "t'") for an attention pattern.
    """

    def __init__(self, entries: Sequence[tuple[str, np.ndarray, tuple[str, ...]]]):
        self._arrays: dict[str, np.ndarray] = {}
        self._axes: dict[str, tuple[str, ...]] = {}
        for tensor_id, array, axes in entries:
            if tensor_id in self._arrays:
                raise ValueError(f"duplicate tensor id {tensor_id!r}")
            if array.ndim != len(axes):
                raise ValueError(f"{tensor_id}: array has {array.ndim} axes, names given {axes}")
            array.setflags(write=False)  # shared with the render thread; nobody may edit it
            self._arrays[tensor_id] = array
            self._axes[tensor_id] = tuple(axes)

    def __getitem__(self, tensor_id: str) -> np.ndarray:
        return self._arrays[tensor_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def axes(self, tensor_id: str) -> tuple[str, ...]:
        return self._axes[tensor_id]

    def __repr__(self) -> str:
        return f"ActivationTrace({len(self)} tensors)"
