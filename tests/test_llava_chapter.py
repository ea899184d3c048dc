"""Chapter 17 (images as a prefix) on the live llava-tiny: it plays headless to the end on the live trace, its
prose holds no number of its own, and the figures it prints are the trace's (the projector's row is the sequence's
first row, the attention the last position puts on the image tokens)."""
import re

import numpy as np
import pytest

pytest.importorskip("torch")

from scene_support import assert_chapter_is, live_scene, play_live_chapter  # noqa: E402

SIZE = (320, 180)


@pytest.fixture(scope="module")
def llava():
    with live_scene("llava-tiny", SIZE) as opened:
        yield opened


def test_the_llava_chapter_is_chapter_17_on_llava_tiny():
    assert_chapter_is(17, "llava-tiny", {"0", "1", "2", "256", "1.5"}, names_pattern=r"LLaVA-1\.5")


def test_the_llava_chapter_plays_headless_on_the_live_trace(llava):
    scene, _ = llava
    runner, chapter = play_live_chapter(scene, SIZE, 17)
    from llmviz.scenes.dataflow import format_number

    runner.go_to_step_end(4)
    text = runner.moment().text.text
    trace = scene.live.trace
    assert f"{format_number(trace['embed.out'][0, 0])} = {format_number(trace['projector.fc2'][0, 0])}" in text
    runner.go_to_step_end(5)
    shown = float(re.search(r"puts (\S+) of head 0", runner.moment().text.text).group(1).replace("−", "-"))
    assert np.isclose(shown, trace["blocks.0.attn.head.0.softmax"][-1, :256].sum(), rtol=1e-3)
