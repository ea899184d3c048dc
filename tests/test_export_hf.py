"""`llmviz export-hf`: nano-GPT and mamba-tiny written in transformers' format load with from_pretrained and compute
what our simulation computes (transformers' own forward is the reference); models that cannot be
exported and folders that cannot receive them fail in one line and leave nothing behind."""
import contextlib
import io
import json
import subprocess

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
torch.set_num_threads(1)

from llmviz.models.registry import load_registry  # noqa: E402
from llmviz.models.sim import sort_task  # noqa: E402
from llmviz.models.sim.nanogpt import load_nanogpt  # noqa: E402
from llmviz.scenes.cli.main import main  # noqa: E402

TOL = 1e-5
INPUTS = [
    sort_task.encode("CBABBC" + "ABBBC"),  # the full context of 11 tokens
    sort_task.encode("ACBCAB"),
    sort_task.encode("B"),
    [2, 0, 1, 1, 0, 2, 0, 0, 1, 1],
]
FILES = ["config.json", "model.safetensors"]


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def snapshot(folder):
    """Every entry under a folder, hidden ones too, with its bytes: what 'untouched' compares."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(folder, what the command printed) for `llmviz export-hf nano-gpt FOLDER`."""
    folder = tmp_path_factory.mktemp("export") / "nano-gpt-hf"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["export-hf", "nano-gpt", str(folder)])
    assert code == 0
    return folder, out.getvalue()


@pytest.fixture(scope="module")
def hf(exported):
    model, info = transformers.AutoModelForCausalLM.from_pretrained(exported[0], output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    return model.eval()


@pytest.fixture(scope="module")
def ours():
    return load_nanogpt()


# ---- the round trip ------------------------------------------------------------------------

def test_folder_holds_exactly_the_two_files(exported):
    folder, _ = exported
    assert sorted(p.name for p in folder.iterdir()) == FILES
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging left


def test_auto_class_is_gpt2_with_its_own_head(hf):
    assert type(hf) is transformers.GPT2LMHeadModel
    assert hf.lm_head.weight.data_ptr() != hf.transformer.wte.weight.data_ptr()
    assert hf.lm_head.weight.shape == (3, 48) and hf.lm_head.bias is None


def test_logits_equal_the_simulation(hf, ours):
    for tokens in INPUTS:
        with torch.inference_mode():
            theirs = hf(torch.tensor([tokens])).logits[0].numpy()
        np.testing.assert_allclose(ours.trace(tokens)["logits"], theirs, rtol=TOL, atol=TOL)


def test_the_family_class_loads_it_too(exported, ours):
    model = transformers.GPT2LMHeadModel.from_pretrained(exported[0]).eval()
    tokens = INPUTS[0]
    with torch.inference_mode():
        theirs = model(torch.tensor([tokens])).logits[0].numpy()
    np.testing.assert_allclose(ours.trace(tokens)["logits"], theirs, rtol=TOL, atol=TOL)


def test_greedy_generation_gives_the_same_tokens(hf, ours):
    for text in ("CBABBC", "ACBCAB", "BBBAAA", "CCCCCA"):
        tokens = sort_task.encode(text)
        with torch.inference_mode():
            out = hf.generate(torch.tensor([tokens]), max_new_tokens=sort_task.INPUT_LENGTH, do_sample=False)
        theirs = out[0, len(tokens):].tolist()
        assert theirs == [step["token"] for step in ours.generate(tokens, sort_task.INPUT_LENGTH)], text


def test_config_fields_match_the_spec(exported, hf):
    arch = load_registry(include_user=False).get("nano-gpt").architecture
    raw = json.loads((exported[0] / "config.json").read_text())
    for field, expected in (("n_layer", arch.n_layers), ("n_embd", arch.d_model), ("n_head", arch.n_heads),
                            ("vocab_size", arch.vocab_size), ("n_positions", arch.context_length),
                            ("n_inner", arch.d_ff)):
        assert raw[field] == expected, field
        assert getattr(hf.config, field) == expected, field
    assert raw["model_type"] == "gpt2" and raw["architectures"] == ["GPT2LMHeadModel"]
    assert raw["tie_word_embeddings"] is False and hf.config.tie_word_embeddings is False


def test_cli_reports_files_sizes_parameters_and_a_working_load_line(exported, hf):
    folder, out = exported
    for name in FILES:
        size = (folder / name).stat().st_size
        assert any(name in line and f"{size:,}" in line for line in out.splitlines()), (name, out)
    parameters = sum(p.numel() for p in hf.parameters())  # transformers' own count
    assert f"{parameters:,} parameters" in out
    line = next(line.strip() for line in out.splitlines() if "from_pretrained(" in line)
    namespace = {}
    exec(line, namespace)
    assert type(namespace["model"]) is transformers.GPT2LMHeadModel


# ---- what cannot be exported ---------------------------------------------------------------

@pytest.mark.parametrize("model,why", [
    ("moe-4", ["learned positions", "LayerNorm", "biases"]),
    ("moe-8", ["learned positions", "LayerNorm", "biases"]),
    ("gpt-3-175b", ["structure only"]),
    ("gpt-2-smal", ["unknown model", "gpt-2-small"]),
])
def test_unexportable_models_fail_in_one_line_and_write_nothing(capsys, tmp_path, model, why):
    target = tmp_path / "out"
    code, out, err = run_cli(capsys, "export-hf", model, str(target))
    line = one_line(err)
    assert code == 2 and out == ""
    assert all(word in line for word in why), line
    assert "exportable: nano-gpt" in line
    assert list(tmp_path.iterdir()) == []
    target.mkdir()  # an empty folder given: it stays empty
    assert run_cli(capsys, "export-hf", model, str(target))[0] == 2
    assert list(target.iterdir()) == []


def test_a_non_empty_folder_without_force_is_left_untouched(capsys, tmp_path):
    (tmp_path / "config.json").write_text('{"mine": true}')
    (tmp_path / "notes.txt").write_text("keep me")
    before = snapshot(tmp_path)
    code, out, err = run_cli(capsys, "export-hf", "nano-gpt", str(tmp_path))
    line = one_line(err)
    assert code == 2 and "config.json" in line and "--force" in line and "model.safetensors" not in line.split(
        "overwrite")[1].split(";")[0]
    assert snapshot(tmp_path) == before


def test_force_replaces_the_two_files_and_keeps_the_rest(capsys, tmp_path, ours):
    (tmp_path / "config.json").write_text('{"mine": true}')
    (tmp_path / "notes.txt").write_text("keep me")
    code, _, err = run_cli(capsys, "export-hf", "nano-gpt", str(tmp_path), "--force")
    assert code == 0, err
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES + ["notes.txt"])
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    with torch.inference_mode():
        theirs = model(torch.tensor([INPUTS[1]])).logits[0].numpy()
    np.testing.assert_allclose(ours.trace(INPUTS[1])["logits"], theirs, rtol=TOL, atol=TOL)


