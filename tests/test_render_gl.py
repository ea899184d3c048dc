"""The moderngl renderer draws what the instance rows say: colours, data cells, order, buffers, stats."""
import numpy as np
import pytest

from llmviz.engine import math3d
from llmviz.engine.camera import Camera
from llmviz.engine.render import (INSTANCE_DIMMED, INSTANCE_FLOATS, INSTANCE_HIGHLIGHTED, LOD_DETAIL, LOD_FLAT,
                                  LOD_IMPOSTOR, MATERIAL_OPAQUE, MATERIAL_TRANSLUCENT, MESH_BOX,
                                  MESH_LOD_TRIANGLES, Batch, empty_instances)
from llmviz.engine.render import colormaps
from llmviz.engine.render.gl import shader_source
from llmviz.engine.render.meshes import MESH_FAMILIES
from gl_support import headless_or_skip

SIZE = (320, 240)
BACKGROUND = (0.1, 0.1, 0.1, 1.0)


@pytest.fixture(scope="module")
def renderer():
    yield from headless_or_skip(SIZE)


def front_camera(z=5.0):
    return Camera(position=np.array([0.0, 0.0, z]), viewport=SIZE)


def box(center=(0, 0, 0), size=(1, 1, 1), color=(0.8, 0.3, 0.2, 1.0)):
    rows = empty_instances(1)
    rows[0, 0:3] = center
    rows[0, 3:6] = size
    rows[0, 10:14] = color
    return rows


def render(renderer, camera, batches, naive=False):
    renderer.begin_frame(BACKGROUND)
    if naive:
        from llmviz.engine.bench import draw_naive_gl

        draw_naive_gl(renderer, camera, batches)
    else:
        renderer.draw_batches(camera, batches)
    renderer.end_frame()
    return renderer.read_pixels()


def pixel_at(image, camera, point):
    px, py, _ = camera.project(point)[0]
    return image[int(py), int(px), :3].astype(int)


def as_byte(rgb):
    return np.round(np.asarray(rgb) * 255).astype(int)


def test_every_program_compiles(renderer):
    for mesh, family in MESH_FAMILIES.items():
        for lod, geometry in enumerate(family.lods):
            renderer._program(geometry.program, geometry.defines)
            renderer._program(geometry.program, geometry.defines + (("PER_DRAW_INSTANCE", 1),))
    assert "#include" not in shader_source("box")


@pytest.mark.parametrize("lod", [LOD_DETAIL, LOD_FLAT])
def test_box_front_face_shows_its_colour(renderer, lod):
    camera = front_camera()
    image = render(renderer, camera, [Batch(MESH_BOX, MATERIAL_OPAQUE, lod, box())])
    assert np.abs(pixel_at(image, camera, [0, 0, 0.5]) - as_byte([0.8, 0.3, 0.2])).max() <= 2
    assert np.abs(image[5, 5, :3].astype(int) - as_byte(BACKGROUND[:3])).max() <= 1


def test_impostor_covers_the_box_silhouette(renderer):
    camera = front_camera()
    image = render(renderer, camera, [Batch(MESH_BOX, MATERIAL_OPAQUE, LOD_IMPOSTOR, box(size=(2, 1, 1)))])
    assert np.abs(pixel_at(image, camera, [0.9, 0, 0]) - as_byte([0.72, 0.27, 0.18])).max() <= 2
    assert np.abs(pixel_at(image, camera, [0, 0.8, 0]) - as_byte(BACKGROUND[:3])).max() <= 1


def test_rotation_quaternion_turns_the_box(renderer):
    camera = front_camera(8.0)
    rows = box(size=(3, 0.4, 0.4))
    rows[0, 6:10] = math3d.quat_from_axis_angle([0, 0, 1], np.pi / 2)  # long axis now along y
    image = render(renderer, camera, [Batch(MESH_BOX, MATERIAL_OPAQUE, LOD_FLAT, rows)])
    assert np.abs(pixel_at(image, camera, [0, 1.2, 0.2]) - as_byte([0.8, 0.3, 0.2])).max() <= 2
    assert np.abs(pixel_at(image, camera, [1.2, 0, 0.2]) - as_byte(BACKGROUND[:3])).max() <= 1


