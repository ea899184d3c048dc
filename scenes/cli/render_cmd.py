"""`llmviz render`: one frame of a scene to a PNG, headless, through the same renderer as the window."""
from __future__ import annotations

import math
import os
import re
import time

import numpy as np

from llmviz.scenes.cli.common import check_output_path, headless_renderer, parse_size, process_age_s
from llmviz.scenes.cli.main import CliError

MAX_COORDINATE = 1e7  # world units; the largest model is a few thousand across


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("render", help="render one frame of a scene to a PNG (headless)")
    p.add_argument("--scene", required=True, help="scene name, e.g. stress:100000")
    p.add_argument("--size", default="1280x720", help="image size WxH (default 1280x720)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--camera", default="start",
                   help="'start', 'overview', a model's preset ('preset:first block'), 'path:T' (T in [0,1) on "
                        "the bench path) or 'X,Y,Z:TX,TY,TZ' (eye:target)")
    p.add_argument("--chapter", type=int, help="show the end of a guided chapter's step (see llmviz chapters)")
    p.add_argument("--step", type=int, default=None, help="with --chapter: the step number (default 1)")
    p.add_argument("--report", metavar="FILE.json",
                   help="also write what the frame shows as JSON: labels (text, pixel height, box), overlaps, "
                        "labels under the UI, the legend, unlabelled data blocks")
    p.add_argument("--no-ui", action="store_true",
                   help="the scene alone, without the explorer's menu, banner, panels and hint bar")
    p.set_defaults(func=run)


_NUMBER = r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*"
_CAMERA_FORMS = "'start', 'overview', 'preset:NAME', 'path:T' or 'X,Y,Z:TX,TY,TZ'"


def check_camera(spec: str) -> tuple:
    """The --camera value as (kind, argument), checked before any scene is built."""
    spec = spec.strip()
    if spec in ("start", "overview"):
        return spec, None
    if spec.startswith("preset:"):
        return "preset", spec[len("preset:"):].strip()
    match = re.fullmatch(f"path:{_NUMBER}", spec)
    if match:
        t = float(match.group(1))
        if not math.isfinite(t):
            raise CliError(f"llmviz: --camera {spec!r}: T must be a finite number")
        return "path", t % 1.0
    triple = ",".join([_NUMBER] * 3)
    match = re.fullmatch(f"{triple}:{triple}", spec)
    if match:
        values = np.array([float(v) for v in match.groups()])
        if not np.isfinite(values).all() or np.abs(values).max() > MAX_COORDINATE:
            raise CliError(f"llmviz: --camera {spec!r}: coordinates must be finite and within "
                           f"±{MAX_COORDINATE:g}")
        eye, target = values[:3], values[3:]
        if np.allclose(eye, target):
            raise CliError(f"llmviz: --camera {spec!r}: the eye and the target are the same point")
        return "pose", (eye, target)
    raise CliError(f"llmviz: --camera {spec!r} is not {_CAMERA_FORMS}")


def parse_camera(spec: str, scene, viewport):
    kind, arg = check_camera(spec)
    if kind == "start":
        return scene.start_camera(viewport)
    cam = scene.start_camera(viewport)
    if kind == "overview" and "overview" not in scene.presets:
        return _overview(scene, cam)
    if kind == "overview":  # a model scene's bounds exist only after its first frame; its preset does now
        kind, arg = "preset", "overview"
    if kind == "preset":
        if arg not in scene.presets:
            known = ", ".join(scene.presets) or "none for this scene"
            raise CliError(f"llmviz: --camera {spec!r}: no such preset; presets: {known}")
        from llmviz.scenes.model_paths import preset_camera

        return preset_camera(scene.presets[arg], viewport, scene.model.layout)
    if kind == "path":
        scene.path.pose(arg, cam)
        return cam
    eye, target = arg
    cam.position = eye
    cam.look_at(target)
    return cam


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def image_suffixes() -> tuple[str, ...]:
    """The image extensions --out accepts: the common ones this Pillow can write."""
    from PIL import Image

    Image.init()
    known = Image.registered_extensions()
    return tuple(ext for ext in IMAGE_SUFFIXES if known.get(ext) in Image.SAVE)


