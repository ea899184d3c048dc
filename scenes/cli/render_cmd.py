"""`llmviz render`: one frame of a scene to a PNG, headless, through the same renderer as the window."""
from __future__ import annotations

import contextlib
import math
import os
import re
import time

import numpy as np

from llmviz.scenes.cli.backend_arg import add_backend_argument, offscreen_renderer, tiled_renderer
from llmviz.scenes.cli.common import check_output_path, parse_size, process_age_s
from llmviz.scenes.cli.main import CliError

MAX_COORDINATE = 1e7  # world units; the largest model is a few thousand across
MAX_RENDER_SIDE = 32768  # a tiled picture's side; memory is one band of tiles (engine/render/tiled.py)
ONE_PASS_SIDE = 4096  # larger pictures are tiled: a 4096 x 4096 target is 128 MiB of colour and depth
# A .png streams band by band; other formats are assembled whole, as uint8 RGB, up to this many bytes.
MAX_ASSEMBLED_BYTES = 512 << 20
MAX_RESERVE = 256 << 20  # disk room asked for before a big render (a scene's PNG compresses far below W x H x 3)
REFERENCE_VIEW = (1280, 720)  # what --pixel-ratio auto scales up: a larger picture shows this view, larger
PIXEL_RATIO_RANGE = (0.25, 64.0)
MIN_LAYOUT_SIDE = 16  # the view a picture shows, --size over the ratio, is at least this big a side


def add_view_arguments(p) -> None:
    """The flags that say which view to show: render, export and link take the same ones."""
    p.add_argument("--scene", default=None, help="scene name, e.g. stress:100000 or gpt-2-small (or give --link)")
    p.add_argument("--camera", default="start",
                   help="'start', 'overview', a model's preset ('preset:first block'), 'path:T' (T in [0,1) on "
                        "the bench path) or 'X,Y,Z:TX,TY,TZ' (eye:target)")
    p.add_argument("--chapter", type=int, help="show the end of a guided chapter's step (see llmviz chapters)")
    p.add_argument("--step", type=int, default=None, help="with --chapter: the step number (default 1)")
    p.add_argument("--text", default=None, help="a live model's input text, traced before the picture")
    p.add_argument("--image", default=None, metavar="FILE",
                   help="a vision model's input picture (PNG or JPEG), traced before the picture")
    p.add_argument("--question", default=None,
                   help="a vision-language model's question about its picture (llava-tiny), answered before the picture")
    p.add_argument("--audio", default=None, metavar="FILE",
                   help="a speech model's input sound (WAV, FLAC, OGG or MP3), transcribed before the picture")
    p.add_argument("--temperature", default=None, metavar="T",
                   help="a live generator's sampling temperature, 0 (greedy) to 10, shown in its panel")
    p.add_argument("--seed", default=None, metavar="N", help="its sampler's seed, 0 to 2^63-1")
    p.add_argument("--link", default=None, help="an llmviz:// link (see llmviz link): the view it holds")
    p.add_argument("--trace", default=None, metavar="FILE.llmtrace",
                   help="a forward pass recorded with llmviz trace: the scene trace:FILE")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("render", help="render one frame of a scene to a PNG (headless)")
    add_view_arguments(p)
    p.add_argument("--size", default="1280x720",
                   help=f"image size WxH (default 1280x720), up to {MAX_RENDER_SIDE} a side: beyond "
                        f"{ONE_PASS_SIDE} px it is drawn in tiles")
    p.add_argument("--out", required=True, help="PNG file to write")
    add_pixel_ratio_argument(p)
    p.add_argument("--tile", default=None, metavar="PX",
                   help="draw the picture in square tiles of this side (default: one pass up to "
                        f"{ONE_PASS_SIDE} px a side, tiles of the OpenGL limit or 2048 beyond)")
    p.add_argument("--report", metavar="FILE.json",
                   help="also write what the frame shows as JSON: labels (text, pixel height, box), overlaps, "
                        "labels under the UI, the legend, unlabelled data blocks")
    p.add_argument("--no-ui", action="store_true",
                   help="the scene alone, without the explorer's menu, banner, panels and hint bar")
    p.add_argument("--compare", metavar="A,B[,C,D]", default=None,
                   help="2 to 4 model ids side by side, one view each, at the same --camera (no UI; see llmviz compare)")
    add_backend_argument(p)
    p.set_defaults(func=run)


