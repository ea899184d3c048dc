"""`llmviz scan` and `llmviz generate` for the recurrent text models (mamba-tiny, mamba2-tiny, rwkv-tiny)
and the hybrid jamba-tiny: the streamed state (and jamba's key/value cache) is the full forward's, the
figures are what each config says (jamba's fixed Mamba state and growing KV cache apart), generation
steps the recurrent form and agrees with the full forward."""
import dataclasses
import io
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
pytest.importorskip("transformers")
torch.set_num_threads(1)

from llmviz.models.sim import (jamba_model, jamba_trace, mamba2_model, mamba2_trace, mamba_model,  # noqa: E402
                               mamba_trace, moe_corpus, rwkv_model, rwkv_trace)
from llmviz.scenes.cli import generate_cmd, scan_cmd  # noqa: E402
from llmviz.scenes.cli.main import main  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-6)


def _mamba_shapes(cfg) -> dict:
    inner = cfg.expand * cfg.d_model
    return {"ssm": [1, cfg.n_layers, inner, cfg.d_state], "conv": [1, cfg.n_layers, inner, cfg.d_conv]}


def _mamba2_shapes(cfg) -> dict:
    # worked out from the fields, not the config's d_inner / n_heads / conv_dim properties
    inner = cfg.expand * cfg.d_model
    return {"ssm": [1, cfg.n_layers, inner // cfg.head_dim, cfg.head_dim, cfg.d_state],
            "conv": [1, cfg.n_layers, inner + 2 * cfg.n_groups * cfg.d_state, cfg.d_conv]}


def _rwkv_shapes(cfg) -> dict:
    # transformers' RWKV state: 5 tensors of (batch, d_model, layers), in its order
    return {name: [1, cfg.d_model, cfg.n_layers] for name in ("ffn_shift", "att_shift", "num", "den", "max")}


def _jamba_layers(cfg) -> tuple[list[int], list[int]]:
    # Jamba's pattern from the fields (not the config's layer_kinds): attention where i % period == offset
    attention = [i for i in range(cfg.n_layers) if i % cfg.attn_layer_period == cfg.attn_layer_offset]
    return attention, [i for i in range(cfg.n_layers) if i not in attention]


def _jamba_shapes(cfg) -> dict:
    # the fixed part, per Mamba layer: ssm (batch, d_inner, d_state), conv (batch, d_inner, d_conv)
    inner, mamba = cfg.expand * cfg.d_model, _jamba_layers(cfg)[1]
    return {**{f"ssm.{i}": [1, inner, cfg.d_state] for i in mamba},
            **{f"conv.{i}": [1, inner, cfg.d_conv] for i in mamba}}


def _jamba_kv_shapes(cfg, n_tokens: int) -> dict:
    # the growing part, per attention layer: keys and values (batch, kv_heads, tokens, head_dim)
    attention, head_dim = _jamba_layers(cfg)[0], cfg.d_model // cfg.n_heads
    return {**{f"keys.{i}": [1, cfg.n_kv_heads, n_tokens, head_dim] for i in attention},
            **{f"values.{i}": [1, cfg.n_kv_heads, n_tokens, head_dim] for i in attention}}


# model id -> (its model module, its trace module, its state class, the state's fixed shapes from the config)
MODELS = {
    "mamba-tiny": (mamba_model, mamba_trace, mamba_trace.MambaState, _mamba_shapes),
    "mamba2-tiny": (mamba2_model, mamba2_trace, mamba2_trace.Mamba2State, _mamba2_shapes),
    "rwkv-tiny": (rwkv_model, rwkv_trace, rwkv_trace.RwkvState, _rwkv_shapes),
    "jamba-tiny": (jamba_model, jamba_trace, jamba_trace.JambaState, _jamba_shapes),
}
# model id -> the shapes of what grows with the tokens, from the config and the length (none: recurrent)
GROWING = {"jamba-tiny": _jamba_kv_shapes}
LOADERS = {"mamba-tiny": mamba_model.load_mamba, "mamba2-tiny": mamba2_model.load_mamba2,
           "rwkv-tiny": rwkv_model.load_rwkv, "jamba-tiny": jamba_model.load_jamba}
by_model = pytest.mark.parametrize("model_id", list(MODELS))


def test_the_table_lists_the_four_models():
    assert list(scan_cmd.STATE_SPACE_MODELS) == list(MODELS)
    assert generate_cmd.GENERATORS == ("nano-gpt", *MODELS)


_loaded: dict = {}


@pytest.fixture
def model(model_id):
    """Each model loaded once for the module, with the loader the model module ships (not the table's)."""
    if model_id not in _loaded:
        _loaded[model_id] = LOADERS[model_id]()
    return _loaded[model_id]


def shipped_config(model_id):
    return MODELS[model_id][0].load_weights().cfg


def expected_shapes(model_id) -> dict:
    """The fixed state's tensors and shapes from the config in the shipped weights file, read without the
    code under test."""
    return MODELS[model_id][3](shipped_config(model_id))


def expected_growing_shapes(model_id, n_tokens: int) -> dict:
    """The tensors that grow with the tokens and their shapes after `n_tokens`, from the config ({} for a
    recurrent model)."""
    return GROWING[model_id](shipped_config(model_id), n_tokens) if model_id in GROWING else {}


def expected_kv_bytes(model_id, n_tokens: int) -> int:
    """2 (keys and values) x kv_heads x head_dim x tokens x 4 bytes x attention layers, from the config."""
    if model_id not in GROWING:
        return 0
    cfg = shipped_config(model_id)
    attention_layers = sum(i % cfg.attn_layer_period == cfg.attn_layer_offset for i in range(cfg.n_layers))
    return 2 * cfg.n_kv_heads * (cfg.d_model // cfg.n_heads) * n_tokens * 4 * attention_layers


def state_tensors(state) -> dict:
    """The state's tensors by name, flattened here (not with the code under test): a field holding a dict
    of per-layer tensors (JambaState's) gives "field.layer"."""
    out = {}
    for f in dataclasses.fields(state):
        value = getattr(state, f.name)
        out.update({f"{f.name}.{k}": v for k, v in value.items()} if isinstance(value, dict) else {f.name: value})
    return out


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def full_forward(model_id, model, tokens):
    """(logits, state) of one forward over `tokens` (jamba's also returns router logits: dropped)."""
    with torch.inference_mode():
        out = MODELS[model_id][1].forward(model, torch.tensor([tokens]))
    return out[0], out[1]


# ---- scan --------------------------------------------------------------------------------------

@by_model
@pytest.mark.parametrize("source", scan_cmd.SOURCES)
def test_streamed_state_equals_one_full_forward(model_id, model, source):
    entry = scan_cmd.STATE_SPACE_MODELS[model_id]
    state, per_token, _ = scan_cmd.scan(entry, model, 1500, seed=5, source=source)
    assert len(per_token) == 3  # 512 + 512 + 476: the state crossed two chunk borders
    tokens = [t for chunk in scan_cmd.token_chunks(source, 5, 1500, len(moe_corpus.ALPHABET)) for t in chunk]
    assert len(tokens) == 1500 and 0 <= min(tokens) and max(tokens) < len(moe_corpus.ALPHABET)
    _, full = full_forward(model_id, model, tokens)
    want, got = state_tensors(full), state_tensors(state)
    # every tensor the state class carries is compared: the fixed state and, for jamba, the keys and values
    expected = {**expected_shapes(model_id), **expected_growing_shapes(model_id, 1500)}
    assert sorted(want) == sorted(got) == sorted(expected)
    for name in want:
        assert list(got[name].shape) == expected[name], name
        np.testing.assert_allclose(got[name].numpy(), want[name].numpy(), **TOL, err_msg=name)


@by_model
def test_the_scanned_logits_are_the_full_forwards(model_id, model):
    entry = scan_cmd.STATE_SPACE_MODELS[model_id]
    tokens = moe_corpus.encode("The old river " * 50)  # 700 tokens: two chunks
    _, state = entry.run(model, tokens[:512], None)
    logits, _ = entry.run(model, tokens[512:], state)
    full, _ = full_forward(model_id, model, tokens)
    np.testing.assert_allclose(logits, full[0, -1].numpy(), **TOL)


def test_tokens_are_seeded_and_the_corpus_is_its_text():
    draw = lambda seed: [t for c in scan_cmd.token_chunks("corpus", seed, 2000, 96, chunk=300) for t in c]
    assert draw(1) == draw(1) != draw(2)
    assert [len(c) for c in scan_cmd.token_chunks("corpus", 1, 2000, 96, chunk=300)] == [300] * 6 + [200]
    text = moe_corpus.decode(draw(1))
    assert any(word in text for word in ("def ", "User:", "The ", "="))


@by_model
def test_scan_json_figures_follow_from_the_config(capsys, model_id):
    code, out, _ = run_cli(capsys, "scan", "--model", model_id, "--length", "1500", "--json", "--seed", "3")
    assert code == 0
    assert out.count("\n") == 1  # one JSON object, nothing else on stdout
    doc = json.loads(out)
    ints = ("tokens", "state_bytes", "kv_cache_bytes", "total_cache_bytes", "kv_cache_bytes_same_width", "chunks",
            "chunk", "seed", "torch_threads")
    floats = ("peak_rss_mb", "peak_rss_before_mb", "peak_rss_growth_mb", "rss_before_mb", "rss_after_mb",
              "ms_per_token", "ms_per_token_median_chunk", "seconds")
    for key in ints:
        assert type(doc[key]) is int, key
    for key in floats:
        assert isinstance(doc[key], (int, float)) and not isinstance(doc[key], bool), key
        assert doc[key] >= 0 or key == "peak_rss_growth_mb", key
    assert isinstance(doc["kv_cache_note"], str) and "not a measured model" in doc["kv_cache_note"]
    assert doc["model"] == model_id and doc["tokens"] == 1500 and doc["chunks"] == 3 and doc["seed"] == 3
    assert doc["peak_rss_mb"] >= doc["peak_rss_before_mb"]
    # independently of the code under test: the config the shipped weights carry
    shapes = expected_shapes(model_id)
    assert doc["state_shapes"] == shapes
    assert doc["state_bytes"] == 4 * sum(math.prod(shape) for shape in shapes.values())
    assert doc["state_dtype"] == "float32"
    # what grows with the tokens, apart: jamba's attention keys and values, nothing for a recurrent model
    assert doc["kv_cache_shapes"] == expected_growing_shapes(model_id, 1500)
    assert doc["kv_cache_bytes"] == expected_kv_bytes(model_id, 1500)
    assert doc["kv_cache_bytes_per_token"] == expected_kv_bytes(model_id, 1)
    assert doc["kv_cache_grows"] is (model_id in GROWING) and doc["state_grows"] is False
    assert doc["total_cache_bytes"] == doc["state_bytes"] + doc["kv_cache_bytes"]
    cfg = shipped_config(model_id)
    assert doc["kv_cache_bytes_same_width"] == 2 * cfg.n_layers * cfg.d_model * 1500 * 4


def test_the_state_sizes_are_these():
    # the figures written out once, so a config change that moves them is seen
    assert {m: 4 * sum(math.prod(s) for s in expected_shapes(m).values()) for m in MODELS} == {
        "mamba-tiny": 20_480, "mamba2-tiny": 21_504, "rwkv-tiny": 2_560, "jamba-tiny": 30_720}
    # jamba's one attention layer: 2 x 2 KV heads x 16 x 4 bytes a token
    assert {m: expected_kv_bytes(m, 8192) for m in MODELS} == {
        "mamba-tiny": 0, "mamba2-tiny": 0, "rwkv-tiny": 0, "jamba-tiny": 2_097_152}


@pytest.mark.parametrize("model_id", list(GROWING))
def test_the_kv_cache_is_measured_and_grows_linearly_the_state_does_not(model_id, model):
    entry = scan_cmd.STATE_SPACE_MODELS[model_id]
    reports = {n: scan_cmd.state_report(entry, scan_cmd.scan(entry, model, n, seed=2)[0]) for n in (1, 600, 1200)}
    for n, report in reports.items():
        assert report.growing_shapes == expected_growing_shapes(model_id, n)
        assert report.growing_bytes == expected_kv_bytes(model_id, n)
        assert report.fixed_shapes == expected_shapes(model_id)
        assert report.fixed_bytes == 4 * sum(math.prod(s) for s in expected_shapes(model_id).values())
        assert report.total_bytes == report.fixed_bytes + report.growing_bytes
    assert reports[1200].growing_bytes == 2 * reports[600].growing_bytes == 1200 * reports[1].growing_bytes
    assert reports[1].fixed_bytes == reports[1200].fixed_bytes
    # and the model's own account of its cache agrees
    sizes = jamba_trace.cache_sizes(model, 1200)
    assert (sizes["kv_bytes"], sizes["state_bytes"]) == (reports[1200].growing_bytes, reports[1200].fixed_bytes)


@by_model
def test_scan_text_report(capsys, model_id):
    code, out, err = run_cli(capsys, "scan", "--model", model_id, "--length", "600", "--tokens", "random")
    assert code == 0 and "Traceback" not in err
    state_bytes = 4 * sum(math.prod(s) for s in expected_shapes(model_id).values())
    assert "600 tokens" in out and f"{state_bytes:,} bytes" in out and "ms median over chunks" in out
    for name, shape in {**expected_shapes(model_id), **expected_growing_shapes(model_id, 600)}.items():
        assert f"{name} {'x'.join(map(str, shape))}" in out
    state_line = next(line for line in out.splitlines() if "state carried:" in line)
    assert "the same at any length" in state_line
    if model_id in GROWING:  # the text says which part grows, and by how much
        kv_line = next(line for line in out.splitlines() if "KV cache carried:" in line)
        kv_bytes = expected_kv_bytes(model_id, 600)
        assert f"{kv_bytes:,} bytes" in kv_line and "GROWS" in kv_line
        assert f"{expected_kv_bytes(model_id, 1)} bytes per token" in kv_line
        assert f"{state_bytes + kv_bytes:,} bytes" in out
    else:
        assert "GROWS" not in out and "KV cache carried" not in out


def test_progress_waits_two_seconds_then_reports_tokens_per_second():
    now = [0.0]
    stream = io.StringIO()
    progress = scan_cmd.ScanProgress(clock=lambda: now[0], stream=stream)
    now[0] = 1.0
    progress(512, 10_000)
    assert stream.getvalue() == ""
    now[0] = 4.0
    progress(2048, 10_000)
    assert stream.getvalue() == "scan: 2,048/10,000 tokens, 512 tokens/s, 4.0 s\n"
    now[0] = 5.0
    progress(2560, 10_000)  # not a line a second in a log
    now[0] = 6.0
    progress(10_000, 10_000)  # but always the end
    assert stream.getvalue().splitlines()[-1].startswith("scan: 10,000/10,000 tokens")
    assert len(stream.getvalue().splitlines()) == 2


@pytest.mark.parametrize("argv", [
    [],                                        # no --length
    ["--length", "0"],
    ["--length", "-5"],
    ["--length", "10000001"],
    ["--length", "1e6"],
    ["--length", "many"],
    ["--length", "9" * 5000],
    ["--length", "100", "--model", "gpt-5"],
    ["--length", "100", "--model", "nano-gpt"],  # not a recurrent model
    ["--length", "100", "--model", "rwkv"],
    ["--length", "100", "--seed", "-1"],
    ["--length", "100", "--seed", "x"],
    ["--length", "100", "--tokens", "poems"],
    ["--length", "100", "--bogus"],
    ["--model", "rwkv-tiny"],
    ["--model", "mamba2-tiny", "--length", "0"],
    ["--model", "rwkv-tiny", "--length", "100", "--tokens", "poems"],
    ["--model", "jamba-tiny", "--length", "65537"],       # past the hybrid's bound
    ["--model", "jamba-tiny", "--length", "1000000"],
])
def test_scan_bad_arguments_are_one_line_and_exit_2(capsys, argv):
    code, out, err = run_cli(capsys, "scan", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    if "--model" in argv and argv[argv.index("--model") + 1] not in MODELS:
        assert all(m in err for m in MODELS)  # names what is supported


def test_scan_jamba_length_bound_says_why(capsys):
    assert scan_cmd.STATE_SPACE_MODELS["jamba-tiny"].max_length == 65_536
    assert all(scan_cmd.STATE_SPACE_MODELS[m].max_length == scan_cmd.MAX_LENGTH for m in MODELS if m not in GROWING)
    err = run_cli(capsys, "scan", "--model", "jamba-tiny", "--length", "65537")[2]
    assert "--length" in err and "65,536" in err and "attention" in err and "jamba-tiny" in err


def test_scan_names_each_bad_argument(capsys):
    assert "--length" in run_cli(capsys, "scan", "--length", "0")[2]
    assert "--seed" in run_cli(capsys, "scan", "--length", "5", "--seed", "x")[2]
    assert "--tokens" in run_cli(capsys, "scan", "--length", "5", "--tokens", "x")[2]


@by_model
def test_scan_missing_weights_file_is_one_line(capsys, tmp_path, model_id):
    code, out, err = run_cli(capsys, "scan", "--model", model_id, "--length", "10",
                             "--weights", str(tmp_path / "none.safetensors"))
    assert code == 1 and out == "" and err.count("\n") == 1 and "cannot load" in err


@pytest.mark.parametrize("model_id, other", [("mamba-tiny", "rwkv-tiny"), ("mamba2-tiny", "mamba-tiny"),
                                             ("rwkv-tiny", "jamba-tiny"), ("jamba-tiny", "mamba2-tiny")])
@pytest.mark.parametrize("command", ["scan", "generate"])
def test_another_models_weights_are_one_line(capsys, model_id, other, command):
    weights = str(MODELS[other][0].shipped_weights_path())
    extra = ["--length", "10"] if command == "scan" else ["--input", "The "]
    code, out, err = run_cli(capsys, command, "--model", model_id, "--weights", weights, *extra)
    assert code == 1 and out == "" and err.count("\n") == 1 and "cannot load" in err and "Traceback" not in err


# ---- generate ----------------------------------------------------------------------------------

def argmax_by_full_forward(model_id, model, ids, n):
    """The reference: the whole sequence through the full forward each time, argmax of the last logits."""
    seq = list(ids)
    for _ in range(n):
        logits, _ = full_forward(model_id, model, seq)
        seq.append(int(logits[0, -1].argmax()))
    return seq[len(ids):]


def generate_json(capsys, model_id, *argv):
    code, out, err = run_cli(capsys, "generate", "--model", model_id, "--json", *argv)
    assert code == 0, err
    assert out.count("\n") == 1  # one JSON object
    return json.loads(out)


@by_model
@pytest.mark.parametrize("text", ["The old river ", "User: how are you?\nBot:", "def add(x, y):\n"])
def test_greedy_generation_equals_the_full_forward_argmax_loop(capsys, model_id, model, text):
    doc = generate_json(capsys, model_id, "--input", text, "--max-tokens", "40")
    assert doc["model"] == model_id and doc["vocabulary"] == moe_corpus.ALPHABET
    assert doc["input_ids"] == moe_corpus.encode(text)
    assert doc["output_ids"] == argmax_by_full_forward(model_id, model, doc["input_ids"], 40)
    assert doc["output"] == moe_corpus.decode(doc["output_ids"])
    assert [s["token_id"] for s in doc["steps"]] == doc["output_ids"]
    assert "".join(s["token"] for s in doc["steps"]) == doc["output"]
    for s in doc["steps"]:
        assert len(s["probs"]) == len(moe_corpus.ALPHABET) == 96
        assert abs(sum(s["probs"]) - 1) < 1e-6 and min(s["probs"]) >= 0
        assert int(np.argmax(s["probs"])) == s["token_id"]


@by_model
def test_greedy_probabilities_are_the_full_forward_softmax(model_id, model):
    ids = moe_corpus.encode("12+7=")
    steps = generate_cmd.generate_text(scan_cmd.STATE_SPACE_MODELS[model_id], model, ids, 8)
    seq = ids + [s["token"] for s in steps]
    logits, _ = full_forward(model_id, model, seq)
    want = torch.softmax(logits[0, len(ids) - 1:-1].double(), dim=-1).numpy()
    np.testing.assert_allclose(np.array([s["probs"] for s in steps]), want, rtol=1e-4, atol=1e-6)


@by_model
def test_generation_steps_the_recurrent_form(model_id, model):
    """The input goes through in chunks once; every new token is one step from the carried state."""
    calls = {"run": [], "step": 0}
    table = scan_cmd.STATE_SPACE_MODELS[model_id]
    entry = scan_cmd.StateSpaceModel(
        load=table.load, run=lambda m, ids, s: calls["run"].append(len(ids)) or table.run(m, ids, s),
        step=lambda m, t, s: calls.__setitem__("step", calls["step"] + 1) or table.step(m, t, s),
        state_tensors=table.state_tensors, width_depth=table.width_depth, alphabet=table.alphabet)
    ids = moe_corpus.encode("The quiet garden " * 40)  # 680 characters: two chunks
    steps = generate_cmd.generate_text(entry, model, ids, 12)
    assert calls == {"run": [512, 168], "step": 11}
    assert [s["token"] for s in steps] == argmax_by_full_forward(model_id, model, ids, 12)


@by_model
def test_same_seed_same_text_at_temperature_1(capsys, model_id):
    runs = [generate_json(capsys, model_id, "--input", "The ", "--max-tokens", "60", "--temperature", "1",
                          "--seed", seed) for seed in ("7", "7", "8")]
    assert runs[0] == runs[1]
    assert runs[0]["output"] != runs[2]["output"]
    assert runs[0]["temperature"] == 1.0 and runs[0]["seed"] == 7 and len(runs[0]["output_ids"]) == 60
    for s in runs[0]["steps"]:
        assert abs(sum(s["probs"]) - 1) < 1e-6 and min(s["probs"]) >= 0


@by_model
def test_generate_text_output_is_the_continuation(capsys, model_id, model):
    code, out, err = run_cli(capsys, "generate", "--model", model_id, "--input", "The old river ",
                             "--max-tokens", "20")
    assert code == 0 and err == ""
    want = moe_corpus.decode(argmax_by_full_forward(model_id, model, moe_corpus.encode("The old river "), 20))
    assert out == want + "\n"


@pytest.mark.parametrize("model_id", list(MODELS))
@pytest.mark.parametrize("argv", [
    [],                                                   # no input
    ["--input", ""],
    ["--input", "café"],                                  # outside the alphabet
    ["--input", "tab\there"],
    ["--input", "a" * 10_001],                            # longer than the input limit
    ["--input", "a", "--max-tokens", "0"],
    ["--input", "a", "--max-tokens", "1001"],
    ["--input", "a", "--max-tokens", "ten"],
    ["--input", "a", "--temperature", "-1"],
    ["--input", "a", "--seed", "x"],
])
def test_generate_bad_arguments_are_one_line_and_exit_2(capsys, model_id, argv):
    code, out, err = run_cli(capsys, "generate", "--model", model_id, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("llmviz generate: error: ") and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["--model", "nano-gpt", "--input", "CBABBC", "--max-tokens", "3"],
    ["--model", "mamba-large", "--input", "a"],
])
def test_generate_bad_model_arguments_are_one_line_and_exit_2(capsys, argv):
    code, out, err = run_cli(capsys, "generate", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("llmviz generate: error: ") and "Traceback" not in err


def test_generate_lists_the_text_models_and_keeps_nano_gpt(capsys):
    err = run_cli(capsys, "generate", "--model", "gpt-5", "--input", "CBABBC")[2]
    assert "nano-gpt" in err and all(m in err for m in MODELS)
    code, out, err = run_cli(capsys, "generate", "--input", "CBABBC")
    assert (code, out, err) == (0, "ABBBCC\n", "")
