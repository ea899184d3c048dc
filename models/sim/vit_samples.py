"""The pictures shipped under assets/images for the vision scenes and tests: one generated picture of each of a
few shapes (shapes.py, seed SAMPLE_SEED) and scikit-image's astronaut photograph (public domain, NASA),
written through llmviz.common.atomic. `python -m llmviz.models.sim.vit_samples` writes them again.
"""
from __future__ import annotations

import io
from pathlib import Path

from llmviz.models.sim import shapes

SAMPLE_SEED = 2026
SAMPLE_SHAPES = ("star", "ring", "triangle", "cross")
ASTRONAUT = "astronaut.jpg"


def sample_pictures() -> dict[str, shapes.ShapePicture]:
    """The first picture of each SAMPLE_SHAPES shape the seeded stream draws, by file name."""
    stream, found = shapes.PictureStream(SAMPLE_SEED), {}
    while len(found) < len(SAMPLE_SHAPES):
        picture = shapes.draw_picture(stream.rng)
        if picture.shape in SAMPLE_SHAPES and f"{picture.shape}.png" not in found:
            found[f"{picture.shape}.png"] = picture
    return found


def _encoded(rgb, format_: str) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format=format_, **({"quality": 90} if format_ == "JPEG" else {}))
    return out.getvalue()


def write_samples(folder) -> list[Path]:
    """Writes the samples into `folder`; needs scikit-image for the astronaut (skimage.data ships it)."""
    from skimage import data

    from llmviz.common.atomic import write_atomic

    folder = Path(folder)
    written = []
    for name, picture in sample_pictures().items():
        write_atomic(folder / name, _encoded(picture.pixels, "PNG"))
        written.append(folder / name)
    write_atomic(folder / ASTRONAUT, _encoded(data.astronaut(), "JPEG"))
    return written + [folder / ASTRONAUT]


if __name__ == "__main__":
    for path in write_samples(Path(__file__).resolve().parents[2] / "assets" / "images"):
        print(path)