def add_pixel_ratio_argument(p) -> None:
    p.add_argument("--pixel-ratio", default="auto", metavar="R|auto",
                   help="picture pixels per view pixel: the picture shows the view of --size / R, scaled up (labels, "
                        "LOD, line widths, hatching, legend and UI laid out for that view, drawn R times larger). "
                        f"'auto' (default): --size over {REFERENCE_VIEW[0]}x{REFERENCE_VIEW[1]} (the smaller "
                        "of the two), at least 1, so --size 7680x4320 is the 1280x720 view at 6; 1: laid out for "
                        "the whole size")


def parse_pixel_ratio(text: str, size) -> float:
    """--pixel-ratio as a number (see add_pixel_ratio_argument); one error line naming the flag."""
    text = str(text).strip()
    if text == "auto":
        return max(1.0, min(size[0] / REFERENCE_VIEW[0], size[1] / REFERENCE_VIEW[1]))
    low, high = PIXEL_RATIO_RANGE
    try:
        ratio = float(text) if len(text) <= 20 else math.nan
    except ValueError:
        ratio = math.nan
    if not low <= ratio <= high:  # NaN included
        raise CliError(f"llmviz: --pixel-ratio {text[:20]!r} is not 'auto' or a number from {low:g} to {high:g}")
    if min(size) / ratio < MIN_LAYOUT_SIDE:
        raise CliError(f"llmviz: --pixel-ratio {text}: --size {size[0]}x{size[1]} over it leaves a view under "
                       f"{MIN_LAYOUT_SIDE} px a side")
    return ratio


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
        if scene.model is None:  # a world of its own (rag): its start camera's planes, the preset's pose
            eye, target = scene.presets[arg]
            cam.position = np.asarray(eye, np.float64).copy()
            cam.look_at(np.asarray(target, np.float64))
            return cam
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


def apply_link(args) -> None:
    """Fill the view's arguments (scene, camera, chapter, step, text, sampling, compare set) from ``--link``, its
    inline model added to the user's models; a link and a flag that both say where to look is an error, as is
    neither naming a scene. Once applied, ``args.link`` is None (and ``args.opened_link`` the link)."""
    from llmviz.scenes.link import FIELDS, LinkError, parse_link
    from llmviz.scenes.link_spec import install

    link = getattr(args, "link", None)
    if getattr(args, "trace", None) is not None:
        if args.scene is not None:
            raise CliError("llmviz: --trace is the scene trace:FILE: drop --scene")
        args.scene = f"trace:{args.trace}"
    if link is None:
        if args.scene is None:
            raise CliError(f"llmviz {args.command}: the following arguments are required: --scene (or --link)")
        return
    try:
        view = parse_link(link)
    except LinkError as err:
        raise CliError(f"llmviz: --link: {err}") from None
    given = [name for name in FIELDS if getattr(args, name, None) not in (None, _DEFAULTS.get(name))]
    if given:
        raise CliError(f"llmviz: --link already holds the view: drop --{given[0]}")
    try:
        added = install(view)
    except LinkError as err:
        raise CliError(f"llmviz: --link: {err}") from None
    if added:
        print(added)
    for name in FIELDS:
        if getattr(view, name) is not None and name not in ("spec", "spec_name"):
            setattr(args, name, getattr(view, name))
    if view.compare is not None:  # --compare's own form; the split picture draws the set
        args.compare, args.scene = ",".join(view.compare), None
    args.link, args.opened_link = None, link


