"""`llmviz export svg …`: a view of a scene as a file other programs open (`export html` joins it later).

The view is given as `llmviz render` takes it (--scene, --camera, --chapter/--step, --text, or --link) and
drawn the same way, without the explorer's UI (scenes/cli/render_cmd.py scene_alone); the file is
written atomically. Bad arguments are one line and exit code 2. `llmviz export-hf` (a model's weights
for transformers) is a separate command.
"""
from __future__ import annotations

from llmviz.scenes.cli.common import check_output_path, headless_renderer, parse_size
from llmviz.scenes.cli.main import CliError


def add_parser(subparsers) -> None:
    from llmviz.scenes.cli.main import OneLineParser
    from llmviz.scenes.cli.render_cmd import add_view_arguments

    p = subparsers.add_parser("export", help="a view as a file other programs open: svg")
    kinds = p.add_subparsers(dest="kind", parser_class=OneLineParser, metavar="{svg}")
    kinds.required = True
    svg = kinds.add_parser("svg", help="the view as a vector schematic: blocks, cells, lines, labels as text, legend")
    add_view_arguments(svg)
    svg.add_argument("--size", default="1280x720", help="picture size WxH (default 1280x720)")
    svg.add_argument("--out", required=True, help="SVG file to write")
    svg.set_defaults(func=run_svg)


def run_svg(args) -> int:
    from llmviz.common.atomic import write_atomic
    from llmviz.scenes.cli.render_cmd import check_view, scene_alone
    from llmviz.scenes.export.svg import schematic

    check_view(args)
    size = parse_size(args.size)
    out = check_output_path(args.out, suffixes=(".svg",), reserve=1 << 20)
    renderer = headless_renderer(size)
    with scene_alone(args, renderer, size) as (scene, engine):
        drawn = schematic(engine, scene, renderer)
    try:
        write_atomic(out, drawn.svg)
    except OSError as err:
        raise CliError(f"llmviz: --out {out!r}: cannot write: {err.strerror or err}") from None
    c = drawn.counts
    behind = f"; {c['behind']} reaching behind the camera left out" if c["behind"] else ""
    print(f"wrote {out} ({size[0]}x{size[1]}, {len(drawn.svg.encode()):,} bytes): {c['blocks']} blocks, "
          f"{c['boxes']} other boxes, {c['lines']} connection lines, {c['groups']} group outlines, {c['labels']} labels, {c['cells']:,} cells "
          f"as shapes, {c['images']} blocks' cells as images{behind}")
    return 0
