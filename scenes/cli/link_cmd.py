"""`llmviz link --scene NAME|--compare A,B [--camera …] [--chapter N --step K] [--text …] [--temperature T --seed N]`:
print the llmviz:// link of that view (a model of the user's own goes inline).

The arguments get `llmviz render`'s checks (the scene exists, the camera is well formed) so a link
that prints is one that opens; `llmviz render --link LINK --out F.png` draws it (scenes/link.py).
"""
from __future__ import annotations

from llmviz.scenes.cli.main import CliError


def add_parser(subparsers) -> None:
    from llmviz.scenes.cli.render_cmd import add_view_arguments

    p = subparsers.add_parser("link", help="print an llmviz:// link that reopens a view (llmviz render --link)")
    add_view_arguments(p)
    p.add_argument("--compare", metavar="A,B[,C,D]", default=None,
                   help="2 to 4 model ids side by side (llmviz render --compare); instead of --scene")
    p.set_defaults(func=run)


def run(args) -> int:
    from llmviz.scenes.cli.render_cmd import check_view, link_view
    from llmviz.scenes.link import LinkError, make_link

    if args.compare is not None:
        from llmviz.scenes.export.compare_pictures import check_compare_names

        if args.scene is not None or args.link is not None:
            raise CliError("llmviz: --compare names the models: drop --scene and --link")
        args.compare = ",".join(check_compare_names(args.compare))
        args.scene = args.compare.split(",")[0]
    check_view(args)  # --link too: a link given back in its canonical form
    try:
        link = make_link(link_view(args))
    except LinkError as err:
        raise CliError(f"llmviz: {err}") from None
    print(link)
    return 0
