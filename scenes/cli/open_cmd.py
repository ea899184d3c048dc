"""`llmviz open LINK | DIR | FILE.llmtrace`: the explorer window at an llmviz:// link's view, on a local model folder
computed by transformers, or on a recorded trace.

The link is read and its scene checked before any window opens (a bad link is one line, exit code 2);
the window then starts on that scene and scenes/explorer/share.py apply_view puts it at the view. A
folder or a trace file opens as the scene `folder:DIR` or `trace:FILE` (scenes/recorded.py); it is checked
first too (no config.json, pickled weights only, a damaged trace: one line).
"""
from __future__ import annotations

from llmviz.scenes.cli.main import CliError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("open", help="open the explorer window at an llmviz:// link's view (see llmviz link)")
    p.add_argument("link", metavar="LINK|DIR|FILE.llmtrace",
                   help="an llmviz:// link (quoted), a Hugging Face model folder, or a trace from llmviz trace")
    p.add_argument("--size", default=None, help="window size WxH (default: the size it was left at)")
    p.set_defaults(func=run)


def run(args) -> int:
    from llmviz.scenes.cli.main import display_answers, has_display
    from llmviz.scenes.cli.render_cmd import check_camera
    from llmviz.scenes.link import LinkError, parse_link
    from llmviz.scenes.registry import SceneError, parse_scene

    recorded = recorded_scene(args.link)
    if recorded is not None:
        if not has_display() or not display_answers():
            raise CliError(f"llmviz: open: no display to open the window on; `llmviz render --scene {recorded} "
                           f"--out F.png` draws it headless")
        from llmviz.scenes.app import run_window

        return run_window(recorded, args.size)
    try:
        view = parse_link(args.link)
        from llmviz.scenes.link_spec import install

        added = install(view)  # a model of the sender's own, carried by the link
    except LinkError as err:
        raise CliError(f"llmviz: open: {err}") from None
    if added:
        print(added)
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


def recorded_scene(target: str) -> str | None:
    """`folder:DIR` or `trace:FILE` for a model folder or a trace file (checked now: one line if unusable), None
    for anything else (a link)."""
    from pathlib import Path

    from llmviz.models.hf_record import RecordError, check_folder
    from llmviz.models.trace_file import SUFFIX

    if target.startswith("llmviz:"):
        return None
    path = Path(target)
    if path.is_dir():
        try:
            check_folder(path)
        except RecordError as err:
            raise CliError(f"llmviz: open: {err}") from None
        return f"folder:{path}"
    if target.endswith(SUFFIX):
        if not path.is_file():
            raise CliError(f"llmviz: open: {target}: no such trace file")
        return f"trace:{path}"
    return None
