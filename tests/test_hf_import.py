"""`llmviz models --import-config`: Hugging Face config.json files made by transformers' own config
classes (odd small sizes, every family), imported, and counted against the transformers model
built from the same saved file on the meta device; the errors; the --add round trip.

The reference is `sum(p.numel() for p in model.parameters())` (shared, tied tensors once). The
exceptions, each taken from the transformers model itself and each said in the spec's notes:

- whisper: the encoder's sinusoidal position table is fixed (a frozen nn.Embedding in
  transformers, a buffer in openai/whisper); we count learned parameters only.
(deepseek_v3's router balancing bias, e_score_correction_bias, is a buffer here as in transformers:
`llmviz models --json` lists it under "buffers"; the counts are exact.)
- qwen2, qwen2_moe: q/k/v carry biases while o_proj and the MLP do not, and Qwen2-MoE gates its
  shared expert with a d x 1 linear; the spec format has one bias switch and no shared-expert
  gate, so neither is counted.
- qwen3_moe with mlp_only_layers making the MoE layers no range (0, 1, 3, 4): a spec's MoE layers
  are range(start, stop, step), so the dense layer between is counted as MoE.
"""
import json

import pytest

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from llmviz.models import hf_config  # noqa: E402
from llmviz.models.hf_config import MAX_CONFIG_BYTES, NESTED_DEFAULTS, default_id, import_config  # noqa: E402
from llmviz.models.params import count_params  # noqa: E402
from llmviz.models.registry import load_registry  # noqa: E402
from llmviz.models.spec import SpecError  # noqa: E402
from llmviz.scenes.cli import models_cmd  # noqa: E402
from llmviz.scenes.cli.main import main  # noqa: E402

T = transformers
V = 1003                                            # an odd vocabulary
TOKENS = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2)
DECODER = dict(hidden_size=72, intermediate_size=136, num_hidden_layers=3, num_attention_heads=6,
               num_key_value_heads=2, vocab_size=V, **TOKENS)
TOWER = dict(hidden_size=48, intermediate_size=100, num_hidden_layers=2, num_attention_heads=4,
             image_size=30, patch_size=6)
MOE = dict(num_experts=6, num_experts_per_tok=2, moe_intermediate_size=40)
MLA = dict(kv_lora_rank=20, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=10,
           moe_intermediate_size=20, n_routed_experts=6, num_experts_per_tok=2)


def named(model, *endings):
    return sum(p.numel() for n, p in model.named_parameters() if n.endswith(endings))


def frozen(model):
    return sum(p.numel() for p in model.parameters() if not p.requires_grad)



def qkv_biases(model):
    return named(model, "q_proj.bias", "k_proj.bias", "v_proj.bias")


def moe_for_dense_layer_2(model):
    # mlp_only_layers=[2] leaves MoE layers 0, 1, 3, 4: no range, so the spec counts 0-4 as MoE.
    layers = model.model.layers
    return -(sum(p.numel() for p in layers[1].mlp.parameters())
             - sum(p.numel() for p in layers[2].mlp.parameters()))


