"""The `llmviz` command: the explorer window, and the headless subcommands (render, bench, models, train, export, link, …).

Subcommand modules are imported only when their command runs, so `llmviz render` of the
stress scene never imports torch. Bad arguments give one error line and exit code 2.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# name -> module that provides add_parser(subparsers); imported lazily on use.
SUBCOMMANDS = {
    "render": "llmviz.scenes.cli.render_cmd",
    "bench": "llmviz.scenes.cli.bench_cmd",
    "models": "llmviz.scenes.cli.models_cmd",
    "train": "llmviz.scenes.cli.train_cmd",
    "generate": "llmviz.scenes.cli.generate_cmd",
    "chapters": "llmviz.scenes.cli.chapters_cmd",
    "routing": "llmviz.scenes.cli.routing_cmd",
    "export-hf": "llmviz.scenes.cli.export_cmd",
    "export": "llmviz.scenes.cli.export_views",
    "link": "llmviz.scenes.cli.link_cmd",
    "video": "llmviz.scenes.cli.video_cmd",
    "open": "llmviz.scenes.cli.open_cmd",
    "trace": "llmviz.scenes.cli.trace_cmd",
    "scan": "llmviz.scenes.cli.scan_cmd",
    "compare": "llmviz.scenes.cli.compare_cmd",
    "attention": "llmviz.scenes.cli.attention_cmd",
    "longctx": "llmviz.scenes.cli.longctx_cmd",
    "classify": "llmviz.scenes.cli.classify_cmd",
    "similarity": "llmviz.scenes.cli.similarity_cmd",
    "stream": "llmviz.scenes.cli.stream_cmd",
    "ask": "llmviz.scenes.cli.ask_cmd",
    "transcribe": "llmviz.scenes.cli.transcribe_cmd",
    "spectrogram": "llmviz.scenes.cli.spectrogram_cmd",
    "rag": "llmviz.scenes.cli.rag_cmd",
    "doctor": "llmviz.scenes.cli.doctor_cmd",
}
HEADLESS_COMMANDS = ", ".join(f"llmviz {name}" for name in SUBCOMMANDS)


class CliError(Exception):
    """A problem with the user's input, reported as one line and exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        raise CliError(f"{self.prog}: {message}")


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def display_answers(timeout: float = 2.0) -> bool:
    """Whether the X server that DISPLAY names accepts a connection (a stale DISPLAY, as over ssh
    without forwarding, would otherwise fail deep inside the window library, after its log lines)."""
    import re
    import socket

    display = os.environ.get("DISPLAY", "")
    if not display or os.environ.get("WAYLAND_DISPLAY"):
        return bool(display or os.environ.get("WAYLAND_DISPLAY"))
    match = re.fullmatch(r"(?:unix)?(?P<host>[^:]*):(?P<n>\d+)(?:\.\d+)?", display)
    if match is None:
        return False
    number, host = int(match["n"]), match["host"]
    try:
        if host in ("", "unix"):
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(timeout)
                try:
                    sock.connect(f"/tmp/.X11-unix/X{number}")
                except OSError:  # Linux also serves X on the abstract socket name
                    sock.connect(f"\0/tmp/.X11-unix/X{number}")
        else:
            socket.create_connection((host, 6000 + number), timeout=timeout).close()
    except (OSError, ValueError):
        return False
    return True


def build_parser(command: str | None) -> argparse.ArgumentParser:
    parser = OneLineParser(prog="llmviz", description="3D explorer of large-language-model architectures. "
                           "Without a subcommand, opens the explorer window.")
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser, metavar="{" + ",".join(SUBCOMMANDS) + "}")
    # Only the named subcommand's module is imported; the others get a placeholder for --help.
    for name, module in SUBCOMMANDS.items():
        if name == command:
            importlib.import_module(module).add_parser(sub)
            # for --help only: main() takes --lang off the line before parsing, wherever it stands
            sub.choices[name].add_argument("--lang", metavar="CODE", help="language of the interface text this command "
                                           "draws or prints (pictures, videos, chapters), e.g. en or vi (default: English)")
        else:
            sub.add_parser(name, help=f"see llmviz {name} --help")
    window = parser.add_argument_group("window")
    window.add_argument("--scene", default=None, help="scene to open (default: the stress scene)")
    window.add_argument("--size", default=None,
                        help="window size WxH (default: the size it was left at, else 90%% of the screen)")
    window.add_argument("--frames", type=int, default=None, help="close after this many frames (for checks)")
    window.add_argument("--screenshot", default=None, help="with --frames: save the last frame to this PNG")
    window.add_argument("--view", default=None, help="start at this camera preset (e.g. 'first block')")
    window.add_argument("--fixed-quality", action="store_true",
                        help="full detail always: no adaptive lowering of detail when frames are slow")
    window.add_argument("--backend", default="gl", choices=("auto", "wgpu", "gl"),
                        help="renderer: 'gl' (default), 'wgpu', or 'auto' (wgpu where it can draw a window, else gl "
                             "with a line saying why)")
    window.add_argument("--lang", default=None,
                        help="interface language for this run, e.g. en or vi (default: the one chosen in View ▸ Language, "
                             "else English); also given after any subcommand (render, chapters, video, …)")
    window.add_argument("--stats-json", default=None,
                        help="with --frames: write the window's wall-clock frame figures to this JSON file")
    # For screenshots of tooltips: hold the pointer still at window pixel X,Y.
    window.add_argument("--hover", default=None, help=argparse.SUPPRESS)
    return parser


