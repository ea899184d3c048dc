"""`llmviz link --scene NAME [--camera …] [--chapter N --step K] [--text …]`: print the llmviz:// link of that view.

The arguments get `llmviz render`'s checks (the scene exists, the camera is well formed) so a link
that prints is one that opens; `llmviz render --link LINK --out F.png` draws it (scenes/link.py).
"""
from __future__ import annotations

from llmviz.scenes.cli.main import CliError


def add_parser(subparsers) -> None:
    from llmviz.scenes.cli.render_cmd import add_view_arguments

    p = subparsers.add_parser("link", help="print an llmviz:// link that reopens a view (llmviz render --link)")
    add_view_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from llmviz.scenes.cli.render_cmd import check_view
    from llmviz.scenes.link import LinkError, LinkView, make_link

    check_view(args)  # --link too: a link given back in its canonical form
    try:
        link = make_link(LinkView(args.scene, args.camera, args.chapter, args.step, args.text))
    except LinkError as err:
        raise CliError(f"llmviz: {err}") from None
    print(link)
    return 0
