"""Colour maps from value to colour, as numpy lookup tables shared by the shaders and the tests.

Each map is a COLORMAP_SIZE-entry RGB table built from a few control points. The GPU
uploads ``lut_rgba()`` as a float texture (one row per map) and interpolates between two
neighbouring entries exactly as ``apply`` does, so tests can predict pixel colours.
"""
from __future__ import annotations

import numpy as np

COLORMAP_SIZE = 256

COLORMAP_DIVERGING = 0  # blue - white - red: signed values, zero is white
COLORMAP_VIRIDIS = 1    # sequential, perceptually even: magnitudes, probabilities
COLORMAP_MAGMA = 2      # sequential, dark to light: attention weights
COLORMAP_GRAY = 3
# Not a map: each value is a packed 24-bit colour, r·65536 + g·256 + b (exact in float32), drawn as that
# colour (a picture's pixels in the data atlas: scenes/picture_quad.py). Its value range is ignored.
COLORMAP_RGB = 4

NAN_RGB = np.array([0.16, 0.16, 0.19])  # what a NaN cell shows: an empty cell (no value yet), darker than any map

# Control points (position, r, g, b), sampled from the well-known maps.
_CONTROL_POINTS = {
    COLORMAP_DIVERGING: [
        (0.00, 0.129, 0.400, 0.675), (0.25, 0.573, 0.773, 0.871), (0.50, 0.970, 0.970, 0.970),
        (0.75, 0.957, 0.647, 0.510), (1.00, 0.698, 0.094, 0.169)],
    COLORMAP_VIRIDIS: [
        (0.000, 0.267, 0.005, 0.329), (0.125, 0.283, 0.141, 0.458), (0.250, 0.230, 0.322, 0.546),
        (0.375, 0.173, 0.449, 0.558), (0.500, 0.128, 0.567, 0.551), (0.625, 0.158, 0.684, 0.502),
        (0.750, 0.369, 0.789, 0.383), (0.875, 0.678, 0.864, 0.190), (1.000, 0.993, 0.906, 0.144)],
    COLORMAP_MAGMA: [
        (0.00, 0.001, 0.000, 0.014), (0.25, 0.317, 0.072, 0.485), (0.50, 0.716, 0.215, 0.475),
        (0.75, 0.986, 0.536, 0.383), (1.00, 0.987, 0.991, 0.750)],
    COLORMAP_GRAY: [(0.0, 0.0, 0.0, 0.0), (1.0, 1.0, 1.0, 1.0)],
}

NAMES = {"diverging": COLORMAP_DIVERGING, "viridis": COLORMAP_VIRIDIS,
         "magma": COLORMAP_MAGMA, "gray": COLORMAP_GRAY}


def _build_luts() -> np.ndarray:
    t = np.linspace(0.0, 1.0, COLORMAP_SIZE)
    luts = np.zeros((len(_CONTROL_POINTS), COLORMAP_SIZE, 3), np.float32)
    for index, points in _CONTROL_POINTS.items():
        p = np.asarray(points, np.float64)
        for channel in range(3):
            luts[index, :, channel] = np.interp(t, p[:, 0], p[:, channel + 1])
    return luts


LUTS = _build_luts()  # float32 (maps, COLORMAP_SIZE, 3)


def lut_rgba() -> np.ndarray:
    """float32 (maps, COLORMAP_SIZE, 4): the texture the shaders sample, one row per map."""
    return np.concatenate([LUTS, np.ones(LUTS.shape[:2] + (1,), np.float32)], axis=-1)


def pack_rgb(rgb) -> np.ndarray:
    """float32 values of (..., 3) uint8 colours for COLORMAP_RGB cells."""
    c = np.asarray(rgb, np.uint32)
    return ((c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]).astype(np.float32)


def unpack_rgb(values) -> np.ndarray:
    """RGB in [0, 1] of COLORMAP_RGB values (the shader's decoding); NaN is NAN_RGB."""
    v = np.asarray(values, np.float64)
    packed = np.rint(np.nan_to_num(v)).astype(np.int64)
    rgb = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=-1) / 255.0
    return np.where(np.isnan(v)[..., None], NAN_RGB, rgb)


def apply(values, vmin: float, vmax: float, index: int) -> np.ndarray:
    """RGB in [0, 1] of ``values`` (any shape) under map ``index``; output shape values.shape + (3,)."""
    if int(index) == COLORMAP_RGB:
        return unpack_rgb(values)
    if not 0 <= int(index) < len(LUTS):
        raise ValueError(f"unknown colour map {index}; maps are {NAMES}")
    v = np.asarray(values, np.float64)
    span = float(vmax) - float(vmin)
    # Same arithmetic as colormap() in shaders/common.glsl.
    t = np.clip((v - vmin) / span, 0.0, 1.0) if span != 0.0 else np.full(v.shape, 0.5)
    x = np.nan_to_num(t) * (COLORMAP_SIZE - 1)
    i0 = np.minimum(np.floor(x).astype(np.int64), COLORMAP_SIZE - 2)
    f = (x - i0)[..., None]
    lut = LUTS[int(index)].astype(np.float64)
    rgb = lut[i0] * (1.0 - f) + lut[i0 + 1] * f
    return np.where(np.isnan(v)[..., None], NAN_RGB, rgb)