# name -> (config, transformers class that builds the model, what our count leaves out (+) or
# adds (-) relative to the model's parameters, a phrase the spec's notes must hold for it)
CASES = {
    "gpt2": (lambda: T.GPT2Config(n_layer=3, n_embd=72, n_head=6, n_positions=40, vocab_size=V,
                                  **TOKENS), "AutoModelForCausalLM", None, None),
    "gpt2-n_inner-untied": (lambda: T.GPT2Config(n_layer=3, n_embd=72, n_head=6, n_inner=100,
                                                 n_positions=40, vocab_size=V,
                                                 tie_word_embeddings=False, **TOKENS),
                            "AutoModelForCausalLM", None, None),
    "llama": (lambda: T.LlamaConfig(**DECODER), "AutoModelForCausalLM", None, None),
    "llama-biases-tied-head_dim": (lambda: T.LlamaConfig(**DECODER | dict(
        num_key_value_heads=3, head_dim=16, attention_bias=True, mlp_bias=True,
        tie_word_embeddings=True)), "AutoModelForCausalLM", None, None),
    "mistral": (lambda: T.MistralConfig(**DECODER, sliding_window=24), "AutoModelForCausalLM",
                None, None),
    "mixtral": (lambda: T.MixtralConfig(**DECODER | dict(intermediate_size=56), num_local_experts=5,
                                        num_experts_per_tok=2), "AutoModelForCausalLM", None, None),
    "qwen2": (lambda: T.Qwen2Config(**DECODER), "AutoModelForCausalLM", qkv_biases,
              "biases on the q, k, v projections only"),
    "qwen2-some-sliding": (lambda: T.Qwen2Config(**DECODER, use_sliding_window=True,
                                                 sliding_window=16, max_window_layers=1),
                           "AutoModelForCausalLM", qkv_biases, "layers 1-2 use a sliding window"),
    "qwen2_moe": (lambda: T.Qwen2MoeConfig(**DECODER | dict(num_hidden_layers=4), **MOE,
                                           shared_expert_intermediate_size=56, mlp_only_layers=[0]),
                  "AutoModelForCausalLM",
                  lambda m: qkv_biases(m) + named(m, "shared_expert_gate.weight"), "shared_expert_gate"),
    "qwen3": (lambda: T.Qwen3Config(**DECODER, head_dim=16), "AutoModelForCausalLM", None, None),
    "qwen3_moe": (lambda: T.Qwen3MoeConfig(**DECODER | dict(num_hidden_layers=5), **MOE, head_dim=16,
                                           decoder_sparse_step=2, norm_topk_prob=True),
                  "AutoModelForCausalLM", None, None),
    "qwen3_moe-irregular": (lambda: T.Qwen3MoeConfig(**DECODER | dict(num_hidden_layers=5), **MOE,
                                                     head_dim=16, mlp_only_layers=[2]),
                            "AutoModelForCausalLM", moe_for_dense_layer_2, "are no regular range"),
    "gemma": (lambda: T.GemmaConfig(**DECODER | dict(num_key_value_heads=1), head_dim=16),
              "AutoModelForCausalLM", None, None),
    "deepseek_v3": (lambda: T.DeepseekV3Config(**DECODER | dict(num_key_value_heads=6), **MLA,
                                               q_lora_rank=24, n_shared_experts=1, n_group=2,
                                               topk_group=1, first_k_dense_replace=1),
                    "AutoModelForCausalLM", None, None),
    "deepseek_v3-full-rank-q": (lambda: T.DeepseekV3Config(
        **DECODER | dict(num_key_value_heads=6), **MLA, q_lora_rank=None, n_shared_experts=2,
        n_group=3, topk_group=2, first_k_dense_replace=0),
        "AutoModelForCausalLM", None, None),
    "mamba": (lambda: T.MambaConfig(hidden_size=72, num_hidden_layers=3, vocab_size=V, state_size=6,
                                    conv_kernel=3, expand=2, time_step_rank="auto"),
              "AutoModelForCausalLM", None, None),
    "mamba2": (lambda: T.Mamba2Config(hidden_size=72, num_hidden_layers=3, vocab_size=V,
                                      state_size=10, conv_kernel=3, expand=2, head_dim=16,
                                      num_heads=9, n_groups=3, **TOKENS),
               "AutoModelForCausalLM", None, None),
    "rwkv": (lambda: T.RwkvConfig(hidden_size=72, num_hidden_layers=3, vocab_size=V,
                                  intermediate_size=200, context_length=40),
             "AutoModelForCausalLM", None, None),
    "jamba": (lambda: T.JambaConfig(**DECODER | dict(intermediate_size=56, num_hidden_layers=5),
                                    attn_layer_period=3, attn_layer_offset=1, expert_layer_period=2,
                                    expert_layer_offset=1, num_experts=3, num_experts_per_tok=2,
                                    mamba_d_state=6, mamba_d_conv=3, mamba_expand=2,
                                    mamba_dt_rank=5), "AutoModelForCausalLM", None, None),
    "vit": (lambda: T.ViTConfig(hidden_size=72, num_hidden_layers=3, num_attention_heads=6,
                                intermediate_size=136, image_size=30, patch_size=6),
            "AutoModel", None, None),
    "vit-classifier": (lambda: T.ViTConfig(hidden_size=72, num_hidden_layers=3,
                                           num_attention_heads=6, intermediate_size=136,
                                           image_size=30, patch_size=6,
                                           architectures=["ViTForImageClassification"],
                                           id2label={i: f"c{i}" for i in range(7)}),
                       "AutoModelForImageClassification", None, None),
    "clip": (lambda: T.CLIPConfig(text_config=dict(hidden_size=72, intermediate_size=136,
                                                   num_hidden_layers=3, num_attention_heads=6,
                                                   vocab_size=V, max_position_embeddings=20),
                                  vision_config=TOWER, projection_dim=40), "AutoModel", None, None),
    "whisper": (lambda: T.WhisperConfig(d_model=72, encoder_layers=2, decoder_layers=3,
                                        encoder_attention_heads=6, decoder_attention_heads=4,
                                        encoder_ffn_dim=136, decoder_ffn_dim=100, vocab_size=V,
                                        num_mel_bins=20, max_source_positions=30,
                                        max_target_positions=24, decoder_start_token_id=1,
                                        **TOKENS),
                "WhisperForConditionalGeneration", frozen, "sinusoidal position table"),
    "llava": (lambda: T.LlavaConfig(vision_config=T.CLIPVisionConfig(**TOWER),
                                    text_config=T.LlamaConfig(**DECODER), image_token_index=5),
              "LlavaForConditionalGeneration", None, None),
    "paligemma": (lambda: T.PaliGemmaConfig(
        vision_config=dict(model_type="siglip_vision_model", vision_use_head=False, **TOWER),
        text_config=dict(model_type="gemma", **DECODER | dict(num_key_value_heads=1), head_dim=16),
        projection_dim=72, image_token_index=5), "PaliGemmaForConditionalGeneration", None, None),
}
REQUIRED_TYPES = {"gpt2", "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe",
                  "deepseek_v3", "mamba", "mamba2", "rwkv", "jamba", "vit", "clip", "whisper",
                  "llava", "paligemma"}


