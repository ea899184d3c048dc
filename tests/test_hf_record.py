"""Bring your own model: a local Hugging Face folder recorded through forward hooks, the .llmtrace file that carries
a recording elsewhere, and the scene that shows it — every recorded number against transformers' own forward pass
on the same weights, and every hostile folder or file refused in one line (a pickle never opened)."""
import json
import pickle
import struct

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from llmviz.models import hf_record  # noqa: E402
from llmviz.models.hf_config import spec_from_config  # noqa: E402
from llmviz.models.trace_file import TraceFileError, load_trace, save_trace  # noqa: E402
from llmviz.scenes.layout import layout_model  # noqa: E402
from llmviz.scenes.recorded import drawn_values  # noqa: E402

IDS = [3, 14, 15, 9, 26, 5, 35, 8, 9, 7, 9, 3]
TOL = 1e-5


def _small(kind: str):
    torch.manual_seed(11)
    c = transformers
    common = dict(vocab_size=97, max_position_embeddings=64)
    if kind == "llama":
        return c.LlamaForCausalLM(c.LlamaConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                                num_attention_heads=4, num_key_value_heads=2, **common))
    if kind == "mixtral":
        return c.MixtralForCausalLM(c.MixtralConfig(hidden_size=32, intermediate_size=40, num_hidden_layers=2,
                                                    num_attention_heads=4, num_key_value_heads=2, num_local_experts=4,
                                                    num_experts_per_tok=2, **common))
    if kind == "mamba":
        return c.MambaForCausalLM(c.MambaConfig(vocab_size=97, hidden_size=32, num_hidden_layers=2, state_size=8))
    return c.GPT2LMHeadModel(c.GPT2Config(vocab_size=97, n_embd=32, n_layer=2, n_head=4, n_positions=64))


@pytest.fixture(scope="module", params=["llama", "mixtral", "mamba", "gpt2"])
def folder(request, tmp_path_factory):
    model = _small(request.param).eval()
    path = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(path, safe_serialization=True)
    return request.param, model, path


def test_the_recording_is_transformers_own_forward_pass(folder):
    kind, model, path = folder
    recorded = hf_record.record(hf_record.open_folder(path), IDS)
    with torch.no_grad():
        ref = model(torch.tensor([IDS]), output_hidden_states=True, output_attentions=kind != "mamba",
                    **({"output_router_logits": True} if kind == "mixtral" else {}))
    # transformers' hidden states: the embeddings (a Mamba leaves them out), each layer's output but the last, and
    # the last one after the final norm (a Mamba gives both)
    states = [h[0].numpy() for h in ref.hidden_states]
    if kind == "mamba":
        with torch.no_grad():
            embedded = model.backbone.embeddings(torch.tensor([IDS]))[0].numpy()
        outputs, normed_last = states[:-2], states[-1]
        np.testing.assert_allclose(recorded["blocks.1.resid1"], states[-2], atol=TOL, rtol=TOL)
    else:
        embedded, outputs, normed_last = states[0], states[1:-1], states[-1]
    np.testing.assert_allclose(recorded["logits"], ref.logits[0].numpy(), atol=TOL, rtol=TOL)
    np.testing.assert_allclose(recorded["embed.out"], embedded, atol=TOL, rtol=TOL)
    last = "resid1" if kind == "mamba" else "resid2"
    n_layers = len(outputs) + 1
    for i, output in enumerate(outputs):
        np.testing.assert_allclose(recorded[f"blocks.{i}.{last}"], output, atol=TOL, rtol=TOL)
    np.testing.assert_allclose(recorded["ln_f.out"], normed_last, atol=TOL, rtol=TOL)
    hidden = [embedded] + outputs
    # the last layer's own output, rebuilt from its parts, goes through the final norm to that last hidden state
    norm = model.get_decoder().norm if kind in ("llama", "mixtral") else (
        model.backbone.norm_f if kind == "mamba" else model.transformer.ln_f)
    with torch.no_grad():
        normed = norm(torch.tensor(recorded[f"blocks.{n_layers - 1}.{last}"])[None])[0].numpy()
    np.testing.assert_allclose(normed, normed_last, atol=TOL, rtol=TOL)
    if kind != "mamba":
        for i, attention in enumerate(ref.attentions):
            for h in range(attention.shape[1]):
                np.testing.assert_allclose(recorded[f"blocks.{i}.attn.head.{h}.softmax"], attention[0, h].numpy(),
                                           atol=TOL, rtol=TOL)
            np.testing.assert_allclose(recorded[f"blocks.{i}.resid1"], hidden[i] + recorded[f"blocks.{i}.attn.proj"],
                                       atol=TOL, rtol=TOL)
    if kind == "mixtral":
        for i, router in enumerate(ref.router_logits):
            np.testing.assert_allclose(recorded[f"blocks.{i}.moe.router"], router.reshape(len(IDS), -1).numpy(),
                                       atol=TOL, rtol=TOL)
    probs = recorded["probs"]
    assert np.allclose(probs.sum(-1), 1, atol=1e-5)


