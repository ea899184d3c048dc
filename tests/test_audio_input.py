"""Sound files in: WAV read by scipy after a bounded header check, FLAC through ffmpeg, resampling with
scipy's polyphase filter, and every kind of bad file refused in one line (the library and `llmviz
transcribe` / `llmviz spectrogram`), before any sample is allocated."""
from __future__ import annotations

import struct
import subprocess
import sys
import wave

import numpy as np
import pytest

from llmviz.models.sim import audio_io
from llmviz.models.sim.speech_samples import sample_path


def _wav(path, samples, rate=16000, channels=1, width=2):
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(width)
        f.setframerate(rate)
        f.writeframes(np.asarray(samples).astype({1: "u1", 2: "<i2"}[width]).tobytes())
    return path


def _header(rate=16000, channels=1, bits=16, data_bytes=32000, align=None, code=1) -> bytes:
    align = channels * bits // 8 if align is None else align
    fmt = struct.pack("<HHIIHH", code, channels, rate, rate * align, align, bits)
    return b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + \
        b"data" + struct.pack("<I", data_bytes)


def test_shipped_wav_and_flac_read_the_same_samples():
    wav = audio_io.read_audio(str(sample_path("digits-314159.wav")))
    flac = audio_io.read_audio(str(sample_path("digits-314159.flac")))
    assert (wav.format, flac.format) == ("WAV", "FLAC")
    assert wav.samples.shape == flac.samples.shape == (64000,)
    np.testing.assert_allclose(flac.samples, wav.samples, atol=1e-6)   # FLAC is lossless, 16-bit either way


def test_resampling_keeps_a_tone(tmp_path):
    """A 44.1 kHz stereo 440 Hz tone comes back at 16 kHz mono with its frequency and amplitude."""
    rate, n = 44100, 44100
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)
    pcm = np.rint(np.repeat(tone[:, None], 2, 1) * 32767).astype("<i2")
    audio = audio_io.read_audio(_wav(tmp_path / "t.wav", pcm.ravel(), rate, channels=2))
    assert (audio.source_rate, audio.channels, audio.samples.size) == (44100, 2, 16000)
    spectrum = np.abs(np.fft.rfft(audio.samples[1000:-1000]))
    peak_hz = np.argmax(spectrum) * 16000 / (audio.samples.size - 2000)
    assert abs(peak_hz - 440) < 2
    assert abs(np.max(np.abs(audio.samples[1000:-1000])) - 0.5) < 0.01


def test_unsigned_8_bit_is_centred(tmp_path):
    audio = audio_io.read_audio(_wav(tmp_path / "u8.wav", np.full(1600, 192), width=1))
    np.testing.assert_allclose(audio.samples[100:-100], 0.5, atol=1e-3)


