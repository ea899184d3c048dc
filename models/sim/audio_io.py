"""A user's sound file made into 16 kHz mono samples: WAV read by scipy.io.wavfile once its header has been
checked (rate, channels, sample size and duration bounded before any sample is read), FLAC, OGG and MP3
decoded by the ffmpeg binary imageio-ffmpeg ships (its output capped at the longest clip allowed, resampled to
16 kHz by it); WAV resampled to 16 kHz with scipy.signal.resample_poly; every format's channels mixed to mono by
their mean. No hand-written codec.

Anything that is not usable audio (not a sound file, empty, a 0 Hz rate, longer than MAX_SECONDS, a damaged
header) is an AudioError: one line naming the file and why. Numbers only: no torch here.
"""
from __future__ import annotations

import os
import stat
import struct
import subprocess
from dataclasses import dataclass
from math import gcd

import numpy as np

from llmviz.models.sim.audio_features import SAMPLE_RATE

MAX_FILE_BYTES = 256 * 2**20      # a 10-minute 48 kHz stereo 24-bit WAV is 173 MB
MAX_SECONDS = 600.0               # the model hears 4 s; the spectrogram may show up to 10 minutes
MIN_RATE, MAX_RATE = 1000, 384_000
MAX_CHANNELS = 8
MAX_CHUNKS = 64                   # RIFF chunks walked before the samples must have been found
WAV_FORMATS = {1: "PCM", 3: "float", 0xFFFE: "extensible"}
DECODED = ("FLAC", "OGG", "MP3")
PROBE_BYTES = 64 * 1024           # of the WAV header ffmpeg writes for a decoded file's format


class AudioError(ValueError):
    """A sound file that cannot be used: one line naming the file and why."""


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray        # float32 mono at 16 kHz
    source_rate: int           # the file's own rate (decoded formats: as ffmpeg reports it; it resamples them)
    channels: int
    format: str                # "WAV", "FLAC", ...

    @property
    def seconds(self) -> float:
        return self.samples.size / SAMPLE_RATE


