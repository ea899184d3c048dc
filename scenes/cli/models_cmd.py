"""`llmviz models`: list the known architectures with computed parameter counts, show one, add one.

    llmviz models              table of every built-in and user spec
    llmviz models --json       the same as a JSON list
    llmviz models --show ID    one spec: shape, parameters, sources, notes
    llmviz models --add FILE   validate a spec file and copy it into the user's spec folder
    llmviz models --import-config PATH [--json] [--add] [--id ID]
                               a Hugging Face config.json (or a folder holding one) as a spec,
                               printed with its counts; --add keeps it in the user's specs

Problems with a user's file are one line on stderr and exit code 2, never a traceback; an
imported config is written only once its whole spec is valid, and atomically.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

from llmviz.models.cache import kv_cache_bytes_per_token
from llmviz.models.params import count_params, human
from llmviz.models.stacks import main_stack, model_buffers, model_stacks
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
    parser.add_argument("--show", metavar="ID", help="print one spec with its sources and notes")
    # --add FILE adds a spec file; a bare --add after --import-config keeps the imported spec.
    parser.add_argument("--add", metavar="FILE", nargs="?", const=True,
                        help="validate a spec file (.json or .toml) and add it to the user's specs; "
                             "with --import-config, no FILE: add the imported spec")
    parser.add_argument("--import-config", metavar="PATH",
                        help="read a Hugging Face config.json (or a folder holding one) into a "
                             "spec and print it with its counts (nothing is downloaded)")
    parser.add_argument("--id", metavar="ID", dest="model_id",
                        help="with --import-config: the spec's id (default: from the folder's name)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    problem = _argument_problem(args)
    if problem:
        print(f"llmviz models: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if getattr(args, "import_config", None):
        return _import(args.import_config, add=args.add is True, as_json=args.json,
                       model_id=getattr(args, "model_id", None))
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


def _argument_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the combination of options, or None (--show, --add FILE and
    --import-config are separate actions; a bare --add and --id belong to --import-config)."""
    show, add = getattr(args, "show", None), getattr(args, "add", None)
    imported, model_id = getattr(args, "import_config", None), getattr(args, "model_id", None)
    for flag, value, what in (("show", show, "model id"), ("add", add, "file"),
                              ("import-config", imported, "path"), ("id", model_id, "id")):
        if isinstance(value, str) and not value.strip():
            return f"--{flag} needs a {what}"
    actions = [f"--{flag}" for flag, value in (("show", show), ("import-config", imported),
                                               ("add", add if isinstance(add, str) else None))
               if value is not None]
    if len(actions) > 1:
        return f"{actions[0]} and {actions[1]} cannot be used together" + (
            " (with --import-config, --add takes no file)" if imported and isinstance(add, str) else "")
    if add is True and not imported:
        return "--add needs a file"
    if model_id is not None and not imported:
        return "--id names an imported spec; use it with --import-config"
    return None


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
        "main_stack": main_stack(spec).name,
        "stacks": [stack.as_dict() for stack in model_stacks(spec)],
        "buffers": model_buffers(spec),
        # the main stack's attention cache per position, bf16 (models/cache.py); 0 for recurrent stacks
        "kv_cache_bytes_per_token": kv_cache_bytes_per_token(arch),
    }


