"""`llmviz compare A B [C D]`: what two to four models cost and how they differ, as a table, JSON, or a report file.

    llmviz compare llama-3-8b mistral-7b                 the cost table, the features, the differences
    llmviz compare mixtral-8x7b mistral-7b --context 32768 --json
    llmviz compare deepseek-v3 qwen3-30b-a3b --out report.html   (or .md, .csv)

A model is a registry id (`llmviz models`), a spec file (.json / .toml, as `llmviz models --add` takes), or a
Hugging Face config.json or a folder holding one (as `llmviz models --import-config` reads it). The numbers
come from models/compare.py; the HTML report adds each registry model's picture at one camera preset and the
split screen (`llmviz render --compare`). Bad arguments are one line naming the argument and exit code 2.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from llmviz.scenes.cli.main import CliError

DEFAULT_PICTURE = "800x500"
DEFAULT_CAMERA = "preset:overview"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("compare", help="compare 2 to 4 models: cost table, features, differences, report")
    p.add_argument("models", nargs="*", metavar="MODEL",
                   help="2 to 4 model ids, spec files or Hugging Face config.json files / folders")
    p.add_argument("--context", default=None, metavar="N",
                   help="context length N for the FLOPs and KV-cache rows (default: the smallest context length "
                        "of the models)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--out", default=None, help="write a report: .html (self-contained, with pictures), .md or .csv")
    p.add_argument("--camera", default=DEFAULT_CAMERA,
                   help=f"with --out .html: the camera of every picture, as llmviz render takes it (default {DEFAULT_CAMERA!r})")
    p.add_argument("--size", default=DEFAULT_PICTURE,
                   help=f"with --out .html: each model's picture size WxH (default {DEFAULT_PICTURE})")
    p.add_argument("--no-pictures", action="store_true", help="with --out .html: the tables only, no rendering")
    p.set_defaults(func=run)


def _looks_like_hf_config(path: Path) -> bool:
    """A config.json (by name, or a JSON object with model_type and no spec architecture)."""
    from llmviz.models.hf_config import CONFIG_NAME
    from llmviz.models.registry import read_spec_bytes

    if path.is_dir() or path.name == CONFIG_NAME:
        return True
    if path.suffix != ".json":
        return False
    try:
        data = json.loads(read_spec_bytes(path))
    except (ValueError, OSError):
        return False   # load_spec_file says what is wrong with it
    return isinstance(data, dict) and "model_type" in data and "architecture" not in data


def resolve_model(argument: str, registry):
    """(spec, from the registry?) for a model argument; CliError naming the argument otherwise."""
    from llmviz.models.hf_config import import_config
    from llmviz.models.registry import UnknownModelError, load_spec_file
    from llmviz.models.spec import SpecError
    from llmviz.scenes.cli.common import shown

    if argument in registry:
        return registry.get(argument), True
    path = Path(argument)
    try:
        if path.exists():
            return (import_config(path).spec if _looks_like_hf_config(path) else load_spec_file(path)), False
        return registry.get(argument), True
    except UnknownModelError as err:
        raise CliError(f"llmviz compare: {err} (nor a spec or config.json file)") from None
    except SpecError as err:
        raise CliError(f"llmviz compare: {shown(argument)}: {err}") from None
    except OSError as err:
        raise CliError(f"llmviz compare: {shown(argument)}: cannot read it ({err.strerror or err})") from None


def _context(text: str | None) -> int | None:
    from llmviz.models.compare import MAX_CONTEXT
    from llmviz.scenes.cli.common import parse_int

    if text is None:
        return None
    try:
        return parse_int(text, "--context", 1, MAX_CONTEXT)
    except ValueError as err:
        raise CliError(f"llmviz compare: {err}") from None


def run(args) -> int:
    from llmviz.models.compare import MAX_MODELS, MIN_MODELS, CompareError, compare
    from llmviz.models.registry import load_registry
    from llmviz.scenes.export.compare_report import REPORT_SUFFIXES

    if not MIN_MODELS <= len(args.models) <= MAX_MODELS:
        raise CliError(f"llmviz compare: MODEL: give {MIN_MODELS} to {MAX_MODELS} models, got {len(args.models)}")
    context = _context(args.context)
    out = None
    if args.out is not None:
        from llmviz.scenes.cli.common import check_output_path

        out = check_output_path(args.out, suffixes=REPORT_SUFFIXES, reserve=1 << 20)
    pictures_wanted = out is not None and out.lower().endswith(".html") and not args.no_pictures
    if pictures_wanted:
        from llmviz.scenes.cli.common import parse_size
        from llmviz.scenes.cli.render_cmd import check_camera

        check_camera(args.camera)
        parse_size(args.size)
    registry = load_registry()
    for problem in registry.problems:
        print(f"llmviz compare: skipped {problem}", file=sys.stderr)
    resolved = [resolve_model(a, registry) for a in args.models]
    try:
        comparison = compare([spec for spec, _ in resolved], context)
    except CompareError as err:
        raise CliError(f"llmviz compare: MODEL: {err}") from None
    if out is not None:
        drawable = [spec.id for spec, in_registry in resolved if in_registry]
        _write_report(out, comparison, args, drawable if pictures_wanted else [])
    if args.json:
        print(json.dumps(comparison.as_dict(), indent=2, ensure_ascii=False))
    elif out is None:
        from llmviz.scenes.export.compare_report import text_report

        print(text_report(comparison))
    return 0


def _write_report(out: str, comparison, args, drawable: list[str]) -> None:
    from llmviz.common.atomic import write_atomic
    from llmviz.scenes.export import compare_report

    suffix = Path(out).suffix.lower()
    if suffix == ".md":
        text = compare_report.markdown_report(comparison)
    elif suffix == ".csv":
        text = compare_report.csv_report(comparison)
    else:
        pictures, split, note = _pictures(comparison, args, drawable)
        text = compare_report.html_report(comparison, pictures, split, args.camera, note)
    try:
        write_atomic(out, text)
    except OSError as err:
        raise CliError(f"llmviz compare: --out {out!r}: cannot write: {err.strerror or err}") from None
    print(f"wrote {out} ({len(text.encode()):,} bytes)", file=sys.stderr if args.json else sys.stdout)


def _pictures(comparison, args, drawable: list[str]):
    """(model id -> PNG, the split PNG, a note on what is missing): one split render whose views are each a
    picture's size, cut into the models' own pictures."""
    if args.no_pictures or not drawable:
        skipped = [m for m in comparison.models if m not in drawable]
        note = f"no picture of {', '.join(skipped)}: not in the registry (add it with llmviz models --add)" \
            if skipped and not args.no_pictures else ""
        return {}, None, note
    from llmviz.scenes.cli.common import Progress, headless_renderer, parse_size
    from llmviz.scenes.cli.render_cmd import encode_image
    from llmviz.scenes.export.compare_pictures import caption_views, split_pixels

    w, h = parse_size(args.size)
    note = ""
    skipped = [m for m in comparison.models if m not in drawable]
    if skipped:
        note = f"no picture of {', '.join(skipped)}: not in the registry (add it with llmviz models --add)"
    try:
        renderer = headless_renderer((w * len(drawable), h))
    except CliError as err:
        print(f"llmviz compare: pictures left out: {err}", file=sys.stderr)
        return {}, None, f"pictures left out: {err}"
    try:
        pixels = split_pixels(renderer, drawable, args.camera, Progress("rendering the pictures"))
    finally:
        renderer.release()
    pictures = {m: encode_image(pixels[:, k * w:(k + 1) * w].copy(), "x.png") for k, m in enumerate(drawable)}
    split = encode_image(caption_views(pixels, drawable), "x.png") if len(drawable) > 1 else None
    return pictures, split, note