@pytest.fixture(autouse=True)
def config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMVIZ_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path / "config"


def saved(tmp_path, name: str):
    """The case's config written by transformers' own save_pretrained into tmp_path/name."""
    folder = tmp_path / name
    CASES[name][0]().save_pretrained(folder)
    return folder


def meta_model(folder, class_name: str):
    """The transformers model for the saved config, parameters on the meta device (no memory)."""
    config = T.AutoConfig.from_pretrained(folder)
    cls = getattr(T, class_name)
    with torch.device("meta"):
        return cls.from_config(config) if class_name.startswith("Auto") else cls(config)


def test_every_required_model_type_has_a_case():
    built = {CASES[name][0]().model_type for name in CASES}
    assert REQUIRED_TYPES <= built and REQUIRED_TYPES <= set(hf_config.MODEL_TYPES)


@pytest.mark.parametrize("name", list(CASES))
def test_imported_total_matches_the_transformers_model(tmp_path, name):
    _, class_name, left_out, note = CASES[name]
    folder = saved(tmp_path, name)
    imported = import_config(folder)
    model = meta_model(folder, class_name)
    theirs = sum(p.numel() for p in model.parameters())
    difference = left_out(model) if left_out else 0
    assert count_params(imported.spec).total == theirs - difference
    if left_out:
        assert difference != 0 and note in imported.spec.notes
    assert imported.spec.kind == hf_config.MODEL_TYPES[model.config.model_type].kind
    # It can be drawn: the layout of these odd sizes agrees with the inventory the count came from.
    from llmviz.scenes.layout import layout_model
    layout_model(imported.spec)


