"""`llmviz compare` and models/compare.py against independent references: `llmviz models --json`, the cache and
FLOPs formulas written out by hand, brute-force sums over gpt-2-small's matrices and over each position's keys,
the differences the specs hold for known pairs, the layer correspondence, the report files, hostile arguments."""
import csv
import io
import json
import math
import re

import pytest

from llmviz.models.compare import (CompareError, ComponentPath, attention_flops, compare, component_id,
                                   corresponding, corresponding_id, corresponding_layer, path_of)
from llmviz.models.registry import load_registry
from llmviz.scenes.cli.main import main

REGISTRY = load_registry(include_user=False)
SPEC = REGISTRY.get


@pytest.fixture(autouse=True)
def no_user_specs(tmp_path, monkeypatch):
    """The built-ins only: a user's own spec folder must not change what the tests compare."""
    monkeypatch.setenv("LLMVIZ_CONFIG_DIR", str(tmp_path / "config"))


def run_cli(capsys, *argv):
    code = main(["compare", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def skip_without_gl():
    from tests.gl_support import headless_or_skip

    for _ in headless_or_skip((16, 16)):   # yields once, then releases the probe
        pass


def by_component(comparison):
    return {d.component: d for d in comparison.differences}


# ---------------------------------------------------------------- the table against `llmviz models --json`

SUMMARY_FIELDS = {"params_total": "params_total", "params_active": "params_active", "layers": "layers",
                  "d_model": "d_model", "heads": "heads", "kv_heads": "kv_heads", "experts": "experts",
                  "top_k": "top_k", "shared_experts": "shared_experts"}


@pytest.fixture(scope="module")
def models_json():
    import contextlib

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["models", "--json"]) == 0
    return {row["id"]: row for row in json.loads(buffer.getvalue())}


@pytest.mark.parametrize("ids", [("gpt-2-small", "llama-3-8b", "mixtral-8x7b", "deepseek-v3"),
                                 ("mamba-130m", "jamba-v0.1", "rwkv-6-1.6b", "llava-1.5-7b"),
                                 ("qwen3-30b-a3b", "whisper-base", "clip-vit-l-14")])
def test_the_table_holds_what_llmviz_models_json_prints(ids, models_json):
    doc = compare([SPEC(i) for i in ids]).as_dict()
    for metric, field in SUMMARY_FIELDS.items():
        for model_id in ids:
            assert doc["rows"][metric]["values"][model_id] == models_json[model_id][field], (metric, model_id)


def test_each_row_says_its_unit_and_formula_and_marks_the_largest_and_smallest():
    c = compare([SPEC("llama-3-8b"), SPEC("mistral-7b"), SPEC("gpt-2-small")])
    for row in c.rows:
        assert row.unit and row.formula
    total = c.row("params_total")
    assert total.largest == ("llama-3-8b",) and total.smallest == ("gpt-2-small",)
    assert c.row("kv_heads").largest == ("gpt-2-small",)   # MHA: 12 KV heads against GQA's 8
    assert c.row("d_model").largest == ("llama-3-8b", "mistral-7b")   # a tie marks both
    assert c.row("experts").largest == () and c.row("experts").values["llama-3-8b"] is None


# ---------------------------------------------------------------- cache and memory, by hand

def test_kv_cache_per_token_and_at_n_follow_the_hand_formulas():
    c = compare([SPEC("llama-3-8b"), SPEC("mistral-7b"), SPEC("deepseek-v3"), SPEC("jamba-v0.1")], context=8192)
    per_token, at_n = c.row("kv_bytes_per_token").values, c.row("kv_bytes_at_context").values
    assert per_token["llama-3-8b"] == 2 * 32 * 8 * 128 * 2 == 131_072
    assert at_n["llama-3-8b"] == 131_072 * 8192
    assert at_n["mistral-7b"] == 131_072 * 4096            # the sliding window keeps 4,096 positions
    assert per_token["deepseek-v3"] == 61 * (512 + 64) * 2  # MLA: the KV latent and the rope key
    jamba = SPEC("jamba-v0.1").architecture
    attention_layers = 32 // 8                              # one attention layer in each period of 8
    assert per_token["jamba-v0.1"] == attention_layers * 2 * jamba.kv_heads * jamba.head_width * 2
    inner = jamba.ssm.expand * jamba.d_model
    state = 2 * 28 * inner * (jamba.ssm.d_state + jamba.ssm.d_conv)
    assert c.row("state_bytes").values["jamba-v0.1"] == state
    assert at_n["jamba-v0.1"] == per_token["jamba-v0.1"] * 8192 + state


@pytest.mark.parametrize("model_id", ["mamba-tiny", "mamba2-tiny", "rwkv-tiny", "mamba-130m", "mamba2-2.7b"])
def test_the_recurrent_state_is_the_scenes_float32_state_at_bf16(model_id):
    from llmviz.scenes.ssm_live import state_bytes

    c = compare([SPEC(model_id), SPEC("gpt-2-small")], context=1000)
    assert c.row("state_bytes").values[model_id] * 2 == state_bytes(SPEC(model_id))
    assert c.row("kv_bytes_per_token").values[model_id] == 0
    assert c.row("kv_bytes_at_context").values[model_id] == c.row("state_bytes").values[model_id]


def test_weight_memory_is_total_parameters_times_bytes():
    c = compare([SPEC("gpt-2-small"), SPEC("mixtral-8x7b")])
    for model_id in c.models:
        total = c.row("params_total").values[model_id]
        assert c.row("weights_bf16").values[model_id] == 2 * total
        assert c.row("weights_int8").values[model_id] == total
        assert c.row("weights_int4").values[model_id] == math.ceil(total / 2)
    assert "two to a byte" in c.row("weights_int4").formula


# ---------------------------------------------------------------- FLOPs, brute force

def brute_attention(n_layers, n_tokens, d_qk, d_v, window=None):
    """Per token, averaged over a causal pass: position t attends to min(t, W) keys; QKᵀ and AV are 2 FLOPs a product."""
    keys = sum(min(t, window or t) for t in range(1, n_tokens + 1)) / n_tokens
    return n_layers * 2 * keys * (d_qk + d_v)


@pytest.mark.parametrize("n_tokens", [64, 1024])
def test_gpt2_small_flops_per_token_against_its_matrices(n_tokens):
    c, vocab, layers = 768, 50257, 12
    matrices = [(3 * c, c), (c, c), (4 * c, c), (c, 4 * c)] * layers + [(vocab, c)]   # qkv, proj, fc, proj; the head
    brute = 2 * sum(rows * cols for rows, cols in matrices) + brute_attention(layers, n_tokens, c, c)
    ours = compare([SPEC("gpt-2-small"), SPEC("gpt-2-medium")], context=n_tokens).row("flops_per_token")
    # Ours also counts the biases and norm gains (one multiply-add each, 0.08% here) and N/2 keys for (N+1)/2.
    assert ours.values["gpt-2-small"] == pytest.approx(brute, rel=2e-3)


@pytest.mark.parametrize("model_id, n_tokens", [("mistral-7b", 16384), ("mistral-7b", 1000), ("deepseek-v3", 4096),
                                                ("qwen3-30b-a3b", 2048)])
def test_the_attention_term_against_a_sum_over_positions(model_id, n_tokens):
    arch = SPEC(model_id).architecture
    if arch.mla is not None:
        d_qk = arch.n_heads * (arch.mla.qk_nope_head_dim + arch.mla.qk_rope_head_dim)
        d_v = arch.n_heads * arch.mla.v_head_dim
    else:
        d_qk = d_v = arch.n_heads * arch.head_width
    brute = brute_attention(arch.n_layers, n_tokens, d_qk, d_v, arch.sliding_window)
    assert attention_flops(arch, n_tokens) == pytest.approx(brute, rel=2 / n_tokens)


def test_recurrent_models_have_no_attention_term_and_moe_counts_active_weights():
    c = compare([SPEC("mamba-130m"), SPEC("mixtral-8x7b")], context=4096)
    assert attention_flops(SPEC("mamba-130m").architecture, 4096) == 0
    mixtral = c.row("flops_per_token").values["mixtral-8x7b"]
    active = c.row("params_active").values["mixtral-8x7b"]
    lookups = 32000 * 4096   # untied: the embedding is only looked up; the head (in the active count) is multiplied
    assert mixtral == 2 * (active - lookups) + 2 * 32 * (4096 / 2) * (4096 + 4096)


# ---------------------------------------------------------------- differences of known pairs

def test_llama_3_8b_and_mistral_7b_differ_in_sliding_window_and_vocabulary():
    c = compare([SPEC("llama-3-8b"), SPEC("mistral-7b")])
    found = by_component(c)
    assert found["sliding window"].models == ("mistral-7b",) and "4,096" in found["sliding window"].what
    assert found["vocabulary"].what == "llama-3-8b: 128,256; mistral-7b: 32,000"
    assert "128256×4096 (llama-3-8b) vs 32000×4096 (mistral-7b)" in found["embed"].what
    # Both specs hold d_ff 14336 (Mistral-7B's published width is Llama-3-8B's): no d_ff difference.
    assert "MLP width d_ff" not in found and c.row("d_ff").largest == ()
    assert {d.source for d in c.differences} == {"feature", "dimension", "tensors"}


def test_mixtral_and_mistral_differ_in_moe_eight_experts_top_two():
    found = by_component(compare([SPEC("mixtral-8x7b"), SPEC("mistral-7b")]))
    assert found["mixture of experts"].models == ("mixtral-8x7b",)
    assert "8 experts, top-2" in found["mixture of experts"].what
    assert found["feed-forward"].what == "mixtral-8x7b: MoE; mistral-7b: dense MLP"
    assert found["blocks.*.moe"].models == ("mixtral-8x7b",) and found["blocks.*.mlp"].models == ("mistral-7b",)
    assert "moe" in found["mixture of experts"].kinds


def test_deepseek_v3_and_qwen3_differ_in_mla_shared_expert_and_routing():
    c = compare([SPEC("deepseek-v3"), SPEC("qwen3-30b-a3b")])
    found = by_component(c)
    assert found["attention"].what.startswith("deepseek-v3: MLA") and "GQA" in found["attention"].what
    assert found["shared experts"].models == ("deepseek-v3",)
    assert "sigmoid-grouped" in found["routing"].what and "topk-softmax" in found["routing"].what
    assert "q_latent.weight only in deepseek-v3" in found["blocks.*.attn"].what
    assert "shared.* only in deepseek-v3" in found["blocks.*.moe"].what
    assert c.feature("feed_forward").values["deepseek-v3"] == "dense MLP in 3 layers, MoE in 58 layers"
    assert found["expert width"].what == "deepseek-v3: 2,048; qwen3-30b-a3b: 768"


def test_features_come_from_the_inventory_for_every_family():
    c = compare([SPEC("gpt-2-small"), SPEC("mamba-130m"), SPEC("rwkv-6-1.6b"), SPEC("llava-1.5-7b")])
    assert c.feature("biases").values["gpt-2-small"] == "attention, mlp"
    assert c.feature("biases").values["mamba-130m"] == "mamba"   # the convolution's and Δ's biases
    assert c.feature("embeddings").values["gpt-2-small"].startswith("tied")
    assert c.feature("mixer").values == {"gpt-2-small": "attention", "mamba-130m": "Mamba", "rwkv-6-1.6b": "RWKV-6",
                                         "llava-1.5-7b": "attention"}
    assert c.feature("attention").values["mamba-130m"] is None
    assert "vision" in c.feature("towers").values["llava-1.5-7b"]
    assert compare([SPEC("jamba-v0.1"), SPEC("gpt-2-small")]).feature("mixer").values["jamba-v0.1"] == \
        "hybrid: 28 Mamba, 4 attention"


# ---------------------------------------------------------------- correspondence

def test_layer_i_of_32_is_layer_2i_of_64_and_back():
    llama, mamba = SPEC("llama-3-8b"), SPEC("mamba-2.8b")
    for i in range(32):
        assert corresponding_layer(i, 32, 64) == 2 * i and corresponding_layer(2 * i, 64, 32) == i
        assert corresponding_id(llama, f"blocks.{i}.attn.head.3.wq", mamba) == f"blocks.{2 * i}.mamba"
        assert corresponding_id(mamba, f"blocks.{2 * i}.mamba.x.weight", llama) == f"blocks.{i}.attn"
    assert corresponding_layer(99, 32, 64) == 63   # clamped


def test_moe_and_mlp_correspond_and_a_missing_part_falls_back_to_the_layer():
    mixtral, llama, mamba = SPEC("mixtral-8x7b"), SPEC("llama-3-8b"), SPEC("mamba-130m")
    assert corresponding_id(mixtral, "blocks.4.moe.expert.3", llama) == "blocks.4.mlp"
    assert corresponding_id(llama, "blocks.4.mlp.up.weight", mixtral) == "blocks.4.moe"
    assert corresponding_id(llama, "blocks.8.mlp", mamba) == "blocks.6"   # a Mamba layer has no MLP
    assert corresponding_id(SPEC("gpt-2-small"), "blocks.6.mlp", SPEC("rwkv-4-169m")) == "blocks.6.channel_mix"
    assert corresponding(llama, ComponentPath("norm", None), mamba) == ComponentPath("norm", None)
    assert corresponding_id(llama, "lm_head.weight", mamba) == "output"
    assert corresponding_id(llama, "embed.tok.weight", mamba) == "embed"
    assert corresponding_id(llama, "model", mamba) is None


@pytest.mark.parametrize("a, b", [("gpt-2-small", "mamba-130m"), ("jamba-tiny", "rwkv-tiny"),
                                  ("moe-4", "whisper-base"), ("mamba2-tiny", "gpt-2-small")])
def test_every_corresponding_id_is_in_the_other_layout(a, b):
    from llmviz.scenes.layout import layout_model

    spec_a, spec_b = SPEC(a), SPEC(b)
    ids_a = list(layout_model(spec_a).ids) + list(layout_model(spec_a).group_ids)
    layout_b = layout_model(spec_b)
    known_b = set(layout_b.ids) | set(layout_b.group_ids)
    prefixes_b = {i.rsplit(".", 1)[0] for i in known_b} | known_b
    for id_a in ids_a:
        id_b = corresponding_id(spec_a, id_a, spec_b)
        if id_b is not None:
            assert id_b in prefixes_b, (id_a, id_b)
            assert path_of(spec_b, id_b) is not None and component_id(spec_b, path_of(spec_b, id_b)) == id_b


# ---------------------------------------------------------------- the command

def test_json_is_one_object_rows_by_metric_columns_by_model(capsys):
    code, out, err = run_cli(capsys, "llama-3-8b", "mistral-7b", "--context", "4096", "--json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["models"] == ["llama-3-8b", "mistral-7b"] and doc["context"] == 4096
    assert doc["rows"]["kv_bytes_per_token"]["values"] == {"llama-3-8b": 131_072, "mistral-7b": 131_072}
    assert all(set(d) >= {"component", "models", "what"} for d in doc["differences"])
    assert doc["features"]["sliding_window"]["differs"] is True


def test_the_table_prints_marks_formulas_and_differences(capsys):
    code, out, _ = run_cli(capsys, "mixtral-8x7b", "mistral-7b")
    assert code == 0
    assert re.search(r"parameters \(total\)\s+parameters\s+46\.7B ▲\s+7\.24B ▼", out)
    assert "DIFFERENCES" in out and "mixture of experts [mixtral-8x7b]" in out and "FORMULAS" in out


def test_spec_files_and_hugging_face_configs_are_accepted(tmp_path, capsys):
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    folder = tmp_path / "my-llama"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA_CONFIG))
    code, out, err = run_cli(capsys, str(tmp_path / "tiny.json"), str(folder), "gpt-2-small", "--json")
    assert code == 0, err
    doc = json.loads(out)
    from llmviz.models.hf_config import import_config
    from llmviz.models.params import count_params

    imported = import_config(folder).spec
    assert doc["models"] == ["tiny", imported.id, "gpt-2-small"]
    assert doc["rows"]["params_total"]["values"][imported.id] == count_params(imported).total
    assert doc["rows"]["kv_bytes_per_token"]["values"][imported.id] == 2 * 4 * 2 * 32 * 2


