"""`llmviz models` shows each model's main stack and lists every stack and buffer: checked against
transformers' own configs and modules for the same models (built on the meta device, offline)."""
import json
import subprocess
import sys

import pytest

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


def models_json():
    proc = subprocess.run([sys.executable, "-m", "llmviz.scenes.cli.main", "models", "--json"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return {row["id"]: row for row in json.loads(proc.stdout)}


def test_clip_shows_its_vision_tower_as_the_main_stack_and_its_text_tower_second():
    rows = models_json()
    clip = rows["clip-vit-l-14"]
    # ViT-L/14 as transformers' CLIP configuration describes it.
    vision = transformers.CLIPVisionConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                           patch_size=14, image_size=224)
    text = transformers.CLIPTextConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12)
    stacks = {s["role"]: s for s in clip["stacks"]}
    main = next(s for s in clip["stacks"] if s["name"] == clip["main_stack"])
    assert (main["layers"], main["width"], main["heads"]) == (vision.num_hidden_layers, vision.hidden_size,
                                                             vision.num_attention_heads)
    assert main["tokens"] == (vision.image_size // vision.patch_size) ** 2 + 1  # patches + [CLS]
    assert (stacks["text-encoder"]["layers"], stacks["text-encoder"]["width"]) == (text.num_hidden_layers,
                                                                                  text.hidden_size)
    table = subprocess.run([sys.executable, "-m", "llmviz.scenes.cli.main", "models"], capture_output=True,
                           text=True, timeout=120).stdout
    line = next(line for line in table.splitlines() if line.startswith("clip-vit-l-14"))
    assert " 24 " in line and " 1024 " in line and " 16 " in line


def test_whisper_lists_its_encoder_positions_as_a_buffer_with_transformers_shape():
    rows = models_json()
    whisper = rows["whisper-base"]
    config = transformers.WhisperConfig(d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
                                        decoder_attention_heads=8, max_source_positions=1500)
    with torch.device("meta"):
        model = transformers.WhisperModel(config)
    table = model.encoder.embed_positions.weight
    assert not table.requires_grad  # frozen in transformers too: a buffer, not a parameter
    [buffer] = whisper["buffers"]
    assert buffer["shape"] == list(table.shape)
    assert {s["role"] for s in whisper["stacks"]} >= {"decoder", "audio-encoder"}


def test_every_row_has_stacks_and_a_main_stack_among_them():
    for model_id, row in models_json().items():
        assert row["stacks"], model_id
        assert row["main_stack"] in {s["name"] for s in row["stacks"]}, model_id
        assert isinstance(row["buffers"], list)


def test_deepseek_lists_its_router_selection_bias_as_a_buffer_not_a_parameter():
    """transformers' DeepseekV3Config defaults are DeepSeek-V3's own: 61 layers, the first 3 dense, 256
    routed experts; its model holds e_score_correction_bias as a buffer, one per MoE layer."""
    from llmviz.models.params import count_params
    from llmviz.models.registry import builtin_specs

    config = transformers.DeepseekV3Config()
    rows = models_json()
    [buffer] = [b for b in rows["deepseek-v3"]["buffers"] if b["name"] == "router selection bias"]
    moe_layers = config.num_hidden_layers - config.first_k_dense_replace
    assert buffer["shape"] == [moe_layers, config.n_routed_experts]
    spec = next(s for s in builtin_specs() if s.id == "deepseek-v3")
    without_bias = spec.architecture.moe.__class__(**{**vars(spec.architecture.moe), "router_bias": False})
    plain = spec.__class__(**{**vars(spec), "architecture": spec.architecture.__class__(
        **{**vars(spec.architecture), "moe": without_bias})})
    assert count_params(spec).total == count_params(plain).total  # the bias adds no parameter
