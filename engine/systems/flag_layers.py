"""One owner for the highlight / dim render flags: modes write named layers, one system combines them.

Focus, chapters, hover, selection and mode-specific lighting (shared experts, a hovered text
reference) each say which entities they want lit or dimmed, in their own layer; nobody writes
``renderable.flags`` directly. The system recombines only when a layer changed, in whole-array
numpy operations:

    highlighted = any strong layer lights it, or a soft layer lights it and nothing dims it
    dimmed      = any layer dims it (a layer's own lit entities are never dimmed by that layer)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ecs.components import FLAG_DIMMED, FLAG_HIGHLIGHTED

_EMPTY = np.zeros(0, np.int64)


@dataclass
class FlagLayer:
    lit: np.ndarray  # entity slots drawn highlighted
    dim: np.ndarray | None = None  # slots drawn dimmed; None with dim_rest: every slot not lit
    dim_rest: bool = False
    soft: bool = False  # lights only what no layer dims (e.g. a feature that is always shown)


class FlagLayers:
    """The flag-composition system: ``set``/``clear`` layers by name; ``__call__(frame)`` applies changes."""

    def __init__(self, world):
        self.world = world
        self.layers: dict[str, FlagLayer] = {}
        self.version = 0  # bumped on every change; the system applies when it moved
        # Nothing is written until a layer is set: flags from elsewhere (tests, tools) stand until then.
        self._applied = 0
        self._applied_size = world.size

    def set(self, name: str, lit=None, *, dim=None, dim_rest: bool = False, soft: bool = False) -> None:
        lit = _EMPTY if lit is None else np.asarray(lit, np.int64).reshape(-1)
        dim = None if dim is None else np.asarray(dim, np.int64).reshape(-1)
        old = self.layers.get(name)
        if old is not None and old.dim_rest == dim_rest and old.soft == soft and _same(old.lit, lit) \
                and _same(old.dim, dim):
            return  # the same layer again (a per-frame writer): nothing to recompose
        self.layers[name] = FlagLayer(lit, dim, dim_rest, soft)
        self.version += 1

    def clear(self, name: str) -> None:
        if self.layers.pop(name, None) is not None:
            self.version += 1

    def masks(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(highlighted, dimmed) bool arrays over ``size`` slots, as the rule in the module docstring says."""
        strong = np.zeros(size, bool)
        soft = np.zeros(size, bool)
        dimmed = np.zeros(size, bool)
        for layer in self.layers.values():
            lit = layer.lit[layer.lit < size]
            (soft if layer.soft else strong)[lit] = True
            if layer.dim_rest:
                own = np.ones(size, bool)
                own[lit] = False
                dimmed |= own
            elif layer.dim is not None:
                dimmed[layer.dim[layer.dim < size]] = True
        return strong | (soft & ~dimmed), dimmed

    def __call__(self, frame=None) -> None:
        size = self.world.size
        if self.version == self._applied and (size == self._applied_size or not self.layers):
            return
        flags = self.world["renderable"]["flags"]
        highlighted, dimmed = self.masks(size)
        both = flags.dtype.type(FLAG_HIGHLIGHTED | FLAG_DIMMED)
        view = flags[:size]
        view &= ~both  # a numpy uint8 complement stays in range
        view[highlighted] |= flags.dtype.type(FLAG_HIGHLIGHTED)
        view[dimmed] |= flags.dtype.type(FLAG_DIMMED)
        self._applied, self._applied_size = self.version, size


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and bool(np.array_equal(a, b))
