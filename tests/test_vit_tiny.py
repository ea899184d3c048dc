"""vit-tiny: the shipped weights are a transformers ViTForImageClassification, llmviz's traced forward
(models/sim/vit_trace.py) computes what transformers computes, the exported folder loads in transformers
with its image processor, preprocessing equals ViTImageProcessor's, rollout equals a loop written here,
the classifier reaches its stated accuracy on fresh pictures, training is deterministic, and bad pictures
are one line."""
import io
import json
import struct
import zlib

import numpy as np
import pytest
from tiny_model_support import (assert_damaged_file_is_refused, assert_every_array_names_its_axes,
                                assert_ids_are_the_blocks, assert_models_command_lists, assert_spec_counts_every_parameter,
                                assert_state_shapes_are_transformers, assert_training_is_deterministic, close,
                                layout_blocks, model_fixture, spec_fixture, torch, transformers)

from llmviz.models.sim import shapes, train_vit, vit_image, vit_model, vit_trace
from llmviz.scenes.cli.main import main

# The accuracy the shipped weights are held to on fresh pictures: measured 97.3% on these 300 through transformers'
# forward (96.7% on the 1,000 of `llmviz train`'s report, README and BENCHMARKS), less a margin: the issue's 95%.
STATED_ACCURACY = 0.95
ACCURACY_PICTURES, ACCURACY_SEED = 300, 777

model = model_fixture(vit_model.load_vit)
spec = spec_fixture("vit-tiny")


def _pictures(seed: int, n: int) -> np.ndarray:
    return np.stack([p.pixels for p in shapes.draw_batch(seed, n)])


def _astronaut() -> np.ndarray:
    from llmviz.scenes.vit_live import sample_path

    return vit_image.read_image(str(sample_path("astronaut.jpg")))


# ---- the weights are transformers' model ---------------------------------------------------