def table(registry: Registry) -> str:
    header = ("ID", "NAME", "KIND", "LAYERS", "WIDTH", "HEADS", "STACKS", "EXPERTS", "TOTAL", "ACTIVE",
              "SPECULATIVE")
    rows = [header] + [_row(spec) for spec in registry]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    right = {3, 4, 5, 6, 8, 9}     # numbers line up on the right
    lines = ["  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in rows]
    return "\n".join(lines)


def _row(spec: ModelSpec) -> tuple[str, ...]:
    arch, counted = spec.architecture, count_params(spec)
    name = spec.name if len(spec.name) <= _NAME_WIDTH else spec.name[:_NAME_WIDTH - 3] + "..."
    main = main_stack(spec)  # CLIP's vision tower, not its text tower; --json lists every stack
    stacks = model_stacks(spec)
    return (spec.id, name, spec.kind, str(main.layers), str(main.width), _heads(main.stack),
            str(len(stacks)) if len(stacks) > 1 else "1", _experts(arch), human(counted.total),
            human(counted.active), "yes" if spec.speculative else "")


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


def _import(path: str, add: bool, as_json: bool, model_id: str | None) -> int:
    """Read a config.json into a spec, print it with its counts, and with ``add`` keep it."""
    from llmviz.models.hf_config import import_config

    try:
        imported = import_config(path, model_id=model_id)
    except SpecError as error:
        print(f"llmviz models: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    target = None
    if add:
        try:
            target = _add_imported(imported)
        except SpecError as error:
            message = error.message.replace("choose another id", "choose another with --id")
            print(f"llmviz models: {SpecError(str(imported.path), error.field, message)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except OSError as error:
            print(f"llmviz models: cannot write {imported.spec.id!r} into {str(user_specs_dir())!r}: "
                  f"{error.strerror or error}", file=sys.stderr)
            return EXIT_ENV
    spec = imported.spec
    if as_json:
        print(json.dumps(_details(spec) | {"spec": imported.data,
                                           "added": str(target) if target else None}, indent=2))
    else:
        print(describe(spec))
        if target:
            print(f"added {spec.id} ({spec.name}) as {target}")
    return EXIT_OK


def _add_imported(imported) -> Path:
    """The imported spec written as <id>.json through `add_user_spec`: the same validation, id
    rules (a user spec of the same id is replaced, a built-in id refused) and atomic write."""
    from llmviz.common.atomic import write_atomic

    with tempfile.TemporaryDirectory(prefix="llmviz-import-") as folder:
        staged = Path(folder) / f"{imported.spec.id}.json"
        write_atomic(staged, json.dumps(imported.data, indent=2) + "\n")  # the one write path, even for a staging file
        _, target = add_user_spec(staged)
    return target


def _details(spec: ModelSpec) -> dict:
    """--show --json: the summary row with sources, notes and where the parameters go."""
    return summary(spec) | {"sources": list(spec.sources), "notes": spec.notes,
                            "groups": count_params(spec).groups,
                            "per_layer": layer_counts(spec.architecture)}


def layer_counts(arch: Architecture) -> list[dict]:
    """Each kind of layer in the main stack (its mixer, MoE or MLP) with the parameters of one:
    counted as the growth of the whole model's total when the stack gains that layer, so the
    figures follow count_params exactly."""
    kinds: dict[tuple, dict] = {}
    arch = dataclasses.replace(arch, mtp_modules=0)     # MTP is outside the total and the stack
    for index, mixer in enumerate(arch.layer_mixers()):
        moe = arch.is_moe_layer(index)
        ffn = None if mixer.startswith("rwkv") else "MoE" if moe else "MLP" if arch.d_ff else None
        first_rwkv = index == 0 and mixer.startswith("rwkv")       # layer 0 also norms the embedding
        key = (mixer, ffn, first_rwkv)
        if key not in kinds:
            grown = count_params(dataclasses.replace(arch, n_layers=index + 1)).total
            before = count_params(dataclasses.replace(arch, n_layers=index)).total
            name = mixer + (f" + {ffn}" if ffn else "") + (" (with ln0)" if first_rwkv else "")
            kinds[key] = {"kind": name, "first": index, "layers": 0, "params": grown - before}
        kinds[key]["layers"] += 1
    return list(kinds.values())


def _show(registry: Registry, model_id: str, as_json: bool) -> int:
    try:
        spec = registry.get(model_id)
    except UnknownModelError as error:
        print(f"llmviz models: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if as_json:
        print(json.dumps(_details(spec), indent=2))
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
    lines.append("per layer: " + ", ".join(f"{kind['kind']} {human(kind['params'])} x {kind['layers']}"
                                           for kind in layer_counts(arch)))
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
