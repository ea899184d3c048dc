"""llava-tiny: the shipped weights are a transformers LlavaForConditionalGeneration, llmviz's traced forward
(models/sim/llava_trace.py) computes what transformers computes, the exported folder (weights, config, word-level
tokenizer, processor) loads in transformers and gives our logits, hidden states and greedy answer, preprocessing
equals the exported processor's, training is deterministic, `llmviz ask` answers and refuses bad input in one
line, the live session generates token by token, and the hover recomputes every cell it explains."""
import json

import numpy as np
import pytest
from tiny_model_support import (assert_every_array_names_its_axes, assert_ids_are_the_blocks,
                                assert_spec_counts_every_parameter, assert_state_shapes_are_transformers,
                                assert_training_is_deterministic, close, layout_blocks, model_fixture, spec_fixture,
                                torch, transformers)

from llmviz.models.sim import llava_model, llava_trace, llava_vocab, shapes, train_llava, vit_image
from llmviz.scenes.cli.main import main
from llmviz.scenes.vit_live import sample_path

# What the shipped weights are held to on fresh pictures: measured 100% (colour), 79% (shape) and 71% (describe)
# on these 100 (seed 777), less a margin; `llmviz train`'s report on 300 others says 100%, 79.0% and 67.3%
# (BENCHMARKS).
STATED = {"colour": 0.95, "shape": 0.72, "describe": 0.62}

model = model_fixture(llava_model.load_llava)
spec = spec_fixture("llava-tiny")
QUESTION = llava_vocab.question_ids("what shape is it?")


def _pictures(seed: int, n: int) -> np.ndarray:
    return np.stack([p.pixels for p in shapes.draw_batch(seed, n)])


def _ids(model, answer=()):
    return llava_trace.sequence(model, QUESTION, list(answer))


# ---- the weights are transformers' model ---------------------------------------------------