def data_block(renderer, values, colormap, vmin, vmax, size=(3.0, 2.0, 0.2)):
    rows_n, cols_n = values.shape
    x, y = renderer.alloc_data(rows_n, cols_n)
    renderer.write_data(x, y, values)
    rows = box(size=size, color=(0.5, 0.5, 0.5, 1.0))
    rows[0, 14:18] = (x, y, cols_n, rows_n)
    rows[0, 18:20] = (vmin, vmax)
    rows[0, 20] = colormap
    return rows


@pytest.mark.parametrize("colormap,side", [(colormaps.COLORMAP_DIVERGING, 1), (colormaps.COLORMAP_VIRIDIS, 1),
                                           (colormaps.COLORMAP_DIVERGING, -1)])
def test_data_face_cells_show_the_colour_map(renderer, colormap, side):
    values = np.random.default_rng(colormap).uniform(-1.2, 1.2, (4, 6)).astype(np.float32)
    size = np.array([3.0, 2.0, 0.2])
    rows = data_block(renderer, values, colormap, -1.0, 1.0, size)
    camera = front_camera(5.0 * side)
    camera.look_at([0, 0, 0])
    image = render(renderer, camera, [Batch(MESH_BOX, MATERIAL_OPAQUE, LOD_DETAIL, rows)])
    expected = as_byte(colormaps.apply(values, -1.0, 1.0, colormap))
    for r in range(4):
        for c in range(6):
            # Both data faces: column c runs along local +x, row r down along local -y.
            local = np.array([-0.5 + (c + 0.5) / 6, 0.5 - (r + 0.5) / 4, 0.5 * side])
            got = pixel_at(image, camera, local * size)
            assert np.abs(got - expected[r, c]).max() <= 3, (r, c, got, expected[r, c])


def test_data_is_not_sampled_at_flat_lod(renderer):
    rows = data_block(renderer, np.full((2, 2), 1.0, np.float32), colormaps.COLORMAP_DIVERGING, -1, 1)
    camera = front_camera()
    image = render(renderer, camera, [Batch(MESH_BOX, MATERIAL_OPAQUE, LOD_FLAT, rows)])
    assert np.abs(pixel_at(image, camera, [0.4, 0.4, 0.1]) - as_byte([0.5, 0.5, 0.5])).max() <= 2


def test_highlight_brightens_and_dim_fades(renderer):
    camera = front_camera()
    plain = pixel_at(render(renderer, camera, [Batch(MESH_BOX, 0, LOD_FLAT, box())]), camera, [0, 0, 0.5])
    rows = box()
    rows[0, 21] = INSTANCE_HIGHLIGHTED
    bright = pixel_at(render(renderer, camera, [Batch(MESH_BOX, 0, LOD_FLAT, rows)]), camera, [0, 0, 0.5])
    rows[0, 21] = INSTANCE_DIMMED
    dim = pixel_at(render(renderer, camera, [Batch(MESH_BOX, 0, LOD_FLAT, rows)]), camera, [0, 0, 0.5])
    assert bright.sum() > plain.sum() + 60
    assert np.ptp(dim) < np.ptp(plain) / 2 and dim.sum() < plain.sum()


def test_translucent_batches_blend_after_opaque_whatever_the_order(renderer):
    camera = front_camera()
    front = box(center=(0, 0, 1), color=(0.0, 0.0, 1.0, 0.5))
    back = box(color=(1.0, 0.0, 0.0, 1.0))
    image = render(renderer, camera, [Batch(MESH_BOX, MATERIAL_TRANSLUCENT, LOD_FLAT, front),
                                      Batch(MESH_BOX, MATERIAL_OPAQUE, LOD_FLAT, back)])
    assert np.abs(pixel_at(image, camera, [0, 0, 1.5]) - [128, 0, 128]).max() <= 2