def test_an_existing_empty_folder_receives_the_export(capsys, tmp_path):
    target = tmp_path / "empty"
    target.mkdir()
    target.chmod(0o750)
    code, _, err = run_cli(capsys, "export-hf", "nano-gpt", str(target))
    assert code == 0, err
    assert sorted(p.name for p in target.iterdir()) == FILES
    assert target.stat().st_mode & 0o777 == 0o750  # the folder the user made keeps its mode
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]
    transformers.AutoModelForCausalLM.from_pretrained(target)


def test_a_file_in_place_of_the_folder_or_a_missing_parent_fails(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(capsys, "export-hf", "nano-gpt", str(tmp_path / "file"))
    assert code == 2 and "not a folder" in one_line(err)
    code, _, err = run_cli(capsys, "export-hf", "nano-gpt", str(tmp_path / "no" / "such"))
    assert code == 2 and "does not exist" in one_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# ---- failed writes leave nothing -----------------------------------------------------------

def test_a_full_disk_leaves_no_partial_folder(capsys, tiny_fs):
    # 64 KiB: config.json fits, the 340 KB weights do not
    code, out, err = run_cli(capsys, "export-hf", "nano-gpt", str(tiny_fs / "out"))
    assert code == 1 and out == ""
    assert "nothing was written" in one_line(err)
    assert list(tiny_fs.iterdir()) == []


def test_a_read_only_parent_leaves_nothing(capsys, tiny_fs):
    done = subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot remount read-only: {done.stderr.decode().strip()}")
    try:
        code, _, err = run_cli(capsys, "export-hf", "nano-gpt", str(tiny_fs / "out"))
        assert code == 1 and "read-only" in one_line(err).lower()
        assert list(tiny_fs.iterdir()) == []
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tiny_fs)], check=True)


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_write_failing_after_the_first_file_leaves_no_folder(capsys, tmp_path, monkeypatch, error):
    import llmviz.models.export_hf as export_hf

    real, calls = export_hf.write_atomic, []

    def second_fails(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise error
        return real(path, data)

    monkeypatch.setattr(export_hf, "write_atomic", second_fails)
    if isinstance(error, KeyboardInterrupt):
        assert run_cli(capsys, "export-hf", "nano-gpt", str(tmp_path / "out"))[0] == 130
    else:
        code, _, err = run_cli(capsys, "export-hf", "nano-gpt", str(tmp_path / "out"))
        assert code == 1 and "No space left" in one_line(err)
    assert len(calls) == 2
    assert list(tmp_path.iterdir()) == []


def test_a_failed_forced_write_leaves_the_old_files(capsys, tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text('{"mine": true}')
    (tmp_path / "model.safetensors").write_bytes(b"old weights")
    before = snapshot(tmp_path)
    real, calls = type(tmp_path).write_bytes, []

    def second_fails(self, data):
        calls.append(self)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        return real(self, data)

    monkeypatch.setattr(type(tmp_path), "write_bytes", second_fails)
    code, _, err = run_cli(capsys, "export-hf", "nano-gpt", str(tmp_path), "--force")
    monkeypatch.undo()
    assert code == 1 and "Input/output error" in one_line(err)
    assert len(calls) == 2
    assert snapshot(tmp_path) == before  # the first file written was never renamed over its target


# ---- mamba-tiny: transformers' MambaForCausalLM ----------------------------------------------

@pytest.fixture(scope="module")
def mamba_exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export") / "mamba-tiny-hf"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["export-hf", "mamba-tiny", str(folder)])
    assert code == 0
    return folder, out.getvalue()


def test_mamba_round_trip_loads_as_mamba_and_computes_our_logits(mamba_exported):
    from llmviz.models.sim import mamba_trace
    from llmviz.models.sim.mamba_model import load_mamba

    folder, out = mamba_exported
    assert sorted(p.name for p in folder.iterdir()) == FILES
    model, info = transformers.AutoModelForCausalLM.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    assert type(model) is transformers.MambaForCausalLM
    assert model.lm_head.weight.data_ptr() == model.backbone.embeddings.weight.data_ptr()  # tied again
    ours = load_mamba()
    generator = torch.Generator().manual_seed(0)
    for length in (1, 5, 33):
        tokens = torch.randint(96, (length,), generator=generator).tolist()
        with torch.inference_mode():
            theirs = model.eval()(torch.tensor([tokens])).logits[0].numpy()
        np.testing.assert_allclose(mamba_trace.trace(ours, tokens)["logits"], theirs, rtol=TOL, atol=TOL)
    assert f"{sum(p.numel() for p in model.parameters()):,} parameters" in out
    family = transformers.MambaForCausalLM.from_pretrained(folder)
    for name, value in family.state_dict().items():
        assert torch.equal(value, ours.state_dict()[name]), name


def test_mamba_config_fields_match_the_spec(mamba_exported):
    arch = load_registry(include_user=False).get("mamba-tiny").architecture
    raw = json.loads((mamba_exported[0] / "config.json").read_text())
    assert raw["model_type"] == "mamba" and raw["architectures"] == ["MambaForCausalLM"]
    for field, expected in (("num_hidden_layers", arch.n_layers), ("hidden_size", arch.d_model),
                            ("vocab_size", arch.vocab_size), ("state_size", arch.ssm.d_state),
                            ("conv_kernel", arch.ssm.d_conv), ("expand", arch.ssm.expand),
                            ("time_step_rank", arch.ssm.dt_rank)):
        assert raw[field] == expected, field
    assert raw["tie_word_embeddings"] is True and raw["use_bias"] is False and raw["use_conv_bias"] is True


def test_mamba_export_needs_no_transformers(tmp_path):
    import sys

    # transformers made unimportable: the export reads the checked weights file and writes JSON
    code = ("import sys; sys.modules['transformers'] = None; from llmviz.scenes.cli.main import main; "
            f"sys.exit(main(['export-hf', 'mamba-tiny', {str(tmp_path / 'out')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == FILES