BAD = {
    "not audio": (lambda p: p.write_bytes(b"hello, this is text and no sound" * 10), "not a WAV, FLAC, OGG or MP3"),
    "empty": (lambda p: p.write_bytes(b""), "empty"),
    "zero hertz": (lambda p: p.write_bytes(_header(rate=0) + bytes(32000)), "0 Hz"),
    "corrupt header": (lambda p: p.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(40)), "corrupt WAV header"),
    "says more samples than it has": (lambda p: p.write_bytes(_header(data_bytes=10_000_000) + bytes(100)),
                                      "it says 10,000,000 bytes of samples"),
    "cut inside its header": (lambda p: p.write_bytes(_header()[:30]), "the file ends inside its fmt chunk, after 30 bytes"),
    "no samples": (lambda p: p.write_bytes(_header(data_bytes=0)), "holds no samples"),
    "bad block align": (lambda p: p.write_bytes(_header(align=3) + bytes(32000)), "block align"),
    "damaged flac": (lambda p: p.write_bytes(b"fLaC" + bytes(range(256)) * 4), "damaged FLAC"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_are_one_line(tmp_path, case):
    make, words = BAD[case]
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(audio_io.AudioError) as err:
        audio_io.read_audio(path)
    message = str(err.value)
    assert words in message and str(path) in message and "\n" not in message


def test_ten_hours_is_refused_from_the_header(tmp_path):
    """A whole 10-hour file at 1 kHz, 8-bit (36 MB): refused by its header's duration, before reading samples."""
    path = tmp_path / "long.wav"
    data = 10 * 3600 * 1000
    with open(path, "wb") as f:
        f.write(_header(rate=1000, bits=8, data_bytes=data))
        f.truncate(44 + data)    # sparse: no 36 MB written
    with pytest.raises(audio_io.AudioError, match="10.0 hours long is more than the 10 minutes allowed"):
        audio_io.read_audio(path)


def test_a_folder_and_a_missing_file(tmp_path):
    with pytest.raises(audio_io.AudioError, match="not a regular file"):
        audio_io.read_audio(tmp_path)
    with pytest.raises(audio_io.AudioError, match="cannot read"):
        audio_io.read_audio(tmp_path / "missing.wav")


@pytest.mark.parametrize("command", ["transcribe", "spectrogram"])
def test_cli_bad_audio_is_one_line_and_exit_2(tmp_path, command):
    path = tmp_path / "noise.txt"
    path.write_bytes(b"not a sound at all")
    extra = ["--out", str(tmp_path / "s.png")] if command == "spectrogram" else []
    done = subprocess.run([sys.executable, "-m", "llmviz.scenes.cli.main", command, "--audio", str(path), *extra],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a WAV, FLAC, OGG or MP3 file" in lines[0] and "Traceback" not in done.stderr


def test_a_long_ogg_is_refused_after_the_cap(tmp_path):
    """Compressed files say no trustworthy length up front: ffmpeg decodes at most MAX_SECONDS + 1 s, and more
    than MAX_SECONDS is refused in one line (checked by hand on a 10-hour OGG too: the same line)."""
    import imageio_ffmpeg

    path = tmp_path / "long.ogg"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                    "anullsrc=r=8000:cl=mono", "-t", str(audio_io.MAX_SECONDS + 30), "-c:a", "libvorbis", "-y", str(path)],
                   check=True, timeout=120)
    with pytest.raises(audio_io.AudioError, match="longer than the 10 minutes allowed"):
        audio_io.read_audio(path)


@pytest.mark.parametrize("suffix, codec, rate, channels", [
    ("flac", "flac", 48000, 2), ("ogg", "libvorbis", 44100, 2), ("mp3", "libmp3lame", 44100, 1)])
def test_a_decoded_file_reports_its_own_rate_and_channels(tmp_path, suffix, codec, rate, channels):
    """FLAC, OGG and MP3 come to 16 kHz mono through ffmpeg, and say the rate and channel count the file holds
    (the sine's WAV, written here at that rate and channel count, is the reference), not the 16 kHz mono made of
    them; their samples match the WAV's after its own resampling."""
    import imageio_ffmpeg

    t = np.arange(2 * rate) / rate
    tone = np.round(12000 * np.sin(2 * np.pi * 440.0 * t))
    source = _wav(tmp_path / "tone.wav", np.repeat(tone[:, None], channels, axis=1).ravel(), rate, channels)
    path = tmp_path / f"tone.{suffix}"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(source), "-c:a", codec,
                    "-y", str(path)], check=True, timeout=120)
    wav, decoded = audio_io.read_audio(source), audio_io.read_audio(path)
    assert (wav.source_rate, wav.channels) == (rate, channels)
    assert (decoded.format, decoded.source_rate, decoded.channels) == (suffix.upper(), rate, channels)
    n = min(wav.samples.size, decoded.samples.size)
    assert abs(wav.samples.size - decoded.samples.size) < 0.06 * audio_io.SAMPLE_RATE   # codec padding at most
    middle = slice(n // 4, 3 * n // 4)   # away from the codecs' edges; lossy codecs shift by a frame's delay
    amplitude = lambda x: float(np.sqrt(np.mean(x[middle] ** 2)))
    # Within 8%: LAME's MP3 of this tone decodes 5% quieter even at its own rate (ffmpeg alone, measured); a
    # stereo file mixed by ffmpeg's down-mix instead of the channels' mean would be 41% louder.
    assert amplitude(decoded.samples) == pytest.approx(amplitude(wav.samples), rel=0.08)
