"""Whisper's log-mel features in numpy, stage by stage (pad or trim, STFT frames, power, mel filterbank, log,
Whisper's normalisation), so each stage can be shown; equal to transformers' WhisperFeatureExtractor with the
preprocessor_config.json `llmviz export-hf whisper-tiny` writes (tests/test_whisper_features.py: 1e-4).

The extractor's steps, in its order: the waveform padded with zeros (or cut) to the chunk's samples; a
centred STFT (reflect-padded by n_fft/2, periodic Hann window of n_fft = 400 samples = 25 ms, a frame every
hop = 160 samples = 10 ms); |X|^2; the last frame dropped; Slaney-scale mel filters with Slaney area
normalisation (0 to 8 kHz); log10 of max(mel, 1e-10); everything below (its maximum - 8) raised to it; then
(x + 4) / 4. Numbers only: no torch here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16_000
N_FFT = 400                 # 25 ms windows
HOP = 160                   # every 10 ms
MEL_FLOOR = 1e-10
DYNAMIC_RANGE = 8.0         # log10 units kept below the loudest cell (80 dB)
MAX_FREQUENCY = 8000.0


def _hz_to_mel(hz):
    """Slaney's mel scale (librosa's default, transformers' mel_scale="slaney"): linear below 1 kHz, log above."""
    hz = np.asarray(hz, np.float64)
    mel = 3.0 * hz / 200.0
    log_region = hz >= 1000.0
    return np.where(log_region, 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) * (27.0 / np.log(6.4)), mel)


def _mel_to_hz(mel):
    mel = np.asarray(mel, np.float64)
    hz = 200.0 * mel / 3.0
    return np.where(mel >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (mel - 15.0)), hz)


def mel_edges(n_mels: int) -> np.ndarray:
    """(n_mels + 2,) Hz: each filter rises from edges[m] to its peak edges[m + 1] and falls to edges[m + 2]."""
    return _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(MAX_FREQUENCY), n_mels + 2))


def mel_filters(n_mels: int, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n_fft/2 + 1, n_mels) triangular filters over the FFT bins' frequencies, each scaled by 2 / its width
    in Hz (Slaney's normalisation: equal area)."""
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_edges(n_mels)
    widths = np.diff(edges)
    slopes = edges[None, :] - freqs[:, None]                     # (bins, n_mels + 2)
    down = -slopes[:, :-2] / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(down, up))
    return filters * (2.0 / (edges[2:] - edges[:-2]))[None, :]


def hann(n: int = N_FFT) -> np.ndarray:
    """The periodic Hann window (torch.hann_window, transformers' window_function(n, "hann"))."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


@dataclass(frozen=True)
class LogMelStages:
    """Every stage of one clip's features; the float32 `features` (n_mels, frames) are the model's input."""
    waveform: np.ndarray        # (chunk samples,) float32: padded with zeros or cut
    frames: np.ndarray          # (frames, n_fft) float64: windowed STFT frames (after the centre padding)
    power: np.ndarray           # (n_fft/2 + 1, frames) |STFT|^2
    mel: np.ndarray             # (n_mels, frames) filterbank output
    log: np.ndarray             # (n_mels, frames) log10(max(mel, 1e-10))
    floored: np.ndarray         # (n_mels, frames) raised to (max - 8)
    features: np.ndarray        # (n_mels, frames) float32 (floored + 4) / 4
    samples: int                # the clip's own samples before padding (at most the chunk's)

    @property
    def audio_frames(self) -> int:
        """Frames that cover the clip itself rather than the padding."""
        return min(self.features.shape[1], -(-self.samples // HOP))


def pad_or_trim(waveform: np.ndarray, n_samples: int) -> np.ndarray:
    """The extractor's padding: zeros after the clip, or the clip cut, to exactly `n_samples`."""
    wave = np.asarray(waveform, np.float32).reshape(-1)[:n_samples]
    return np.pad(wave, (0, n_samples - wave.size)) if wave.size < n_samples else wave


def frame_signal(wave: np.ndarray, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """(…, frames, n_fft) windowed frames of a centred STFT (reflect padding of n_fft/2 at each end), last
    frame dropped as the extractor drops it."""
    padded = np.pad(np.asarray(wave, np.float64), [(0, 0)] * (wave.ndim - 1) + [(n_fft // 2, n_fft // 2)],
                    mode="reflect")
    n_frames = 1 + (padded.shape[-1] - n_fft) // hop - 1
    view = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=-1)[..., ::hop, :][..., :n_frames, :]
    return view * hann(n_fft)


def log_mel_stages(waveform: np.ndarray, n_mels: int, chunk_samples: int) -> LogMelStages:
    """Every stage of the features of a 16 kHz mono clip."""
    samples = int(min(np.asarray(waveform).size, chunk_samples))
    wave = pad_or_trim(waveform, chunk_samples)
    frames = frame_signal(wave)
    power = np.abs(np.fft.rfft(frames, axis=-1)).T ** 2
    mel = mel_filters(n_mels).T @ power
    log = np.log10(np.maximum(mel, MEL_FLOOR))
    floored = np.maximum(log, log.max() - DYNAMIC_RANGE)
    features = ((floored + 4.0) / 4.0).astype(np.float32)
    return LogMelStages(wave, frames, power, mel, log, floored, features, samples)


def log_mel_batch(waves: np.ndarray, n_mels: int, chunk_samples: int):
    """(batch, n_mels, frames) float32 torch features of (batch, samples) clips for training: the stages of
    log_mel_stages in float32 through torch.stft (centred, reflect-padded, periodic Hann), ten times faster
    than numpy's float64 here; the tests hold both to WhisperFeatureExtractor."""
    import torch

    wave = torch.from_numpy(np.stack([pad_or_trim(w, chunk_samples) for w in waves]))
    spec = torch.stft(wave, N_FFT, HOP, window=torch.from_numpy(hann().astype(np.float32)), return_complex=True)
    spec = spec[..., :-1]
    # re^2 + im^2 rather than |X|^2: the complex abs (a square root, then squared) was 9 of the 22 ms
    power = spec.real.square() + spec.imag.square()                          # (batch, bins, frames)
    log = (torch.from_numpy(mel_filters(n_mels).T.astype(np.float32)) @ power).clamp_min(MEL_FLOOR).log10()
    top = log.amax(dim=(1, 2), keepdim=True)
    return (torch.maximum(log, top - DYNAMIC_RANGE) + 4.0) / 4.0


def processor_config(n_mels: int, chunk_seconds: int) -> dict:
    """preprocessor_config.json's fields for WhisperFeatureExtractor with our sizes."""
    return {"feature_extractor_type": "WhisperFeatureExtractor", "feature_size": n_mels,
            "sampling_rate": SAMPLE_RATE, "hop_length": HOP, "chunk_length": chunk_seconds, "n_fft": N_FFT,
            "n_samples": chunk_seconds * SAMPLE_RATE, "nb_max_frames": chunk_seconds * SAMPLE_RATE // HOP,
            "padding_side": "right", "padding_value": 0.0, "return_attention_mask": False, "dither": 0.0,
            "processor_class": "WhisperProcessor"}


def mel_band(n_mels: int, m: int) -> tuple[float, float, float]:
    """(low, peak, high) Hz of mel filter m: what a mel-bin cell hears."""
    edges = mel_edges(n_mels)
    return float(edges[m]), float(edges[m + 1]), float(edges[m + 2])
