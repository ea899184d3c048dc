"""ModelSpec validation: every built-in loads; each kind of bad spec is refused with one message
that names the field and the rule."""
import copy
import json
import subprocess
import sys

import pytest

from llmviz.models.registry import builtin_spec_files, builtin_specs, load_registry, read_spec_text
from llmviz.models.spec import ModelSpec, SpecError, parse_count, parse_spec

GOOD = {
    "id": "tiny-gpt",
    "name": "Tiny GPT",
    "kind": "decoder-only",
    "sources": ["made up for a test"],
    "architecture": {
        "n_layers": 2, "d_model": 48, "n_heads": 4, "d_ff": 192, "vocab_size": 10,
        "context_length": 8, "pos_encoding": "learned", "norm": "layernorm",
        "activation": "gelu", "bias": True, "unembedding": "tied",
    },
}


def with_changes(**paths):
    """GOOD with fields set (architecture__n_heads=5 sets architecture.n_heads) or removed (...)."""
    data = copy.deepcopy(GOOD)
    for dotted, value in paths.items():
        *parents, last = dotted.split("__")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        if value is ...:
            node.pop(last, None)
        else:
            node[last] = value
    return data


def error_for(data) -> SpecError:
    with pytest.raises(SpecError) as caught:
        parse_spec(data, file="my.json")
    return caught.value


def test_good_spec_parses_to_typed_values():
    spec = parse_spec(GOOD, file="my.json")
    assert isinstance(spec, ModelSpec)
    assert spec.architecture.head_width == 12 and spec.architecture.kv_heads == 4
    assert spec.architecture.attention_kind == "mha"
    assert spec.architecture.tied_embeddings


def test_message_names_file_field_and_rule():
    error = error_for(with_changes(architecture__n_heads=5))
    assert str(error) == "my.json: architecture.n_heads: 5 does not divide d_model 48"
    assert (error.file, error.field) == ("my.json", "architecture.n_heads")


@pytest.mark.parametrize("changes,field,words", [
    ({"architecture__n_heads": 5}, "architecture.n_heads", "does not divide d_model 48"),
    ({"architecture__n_kv_heads": 3}, "architecture.n_kv_heads", "3 does not divide n_heads 4"),
    ({"architecture__d_model": 0}, "architecture.d_model", "must be positive, got 0"),
    ({"architecture__n_layers": -2}, "architecture.n_layers", "must be positive, got -2"),
    ({"architecture__d_ff": 0}, "architecture.d_ff", "must be positive"),
    ({"kind": "decoder"}, "kind", "unknown kind 'decoder'; expected one of: decoder-only"),
    ({"architecture__norm": "batchnorm"}, "architecture.norm", "unknown norm 'batchnorm'"),
    ({"architecture__d_model": ...}, "architecture.d_model", "required field is missing"),
    ({"name": ...}, "name", "required field is missing"),
    ({"architecture__n_layers": "twelve"}, "architecture.n_layers",
     "expected an integer, got a string 'twelve'"),
    ({"architecture__n_layers": 2.5}, "architecture.n_layers", "expected an integer"),
    ({"architecture__n_layers": True}, "architecture.n_layers", "expected an integer, got true"),
    ({"architecture__bias": "yes"}, "architecture.bias", "expected true or false"),
    ({"sources": "one source"}, "sources", "expected a list"),
    ({"architecture__n_layer": 2}, "architecture.n_layer", "unknown field (did you mean n_layers?)"),
    ({"architecture__vocab_size": ...}, "architecture.vocab_size", "required when the input is tokens"),
    ({"architecture__context_length": ...}, "architecture.context_length", "learned positions"),
    ({"architecture__d_ff": ...}, "architecture.d_ff", "attention layers need a feed-forward"),
    ({"architecture__activation": ...}, "architecture.activation", "required"),
    ({"id": "Has Spaces"}, "id", "must be lower case"),
    ({"invented": ["architecture.d_model"]}, "speculative", "must be true"),
    ({"speculative": True, "invented": ["architecture.d_mdel"]}, "invented[0]", "names no field"),
    ({"stated": {"total": "lots"}}, "stated.total", "no parameter count can be read"),
    ({"visual": {"color": "red"}}, "visual.color", "#rrggbb"),
    ({"visual": {"expert_layout": "spiral"}}, "visual.expert_layout", "unknown expert_layout"),
])
def test_bad_specs_are_refused_naming_the_field(changes, field, words):
    error = error_for(with_changes(**changes))
    assert error.field == field
    assert words in error.message
    assert "\n" not in str(error)


def moe_spec(**moe):
    return with_changes(architecture__d_ff=..., architecture__moe={
        "n_experts": 8, "top_k": 2, "expert_d_ff": 64, "routing": "topk-softmax"} | moe)


def test_moe_rules():
    assert parse_spec(moe_spec()).architecture.moe_layer_indices() == [0, 1]
    error = error_for(moe_spec(top_k=10))
    assert str(error) == "my.json: architecture.moe.top_k: 10 is larger than n_experts 8"
    assert error_for(moe_spec(routing="random")).field == "architecture.moe.routing"
    assert error_for(moe_spec(n_groups=3)).message == "3 does not divide n_experts 8"
    assert error_for(moe_spec(routing="sigmoid-grouped")).field == "architecture.moe.n_groups"
    assert error_for(moe_spec(n_experts=0)).message == "must be positive, got 0"
    assert error_for(moe_spec(n_shared_experts=-1)).message == "must be at least 0, got -1"
    # MoE on odd layers only leaves layer 0 without an FFN: d_ff is then required.
    assert error_for(moe_spec(layers={"start": 1, "step": 2})).field == "architecture.d_ff"


