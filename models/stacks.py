"""The stacks a model is made of (decoder, text tower, vision tower, audio encoder, projector) and its buffers, from its spec.

`llmviz models` lists them: its table shows each model's main stack (the one with the most
weights in its layers: CLIP's vision tower, not its text tower) and --json lists every stack and
every non-trainable buffer (Whisper's sinusoidal encoder positions), which are not parameters.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from llmviz.models.inventory import BUFFER, model_tensors
from llmviz.models.spec import Architecture, EncoderComponent, ModelSpec, ProjectorComponent, Stack


@dataclass(frozen=True)
class StackInfo:
    name: str
    role: str
    layers: int
    width: int
    heads: int | None
    kv_heads: int | None
    tokens: int | None  # positions it runs over: context, image patches (+ [CLS]), audio frames
    stack: Stack | None = None  # the spec's stack (None for a projector)

    def as_dict(self) -> dict:
        out = asdict(self)
        out.pop("stack")
        return out


def _tokens(stack: Stack) -> int | None:
    patches = stack.input.n_positions()
    return patches if patches is not None else stack.context_length


def _main_name(arch: Architecture) -> tuple[str, str]:
    if arch.input.type == "patches":
        return "vision tower", "vision-encoder"
    if arch.unembedding == "none" and arch.input.type == "tokens":
        return "text tower", "text-encoder"
    return "decoder", "decoder"


def model_stacks(spec: ModelSpec) -> list[StackInfo]:
    """Every stack of the model, the architecture's own first, then its components in order."""
    arch = spec.architecture
    name, role = _main_name(arch)
    out = [StackInfo(name, role, arch.n_layers, arch.d_model, arch.n_heads, arch.kv_heads if arch.n_heads else None,
                     _tokens(arch), arch)]
    for c in arch.components:
        if isinstance(c, EncoderComponent):
            out.append(StackInfo(c.name, c.role, c.n_layers, c.d_model, c.n_heads,
                                 c.kv_heads if c.n_heads else None, _tokens(c), c))
        elif isinstance(c, ProjectorComponent):
            out.append(StackInfo(c.name, c.role, len(c.dims) - 1, max(c.dims), None, None, None, None))
    return out


def main_stack(spec: ModelSpec) -> StackInfo:
    """The stack with the most weights in its layers (about layers x width squared); the architecture's
    own on a tie."""
    stacks = [s for s in model_stacks(spec) if s.stack is not None]
    return max(stacks, key=lambda s: (s.layers * s.width * s.width, s is stacks[0]))


# What each kind of buffer is, by its id inside its stack (models/inventory.py declares them).
_BUFFER_KINDS = {"embed.pos": ("positions", "sinusoidal position table"),
                 "moe.router.bias": ("router selection bias", "per-expert bias of the top-k choice")}
_LAYER = re.compile(r"^blocks\.\d+\.")


def model_buffers(spec: ModelSpec) -> list[dict]:
    """Non-trainable tensors the model holds beside its parameters, from its inventory: fixed sinusoidal
    position tables, and DeepSeek-V3's router selection bias (moved by its load-balancing rule, not by
    gradients). A buffer every layer holds is listed once, with the layers as its first axis."""
    stacks = model_stacks(spec)
    by_prefix = {f"{s.name}.": s.name for s in stacks[1:]}  # a component's stack is named after it
    out: dict[tuple[str, str], dict] = {}
    for t in model_tensors(spec, keep=lambda t: t.kind == BUFFER):
        prefix = next((p for p in by_prefix if t.id.startswith(p)), "")
        stack = by_prefix.get(prefix, stacks[0].name)
        inner = t.id[len(prefix):]
        per_layer = _LAYER.match(inner) is not None
        inner = _LAYER.sub("", inner)
        name, kind = _BUFFER_KINDS.get(inner, (inner, "buffer"))
        name = f"{stack} {name}" if name == "positions" else name
        entry = out.get((stack, inner))
        if entry is None:
            out[stack, inner] = {"name": name, "stack": stack, "shape": ([1] if per_layer else []) + list(t.shape),
                                 "kind": kind, "values": t.count}
        else:
            entry["shape"][0] += 1
            entry["values"] += t.count
    return list(out.values())
