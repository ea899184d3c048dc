"""`llmviz classify --model vit-tiny --image FILE [--json] [--top N]`: a picture through a small vision model
trained here, headless: its top classes with probabilities and the patch grid it was cut into.

The picture is read with its size checked before decoding and prepared exactly as transformers'
ViTImageProcessor would (models/sim/vit_image.py). Bad input (an unknown model, a missing, damaged,
truncated or oversized picture, a bad --top) is one line and exit code 2.
"""
from __future__ import annotations

import json
import sys

from llmviz.scenes.cli.common import parse_int, shown

# Models that classify a picture: id -> (model module, its loader). clip-tiny joins with its own scoring.
CLASSIFIERS = {"vit-tiny": ("llmviz.models.sim.vit_model", "load_vit")}
WHAT_IT_IS = "a small model trained here on generated shapes"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("classify", help="classify a picture with a small vision model (no display needed)",
                              description="Run a PNG or JPEG through a small vision transformer trained here on "
                                          "generated shapes, and print its top classes.")
    p.add_argument("--model", default="vit-tiny", help="model: " + ", ".join(CLASSIFIERS) + " (default vit-tiny)")
    p.add_argument("--image", required=True, help="a PNG or JPEG file")
    p.add_argument("--top", default=None, help="how many classes to list (default: all)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _fail(message: str, code: int = 2) -> int:
    print(f"llmviz classify: error: {message}", file=sys.stderr)
    return code


def classify(model_id: str, rgb) -> dict:
    """The result `run` prints, for a (height, width, 3) uint8 picture."""
    import importlib

    import numpy as np
    import torch

    from llmviz.models.sim import vit_image, vit_trace

    torch.set_num_threads(1)
    module, loader = CLASSIFIERS[model_id]
    model = getattr(importlib.import_module(module), loader)()
    cfg = model.config
    with torch.inference_mode():
        logits = vit_trace.forward(model, vit_trace.pixel_tensor(vit_image.preprocess(rgb, cfg.image_size)))[0]
    probs = torch.softmax(logits, -1).numpy().astype(np.float64)
    order = np.argsort(-probs, kind="stable")
    grid = cfg.image_size // cfg.patch_size
    return {"model": model_id, "about": WHAT_IT_IS, "image": {"width": int(rgb.shape[1]), "height": int(rgb.shape[0])},
            "input_pixels": cfg.image_size, "patch_size": cfg.patch_size, "patch_grid": [grid, grid],
            "tokens": grid * grid + 1,
            "classes": [{"label": cfg.id2label[int(i)], "probability": float(probs[i]), "logit": float(logits[i])}
                        for i in order]}


def run(args) -> int:
    from llmviz.models.sim.vit_image import read_image
    from llmviz.scenes.cli.main import CliError

    if args.model not in CLASSIFIERS:
        return _fail(f"unknown model {shown(args.model)}; classifiers: {', '.join(CLASSIFIERS)}")
    try:
        top = None if args.top is None else parse_int(args.top, "--top", 1, 1000)
        rgb = read_image(args.image)
    except (CliError, ValueError) as exc:  # ImageError is a ValueError
        return _fail(str(exc).removeprefix("llmviz: "))
    result = classify(args.model, rgb)
    result["classes"] = result["classes"][:top]
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    g = result["patch_grid"]
    print(f"{args.model} ({WHAT_IT_IS}): {args.image} ({result['image']['width']} x {result['image']['height']} px) "
          f"-> {result['input_pixels']} x {result['input_pixels']} px, {g[0]} x {g[1]} patches of "
          f"{result['patch_size']} x {result['patch_size']} px + [CLS] = {result['tokens']} tokens")
    for c in result["classes"]:
        print(f"  {c['label']:<10} {100 * c['probability']:6.2f}%")
    return 0