def test_instance_buffers_are_reused_and_grow_by_doubling(renderer):
    camera = front_camera(40.0)
    rows = empty_instances(100)
    rows[:, 0] = np.linspace(-10, 10, 100)

    def frame(n):
        render(renderer, camera, [Batch(MESH_BOX, MATERIAL_OPAQUE, LOD_FLAT, rows[:n])])
        return renderer.instance_buffer(MESH_BOX, MATERIAL_OPAQUE, LOD_FLAT)

    first = frame(100)
    assert frame(100) is first and frame(37) is first and frame(100) is first
    bigger = empty_instances(300)
    render(renderer, camera, [Batch(MESH_BOX, MATERIAL_OPAQUE, LOD_FLAT, bigger)])
    grown = renderer.instance_buffer(MESH_BOX, MATERIAL_OPAQUE, LOD_FLAT)
    assert grown is not first and grown.size >= 300 * INSTANCE_FLOATS * 4
    assert frame(100) is grown


def test_stats_count_draws_triangles_and_instances(renderer):
    camera = front_camera(30.0)
    batches = [Batch(MESH_BOX, MATERIAL_OPAQUE, LOD_DETAIL, empty_instances(3)),
               Batch(MESH_BOX, MATERIAL_OPAQUE, LOD_FLAT, empty_instances(0)),
               Batch(MESH_BOX, MATERIAL_OPAQUE, LOD_IMPOSTOR, empty_instances(5)),
               Batch(MESH_BOX, MATERIAL_TRANSLUCENT, LOD_DETAIL, empty_instances(2))]
    for _ in range(3):
        render(renderer, camera, batches)
    stats = renderer.stats
    assert stats.draw_calls == 3
    tris = MESH_LOD_TRIANGLES[MESH_BOX]
    assert stats.triangles == 3 * tris[0] + 5 * tris[2] + 2 * tris[0]
    assert stats.instances[:3] == [5, 0, 5]
    assert stats.gpu_ms is None or stats.gpu_ms >= 0.0
    assert stats.buffer_bytes >= renderer.data_atlas.width * renderer.data_atlas.height * 4


def test_naive_path_draws_once_per_instance_and_matches_instanced(renderer):
    camera = Camera(position=np.array([2.0, 3.0, 12.0]), viewport=SIZE)
    camera.look_at([0, 0, 0])
    rng = np.random.default_rng(3)
    rows = empty_instances(30)
    rows[:, 0:3] = rng.uniform(-4, 4, (30, 3))
    rows[:, 3:6] = rng.uniform(0.3, 1.5, (30, 3))
    rows[:, 6:10] = math3d.normalize(rng.normal(size=(30, 4)))
    rows[:, 10:13] = rng.uniform(0.2, 1.0, (30, 3))
    data = data_block(renderer, rng.normal(size=(5, 7)).astype(np.float32), 1, -2, 2)
    rows[:10, 14:21] = data[0, 14:21]
    translucent = rows[25:].copy()
    translucent[:, 13] = 0.4
    batches = [Batch(MESH_BOX, MATERIAL_OPAQUE, LOD_DETAIL, rows[:12]),
               Batch(MESH_BOX, MATERIAL_OPAQUE, LOD_FLAT, rows[12:20]),
               Batch(MESH_BOX, MATERIAL_OPAQUE, LOD_IMPOSTOR, rows[20:25]),
               Batch(MESH_BOX, MATERIAL_TRANSLUCENT, LOD_FLAT, translucent)]
    instanced = render(renderer, camera, batches)
    assert renderer.stats.draw_calls == 4
    naive = render(renderer, camera, batches, naive=True)
    assert renderer.stats.draw_calls == 30
    diff = np.abs(instanced[..., :3].astype(int) - naive[..., :3].astype(int)).max(axis=-1)
    assert (diff <= 2).mean() > 0.999
    assert (np.abs(instanced[..., :3].astype(int) - as_byte(BACKGROUND[:3])).max(axis=-1) > 3).mean() > 0.05


def test_write_data_rejects_blocks_outside_the_atlas(renderer):
    with pytest.raises(ValueError):
        renderer.write_data(renderer.data_atlas.width - 2, 0, np.zeros((1, 4), np.float32))


