"""A user's picture made into a vision model's input: a PNG or JPEG read with bounds checked before any pixel
is decoded, then resized, scaled and normalised exactly as transformers' ViTImageProcessor does with the
preprocessor_config.json that `llmviz export-hf` writes (the tests hold the two to 1e-6).

ViTImageProcessor does not crop: a picture that is not square is squashed to the model's square, as the
processor would. Transparency is dropped and greyscale repeated (PIL's convert("RGB")), since the model
reads three channels. Numbers only (numpy and PIL): no torch here.
"""
from __future__ import annotations

import os
import stat

import numpy as np

MAX_FILE_BYTES = 64 * 2**20        # a photo straight from a camera is a few MB
MAX_PIXELS = 50_000_000            # refused before decoding: a 20000 × 20000 picture is 400 million
FORMATS = ("PNG", "JPEG")
BILINEAR = 2                       # PIL.Image.Resampling.BILINEAR, ViTImageProcessor's default resample
MEAN = STD = (0.5, 0.5, 0.5)       # ViT's normalisation (IMAGENET_STANDARD_MEAN / _STD in transformers)
RESCALE = 1 / 255


class ImageError(ValueError):
    """A picture that cannot be used: one line naming the file and why."""


def processor_config(size: int) -> dict:
    """preprocessor_config.json's fields for a square model input of `size` pixels."""
    return {"image_processor_type": "ViTImageProcessor", "do_resize": True, "size": {"height": size, "width": size},
            "resample": BILINEAR, "do_rescale": True, "rescale_factor": RESCALE, "do_normalize": True,
            "image_mean": list(MEAN), "image_std": list(STD)}


def read_image(path) -> np.ndarray:
    """The picture at `path` as (height, width, 3) uint8 RGB; ImageError for anything that is not a whole
    PNG or JPEG within MAX_FILE_BYTES and MAX_PIXELS."""
    name = os.fspath(path)
    try:
        info = os.stat(name)
    except OSError as err:
        raise ImageError(f"{name}: cannot read ({err.strerror or err})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ImageError(f"{name}: not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        raise ImageError(f"{name}: {info.st_size:,} bytes is more than the {MAX_FILE_BYTES:,} allowed")
    with open(name, "rb") as f:
        return decode_image(f.read(MAX_FILE_BYTES + 1), name)


def decode_image(data: bytes, name: str = "image") -> np.ndarray:
    """`data` (a PNG or JPEG file's bytes) as (height, width, 3) uint8 RGB, its size checked from the header
    before the pixels are decoded."""
    import io

    from PIL import Image, UnidentifiedImageError

    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"{name}: more than the {MAX_FILE_BYTES:,} bytes allowed")
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)  # reads the header only
    except Image.DecompressionBombError as err:   # PIL's own bound (twice its 89M) is past ours: say ours
        raise ImageError(f"{name}: more pixels than the {MAX_PIXELS:,} allowed ({str(err).split(',')[0]})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ImageError(f"{name}: not a PNG or JPEG image") from None
    width, height = image.size
    if width < 1 or height < 1 or width * height > MAX_PIXELS:
        raise ImageError(f"{name}: {width} x {height} pixels is more than the {MAX_PIXELS:,} allowed")
    try:
        image.load()
        rgb = image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        problem = "truncated" if "truncated" in str(err) else "damaged"
        raise ImageError(f"{name}: the {image.format} file is {problem} ({str(err).splitlines()[0]})") from None
    return np.asarray(rgb, dtype=np.uint8).copy()


def preprocess(rgb: np.ndarray, size: int) -> np.ndarray:
    """(3, size, size) float32 pixel values of a (height, width, 3) uint8 picture: ViTImageProcessor's resize
    (PIL, bilinear), rescale (in float64, then float32) and normalise (in float32), in its order."""
    from PIL import Image

    resized = np.asarray(Image.fromarray(rgb).resize((size, size), resample=BILINEAR, reducing_gap=None))
    scaled = (resized.astype(np.float64) * RESCALE).astype(np.float32)
    normalised = (scaled - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    return np.ascontiguousarray(normalised.transpose(2, 0, 1), dtype=np.float32)


def preprocess_batch(pixels: np.ndarray) -> np.ndarray:
    """(n, 3, s, s) float32 of already model-sized (n, s, s, 3) uint8 pictures (the generator's): resizing to
    the same size is the identity, so this is the rescale and normalise of `preprocess`, batched."""
    scaled = (pixels.astype(np.float64) * RESCALE).astype(np.float32)
    normalised = (scaled - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    return np.ascontiguousarray(normalised.transpose(0, 3, 1, 2))
