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


# A picture larger than its view (--pixel-ratio, auto beyond 1280x720) is that view scaled up: labels, LOD,
# line widths, hatching, legend and UI laid out for the view and drawn R times larger. Scaled back down
# (a box filter, R x R pixels to one) it matches the view's own render within these bounds. What still
# differs is sampling, not content: the larger picture averages data cells and glyph edges that the
# smaller one samples once per pixel (measured on nano-gpt's first block, UI included: mean 3.4 of 255,
# 3.2% of pixels beyond 32; 2560x1440 at ratio 1, the picture laid out for its own size, gives 23.3 and 16.8%).
SCALED_MEAN_ABS_TOLERANCE = 6.0  # of 255, over all channels
SCALED_PIXEL_BOUND = 32          # of 255, in any channel ...
SCALED_PIXELS_BEYOND = 0.05      # ... exceeded by at most this share of the pixels


def box_down(pixels: np.ndarray, ratio: int) -> np.ndarray:
    h, w = pixels.shape[0] // ratio, pixels.shape[1] // ratio
    return pixels[:h * ratio, :w * ratio].reshape(h, ratio, w, ratio, 3).astype(np.float64).mean(axis=(1, 3))


def scaled_difference(small: np.ndarray, large: np.ndarray, ratio: int) -> tuple[float, float]:
    diff = np.abs(small.astype(np.float64) - box_down(large, ratio))
    return float(diff.mean()), float((diff.max(axis=2) > SCALED_PIXEL_BOUND).mean())


VIEW = ["render", "--scene", "nano-gpt", "--camera", "preset:first block"]


@pytest.fixture(scope="module")
def view_720(tmp_path_factory):
    out = tmp_path_factory.mktemp("view") / "720.png"
    assert main(VIEW + ["--out", str(out)]) == 0
    return rgb(out)


@pytest.mark.parametrize("extra", [[], ["--tile", "1024"]])  # one pass; 3 x 2 tiles (partial ones included)
def test_a_larger_picture_is_its_view_scaled(tmp_path, view_720, extra, capsys):
    out = tmp_path / "1440.png"
    assert main(VIEW + ["--size", "2560x1440", *extra, "--out", str(out)]) == 0
    assert "the 1280x720 view at pixel ratio 2" in capsys.readouterr().out
    large = rgb(out)
    assert large.shape == (1440, 2560, 3)
    mean, beyond = scaled_difference(view_720, large, 2)
    assert mean < SCALED_MEAN_ABS_TOLERANCE and beyond < SCALED_PIXELS_BEYOND, (mean, beyond)


def test_a_picture_laid_out_for_its_own_size_is_not_the_view(tmp_path, view_720):
    # The bounds above tell the two apart: at ratio 1 the labels, panels and LOD are those of a 2560x1440 window.
    out = tmp_path / "own.png"
    assert main(VIEW + ["--size", "2560x1440", "--pixel-ratio", "1", "--out", str(out)]) == 0
    mean, beyond = scaled_difference(view_720, rgb(out), 2)
    assert mean > 2 * SCALED_MEAN_ABS_TOLERANCE and beyond > 2 * SCALED_PIXELS_BEYOND, (mean, beyond)


def test_beyond_the_gl_limit_the_picture_is_still_its_view_scaled(tmp_path):
    # 16,400 px wide (9 tiles on llvmpipe) at ratio 8: the 2050x16 view, with its boxes' outlines 8 px wide.
    flags = ["render", "--scene", "stress:200", "--no-ui", "--camera", "path:0.3"]
    assert main(flags + ["--size", "2050x16", "--out", str(tmp_path / "view.png")]) == 0
    assert main(flags + ["--size", "16400x128", "--pixel-ratio", "8", "--out", str(tmp_path / "wide.png")]) == 0
    view, wide = rgb(tmp_path / "view.png"), rgb(tmp_path / "wide.png")
    assert wide.shape == (128, 16400, 3) and view.std() > 5
    mean, beyond = scaled_difference(view, wide, 8)
    assert mean < SCALED_MEAN_ABS_TOLERANCE and beyond < SCALED_PIXELS_BEYOND, (mean, beyond)


@pytest.mark.parametrize("value, needle", [("0", "--pixel-ratio '0'"), ("nan", "--pixel-ratio"),
                                           ("1e400", "--pixel-ratio"), ("sixty", "--pixel-ratio 'sixty'"),
                                           ("64", "leaves a view under 16 px")])
def test_bad_pixel_ratios_are_one_line(tmp_path, capsys, value, needle):
    assert main(["render", "--scene", "stress:10", "--size", "640x360", "--pixel-ratio", value,
                 "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err, err
    assert not (tmp_path / "x.png").exists()
