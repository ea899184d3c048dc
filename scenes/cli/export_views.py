"""`llmviz export svg|html …`: a view of a scene as a file other programs open (a schematic, a self-contained page).

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

    p = subparsers.add_parser("export", help="a view as a file other programs open: svg, html")
    kinds = p.add_subparsers(dest="kind", parser_class=OneLineParser, metavar="{svg,html}")
    kinds.required = True
    for kind, what, run in (("svg", "the view as a vector schematic: blocks, cells, lines, labels as text, legend",
                             run_svg),
                            ("html", "the view as one self-contained web page: the schematic, a tooltip per block "
                                     "(name, shape, parameters, values), the link that reopens it", run_html)):
        sub = kinds.add_parser(kind, help=what)
        add_view_arguments(sub)
        sub.add_argument("--size", default="1280x720", help="picture size WxH (default 1280x720)")
        sub.add_argument("--out", required=True, help=f"{kind.upper()} file to write")
        sub.set_defaults(func=run)


def _drawn(args, suffix: str):
    """(schematic, scene name, link, out path): the view drawn headless and its SVG, checked flags first."""
    from llmviz.scenes.cli.render_cmd import check_view, link_view, scene_alone
    from llmviz.scenes.export.svg import schematic
    from llmviz.scenes.link import make_link

    check_view(args)
    size = parse_size(args.size)
    out = check_output_path(args.out, suffixes=(suffix,), reserve=1 << 20)
    link = make_link(link_view(args))
    renderer = headless_renderer(size)
    extra = None
    with scene_alone(args, renderer, size) as (scene, engine):
        drawn = schematic(engine, scene, renderer)
        if suffix == ".html":
            from llmviz.scenes.export.html import page

            spec = scene.model.spec if scene.model is not None else None
            extra = page(drawn, scene, link, f"llmviz: {spec.name if spec is not None else scene.name}")
    return drawn, extra, out, size


def _write(out: str, text: str) -> None:
    from llmviz.common.atomic import write_atomic

    try:
        write_atomic(out, text)
    except OSError as err:
        raise CliError(f"llmviz: --out {out!r}: cannot write: {err.strerror or err}") from None


def run_html(args) -> int:
    drawn, text, out, size = _drawn(args, ".html")
    _write(out, text)
    print(f"wrote {out} ({size[0]}x{size[1]} schematic, {len(text.encode()):,} bytes, self-contained): "
          f"{drawn.counts['blocks']} blocks with tooltips")
    return 0


def run_svg(args) -> int:
    drawn, _, out, size = _drawn(args, ".svg")
    _write(out, drawn.svg)
    c = drawn.counts
    behind = f"; {c['behind']} reaching behind the camera left out" if c["behind"] else ""
    print(f"wrote {out} ({size[0]}x{size[1]}, {len(drawn.svg.encode()):,} bytes): {c['blocks']} blocks, "
          f"{c['boxes']} other boxes, {c['lines']} connection lines, {c['groups']} group outlines, {c['labels']} labels, {c['cells']:,} cells "
          f"as shapes, {c['images']} blocks' cells as images{behind}")
    return 0