def test_shipped_weights_are_a_llava_with_a_clip_tower_and_a_llama(model, spec):
    assert type(model) is transformers.LlavaForConditionalGeneration
    assert type(model.model.vision_tower) is transformers.CLIPVisionModel
    assert type(model.model.language_model) is transformers.LlamaModel
    v = model.config.vision_config
    assert (v.image_size // v.patch_size) ** 2 == model.config.image_seq_length == 256
    assert model.config.vision_feature_layer == -2 and model.config.vision_feature_select_strategy == "default"
    assert_state_shapes_are_transformers(llava_model, model)
    assert_spec_counts_every_parameter(spec, model, at_most=200_000)


# ---- the trace computes what transformers computes --------------------------------------------

def _traced64(model, pixels: np.ndarray, ids) -> dict:
    """llava_trace.forward's record of one picture in float64 (model a float64 copy): transformers and ours then
    agree to rounding, float32's summation-order noise (1e-5 on logits near 10) out of the way."""
    got = {}
    with torch.inference_mode():
        llava_trace.forward(model, torch.from_numpy(np.asarray(pixels, np.float64))[None], torch.tensor([ids]),
                            record=got.__setitem__)
    return {k: v.detach().numpy() for k, v in got.items()}


@pytest.fixture(scope="module")
def model64(model):
    import copy

    return copy.deepcopy(model).double()


def test_trace_equals_transformers_logits_and_hidden_states(model, model64):
    pixels = vit_image.preprocess_batch(_pictures(11, 2))
    ids = torch.tensor([_ids(model, [llava_vocab.WORD_ID["star"]])] * 2)
    with torch.inference_mode():
        fused = llava_trace.forward(model, torch.from_numpy(pixels), ids)   # the training path (fused attention)
        theirs32 = model(input_ids=ids, pixel_values=torch.from_numpy(pixels)).logits
        px64 = torch.from_numpy(pixels).double()
        theirs = model64(input_ids=ids, pixel_values=px64, output_hidden_states=True)
        tower = model64.model.vision_tower(px64, output_hidden_states=True)
    close(fused, theirs32, "fused float32 forward's logits (SDPA sums in its own order)", atol=1e-4, rtol=1e-4)
    close(llava_trace.trace(model, pixels[0], ids[0].tolist())["logits"], theirs32[0], "float32 trace",
          atol=1e-4, rtol=1e-4)
    for row in range(2):
        tr = _traced64(model64, pixels[row], ids[row].tolist())
        close(tr["logits"], theirs.logits[row], "logits")
        close(tr["vision.ln0.out"], tower.hidden_states[0][row], "the tower's embeddings after pre-LayerNorm")
        for b in range(2):
            close(tr[f"vision.blocks.{b}.resid2"], tower.hidden_states[b + 1][row], f"tower layer {b}")
        close(tr["embed.out"], theirs.hidden_states[0][row], "the decoder's input: image tokens, then text")
        close(tr["blocks.0.resid2"], theirs.hidden_states[1][row], "decoder layer 0")
        close(tr["ln_f.out"], theirs.hidden_states[2][row], "decoder after the final norm")


def test_trace_ids_are_the_layout_blocks(model, spec):
    tr = llava_trace.trace(model, vit_image.preprocess(_pictures(5, 1)[0], 64), _ids(model))
    weights = llava_trace.weights(model)
    assert_every_array_names_its_axes(tr)
    assert_every_array_names_its_axes(weights)
    blocks = layout_blocks(spec, len(_ids(model)) - 256)
    # CLIP's post-LayerNorm reads [CLS] alone: its block has a row per token, the trace one row
    for name in ("mean", "std", "out"):
        assert tr[f"vision.ln_f.{name}"].shape[0] == 1 and blocks.pop(f"vision.ln_f.{name}")[0] == 257
    drawn = set(tr) | set(weights)
    assert_ids_are_the_blocks(drawn - {f"vision.ln_f.{n}" for n in ("mean", "std", "out")}, blocks, tr, weights)


# ---- the exported folder -------------------------------------------------------------------

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from llmviz.models.export_hf import export

    folder = tmp_path_factory.mktemp("llava") / "llava-tiny"
    export("llava-tiny", folder)
    return folder


def test_the_export_gives_our_logits_hidden_states_and_greedy_answer(exported, model, model64):
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "tokenizer.json",
            "tokenizer_config.json", "processor_config.json"} <= {p.name for p in exported.iterdir()}
    loaded, info = transformers.AutoModelForImageTextToText.from_pretrained(
        str(exported), output_loading_info=True, attn_implementation="eager")
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    processor = transformers.AutoProcessor.from_pretrained(str(exported))
    for name in ("star.png", "ring.png"):
        rgb = vit_image.read_image(str(sample_path(name)))
        inputs = processor(images=rgb, text=llava_vocab.prompt_text("what shape is it?"), return_tensors="pt")
        pixels = vit_image.preprocess(rgb, 64)
        assert inputs["input_ids"][0].tolist() == _ids(model)   # the tokenizer and the 256 image tokens
        with torch.inference_mode():
            generated = loaded.eval().generate(**inputs, max_new_tokens=llava_vocab.MAX_ANSWER_TOKENS, do_sample=False)
            theirs = loaded.double()(input_ids=inputs["input_ids"], pixel_values=inputs["pixel_values"].double(),
                                     output_hidden_states=True)
            loaded.float()
        tr = _traced64(model64, pixels, _ids(model))
        close(tr["logits"], theirs.logits[0], "exported logits", atol=1e-5, rtol=1e-5)
        for b, state in enumerate(theirs.hidden_states[:2]):
            close(tr["embed.out" if b == 0 else f"blocks.{b - 1}.resid2"], state[0], f"exported hidden state {b}",
                  atol=1e-5, rtol=1e-5)
        ours = [t for t, _ in llava_trace.greedy_answer(model, pixels, QUESTION)]
        assert generated[0, inputs["input_ids"].shape[1]:].tolist()[:len(ours)] == ours


def test_preprocessing_equals_the_exported_processor(exported):
    processor = transformers.AutoProcessor.from_pretrained(str(exported))
    wide = np.asarray(np.random.default_rng(0).integers(0, 256, (37, 90, 3)), np.uint8)
    for rgb in (vit_image.read_image(str(sample_path("astronaut.jpg"))), _pictures(3, 1)[0], wide):
        theirs = processor(images=rgb, text=llava_vocab.prompt_text("describe it"), return_tensors="np")
        np.testing.assert_allclose(vit_image.preprocess(rgb, 64), theirs["pixel_values"][0], atol=1e-6, rtol=0)


# ---- what it answers, how it was trained ----------------------------------------------------

def test_answers_on_fresh_pictures_reach_the_stated_figures(model):
    acc = train_llava.accuracy(model, seed=777, n=100)
    for kind, least in STATED.items():
        assert acc[kind] >= least, (kind, acc)


