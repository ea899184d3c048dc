"""`python -m llmviz.engine`: the engine's own stress scene, headless, with no scenes/ or models/ code involved.

Renders N clustered boxes along the fly-through path and prints frame statistics; with --out,
also saves the first frame. It proves the engine stands on its own (DESIGN.md's layering).
"""
from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmviz.engine", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="boxes in the stress scene")
    parser.add_argument("--frames", type=int, default=120, help="frames along the camera path")
    parser.add_argument("--size", type=int, nargs=2, default=(1280, 720), metavar=("W", "H"))
    parser.add_argument("--out", help="save the first frame to this PNG")
    args = parser.parse_args(argv)
    if args.count < 1 or args.frames < 1:
        parser.error("--count and --frames must be at least 1")

    from .bench import BenchPath, run_frames
    from .render.headless import HeadlessRenderer
    from .runtime import Engine
    from .stress import build_stress

    renderer = HeadlessRenderer(tuple(args.size))
    scene = build_stress(args.count, renderer=renderer)
    engine = Engine(scene.world, scene.camera_at(0.0), renderer)
    if args.out:
        engine.frame(0.0)
        renderer.save_png(args.out)
    report = run_frames(engine, BenchPath(lambda t, cam: scene.camera_at(t, cam)), args.frames, renderer.ctx.finish)
    print(json.dumps({"count": args.count, **report}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
