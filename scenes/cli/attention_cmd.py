"""`llmviz attention --model M --input TEXT [--json] [--out F.npz|F.csv|DIR/]`: every head of a live model
on an input, its pattern, its cluster, and the rollout and flow across layers, headless.

The model reads the input as the scene does (nano-GPT six sort letters, traced with its greedy answer: the
11-token context; the text models a text within the scene's window), through scenes/attention_live.py, the
table the heads view uses. Outputs:
- .npz: per layer `blocks.B` (heads × tokens × tokens, the trace's own values) with `blocks.B.ids` (each
  head's tensor id), the tokens and their text, each head's (block, head), cluster, pattern name, scores
  under every rule and the reason, the distances and linkage of the clustering, `rollout` (layers × T × T),
  `flow` (T × T; NaN past the flow's token bound, `flow_note` says why);
- .csv: long format, one row per cell: layer, head, query, key, query_token, key_token, value;
- DIR/ (a name ending in / or an existing folder): one PNG heatmap per head with its axes' tokens, plus
  attention.npz; the folder is made for it (a non-empty one is refused without --force).
Every file goes through llmviz.common.atomic. Bad arguments: one line naming the argument, exit 2.
"""
from __future__ import annotations

import json
import os
import sys

from llmviz.scenes.cli.common import Progress, parse_int, shown

NPZ_NAME = "attention.npz"     # the arrays, in a folder output
MAX_SEED = 2**32 - 1
PNG_CELL = 16                  # pixels per cell of a head's heatmap (at most 64 tokens: 1024 px)
PNG_MARGIN = 44                # room for the axes' token labels and the title


def add_parser(subparsers) -> None:
    from llmviz.scenes.attention_live import MODEL_IDS

    p = subparsers.add_parser(
        "attention", help="every head's attention, pattern and cluster, rollout and flow (no display needed)",
        description="Trace a live model on an input and write every head's attention matrix with the "
                    "heads' clusters, named patterns, attention rollout and attention flow.")
    p.add_argument("--model", default="nano-gpt", help="model: " + ", ".join((*MODEL_IDS, *STACK_MODELS))
                                                       + " (default nano-gpt)")
    p.add_argument("--input", default=None, help="six letters from A/B/C for nano-gpt (e.g. CBABBC); a text for "
                                                 "the text models; a PNG/JPEG for " + ", ".join(
                                                     m for m, k in STACK_MODELS.items() if k != "audio")
                                                 + "; a WAV/FLAC/OGG/MP3 for whisper-tiny")
    p.add_argument("--stack", default=None, help="for a model with several stacks of heads: vision, text (clip-tiny's "
                                                 "text tower, llava-tiny's language model), audio (whisper-tiny's "
                                                 "encoder; default: the last, the language side)")
    p.add_argument("--out", default=None, help="F.npz, F.csv, or DIR/ (a PNG per head and attention.npz)")
    p.add_argument("--json", action="store_true", help="print a JSON summary (per head: pattern, scores, cluster; "
                                                       "rollout, flow)")
    p.add_argument("--clusters", default=None, help="cut the clustering into this many groups (default: at the "
                                                    "widest gap between merge heights)")
    p.add_argument("--seed", default="0", help=f"seed of the batch of inputs the clustering pools over, 0 to "
                                               f"{MAX_SEED} (default 0)")
    p.add_argument("--force", action="store_true", help="write into a non-empty DIR/")
    p.set_defaults(func=run)


def _fail(message: str, code: int = 2) -> int:
    print(f"llmviz attention: error: {message}", file=sys.stderr)
    return code


def output_kind(path: str) -> str:
    """'folder', 'npz' or 'csv' for an --out value; ValueError naming the problem."""
    if path.endswith(("/", os.sep)) or os.path.isdir(path):
        return "folder"
    lower = path.lower()
    for kind in ("npz", "csv"):
        if lower.endswith(f".{kind}"):
            return kind
    raise ValueError(f"--out {shown(path, 200)} must end in .npz, .csv or / (a folder)")


