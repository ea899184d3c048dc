"""`llmviz trace --model DIR (--input TEXT | --ids 5,17,99) --out run.llmtrace [--tensors PATTERN] [--device …] [--json]`:
record one forward pass of a local model folder where its weights are, to explore it elsewhere with `llmviz open`.

A folder that cannot be read (no config.json, pickled weights only, an unsupported family, too many
parameters for the device) or an input that does not fit is one line and exit code 2; a failed write
leaves no partial file (models/trace_file.py writes atomically).
"""
from __future__ import annotations

import fnmatch
import json
import re

from llmviz.scenes.cli.main import CliError

MAX_IDS_TEXT = 200_000     # characters of --ids; more is no token list


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "trace", help="record a local Hugging Face model's forward pass to a .llmtrace file (explore it with llmviz open)",
        description="Run a local model folder (config.json and *.safetensors; never a pickle, never remote code) on one "
                    "input with transformers, record what the explorer draws (the residual stream, every head's "
                    "attention, the MLP's activations, the router's logits, the logits), and write it with its config "
                    "and tokens to one file that `llmviz open FILE` explores without the weights.")
    p.add_argument("--model", required=True, metavar="DIR", help="a Hugging Face model folder")
    given = p.add_mutually_exclusive_group(required=True)
    given.add_argument("--input", metavar="TEXT", help="text, through the folder's tokenizer")
    given.add_argument("--ids", metavar="5,17,99", help="token ids, for a folder without a tokenizer")
    p.add_argument("--out", metavar="run.llmtrace", help="the trace file to write")
    p.add_argument("--tensors", metavar="PATTERN", default="*",
                   help="record only ids matching this glob (e.g. 'blocks.*.resid2'); tokens and logits are kept")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                   help="where to run it: cuda shards the model across every GPU (accelerate's device_map=auto); "
                        "auto takes the GPUs when there are any")
    p.add_argument("--json", action="store_true", help="print a summary as JSON, with the last position's logits")
    p.set_defaults(func=run)


def parse_ids(text: str) -> list[int]:
    if len(text) > MAX_IDS_TEXT:
        raise CliError(f"llmviz trace: --ids: {len(text):,} characters; at most {MAX_IDS_TEXT:,}")
    if not re.fullmatch(r"\s*\d+(\s*,\s*\d+)*\s*", text):
        raise CliError("llmviz trace: --ids: give token ids as comma-separated whole numbers, e.g. 5,17,99")
    return [int(v) for v in text.split(",")]


def run(args) -> int:
    from llmviz.models.hf_record import MAX_RECORDED_BYTES, RecordError, open_folder, record, token_ids
    from llmviz.models.spec import SpecError
    from llmviz.models.trace_file import SUFFIX, TraceFileError, save_trace
    from llmviz.scenes.cli.common import Progress

    if not args.out and not args.json:
        raise CliError("llmviz trace: give --out run.llmtrace (or --json for a summary)")
    if args.out and not args.out.endswith(SUFFIX):
        raise CliError(f"llmviz trace: --out {args.out!r}: a trace file's name ends in {SUFFIX}")
    ids = parse_ids(args.ids) if args.ids is not None else None
    progress = Progress("trace")
    try:
        opened = open_folder(args.model, lambda stage, fraction: progress(int(fraction * 100), 100), args.device)
        tokens = token_ids(opened, args.input, ids)
        kept = record(opened, tokens, lambda tensor_id: fnmatch.fnmatchcase(tensor_id, args.tensors))
    except (RecordError, SpecError) as err:
        raise CliError(f"llmviz trace: {err}") from None
    progress(100, 100)
    strings = ([str(s) for s in opened.tokenizer.convert_ids_to_tokens(tokens)] if opened.tokenizer is not None
               else [str(t) for t in tokens])
    if args.out:
        try:
            save_trace(args.out, kept, opened.config, strings, opened.downsampled)
        except TraceFileError as err:
            raise CliError(f"llmviz trace: {err}") from None
    if args.json:
        print(json.dumps({"model": str(opened.folder), "model_type": opened.config.get("model_type"),
                          "parameters": opened.parameters, "tokens": tokens, "token_strings": strings,
                          "tensors": sorted(kept), "out": args.out, "device": opened.device,
                          "downsampled": opened.downsampled,
                          "logits": [float(v) for v in kept["logits"][-1]]}))
    else:
        print(f"recorded {len(kept)} tensors of {opened.folder.name} ({opened.parameters:,} parameters) on "
              f"{len(tokens)} tokens on the {opened.device}" + (f" to {args.out}" if args.out else ""))
        for pattern, how in opened.downsampled.items():
            print(f"down-sampled to fit {MAX_RECORDED_BYTES >> 30} GiB: {pattern} recorded as the {how}")
    return 0
