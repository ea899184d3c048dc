"""The wgpu backend draws what the moderngl one draws: the same scenes within a stated tolerance, labels within
1 px, data-texture cells in the same colours (and the colour maps' own). Skipped where wgpu finds no adapter
(Mesa's lavapipe comes with mesa-vulkan-drivers) or there is no headless OpenGL to compare with.

Tolerance of a whole frame, in 8-bit levels per channel: the mean absolute difference is at most MEAN_LEVELS;
at most FAR_SHARE of the pixels are more than NEAR_LEVELS apart; and each of those lies on an edge of the moderngl
frame (within 1 px of a change of more than NEAR_LEVELS). That is for edges that fall exactly on pixel centres: GL
breaks coverage ties in a framebuffer whose y runs up, WebGPU in one whose y runs down, so such an edge may land
one pixel over (seen at 320x200 on nano-gpt: a 1 px gap between two stacked boxes closed, 59 pixels, 0.09%).
"""
import numpy as np
import pytest

from llmviz.engine.camera import Camera
from llmviz.engine.render import (GLYPH_FLOATS, GLYPH_SLICES, LOD_DETAIL, MATERIAL_OPAQUE, MESH_BOX, Batch,
                                  colormaps, empty_instances)
from gl_support import headless_or_skip

SIZE = (320, 200)
BACKGROUND = (0.06, 0.07, 0.08, 1.0)
MEAN_LEVELS = 0.25
NEAR_LEVELS = 8
FAR_SHARE = 2e-3


def wgpu_or_skip(size, **kwargs):
    from llmviz.engine import gpu_adapters

    survey = gpu_adapters.survey_adapters()
    if gpu_adapters.best_adapter(survey) is None:
        pytest.skip(f"no wgpu adapter: {survey.problem or 'wgpu found none'}")
    from llmviz.engine.render.wgpu_backend import WgpuRenderer

    r = WgpuRenderer(size, **kwargs)
    yield r
    r.release()


@pytest.fixture(scope="module")
def gl():
    yield from headless_or_skip(SIZE)


@pytest.fixture(scope="module")
def wgpu(gl):
    yield from wgpu_or_skip(SIZE)


def front_camera(z=6.0):
    return Camera(position=np.array([0.0, 0.0, z]), viewport=SIZE)


def draw(renderer, camera, batches=(), glyphs=None):
    renderer.reset_data()
    renderer.begin_frame(BACKGROUND)
    renderer.draw_batches(camera, list(batches))
    if glyphs is not None:
        renderer.draw_labels(camera, glyphs)
    renderer.end_frame()
    renderer.finish()
    return renderer.read_pixels()[:, :, :3].astype(int)


def assert_frames_agree(a, b):
    diff = np.abs(a - b)
    assert a.shape == b.shape
    assert diff.mean() <= MEAN_LEVELS, diff.mean()
    assert (diff.max(axis=2) > NEAR_LEVELS).mean() <= FAR_SHARE, (diff.max(axis=2) > NEAR_LEVELS).mean()
    # Every pixel more than NEAR_LEVELS apart lies on an edge of the moderngl frame (a pixel that differs from one
    # of its 3 x 3 neighbours by more than NEAR_LEVELS there): an edge moved by a tie, never a wrong surface.
    h, w = a.shape[:2]
    padded = np.pad(a, ((1, 1), (1, 1), (0, 0)), mode="edge")
    contrast = np.max([np.abs(a - padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]).max(axis=2)
                       for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)
    off_edge = (diff.max(axis=2) > NEAR_LEVELS) & (contrast <= NEAR_LEVELS)
    assert not off_edge.any(), np.argwhere(off_edge)[:5]


def block(renderer, values, colormap, size, highlight=None):
    rows_n, cols_n = values.shape
    x, y = renderer.alloc_data(rows_n, cols_n)
    renderer.write_data(x, y, values)
    if highlight is not None:
        renderer.write_highlight(x, y, highlight)
    rows = empty_instances(1)
    rows[0, 3:6] = size
    rows[0, 10:14] = (0.5, 0.5, 0.5, 1.0)
    rows[0, 14:18] = (x, y, cols_n, rows_n)
    rows[0, 18:20] = (-1.0, 1.0)
    rows[0, 20] = colormap
    return rows