_DEFAULTS = {"camera": "start"}  # a flag left at its default does not compete with a link


def check_sampling(args) -> None:
    """--temperature and --seed as numbers (in args), checked as a link checks them; one error line."""
    from llmviz.scenes.link import LinkError, field_value

    for name in ("temperature", "seed"):
        value = getattr(args, name, None)
        if isinstance(value, str):
            try:
                setattr(args, name, field_value(name, value.strip(), f"--{name}"))
            except LinkError as err:
                raise CliError(f"llmviz: {err}") from None


def link_view(args):
    """The link fields of the view ``args`` ask for (checked by check_view first); a user's model goes inline."""
    from llmviz.scenes.link import LinkView
    from llmviz.scenes.link_spec import spec_of

    compare = tuple(n.strip() for n in args.compare.split(",")) if getattr(args, "compare", None) else None
    scene = args.scene if compare is None else compare[0]
    spec, spec_name = spec_of(scene) if compare is None else (None, None)
    return LinkView(scene, args.camera, args.chapter, args.step, args.text, getattr(args, "temperature", None),
                    getattr(args, "seed", None), compare, spec, spec_name)


def sampling_owner(live):
    """The object holding a live generator's ``temperature`` (and ``seed``): the live model or its session; None."""
    return next((o for o in (getattr(live, "session", None), live) if o is not None and hasattr(o, "temperature")), None)


def apply_sampling(scene, temperature, seed) -> None:
    """A live generator's sampling settings (--temperature, --seed); one error line for a scene without any."""
    if temperature is None and seed is None:
        return
    owner = sampling_owner(scene.live)
    if owner is None:
        flag = "--temperature" if temperature is not None else "--seed"
        raise CliError(f"llmviz: {flag}: {scene.name} samples nothing (no live generator)")
    if temperature is not None:
        setter = getattr(owner, "set_temperature", None)
        setter(temperature) if setter is not None else setattr(owner, "temperature", float(temperature))
    if seed is not None:
        from llmviz.models.sim.sampling import Sampler

        owner.seed = int(seed)
        for name in ("_sampler", "sampler"):  # the session's sampler starts again from the seed
            if hasattr(owner, name):
                setattr(owner, name, Sampler(int(seed)))


def check_view(args) -> None:
    """Everything the user typed about the view, checked before the scene is built (a typo costs no render)."""
    from llmviz.scenes.registry import SceneError, parse_scene

    apply_link(args)
    check_sampling(args)
    if getattr(args, "compare", None) and args.scene is None:  # a link's compare set
        if args.command != "link":
            raise CliError(f"llmviz {args.command}: the link holds a compare set; llmviz render --link LINK draws it")
        args.scene = args.compare.split(",")[0]
    if args.step is not None and args.chapter is None:
        raise CliError("llmviz: --step needs --chapter")
    check_camera(args.camera)
    from llmviz.scenes.link import MAX_TEXT_CHARS

    if args.text is not None and (not args.text.strip() or len(args.text) > MAX_TEXT_CHARS):
        raise CliError(f"llmviz: --text must be 1 to {MAX_TEXT_CHARS} characters")
    if getattr(args, "image", None) is not None:
        args.image_rgb = read_image_arg(args.image)
    if getattr(args, "audio", None) is not None:
        args.audio_samples = read_audio_arg(args.audio)
    try:
        parse_scene(args.scene)
    except SceneError as err:
        raise CliError(f"llmviz: {err}") from None


