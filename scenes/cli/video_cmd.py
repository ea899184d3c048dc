"""`llmviz video (--tour | --chapter N | --generate TEXT) --scene NAME|--link LINK --out F.mp4|F.webm|F.gif`: a recording.

The whole Explorer frame (menu, banner, panels, legend) as `llmviz render` draws it, replayed at a
fixed time step by scenes/export/video.py and encoded by imageio-ffmpeg's ffmpeg; a progress line
on stderr. Bad arguments are one line and exit code 2; the file appears only once it is complete.
"""
from __future__ import annotations

import time

from llmviz.scenes.cli.main import CliError

MAX_FPS = 120


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("video", help="record a chapter, the tour or a live model generating, as MP4/WebM/GIF")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--tour", action="store_true", help="the camera tour through the model")
    what.add_argument("--chapter", type=int, help="a guided chapter, played from its start (see llmviz chapters)")
    what.add_argument("--generate", metavar="TEXT", help="the live model writing its answer to TEXT")
    p.add_argument("--scene", default=None, help="scene name, e.g. nano-gpt or gpt-2-small (or give --link)")
    p.add_argument("--link", default=None,
                   help="start at an llmviz:// link's view: its scene, camera, input text and sampling (the window's "
                        "Share menu records from its current view this way)")
    p.add_argument("--out", required=True, help="video file to write: .mp4 (H.264), .webm (VP9) or .gif")
    p.add_argument("--size", default="1280x720", help="frame size WxH (default 1280x720)")
    p.add_argument("--fps", default="30", help=f"frames per second, 1 to {MAX_FPS} (default 30)")
    p.add_argument("--seconds", default=None, help="record at most this many seconds of the script")
    p.add_argument("--lossless", action="store_true",
                   help="exact RGB (H.264 4:4:4 at QP 0, or VP9 lossless): large files, for checks")
    from llmviz.scenes.cli.render_cmd import add_pixel_ratio_argument

    add_pixel_ratio_argument(p)  # as `llmviz render`: a 3840x2160 video is the 1280x720 view, drawn 3 times larger
    p.set_defaults(func=run)


def _seconds(text) -> float | None:
    from llmviz.scenes.export.video import MAX_SECONDS

    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise CliError(f"llmviz: --seconds {text!r} is not a number") from None
    if not 0 < value <= MAX_SECONDS:
        raise CliError(f"llmviz: --seconds must be above 0 and at most {MAX_SECONDS:g}, got {text}")
    return value


def check_arguments(args):
    """(size, fps, seconds, out, pixel ratio), every flag checked before a scene is built."""
    from llmviz.scenes.cli.common import check_output_path, parse_int, parse_size
    from llmviz.scenes.cli.render_cmd import parse_pixel_ratio
    from llmviz.scenes.export.video import EVEN_SIDES, SUFFIXES, VideoError, encoder_arguments
    from llmviz.scenes.link import MAX_TEXT_CHARS
    from llmviz.scenes.registry import SceneError, parse_scene

    args.view = start_view(args)
    try:
        parse_scene(args.scene)
    except SceneError as err:
        raise CliError(f"llmviz: {err}") from None
    size = parse_size(args.size)
    try:
        fps = parse_int(args.fps, "--fps", 1, MAX_FPS)
    except ValueError as err:
        raise CliError(f"llmviz: {err}") from None
    seconds = _seconds(args.seconds)
    ratio = parse_pixel_ratio(args.pixel_ratio, size)
    out = check_output_path(args.out, suffixes=SUFFIXES, reserve=1 << 20)
    suffix = out[out.rfind("."):].lower()
    if suffix in EVEN_SIDES and (size[0] % 2 or size[1] % 2):
        raise CliError(f"llmviz: --size {args.size}: a {suffix} needs an even width and height")
    try:
        encoder_arguments(suffix, args.lossless)
    except VideoError as err:
        raise CliError(f"llmviz: --lossless: {err}") from None
    if args.chapter is not None and not 1 <= args.chapter <= 999:
        raise CliError(f"llmviz: --chapter {args.chapter}: chapters are numbered from 1 (see llmviz chapters)")
    if args.generate is not None and (not args.generate.strip() or len(args.generate) > MAX_TEXT_CHARS):
        raise CliError(f"llmviz: --generate must be 1 to {MAX_TEXT_CHARS} characters")
    return size, fps, seconds, out, ratio