@pytest.mark.parametrize("colormap", [colormaps.COLORMAP_DIVERGING, colormaps.COLORMAP_VIRIDIS, colormaps.COLORMAP_RGB])
def test_data_texture_cells_have_the_same_colours_on_both_backends(gl, wgpu, colormap):
    rng = np.random.default_rng(colormap)
    if colormap == colormaps.COLORMAP_RGB:
        rgb = rng.integers(0, 256, (4, 6, 3))
        values = colormaps.pack_rgb(rgb).astype(np.float32)
        expected = rgb
    else:
        values = rng.uniform(-1.2, 1.2, (4, 6)).astype(np.float32)
        values[0, 1] = np.nan  # an empty cell
        expected = np.round(np.clip(colormaps.apply(values, -1.0, 1.0, colormap), 0, 1) * 255).astype(int)
        expected[0, 1] = np.round(np.asarray(colormaps.NAN_RGB) * 255)
    size = np.array([3.0, 2.0, 0.2])
    camera = front_camera()
    pictures = []
    for renderer in (gl, wgpu):
        renderer.reset_data()
        rows = block(renderer, values, colormap, size)
        renderer.begin_frame(BACKGROUND)
        renderer.draw_batches(camera, [Batch(MESH_BOX, MATERIAL_OPAQUE, LOD_DETAIL, rows)])
        renderer.end_frame()
        renderer.finish()
        pictures.append(renderer.read_pixels()[:, :, :3].astype(int))
    for r in range(4):
        for c in range(6):
            local = np.array([-0.5 + (c + 0.5) / 6, 0.5 - (r + 0.5) / 4, 0.5])
            px, py, _ = camera.project(local * size)[0]
            got_gl, got_wgpu = (p[int(py), int(px)] for p in pictures)
            assert np.abs(got_gl - got_wgpu).max() <= 1, (r, c, got_gl, got_wgpu)
            assert np.abs(got_wgpu - expected[r, c]).max() <= 3, (r, c, got_wgpu, expected[r, c])


def test_masked_and_marked_cells_are_drawn_alike(gl, wgpu):
    """The causal mask's hatch (keyed to screen pixels) and a marked cell's frame land on the same pixels."""
    values = np.array([[0.5, -np.inf, -np.inf], [0.2, -0.3, 0.9]], np.float32)
    mark = np.array([[0, 0, 0], [1, 0, 0]])
    camera = front_camera(5.0)
    pictures = []
    for renderer in (gl, wgpu):
        renderer.reset_data()
        rows = block(renderer, values, colormaps.COLORMAP_DIVERGING, (3.0, 2.0, 0.2), highlight=mark)
        renderer.begin_frame(BACKGROUND)
        renderer.draw_batches(camera, [Batch(MESH_BOX, MATERIAL_OPAQUE, LOD_DETAIL, rows)])
        renderer.end_frame()
        pictures.append(renderer.read_pixels()[:, :, :3].astype(int))
        renderer.write_highlight(int(rows[0, 14]), int(rows[0, 15]), np.zeros_like(mark))
    assert_frames_agree(*pictures)


def label_glyphs(atlas, texts, anchors, height=0.35, billboard=1.0):
    rows = []
    for text, anchor in zip(texts, anchors):
        quads = atlas.layout(text)
        g = np.zeros((len(quads), GLYPH_FLOATS), np.float32)
        g[:, GLYPH_SLICES["anchor"]] = anchor
        g[:, GLYPH_SLICES["offset"]] = quads[:, 0:2]
        g[:, GLYPH_SLICES["size"]] = quads[:, 2:4]
        g[:, GLYPH_SLICES["uv"]] = quads[:, 4:8]
        g[:, GLYPH_SLICES["height"]] = height
        g[:, GLYPH_SLICES["color"]] = (1.0, 1.0, 1.0, 1.0)
        g[:, GLYPH_SLICES["billboard"]] = billboard
        rows.append(g)
    return np.concatenate(rows)