def encode_image(pixels: np.ndarray, path: str) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=Image.registered_extensions()[os.path.splitext(path)[1].lower()])
    return buffer.getvalue()


def _overview(scene, cam):
    """Whole world in view: from above and behind its bounding box."""
    from llmviz.engine.systems.transform import world_box

    center, half = world_box(scene.world, scene.world.query("world_bounds"))
    lo, hi = (center - half).min(axis=0), (center + half).max(axis=0)
    center, radius = (lo + hi) / 2, float(np.linalg.norm(hi - lo)) / 2
    cam.position = center + np.array([0.0, 0.55, 1.0]) * radius * 1.5
    cam.far = radius * 6
    cam.near = max(0.1, radius * 1e-4)
    cam.look_at(center)
    return cam


def run(args) -> int:
    from llmviz.scenes.registry import SceneError, parse_scene

    # Everything the user typed is checked before the scene is built, so a typo costs no render.
    size = parse_size(args.size)
    if args.step is not None and args.chapter is None:
        raise CliError("llmviz: --step needs --chapter")
    check_camera(args.camera)
    out = check_output_path(args.out, suffixes=image_suffixes(), reserve=size[0] * size[1] * 3)
    report = None
    if args.report is not None:
        if args.no_ui:
            raise CliError("llmviz: --report describes the whole frame, UI included: drop --no-ui")
        report = check_output_path(args.report, "--report", suffixes=(".json",), reserve=1 << 20)
    try:
        parse_scene(args.scene)
    except SceneError as err:
        raise CliError(f"llmviz: {err}") from None
    renderer = headless_renderer(size)
    if args.no_ui:
        image, last = _render_scene(args, renderer, size)
        written = None
    else:
        image, last, written = _render_app(args, renderer, size, report is not None)
    first_frame = process_age_s()
    _write(out, encode_image(image[:, :, :3], out), "--out")
    if report is not None:
        from llmviz.scenes.explorer.frame_report import report_json

        _write(report, report_json(written), "--report")
    print(f"wrote {out} ({size[0]}x{size[1]}): {last.get('visible', 0):,} of {last.get('entities', 0):,} "
          f"entities drawn, {last.get('draw_calls', 0)} draw calls, {last.get('triangles', 0):,} triangles; "
          f"first frame {first_frame:.2f} s after start")
    if written is not None:
        summary = written["summary"]
        print(f"wrote {report}: {summary['labels']} labels (smallest {summary['min_pixel_height']:.1f} px), "
              f"{summary['overlaps']} overlapping, {summary['under_ui']} under the UI, "
              f"{summary['legend_entries']} legend entries, {summary['unlabelled_data_blocks']} unlabelled data blocks")
    return 0


def _write(path: str, data: bytes, option: str) -> None:
    from llmviz.common.atomic import write_atomic

    try:
        write_atomic(path, data)
    except OSError as err:
        raise CliError(f"llmviz: {option} {path!r}: cannot write: {err.strerror or err}") from None


def _render_scene(args, renderer, size):
    """The scene alone through a bare engine (--no-ui)."""
    from llmviz.engine.runtime import Engine
    from llmviz.scenes.registry import SceneError, build_scene

    try:
        scene = build_scene(args.scene, renderer)
    except SceneError as err:
        raise CliError(f"llmviz: {err}") from None
    try:
        camera = parse_camera(args.camera, scene, size)
        engine = Engine(scene.world, camera, renderer)
        scene.attach(engine)
        if not scene.wait_for_values():
            raise CliError(f"llmviz: {args.scene}: the model's values did not arrive: "
                           f"{scene.live.session.error or 'timed out'}")
        if args.chapter is not None:
            from llmviz.scenes.cli.chapters_cmd import chapter_camera

            engine.camera = chapter_camera(scene, engine, args.chapter, args.step or 1)
        engine.frame(0.0)
        image = renderer.read_pixels()
    finally:
        scene.close()  # the simulation worker stops before the process exits, Ctrl+C included
    return image, engine.profiler.last


