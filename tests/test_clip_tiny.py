"""clip-tiny: the shipped weights are a transformers CLIPModel, llmviz's traced forward (models/sim/clip_trace.py)
computes what transformers computes, the exported folder loads in transformers with its tokenizer and image
processor, preprocessing equals CLIPImageProcessor's, the zero-shot figures hold on fresh pictures, training
is deterministic, bad pictures and captions are one line, and the hover recomputes the cells it explains."""
import json

import numpy as np
import pytest
from tiny_model_support import (assert_every_array_names_its_axes, assert_ids_are_the_blocks,
                                assert_spec_counts_every_parameter, assert_state_shapes_are_transformers,
                                assert_training_is_deterministic, close, layout_blocks, model_fixture, spec_fixture,
                                torch, transformers)

from llmviz.models.sim import clip_image, clip_model, clip_trace, clip_vocab, shapes, train_clip, vit_image
from llmviz.scenes.cli.main import main

# Zero-shot figures the shipped weights are held to on these 300 fresh pictures (measured: colour 99.7%, size
# 82.7%, shape 79.0%; chance 12.5%, 33.3% and 16.7%), less a margin; llmviz train's report on 1,000 is in
# BENCHMARKS.md.
STATED = {"colour": 0.97, "size": 0.78, "shape": 0.74}
ZERO_SHOT_PICTURES, ZERO_SHOT_SEED = 300, 777
CAPTIONS = ["a small red star", "a ring", "an orange shape", "a large blue cross", "a medium white circle"]

model = model_fixture(clip_model.load_clip)
spec = spec_fixture("clip-tiny")


def _pictures(seed: int, n: int) -> np.ndarray:
    return np.stack([p.pixels for p in shapes.draw_batch(seed, n)])


def _astronaut() -> np.ndarray:
    from llmviz.scenes.vit_live import sample_path

    return vit_image.read_image(str(sample_path("astronaut.jpg")))


def _theirs(hf, pixels, captions):
    ids = clip_trace.caption_batch(captions)
    with torch.inference_mode():
        return hf(input_ids=ids, attention_mask=(ids != clip_vocab.PAD_ID).long(),
                  pixel_values=torch.from_numpy(pixels), output_hidden_states=True)


def _assert_ours(model, theirs, pixels, captions):
    """Our embeddings, logits and every layer's hidden states equal transformers' output `theirs`."""
    ids = clip_trace.caption_batch(captions)
    with torch.inference_mode():
        image = clip_trace.image_features(model, torch.from_numpy(pixels))
        text = clip_trace.text_features(model, ids)
        close(clip_trace.unit(image), theirs.image_embeds, "image embeds")
        close(clip_trace.unit(text), theirs.text_embeds, "text embeds")
        close(clip_trace.logits_per_image(model, image, text), theirs.logits_per_image, "logits_per_image")
    for row in range(len(pixels)):
        tr = clip_trace.trace(model, pixels[row], captions[row])
        close(tr["contrast.logits"], theirs.logits_per_image[row, row:row + 1], "traced logit")
        close(tr["contrast.image"], theirs.image_embeds[row], "traced image embed")
        close(tr["contrast.text"], theirs.text_embeds[row], "traced text embed")
        vision, text_states = theirs.vision_model_output.hidden_states, theirs.text_model_output.hidden_states
        close(tr["vision.ln0.out"], vision[0][row], "vision hidden state 0 (after ln_pre)")
        n = len(clip_vocab.encode(captions[row]))
        close(tr["embed.out"], text_states[0][row, :n], "text hidden state 0")
        for b in range(2):
            close(tr[f"vision.blocks.{b}.resid2"], vision[b + 1][row], f"vision layer {b}")
            close(tr[f"blocks.{b}.resid2"], text_states[b + 1][row, :n], f"text layer {b}")


# ---- the weights are transformers' model ---------------------------------------------------

