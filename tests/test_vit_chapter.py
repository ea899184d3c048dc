"""Chapter 15 (An image becomes tokens: the vision transformer) on the live vit-tiny: it plays headless to the end,
every step renders from the live trace of the picture, and the figures it prints (the class and its probability,
[CLS]'s attention, the position similarities, [CLS]'s first input) are transformers' ViTForImageClassification's
on the same picture and weights, computed here independently of llmviz's trace."""
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from scene_support import SHOWN_NUMBER as N  # noqa: E402
from scene_support import assert_chapter_is, live_scene, played_chapter_texts  # noqa: E402
from scene_support import shown_close as close  # noqa: E402
from scene_support import shown_number as number  # noqa: E402

SIZE = (320, 180)


@pytest.fixture(scope="module")
def vit():
    with live_scene("vit-tiny", SIZE) as opened:
        yield opened


def test_the_vit_chapter_is_chapter_15_on_vit_tiny():
    # the prose holds no digits but indices (patch 0, channel 0) and the class numbers 0 to 5
    assert_chapter_is(15, "vit-tiny", {"0", "1", "2", "3", "4", "5"}, steps=(7, 9))


def test_the_vit_chapter_plays_and_prints_transformers_figures(vit):
    from llmviz.models.sim import vit_image, vit_model

    scene, _ = vit
    texts = played_chapter_texts(scene, SIZE, 15)
    model = vit_model.load_vit()
    pixels = vit_image.preprocess(vit_image.read_image(scene.live.source), 64)
    with torch.inference_mode():
        out = model(pixel_values=torch.from_numpy(pixels[None]), output_attentions=True, output_hidden_states=True)
    probs = torch.softmax(out.logits[0], -1).numpy()
    m = re.search(rf"most likely class is number (\d), with probability {N}", texts[6])
    assert int(m.group(1)) == int(np.argmax(probs)) and close(number(m.group(2)), float(probs.max()))
    m = re.search(rf"\[CLS\] puts {N} of its attention on itself and at most {N}", texts[4])
    first = out.attentions[0][0, 0, 0].numpy()
    assert close(number(m.group(1)), float(first[0])) and close(number(m.group(2)), float(first[1:].max()))
    pos = model.vit.embeddings.position_embeddings[0].detach().double()
    cos = torch.nn.functional.cosine_similarity
    m = re.search(rf"right-hand neighbour: {N}; against the patch below it: {N}; .* far corner: {N}", texts[3])
    for shown, q in zip(m.groups(), (2, 17, 256)):
        assert close(number(shown), float(cos(pos[1], pos[q], dim=0)))
    m = re.search(rf"channel 0: {N} = \(?{N}\)? \+ \(?{N}\)?", texts[2])
    cls = float(model.vit.embeddings.cls_token.detach()[0, 0, 0])
    assert close(number(m.group(1)), float(out.hidden_states[0][0, 0, 0])) and close(number(m.group(2)), cls)
