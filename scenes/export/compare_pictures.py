"""Models side by side in one headless picture: the Explorer's split-screen views, one per model, each at the same camera preset.

`llmviz render --compare A,B --camera preset:overview --out F.png` writes it; `llmviz compare --out report.html`
cuts each model's own picture out of it (every view is exactly one picture's size, so the crops are the
models alone at that preset). The scenes are the window's own (scenes/explorer/controller.py add_view),
drawn without the UI, whose panels describe one model.
"""
from __future__ import annotations

import numpy as np

from llmviz.scenes.cli.main import CliError

SETTLE_FRAMES = 4   # frames before the picture: a preset is reached at once; the labels settle
SETTLE_DT = 1.0 / 15.0
MIN_VIEW_SIDE = 16
MARGIN = 0.08  # of a view's width and height, left free around a preset's target


def split_rects(count: int) -> list[tuple[float, float, float, float]]:
    """``count`` views side by side, left to right, as (x, y, w, h) fractions of the target."""
    return [(i / count, 0.0, 1.0 / count, 1.0) for i in range(count)]


def split_pixels(renderer, names: list[str], camera: str, progress=None) -> np.ndarray:
    """Scenes ``names`` side by side in ``renderer``'s target, each at ``camera``; the (h, w, 3) picture.
    ``progress(done, total)`` hears of each scene built."""
    from llmviz.engine.input import load_bindings
    from llmviz.scenes.cli.render_cmd import aim
    from llmviz.scenes.explorer import Explorer
    from llmviz.scenes.registry import SceneError

    rects = split_rects(len(names))
    total = len(names) + 1
    try:
        ex = Explorer(renderer, names[0], ui=False, bindings=load_bindings(), adaptive_quality=False,
                      background_imports=False)
    except SceneError as err:
        raise CliError(f"llmviz: {err}") from None
    try:
        ex.views[0].rect = rects[0]
        if progress:
            progress(1, total)
        for k, (name, rect) in enumerate(zip(names[1:], rects[1:]), start=2):
            try:
                ex.add_view(name, rect)
            except SceneError as err:
                raise CliError(f"llmviz: {err}") from None
            if progress:
                progress(k, total)
        for view in ex.views:
            if not view.session.scene.wait_for_values():
                raise CliError(f"llmviz: {view.session.name}: the model's values did not arrive")
            w, h = view.pixels(renderer.size)[2:]
            # A preset frames its target in the whole view; a margin keeps its edges (and the caption's
            # corner) clear, as the window's panels do there.
            view.session.rig.window = (MARGIN * w, MARGIN * h, (1 - MARGIN) * w, (1 - MARGIN) * h)
            aim(ex, view.session, camera, (w, h))
        for _ in range(SETTLE_FRAMES):
            ex.frame(SETTLE_DT)
            ex.renderer.finish()
            ex.presented()
        if progress:
            progress(total, total)
        return renderer.read_pixels()[:, :, :3]
    finally:
        ex.close()


CAPTION_PX = 18


def caption_views(pixels: np.ndarray, captions: list[str]) -> np.ndarray:
    """Each view's model named at its top left (the split picture has no UI to say which is which)."""
    import importlib.resources
    import io

    from PIL import Image, ImageDraw, ImageFont

    font_file = importlib.resources.files("llmviz.assets").joinpath("fonts/DejaVuSans.ttf")
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(io.BytesIO(font_file.read_bytes()), CAPTION_PX)
    w, h = image.size
    for (x, _, fw, _), text in zip(split_rects(len(captions)), captions):
        left = int(round(x * w)) + 8
        draw.rectangle((left - 4, 4, left + draw.textlength(text, font=font) + 4, 8 + CAPTION_PX + 4), fill=(16, 18, 24))
        draw.text((left, 8), text, fill=(235, 235, 235), font=font)
        if x > 0:
            draw.line((int(round(x * w)), 0, int(round(x * w)), h), fill=(90, 96, 110), width=1)
    return np.asarray(image)


def check_compare_names(text: str) -> list[str]:
    """--compare A,B[,C,D]: 2 to 4 distinct model ids of the registry, as their ids; one CliError line otherwise."""
    from llmviz.models.compare import MAX_MODELS, MIN_MODELS
    from llmviz.models.registry import UnknownModelError, load_registry

    names = [n.strip() for n in text.split(",") if n.strip()]
    if not MIN_MODELS <= len(names) <= MAX_MODELS:
        raise CliError(f"llmviz: --compare needs {MIN_MODELS} to {MAX_MODELS} model ids separated by commas, "
                       f"got {len(names)}")
    registry = load_registry()
    ids = []
    for name in names:
        try:
            ids.append(registry.get(name).id)
        except UnknownModelError as err:
            raise CliError(f"llmviz: --compare: {err}") from None
    if len(set(ids)) < len(ids):
        twice = next(i for i in ids if ids.count(i) > 1)
        raise CliError(f"llmviz: --compare: {twice!r} is given more than once")
    return ids


# `render` flags that describe one scene's view, which a split picture does not take.
_SINGLE_VIEW_FLAGS = (("scene", None), ("link", None), ("chapter", None), ("step", None), ("text", None),
                      ("tile", None), ("report", None))


def run_split(args) -> int:
    """`llmviz render --compare A,B …`: the split picture to --out."""
    from llmviz.scenes.cli.common import Progress, check_output_path, headless_renderer, parse_size
    from llmviz.scenes.cli.render_cmd import ONE_PASS_SIDE, _write, check_camera, encode_image, image_suffixes

    for flag, default in _SINGLE_VIEW_FLAGS:
        if getattr(args, flag, default) != default:
            raise CliError(f"llmviz: --compare draws one view per model: drop --{flag}")
    names = check_compare_names(args.compare)
    check_camera(args.camera)
    size = parse_size(args.size, max_side=ONE_PASS_SIDE)
    if size[0] // len(names) < MIN_VIEW_SIDE:
        raise CliError(f"llmviz: --size {args.size!r}: {len(names)} views need at least {MIN_VIEW_SIDE * len(names)} px of width")
    out = check_output_path(args.out, suffixes=image_suffixes(), reserve=size[0] * size[1] * 3)
    renderer = headless_renderer(size)
    try:
        pixels = split_pixels(renderer, names, args.camera, Progress("building the scenes"))
    finally:
        renderer.release()
    _write(out, encode_image(caption_views(pixels, names), out), "--out")
    print(f"wrote {out} ({size[0]}x{size[1]}): {', '.join(names)} side by side at --camera {args.camera}")
    return 0
