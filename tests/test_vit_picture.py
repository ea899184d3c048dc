"""vit-tiny's picture in 3D (scenes/picture_quad.py, scenes/vit_picture.py): the patches on screen are the
picture's pixels, the patches fly into the rows of the patches matrix, a clicked patch's attention is
transformers' attention row of that token, the position-similarity maps are the cosine similarities of
the checkpoint's position embeddings, and hovering a pixel or a map cell reports those numbers."""
import numpy as np
import pytest

from llmviz.engine.render import colormaps
from llmviz.engine.runtime import Engine
from llmviz.models.sim import vit_image
from llmviz.scenes.model_paths import preset_camera
from llmviz.scenes.picture_quad import FLIGHT_SECONDS, FLIGHT_SPREAD

SIZE = (1280, 720)
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def vit():
    headless = pytest.importorskip("llmviz.engine.render.headless")
    from llmviz.scenes.registry import build_scene
    from llmviz.scenes.vit_live import sample_path

    renderer = headless.headless_renderer(SIZE)
    scene = build_scene("vit-tiny", renderer)
    try:
        assert scene.wait_for_values(300), scene.live.error
        live = scene.live
        live.set_image_path(str(sample_path("ring.png")))
        assert live.wait(300), live.error
        live.choose(view="picture")
        live.update(0.0)
        live.picture.flight.update(FLIGHT_SPREAD + FLIGHT_SECONDS + 1)   # the flight over: only the picture
        camera = preset_camera(scene.presets["picture"], SIZE, scene.model.layout)
        engine = Engine(scene.world, camera, renderer)
        frame = engine.frame(0.0)
        yield scene, live, frame, renderer.read_pixels()
    finally:
        scene.close()
        renderer.release()


def _reference_pixels():
    """The ring sample as ViTImageProcessor's resize leaves it, in [0, 1] (read here, not from the trace)."""
    from llmviz.scenes.vit_live import sample_path

    pixels = vit_image.preprocess(vit_image.read_image(str(sample_path("ring.png"))), 64)
    return (pixels.transpose(1, 2, 0) + 1.0) / 2.0


def test_packed_colours_round_trip():
    rgb = np.random.default_rng(0).integers(0, 256, (50, 3)).astype(np.uint8)
    values = colormaps.pack_rgb(rgb)
    assert values.dtype == np.float32
    np.testing.assert_array_equal(np.rint(colormaps.apply(values, 0, 1, colormaps.COLORMAP_RGB) * 255), rgb)
    assert np.allclose(colormaps.apply([np.nan], 0, 1, colormaps.COLORMAP_RGB)[0], colormaps.NAN_RGB)


def test_the_patches_on_screen_are_the_pictures_pixels(vit):
    scene, live, frame, image = vit
    quad = live.picture.quad
    reference = np.rint(_reference_pixels() * 255)
    drawn = set(frame.visibility.drawn.tolist())
    assert set(quad.slots.tolist()) <= drawn
    rng = np.random.default_rng(1)
    checked = matched = 0
    for _ in range(120):
        # the inner 2 x 2 pixels of a patch: its edge pixels carry the box's outline, a pixel wide
        k, r, c = int(rng.integers(quad.n)), int(rng.integers(1, 3)), int(rng.integers(1, 3))
        (cx, cy, cz), (w, h, d) = quad.home[k], quad.tile_size
        point = [cx - w / 2 + (c + 0.5) * w / 4, cy + h / 2 - (r + 0.5) * h / 4, cz + d / 2]
        px, py, depth = frame.camera.project(np.array(point))[0]
        if not (0 <= px < SIZE[0] and 0 <= py < SIZE[1]) or depth <= 0:
            continue
        i, j = quad.index[k]
        expected = reference[i * 4 + r, j * 4 + c]
        checked += 1
        matched += np.abs(image[int(py), int(px), :3].astype(int) - expected).max() <= 3
    assert checked >= 100 and matched >= 0.9 * checked, (matched, checked)