@pytest.mark.parametrize("name", ["llama", "jamba", "rwkv", "qwen3_moe", "deepseek_v3", "mamba2"])
def test_per_layer_counts_match_the_transformers_layers(tmp_path, name):
    folder = saved(tmp_path, name)
    spec = import_config(folder).spec
    model = meta_model(folder, CASES[name][1])
    n = spec.architecture.n_layers
    layers = next(m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == n)
    for kind in models_cmd.layer_counts(spec.architecture):
        layer = layers[kind["first"]]
        theirs = sum(p.numel() for p in layer.parameters())
        assert kind["params"] == theirs, kind
    assert sum(kind["layers"] for kind in models_cmd.layer_counts(spec.architecture)) == n


def test_nested_defaults_are_transformers_own(tmp_path):
    for model_type, defaults in NESTED_DEFAULTS.items():
        config = T.AutoConfig.for_model(model_type)
        assert {key: getattr(config, key) for key in defaults} == defaults, model_type


def test_a_4x_style_minimal_nested_config_takes_the_class_defaults(tmp_path):
    # transformers 4.x saved only the non-default keys of a nested config (llava-hf configs look
    # like this); transformers fills the rest from the sub-config class, and so do we.
    folder = tmp_path / "llava-minimal"
    folder.mkdir()
    config = {"model_type": "llava", "image_token_index": 5, "vision_config": {
        "model_type": "clip_vision_model", "hidden_size": 48, "num_hidden_layers": 2,
        "num_attention_heads": 4, "intermediate_size": 100, "image_size": 30, "patch_size": 6},
        "text_config": {"model_type": "llama", "hidden_size": 72, "num_hidden_layers": 2,
                        "num_attention_heads": 6, "vocab_size": V, **TOKENS}}
    (folder / "config.json").write_text(json.dumps(config))
    imported = import_config(folder)
    model = meta_model(folder, "LlavaForConditionalGeneration")
    assert count_params(imported.spec).total == sum(p.numel() for p in model.parameters())
    assert "text_config.intermediate_size is not in the file" in imported.spec.notes


def test_ids_come_from_the_folder_or_the_hugging_face_cache(tmp_path):
    snapshot = tmp_path / "models--SomeOrg--My_Model-7B" / "snapshots" / "0123abc"
    assert default_id(snapshot / "config.json") == "my_model-7b"
    assert default_id(tmp_path / "Tiny Llama" / "config.json") == "tiny-llama"
    assert default_id(tmp_path / "qwen.json") == "qwen"


# ---------------------------------------------------------------- the command line

def cli(*argv) -> int:
    return main(["models", *argv])


def one_line_failure(capsys, code) -> str:
    out = capsys.readouterr()
    assert code == 2 and out.err.count("\n") == 1 and "Traceback" not in out.err, out.err
    return out.err


def nothing_written(config_home):
    assert not (config_home / "specs").exists() or not any((config_home / "specs").iterdir())


def edited(tmp_path, change) -> str:
    """The llama case's saved config with ``change(data)`` applied."""
    folder = saved(tmp_path, "llama")
    data = json.loads((folder / "config.json").read_text())
    change(data)
    (folder / "config.json").write_text(json.dumps(data))
    return str(folder)


