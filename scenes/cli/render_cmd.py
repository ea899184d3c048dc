"""`llmviz render`: one frame of a scene to a PNG, headless, through the same renderer as the window."""
from __future__ import annotations

import re

import numpy as np

from llmviz.scenes.cli.common import check_output_path, headless_renderer, parse_size, process_age_s
from llmviz.scenes.cli.main import CliError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("render", help="render one frame of a scene to a PNG (headless)")
    p.add_argument("--scene", required=True, help="scene name, e.g. stress:100000")
    p.add_argument("--size", default="1280x720", help="image size WxH (default 1280x720)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--camera", default="start",
                   help="'start', 'overview', a model's preset ('preset:first block'), 'path:T' (T in [0,1) on "
                        "the bench path) or 'X,Y,Z:TX,TY,TZ' (eye:target)")
    p.add_argument("--chapter", type=int, help="show the end of a guided chapter's step (see llmviz chapters)")
    p.add_argument("--step", type=int, default=1, help="with --chapter: the step number (default 1)")
    p.set_defaults(func=run)


def parse_camera(spec: str, scene, viewport):
    spec = spec.strip()
    if spec == "start":
        return scene.start_camera(viewport)
    cam = scene.start_camera(viewport)
    if spec == "overview":
        return _overview(scene, cam)
    if spec.startswith("preset:"):
        name = spec[len("preset:"):].strip()
        if name not in scene.presets:
            known = ", ".join(scene.presets) or "none for this scene"
            raise CliError(f"llmviz: --camera {spec!r}: no such preset; presets: {known}")
        from llmviz.scenes.model_paths import preset_camera

        return preset_camera(scene.presets[name], viewport, scene.model.layout)
    match = re.fullmatch(r"path:([0-9.]+)", spec)
    if match:
        scene.path.pose(float(match.group(1)) % 1.0, cam)
        return cam
    number = r"\s*(-?[0-9.]+(?:e-?\d+)?)\s*"
    triple = ",".join([number] * 3)
    match = re.fullmatch(f"{triple}:{triple}", spec)
    if match:
        values = [float(v) for v in match.groups()]
        eye, target = np.array(values[:3]), np.array(values[3:])
        if np.allclose(eye, target):
            raise CliError(f"llmviz: --camera {spec!r}: the eye and the target are the same point")
        cam.position = eye
        cam.look_at(target)
        return cam
    raise CliError(f"llmviz: --camera {spec!r} is not 'start', 'overview', 'path:T' or 'X,Y,Z:TX,TY,TZ'")


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
    from PIL import Image

    from llmviz.engine.runtime import Engine
    from llmviz.scenes.registry import SceneError, build_scene

    size = parse_size(args.size)
    out = check_output_path(args.out)
    renderer = headless_renderer(size)
    try:
        scene = build_scene(args.scene, renderer)
    except SceneError as err:
        raise CliError(f"llmviz: {err}") from None
    camera = parse_camera(args.camera, scene, size)
    engine = Engine(scene.world, camera, renderer)
    scene.attach(engine)
    if not scene.wait_for_values():
        raise CliError(f"llmviz: {args.scene}: the model's values did not arrive: {scene.live.session.error or 'timed out'}")
    if args.chapter is not None:
        from llmviz.scenes.cli.chapters_cmd import chapter_camera

        engine.camera = chapter_camera(scene, engine, args.chapter, args.step)
    engine.frame(0.0)
    image = renderer.read_pixels()
    first_frame = process_age_s()
    try:
        Image.fromarray(image[:, :, :3]).save(out)
    except OSError as err:
        raise CliError(f"llmviz: --out {out!r}: cannot write: {err.strerror or err}") from None
    last = engine.profiler.last
    print(f"wrote {out} ({size[0]}x{size[1]}): {last.get('visible', 0):,} of {last.get('entities', 0):,} "
          f"entities drawn, {last.get('draw_calls', 0)} draw calls, {last.get('triangles', 0):,} triangles; "
          f"first frame {first_frame:.2f} s after start")
    return 0