def test_shipped_weights_are_a_vit_for_image_classification(model):
    assert type(model) is transformers.ViTForImageClassification
    cfg = model.config
    assert (cfg.image_size, cfg.patch_size, cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads) == \
        (64, 4, 64, 2, 4)
    assert [cfg.id2label[i] for i in range(cfg.num_labels)] == list(shapes.SHAPES)
    assert (cfg.image_size // cfg.patch_size) ** 2 + 1 == 257


def test_state_shapes_are_transformers_names_and_shapes(model):
    assert_state_shapes_are_transformers(vit_model, model)


def test_the_spec_counts_every_parameter_and_models_lists_it(capsys, model, spec):
    assert_spec_counts_every_parameter(spec, model, at_most=200_000)
    assert "trained by llmviz (llmviz train vit-tiny)" in spec.sources
    assert_models_command_lists(capsys, "vit-tiny", model)


def test_a_damaged_weights_file_is_refused_in_one_line(tmp_path, model):
    assert_damaged_file_is_refused(tmp_path, vit_model.load_vit, vit_model.state_tensors(model),
                                   "vit.layers.0.mlp.fc1.weight", np.s_[:, :8], "vit-tiny", n_layers=2)


# ---- the trace computes what transformers computes --------------------------------------------

def test_trace_equals_transformers_logits_hidden_states_and_attention(model):
    pixels = vit_image.preprocess_batch(_pictures(11, 3))
    with torch.inference_mode():
        theirs = model(pixel_values=torch.from_numpy(pixels), output_hidden_states=True, output_attentions=True)
        fused = vit_trace.forward(model, torch.from_numpy(pixels))   # the training path (fused attention)
    close(fused, theirs.logits, "fused forward's logits")
    for row in range(3):
        tr = vit_trace.trace(model, pixels[row])
        close(tr["classifier.fc1"], theirs.logits[row], "logits")
        close(tr["probs"], torch.softmax(theirs.logits[row], -1), "probs")
        close(tr["embed.out"], theirs.hidden_states[0][row], "embeddings")
        for b in range(2):
            close(tr[f"blocks.{b}.resid2"], theirs.hidden_states[b + 1][row], f"layer {b} output")
            for h in range(4):
                close(tr[f"blocks.{b}.attn.head.{h}.softmax"], theirs.attentions[b][row, h], f"attention {b}.{h}")


def test_trace_ids_are_the_layout_blocks(model, spec):
    tr = vit_trace.trace(model, vit_image.preprocess(_pictures(5, 1)[0], 64))
    weights = vit_trace.weights(model)
    assert_every_array_names_its_axes(tr)
    assert_every_array_names_its_axes(weights)
    assert_ids_are_the_blocks(set(tr) | set(weights), layout_blocks(spec, 257), tr, weights)
    # the patch embedding is the patch conv: patches · W_patchᵀ + b
    close(tr["patches"] @ weights["embed.patch.weight"].T + weights["embed.patch.bias"], tr["embed.patch"],
          "patch embedding", atol=1e-5, rtol=1e-4)


# ---- the exported folder -------------------------------------------------------------------

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from llmviz.models.export_hf import export

    folder = tmp_path_factory.mktemp("vit") / "vit-tiny"
    done = export("vit-tiny", folder)
    assert "AutoModelForImageClassification" in done.load_line
    return folder


def test_the_export_loads_in_transformers_and_gives_our_logits_and_hidden_states(exported, model):
    assert sorted(p.name for p in exported.iterdir()) == ["config.json", "model.safetensors",
                                                          "preprocessor_config.json"]
    loaded, info = transformers.ViTForImageClassification.from_pretrained(str(exported), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    auto = transformers.AutoModelForImageClassification.from_pretrained(str(exported))
    assert type(auto) is transformers.ViTForImageClassification
    pixels = vit_image.preprocess_batch(_pictures(21, 2))
    with torch.inference_mode():
        theirs = loaded.eval()(pixel_values=torch.from_numpy(pixels), output_hidden_states=True)
    for row in range(2):
        tr = vit_trace.trace(model, pixels[row])
        close(tr["classifier.fc1"], theirs.logits[row], "exported logits")
        for b in range(3):
            close(tr["embed.out" if b == 0 else f"blocks.{b - 1}.resid2"], theirs.hidden_states[b][row],
                  f"exported hidden state {b}")
    assert loaded.config.id2label[3] == "star"


def test_preprocessing_equals_the_exported_image_processor(exported):
    processor = transformers.AutoImageProcessor.from_pretrained(str(exported))
    wide = np.asarray(np.random.default_rng(0).integers(0, 256, (37, 90, 3)), np.uint8)
    for rgb in (_astronaut(), _pictures(3, 1)[0], wide):
        theirs = processor(images=rgb, return_tensors="np")["pixel_values"][0]
        np.testing.assert_allclose(vit_image.preprocess(rgb, 64), theirs, atol=1e-6, rtol=0)


# ---- what the attention looks at -------------------------------------------------------------

def test_rollout_equals_a_loop_over_the_attention_matrices(model):
    tr = vit_trace.trace(model, vit_image.preprocess(_astronaut(), 64))
    t = tr["embed.out"].shape[0]
    joint = np.eye(t)
    for b in range(2):
        mean = sum(np.asarray(tr[f"blocks.{b}.attn.head.{h}.softmax"], np.float64) for h in range(4)) / 4
        step = np.zeros((t, t))
        for i in range(t):                       # add the identity, renormalise each row
            row = mean[i] + np.eye(t)[i]
            step[i] = row / row.sum()
        joint = step @ joint
    np.testing.assert_allclose(vit_trace.rollout(tr), joint, atol=1e-9)
    heat = vit_trace.cls_map(vit_trace.rollout(tr), 16)
    assert heat.shape == (16, 16) and np.isclose(heat.sum() + vit_trace.rollout(tr)[0, 0], 1.0)


# ---- it classifies -------------------------------------------------------------------------

def test_accuracy_on_fresh_pictures_reaches_the_stated_figure(model):
    # through transformers' own forward, not llmviz's trace: the figure is the model's, whoever computes it
    pictures = shapes.draw_batch(ACCURACY_SEED, ACCURACY_PICTURES)
    with torch.inference_mode():
        logits = model(pixel_values=torch.from_numpy(vit_image.preprocess_batch(np.stack([p.pixels for p in pictures]))))
    right = logits.logits.argmax(-1).numpy() == np.array([p.label for p in pictures])
    assert right.mean() >= STATED_ACCURACY


def test_half_resolution_training_forward_is_a_32_pixel_vit(model):
    # training's first steps (train_vit.half_resolution_logits) against transformers' own ViT built for
    # 32-pixel pictures, its 8 x 8 positions set to the means of the 64-pixel model's 2 x 2 blocks
    small = vit_model.build_model({"image_size": 32})
    state = {k: v.clone() for k, v in model.state_dict().items()}
    positions = state["vit.embeddings.position_embeddings"][0]
    grid = positions[1:].reshape(8, 2, 8, 2, -1).mean(dim=(1, 3)).reshape(64, -1)
    state["vit.embeddings.position_embeddings"] = torch.cat([positions[:1], grid])[None]
    small.load_state_dict(state)
    pixels = torch.from_numpy(vit_image.preprocess_batch(_pictures(13, 3)))
    half = torch.nn.functional.avg_pool2d(pixels, 2)
    with torch.inference_mode():
        ours = train_vit.half_resolution_logits(model, half)
        theirs = small(pixel_values=half).logits
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-5, rtol=0)


def test_training_is_deterministic():
    assert_training_is_deterministic(train_vit, vit_model)


# ---- the command line ------------------------------------------------------------------------

def test_classify_prints_top_classes_and_the_grid(capsys, model):
    from llmviz.scenes.vit_live import sample_path

    path = str(sample_path("star.png"))
    assert main(["classify", "--model", "vit-tiny", "--image", path, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["patch_grid"] == [16, 16] and out["tokens"] == 257
    # the top class is transformers' own answer on the picture (right or wrong: the model is not perfect)
    with torch.inference_mode():
        theirs = model(pixel_values=torch.from_numpy(vit_image.preprocess(vit_image.read_image(path), 64)[None]))
    assert out["classes"][0]["label"] == shapes.SHAPES[int(theirs.logits.argmax())]
    assert np.isclose(out["classes"][0]["probability"], float(theirs.logits.softmax(-1).max()), atol=1e-5)
    assert np.isclose(sum(c["probability"] for c in out["classes"]), 1.0)


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header says width × height (CRCs right), with a few bytes of pixel data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b""))


def _truncated_png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(_pictures(1, 1)[0]).save(out, format="PNG")
    return out.getvalue()[:-200]


@pytest.mark.parametrize("name, data, says", [
    ("huge.png", _png_header(20000, 20000), "pixels than the 50,000,000 allowed"),
    ("big.png", _png_header(10000, 6000), "10000 x 6000 pixels is more than"),
    ("cut.png", _truncated_png(), "truncated"),
    ("text.png", b"not a picture at all", "not a PNG or JPEG"),
])
def test_bad_pictures_are_one_line_and_exit_2(tmp_path, capsys, name, data, says):
    path = tmp_path / name
    path.write_bytes(data)
    assert main(["classify", "--image", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err, err


def test_an_unknown_model_or_missing_file_is_one_line(tmp_path, capsys):
    assert main(["classify", "--model", "vit-huge", "--image", "x.png"]) == 2
    assert main(["classify", "--image", str(tmp_path / "missing.png")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "unknown model" in lines[0] and "cannot read" in lines[1]


def test_hover_recomputes_every_traced_cell_it_explains(model):
    from llmviz.scenes import dataflow

    tr = vit_trace.trace(model, vit_image.preprocess(_pictures(8, 1)[0], 64))
    weights = vit_trace.weights(model)
    assert dataflow.model_shape(tr).family == "vit"
    explained = 0
    for tensor_id in tr:
        array = tr[tensor_id]
        if array.ndim != 2 or tensor_id in ("embed.pos",):
            continue
        for row, col in ((0, 0), (array.shape[0] - 1, array.shape[1] - 1), (array.shape[0] // 2, 1)):
            cell = dataflow.explain(tensor_id, row, col, tr, weights)
            assert np.isclose(cell.recomputed, cell.value, rtol=1e-4, atol=1e-5), (tensor_id, row, col, cell.formula)
            explained += 1
    assert explained > 100
    assert "[CLS]" in dataflow.explain("embed.out", 0, 0, tr, weights).formula
