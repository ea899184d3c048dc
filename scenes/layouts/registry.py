"""The family registry: which layout function draws a spec, and what a family's layout hands back.

A family is one module with one function `(spec, n_tokens) -> FamilyLayout`, registered here under
the name models/inventory.py gives it (its FAMILY_RULES say which specs belong to it, and its tensors
are declared there). A FamilyLayout is the model as a
list of stacks, left to right, each laid out whole under its own id prefix, plus the named blocks
where one stack's output enters another (`links`, read by scenes/flow_graph.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from llmviz.models.inventory import FAMILY_RULES, family_of  # noqa: F401  (the rules are the models' own)
from llmviz.models.spec import ModelSpec

from ..layout_parts import Part


@dataclass
class StackPart:
    """One laid-out stack: ids under `prefix` ("" for the main stack), its title and its columns."""
    prefix: str
    title: str
    part: Part
    columns: int = 1
    main: bool = False


@dataclass
class FamilyLayout:
    stacks: list[StackPart]                  # left to right
    n_tokens: int                            # the main stack's token axis
    links: dict[str, str] = field(default_factory=dict)   # "memory": "audio.ln_f.out", ...
    bidirectional: int = 0                   # the main stack's prefix-LM positions (models/attention_mask.py)


FamilyFn = Callable[[ModelSpec, int], FamilyLayout]
FAMILIES: dict[str, FamilyFn] = {}
FAMILY_NAMES = [name for name, _ in FAMILY_RULES]


def register(name: str) -> Callable[[FamilyFn], FamilyFn]:
    def put(fn: FamilyFn) -> FamilyFn:
        if name not in FAMILY_NAMES:
            raise ValueError(f"no family {name!r} in models/inventory.py's FAMILY_RULES")
        FAMILIES[name] = fn
        return fn
    return put
