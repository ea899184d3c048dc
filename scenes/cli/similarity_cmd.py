"""`llmviz similarity --model clip-tiny --image FILE --text "…" [--text "…" …] [--json]`: a picture and
captions through a small CLIP trained here, headless: each caption's cosine similarity with the picture in
the shared space, scaled by e^logit_scale, and the softmax of those over the captions.

The picture is read bounded and prepared exactly as transformers' CLIPImageProcessor would
(models/sim/clip_image.py); a caption is read by clip-tiny's word-level vocabulary. Bad input (an unknown
model, a missing, damaged, truncated or oversized picture, a caption with an unknown word, too many or too
long captions) is one line and exit code 2.
"""
from __future__ import annotations

import json
import sys

from llmviz.scenes.cli.common import shown

MODELS = ("clip-tiny",)
WHAT_IT_IS = "a small CLIP trained here on generated shapes and their captions"
MAX_CAPTIONS = 64


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("similarity", help="score captions against a picture with a small CLIP "
                                                 "(no display needed)",
                              description="Run a PNG or JPEG and captions through a small CLIP trained here on "
                                          "generated shapes, and print each caption's scaled cosine similarity "
                                          "with the picture and their softmax.")
    p.add_argument("--model", default="clip-tiny", help="model: " + ", ".join(MODELS) + " (default clip-tiny)")
    p.add_argument("--image", required=True, help="a PNG or JPEG file")
    p.add_argument("--text", action="append", required=True, metavar="CAPTION",
                   help='a caption such as "a small red star" (repeat for more)')
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _fail(message: str, code: int = 2) -> int:
    print(f"llmviz similarity: error: {message}", file=sys.stderr)
    return code


def similarity(rgb, captions: list[str], model=None) -> dict:
    """The result `run` prints, for a (height, width, 3) uint8 picture and captions clip_vocab reads."""
    import numpy as np
    import torch

    from llmviz.models.sim import clip_image, clip_model, clip_trace, clip_vocab

    torch.set_num_threads(1)
    model = model if model is not None else clip_model.load_clip()
    ids = clip_trace.caption_batch(captions)
    size = model.config.vision_config.image_size
    with torch.inference_mode():
        image = clip_trace.image_features(model, clip_trace.pixel_tensor(clip_image.preprocess(rgb, size)))
        logits = clip_trace.logits_per_image(model, image, clip_trace.text_features(model, ids))[0]
        scale, log_scale = float(model.logit_scale.exp()), float(model.logit_scale)
    probs = torch.softmax(logits, -1).numpy().astype(np.float64)
    return {"model": "clip-tiny", "about": WHAT_IT_IS, "image": {"width": int(rgb.shape[1]), "height": int(rgb.shape[0])},
            "input_pixels": size, "logit_scale": log_scale, "scale": scale,
            "captions": [{"text": c, "tokens": clip_vocab.decode(clip_vocab.encode(c)), "cosine": float(v) / scale,
                          "logit": float(v), "probability": float(p)} for c, v, p in zip(captions, logits, probs)]}


def run(args) -> int:
    from llmviz.models.sim.clip_vocab import CaptionError, encode
    from llmviz.models.sim.vit_image import ImageError, read_image

    if args.model not in MODELS:
        return _fail(f"unknown model {shown(args.model)}; models that score captions: {', '.join(MODELS)}")
    if len(args.text) > MAX_CAPTIONS:
        return _fail(f"--text: {len(args.text)} captions; at most {MAX_CAPTIONS}")
    try:
        for caption in args.text:
            encode(caption)   # names the caption and the word it does not know
    except CaptionError as exc:
        return _fail(f"--text: {exc}")
    try:
        rgb = read_image(args.image)
    except ImageError as exc:
        return _fail(str(exc))
    result = similarity(rgb, list(args.text))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.model} ({WHAT_IT_IS}): {args.image} ({result['image']['width']} x {result['image']['height']} px) "
          f"-> {result['input_pixels']} x {result['input_pixels']} px; score = cos(image, text) x "
          f"e^{result['logit_scale']:.3f} = cos x {result['scale']:.2f}")
    width = max(len(c["text"]) for c in result["captions"])
    for c in result["captions"]:
        print(f"  {c['text']:<{width}}  cos {c['cosine']:+.4f}  score {c['logit']:+8.3f}  "
              f"softmax {100 * c['probability']:6.2f}%")
    return 0
