"""Generated pictures of one shape for the small vision models (vit-tiny now, clip-tiny and llava-tiny later):
64 × 64 RGB images of a circle, square, triangle, star, cross or ring at a random position, size, rotation
and colour on a noisy, textured background, each with the words of its caption (shape, colour, size).

Seeded and self-contained (numpy draws, PIL rasterises; nothing is downloaded): `draw_batch(seed, n)` gives
the same pixels on every run. The class list is SHAPES, in the order of the classifiers' labels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IMAGE_SIZE = 64
SHAPES = ("circle", "square", "triangle", "star", "cross", "ring")
# Caption colours and the RGB each is drawn around (a little jitter per image keeps them from being one value).
COLOURS = {"red": (235, 50, 50), "green": (60, 210, 80), "blue": (70, 130, 255), "yellow": (245, 225, 50),
           "purple": (190, 90, 240), "orange": (250, 150, 40), "white": (245, 245, 245), "cyan": (60, 220, 230)}
# Caption size words and the shape's outer radius in pixels for each (on a 64-pixel image). The smallest shape
# is 24 pixels across, 6 of the models' 4-pixel patches, so that a star's points or a cross's arms cover whole
# patches (at 16 pixels, 4 patches, vit-tiny named only half of the small shapes); the largest is 54 across.
SIZES = {"small": (12.0, 16.0), "medium": (16.0, 21.0), "large": (21.0, 27.0)}
SUPERSAMPLE = 4           # shapes are rasterised 4× larger, then averaged down: smooth edges
COLOUR_JITTER = 25        # ± per channel around the named colour
# The shape is always brighter than its background, by at least this much luminance (0..255): a consistent
# polarity, so that what a patch's edge looks like does not flip from picture to picture.
MIN_CONTRAST = 60.0
BACKGROUND_LEVELS = (15.0, 120.0)   # the background's base colour, per channel: darker than the shapes'
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
NOISE_SIGMA = 12.0        # per-pixel Gaussian noise over the whole picture, in 0..255 units


@dataclass(frozen=True)
class ShapePicture:
    pixels: np.ndarray    # (64, 64, 3) uint8
    shape: str            # one of SHAPES
    colour: str           # one of COLOURS
    size: str             # one of SIZES

    @property
    def label(self) -> int:
        return SHAPES.index(self.shape)

    @property
    def caption(self) -> str:
        return f"a {self.size} {self.colour} {self.shape}"


def _polygon(n_points: int, radii: tuple[float, ...], angle: float) -> np.ndarray:
    """(n_points, 2) unit-centred vertices, radius cycling through `radii`, starting at `angle`."""
    theta = angle + 2 * np.pi * np.arange(n_points) / n_points
    r = np.resize(np.asarray(radii, np.float64), n_points)
    return np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)


def _cross_outline(arm: float) -> np.ndarray:
    """The 12 corners of a plus sign of half-width `arm` (outer radius 1), unrotated."""
    a = arm
    return np.array([(a, 1), (a, a), (1, a), (1, -a), (a, -a), (a, -1), (-a, -1), (-a, -a), (-1, -a),
                     (-1, a), (-a, a), (-a, 1)], np.float64)


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return points @ np.array([[c, s], [-s, c]])


# Each shape's outline around the origin with outer radius 1, given a rotation; the ring is its two circles.
OUTLINES = {
    "square": lambda angle: _polygon(4, (1.0,), angle + np.pi / 4),
    "triangle": lambda angle: _polygon(3, (1.0,), angle),
    "star": lambda angle: _polygon(10, (1.0, 0.45), angle),
    "cross": lambda angle: _rotate(_cross_outline(0.33), angle),
}
RING_INNER = 0.6          # the ring's hole, as a fraction of its outer radius


def shape_mask(shape: str, centre: tuple[float, float], radius: float, angle: float) -> np.ndarray:
    """(64, 64) float coverage in [0, 1] of one shape, antialiased by supersampling."""
    from PIL import Image, ImageDraw

    big = IMAGE_SIZE * SUPERSAMPLE
    image = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(image)
    cx, cy, r = centre[0] * SUPERSAMPLE, centre[1] * SUPERSAMPLE, radius * SUPERSAMPLE
    if shape in ("circle", "ring"):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        if shape == "ring":
            inner = r * RING_INNER
            draw.ellipse((cx - inner, cy - inner, cx + inner, cy + inner), fill=0)
    else:
        points = OUTLINES[shape](angle) * r + (cx, cy)
        draw.polygon([tuple(p) for p in points], fill=255)
    coverage = np.asarray(image, np.float32).reshape(IMAGE_SIZE, SUPERSAMPLE, IMAGE_SIZE, SUPERSAMPLE)
    return coverage.mean(axis=(1, 3)) / 255.0


def background(rng: np.random.Generator, texture: float = 1.0) -> np.ndarray:
    """(64, 64, 3) float texture: a base colour, smooth blotches (coarse noise upsampled) and stripes, these
    two scaled by `texture` (0: a plain colour; the draws are the same whatever it is)."""
    base = rng.uniform(*BACKGROUND_LEVELS, size=3)
    cells = int(rng.integers(2, 9))
    coarse = rng.normal(0, 1, size=(cells, cells, 3))
    # nearest-cell upsampling, then a box blur: soft blotches of a few sizes
    blotch = np.kron(coarse, np.ones((IMAGE_SIZE // cells + 1, IMAGE_SIZE // cells + 1, 1)))[:IMAGE_SIZE, :IMAGE_SIZE]
    kernel = max(1, IMAGE_SIZE // cells // 2)
    blotch = _box_blur(blotch, kernel)
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    direction, period = rng.uniform(0, np.pi), rng.uniform(4, 16)
    stripes = np.sin((xx * np.cos(direction) + yy * np.sin(direction)) * 2 * np.pi / period)
    amount = texture * np.array([rng.uniform(10, 35), rng.uniform(0, 20)])
    return (base + amount[0] * blotch + amount[1] * stripes[..., None]).astype(np.float32)


def _box_blur(image: np.ndarray, k: int) -> np.ndarray:
    """A k × k mean filter over the first two axes, edges clamped."""
    padded = np.pad(image, ((k, k), (k, k), (0, 0)), mode="edge")
    summed = padded.cumsum(0).cumsum(1)
    summed = np.pad(summed, ((1, 0), (1, 0), (0, 0)))
    h, w = image.shape[:2]
    lo, hi = k - k // 2, k - k // 2 + k
    total = (summed[hi:hi + h, hi:hi + w] - summed[lo:lo + h, hi:hi + w]
             - summed[hi:hi + h, lo:lo + w] + summed[lo:lo + h, lo:lo + w])
    return total / (k * k)


def draw_picture(rng: np.random.Generator, difficulty: float = 1.0) -> ShapePicture:
    """One picture, every choice drawn from `rng` in a fixed order (the same rng state, the same pixels).
    `difficulty` in [0, 1] scales the rotation's range, the background's texture and the noise (training's
    curriculum starts low); the pictures the models are measured on are all at 1."""
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    size = list(SIZES)[int(rng.integers(len(SIZES)))]
    radius = rng.uniform(*SIZES[size])
    margin = radius + 1.0
    centre = (rng.uniform(margin, IMAGE_SIZE - margin), rng.uniform(margin, IMAGE_SIZE - margin))
    angle = rng.uniform(0, 2 * np.pi) * difficulty   # the curriculum starts upright
    ground = background(rng, difficulty)
    mean = ground.reshape(-1, 3).mean(0)
    names = list(COLOURS)
    order = rng.permutation(len(names))
    # the first colour, in a random order, brighter than this background by MIN_CONTRAST (else the brightest)
    lift = [float(LUMA @ (np.asarray(COLOURS[names[i]], np.float32) - mean)) for i in order]
    pick = next((i for i, d in zip(order, lift) if d >= MIN_CONTRAST), order[int(np.argmax(lift))])
    colour = names[pick]
    rgb = np.asarray(COLOURS[colour], np.float32) + rng.uniform(-COLOUR_JITTER, COLOUR_JITTER, size=3)
    alpha = shape_mask(shape, centre, radius, angle)[..., None]
    picture = ground * (1 - alpha) + rgb * alpha + difficulty * rng.normal(0, NOISE_SIGMA, size=ground.shape)
    return ShapePicture(np.clip(np.rint(picture), 0, 255).astype(np.uint8), shape, colour, size)


def draw_batch(seed: int, n: int) -> list[ShapePicture]:
    """`n` pictures from a generator seeded with `seed`."""
    rng = np.random.default_rng(seed)
    return [draw_picture(rng) for _ in range(n)]


class PictureStream:
    """An endless seeded stream of batches for training: (pixels (n, 64, 64, 3) uint8, labels (n,) int64)."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int, difficulty: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        pictures = [draw_picture(self.rng, difficulty) for _ in range(n)]
        return (np.stack([p.pixels for p in pictures]), np.array([p.label for p in pictures], np.int64))