def test_shipped_weights_are_a_clip_model_with_a_16_by_16_grid(model, spec):
    assert type(model) is transformers.CLIPModel
    v = model.config.vision_config
    assert (v.image_size, v.patch_size) == (64, 4) and (v.image_size // v.patch_size) ** 2 + 1 == 257
    assert model.config.text_config.vocab_size == len(clip_vocab.VOCAB)
    assert_state_shapes_are_transformers(clip_model, model)
    assert_spec_counts_every_parameter(spec, model, at_most=200_000)
    assert "trained by llmviz (llmviz train clip-tiny)" in spec.sources


def test_trace_equals_transformers_embeddings_logits_and_hidden_states(model):
    pixels = clip_image.preprocess_batch(_pictures(11, len(CAPTIONS)))
    _assert_ours(model, _theirs(model, pixels, CAPTIONS), pixels, CAPTIONS)


def test_trace_ids_are_the_layout_blocks(model, spec):
    tr = clip_trace.trace(model, clip_image.preprocess(_pictures(5, 1)[0], 64), "a small red star")
    weights = clip_trace.weights(model)
    assert_every_array_names_its_axes(tr)
    assert_every_array_names_its_axes(weights)
    blocks = layout_blocks(spec, len(tr["tokens"]))   # a caption shorter than the context fills the first rows
    assert_ids_are_the_blocks(set(tr) | set(weights), blocks, tr, weights)


# ---- the exported folder -------------------------------------------------------------------

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from llmviz.models.export_hf import export

    folder = tmp_path_factory.mktemp("clip") / "clip-tiny"
    assert "CLIPModel.from_pretrained" in export("clip-tiny", folder).load_line
    return folder


def test_the_export_loads_in_transformers_and_gives_our_numbers(exported, model):
    assert sorted(p.name for p in exported.iterdir()) == ["config.json", "model.safetensors",
                                                          "preprocessor_config.json", "special_tokens_map.json",
                                                          "tokenizer.json", "tokenizer_config.json"]
    loaded, info = transformers.CLIPModel.from_pretrained(str(exported), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    pixels = clip_image.preprocess_batch(_pictures(21, 3))
    _assert_ours(model, _theirs(loaded.eval(), pixels, CAPTIONS[:3]), pixels, CAPTIONS[:3])


def test_the_exported_tokenizer_reads_captions_as_ours(exported):
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(exported))
    for caption in [*CAPTIONS, "A Small, RED star.", "a dog"]:
        theirs = tokenizer(caption)["input_ids"]
        if "dog" in caption:
            assert clip_vocab.UNK_ID in theirs      # the file maps it to <unk>; llmviz refuses it in one line
            with pytest.raises(clip_vocab.CaptionError, match="unknown word 'dog'"):
                clip_vocab.encode(caption)
        else:
            assert theirs == clip_vocab.encode(caption), caption


def test_preprocessing_equals_the_exported_image_processor(exported):
    processor = transformers.AutoImageProcessor.from_pretrained(str(exported))
    rng = np.random.default_rng(0)
    wide, tall, small = (np.asarray(rng.integers(0, 256, s), np.uint8) for s in ((37, 90, 3), (101, 64, 3), (9, 13, 3)))
    for rgb in (_astronaut(), _pictures(3, 1)[0], wide, tall, small):
        theirs = processor(images=rgb, return_tensors="np")["pixel_values"][0]
        np.testing.assert_allclose(clip_image.preprocess(rgb, 64), theirs, atol=1e-6, rtol=0)


# ---- it matches pictures and words -------------------------------------------------------------

def test_zero_shot_on_fresh_pictures_reaches_the_stated_figures(model):
    got = train_clip.zero_shot(model, seed=ZERO_SHOT_SEED, n=ZERO_SHOT_PICTURES)
    assert all(got[k] >= v for k, v in STATED.items()), got


def test_training_is_deterministic_and_the_loss_spreads_over_fitting_pairs():
    assert_training_is_deterministic(train_clip, clip_model)
    pictures = shapes.draw_batch(1, 3)
    said = [(pictures[0].size, None, None), (None, pictures[1].colour, pictures[1].shape), (None, None, "star")]
    fit = train_clip.fits(pictures, said)
    brute = [[all(w is None or w == getattr(p, a) for w, a in zip(s, train_clip.ATTRIBUTES)) for s in said]
             for p in pictures]
    assert fit.tolist() == brute and fit[0, 0] and fit[1, 1]


# ---- the command line ------------------------------------------------------------------------

def test_similarity_prints_scaled_cosines_and_their_softmax(capsys, model):
    from llmviz.scenes.vit_live import sample_path

    args = ["similarity", "--image", str(sample_path("star.png")), "--json"]
    assert main([*args, *[x for c in CAPTIONS for x in ("--text", c)]]) == 0
    out = json.loads(capsys.readouterr().out)
    rgb = clip_image.read_image(str(sample_path("star.png")))
    hf = _theirs(model, clip_image.preprocess(rgb, 64)[None], CAPTIONS)   # transformers' own forward
    np.testing.assert_allclose([c["logit"] for c in out["captions"]], hf.logits_per_image[0], atol=1e-4)
    np.testing.assert_allclose([c["probability"] for c in out["captions"]], hf.logits_per_image[0].softmax(-1),
                               atol=1e-5)
    assert out["captions"][0]["tokens"] == ["<start>", "a", "small", "red", "star", "<end>"]


@pytest.mark.parametrize("args, says", [
    (["--model", "clip-huge", "--text", "a star"], "unknown model"),
    (["--text", "a purple dog"], "unknown word 'dog'"),
    (["--text", "a a a a a a a star"], "at most 6 fit"),
    (["--text", "  "], "has no words"),
])
def test_bad_captions_and_models_are_one_line_and_exit_2(capsys, args, says):
    from llmviz.scenes.vit_live import sample_path

    assert main(["similarity", "--image", str(sample_path("star.png")), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err, err


def test_bad_pictures_are_one_line(tmp_path, capsys):
    (tmp_path / "text.png").write_bytes(b"not a picture")
    assert main(["similarity", "--image", str(tmp_path / "text.png"), "--text", "a star"]) == 2
    assert main(["similarity", "--image", str(tmp_path / "missing.png"), "--text", "a star"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "not a PNG or JPEG" in lines[0] and "cannot read" in lines[1]


# ---- the hover ------------------------------------------------------------------------------

def test_hover_recomputes_every_traced_cell_it_explains(model):
    from llmviz.scenes import clip_dataflow

    tr = clip_trace.trace(model, clip_image.preprocess(_pictures(8, 1)[0], 64), "a large green ring")
    weights = clip_trace.weights(model)
    explained = 0
    for tensor_id in tr:
        array = tr[tensor_id]
        cells = ([(0, 0), (array.shape[0] - 1, array.shape[1] - 1), (array.shape[0] // 2, 1)] if array.ndim == 2
                 else [(0, None), (array.shape[0] - 1, None)])
        for row, col in cells:
            cell = clip_dataflow.explain(tensor_id, row, col, tr, weights)
            same = np.isclose(cell.recomputed, cell.value, rtol=1e-4, atol=1e-5) or cell.masked
            assert same, (tensor_id, row, col, cell.formula)
            assert all(s.tensor_id in tr or s.tensor_id in weights for s in cell.sources), tensor_id
            explained += 1
    assert explained > 400
    cos = float(tr["contrast.image"] @ tr["contrast.text"])
    logit = clip_dataflow.explain("contrast.logits", 0, None, tr, weights)
    assert np.isclose(logit.value, cos * np.exp(weights["logit_scale"][0]), rtol=1e-5)
    patch = clip_dataflow.explain("vision.embed.patch", 3, 2, tr, weights)
    assert np.isclose(patch.value, tr["vision.patches"][3] @ weights["vision.embed.patch.weight"][2], rtol=1e-4)