@pytest.mark.parametrize("add", [[], ["--add"]])
def test_bad_configs_are_one_line_and_write_nothing(tmp_path, capsys, config_home, monkeypatch, add):
    (tmp_path / "empty").mkdir()
    err = one_line_failure(capsys, cli("--import-config", str(tmp_path / "empty"), *add))
    assert "has no config.json" in err

    err = one_line_failure(capsys, cli("--import-config", edited(
        tmp_path, lambda d: d.update(model_type="bert")), *add))
    assert "model_type" in err and "'bert'" in err and "llama" in err

    err = one_line_failure(capsys, cli("--import-config", edited(
        tmp_path, lambda d: d.pop("num_hidden_layers")), *add))
    assert "num_hidden_layers: required key is missing" in err

    err = one_line_failure(capsys, cli("--import-config", edited(
        tmp_path, lambda d: d.update(hidden_size="wide")), *add))
    assert "hidden_size: expected an integer" in err

    err = one_line_failure(capsys, cli("--import-config", edited(
        tmp_path, lambda d: d.update(num_attention_heads=5, num_key_value_heads=5, head_dim=None)), *add))
    assert "num_attention_heads" in err and "does not divide" in err

    broken = tmp_path / "broken.json"
    broken.write_text('{"model_type": "llama", "hidden_size": 72,')
    err = one_line_failure(capsys, cli("--import-config", str(broken), *add))
    assert "broken.json" in err and "not valid JSON" in err

    big = tmp_path / "big" / "config.json"
    big.parent.mkdir()
    big.write_text('{"model_type": "llama", "pad": "' + "x" * MAX_CONFIG_BYTES + '"}')

    def no_parsing(*args, **kwargs):
        raise AssertionError("an oversized file was parsed")

    monkeypatch.setattr(hf_config.json, "loads", no_parsing)
    err = one_line_failure(capsys, cli("--import-config", str(big.parent), *add))
    assert "big/config.json" in err and f"at most {MAX_CONFIG_BYTES:,}" in err
    nothing_written(config_home)


def test_options_that_do_not_combine(tmp_path, capsys, config_home):
    folder = str(saved(tmp_path, "llama"))
    assert "--add takes no file" in one_line_failure(capsys, cli("--import-config", folder, "--add", "x.json"))
    assert "cannot be used together" in one_line_failure(capsys, cli("--import-config", folder,
                                                                     "--show", "llama-3-8b"))
    assert "--add needs a file" in one_line_failure(capsys, cli("--add"))
    assert "--import-config" in one_line_failure(capsys, cli("--id", "x"))
    nothing_written(config_home)


def test_import_prints_the_spec_and_its_counts_without_writing(tmp_path, capsys, config_home):
    folder = saved(tmp_path, "jamba")
    assert cli("--import-config", str(folder)) == 0
    out = capsys.readouterr().out
    total = count_params(import_config(folder).spec).total
    assert "[jamba]" in out and f"({total:,}) computed" in out and "per layer: " in out
    assert cli("--import-config", str(folder / "config.json"), "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["params_total"] == total and shown["added"] is None
    assert shown["spec"]["architecture"]["hybrid"]["period"] == ["mamba", "attention", "mamba"]
    assert sum(k["layers"] for k in shown["per_layer"]) == 5
    nothing_written(config_home)


def test_add_round_trip_lists_the_model_and_builds_its_scene(tmp_path, capsys, config_home):
    folder = saved(tmp_path, "llava")
    assert cli("--import-config", str(folder), "--add", "--id", "my-llava") == 0
    assert "added my-llava" in capsys.readouterr().out
    stored = config_home / "specs" / "my-llava.json"
    assert stored.is_file() and [p.name for p in stored.parent.iterdir()] == ["my-llava.json"]

    assert cli("--json") == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    model = meta_model(folder, "LlavaForConditionalGeneration")
    assert rows["my-llava"]["params_total"] == sum(p.numel() for p in model.parameters())

    from llmviz.scenes.registry import build_scene

    built = build_scene("my-llava")
    assert built.model.spec.id == "my-llava" and "my-llava" in built.caption

    # The --add rules: the same id again replaces the user's spec; a built-in id is refused.
    assert cli("--import-config", str(saved(tmp_path, "llama")), "--add", "--id", "my-llava") == 0
    capsys.readouterr()
    assert load_registry().get("my-llava").architecture.components == ()
    err = one_line_failure(capsys, cli("--import-config", str(folder), "--add", "--id", "llama-3-8b"))
    assert "built-in" in err and "--id" in err
    assert [p.name for p in stored.parent.iterdir()] == ["my-llava.json"]


def test_import_config_raises_spec_errors_naming_the_file(tmp_path):
    with pytest.raises(SpecError) as caught:
        import_config(edited(tmp_path, lambda d: d.pop("vocab_size")))
    assert caught.value.field == "vocab_size" and caught.value.file.endswith("llama/config.json")
