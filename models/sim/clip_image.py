"""A user's picture made into clip-tiny's input exactly as transformers' CLIPImageProcessor prepares it with
the preprocessor_config.json `llmviz export-hf` writes (the tests hold the two to 1e-6): the shortest side
resized to the model's size (PIL, bicubic), the centre cut square, scaled to [0, 1], normalised with CLIP's
mean and standard deviation. Unlike ViT's processor, CLIP's keeps the aspect ratio and crops.

Reading the file (bounded before any pixel is decoded) is vit_image's. Numbers only: no torch here.
"""
from __future__ import annotations

import numpy as np

from llmviz.models.sim.vit_image import RESCALE, ImageError, decode_image, read_image  # noqa: F401  (re-exported)

BICUBIC = 3                                            # PIL.Image.Resampling.BICUBIC, CLIP's resample
MEAN = (0.48145466, 0.4578275, 0.40821073)             # OPENAI_CLIP_MEAN in transformers
STD = (0.26862954, 0.26130258, 0.27577711)             # OPENAI_CLIP_STD


def processor_config(size: int) -> dict:
    """preprocessor_config.json's fields for a square model input of `size` pixels."""
    return {"image_processor_type": "CLIPImageProcessor", "do_resize": True, "size": {"shortest_edge": size},
            "resample": BICUBIC, "do_center_crop": True, "crop_size": {"height": size, "width": size},
            "do_rescale": True, "rescale_factor": RESCALE, "do_normalize": True, "image_mean": list(MEAN),
            "image_std": list(STD), "do_convert_rgb": True}


def resized_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 3) uint8: the shortest side resized to `size` (the other int(size · long / short), as
    transformers computes it), then the centre crop (top and left rounded down)."""
    from PIL import Image

    h, w = rgb.shape[:2]
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    new_w, new_h = (size, new_long) if w <= h else (new_long, size)
    resized = np.asarray(Image.fromarray(rgb).resize((new_w, new_h), resample=BICUBIC, reducing_gap=None))
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return resized[top:top + size, left:left + size]


def normalised(pixels: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 → (..., 3, H, W) float32: the rescale (in float64, then float32) and the
    normalise (in float32), in the processor's order."""
    scaled = (pixels.astype(np.float64) * RESCALE).astype(np.float32)
    out = (scaled - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    return np.ascontiguousarray(np.moveaxis(out, -1, -3), dtype=np.float32)


def preprocess(rgb: np.ndarray, size: int) -> np.ndarray:
    """(3, size, size) float32 pixel values of a (height, width, 3) uint8 picture."""
    return normalised(resized_crop(rgb, size))


def preprocess_batch(pixels: np.ndarray) -> np.ndarray:
    """(n, 3, s, s) float32 of already model-sized (n, s, s, 3) uint8 pictures (the generator's): resizing
    and cropping to the same size are the identity, so this is the rescale and normalise, batched."""
    return normalised(pixels)


def seen(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1]: (3, H, W) pixel values shown as the model reads them (un-normalised)."""
    rgb = pixels.transpose(1, 2, 0) * np.asarray(STD, np.float32) + np.asarray(MEAN, np.float32)
    return np.asarray(np.clip(rgb, 0.0, 1.0), np.float32)
