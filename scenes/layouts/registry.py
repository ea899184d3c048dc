"""The family registry: which layout function draws a spec, and what a family's layout hands back.

A family is one module with one function `(spec, n_tokens) -> FamilyLayout`, registered here under
a name with the rule that picks it (FAMILY_RULES, tried in order). A FamilyLayout is the model as a
list of stacks, left to right, each laid out whole under its own id prefix, plus the named blocks
where one stack's output enters another (`links`, read by scenes/flow_graph.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from llmviz.models.spec import Architecture, ModelSpec

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

# (family, rule) in order: the first rule true of the architecture picks the family.
FAMILY_RULES: list[tuple[str, Callable[[Architecture], bool]]] = [
    ("encoder-decoder", lambda a: a.cross_attention),
    ("clip", lambda a: a.fusion == "contrastive"),
    ("vision-language", lambda a: a.fusion in ("prefix-tokens", "native")),
    ("vit", lambda a: a.input.type == "patches"),
    ("decoder", lambda a: True),
]


def register(name: str) -> Callable[[FamilyFn], FamilyFn]:
    def put(fn: FamilyFn) -> FamilyFn:
        FAMILIES[name] = fn
        return fn
    return put


def family_of(spec: ModelSpec) -> str:
    arch = spec.architecture
    return next(name for name, rule in FAMILY_RULES if rule(arch))