def test_read_pixels_is_top_row_first(renderer):
    camera = front_camera()
    image = render(renderer, camera, [Batch(MESH_BOX, MATERIAL_OPAQUE, LOD_FLAT, box(center=(0, 1.5, 0)))])
    assert image.shape == (SIZE[1], SIZE[0], 4) and image.dtype == np.uint8
    top = np.abs(image[: SIZE[1] // 2, :, :3].astype(int) - as_byte(BACKGROUND[:3])).max(axis=-1) > 3
    bottom = np.abs(image[SIZE[1] // 2:, :, :3].astype(int) - as_byte(BACKGROUND[:3])).max(axis=-1) > 3
    assert top.sum() > 100 and bottom.sum() == 0


def test_empty_masked_and_marked_cells(renderer):
    """NaN cells show the empty colour, −∞ (the causal mask) a dark hatch, and marked cells a frame."""
    values = np.array([[0.5, np.nan, -np.inf], [0.2, -0.3, 0.9]], np.float32)
    size = np.array([3.0, 2.0, 0.2])
    rows = data_block(renderer, values, colormaps.COLORMAP_DIVERGING, -1.0, 1.0, size)
    x, y = int(rows[0, 14]), int(rows[0, 15])
    camera = front_camera(6.0)

    def cell_pixel(image, r, c):
        local = np.array([-0.5 + (c + 0.5) / 3, 0.5 - (r + 0.5) / 2, 0.5])
        return pixel_at(image, camera, local * size)

    batch = [Batch(MESH_BOX, MATERIAL_OPAQUE, LOD_DETAIL, rows)]
    image = render(renderer, camera, batch)
    assert np.abs(cell_pixel(image, 0, 1) - as_byte(colormaps.NAN_RGB)).max() <= 3
    masked = cell_pixel(image, 0, 2)
    # a dark grey hatch, not a colour-map colour: the pixel is one of its two stripes
    stripes = as_byte(np.array([(0.05, 0.05, 0.07), (0.27, 0.27, 0.32)]))
    assert (np.abs(stripes - masked).max(axis=1) <= 3).any(), masked
    plain = cell_pixel(image, 1, 0)
    renderer.write_highlight(x, y, np.array([[0, 0, 0], [1, 0, 0]]))
    try:
        marked = cell_pixel(render(renderer, camera, batch), 1, 0)
    finally:
        renderer.write_highlight(x, y, np.zeros((2, 3)))
    expected = 0.82 * colormaps.apply([0.2], -1, 1, 0)[0] + 0.18 * np.array([1.0, 0.78, 0.2])
    assert np.abs(marked - as_byte(expected)).max() <= 3 and np.abs(marked - plain).max() > 5
    assert np.array_equal(cell_pixel(render(renderer, camera, batch), 1, 0), plain)  # cleared again


def test_finish_lets_other_threads_run_while_the_gl_works(renderer):
    """The headless finish is the window's swap: a worker thread (a zoom's exact block, a live model's step) runs
    while the software rasteriser works, instead of waiting for the interpreter lock until the frame is done."""
    import threading
    import time

    ctx = renderer.ctx
    prog = ctx.program(vertex_shader="#version 330\nin vec2 p; void main() { gl_Position = vec4(p, 0.0, 1.0); }",
                       fragment_shader="#version 330\nout vec4 c; uniform int n; void main() { float s = 0.0;"
                                       " for (int i = 0; i < n; i++) s += sin(float(i) * gl_FragCoord.x); c = vec4(s); }")
    vbo = ctx.buffer(np.array([-1, -1, 3, -1, -1, 3], "f4").tobytes())
    vao = ctx.vertex_array(prog, [(vbo, "2f", "p")])
    prog["n"].value = 1200   # long enough to measure on any machine: the draw takes a large share of a second
    renderer.target.use()
    window, runs, stop = [0.0, 0.0], [], threading.Event()

    def worker():   # wakes every millisecond; each wake needs the interpreter lock
        while not stop.is_set():
            runs.append(time.perf_counter())
            time.sleep(0.001)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        vao.render()
        window[0] = time.perf_counter()
        renderer.finish()
        window[1] = time.perf_counter()
    finally:
        stop.set()
        thread.join(10)
        vao.release(), vbo.release(), prog.release()
    during = sum(window[0] < t < window[1] for t in runs)
    # the lock held through the finish: a handful of runs inside it (3 here), let go: one a millisecond or so (86)
    assert during >= 15, f"the worker ran {during} times in a {1e3 * (window[1] - window[0]):.0f} ms finish"
