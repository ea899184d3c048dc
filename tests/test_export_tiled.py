"""Pictures drawn in tiles: a tiled render matches a single pass of the same size, any size up to the bound works
(beyond the GL limit too), the PNG streamed band by band decodes to exactly the bands, and bad sizes are one line."""
import io

import numpy as np
import pytest
from PIL import Image

from llmviz.engine.render.png_stream import write_png
from llmviz.engine.camera import Camera
from llmviz.engine.render.tiled import TileGrid, tile_matrix
from llmviz.scenes.cli.main import main


def rgb(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int16)


# The tile's projection is the single pass's one followed by an exact scale and offset in clip space, so
# every vertex lands on the same window coordinates up to float rounding; only a pixel whose centre lies
# on a triangle's edge can flip (measured: 8 of 230,400 pixels on gpt-2-small at 640x360). The bounds leave
# room for a few dozen such pixels, and are far below what a misplaced tile, a label laid out per tile or a
# missing UI would cost (each changes thousands of pixels).
MEAN_ABS_TOLERANCE = 0.05   # of 255, over all channels
DIFFERING_PIXELS_TOLERANCE = 0.001


@pytest.mark.parametrize("tile, ui", [(320, True), (240, False)])  # 2x2 tiles; 3x2 with partial tiles
def test_tiled_render_matches_one_pass(tmp_path, tile, ui):
    flags = ["render", "--scene", "gpt-2-small", "--size", "640x360"] + ([] if ui else ["--no-ui"])
    assert main(flags + ["--out", str(tmp_path / "one.png")]) == 0
    assert main(flags + ["--tile", str(tile), "--out", str(tmp_path / "tiled.png")]) == 0
    one, tiled = rgb(tmp_path / "one.png"), rgb(tmp_path / "tiled.png")
    assert one.shape == tiled.shape == (360, 640, 3)
    assert one.std() > 5  # a picture, not an empty frame
    diff = np.abs(one - tiled)
    assert diff.mean() < MEAN_ABS_TOLERANCE
    assert (diff.max(axis=2) > 0).mean() < DIFFERING_PIXELS_TOLERANCE


def test_wider_than_the_gl_limit(tmp_path, capsys):
    # llvmpipe draws at most 16384 px a side in one pass; 16400 takes 9 tiles.
    out = tmp_path / "wide.png"
    assert main(["render", "--scene", "stress:200", "--size", "16400x32", "--no-ui", "--out", str(out)]) == 0
    assert Image.open(out).size == (16400, 32)
    assert "tiles" in capsys.readouterr().out


def test_tile_grid_covers_the_picture_once():
    for size, side in [((640, 360), 320), ((640, 360), 240), ((7680, 4320), 2048), ((17, 16), 16)]:
        grid = TileGrid(size, side)
        covered = np.zeros(size[::-1], np.int32)
        for y, h in grid.bands:
            for x, w in grid.columns:
                covered[y:y + h, x:x + w] += 1
                assert x % side == 0 and y % side == 0  # origins on the grid: screen-keyed patterns line up
        assert (covered == 1).all()


def test_tile_matrix_moves_pixels_to_the_tile():
    camera = Camera(position=np.array([1.0, 2.0, 30.0]), viewport=(640, 360))
    points = np.random.default_rng(0).uniform(-8, 8, (50, 3))
    full = camera.project(points)[:, :2]
    x, y, w, h = 320, 120, 160, 240  # GL pixels, from the bottom left
    hom = np.c_[points, np.ones(len(points))] @ (tile_matrix((640, 360), (x, y, w, h))
                                                  @ camera.view_projection()).T
    ndc = hom[:, :2] / hom[:, 3:4]
    in_tile = np.c_[(ndc[:, 0] + 1) / 2 * w, (ndc[:, 1] + 1) / 2 * h]  # GL pixels of the tile
    expected = np.c_[full[:, 0] - x, (360 - full[:, 1]) - y]
    np.testing.assert_allclose(in_tile, expected, atol=1e-6)


def test_streamed_png_decodes_to_its_bands():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (37, 23, 3), np.uint8)
    buffer = io.BytesIO()
    write_png(buffer, (23, 37), [image[:10], image[10:30], image[30:]])
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")), image)
    with pytest.raises(ValueError):
        write_png(io.BytesIO(), (23, 37), [image[:10]])  # rows missing


@pytest.mark.parametrize("extra, needle", [
    (["--size", "16384x16384", "--out", "big.jpg"], "--size 16384x16384"),  # whole in memory: above the bound
    (["--size", "40000x100", "--out", "x.png"], "--size"),
    (["--tile", "99999", "--out", "x.png"], "--tile"),
    (["--tile", "30000", "--out", "x.png"], "--tile 30000"),  # beyond this OpenGL's limit
    (["--tile", "ten", "--out", "x.png"], "--tile"),
])
def test_bad_sizes_are_one_line(tmp_path, capsys, monkeypatch, extra, needle):
    monkeypatch.chdir(tmp_path)
    assert main(["render", "--scene", "stress:10"] + extra) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err