def test_kind_rules():
    ssm = with_changes(kind="ssm")
    assert "no attention layers" in error_for(ssm).message
    assert error_for(with_changes(kind="hybrid")).field == "architecture.hybrid"
    assert error_for(with_changes(kind="encoder-decoder")).field == "architecture.cross_attention"
    assert error_for(with_changes(kind="multimodal")).field == "architecture.modalities"
    mamba = with_changes(kind="ssm", architecture__mixer="mamba", architecture__n_heads=...,
                         architecture__d_ff=..., architecture__activation=...)
    assert error_for(mamba).field == "architecture.ssm"
    mamba["architecture"]["ssm"] = {"d_state": 4, "d_conv": 4, "expand": 2}
    assert error_for(mamba).field == "architecture.ssm.dt_rank"


def test_component_errors_name_their_index():
    data = with_changes(kind="multimodal", architecture__modalities=["text", "image"])
    data["architecture"]["components"] = [
        {"type": "encoder", "name": "vision", "role": "vision-encoder", "n_layers": 1,
         "d_model": 30, "n_heads": 4, "d_ff": 60, "pos_encoding": "learned",
         "norm": "layernorm", "activation": "gelu",
         "input": {"type": "patches", "patch_size": 4, "image_size": 16}}]
    error = error_for(data)
    assert str(error) == "my.json: architecture.components[0].n_heads: 4 does not divide d_model 30"
    data["architecture"]["components"][0]["type"] = "camera"
    assert error_for(data).field == "architecture.components[0].type"


def test_parse_count_reads_stated_totals():
    assert parse_count("~85,000 (walkthrough text)") == 85_000
    assert parse_count("124M (nanoGPT comment)") == 124_000_000
    assert parse_count("175.0B") == 175_000_000_000
    assert parse_count("~1.76T = 8x220B (George Hotz rumour)") == 1_760_000_000_000
    assert parse_count("1.6b (demo docstring)") == 1_600_000_000
    assert parse_count(None) is None and parse_count("unknown") is None


def test_json_and_toml_read_the_same_spec():
    toml = """
id = "tiny-gpt"
name = "Tiny GPT"
kind = "decoder-only"
sources = ["made up for a test"]
[architecture]
n_layers = 2
d_model = 48
n_heads = 4
d_ff = 192
vocab_size = 10
context_length = 8
pos_encoding = "learned"
norm = "layernorm"
activation = "gelu"
bias = true
unembedding = "tied"
"""
    from_toml = read_spec_text(toml, "tiny.toml")
    from_json = read_spec_text(json.dumps(GOOD), "tiny.json")
    assert from_toml == from_json


def test_broken_json_is_one_line():
    with pytest.raises(SpecError) as caught:
        read_spec_text('{"id": "x",', "broken.json")
    assert str(caught.value).startswith("broken.json: not valid JSON (line 1")


def test_every_builtin_loads_and_validates():
    specs = builtin_specs()
    files = builtin_spec_files()
    assert sorted(f"{s.id}.json" for s in specs) == files     # index.json lists every file
    for spec in specs:
        assert spec.sources, spec.id
        assert spec.origin == f"built-in:{spec.id}"
        if spec.speculative:
            assert "SPECULATIVE" in spec.notes, spec.id


def test_reference_rows_are_all_built_in():
    ids = {
        "nano-gpt-llmviz", "gpt-2-small", "gpt-2-medium", "gpt-2-large", "gpt-2-xl",
        "gpt-3-175b", "gpt-4", "gpt-4-16e", "llama-2-7b", "llama-3-8b", "llama-3-70b",
        "llama-3.1-405b", "mistral-7b", "mixtral-8x7b", "qwen3-30b-a3b", "deepseek-v3",
        "mamba-130m", "mamba-2.8b", "mamba2-2.7b", "rwkv-4-169m", "rwkv-6-1.6b", "jamba-v0.1",
        "vit-b-16", "clip-vit-l-14", "llava-1.5-7b", "whisper-base", "paligemma-3b-224",
        "claude", "gemini-1.0", "gemini-1.5-pro"}
    registry = load_registry(include_user=False)
    assert all(model_id in registry for model_id in ids)


def test_proprietary_entries_are_speculative_with_invented_fields():
    registry = load_registry(include_user=False)
    for model_id in ("gpt-4", "gpt-4-16e", "claude-like", "gemini-1.0-like", "gemini-1.5-like"):
        spec = registry.get(model_id)
        assert spec.speculative and "architecture.d_model" in spec.invented, model_id
    claude = registry.get("claude")
    assert claude.architecture.context_length == 200_000
    assert "architecture.context_length" not in claude.invented
    gemini = registry.get("gemini-1.5-pro")
    assert gemini.architecture.moe is not None and gemini.kind == "multimodal"
    assert "architecture.moe.n_experts" in gemini.invented


def test_spec_modules_do_not_import_torch():
    code = ("import sys, llmviz.models.spec, llmviz.models.registry, llmviz.models.params, "
            "llmviz.scenes.cli.models_cmd; llmviz.models.registry.builtin_specs(); "
            "print('torch' in sys.modules, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
