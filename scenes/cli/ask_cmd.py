"""`llmviz ask --model llava-tiny --image FILE --question "…" [--json]`: a question about a picture answered by
a small vision-language model trained here, headless: the greedy answer, each token with its probability.

The picture is read with its size checked before decoding and prepared exactly as the exported processor
would (models/sim/vit_image.py); the question is checked word by word against the model's vocabulary
(models/sim/llava_vocab.py). Bad input (an unknown model, a missing, damaged, truncated or oversized
picture, an unknown word, a question too long) is one line and exit code 2.
"""
from __future__ import annotations

import json
import sys

from llmviz.scenes.cli.common import shown

# Models that answer questions about a picture: id -> (model module, its loader).
ANSWERERS = {"llava-tiny": ("llmviz.models.sim.llava_model", "load_llava")}
WHAT_IT_IS = "a small model trained here on generated shapes"
TOP = 3   # alternatives listed per answer token


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("ask", help="ask a small vision-language model about a picture (no display needed)",
                              description="Answer a question about a PNG or JPEG with a small LLaVA trained here "
                                          "on generated shapes: 'what shape is it?', 'what colour is it?', "
                                          "'describe it'.")
    p.add_argument("--model", default="llava-tiny", help="model: " + ", ".join(ANSWERERS) + " (default llava-tiny)")
    p.add_argument("--image", required=True, help="a PNG or JPEG file")
    p.add_argument("--question", required=True, help="the question, in the model's words (e.g. 'describe it')")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _fail(message: str, code: int = 2) -> int:
    print(f"llmviz ask: error: {message}", file=sys.stderr)
    return code


def ask(model_id: str, rgb, question: list[int]) -> dict:
    """The result `run` prints, for a (height, width, 3) uint8 picture and a checked question's ids."""
    import importlib

    import numpy as np
    import torch

    from llmviz.models.sim import llava_trace, llava_vocab, vit_image

    torch.set_num_threads(1)
    module, loader = ANSWERERS[model_id]
    model = getattr(importlib.import_module(module), loader)()
    pixels = vit_image.preprocess(rgb, model.config.vision_config.image_size)
    answer = llava_trace.greedy_answer(model, pixels, question)
    # each step's whole distribution, for the alternatives: one more forward over the answer
    ids = llava_trace.sequence(model, question, [t for t, _ in answer])
    with torch.inference_mode():
        logits = llava_trace.forward(model, llava_trace.pixel_tensor(pixels), torch.tensor([ids]))[0]
    start = len(ids) - len(answer) - 1
    tokens = []
    for k, (token, p) in enumerate(answer):
        probs = torch.softmax(logits[start + k], -1).numpy().astype(np.float64)
        order = np.argsort(-probs, kind="stable")[:TOP]
        tokens.append({"token": llava_vocab.WORDS[token], "probability": p,
                       "top": [{"token": llava_vocab.WORDS[int(i)], "probability": float(probs[i])} for i in order]})
    n_image = model.config.image_seq_length
    return {"model": model_id, "about": WHAT_IT_IS, "image": {"width": int(rgb.shape[1]), "height": int(rgb.shape[0])},
            "input_pixels": model.config.vision_config.image_size, "image_tokens": n_image,
            "question": " ".join(llava_vocab.decode(question)), "prompt_tokens": len(ids) - len(answer),
            "answer": llava_vocab.answer_text([t for t, _ in answer]), "tokens": tokens}


def run(args) -> int:
    from llmviz.models.sim.llava_vocab import question_ids
    from llmviz.models.sim.vit_image import read_image

    if args.model not in ANSWERERS:
        return _fail(f"unknown model {shown(args.model)}; models that answer questions: {', '.join(ANSWERERS)}")
    try:
        question = question_ids(args.question)
    except ValueError as exc:   # QuestionError
        return _fail(f"--question {shown(args.question)}: {exc}")
    try:
        rgb = read_image(args.image)
    except ValueError as exc:   # ImageError
        return _fail(str(exc))
    result = ask(args.model, rgb, question)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.model} ({WHAT_IT_IS}): {args.image} ({result['image']['width']} x {result['image']['height']} px) "
          f"-> {result['image_tokens']} image tokens, then {shown(result['question'], 80)}")
    print(f"answer: {result['answer'] or '(nothing: </s> first)'}")
    for t in result["tokens"]:
        others = ", ".join(f"{o['token']} {100 * o['probability']:.1f}%" for o in t["top"][1:])
        print(f"  {t['token']:<10} {100 * t['probability']:6.2f}%   (next: {others})")
    return 0