def run(args) -> int:
    if args.link is not None:  # a link may hold a compare set
        apply_link(args)
    if args.compare is not None:
        from llmviz.scenes.export.compare_pictures import run_split

        return run_split(args)
    check_view(args)
    size = parse_size(args.size, max_side=MAX_RENDER_SIDE)
    tile = None
    if args.tile is not None:
        from llmviz.scenes.cli.common import parse_int

        try:
            tile = parse_int(args.tile, "--tile", 16, MAX_RENDER_SIDE)
        except ValueError as err:
            raise CliError(f"llmviz: {err}") from None
    tiled = tile is not None or max(size) > ONE_PASS_SIDE
    ratio = parse_pixel_ratio(args.pixel_ratio, size)
    out = check_output_path(args.out, suffixes=image_suffixes(), reserve=min(size[0] * size[1] * 3, MAX_RESERVE))
    if tiled and not out.lower().endswith(".png") and size[0] * size[1] * 3 > MAX_ASSEMBLED_BYTES:
        raise CliError(f"llmviz: --size {size[0]}x{size[1]}: a {os.path.splitext(out)[1]} this large is built whole "
                       f"({size[0] * size[1] * 3 >> 20} MiB, above the {MAX_ASSEMBLED_BYTES >> 20} MiB bound); "
                       f"write a .png (streamed band by band) or a smaller size")
    report = None
    if args.report is not None:
        if args.no_ui:
            raise CliError("llmviz: --report describes the whole frame, UI included: drop --no-ui")
        report = check_output_path(args.report, "--report", suffixes=(".json",), reserve=1 << 20)
    backend = getattr(args, "backend", "gl")
    if tiled:
        renderer = tiled_renderer(backend, size, tile, ratio, needs=() if args.no_ui else ("ui",))
    else:
        renderer = offscreen_renderer(backend, size, ratio, needs=() if args.no_ui else ("ui",))
    picture = Picture(renderer, out, size)
    if args.no_ui:
        with scene_alone(args, renderer, renderer.size) as (scene, engine):
            picture.write()
            last = engine.profiler.last
        written = None
    else:
        last, written = _render_app(args, renderer, renderer.size, report is not None, picture)
    if report is not None:
        from llmviz.scenes.explorer.frame_report import report_json

        _write(report, report_json(written), "--report")
    tiles = f", {renderer.grid.count} tiles of {renderer.grid.side} px" if tiled else ""
    tiles += f", the {renderer.size[0]}x{renderer.size[1]} view at pixel ratio {ratio:g}" if ratio != 1.0 else ""
    print(f"wrote {out} ({size[0]}x{size[1]}{tiles}): {last.get('visible', 0):,} of {last.get('entities', 0):,} "
          f"entities drawn, {last.get('draw_calls', 0)} draw calls, {last.get('triangles', 0):,} triangles; "
          f"first frame {picture.first_frame:.2f} s after start")
    if written is not None:
        summary = written["summary"]
        print(f"wrote {report}: {summary['labels']} labels (smallest {summary['min_pixel_height']:.1f} px), "
              f"{summary['overlaps']} overlapping, {summary['under_ui']} under the UI, "
              f"{summary['legend_entries']} legend entries, {summary['unlabelled_data_blocks']} unlabelled data blocks")
    return 0


class Picture:
    """Writes the renderer's picture to ``out`` once the frame is drawn: read back whole (one pass) or
    band by band from a tiled renderer (a .png streamed, other formats assembled as uint8)."""

    def __init__(self, renderer, out: str, size):
        self.renderer, self.out, self.size = renderer, out, size
        self.first_frame = 0.0

    def write(self, overlay=None) -> None:
        """``overlay(rect)``: what a tiled renderer draws over each tile (the UI; one pass has it already)."""
        self.first_frame = process_age_s()
        bands = getattr(self.renderer, "bands", None)
        if bands is None:
            _write(self.out, encode_image(self.renderer.read_pixels()[:, :, :3], self.out), "--out")
            return
        from llmviz.scenes.cli.common import Progress

        progress = Progress(f"rendering {self.size[0]}x{self.size[1]} in tiles")
        if not self.out.lower().endswith(".png"):
            _write(self.out, encode_image(np.concatenate(list(bands(overlay, progress))), self.out), "--out")
            return
        from llmviz.common.atomic import atomic_file
        from llmviz.engine.render.png_stream import write_png

        try:
            with atomic_file(self.out) as f:
                write_png(f, self.size, bands(overlay, progress))
        except OSError as err:
            raise CliError(f"llmviz: --out {self.out!r}: cannot write: {err.strerror or err}") from None