def start_view(args):
    """The link's view to start from (its scene becomes --scene), or None; one line naming the flag if unusable."""
    from llmviz.scenes.link import LinkError, parse_link
    from llmviz.scenes.link_spec import install

    if args.link is None:
        if args.scene is None:
            raise CliError("llmviz video: the following arguments are required: --scene (or --link)")
        return None
    try:
        view = parse_link(args.link)
        added = install(view)  # a model of the sender's own, carried inline
    except LinkError as err:
        raise CliError(f"llmviz: --link: {err}") from None
    if args.scene is not None and args.scene != view.scene:
        raise CliError(f"llmviz: --link holds the scene {view.scene!r}: drop --scene {args.scene}")
    if view.compare is not None:
        raise CliError("llmviz: --link holds a compare set; a video records one model (llmviz render --link draws it)")
    if added:
        print(added)
    args.scene = view.scene
    return view


def script_of(args, fps: int, seconds):
    from llmviz.scenes.export.video import ChapterClock, GenerateScript, TourScript

    if args.chapter is not None:
        return ChapterClock(fps, seconds)
    if args.tour:
        return TourScript(fps, seconds)
    return GenerateScript(fps, args.generate, seconds)


def open_explorer(scene: str, renderer):
    """The headless Explorer on ``scene`` with its live values in (one error line if they never come)."""
    from llmviz.engine.input import load_bindings
    from llmviz.scenes.explorer import Explorer
    from llmviz.scenes.registry import SceneError

    try:
        ex = Explorer(renderer, scene, bindings=load_bindings(), adaptive_quality=False, background_imports=False)
    except SceneError as err:
        raise CliError(f"llmviz: {err}") from None
    from llmviz.scenes.export.video import VALUES_TIMEOUT_S

    if not ex.wait_for_values(VALUES_TIMEOUT_S):
        live = ex.session.scene.live
        ex.close()
        raise CliError(f"llmviz: {scene}: the model's values did not arrive: "
                       f"{getattr(getattr(live, 'session', None), 'error', None) or 'timed out'}")
    return ex


def run(args) -> int:
    from llmviz.scenes.cli.common import Progress, headless_renderer
    from llmviz.scenes.export.video import VALUES_TIMEOUT_S, VideoError, VideoWriter, ffmpeg_exe, record

    size, fps, seconds, out, ratio = check_arguments(args)
    try:
        ffmpeg_exe()
    except VideoError as err:
        raise CliError(f"llmviz: {err}") from None
    renderer = headless_renderer(size, ratio)
    ex = open_explorer(args.scene, renderer)
    started = time.perf_counter()
    try:
        if args.view is not None:
            from dataclasses import replace

            from llmviz.scenes.explorer.share import apply_view

            # The link's camera, text and sampling; a chapter is --chapter's, played from its start.
            problem = apply_view(ex, replace(args.view, chapter=None, step=None))
            if problem:
                raise CliError(f"llmviz: --link: {problem}")
            ex.wait_for_values(VALUES_TIMEOUT_S)
        if args.chapter is not None:
            from llmviz.scenes.cli.render_cmd import _open_chapter

            _open_chapter(ex, args.chapter, 1)
        script = script_of(args, fps, seconds)
        try:
            script.start(ex)
        except VideoError as err:
            flag = "--tour" if args.tour else "--generate" if args.generate is not None else "--chapter"
            raise CliError(f"llmviz: {flag}: {err}") from None
        try:
            with VideoWriter(out, size, fps, args.lossless, channels=4) as writer:  # the RGBA read-back as it is
                started = time.perf_counter()
                frames = record(ex, script, writer, Progress(f"recording {script.label or 'video'}"))
        except VideoError as err:
            raise CliError(f"llmviz: --out {out!r}: {err}") from None
        except OSError as err:
            raise CliError(f"llmviz: --out {out!r}: cannot write: {err.strerror or err}") from None
    finally:
        ex.close()
    wall = time.perf_counter() - started
    import os

    length = frames / fps
    scaled = f", the {renderer.size[0]}x{renderer.size[1]} view at pixel ratio {ratio:g}" if ratio != 1.0 else ""
    print(f"wrote {out} ({size[0]}x{size[1]}{scaled}, {frames} frames at {fps} FPS = {length:.2f} s, "
          f"{os.path.getsize(out):,} bytes): recorded in {wall:.1f} s, {wall / max(length, 1e-9):.2f}x real time")
    return 0