def test_patches_fly_into_their_rows_of_the_patches_matrix(vit):
    scene, live, _, _ = vit
    flight, layout = live.picture.flight, scene.model.layout
    stem = layout.index("patches")
    top = layout.center[stem][1] + layout.size[stem][1] / 2
    row_h = layout.size[stem][1] / 256
    np.testing.assert_allclose(flight.end[:, 1], top - (np.arange(256) + 0.5) * row_h, atol=1e-3)
    np.testing.assert_allclose(flight.end[:, 0], layout.center[stem][0], atol=1e-3)
    flight.start_flight()
    flight.update(FLIGHT_SPREAD / 2)
    p = flight.progress(flight.elapsed)
    assert p[0] == 1.0 and p[-1] == 0.0 and np.all(np.diff(p) <= 0)   # one after another, in token order
    scale = scene.world["transform"]["scale"][scene.world.slots(flight.ids)]
    flying = (p > 0) & (p < 1)
    assert flying.any() and np.all(scale[flying, 0] > 0) and np.all(scale[~flying] == 0)
    assert not flight.update(FLIGHT_SPREAD + FLIGHT_SECONDS) or not flight.flying
    assert np.all(scene.world["transform"]["scale"][scene.world.slots(flight.ids)] == 0)


def test_a_clicked_patch_shows_transformers_attention_of_that_token(vit):
    scene, live, _, _ = vit
    quad = live.picture.quad
    k = 5 * 16 + 9
    assert live.on_click(int(quad.slots[k]), (1, 1))
    live.choose(view="attention", layer=1, head=2)
    from llmviz.models.sim.vit_model import load_vit
    from llmviz.scenes.vit_live import sample_path

    model = load_vit()
    pixels = vit_image.preprocess(vit_image.read_image(str(sample_path("ring.png"))), 64)
    with torch.inference_mode():
        theirs = model(pixel_values=torch.from_numpy(pixels[None]), output_attentions=True).attentions
    np.testing.assert_allclose(live.heat(), theirs[1][0, 2, k + 1, 1:].numpy().reshape(16, 16), atol=1e-5)
    assert "patch (5, 9)" in live.heat_words()
    assert live.on_click(int(quad.slots[k]), (0, 0)) and live.choice.token == 0   # again: back to [CLS]
    assert not live.on_click(int(scene.model.block_slots[0]), (0, 0))


def test_the_similarity_maps_are_cosines_of_the_position_embeddings(vit):
    scene, live, _, _ = vit
    from llmviz.models.sim.vit_model import load_vit

    pos = load_vit().vit.embeddings.position_embeddings[0, 1:].detach().double()
    cos = torch.nn.functional.cosine_similarity(pos[:, None, :], pos[None, :, :], dim=-1).numpy()
    tiles = live.weights[live.SIMILARITY_ID]
    for p, q in ((0, 0), (17, 200), (255, 3), (120, 121)):
        i, j = divmod(p, 16)
        a, b = divmod(q, 16)
        assert np.isclose(tiles[16 * i + a, 16 * j + b], cos[p, q], atol=1e-5)
    maps = live.picture.maps
    reading = live.reading_at(int(maps.slots[17]), (12, 8))
    assert np.isclose(reading.value, cos[17, 200], atol=1e-6) and "cos(W_P[t=18], W_P[t=201])" in reading.formula


def test_hovering_a_pixel_reports_its_colour_and_its_normalised_values(vit):
    scene, live, _, _ = vit
    quad = live.picture.quad
    k = 7 * 16 + 3
    reading = live.reading_at(int(quad.slots[k]), (2, 1))
    rgb = np.rint(_reference_pixels()[7 * 4 + 2, 3 * 4 + 1] * 255).astype(int)
    assert reading.tensor_id == "input.rgb" and f"RGB ({rgb[0]}, {rgb[1]}, {rgb[2]})" in reading.formula
    assert np.isclose(reading.value, rgb[0] / 255 * 2 - 1, atol=1e-6)
    assert reading.sources[0].tensor_id == "patches" and reading.sources[0].rows.tolist() == [k]
    from llmviz.scenes.hover import read_pick

    shown = read_pick(scene.model, live, int(quad.slots[k]), (2, 1))   # the tooltip's path
    assert (shown.formula, shown.value) == (reading.formula, reading.value)
