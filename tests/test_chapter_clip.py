"""Chapter 16 (One space for pictures and words: CLIP) on the live clip-tiny: it plays headless to the end, every
step renders from the live trace, and the figures its steps print (the traced pair's score, the softmax over the
captions in the similarity matrix, the temperature) are transformers' CLIPModel's on the same picture and
captions, computed here independently of llmviz's trace."""
import re

import pytest

pytest.importorskip("torch")

from scene_support import SHOWN_NUMBER as N  # noqa: E402
from scene_support import assert_chapter_is, live_scene, played_chapter_texts  # noqa: E402
from scene_support import shown_close as close  # noqa: E402
from scene_support import shown_number as number  # noqa: E402

SIZE = (320, 180)


@pytest.fixture(scope="module")
def clip():
    with live_scene("clip-tiny", SIZE) as opened:
        yield opened


def test_the_clip_chapter_is_chapter_16_on_clip_tiny():
    # the prose holds no digits but indices (patch 0, head 0, channel 0, the first three components)
    assert_chapter_is(16, "clip-tiny", {"0", "1", "2", "3"}, steps=(7, 9))


def test_the_clip_chapter_plays_and_prints_transformers_figures(clip):
    import torch

    from llmviz.models.sim import clip_image, clip_model, clip_trace, vit_image

    scene, _ = clip
    texts = played_chapter_texts(scene, SIZE, 16)
    live = scene.live
    model = clip_model.load_clip()
    ids = clip_trace.caption_batch(live.shown_captions)
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=(ids != 0).long(),
                    pixel_values=torch.from_numpy(clip_image.preprocess(vit_image.read_image(live.source), 64)[None]))
    logits = out.logits_per_image[0].numpy()
    (score,) = [t for t in texts if "scaled cosine" in t or "temperature e^s" in t]
    m = re.search(rf"s = {N}\. Here the score is {N}", score)
    assert m, score
    assert close(number(m.group(1)), float(model.logit_scale.detach())) and close(number(m.group(2)), logits[live.shown_selected])
    (matrix,) = [t for t in texts if "first column" in t]
    m = re.search(rf"first caption gets {N} and the second {N}; the scores behind them are {N} and {N}", matrix)
    assert m, matrix
    probs = out.logits_per_image[0].softmax(-1).numpy()
    shown = [number(g) for g in m.groups()]
    assert all(close(a, b) for a, b in zip(shown, [probs[0], probs[1], logits[0], logits[1]])), (shown, probs, logits)