def _check_folder(path: str, force: bool) -> str:
    folder = os.path.abspath(path)
    parent = os.path.dirname(folder.rstrip(os.sep)) or os.sep
    if not os.path.isdir(parent):
        raise ValueError(f"--out {shown(path, 200)}: folder {parent!r} does not exist (only the last folder is made)")
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise ValueError(f"--out {shown(path, 200)} exists and is not a folder")
    if os.path.isdir(folder) and os.listdir(folder) and not force:
        raise ValueError(f"--out {shown(path, 200)} is not empty; pass --force to write into it")
    if not os.access(parent if not os.path.isdir(folder) else folder, os.W_OK):
        raise ValueError(f"--out {shown(path, 200)}: not writable")
    return folder


def check_out(path: str | None, force: bool) -> tuple[str, str] | None:
    """(kind, absolute path) of --out, checked before any work; ValueError naming the problem."""
    if path is None:
        return None
    if not path or "\0" in path or len(path) > 4096:
        raise ValueError("--out needs a path of 1 to 4096 characters without NUL")
    kind = output_kind(path)
    if kind == "folder":
        return kind, _check_folder(path, force)
    from llmviz.scenes.cli.common import check_output_path
    from llmviz.scenes.cli.main import CliError

    try:
        return kind, check_output_path(path, "--out", (f".{kind}",))
    except CliError as err:
        raise ValueError(str(err).removeprefix("llmviz: ")) from None


# ---------------------------------------------------------------- what is written

def npz_arrays(model_id: str, current, analysis) -> dict:
    """Every array of the .npz, by key."""
    import numpy as np

    from llmviz.models.attention_analysis import PATTERN_RULES

    arrays = {"model": np.array(model_id), "tokens": np.array(current.tokens, np.int64),
              "token_labels": np.array(current.labels)}
    for block, layer, ids, kind in zip(current.blocks, current.layers, current.ids, current.kinds):
        arrays[f"blocks.{block}"] = layer
        arrays[f"blocks.{block}.ids"] = np.array(ids)
        arrays[f"blocks.{block}.kind"] = np.array(kind)
    arrays.update({
        "heads": np.array([(current.blocks[layer], head) for layer, head in analysis.heads], np.int64).reshape(-1, 2),
        "clusters": analysis.clusters, "cluster_cut": np.array(analysis.cut),
        "pattern_rules": np.array([r.name for r in PATTERN_RULES]),
        "pattern_thresholds": np.array([r.threshold for r in PATTERN_RULES]),
        "pattern_names": np.array([p.name for p in analysis.patterns]),
        "pattern_scores": np.array([[p.scores[r.name] for r in PATTERN_RULES] for p in analysis.patterns]),
        "pattern_reasons": np.array([p.reason for p in analysis.patterns]),
        "distances": analysis.distances, "linkage": analysis.linkage,
        "rollout": analysis.rollout, "rollout_blocks": np.array(current.blocks, np.int64),
        "flow": analysis.flow if analysis.flow is not None else np.full(analysis.rollout.shape[1:], np.nan),
        "flow_note": np.array(analysis.flow_note),
    })
    return arrays


def write_npz(path, arrays: dict) -> None:
    import numpy as np

    from llmviz.common.atomic import atomic_path

    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)


def csv_text(current) -> str:
    """Long format: one row per cell of every head."""
    import csv
    import io

    import numpy as np

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("layer", "head", "query", "key", "query_token", "key_token", "value"))
    T = len(current.tokens)
    q, k = (a.ravel() for a in np.indices((T, T)))
    for block, layer in zip(current.blocks, current.layers):
        for head, matrix in enumerate(layer):
            for qi, ki, value in zip(q.tolist(), k.tolist(), matrix.ravel().tolist()):
                writer.writerow((block, head, qi, ki, current.labels[qi], current.labels[ki], repr(float(value))))
    return buffer.getvalue()


def _shown_token(label: str) -> str:
    return {"\n": "⏎", " ": "␣"}.get(label, label)