def test_labels_land_within_one_pixel(gl, wgpu):
    texts = ["W_q 16x48", "MLP", "Transformer 11", "attention out", "b 192", "softmax"]
    anchors = [(-2.2, 1.3, 0.0), (1.8, 1.2, 0.0), (-1.5, 0.0, 0.0), (1.6, -0.1, 0.0), (-2.0, -1.3, 0.0),
               (1.5, -1.3, 0.0)]
    camera = front_camera(6.0)
    camera.position = np.array([0.8, 0.5, 6.0])
    camera.look_at([0.0, 0.0, 0.0])
    pictures = [draw(r, camera, glyphs=label_glyphs(r.glyph_atlas, texts, anchors)) for r in (gl, wgpu)]
    background = np.round(np.asarray(BACKGROUND[:3]) * 255)
    for anchor in anchors:
        px, py, _ = camera.project(np.asarray(anchor, float))[0]
        x0, x1, y0, y1 = int(px) - 60, int(px) + 60, int(py) - 14, int(py) + 14
        boxes = []
        for picture in pictures:
            ink = np.abs(picture[max(y0, 0):y1, max(x0, 0):x1] - background).max(axis=2) > 96
            ys, xs = np.nonzero(ink)
            assert len(xs) > 10, anchor
            weights = ink[ys, xs]
            boxes.append(np.array([xs.min(), xs.max(), ys.min(), ys.max(), np.average(xs, weights=weights),
                                   np.average(ys, weights=weights)]))
        assert np.abs(boxes[0] - boxes[1]).max() <= 1.0, (anchor, boxes)


def scene_frame(renderer, name):
    from llmviz.engine.runtime import Engine
    from llmviz.scenes.registry import build_scene

    renderer.reset_data()
    scene = build_scene(name, renderer)
    try:
        engine = Engine(scene.world, scene.start_camera(renderer.size), renderer)
        scene.attach(engine)
        assert scene.wait_for_values()
        engine.frame(0.0)
        engine.frame(0.0)
        renderer.finish()
        return renderer.read_pixels()[:, :, :3].astype(int), dict(renderer.stats.as_dict())
    finally:
        scene.close()


@pytest.mark.parametrize("name", ["nano-gpt", "gpt-3", "stress:3000"])
def test_the_same_scene_renders_alike_on_both_backends(gl, wgpu, name):
    (a, stats_gl), (b, stats_wgpu) = scene_frame(gl, name), scene_frame(wgpu, name)
    assert a.std() > 5  # the frame shows something
    assert_frames_agree(a, b)
    for key in ("draw_calls", "triangles", "instances", "glyphs"):
        assert stats_gl[key] == stats_wgpu[key], key


def test_two_viewports_in_one_frame_each_clear_and_draw_their_own(gl, wgpu):
    """A compare frame: two views, each cleared and drawn with its own camera into its half of the target."""
    rows = empty_instances(1)
    rows[0, 10:14] = (0.8, 0.3, 0.2, 1.0)
    pictures = []
    for renderer in (gl, wgpu):
        w, h = renderer.size
        for k, z in enumerate((4.0, 8.0)):
            renderer.set_viewport((k * w // 2, 0, w // 2, h))
            camera = Camera(position=np.array([0.0, 0.0, z]), viewport=renderer.view_size)
            renderer.begin_frame((0.1 * (k + 1), 0.1, 0.1, 1.0))
            renderer.draw_batches(camera, [Batch(MESH_BOX, MATERIAL_OPAQUE, LOD_DETAIL, rows)])
            renderer.end_frame()
        renderer.set_viewport(None)
        pictures.append(renderer.read_pixels()[:, :, :3].astype(int))
    assert_frames_agree(*pictures)
    left, right = pictures[1][5, 5], pictures[1][5, -5]
    assert left[0] != right[0]  # each half kept its own clear colour


def test_the_explorer_frame_with_its_ui_renders_alike(gl, wgpu):
    """The whole explorer frame (menu, banner, panels, hint bar) drawn through each backend's UI overlay."""
    from llmviz.scenes.explorer import Explorer

    pictures = []
    for renderer in (gl, wgpu):
        renderer.reset_data()
        ex = Explorer(renderer, "gpt-3", adaptive_quality=False, background_imports=False)
        try:
            ex.wait_for_values()
            for _ in range(4):
                ex.frame(1.0 / 15.0)
                renderer.finish()
                ex.presented()
            pictures.append(renderer.read_pixels()[:, :, :3].astype(int))
        finally:
            ex.close()
    assert_frames_agree(*pictures)
