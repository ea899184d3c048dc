"""Pictures of a clip for whisper-tiny: the log-mel spectrogram (viridis, low frequencies at the bottom), the
waveform, and what lies over them (the cross-attention of a decoder row drawn back onto the time axis, the
DTW timing path, each token's span), as numpy RGB arrays; and the labelled PNG of `llmviz spectrogram`
(axes in seconds and Hz, a colour bar). Numbers and PIL only: the panel uploads the arrays as textures.
"""
from __future__ import annotations

import io

import numpy as np

from llmviz.engine.render.colormaps import COLORMAP_VIRIDIS, apply
from llmviz.models.sim.audio_features import HOP, SAMPLE_RATE, mel_edges

HZ_TICKS = (0, 250, 500, 1000, 2000, 4000, 8000)
WIDTH = 356                              # the panel's pictures, in pixels
WAVE_H, SPEC_H, BAND_H = 56, 96, 20
WAVE_RGB = np.array([0.55, 0.85, 0.95])
PATH_RGB = np.array([1.0, 0.35, 0.2])
ATTN_RGB = np.array([1.0, 0.85, 0.3])


def spectrogram_rgb(features: np.ndarray, frames: int | None = None) -> np.ndarray:
    """(n_mels, frames, 3) float RGB of (n_mels, frames) features, mel bin 0 in the bottom row, coloured over
    the features' own range; `frames` keeps only the first ones (the clip, not its padding)."""
    f = np.asarray(features, np.float64)[:, :frames]
    return apply(f[::-1], float(f.min()), float(f.max()), COLORMAP_VIRIDIS)


def waveform_rgb(wave: np.ndarray, width: int, height: int, samples: int | None = None) -> np.ndarray:
    """(height, width, 3) the waveform's min-max envelope per column over its first `samples`."""
    w = np.asarray(wave, np.float64)[:samples]
    cols = np.array_split(w, width) if w.size >= width else [w[i:i + 1] for i in range(w.size)]
    peak = max(float(np.max(np.abs(w))) if w.size else 0.0, 1e-9)
    lo = np.array([c.min() if c.size else 0.0 for c in cols]) / peak
    hi = np.array([c.max() if c.size else 0.0 for c in cols]) / peak
    y = np.linspace(1.0, -1.0, height)[:, None]
    on = (y >= lo[None, :len(cols)] - 1.0 / height) & (y <= hi[None, :len(cols)] + 1.0 / height)
    image = np.full((height, width, 3), 0.09)
    image[:, :len(cols)][on] = WAVE_RGB
    image[height // 2] = np.maximum(image[height // 2], 0.25)
    return image


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(rgb) * 255), 0, 255).astype(np.uint8)


def clip_picture(features: np.ndarray, frames: int, wave: np.ndarray, width: int, wave_h: int,
                 spec_h: int) -> np.ndarray:
    """(wave_h + spec_h, width, 3) uint8: the waveform above the spectrogram of the clip's `frames` (features
    (frames, n_mels) as the trace holds them), each stretched to `width`; made on the worker, since it is
    the panel's largest picture (12 ms a clip on the frame thread at load 14)."""
    spec = spectrogram_rgb(np.asarray(features).T, frames)
    cols = np.minimum((np.arange(width) * spec.shape[1]) // width, spec.shape[1] - 1)
    rows = np.minimum((np.arange(spec_h) * spec.shape[0]) // spec_h, spec.shape[0] - 1)
    return to_uint8(np.concatenate([waveform_rgb(wave, width, wave_h), spec[rows][:, cols]]))


def attention_band(weights: np.ndarray, width: int, height: int) -> np.ndarray:
    """(height, width, 3) one decoder row's attention over the encoder frames (each 20 ms), stretched to the
    width, as a bar chart: where in the clip that token reads."""
    w = np.asarray(weights, np.float64)
    x = np.minimum((np.arange(width) * w.size) // max(width, 1), w.size - 1)
    v = w[x] / max(float(w.max()), 1e-12)
    rows = np.arange(height)[::-1, None] / max(height - 1, 1)
    return np.where((rows <= v[None, :])[..., None], ATTN_RGB, 0.08)


def _font(size: int):
    from importlib.resources import files

    from PIL import ImageFont

    return ImageFont.truetype(str(files("llmviz.assets").joinpath("fonts/DejaVuSans.ttf")), size)


def mel_row_of_hz(hz: float, n_mels: int) -> float:
    """The (fractional) mel bin whose peak frequency is `hz`: the y axis of a spectrogram in Hz."""
    peaks = mel_edges(n_mels)[1:-1]
    return float(np.interp(hz, peaks, np.arange(n_mels)))


def spectrogram_png(features: np.ndarray, title: str, frames: int | None = None, scale: int = 2) -> bytes:
    """The labelled picture: the spectrogram with time (s) below, frequency (Hz, on the mel scale) left,
    and a colour bar of the feature values right."""
    from PIL import Image, ImageDraw

    f = np.asarray(features, np.float64)[:, :frames]
    n_mels, n = f.shape
    body = np.clip(np.rint(spectrogram_rgb(f) * 255), 0, 255).astype(np.uint8)
    body = np.repeat(np.repeat(body, scale, 0), max(1, scale // 2) if n > 1000 else scale, 1)
    h, w = body.shape[:2]
    left, top, right, bottom = 64, 30, 90, 44
    image = Image.new("RGB", (left + w + right, top + h + bottom), (24, 24, 28))
    image.paste(Image.fromarray(body), (left, top))
    draw, font = ImageDraw.Draw(image), _font(11)
    ink, dim = (230, 230, 230), (160, 160, 160)
    draw.text((4, 8), title, fill=ink, font=font)
    seconds = n * HOP / SAMPLE_RATE
    step = next(s for s in (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60) if seconds / s <= 10)
    for k in range(int(seconds / step) + 1):
        x = left + k * step / seconds * w
        draw.line([(x, top + h), (x, top + h + 4)], fill=dim)
        draw.text((x, top + h + 6), f"{k * step:g}", fill=ink, font=font, anchor="mt")
    draw.text((left + w / 2, top + h + 24), "time (s)", fill=dim, font=font, anchor="mt")
    for hz in HZ_TICKS:
        y = top + h - (mel_row_of_hz(hz, n_mels) + 0.5) * h / n_mels
        draw.line([(left - 4, y), (left, y)], fill=dim)
        draw.text((left - 6, y), f"{hz:,}", fill=ink, font=font, anchor="rm")
    draw.text((4, top + h + 24), "Hz (mel)", fill=dim, font=font)
    bar = np.linspace(1, 0, h)[:, None] * np.ones((1, 14))
    lo, hi = float(f.min()), float(f.max())
    rgb = np.clip(np.rint(apply(lo + bar * (hi - lo), lo, hi, COLORMAP_VIRIDIS) * 255), 0, 255).astype(np.uint8)
    image.paste(Image.fromarray(rgb), (left + w + 14, top))
    for frac in (0.0, 0.5, 1.0):
        y = top + h - frac * h
        draw.text((left + w + 32, y), f"{lo + frac * (hi - lo):.2f}", fill=ink, font=font, anchor="lm")
    draw.text((left + w + 10, top - 14), "log-mel", fill=dim, font=font)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