TINY = {"id": "tiny", "name": "Tiny GPT", "kind": "decoder-only", "sources": ["notes"],
        "architecture": {"n_layers": 2, "d_model": 48, "n_heads": 4, "d_ff": 192, "vocab_size": 10,
                         "context_length": 8, "pos_encoding": "learned", "norm": "layernorm",
                         "activation": "gelu", "bias": True, "unembedding": "tied"}}
LLAMA_CONFIG = {"model_type": "llama", "hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4,
                "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 1000,
                "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
                "hidden_act": "silu"}


@pytest.mark.parametrize("argv, names", [
    (["llama-3-8b"], "MODEL"),
    (["a", "b", "c", "d", "e"], "MODEL"),
    (["llama-3-8b", "no-such-model"], "no-such-model"),
    (["llama-3-8b", "llama-3-8b"], "more than once"),
    (["llama-3-8b", "Llama-3-8B"], "more than once"),
    (["llama-3-8b", "mistral-7b", "--context", "0"], "--context"),
    (["llama-3-8b", "mistral-7b", "--context", "abc"], "--context"),
    (["llama-3-8b", "mistral-7b", "--context", "9" * 5000], "--context"),
    (["llama-3-8b", "mistral-7b", "--out", "report.pdf"], "--out"),
    (["llama-3-8b", "mistral-7b", "--out", "/no/such/folder/r.html"], "--out"),
    (["llama-3-8b", "mistral-7b", "--out", "r.html", "--camera", "sideways"], "--camera"),
    (["llama-3-8b", "mistral-7b", "--out", "r.html", "--size", "0x0"], "--size"),
    (["llama-3-8b", "/dev/null/x.json"], "/dev/null/x.json"),
])
def test_hostile_arguments_are_one_line_naming_the_argument(argv, names, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert names in err


def test_a_broken_spec_file_is_one_line(tmp_path, capsys):
    (tmp_path / "bad.json").write_text('{"id": "bad", "architecture": ')
    (tmp_path / "config.json").write_text('{"model_type": "no-such-type"}')
    for path in ("bad.json", "config.json"):
        code, out, err = run_cli(capsys, "gpt-2-small", str(tmp_path / path))
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_compare_refuses_what_it_cannot_compare():
    with pytest.raises(CompareError):
        compare([SPEC("gpt-2-small")])
    with pytest.raises(CompareError):
        compare([SPEC("gpt-2-small"), SPEC("gpt-2-small")])
    with pytest.raises(CompareError):
        compare([SPEC("gpt-2-small"), SPEC("mistral-7b")], context=0)


# ---------------------------------------------------------------- report files

def test_markdown_and_csv_reports_hold_the_exact_numbers(tmp_path, capsys):
    md, table = tmp_path / "r.md", tmp_path / "r.csv"
    assert run_cli(capsys, "deepseek-v3", "qwen3-30b-a3b", "--out", str(md))[0] == 0
    assert run_cli(capsys, "deepseek-v3", "qwen3-30b-a3b", "--out", str(table))[0] == 0
    expected = compare([SPEC("deepseek-v3"), SPEC("qwen3-30b-a3b")])
    text = md.read_text()
    assert "## What they cost" in text and "## Differences" in text and "shared experts" in text
    rows = {(r["section"], r["key"]): r for r in csv.DictReader(io.StringIO(table.read_text()))}
    for row in expected.rows:
        for model_id in expected.models:
            value = row.values[model_id]
            assert rows["metric", row.key][model_id] == ("" if value is None else str(value))
    assert rows["metric", "kv_bytes_per_token"]["smallest"] == "deepseek-v3"


def test_html_report_is_self_contained_with_pictures(tmp_path, capsys):
    skip_without_gl()
    out = tmp_path / "report.html"
    code, _, err = run_cli(capsys, "gpt-2-small", "mamba-tiny", "--out", str(out), "--size", "320x200")
    assert code == 0, err
    page = out.read_text()
    assert "<table>" in page and "Differences" in page and "formula" in page
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert len(sources) == 3 and all(s.startswith("data:image/png;base64,") for s in sources)   # 2 models + split
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert not re.search(r"https?:|//[a-z]|<link|<script|@import|url\(|<iframe|<object", text)


def test_html_report_without_pictures(tmp_path, capsys):
    out = tmp_path / "report.html"
    assert run_cli(capsys, "gpt-2-small", "mistral-7b", "--out", str(out), "--no-pictures")[0] == 0
    page = out.read_text()
    assert "<img" not in page and "sliding window" in page


# ---------------------------------------------------------------- render --compare

def test_render_compare_writes_the_split_screen(tmp_path, capsys):
    from PIL import Image

    skip_without_gl()
    out = tmp_path / "split.png"
    code = main(["render", "--compare", "gpt-2-small,mamba-tiny", "--camera", "preset:overview", "--size", "400x200",
                 "--out", str(out)])
    assert code == 0
    pixels = Image.open(out)
    assert pixels.size == (400, 200)


@pytest.mark.parametrize("argv, names", [
    (["--compare", "gpt-2-small"], "--compare"),
    (["--compare", "gpt-2-small,nope"], "nope"),
    (["--compare", "gpt-2-small,gpt-2-small"], "more than once"),
    (["--compare", "gpt-2-small,mamba-tiny", "--scene", "gpt-2-small"], "--scene"),
    (["--compare", "gpt-2-small,mamba-tiny", "--camera", "sideways"], "--camera"),
])
def test_render_compare_hostile_arguments(argv, names, tmp_path, capsys):
    code = main(["render", *argv, "--out", str(tmp_path / "x.png")])
    _, err = capsys.readouterr()
    assert code == 2 and len(err.strip().splitlines()) == 1 and names in err
