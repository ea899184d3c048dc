"""induction-2l against transformers on its shipped weights: the tiled long pass computes transformers'
logits; the induction behaviour holds 64 times beyond the training length; training is deterministic;
export-hf gives a folder transformers loads as SmolLM3ForCausalLM with the same logits."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from llmviz.models.sim import induction_model, induction_task, long_attention, train_induction  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    return induction_model.load_induction()


def test_tiled_forward_equals_transformers_in_float64(model):
    """float64 (transformers' SDPA keeps the dtype; eager rounds its softmax to float32): within 1e-5."""
    tokens, _ = induction_task.long_sequence(2048)
    reference = induction_model.load_induction().double()
    reference.set_attn_implementation("sdpa")
    with torch.inference_mode():
        expected = reference(torch.from_numpy(tokens)[None]).logits[0]
    weights = long_attention.ModelWeights.from_model(reference, torch.float64)
    ours = long_attention.run(weights, tokens, heads=[], keep_logits=True, tile=256).logits
    assert (ours - expected).abs().max().item() < 1e-5


def test_tiled_forward_float32_and_attention_weights_match_transformers(model):
    """float32 as shipped: logits to float32's own noise (transformers float32 vs float64 differ by ~4e-5 on
    these weights), and every attention probability of both layers to transformers' eager weights."""
    tokens, _ = induction_task.long_sequence(1024, seed=7)
    with torch.inference_mode():
        out = model(torch.from_numpy(tokens)[None], output_attentions=True)
    weights = long_attention.ModelWeights.from_model(model)
    for layer in (0, 1):
        ours = long_attention.run(weights, tokens, heads=[], layer=layer, keep_logits=True, tile=256)
        assert (ours.logits - out.logits[0]).abs().max().item() < 2e-4
        for head in range(weights.cfg.n_heads):
            full = ours.block(head, 0, 1024, 0, 1024)
            np.testing.assert_allclose(full, out.attentions[layer][0, head].numpy(), atol=1e-5)


def test_induction_holds_far_beyond_the_training_length(model):
    """At 16,384 tokens (64 x the 256 trained on) the recurring spans are still predicted; the positions no
    copy determines (random words) stay at chance: the accuracy comes from looking back, not from guessing."""
    length = 64 * train_induction.CONTEXT
    tokens, predictable = induction_task.long_sequence(length)
    result = long_attention.run(long_attention.ModelWeights.from_model(model), tokens, heads=[])
    accuracy = induction_task.accuracy(result.predicted, tokens, predictable)
    random_words = ~predictable
    random_words[-1] = False
    chance = float((result.predicted[:-1][random_words[:-1]] == tokens[1:][random_words[:-1]]).mean())
    assert accuracy > 0.6
    assert chance < 0.02


def test_training_is_deterministic_for_a_seed(tmp_path):
    files = []
    for run in range(2):
        result = train_induction.train(seed=3, steps=2, log=lambda line: None, report=False)
        path = tmp_path / f"run{run}.safetensors"
        induction_model.save_safetensors(result.model, path, {"seed": 3, "steps": 2})
        files.append(path.read_bytes())
    assert files[0] == files[1]


def test_export_hf_loads_as_smollm3_with_the_same_logits(tmp_path, model):
    from transformers import AutoModelForCausalLM

    from llmviz.models.export_hf import export

    exported = export("induction-2l", tmp_path / "out")
    config = json.loads((exported.folder / "config.json").read_text())
    assert config["architectures"] == ["SmolLM3ForCausalLM"]
    assert config["no_rope_layers"] == [1, 0] and config["layer_types"] == ["sliding_attention", "full_attention"]
    hf = AutoModelForCausalLM.from_pretrained(exported.folder, attn_implementation="eager").eval()
    tokens = torch.from_numpy(induction_task.long_sequence(300, seed=11)[0])[None]
    with torch.inference_mode():
        assert torch.allclose(hf(tokens).logits, model(tokens).logits, atol=1e-5)


def test_temperature_tuning_equals_transformers_with_llama4s_query_scale():
    """The optional Llama 4 rule: layer 1's queries times 1 + S ln(1 + floor((p + 1) / 256)), applied here to
    transformers' own q_proj output by a hook (float64, SDPA): the tiled pass computes the same logits."""
    tokens, _ = induction_task.long_sequence(1500, seed=3)
    reference = induction_model.load_induction().double()
    reference.set_attn_implementation("sdpa")
    positions = torch.arange(len(tokens), dtype=torch.float64)
    scale = 1 + 0.3 * torch.log1p(torch.floor((positions + 1) / 256))
    hook = reference.model.layers[1].self_attn.q_proj.register_forward_hook(
        lambda module, args, out: out * scale[None, :, None])
    with torch.inference_mode():
        expected = reference(torch.from_numpy(tokens)[None]).logits[0]
    hook.remove()
    weights = long_attention.ModelWeights.from_model(reference, torch.float64)
    ours = long_attention.run(weights, tokens, heads=[], keep_logits=True, tile=256, query_temperature=0.3).logits
    plain = long_attention.run(weights, tokens, heads=[], keep_logits=True, tile=256).logits
    assert (ours - expected).abs().max().item() < 1e-5
    assert (plain - expected).abs().max().item() > 1e-3   # the rule does change the model's forward