def test_a_conversation_labels_only_the_answers():
    stream = train_llava.ConversationStream(0, 256)
    picture = shapes.draw_batch(1, 1)[0]
    ids, labels = stream.sample(picture)
    assert len(ids) == len(labels) == 256 + 3 * 11
    taught = [(llava_vocab.WORDS[ids[i]], llava_vocab.WORDS[t]) for i, t in enumerate(labels) if t != train_llava.IGNORE]
    # every answer word follows the position before it, and each answer ends in </s>
    assert [w for _, w in taught].count(llava_vocab.EOS) == 3
    assert (":", picture.shape) in taught and (":", picture.colour) in taught and ("a", picture.size) in taught


def test_training_is_deterministic():
    assert_training_is_deterministic(train_llava, llava_model)


# ---- the command line ------------------------------------------------------------------------

def test_ask_prints_the_answer_with_its_probabilities(capsys, model):
    assert main(["ask", "--image", str(sample_path("star.png")), "--question", "What colour is it?", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    pixels = vit_image.preprocess(vit_image.read_image(str(sample_path("star.png"))), 64)
    ours = llava_trace.greedy_answer(model, pixels, llava_vocab.question_ids("what colour is it?"))
    assert [t["token"] for t in out["tokens"]] == [llava_vocab.WORDS[t] for t, _ in ours]
    assert np.allclose([t["probability"] for t in out["tokens"]], [p for _, p in ours], atol=1e-6)
    assert out["image_tokens"] == 256 and out["prompt_tokens"] == 256 + 9


@pytest.mark.parametrize("args, says", [
    (["--model", "llava-huge", "--question", "describe it"], "unknown model"),
    (["--question", "what size is it?"], "unknown word 'size'"),
    (["--question", " ".join(["it"] * 9)], "9 words"),
    (["--question", "?" * 300], "characters"),
])
def test_bad_questions_and_models_are_one_line(capsys, args, says):
    assert main(["ask", "--image", str(sample_path("star.png")), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err, err


@pytest.mark.parametrize("data, says", [(b"not a picture at all", "not a PNG or JPEG"), (None, "cannot read")])
def test_bad_pictures_are_one_line(tmp_path, capsys, data, says):
    path = tmp_path / "bad.png"
    if data is not None:
        path.write_bytes(data)
    assert main(["ask", "--image", str(path), "--question", "describe it"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err, err


# ---- live, and the hover ---------------------------------------------------------------------

def test_the_live_session_answers_token_by_token_as_the_greedy_answer(model):
    from llmviz.scenes.llava_live import LiveLlava

    live = LiveLlava(None, None, image_path=str(sample_path("ring.png")), question="describe it")
    try:
        assert live.wait(60.0) and live.error is None
        pixels = vit_image.preprocess(vit_image.read_image(str(sample_path("ring.png"))), 64)
        ours = llava_trace.greedy_answer(model, pixels, llava_vocab.question_ids("describe it"))
        assert [t for t, _ in live.answer] == [t for t, _ in ours]
        assert live.trace_answer() == [t for t, _ in ours]
        heat = live.heat()
        row = live.query_row(None)
        manual = np.mean([live.trace[f"blocks.{b}.attn.head.{h}.softmax"][row, :256] for b in range(2) for h in range(4)], 0)
        close(heat.ravel(), manual, "patch attention")
        assert live.set_question("what size is it?").startswith("unknown word")
    finally:
        live.close()


def test_hover_recomputes_every_traced_cell_it_explains(model):
    from llmviz.scenes import dataflow

    ids = _ids(model, [llava_vocab.WORD_ID["a"]])
    tr = llava_trace.trace(model, vit_image.preprocess(_pictures(8, 1)[0], 64), ids)
    weights = llava_trace.weights(model)
    assert dataflow.model_shape(tr).family == "llava"
    explained = 0
    for tensor_id in tr:
        array = tr[tensor_id]
        cells = [(0, 0), (array.shape[0] - 1, array.shape[-1] - 1), (array.shape[0] // 2, 1)]
        if tensor_id in ("embed.out", "blocks.1.ln1.out"):   # both sides of the image / text border
            cells += [(255, 3), (256, 3), (len(ids) - 1, 5)]
        for row, col in cells:
            cell = dataflow.explain(tensor_id, row, col if array.ndim == 2 else None, tr, weights)
            assert np.isclose(cell.recomputed, cell.value, rtol=1e-4, atol=1e-5), (tensor_id, row, col, cell.formula)
            explained += 1
    assert explained > 300
    assert "image token 0" in dataflow.explain("embed.out", 0, 0, tr, weights).formula
    assert "text token" in dataflow.explain("embed.out", 256, 0, tr, weights).formula
    assert "RoPE" in dataflow.explain("blocks.0.attn.head.1.q_rope", 7, 3, tr, weights).formula
