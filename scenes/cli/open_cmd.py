"""`llmviz open LINK`: the explorer window at the view an llmviz:// link holds (scene, camera, chapter and step, text).

The link is read and its scene checked before any window opens (a bad link is one line, exit code 2);
the window then starts on that scene and scenes/explorer/share.py apply_view puts it at the view.
"""
from __future__ import annotations

from llmviz.scenes.cli.main import CliError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("open", help="open the explorer window at an llmviz:// link's view (see llmviz link)")
    p.add_argument("link", help="an llmviz:// link, quoted")
    p.add_argument("--size", default=None, help="window size WxH (default: the size it was left at)")
    p.set_defaults(func=run)


def run(args) -> int:
    from llmviz.scenes.cli.main import display_answers, has_display
    from llmviz.scenes.cli.render_cmd import check_camera
    from llmviz.scenes.link import LinkError, parse_link
    from llmviz.scenes.registry import SceneError, parse_scene

    try:
        view = parse_link(args.link)
    except LinkError as err:
        raise CliError(f"llmviz: open: {err}") from None
    try:
        parse_scene(view.scene)
    except SceneError as err:
        raise CliError(f"llmviz: open: {err}") from None
    if view.camera is not None:
        check_camera(view.camera)
    if not has_display() or not display_answers():
        raise CliError(f"llmviz: open: no display to open the window on; `llmviz render --link LINK --out F.png` "
                       f"draws the view headless")
    from llmviz.scenes.app import run_window

    return run_window(view.scene, args.size, link_view=view)
