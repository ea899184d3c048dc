"""llava-tiny's scene (scenes/llava_picture.py, scenes/llava_scores.py): the picture in 3D is the picture's pixels,
tinted and raised by the chosen answer token's attention to the image tokens as transformers computes it; the score
blocks are drawn as 2 x 2 means of the scores (brute force here), and their hover computes each covered score
from q and k."""
import numpy as np
import pytest

from llmviz.models.sim import llava_vocab, vit_image
from llmviz.scenes.picture_quad import FLIGHT_SECONDS, FLIGHT_SPREAD, LIFT_DEPTH

SIZE = (1280, 720)
torch = pytest.importorskip("torch")
QUESTION = "what shape is it?"


@pytest.fixture(scope="module")
def llava():
    headless = pytest.importorskip("llmviz.engine.render.headless")
    from llmviz.engine.runtime import Engine
    from llmviz.scenes.model_paths import preset_camera
    from llmviz.scenes.registry import build_scene
    from llmviz.scenes.vit_live import sample_path

    renderer = headless.headless_renderer(SIZE)
    scene = build_scene("llava-tiny", renderer)
    try:
        assert scene.wait_for_values(300), scene.live.error
        live = scene.live
        live.set_question(QUESTION)
        live.set_image_path(str(sample_path("ring.png")))
        assert live.wait(300), live.error
        live.choose(token=0, layer=1, head=None)
        live.update(0.0)
        live.picture.flight.update(FLIGHT_SPREAD + FLIGHT_SECONDS + 1)
        engine = Engine(scene.world, preset_camera(scene.presets["picture"], SIZE, scene.model.layout), renderer)
        frame = engine.frame(0.0)
        yield scene, live, frame, renderer
    finally:
        scene.close()
        renderer.release()


def _theirs(live):
    """transformers' attentions of the traced sequence (the exported model's own forward)."""
    from llmviz.models.sim import llava_model, llava_trace
    from llmviz.scenes.vit_live import sample_path

    model = llava_model.load_llava()
    pixels = vit_image.preprocess(vit_image.read_image(str(sample_path("ring.png"))), 64)
    ids = llava_trace.sequence(model, llava_vocab.question_ids(QUESTION), live.trace_answer())
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([ids]), pixel_values=torch.from_numpy(pixels[None]), output_attentions=True)
    return [a[0].numpy() for a in out.attentions]


def test_the_picture_is_tinted_and_raised_by_the_chosen_tokens_attention(llava):
    scene, live, frame, _ = llava
    quad = live.picture.quad
    assert set(quad.slots.tolist()) <= set(frame.visibility.drawn.tolist())
    attentions = _theirs(live)
    row = live.prompt_length() - 1          # the position that chose answer token 0
    expected = attentions[1][:, row, :256].mean(0).reshape(16, 16)
    np.testing.assert_allclose(live.heat(), expected, atol=1e-5)
    depth = scene.world["transform"]["scale"][quad.slots][:, 2] - quad.tile_size[2]
    np.testing.assert_allclose(depth, expected.ravel() / expected.max() * LIFT_DEPTH, rtol=1e-4, atol=1e-4)
    assert "answer token 0" in live.heat_words() and "layer 1" in live.heat_words()


def test_a_pixels_hover_gives_its_normalised_values(llava):
    _, live, _, _ = llava
    quad = live.picture.quad
    k = 6 * 16 + 10
    reading = live.reading_at(int(quad.slots[k]), (1, 2))
    from llmviz.scenes.vit_live import sample_path

    rgb = vit_image.read_image(str(sample_path("ring.png")))[6 * 4 + 1, 10 * 4 + 2]
    assert np.isclose(reading.value, rgb[0] / 255 * 2 - 1, atol=1e-6) and "image token 106" in reading.label
    assert live.reading_at(int(llava[0].model.block_slots[0]), (0, 0)) is None


def _pooled_brute(values, masked):
    r, c = values.shape
    out = np.zeros(((r + 1) // 2, (c + 1) // 2))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            cells = [values[a, b] for a in (2 * i, 2 * i + 1) for b in (2 * j, 2 * j + 1) if a < r and b < c]
            kept = [v for v in cells if np.isfinite(v)]
            out[i, j] = np.mean(kept) if kept else -np.inf
    return out


def test_score_blocks_are_drawn_as_two_by_two_means(llava):
    scene, live, _, renderer = llava
    from llmviz.scenes.llava_scores import pooled

    layout = scene.model.layout
    for tensor_id in ("vision.blocks.0.attn.head.2.scores", "blocks.1.attn.head.3.scores_masked"):
        row = layout.index(tensor_id)
        x, y, cols, rows = (int(v) for v in scene.model.regions[row])
        assert (rows, cols) == ((layout.rows[row] + 1) // 2, (layout.cols[row] + 1) // 2)
        values = np.asarray(live.trace[tensor_id], np.float64)
        brute = _pooled_brute(values, tensor_id.endswith("masked"))
        np.testing.assert_allclose(pooled(values)[:brute.shape[0], :brute.shape[1]], brute, rtol=1e-5, atol=1e-5)
        assert "2 x 2 means" in layout.label[row]


def test_a_pooled_cells_hover_computes_its_scores_from_q_and_k(llava):
    from llmviz.scenes.hover import read_pick

    scene, live, _, _ = llava
    tr = live.trace
    tensor_id = "blocks.0.attn.head.1.scores_masked"
    q, k = np.asarray(tr["blocks.0.attn.head.1.q_rope"], np.float64), np.asarray(tr["blocks.0.attn.head.1.k_rope"],
                                                                                 np.float64)
    slot = scene.model.slot_of(tensor_id)
    r, c = 131, 60                           # query rows 262, 263, key columns 120, 121: all four kept
    reading = read_pick(scene.model, live, slot, (r, c))
    expected = np.mean([q[a] @ k[b] / 4.0 for a in (262, 263) for b in (120, 121)])
    assert np.isclose(reading.value, expected, atol=1e-4), (reading.value, expected)
    assert "mean of the 4 scores" in reading.formula
    diagonal = read_pick(scene.model, live, slot, (100, 100))   # rows 200, 201, keys 200, 201: (200, 201) masked
    expected = np.mean([q[200] @ k[200], q[201] @ k[200], q[201] @ k[201]]) / 4.0
    assert np.isclose(diagonal.value, expected, atol=1e-4) and "mean of the 3 scores" in diagonal.formula
    assert read_pick(scene.model, live, slot, (10, 100)).value == -np.inf