def _write(path: str, data: bytes, option: str) -> None:
    from llmviz.common.atomic import write_atomic

    try:
        write_atomic(path, data)
    except OSError as err:
        raise CliError(f"llmviz: {option} {path!r}: cannot write: {err.strerror or err}") from None


def _live_setter(scene, flag: str, names: tuple[str, ...], what: str):
    """The live model's method (one of `names`, on it or its session) that takes a new input; one error line
    naming `flag` for a scene without one."""
    from llmviz.scenes.live import input_setter

    setter = input_setter(scene.live, names)
    if setter is None:
        raise CliError(f"llmviz: {flag}: {scene.name} computes no values to trace {what} on")
    return setter


def _wait_for_input(scene, flag: str, what: str) -> None:
    if not scene.wait_for_values():
        raise CliError(f"llmviz: {flag}: the values of {scene.name} on {what} did not arrive")


def apply_text(scene, text: str) -> None:
    """Trace a live scene's model on ``text`` and wait for its values; a scene with no live model, or text its
    model refuses, is one error line naming --text."""
    from llmviz.scenes.live import TEXT_SETTERS

    problem = _live_setter(scene, "--text", TEXT_SETTERS, "a text")(text)
    if problem:
        raise CliError(f"llmviz: --text {text[:40]!r}: {problem}")
    _wait_for_input(scene, "--text", "that text")


def read_image_arg(path: str):
    """--image's picture, decoded (bounded: models/sim/vit_image.py) before any scene is built; one error line."""
    from llmviz.models.sim.vit_image import ImageError, read_image

    try:
        return read_image(path)
    except ImageError as err:
        raise CliError(f"llmviz: --image: {err}") from None


def apply_question(scene, text: str) -> None:
    """Ask a live vision-language scene's model ``text`` and wait for its whole answer; a scene that takes no
    question, or a question its model cannot read, is one error line naming --question."""
    problem = _live_setter(scene, "--question", ("set_question",), "a question")(text)
    if problem:
        raise CliError(f"llmviz: --question {text[:40]!r}: {problem}")
    _wait_for_input(scene, "--question", "that question")


def apply_image(scene, path: str, rgb) -> None:
    """Trace a live vision scene's model on the picture and wait for its values; a scene that takes no
    picture is one error line naming --image."""
    _live_setter(scene, "--image", ("set_image",), "a picture")(rgb, source=path)
    _wait_for_input(scene, "--image", "that picture")


def read_audio_arg(path: str):
    """--audio's sound, decoded (bounded: models/sim/audio_io.py) before any scene is built; one error line."""
    from llmviz.models.sim.audio_io import AudioError, read_audio

    try:
        return read_audio(path).samples
    except AudioError as err:
        raise CliError(f"llmviz: --audio: {err}") from None


def apply_audio(scene, path: str, samples) -> None:
    """Transcribe with a live speech scene's model and wait for its values; another scene is one error line."""
    _live_setter(scene, "--audio", ("set_audio",), "a sound")(samples, source=path)
    _wait_for_input(scene, "--audio", "that sound")


@contextlib.contextmanager
def scene_alone(args, renderer, size):
    """The scene through a bare engine (no UI), at the view ``args`` asks for, its frame drawn: yields
    (scene, engine) and closes the scene after (its simulation worker stops, Ctrl+C included)."""
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
        if getattr(args, "text", None) is not None:
            apply_text(scene, args.text)
        if getattr(args, "image", None) is not None:
            apply_image(scene, args.image, args.image_rgb)
        if getattr(args, "question", None) is not None:
            apply_question(scene, args.question)
        if getattr(args, "audio", None) is not None:
            apply_audio(scene, args.audio, args.audio_samples)
        apply_sampling(scene, getattr(args, "temperature", None), getattr(args, "seed", None))
        if args.chapter is not None:
            from llmviz.scenes.cli.chapters_cmd import chapter_camera

            engine.camera = chapter_camera(scene, engine, args.chapter, args.step or 1)
        engine.frame(0.0)
        yield scene, engine
    finally:
        scene.close()


