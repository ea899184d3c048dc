"""The Play button's player (scenes/whisper_playback.py): the clip goes to the driver as the 16-bit WAV the
standard library reads back sample for sample; with no sound device (as on the machines here) or a driver
error, playing ends in one line and never raises."""
import io
import time
import wave

import numpy as np

from llmviz.scenes.whisper_playback import NO_DEVICE, ClipPlayer, wav_bytes


def test_the_wav_given_to_the_driver_holds_the_clip():
    samples = np.sin(np.linspace(0, 200, 16000)).astype(np.float32) * 0.5
    with wave.open(io.BytesIO(wav_bytes(samples, 16000)), "rb") as f:
        assert (f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getnframes()) == (1, 2, 16000, 16000)
        back = np.frombuffer(f.readframes(16000), "<i2") / 32767
    np.testing.assert_allclose(back, samples, atol=1 / 32767)


def test_playing_ends_in_one_line():
    player = ClipPlayer()
    player.play(np.zeros(0, np.float32))
    assert player.status == "nothing to play: the clip is empty"
    player.play(np.zeros(1600, np.float32))
    deadline = time.monotonic() + 60
    while player.status.startswith("starting") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "\n" not in player.status
    assert player.status == NO_DEVICE or player.status.startswith(("playing 0.10 s", "cannot play: "))