SETTLE_FRAMES = 16  # frames drawn before the picture: camera moves end (0.8 s at 1/15 s), the UI settles
SETTLE_DT = 1.0 / 15.0


def _render_app(args, renderer, size, with_report: bool):
    """The whole explorer frame as the window shows it (menu, banner, panels, hint bar, legend)."""
    from llmviz.engine.input import load_bindings
    from llmviz.scenes.explorer import Explorer
    from llmviz.scenes.registry import SceneError

    try:
        ex = Explorer(renderer, args.scene, bindings=load_bindings(), adaptive_quality=False,
                      background_imports=False)
    except SceneError as err:
        raise CliError(f"llmviz: {err}") from None
    try:
        if not ex.wait_for_values():
            live = ex.session.scene.live
            raise CliError(f"llmviz: {args.scene}: the model's values did not arrive: "
                           f"{getattr(getattr(live, 'session', None), 'error', None) or 'timed out'}")
        session = ex.session
        if args.chapter is not None:
            _open_chapter(ex, args.chapter, args.step or 1)
        else:
            camera = parse_camera(args.camera, session.scene, size)
            session.frame_start = None  # the view asked for, not the start view framed on the first frame
            session.rig.transition = None
            session.rig.camera.position = np.asarray(camera.position, np.float64).copy()
            session.rig.camera.orientation = np.asarray(camera.orientation, np.float64).copy()
            kind, name = check_camera(args.camera)
            name = "overview" if kind == "overview" else name
            if kind in ("preset", "overview") and name in session.scene.presets:
                ex.frame(0.0)  # the free window (panels) is known after one frame
                session.go_to_preset(name, duration=0.0)
        if args.chapter is not None:  # a step showing another model opens it first (chapter 9)
            deadline = time.perf_counter() + 120.0
            while time.perf_counter() < deadline:
                ex.frame(SETTLE_DT)
                ex.renderer.ctx.finish()
                ex.presented()
                chapters = ex.session.chapters
                if chapters is not None and chapters.moment is not None and not ex.loader.busy \
                        and chapters.moment.scene in ("", ex.session.name):
                    break
        for _ in range(SETTLE_FRAMES):
            ex.frame(SETTLE_DT)
            ex.renderer.ctx.finish()
            ex.presented()
        written = None
        if with_report:
            from llmviz.scenes.explorer.frame_report import frame_report

            written = frame_report(ex)
        image = renderer.read_pixels()
        last = dict(ex.session.engine.profiler.last)
    finally:
        ex.close()
    return image, last, written


def _open_chapter(ex, number: int, step: int) -> None:
    """The explorer in chapter mode at the end of chapter ``number``'s step ``step`` (1-based)."""
    mode = ex.session.chapters_mode
    if mode is None:
        raise CliError(f"llmviz: {ex.session.name}: this scene has no chapters (nano-GPT has)")
    ex.frame(0.0)
    mode.toggle(0, 0)
    player = mode.player
    if player is None:
        raise CliError(f"llmviz: --chapter {number}: {ex.session.name}: {ex.notice or 'the chapters could not open'}")
    runner = player.runner
    try:
        index = runner.chapter_index(number)
    except KeyError as err:
        raise CliError(f"llmviz: --chapter {number}: {err.args[0]}") from None
    steps = len(runner.chapters[index].steps)
    if not 1 <= step <= steps:
        raise CliError(f"llmviz: --step {step}: chapter {number} has steps 1 to {steps}")
    player.go_to(index, step - 1)
    runner.go_to_step_end(step - 1)
