"""Parameter counts of a ModelSpec: total, active per token, and where they go, summed over its inventory.

What each family's layers hold is declared once, in models/inventory.py; a count here is a sum over
those tensors, so it agrees with what the scene draws and with every per-block figure by construction.
Every count is the number of scalars in the weight tensors the family's reference code creates
(nanoGPT, transformers, mamba_ssm, RWKV-LM, openai/whisper, DeepSeek-V3 inference/model.py);
fixed buffers (sinusoidal tables, DeepSeek-V3's router bias) are not parameters. "Active" is what one
token uses: everything except the routed experts it is not sent to (embeddings included, as the
published active figures count them).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from . import inventory
from .inventory import layer_key, layer_tensors, mlp_count, output_tensors, stem_tensors
from .spec import Architecture, EncoderComponent, ModelSpec, ParameterComponent, ProjectorComponent, Stack


@dataclass(frozen=True)
class ParamCount:
    total: int
    active: int
    groups: dict[str, int]                                   # where the total goes
    excluded: dict[str, int] = field(default_factory=dict)   # drawn, but not in the total


def _stack_sums(stack: Stack, group: str | None, groups: Counter) -> int:
    """Add a stack's parameters to `groups` (each layer kind's tensors summed once, times its layers);
    returns the part a single token does not use."""
    inactive = 0
    kinds = Counter(layer_key(stack, i) for i in range(stack.n_layers))
    parts = [(stem_tensors(stack), 1), (output_tensors(stack), 1)]
    parts += [(layer_tensors(stack, key), n) for key, n in kinds.items()]
    for tensors, times in parts:
        for t in tensors:
            if t.params:
                groups[group or t.group] += t.params * times
            inactive += t.inactive * times
    return inactive


def count_params(spec: ModelSpec | Architecture) -> ParamCount:
    arch = spec.architecture if isinstance(spec, ModelSpec) else spec
    groups: Counter = Counter()
    inactive = _stack_sums(arch, None, groups)
    for component in arch.components:
        groups[component.name] += component_params(component)
    groups = {g: n for g, n in groups.items() if n}
    excluded = {}
    if arch.mtp_modules:
        excluded["mtp"] = arch.mtp_modules * mtp_module_params(arch)
    total = sum(groups.values())
    return ParamCount(total=total, active=total - inactive, groups=groups, excluded=excluded)


def human(count: float | None) -> str:
    """175181291520 -> '175.2B', 6738415616 -> '6.74B'; None -> '-'."""
    if count is None:
        return "-"
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(count) >= size:
            scaled = count / size
            return f"{scaled:.2f}{unit}" if abs(scaled) < 10 else f"{scaled:.1f}{unit}"
    return str(int(count))


# ---------------------------------------------------------------- building blocks

def norm_params(stack: Stack, width: int) -> int:
    """LayerNorm has a weight and a bias; RMSNorm only a weight."""
    return 2 * width if stack.norm == "layernorm" else width


def linear_params(n_in: int, n_out: int, bias: bool) -> int:
    return n_in * n_out + (n_out if bias else 0)


def expert_params(arch: Architecture, d_ff):
    """One expert's MLP (gate, up and down for SwiGLU); `d_ff` may be a numpy array of widths."""
    return mlp_count(arch, d_ff)


def component_params(component) -> int:
    """A component outside the language stack (vision tower, projector, free tensor), whole."""
    if isinstance(component, EncoderComponent):
        groups: Counter = Counter()
        _stack_sums(component, component.name, groups)
        return sum(groups.values())
    if isinstance(component, ProjectorComponent):
        dims = component.dims
        return sum(linear_params(a, b, component.bias) for a, b in zip(dims, dims[1:]))
    if isinstance(component, ParameterComponent):
        return math.prod(component.shape)
    raise TypeError(f"unknown component {component!r}")


def mtp_module_params(arch: Architecture) -> int:
    """One DeepSeek-V3 multi-token-prediction module without the embedding and head it shares
    with the main model: two RMSNorms, the 2d->d projection, one MoE block and its output norm."""
    return inventory.mtp_module_count(arch)