SETTLE_FRAMES = 16  # frames drawn before the picture: camera moves end (0.8 s at 1/15 s), the UI settles
SETTLE_DT = 1.0 / 15.0


def _render_app(args, renderer, size, with_report: bool, picture: Picture):
    """The whole explorer frame as the window shows it (menu, banner, panels, hint bar, legend), written
    by ``picture``; returns the frame's figures and its report (or None)."""
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
        if args.text is not None:
            apply_text(session.scene, args.text)
        if args.image is not None:
            apply_image(session.scene, args.image, args.image_rgb)
        if getattr(args, "question", None) is not None:
            apply_question(session.scene, args.question)
        if getattr(args, "audio", None) is not None:
            apply_audio(session.scene, args.audio, args.audio_samples)
        apply_sampling(session.scene, args.temperature, args.seed)
        if args.chapter is not None:
            _open_chapter(ex, args.chapter, args.step or 1, keep_input=args.text is not None)
        else:
            aim(ex, session, args.camera, size)
        if args.chapter is not None:  # a step showing another model opens it first (chapter 9)
            from llmviz.scenes.live_wait import VALUES_TIMEOUT_S

            deadline = time.perf_counter() + VALUES_TIMEOUT_S  # a recording's snapshots load on their worker too
            while time.perf_counter() < deadline:
                ex.frame(SETTLE_DT)
                ex.renderer.finish()
                ex.presented()
                chapters = ex.session.chapters
                if chapters is not None and chapters.moment is not None and not ex.loader.busy \
                        and chapters.moment.scene in ("", ex.session.name) and getattr(chapters, "settled", True):
                    break
        for _ in range(SETTLE_FRAMES):
            ex.frame(SETTLE_DT)
            ex.renderer.finish()
            ex.presented()
        written = None
        if with_report:
            from llmviz.scenes.explorer.frame_report import frame_report

            written = frame_report(ex)
        overlay = None
        if hasattr(renderer, "bands") and ex.ui is not None:  # the UI of the last frame, drawn into each tile
            from imgui_bundle import imgui

            overlay = renderer.ui_tile_drawer(ex.ui.renderer, imgui.get_draw_data())
        picture.write(overlay)
        last = dict(ex.session.engine.profiler.last)
    finally:
        ex.close()
    return last, written


def aim(ex, session, camera_spec: str, size) -> None:
    """Put an explorer session's camera where ``--camera`` says, at once (a preset framed as the explorer frames it)."""
    camera = parse_camera(camera_spec, session.scene, size)
    session.frame_start = None  # the view asked for, not the start view framed on the first frame
    session.rig.transition = None
    session.rig.camera.position = np.asarray(camera.position, np.float64).copy()
    session.rig.camera.orientation = np.asarray(camera.orientation, np.float64).copy()
    kind, name = check_camera(camera_spec)
    name = "overview" if kind == "overview" else name
    if kind in ("preset", "overview") and name in session.scene.presets:
        ex.frame(0.0)  # the free window (panels) is known after one frame
        session.go_to_preset(name, duration=0.0)


def _open_chapter(ex, number: int, step: int, keep_input: bool = False) -> None:
    """The explorer in chapter mode at the end of chapter ``number``'s step ``step`` (1-based); a chapter that
    names an input is traced on it first unless ``keep_input`` (--text given)."""
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
    player.keep_input = keep_input
    player.go_to(index, step - 1)
    runner.go_to_step_end(step - 1)
    player.give_chapter_input()
    ex.session.scene.wait_for_values()   # the trace of the chapter's own input, before the picture