def test_every_recorded_tensor_has_its_block_in_the_imported_layout(folder):
    """The layout made from the folder's config.json draws each recorded tensor under its id, in its shape."""
    kind, _, path = folder
    opened = hf_record.open_folder(path)
    recorded = hf_record.record(opened, IDS)
    spec = spec_from_config(opened.config, kind, path / "config.json").spec
    shown, left_out = drawn_values(layout_model(spec, len(IDS)), recorded)
    assert not left_out and len(shown) == len(recorded)


def run_cli(capsys, *argv):
    from llmviz.scenes.cli.main import main

    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_trace_file_round_trip_and_the_scene_that_opens_it(folder, tmp_path, capsys):
    """`llmviz trace` writes the recording; it reads back to the same arrays and header, its --json logits are
    transformers'; the scene trace:FILE shows the values on their blocks, and says they are recorded."""
    kind, model, path = folder
    out = tmp_path / "run.llmtrace"
    ids = ",".join(map(str, IDS))
    code, stdout, stderr = run_cli(capsys, "trace", "--model", str(path), "--ids", ids, "--out", str(out), "--json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    with torch.no_grad():
        logits = model(torch.tensor([IDS])).logits[0, -1].numpy()
    np.testing.assert_allclose(summary["logits"], logits, atol=TOL, rtol=TOL)
    header, arrays = load_trace(out)
    recorded = hf_record.record(hf_record.open_folder(path), IDS)
    assert set(arrays) == set(recorded) and header["tokens"] == IDS and header["config"]["model_type"]
    for k, v in recorded.items():
        assert np.array_equal(arrays[k], v), k
    headless = pytest.importorskip("llmviz.engine.render.headless")
    from llmviz.scenes.registry import build_scene

    renderer = headless.headless_renderer((320, 180))
    scene = build_scene(f"trace:{out}", renderer)
    try:
        assert "recorded" in scene.status and scene.live.wait()
        assert scene.model.has_data("logits")
        assert scene.live.session.trace.keys() == recorded.keys()
        assert scene.live.tokens_generated == 0 and len(scene.live.tick_seconds) == 0   # as bench reads them
        # hover: a recorded cell shows its number and where it came from; an unrecorded block says it is not there
        from llmviz.scenes.inspect import inspect_cell

        info = inspect_cell(scene.model, scene.live, scene.model.slot_of("logits"), (2, 5))
        assert info.value == pytest.approx(float(recorded["logits"][2, 5])) and "recorded" in info.note
        weight = next(i for i in scene.model.layout.ids if i.endswith(".weight"))
        assert "not in the recording" in inspect_cell(scene.model, scene.live, scene.model.slot_of(weight), (0, 0)).note
    finally:
        scene.close()
        renderer.release()


def test_a_pickled_checkpoint_is_refused_and_never_opened(tmp_path, capsys):
    """A folder with only pytorch_model.bin is refused by name; the pickle (which would write a file when
    unpickled) is not loaded."""
    marker = tmp_path / "unpickled"

    class Trap:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (tmp_path / "pytorch_model.bin").write_bytes(pickle.dumps(Trap()))
    with pytest.raises(hf_record.RecordError, match="only pickled weights .*pytorch_model.bin.*never unpickles"):
        hf_record.open_folder(tmp_path)
    code, _, stderr = run_cli(capsys, "trace", "--model", str(tmp_path), "--ids", "1", "--out",
                              str(tmp_path / "x.llmtrace"))
    assert code == 2 and "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
    assert not marker.exists()


def test_too_large_a_model_points_to_recording_elsewhere(folder, monkeypatch):
    _, _, path = folder
    monkeypatch.setattr(hf_record, "MAX_PARAMETERS", 1000)
    with pytest.raises(hf_record.RecordError, match="llmviz trace .* --out run.llmtrace"):
        hf_record.open_folder(path)


def _good_trace(tmp_path):
    path = tmp_path / "good.llmtrace"
    recorded = {"tokens": np.array([1, 2, 3]), "logits": np.zeros((3, 5), np.float32)}
    save_trace(path, recorded, {"model_type": "llama"}, ["a", "b", "c"])
    return path


def _rewritten(tmp_path, header_edit=None, raw_edit=None):
    raw = _good_trace(tmp_path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    table = json.loads(raw[8:8 + n])
    if header_edit is not None:
        meta = json.loads(table["__metadata__"]["llmtrace"])
        header_edit(meta)
        table["__metadata__"]["llmtrace"] = json.dumps(meta)
    body = json.dumps(table).encode()
    body += b" " * (-len(body) % 8)
    data = struct.pack("<Q", len(body)) + body + raw[8 + n:]
    data = raw_edit(data) if raw_edit is not None else data
    path = tmp_path / "bad.llmtrace"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("edit, says", [
    (dict(header_edit=lambda h: h.update(version=99)), "written by a newer llmviz"),
    (dict(header_edit=lambda h: h.update(tokens=[9, 9, 9])), "tampered"),
    (dict(header_edit=lambda h: h.pop("config")), "'config' is missing"),
    (dict(header_edit=lambda h: h.update(token_strings=["a"])), "3 tokens but 1 token strings"),
    (dict(raw_edit=lambda d: d[:len(d) - 7]), "cannot be read"),
    (dict(raw_edit=lambda d: d[:40]), "truncated"),
    (dict(raw_edit=lambda d: struct.pack("<Q", 1 << 40) + d[8:]), "not a trace file"),
    (dict(raw_edit=lambda d: b"\x00" * 3), "too short"),
])
def test_a_damaged_trace_is_one_line(tmp_path, edit, says):
    with pytest.raises(TraceFileError, match=says) as err:
        load_trace(_rewritten(tmp_path, **edit))
    assert "\n" not in str(err.value)


def test_a_safetensors_file_that_is_no_trace_is_named_so(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "weights.llmtrace"
    save_file({"w": np.zeros(3, np.float32)}, str(path))
    with pytest.raises(TraceFileError, match="not an llmviz trace"):
        load_trace(path)


def test_text_goes_through_the_folders_own_tokenizer(tmp_path, capsys):
    """A folder with a tokenizer takes text: the ids are the tokenizer's (loaded from disk), the token strings are
    kept in the trace, and a folder without one asks for ids in one line."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = "the quick brown fox jumps over a lazy dog".split()
    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(words)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    _small("llama").eval().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["vocab_size"] = 97
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]").save_pretrained(tmp_path)
    out = tmp_path / "run.llmtrace"
    code, _, stderr = run_cli(capsys, "trace", "--model", str(tmp_path), "--input", "the lazy dog", "--out", str(out))
    assert code == 0, stderr
    header, arrays = load_trace(out)
    assert header["tokens"] == [vocab["the"], vocab["lazy"], vocab["dog"]] == arrays["tokens"].tolist()
    assert header["token_strings"] == ["the", "lazy", "dog"]
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).unlink()
    with pytest.raises(hf_record.RecordError, match="no tokenizer files; give token ids"):
        hf_record.token_ids(hf_record.open_folder(tmp_path), "the lazy dog")


def test_tensors_pick_what_is_kept_and_a_pass_too_big_to_keep_is_refused_before_it_runs(folder, monkeypatch):
    kind, _, path = folder
    opened = hf_record.open_folder(path)
    only = hf_record.record(opened, IDS, lambda i: i.endswith(".resid2") or i.endswith(".resid1"))
    full = hf_record.record(opened, IDS)
    assert set(only) == {k for k in full if k.endswith((".resid1", ".resid2"))} | set(hf_record.ALWAYS_KEPT)
    for k in only:
        assert np.array_equal(only[k], full[k]), k
    # the bound is the config's arithmetic: every head's T × T map, the streams, the logits
    need = hf_record.recorded_bytes(opened.config, len(IDS))
    assert need >= sum(v.nbytes for v in full.values())
    # with less room, the attention maps are pooled 2 × 2 (the means of the full maps' cells, a partial block at the
    # end averaging what it has), and the recording says so; with less than the streams need, it is refused
    odd = IDS + [4]                       # 13 tokens: the last block row and column are partial
    full = hf_record.record(opened, odd)
    need = hf_record.recorded_bytes(opened.config, len(odd))
    streams = hf_record.recorded_bytes(opened.config, len(odd), attention=False)
    monkeypatch.setattr(hf_record, "MAX_RECORDED_BYTES", (need + streams) // 2)
    if kind != "mamba":
        pooled = hf_record.record(opened, odd)
        assert opened.downsampled == {"blocks.*.attn.head.*.softmax": "mean of 2x2 cells"}
        T = len(odd)
        for k, v in full.items():
            if not k.endswith(".softmax"):
                assert np.array_equal(pooled[k], v), k
                continue
            expect = np.array([[v[r:r + 2, c:c + 2].mean() for c in range(0, T, 2)] for r in range(0, T, 2)])
            assert pooled[k].shape == (-(-T // 2),) * 2
            np.testing.assert_allclose(pooled[k], expect, atol=1e-7, err_msg=k)
        monkeypatch.setattr(hf_record, "MAX_RECORDED_BYTES", streams // 2)
        with pytest.raises(hf_record.RecordError, match="would keep about .* shorter input"):
            hf_record.record(opened, odd)
    else:
        hf_record.record(opened, odd)
        assert opened.downsampled == {}
