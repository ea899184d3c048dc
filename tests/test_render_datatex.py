"""The pure-numpy parts of rendering: shelf packing, colour maps, mesh tables, SDF fields."""
import numpy as np
import pytest

from llmviz.engine.render import colormaps
from llmviz.engine.render.backend import INSTANCE_FLOATS, INSTANCE_LAYOUT, GLYPH_FLOATS, GLYPH_LAYOUT
from llmviz.engine.render.datatex import AtlasFullError, ShelfPacker
from llmviz.engine.render.meshes import MESH_BOX, MESH_LOD_TRIANGLES, BOX_VERTICES
from llmviz.engine.render.text import signed_distance_field


def test_layouts_cover_their_rows_without_gaps():
    for layout, width in ((INSTANCE_LAYOUT, INSTANCE_FLOATS), (GLYPH_LAYOUT, GLYPH_FLOATS)):
        covered = sorted((o, o + w) for o, w in layout.values())
        assert covered[0][0] == 0 and covered[-1][1] == width
        assert all(a[1] == b[0] for a, b in zip(covered, covered[1:]))


def test_shelf_packer_regions_never_overlap_and_stay_inside():
    rng = np.random.default_rng(0)
    packer = ShelfPacker(256, 256)
    used = np.zeros((256, 256), int)
    placed = 0
    for _ in range(400):
        cols, rows = int(rng.integers(1, 40)), int(rng.integers(1, 24))
        try:
            x, y = packer.alloc(cols, rows)
        except AtlasFullError:
            continue
        used[y:y + rows, x:x + cols] += 1
        placed += 1
    assert placed > 50 and used.max() == 1
    assert packer.used_texels == used.sum()


def test_shelf_packer_refuses_what_cannot_fit():
    packer = ShelfPacker(64, 64)
    with pytest.raises(AtlasFullError):
        packer.alloc(65, 1)
    packer.alloc(64, 60)
    with pytest.raises(AtlasFullError):
        packer.alloc(8, 8)
    with pytest.raises(ValueError):
        packer.alloc(0, 3)


def test_colormap_ends_middle_and_clamping():
    div = colormaps.apply([-1.0, 0.0, 1.0, -5.0, 5.0], -1.0, 1.0, colormaps.COLORMAP_DIVERGING)
    assert div[0, 2] > div[0, 0] and div[2, 0] > div[2, 2]       # blue low, red high
    assert np.all(div[1] > 0.95)                                  # white at zero
    np.testing.assert_allclose(div[3], div[0]) and np.testing.assert_allclose(div[4], div[2])
    vir = colormaps.apply(np.linspace(0, 1, 50), 0, 1, colormaps.COLORMAP_VIRIDIS)
    luma = vir @ [0.299, 0.587, 0.114]
    assert np.all(np.diff(luma) > 0)                              # sequential: brighter with value
    assert colormaps.apply(np.zeros((2, 3)), 0, 0, 1).shape == (2, 3, 3)
    np.testing.assert_allclose(colormaps.apply([np.nan], 0, 1, 0)[0], colormaps.NAN_RGB)
    with pytest.raises(ValueError):
        colormaps.apply([0.0], 0, 1, 99)


def test_mesh_tables():
    assert MESH_LOD_TRIANGLES[MESH_BOX] == (12, 12, 2)
    assert BOX_VERTICES.shape == (36, 6)


def test_distance_field_of_a_disc_is_its_radius():
    yy, xx = np.mgrid[0:64, 0:64] + 0.5
    radius = 15.3
    # Anti-aliased coverage by 4x4 supersampling.
    sub = (np.arange(4) + 0.5) / 4 - 0.5
    cov = np.zeros((64, 64))
    for dy in sub:
        for dx in sub:
            cov += (np.hypot(xx + dx - 32, yy + dy - 32) <= radius)
    cov = np.rint(cov / 16 * 255).astype(np.uint8)
    field = signed_distance_field(cov, spread=6).astype(float)
    true = radius - np.hypot(xx - 32, yy - 32)
    estimate = (field - 127.5) / 127.5 * 6
    error = np.abs(estimate - true)
    outline = np.abs(true) < 1.5  # where the shader's edge is: a fraction of a pixel
    assert error[outline].max() < 0.35 and error[outline].mean() < 0.1
    assert error[np.abs(true) < 5].max() < 0.7
