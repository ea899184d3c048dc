"""`llmviz models`: list the known architectures with computed parameter counts, show one, add one.

    llmviz models              table of every built-in and user spec
    llmviz models --json       the same as a JSON list
    llmviz models --show ID    one spec: shape, parameters, sources, notes
    llmviz models --add FILE   validate a spec file and copy it into the user's spec folder

Problems with a user's file are one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys

from llmviz.models.params import count_params, human
from llmviz.models.registry import (Registry, UnknownModelError, add_user_spec, load_registry,
                                    user_specs_dir)
from llmviz.models.spec import (Architecture, EncoderComponent, ModelSpec, ParameterComponent,
                                ProjectorComponent, SpecError, Stack)

EXIT_OK, EXIT_ENV, EXIT_BAD_INPUT = 0, 1, 2
_NAME_WIDTH = 38


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "models", help="list model architectures and their parameter counts",
        description="List the model architectures llmviz knows, with parameter counts computed "
                    f"from each spec. User specs are read from {user_specs_dir()}.")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--show", metavar="ID", help="print one spec with its sources and notes")
    action.add_argument("--add", metavar="FILE",
                        help="validate a spec file (.json or .toml) and add it to the user's specs")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    for flag in ("add", "show"):
        value = getattr(args, flag, None)
        if value is not None and not value.strip():
            print(f"llmviz models: --{flag} needs a {'file' if flag == 'add' else 'model id'}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if getattr(args, "add", None):
        return _add(args.add)
    registry = load_registry()
    for problem in registry.problems:
        print(f"llmviz models: skipped {problem}", file=sys.stderr)
    if getattr(args, "show", None):
        return _show(registry, args.show, as_json=getattr(args, "json", False))
    if getattr(args, "json", False):
        print(json.dumps([summary(spec) for spec in registry], indent=2))
    else:
        print(table(registry))
    return EXIT_OK


def summary(spec: ModelSpec) -> dict:
    """The fields of one row, as --json prints them."""
    arch, counted = spec.architecture, count_params(spec)
    return {
        "id": spec.id, "name": spec.name, "kind": spec.kind, "version": spec.version,
        "layers": arch.n_layers, "d_model": arch.d_model,
        "heads": arch.n_heads, "kv_heads": arch.kv_heads if arch.n_heads else None,
        "attention": arch.attention_kind,
        "experts": arch.moe.n_experts if arch.moe else None,
        "top_k": arch.moe.top_k if arch.moe else None,
        "shared_experts": arch.moe.n_shared_experts if arch.moe else None,
        "params_total": counted.total, "params_active": counted.active,
        "params_stated": spec.params_stated, "params_stated_active": spec.params_stated_active,
        "params_stated_basis": spec.stated.basis if spec.stated.total else None,
        "speculative": spec.speculative, "invented": list(spec.invented),
        "origin": spec.origin,
    }


def table(registry: Registry) -> str:
    header = ("ID", "NAME", "KIND", "LAYERS", "WIDTH", "HEADS", "EXPERTS", "TOTAL", "ACTIVE",
              "SPECULATIVE")
    rows = [header] + [_row(spec) for spec in registry]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    right = {3, 4, 5, 7, 8}        # numbers line up on the right
    lines = ["  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in rows]
    return "\n".join(lines)


def _row(spec: ModelSpec) -> tuple[str, ...]:
    arch, counted = spec.architecture, count_params(spec)
    name = spec.name if len(spec.name) <= _NAME_WIDTH else spec.name[:_NAME_WIDTH - 3] + "..."
    return (spec.id, name, spec.kind, str(arch.n_layers), str(arch.d_model), _heads(arch),
            _experts(arch), human(counted.total), human(counted.active),
            "yes" if spec.speculative else "")


def _heads(stack: Stack) -> str:
    if stack.n_heads is None or "attention" not in stack.layer_mixers():
        return "-"
    if stack.kv_heads != stack.n_heads and not getattr(stack, "mla", None):
        return f"{stack.n_heads}/{stack.kv_heads}"
    return str(stack.n_heads)


def _experts(arch: Architecture) -> str:
    if arch.moe is None:
        return "-"
    shared = f"+{arch.moe.n_shared_experts}" if arch.moe.n_shared_experts else ""
    return f"{arch.moe.n_experts}{shared} top-{arch.moe.top_k}"


def _add(path: str) -> int:
    try:
        spec, target = add_user_spec(path)
    except SpecError as error:
        print(f"llmviz models: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        print(f"llmviz models: cannot write {path!r} into {str(user_specs_dir())!r}: {error.strerror or error}",
              file=sys.stderr)
        return EXIT_ENV
    print(f"added {spec.id} ({spec.name}) as {target}")
    return EXIT_OK


def _show(registry: Registry, model_id: str, as_json: bool) -> int:
    try:
        spec = registry.get(model_id)
    except UnknownModelError as error:
        print(f"llmviz models: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if as_json:
        print(json.dumps(summary(spec) | {"sources": list(spec.sources), "notes": spec.notes,
                                          "groups": count_params(spec).groups}, indent=2))
    else:
        print(describe(spec))
    return EXIT_OK


def describe(spec: ModelSpec) -> str:
    """A readable page for one spec: what it is, what it costs, where the numbers come from."""
    arch, counted = spec.architecture, count_params(spec)
    lines = [f"{spec.name}  [{spec.id}]"]
    if spec.aliases:
        lines.append(f"also: {', '.join(spec.aliases)}")
    lines.append(f"kind: {spec.kind}" + (f"   version: {spec.version}" if spec.version else ""))
    if spec.speculative:
        lines.append("SPECULATIVE: not a published architecture"
                     + (f"; invented: {', '.join(spec.invented)}" if spec.invented else ""))
    lines.append("stack: " + _stack_line(arch))
    if arch.hybrid:
        lines.append("layer pattern: " + " ".join(arch.hybrid.period) + " (repeated)")
    if arch.mla:
        m = arch.mla
        lines.append(f"MLA: q rank {m.q_lora_rank}, kv rank {m.kv_lora_rank}, qk dims "
                     f"{m.qk_nope_head_dim}+{m.qk_rope_head_dim} rope, v dim {m.v_head_dim}")
    if arch.moe:
        m = arch.moe
        where = "all layers" if m.layers is None else (
            f"layers {m.layers.start}..{(m.layers.stop or arch.n_layers) - 1} step {m.layers.step}")
        shared = f", {m.n_shared_experts} shared" if m.n_shared_experts else ""
        lines.append(f"MoE: {m.n_experts} experts{shared}, top-{m.top_k}, expert FFN "
                     f"{m.expert_d_ff}, routing {m.routing}, {where}")
    if arch.ssm:
        s = arch.ssm
        lines.append(f"SSM: d_state {s.d_state}, d_conv {s.d_conv}, expand {s.expand}"
                     + (f", dt_rank {s.dt_rank}" if s.dt_rank else "")
                     + (f", head_dim {s.head_dim}" if s.head_dim else ""))
    if arch.modalities != ("text",) or arch.fusion:
        lines.append(f"modalities: {', '.join(arch.modalities)}"
                     + (f"   fusion: {arch.fusion}" if arch.fusion else ""))
    for component in arch.components:
        lines.append(f"component {component.name} ({component.role}): {_component_line(component)}")
    stated = ""
    if spec.stated.total:
        stated = f"; stated {spec.stated.total}"
        stated += " (a count)" if spec.stated.basis == "count" else " (a size label)"
    lines.append(f"parameters: {human(counted.total)} ({counted.total:,}) computed{stated}")
    if counted.active != counted.total or spec.stated.active:
        lines.append(f"active per token: {human(counted.active)}"
                     + (f"; stated {spec.stated.active}" if spec.stated.active else ""))
    lines.append("  " + ", ".join(f"{group} {human(n)}" for group, n in counted.groups.items()))
    for group, n in counted.excluded.items():
        lines.append(f"  not in the total: {group} {human(n)}")
    lines.append("sources:")
    lines += [f"  - {source}" for source in spec.sources]
    if spec.unverified:
        lines.append("unverified:")
        lines += [f"  - {item}" for item in spec.unverified]
    if spec.notes:
        lines.append(f"notes: {spec.notes}")
    return "\n".join(lines)


def _stack_line(stack: Stack) -> str:
    parts = [f"{stack.n_layers} layers x {stack.d_model} wide"]
    if stack.n_heads and "attention" in stack.layer_mixers():
        parts.append(f"{_heads(stack)} heads")
    if isinstance(stack, Architecture) and stack.mixer != "attention" and not stack.hybrid:
        parts.append(f"{stack.mixer} blocks")
    if stack.d_ff:
        parts.append(f"FFN {stack.d_ff} ({stack.activation})")
    if stack.vocab_size:
        parts.append(f"vocab {stack.vocab_size}")
    if stack.input.type == "patches":
        parts.append(f"{stack.input.patch_size}px patches of {stack.input.image_size}px images")
    if stack.context_length:
        parts.append(f"context {stack.context_length:,}")
    parts.append(f"positions {stack.pos_encoding}")
    parts.append(stack.norm)
    if stack.unembedding != "none":
        parts.append(f"{stack.unembedding} embeddings")
    return ", ".join(parts)


def _component_line(component) -> str:
    if isinstance(component, EncoderComponent):
        return _stack_line(component)
    if isinstance(component, ProjectorComponent):
        return " -> ".join(map(str, component.dims)) + (
            f" ({component.activation})" if component.activation else "")
    if isinstance(component, ParameterComponent):
        return f"tensor of shape {list(component.shape)}"
    return repr(component)
