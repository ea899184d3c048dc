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

from llmviz.common.atomic import write_atomic
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


# ---------------------------------------------------------------------------------------------- tiled pictures
# A tile's projection is the one pass's followed by an exact clip-space scale and offset: only pixels whose centre
# lies on an edge may flip (measured on nano-gpt at 640x400, 256 px tiles: 30 of 256,000 pixels differ, 3 of
# them by more than 8 levels). The bounds are far below a misplaced tile, labels laid out per tile or a missing
# UI (each thousands of pixels).
TILED_MEAN_LEVELS = 0.05
TILED_DIFFERING_SHARE = 1e-3


# nano-gpt's data cells without the UI; with the UI a structure-only model (nano-gpt's panel shows the forward
# pass's time, which differs between the two renders).
@pytest.mark.parametrize("scene, tile, ui", [("nano-gpt", 256, False), ("gpt-2-small", 320, True)])
def test_a_tiled_picture_on_wgpu_matches_its_one_pass(tmp_path, scene, tile, ui):
    from PIL import Image

    from llmviz.engine import gpu_adapters
    from llmviz.scenes.cli.main import main

    if gpu_adapters.best_adapter() is None:
        pytest.skip(f"no wgpu adapter: {gpu_adapters.survey_adapters().problem}")
    flags = ["render", "--scene", scene, "--size", "640x400", "--backend", "wgpu"] + ([] if ui else ["--no-ui"])
    assert main(flags + ["--out", str(tmp_path / "one.png")]) == 0
    assert main(flags + ["--tile", str(tile), "--out", str(tmp_path / "tiled.png")]) == 0
    one, tiled = (np.asarray(Image.open(tmp_path / n).convert("RGB")).astype(int) for n in ("one.png", "tiled.png"))
    assert one.shape == tiled.shape == (400, 640, 3) and one.std() > 5
    diff = np.abs(one - tiled)
    assert diff.mean() <= TILED_MEAN_LEVELS, diff.mean()
    assert (diff.max(axis=2) > 0).mean() <= TILED_DIFFERING_SHARE, (diff.max(axis=2) > 0).mean()