def resample(wave: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """`wave` at `rate` Hz resampled to `target` (scipy.signal.resample_poly's polyphase filter), float32."""
    if rate == target:
        return np.asarray(wave, np.float32)
    from scipy.signal import resample_poly

    g = gcd(int(rate), int(target))
    return resample_poly(np.asarray(wave, np.float64), target // g, int(rate) // g).astype(np.float32)


def sniff(head: bytes) -> str | None:
    """The container a file's first bytes say it is, or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "WAV"
    if head[:4] == b"fLaC":
        return "FLAC"
    if head[:4] == b"OggS":
        return "OGG"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "MP3"
    return None


def read_audio(path) -> Audio:
    """The sound at `path` as 16 kHz mono float32; AudioError for anything else."""
    name = os.fspath(path)
    try:
        info = os.stat(name)
    except OSError as err:
        raise AudioError(f"{name}: cannot read ({err.strerror or err})") from None
    if not stat.S_ISREG(info.st_mode):
        raise AudioError(f"{name}: not a regular file")
    if info.st_size == 0:
        raise AudioError(f"{name}: the file is empty")
    if info.st_size > MAX_FILE_BYTES:
        raise AudioError(f"{name}: {info.st_size:,} bytes is more than the {MAX_FILE_BYTES:,} allowed")
    with open(name, "rb") as f:
        head = f.read(12)
    kind = sniff(head)
    if kind is None:
        raise AudioError(f"{name}: not a WAV, FLAC, OGG or MP3 file")
    audio = _read_wav(name, info.st_size) if kind == "WAV" else _decode(name, kind)
    if audio.samples.size == 0:
        raise AudioError(f"{name}: the {kind} file holds no samples")
    if not np.all(np.isfinite(audio.samples)):
        raise AudioError(f"{name}: the {kind} file holds samples that are not numbers (NaN or infinite)")
    return audio


def wav_header(data: bytes, file_size: int, name: str) -> dict:
    """The fmt chunk's fields and the data chunk's place and size, each checked against the bounds and the
    file's real size, from at most the first MAX_CHUNKS chunks."""
    fmt, at = None, 12
    for _ in range(MAX_CHUNKS):
        if at + 8 > len(data):
            break
        chunk, size = data[at:at + 4], struct.unpack("<I", data[at + 4:at + 8])[0]
        if chunk == b"fmt ":
            if size < 16:
                raise AudioError(f"{name}: corrupt WAV header (fmt chunk of {size} bytes)")
            if at + 8 + 16 > len(data):
                raise AudioError(f"{name}: corrupt WAV header (the file ends inside its fmt chunk, after "
                                 f"{len(data)} bytes)")
            code, channels, rate, _, align, bits = struct.unpack("<HHIIHH", data[at + 8:at + 24])
            fmt = {"code": code, "channels": channels, "rate": rate, "bits": bits, "align": align}
        elif chunk == b"data":
            if fmt is None:
                raise AudioError(f"{name}: corrupt WAV header (samples before the fmt chunk)")
            _check_format(fmt, name)
            available = file_size - (at + 8)
            if size > available:
                raise AudioError(f"{name}: corrupt WAV header (it says {size:,} bytes of samples, the file has "
                                 f"{max(0, available):,})")
            frames = size // fmt["align"]
            seconds = frames / fmt["rate"]
            if seconds > MAX_SECONDS:
                raise AudioError(f"{name}: {_duration(seconds)} long is more than the {MAX_SECONDS / 60:.0f} "
                                 f"minutes allowed")
            return {**fmt, "frames": frames, "offset": at + 8}
        at += 8 + size + (size & 1)
    raise AudioError(f"{name}: corrupt WAV header (no " + ("fmt chunk" if fmt is None else "data chunk") + ")")


def _check_format(fmt: dict, name: str) -> None:
    if fmt["rate"] == 0:
        raise AudioError(f"{name}: the WAV header gives a sample rate of 0 Hz")
    if not MIN_RATE <= fmt["rate"] <= MAX_RATE:
        raise AudioError(f"{name}: a sample rate of {fmt['rate']:,} Hz is outside {MIN_RATE:,} to {MAX_RATE:,} Hz")
    if not 1 <= fmt["channels"] <= MAX_CHANNELS:
        raise AudioError(f"{name}: {fmt['channels']} channels; 1 to {MAX_CHANNELS} are read")
    if fmt["code"] not in WAV_FORMATS or fmt["bits"] not in (8, 16, 24, 32, 64):
        raise AudioError(f"{name}: WAV sample format {fmt['code']} with {fmt['bits']} bits is not read "
                         "(PCM 8/16/24/32-bit and float 32/64-bit are)")
    if fmt["align"] != fmt["channels"] * fmt["bits"] // 8:
        raise AudioError(f"{name}: corrupt WAV header (block align {fmt['align']} for {fmt['channels']} channels "
                         f"of {fmt['bits']} bits)")


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} hours" if seconds >= 3600 else f"{seconds / 60:.1f} minutes"


def _read_wav(name: str, file_size: int) -> Audio:
    import warnings

    from scipy.io import wavfile

    with open(name, "rb") as f:
        head = f.read(64 * 1024)
    header = wav_header(head, file_size, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")    # scipy's "reached EOF prematurely" is a damaged file here
            rate, data = wavfile.read(name)
    except (ValueError, OSError, EOFError, struct.error, wavfile.WavFileWarning) as err:
        raise AudioError(f"{name}: damaged WAV file ({str(err).splitlines()[0]})") from None
    wave = _as_float(np.asarray(data))
    mono = wave.mean(axis=1) if wave.ndim == 2 else wave
    return Audio(resample(mono, rate), int(rate), header["channels"], "WAV")


def _as_float(data: np.ndarray) -> np.ndarray:
    """Samples in [-1, 1] whatever their stored type (unsigned 8-bit is centred on 128)."""
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0
    if data.dtype.kind == "i":
        return (data.astype(np.float64) / float(2 ** (8 * data.dtype.itemsize - 1))).astype(np.float32)
    return data.astype(np.float32)


def _decode(name: str, kind: str) -> Audio:
    """FLAC, OGG or MP3 through ffmpeg: resampled by it to 16 kHz float32, each channel kept, then mixed to mono
    as a WAV's channels are (their mean: ffmpeg's own down-mix would give a stereo file √2 the WAV's level); at
    most MAX_SECONDS + 1 s decoded."""
    rate, channels = _decoded_format(name, kind)
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(f"{name}: {channels} channels; 1 to {MAX_CHANNELS} are read")
    cap = MAX_SECONDS + 1.0
    raw = _ffmpeg(name, kind, ["-t", str(cap), "-vn", "-ar", str(SAMPLE_RATE), "-f", "f32le", "pipe:1"], 120)
    frames = len(raw) // (4 * channels)
    wave = np.frombuffer(raw[:frames * 4 * channels], "<f4").reshape(frames, channels)
    if frames > MAX_SECONDS * SAMPLE_RATE:
        raise AudioError(f"{name}: longer than the {MAX_SECONDS / 60:.0f} minutes allowed")
    mono = wave.mean(axis=1, dtype=np.float64).astype(np.float32) if channels > 1 else wave[:, 0].copy()
    return Audio(mono, rate, channels, kind)


def _ffmpeg(name: str, kind: str, output: list[str], timeout: float) -> bytes:
    """ffmpeg's output for the file with these output options; AudioError with ffmpeg's last line if it fails."""
    import imageio_ffmpeg

    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-i", name, *output]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AudioError(f"{name}: decoding the {kind} file took more than {timeout:.0f} s") from None
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise AudioError(f"{name}: damaged {kind} file ({why[-1][:200] if why else 'ffmpeg failed'})")
    return done.stdout


def _decoded_format(name: str, kind: str) -> tuple[int, int]:
    """The file's own sample rate and channel count, as ffmpeg decodes its audio stream: read from the fmt
    chunk of a WAV header that ffmpeg writes for its first few milliseconds, unconverted (its text report
    names channel layouts, not counts)."""
    head, at = _ffmpeg(name, kind, ["-t", "0.02", "-vn", "-c:a", "pcm_s16le", "-f", "wav", "pipe:1"], 60)[:PROBE_BYTES], 12
    for _ in range(MAX_CHUNKS):
        if head[:4] != b"RIFF" or at + 8 > len(head):
            break
        chunk, size = head[at:at + 4], struct.unpack("<I", head[at + 4:at + 8])[0]
        if chunk == b"fmt " and size >= 16 and at + 24 <= len(head):
            channels, rate = struct.unpack("<HI", head[at + 10:at + 16])
            return int(rate), int(channels)
        at += 8 + size + (size & 1)
    raise AudioError(f"{name}: damaged {kind} file (ffmpeg finds no audio in it)")
