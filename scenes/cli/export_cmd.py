"""`llmviz export-hf MODEL DIR [--force]`: a trained small model as a transformers folder (config.json,
model.safetensors), loadable with AutoModelForCausalLM.from_pretrained(DIR), no network needed.

A model that cannot be exported, or a folder that cannot receive it, is one line and exit code 2;
a failed write is one line and exit code 1, and leaves no partial folder (models/export_hf.py).
"""
from __future__ import annotations

import sys

from llmviz.scenes.cli.common import shown

MAX_MODEL_ID = 200  # a model id is a short name; a longer argument is a mistake, not a model


def add_parser(subparsers) -> None:
    from llmviz.models.export_hf import OUTPUT_FILES, exportable_ids

    p = subparsers.add_parser(
        "export-hf", help="write a trained small model in transformers' format (no display needed)",
        description=f"Write MODEL's trained weights to DIR as {' and '.join(OUTPUT_FILES)}, which "
                    "transformers loads with AutoModelForCausalLM.from_pretrained(DIR) and which compute "
                    f"the same logits as llmviz's simulation. Exportable: {', '.join(exportable_ids())}.")
    p.add_argument("model", metavar="MODEL", help="model id, e.g. nano-gpt")
    p.add_argument("dir", metavar="DIR", help="output folder: missing or empty (its parent must exist)")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty DIR, replacing its config.json and model.safetensors")
    p.set_defaults(func=run)


def _fail(message: str, code: int = 2) -> int:
    print(f"llmviz export-hf: error: {message}", file=sys.stderr)
    return code


def run(args) -> int:
    from llmviz.models.export_hf import ExportError, check_folder, export, resolve

    if not args.model.strip() or len(args.model) > MAX_MODEL_ID:
        return _fail(f"MODEL {shown(args.model)} is not a model id")
    try:  # the model and the folder first, before torch is imported: a refusal answers at once
        resolve(args.model)
        check_folder(args.dir, args.force)
    except ExportError as exc:
        return _fail(str(exc))
    import torch

    from llmviz.models.sim.weights_file import WeightsError

    torch.set_num_threads(1)  # loading 86k parameters needs no more, and leaves the cores to others
    try:
        done = export(args.model, args.dir, force=args.force)
    except ExportError as exc:  # which model or folder, and why
        return _fail(str(exc))
    except WeightsError as exc:  # the shipped weights file itself is broken
        return _fail(f"cannot load weights: {exc}", 1)
    except OSError as exc:
        return _fail(f"cannot write {shown(args.dir, 200)}: {exc.strerror or exc}; nothing was written", 1)
    print(f"wrote {done.folder} ({done.model_id} as transformers {done.model_class}, {done.parameters:,} parameters)")
    width = max(len(name) for name, _ in done.files)
    for name, size in done.files:
        print(f"  {name:<{width}}  {size:>9,} bytes")
    print("load it with:")
    print(f"  {done.load_line}")
    return 0
