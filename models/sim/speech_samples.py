"""The clips shipped under assets/audio for the whisper-tiny scene and tests: digit sequences said by espeak-ng
in voices and at speeds whisper-tiny never trained on (speech_digits.EVAL_VOICES, HELD_OUT_SPEEDS), placed in
a 4-second clip with light noise (seed SAMPLE_SEED), 16 kHz mono 16-bit WAV, plus one FLAC of the first made
by ffmpeg. `python -m llmviz.models.sim.speech_samples` writes them again (needs espeak-ng).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from llmviz.models.sim import speech_digits

SAMPLE_SEED = 2026
# (file, digits, voice, words per minute, pitch): held-out voices and speeds
SAMPLES = (("digits-314159.wav", "314159", "en-us+m4", 140, 50),
           ("digits-2026.wav", "2026", "en-gb-x-gbclan+f4", 175, 60),
           ("digits-867530.wav", "867530", "en-us-nyc+klatt2", 210, 40),
           ("digit-7.wav", "7", "en+steph", 170, 55))
SNR_DB = 30.0
PEAK = 0.5


def sample_path(name: str):
    from importlib.resources import files

    return files("llmviz.assets").joinpath("audio", name)


def make_clip(digits: str, voice: str, speed: int, pitch: int, rng) -> np.ndarray:
    """The utterance a third of a second in, at PEAK, with white noise SNR_DB below the speech."""
    speech = speech_digits.synthesise(speech_digits.Utterance(digits, voice, speed, pitch, 1))
    clip = np.zeros(speech_digits.CLIP_SAMPLES)
    start = speech_digits.SAMPLE_RATE // 3
    speech = speech[:clip.size - start]
    clip[start:start + speech.size] = speech
    power = np.mean(speech.astype(np.float64) ** 2)
    clip += rng.standard_normal(clip.size) * np.sqrt(power / 10 ** (SNR_DB / 10))
    return clip * PEAK / np.max(np.abs(clip))


def write_samples(folder) -> list[Path]:
    import subprocess

    import imageio_ffmpeg

    from llmviz.common.atomic import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SAMPLE_SEED)
    written = []
    for name, digits, voice, speed, pitch in SAMPLES:
        speech_digits.write_wav(folder / name, make_clip(digits, voice, speed, pitch, rng))
        written.append(folder / name)
    flac = folder / SAMPLES[0][0].replace(".wav", ".flac")
    with atomic_path(flac) as tmp:
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-i", str(written[0]),
                        "-c:a", "flac", "-f", "flac", str(tmp)], check=True)
    return written + [flac]


if __name__ == "__main__":
    for path in write_samples(Path(__file__).resolve().parents[2] / "assets" / "audio"):
        print(path)