def test_a_tile_beyond_the_wgpu_device_limit_is_one_line_naming_tile(capsys):
    from llmviz.engine import gpu_adapters
    from llmviz.scenes.cli.main import main

    if gpu_adapters.best_adapter() is None:
        pytest.skip(f"no wgpu adapter: {gpu_adapters.survey_adapters().problem}")
    limit = gpu_adapters.shared_device().device.limits["max-texture-dimension-2d"]
    code = main(["render", "--scene", "stress:200", "--size", f"{limit + 64}x32", "--tile", str(limit + 8),
                 "--no-ui", "--backend", "wgpu", "--out", "never-written.png"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert f"--tile {limit + 8}" in err and f"limit of {limit} px" in err


# ---------------------------------------------------------------------------------------------- the window
XGRAB = '''
import ctypes
import numpy as np
from PIL import Image

class XImage(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int) for n in ("width", "height", "xoffset", "format")] + [("data", ctypes.c_void_p)] + \\
               [(n, ctypes.c_int) for n in ("byte_order", "bitmap_unit", "bitmap_bit_order", "bitmap_pad", "depth",
                                            "bytes_per_line", "bits_per_pixel")]

def grab(window, size, path):
    """What the X server shows of ``window`` (its children included), read with XGetImage, as an RGB PNG."""
    x = ctypes.CDLL("libX11.so.6")
    x.XOpenDisplay.restype = ctypes.c_void_p
    x.XGetImage.restype = ctypes.c_void_p
    x.XGetImage.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                            ctypes.c_ulong, ctypes.c_int]
    display = x.XOpenDisplay(None)
    w, h = size
    image = ctypes.cast(x.XGetImage(display, window, 0, 0, w, h, 0xFFFFFFFF, 2), ctypes.POINTER(XImage)).contents
    rows = np.frombuffer(ctypes.string_at(image.data, image.bytes_per_line * h), np.uint8).reshape(h, -1)
    Image.fromarray(rows[:, :4 * w].reshape(h, w, 4)[:, :, [2, 1, 0]].copy()).save(path)

def click(x, y):
    """A real pointer click at screen pixel (x, y), through the X server (XTest): what a user's mouse sends."""
    xlib, xtest = ctypes.CDLL("libX11.so.6"), ctypes.CDLL("libXtst.so.6")
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    display = ctypes.c_void_p(xlib.XOpenDisplay(None))
    xtest.XTestFakeMotionEvent(display, -1, x, y, 0)
    xtest.XTestFakeButtonEvent(display, 1, True, 0)
    xtest.XTestFakeButtonEvent(display, 1, False, 0)
    xlib.XFlush(display)
'''


def test_the_window_draws_through_wgpu_and_the_screen_shows_it(tmp_path):
    """`llmviz --backend wgpu`: the explorer window (scene, labels, ImGui) drawn into a wgpu surface; what the X
    server shows of the window (XGetImage, independent of the renderer) is the frame the renderer read back, and a
    real click sent through the X server (XTest) reaches ImGui: the View menu opens."""
    import ctypes.util

    from PIL import Image
    from window_support import run_scripted_window

    from llmviz.engine import gpu_adapters

    if not any(a.backend not in ("OpenGL", "GL") for a in gpu_adapters.survey_adapters().adapters):
        pytest.skip("no Vulkan, Metal or D3D12 adapter for a window surface")
    if ctypes.util.find_library("Xtst") is None:
        pytest.skip("no libXtst to send a real click with (Debian: libxtst6)")
    write_atomic(tmp_path / "xgrab.py", XGRAB)
    proc = run_scripted_window(tmp_path, """
self.shots = (5, 12)
if self.n == 6:
    import xgrab
    xgrab.click(225, 10)
if self.n == 13:
    import time, xgrab
    time.sleep(0.5)  # the surface's present may complete on the driver's thread
    xgrab.grab(self.wnd._window._window, self.buffer_size, sys.argv[1] + '/screen.png')
if self.n == 14: print('BACKEND', self.renderer.backend_name, flush=True)
""", "stress:500", 15, backend="wgpu")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "BACKEND wgpu" in proc.stdout
    before = np.asarray(Image.open(tmp_path / "shot5.png").convert("RGB")).astype(int)
    drawn = np.asarray(Image.open(tmp_path / "shot12.png").convert("RGB")).astype(int)
    shown = np.asarray(Image.open(tmp_path / "screen.png").convert("RGB")).astype(int)
    assert drawn.shape == shown.shape and drawn.std() > 5  # a frame, with the menu bar and panels
    # The View menu drops down under its title: its items cover the scene there (as in tests/test_window.py).
    region = (slice(22, 120), slice(215, 420))
    assert np.abs(drawn[region] - before[region]).max(axis=-1).mean() > 20
    # The profiler overlay's figures change from frame to frame; the rest is the same picture.
    diff = np.abs(drawn - shown).max(axis=2)
    assert diff.mean() <= 1.0 and (diff > 8).mean() <= 0.01, (diff.mean(), (diff > 8).mean())


def test_the_window_without_a_native_adapter_falls_back_or_says_why(tmp_path):
    """No Vulkan driver (the loader pointed at none): auto opens the window on OpenGL with one line saying why;
    --backend wgpu is that one line and exit status 2."""
    import json
    import os
    import subprocess
    import sys

    from window_support import XVFB

    env = dict(os.environ, VK_ICD_FILENAMES=str(tmp_path / "no-driver.json"), VK_DRIVER_FILES=str(tmp_path / "x.json"))
    run = [*XVFB, sys.executable, "-m", "llmviz.scenes.cli.main", "--scene", "stress:200", "--size", "320x200"]
    asked = subprocess.run(run + ["--backend", "wgpu", "--frames", "2"], capture_output=True, text=True, env=env,
                           timeout=180)
    lines = [line for line in asked.stderr.splitlines() if line.startswith("llmviz")]
    assert asked.returncode == 2 and len(lines) == 1, asked.stderr[-2000:]
    assert lines[0].startswith("llmviz: --backend wgpu:") and "a window surface needs one" in lines[0]
    stats = tmp_path / "stats.json"
    auto = subprocess.run(run + ["--backend", "auto", "--frames", "3", "--stats-json", str(stats)],
                          capture_output=True, text=True, env=env, timeout=180)
    assert auto.returncode == 0, auto.stderr[-2000:]
    assert [line for line in auto.stderr.splitlines() if line.startswith("llmviz: --backend auto: moderngl, because")]
    assert json.loads(stats.read_text())["backend"] == "gl"


def test_a_window_whose_surface_cannot_be_made_falls_back_with_the_reason():
    """The shell's own fallback (a window wgpu cannot make a surface on): auto says why and draws with OpenGL;
    wgpu asked for raises the one line."""
    from types import SimpleNamespace

    from llmviz.engine.render.factory import BackendUnavailable
    from llmviz.engine.window import WindowShell

    said = []
    shell = SimpleNamespace(backend="auto", say=said.append, vsync=True,
                            wnd=SimpleNamespace(_window=SimpleNamespace(), buffer_size=(320, 200)))
    assert WindowShell._wgpu_renderer(shell) is None
    assert len(said) == 1
    assert said[0].startswith("auto: moderngl, because the wgpu backend cannot draw into this window")
    shell.backend = "wgpu"
    with pytest.raises(BackendUnavailable, match="--backend wgpu: the wgpu backend cannot draw into this window"):
        WindowShell._wgpu_renderer(shell)


def test_auto_takes_moderngl_with_the_reason_where_the_wgpu_device_cannot_hold_the_target(monkeypatch):
    """A device whose textures are smaller than the target (here: one that says 32 px a side) fails the wgpu
    renderer's start; auto then draws with moderngl and its line names the limit, wgpu is that line."""
    from types import SimpleNamespace

    from llmviz.engine import gpu_adapters
    from llmviz.engine.render.factory import BackendUnavailable, offscreen_renderer
    from llmviz.engine.render.wgpu_backend import WgpuRenderer

    adapter = gpu_adapters.best_adapter()
    if adapter is None:
        pytest.skip(f"no wgpu adapter: {gpu_adapters.survey_adapters().problem}")
    limit = gpu_adapters.shared_device().device.limits["max-texture-dimension-2d"]
    with pytest.raises(ValueError, match=f"limit of {limit} px"):
        WgpuRenderer((limit + 8, 16))
    small = gpu_adapters.GpuDevice(SimpleNamespace(limits={"max-texture-dimension-2d": 32}), adapter)
    monkeypatch.setattr(gpu_adapters, "shared_device", lambda: small)
    try:
        made = offscreen_renderer("auto", (64, 48))
    except Exception as err:  # no GL to fall back to either
        pytest.skip(f"no headless OpenGL: {err}")
    try:
        assert made.backend == "gl" and made.renderer.backend_name == "gl"
        assert made.reason.startswith("auto: moderngl, because the wgpu renderer did not start")
        assert "limit of 32 px" in made.reason and "\n" not in made.reason
    finally:
        made.renderer.release()
    with pytest.raises(BackendUnavailable, match="--backend wgpu: the wgpu renderer did not start: .*limit of 32 px"):
        offscreen_renderer("wgpu", (64, 48))
