"""Chapter 18 (sound becomes tokens) on the live whisper-tiny: it plays headless to the end with every step rendered
from the live trace of the clip, its prose holds no number of its own, and the arithmetic it prints holds: the
log stage is log10 of the mel stage, the floor is the maximum less 8, the spectrogram cell is (floor + 4)/4, the
conv features plus the sinusoidal buffer make the encoder's input, the times are the DTW path's."""
import re

import numpy as np
import pytest

pytest.importorskip("torch")

from scene_support import assert_chapter_is, live_scene, play_live_chapter  # noqa: E402

SIZE = (320, 180)
# the prose's constants: rates, window and hop, bins, filters, the 8 (80 dB) floor, (x + 4)/4, indices, token ids
CONSTANTS = {"0", "000", "1", "2", "3", "4", "8", "10", "11", "12", "16", "20", "25", "40", "80", "160", "201",
             "400", "8000", "0.2"}


@pytest.fixture(scope="module")
def whisper():
    with live_scene("whisper-tiny", SIZE) as opened:
        yield opened


def test_chapter_declaration():
    assert_chapter_is(18, "whisper-tiny", CONSTANTS, steps=(8, 10))


def test_chapter_plays_and_its_numbers_hold(whisper):
    scene, _ = whisper
    play_live_chapter(scene, SIZE, 18)
    tr = scene.live.trace
    log, mel, floored = (np.asarray(tr[k], np.float64) for k in ("stage.log", "stage.mel", "stage.floored"))
    assert log[12, 20] == pytest.approx(np.log10(max(mel[12, 20], 1e-10)), abs=1e-5)
    assert floored[12, 20] == pytest.approx(max(log[12, 20], log.max() - 8), abs=1e-6)
    assert tr["audio.features"][20, 12] == pytest.approx((floored[12, 20] + 4) / 4, abs=1e-5)
    assert tr["audio.embed.out"][0, 0] == pytest.approx(tr["audio.embed.conv2_act"][0, 0] + scene.live.weights["audio.embed.pos"][0, 0],
                                                        abs=1e-5)
    rows, cols = np.asarray(tr["timing.path"])
    first = cols[np.flatnonzero(rows == 1)[0]] * 0.02
    assert tr["timing.ends"][0] == pytest.approx(first, abs=1e-5)
    assert re.fullmatch(r"\d+", scene.live.transcript)
