"""clip-tiny's live scene: it opens headless with the picture and captions traced, the 3D similarity matrix
holds transformers' softmax over the captions, the hover explains the matrix, the embedding space and the
towers' cells with the numbers they came from, and captions the vocabulary does not know are refused in
one line while the scene keeps what it showed."""
import numpy as np
import pytest

pytest.importorskip("torch")

from scene_support import live_scene  # noqa: E402

SIZE = (320, 180)


@pytest.fixture(scope="module")
def clip():
    with live_scene("clip-tiny", SIZE) as opened:
        yield opened


def _transformers_probs(live):
    import torch

    from llmviz.models.sim import clip_image, clip_model, clip_trace, vit_image

    model = clip_model.load_clip()
    rgb = vit_image.read_image(live.source)
    ids = clip_trace.caption_batch(live.shown_captions)
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=(ids != 0).long(),
                    pixel_values=torch.from_numpy(clip_image.preprocess(rgb, 64)[None]))
    return out.logits_per_image[0].softmax(-1).numpy()


def test_the_matrix_and_its_hover_hold_transformers_softmax(clip):
    from llmviz.scenes.clip_live import PROBS_ID

    scene, _ = clip
    live = scene.live
    theirs = _transformers_probs(live)
    np.testing.assert_allclose(live.trace[PROBS_ID][:, 0], theirs, atol=1e-5)
    slot = int(live.space.matrix.slots[0])
    for row in range(len(theirs)):
        reading = live.reading_at(slot, (row, 0))
        assert np.isclose(reading.value, theirs[row], atol=1e-5) and "softmax over the" in reading.formula
        assert live.shown_captions[row] in reading.indices and "your picture" in reading.indices
    assert "no caption here" in live.reading_at(slot, (7, 0)).note


def test_the_space_points_and_the_towers_cells_are_explained(clip):
    from llmviz.scenes.clip_live import SPACE_PICTURE
    from llmviz.scenes.hover import read_pick

    scene, _ = clip
    live = scene.live
    space = live.space
    mine = int(space.point_slots[list(space.kinds).index("picture")])
    reading = live.reading_at(mine, None)
    assert "your picture" in reading.indices and f"PC1 {live.trace[SPACE_PICTURE][0, 0]:+.3f}" in reading.formula
    for tensor_id, cell in (("vision.blocks.1.mlp.gelu", (5, 7)), ("blocks.0.attn.head.1.scores_masked", (3, 2)),
                            ("contrast.logits", (0, 0)), ("vision.proj", (0, 4))):
        got = read_pick(scene.model, live, scene.model.slot_of(tensor_id), cell)
        assert got.formula and got.value is not None, (tensor_id, got)
    assert "e^" in read_pick(scene.model, live, scene.model.slot_of("contrast.logits"), (0, 0)).formula


def test_an_unknown_word_is_one_line_and_the_captions_stay(clip):
    scene, _ = clip
    live = scene.live
    before = list(live.captions)
    problem = live.set_captions(["a star", "a blue unicorn"])
    assert "unknown word 'unicorn'" in problem and len(problem.splitlines()) == 1
    assert live.captions == before
    assert live.set_captions(["a star", "a ring"]) == "" and scene.wait_for_values()
    live.update(0.0)
    assert live.shown_captions == ("a star", "a ring")


def test_the_labels_name_the_captions_and_a_new_picture_adds_no_strings(clip):
    scene, _ = clip
    live = scene.live
    space, world = live.space, live.space.world
    captions = ["a large ring", "a green star", "a cross"]

    def texts(ids):
        return [world.labels[i] for i in world.column("label", "text_index")[world.slots(ids)]]

    assert live.set_captions(captions) == "" and scene.wait_for_values()
    live.update(0.0)
    expected = captions + [""] * (space.max_captions - len(captions))
    assert texts(space._row_labels) == expected and texts(space._caption_points) == expected
    strings, version = len(world.labels), live.trace_version
    live.step()   # the next sample picture, the same captions
    assert scene.wait_for_values()
    live.update(0.0)
    assert live.trace_version != version and live.shown_captions == tuple(captions)
    assert len(world.labels) == strings and texts(space._row_labels) == expected