def take_lang(argv: list[str]) -> tuple[list[str], str | None]:
    """argv without its --lang CODE (or --lang=CODE), wherever it stands, and the code: every command speaks it."""
    rest, code, i = [], None, 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest += argv[i:]
            break
        if arg == "--lang":
            if i + 1 >= len(argv):
                raise CliError("llmviz: --lang needs a language code (e.g. en, vi)")
            code, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--lang="):
            code = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return rest, code


def apply_lang(code: str | None, window: bool) -> None:
    """The run's language: --lang, else (in the window only, where the menu chooses it) the remembered one."""
    from llmviz.common.i18n import LanguageError
    from llmviz.scenes.language import apply_language

    try:
        apply_language(code, remembered=window)
    except LanguageError as exc:
        raise CliError(f"llmviz: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        argv, lang = take_lang(argv)
    except CliError as err:
        print(str(err), file=sys.stderr)
        return 2
    command = next((a for a in argv if a in SUBCOMMANDS), None)
    try:
        args = build_parser(command).parse_args(argv)
        if args.command is not None and args.command != command:
            # the first subcommand-like word was an option's value (`--view bench render`): parse again
            args = build_parser(args.command).parse_args(argv)
        apply_lang(lang, window=args.command is None)
        if args.command is None:
            if args.frames is not None and args.frames < 1:
                raise CliError(f"llmviz: --frames must be at least 1, got {args.frames}")
            if not has_display():
                print(f"llmviz: no display found (DISPLAY is not set); the headless commands are: {HEADLESS_COMMANDS}",
                      file=sys.stderr)
                return 2
            if not display_answers():
                print(f"llmviz: the display {os.environ.get('DISPLAY')!r} does not answer; the headless commands "
                      f"are: {HEADLESS_COMMANDS}", file=sys.stderr)
                return 2
            from llmviz.scenes.app import run_window

            if args.screenshot:
                from llmviz.scenes.cli.common import check_output_path

                args.screenshot = check_output_path(args.screenshot, "--screenshot")
                args.frames = args.frames or 30
            hover = None
            if args.hover:
                try:
                    hover = tuple(float(v) for v in args.hover.split(","))
                    assert len(hover) == 2
                except (ValueError, AssertionError):
                    raise CliError(f"llmviz: --hover {args.hover!r} is not X,Y") from None
            if args.stats_json:
                from llmviz.scenes.cli.common import check_output_path

                args.stats_json = check_output_path(args.stats_json, "--stats-json")
                if not args.frames:
                    raise CliError("llmviz: --stats-json needs --frames N (the window closes after N frames)")
            return run_window(args.scene, args.size, args.frames, args.screenshot, view=args.view, hover=hover,
                              stats_json=args.stats_json, adaptive=not args.fixed_quality, backend=args.backend)
        return int(args.func(args) or 0)
    except CliError as err:
        print(str(err), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("llmviz: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`llmviz models | head`): nothing more to say
        sys.stderr.close()
        return 0


def run() -> None:
    """The console entry point: main(), then an exit that a worker thread still busy cannot crash."""
    exit_past_busy_workers(main())


def exit_past_busy_workers(code: int) -> None:
    """Exit with `code`; if a daemon worker is still running (a live model still being built, a trace still
    computing), leave without finalising the interpreter. Finalising under a thread that is inside torch
    segfaults or aborts ("terminate called without an active exception") after the command has done its work."""
    import threading

    for thread in threading.enumerate():  # what a normal exit waits for, it still gets
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    if not any(t.is_alive() and t.daemon for t in threading.enumerate()):
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`llmviz models | head`) has nothing left to take
            pass
    os._exit(code)


if __name__ == "__main__":
    # Run as `python -m llmviz.scenes.cli.main`: use the package's module, not this __main__ copy, so the
    # CliError the subcommands raise (imported from the package) is the one main() catches.
    from llmviz.scenes.cli.main import run as package_run

    package_run()