def head_png(matrix, labels: list[str], title: str) -> bytes:
    """One head as a heatmap (magma of √weight) with each row's and column's token, and a title."""
    import io

    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    from llmviz.scenes.attention_live import heatmap_rgb

    T = len(labels)
    cells = np.repeat(np.repeat(heatmap_rgb(matrix), PNG_CELL, 0), PNG_CELL, 1)
    side = T * PNG_CELL
    import importlib.resources

    font = ImageFont.truetype(str(importlib.resources.files("llmviz.assets").joinpath("fonts/DejaVuSans.ttf")), 11)
    caption = "rows: query, columns: key (colour: √weight)"
    width = max(side + PNG_MARGIN + 8, int(max(font.getlength(title), font.getlength(caption))) + 10)
    image = Image.new("RGB", (width, side + 2 * PNG_MARGIN), (24, 24, 28))
    image.paste(Image.fromarray(cells), (PNG_MARGIN, PNG_MARGIN))
    draw = ImageDraw.Draw(image)
    draw.text((4, 6), title, fill=(230, 230, 230), font=font)
    draw.text((4, 22), caption, fill=(160, 160, 160), font=font)
    for i, label in enumerate(labels):
        text = _shown_token(label)
        centre = PNG_MARGIN + i * PNG_CELL + PNG_CELL // 2
        draw.text((PNG_MARGIN - 10, centre), text, fill=(220, 220, 220), font=font, anchor="rm")
        draw.text((centre, PNG_MARGIN + side + 6), text, fill=(220, 220, 220), font=font, anchor="mt")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_folder(folder: str, current, analysis, arrays: dict) -> list[str]:
    """A PNG per head and attention.npz into `folder` (made for it), each file written atomically."""
    from pathlib import Path

    from llmviz.common.atomic import write_atomic

    path = Path(folder)
    path.mkdir(exist_ok=True)
    written = []
    distributions = current.distributions
    for (layer, head), pattern, cluster in zip(analysis.heads, analysis.patterns, analysis.clusters):
        block = current.blocks[layer]
        name = f"blocks.{block}.head.{head}.png"
        title = f"layer {block} head {head}: {pattern.name} (cluster {int(cluster)})"
        write_atomic(path / name, head_png(distributions[layer][head], current.labels, title))
        written.append(name)
    write_npz(path / NPZ_NAME, arrays)
    return written + [NPZ_NAME]


def summary(model_id: str, text: str, current, analysis) -> dict:
    import numpy as np

    def finite(value):
        return None if not np.isfinite(value) else round(float(value), 6)

    return {
        "model": model_id, "input": text, "tokens": current.labels,
        "cluster_cut": analysis.cut, "inputs_pooled": analysis.inputs,
        "heads": [{"layer": current.blocks[layer], "head": head, "id": current.ids[layer][head],
                   "kind": current.kinds[layer], "pattern": p.name, "reason": p.reason,
                   "scores": {name: finite(v) for name, v in p.scores.items()}, "cluster": int(cluster)}
                  for (layer, head), p, cluster in zip(analysis.heads, analysis.patterns, analysis.clusters)],
        "rollout": np.round(analysis.rollout[-1], 6).tolist(),
        "flow": None if analysis.flow is None else np.round(analysis.flow, 6).tolist(),
        "flow_note": analysis.flow_note,
    }


# ---------------------------------------------------------------- the command

# the live models with stacks of their own (scenes/attention_stacks.py): --input is a picture or a sound file
STACK_MODELS = {"vit-tiny": "vision", "clip-tiny": "clip", "llava-tiny": "llava", "whisper-tiny": "audio"}


