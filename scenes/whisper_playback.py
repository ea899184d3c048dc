"""Playing the clip whisper-tiny heard, where the machine has a sound device: through pyglet's audio driver
(the window's own library; OpenAL, PulseAudio, XAudio2 or DirectSound, whichever it finds), on a thread of
its own so the frame never waits for the driver to load. Without a device (pyglet falls back to its silent
driver) or on any driver error, playing says so in one line and nothing else happens.
"""
from __future__ import annotations

import io
import threading
import wave

import numpy as np

NO_DEVICE = "no sound device here: nothing played"


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """A 16-bit mono PCM WAV of samples in [-1, 1], in memory."""
    pcm = np.clip(np.rint(np.asarray(samples, np.float64) * 32767), -32768, 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.tobytes())
    return out.getvalue()


class ClipPlayer:
    """`play(samples)` returns at once; `status` is the line to show ("" before the first play)."""

    def __init__(self):
        self.status = ""
        self._player = None          # pyglet keeps playing only while its player is referenced
        self._lock = threading.Lock()

    def play(self, samples: np.ndarray, rate: int = 16_000) -> None:
        samples = np.asarray(samples, np.float32)
        if samples.size == 0:
            self.status = "nothing to play: the clip is empty"
            return
        self.status = "starting the sound device..."
        threading.Thread(target=self._play, args=(samples, rate), daemon=True, name="llmviz-play").start()

    def _play(self, samples: np.ndarray, rate: int) -> None:
        try:
            import sys

            import pyglet

            if "pyglet.gl" not in sys.modules:   # no window yet (headless): media must not make a GL one
                pyglet.options["shadow_window"] = False
            import pyglet.media

            driver = pyglet.media.get_audio_driver()
            if driver is None or type(driver).__name__ == "SilentDriver":
                self.status = NO_DEVICE
                return
            source = pyglet.media.load("clip.wav", file=io.BytesIO(wav_bytes(samples, rate)), streaming=False)
            with self._lock:
                if self._player is not None:
                    self._player.pause()
                self._player = source.play()
            self.status = f"playing {samples.size / rate:.2f} s through {type(driver).__name__}"
        except Exception as exc:    # any driver's failure is one line on the panel, never a crash
            self.status = f"cannot play: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