def run(args) -> int:
    from llmviz.scenes.attention_live import MODEL_IDS, AttentionInputError, attention_models

    if args.model in STACK_MODELS:
        return _run_stack(args)
    if args.model not in MODEL_IDS:
        return _fail(f"--model {shown(args.model)} is not a live model; available: "
                     f"{', '.join((*MODEL_IDS, *STACK_MODELS))}")
    entry = attention_models()[args.model]
    if args.input is None:
        return _fail(f"--input is required: {entry.input_hint}")
    try:
        tokens = entry.read(args.input)
        seed = parse_int(args.seed, "--seed", 0, MAX_SEED)
        clusters = None if args.clusters is None else parse_int(args.clusters, "--clusters", 1, 10_000)
        out = check_out(args.out, args.force)
    except AttentionInputError as exc:
        return _fail(f"--input: {exc}")
    except ValueError as exc:
        return _fail(str(exc))

    import torch

    torch.set_num_threads(1)  # small matrices: one thread is fastest and leaves the cores to others
    from llmviz.scenes.attention_live import analyse_heads, trace_heads

    try:
        model = entry.load(None)
    except Exception as exc:  # a broken shipped file: one line naming it
        return _fail(f"cannot load {args.model}: {type(exc).__name__}: {exc}".splitlines()[0], 1)
    current = trace_heads(entry, model, tokens)
    analysis = analyse_heads(entry, model, current, seed=seed, k=clusters,
                             progress=Progress(f"llmviz attention: flow over {len(current.tokens)} tokens"))
    return _write(args, out, current, analysis)


def _write(args, out, current, analysis) -> int:
    if out is not None:
        kind, path = out
        try:
            if kind == "csv":
                from llmviz.common.atomic import write_atomic

                write_atomic(path, csv_text(current))
            elif kind == "npz":
                write_npz(path, npz_arrays(args.model, current, analysis))
            else:
                write_folder(path, current, analysis, npz_arrays(args.model, current, analysis))
        except OSError as exc:
            return _fail(f"cannot write --out {shown(path, 200)}: {exc.strerror or exc}", 1)
    if args.json:
        print(json.dumps(summary(args.model, args.input, current, analysis)))
    else:
        for (layer, head), p, cluster in zip(analysis.heads, analysis.patterns, analysis.clusters):
            print(f"layer {current.blocks[layer]} head {head}  cluster {int(cluster)}  {p.name}: {p.reason}")
        if out is not None:
            print(f"wrote {out[1]}")
    return 0


def _run_stack(args) -> int:
    """`llmviz attention` for a picture or sound model: the live scene's own compute traces --input, the
    shipped samples make the batch (the heads view's analysis, scenes/attention_stacks.analyse_stack)."""
    import os

    kind = STACK_MODELS[args.model]
    if args.input is None:
        return _fail(f"--input is required: a {'sound' if kind == 'audio' else 'picture'} file")
    if not os.path.isfile(args.input):
        return _fail(f"--input {shown(args.input, 200)}: no such file")
    stack = {"text": "", None: None}.get(args.stack, args.stack)
    if stack not in (None, "", "vision", "audio"):
        return _fail(f"--stack {shown(args.stack)}: one of vision, text, audio")
    try:
        clusters = None if args.clusters is None else parse_int(args.clusters, "--clusters", 1, 10_000)
        out = check_out(args.out, args.force)
    except ValueError as exc:
        return _fail(str(exc))
    import torch

    torch.set_num_threads(1)
    from llmviz.scenes import attention_stacks

    request = ("path", os.path.abspath(args.input))
    if kind == "clip":
        from llmviz.scenes.clip_live import DEFAULT_CAPTIONS

        request = (*request, tuple(DEFAULT_CAPTIONS), 0)
    elif kind == "llava":
        from llmviz.models.sim import llava_vocab
        from llmviz.scenes.llava_live import DEFAULT_QUESTION

        request = (request, tuple(llava_vocab.question_ids(DEFAULT_QUESTION)), ())
    compute = attention_stacks.compute_for(kind)
    try:
        trace = compute(request)
    except Exception as exc:  # an unreadable picture or sound: one line naming it
        return _fail(f"--input {shown(args.input, 200)}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    prefix, stacks, current, analysis, _ = attention_stacks.analyse_stack(kind, trace, stack, request,
                                                                         compute=compute, k=clusters)
    if stack is not None and stack != prefix:
        return _fail(f"--stack {shown(args.stack)}: {args.model} has " + ", ".join(p or "text" for p in stacks))
    return _write(args, out, current, analysis)
