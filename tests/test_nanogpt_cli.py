"""`llmviz generate` and `llmviz train` as the dispatcher will call them: add_parser, then func(args)."""
import argparse
import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
torch.set_num_threads(1)

from llmviz.scenes.cli import generate_cmd, train_cmd  # noqa: E402


def cli(*argv):
    parser = argparse.ArgumentParser(prog="llmviz")
    sub = parser.add_subparsers(dest="command", required=True)
    generate_cmd.add_parser(sub)
    train_cmd.add_parser(sub)
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_generate_sorts_the_example(capsys):
    assert cli("generate", "--model", "nano-gpt", "--input", "CBABBC") == 0
    out = capsys.readouterr()
    assert out.out == "ABBBCC\n" and out.err == ""


def test_generate_json_has_per_step_probabilities(capsys):
    assert cli("generate", "--input", "CBABBC", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["input"] == "CBABBC" and doc["output"] == "ABBBCC"
    assert [s["token"] for s in doc["steps"]] == list("ABBBCC")
    for step in doc["steps"]:
        assert set(step["probs"]) == {"A", "B", "C"}
        assert abs(sum(step["probs"].values()) - 1) < 1e-5
        assert max(step["probs"], key=step["probs"].get) == step["token"]


def test_sampling_is_reproducible_from_the_seed(capsys):
    runs = []
    for _ in range(2):
        assert cli("generate", "--input", "ACBCAB", "--temperature", "3", "--seed", "7", "--json") == 0
        runs.append(json.loads(capsys.readouterr().out))
    assert runs[0] == runs[1]
    assert set(runs[0]["output"]) <= set("ABC") and len(runs[0]["output"]) == 6


@pytest.mark.parametrize("argv", [
    ["--input", "CBABBD"],                 # a letter outside A/B/C
    ["--input", "cbabbc"],                 # lower case is not the vocabulary
    ["--input", "CBA"],                    # too short
    ["--input", "CBABBCA"],                # too long
    ["--input", ""],
    [],                                    # no input at all
    ["--input", "CBABBC", "--model", "gpt-5"],
    ["--input", "CBABBC", "--temperature", "-1"],
    ["--input", "CBABBC", "--temperature", "warm"],
    ["--input", "CBABBC", "--temperature", "nan"],
    ["--input", "CBABBC", "--seed", "x"],
])
def test_generate_bad_input_is_one_line_and_exit_2(capsys, argv):
    assert cli("generate", *argv) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.count("\n") == 1 and out.err.startswith("llmviz generate: error: ")
    assert "Traceback" not in out.err


def test_generate_missing_weights_file_is_one_line(capsys, tmp_path):
    assert cli("generate", "--input", "CBABBC", "--weights", str(tmp_path / "none.safetensors")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot load weights" in err


def test_train_with_a_few_steps_reports_and_saves(capsys, tmp_path):
    out_file = tmp_path / "w.safetensors"
    assert cli("train", "nano-gpt", "--seed", "3", "--steps", "5", "--out", str(out_file)) == 0
    out = capsys.readouterr().out
    assert "step     5/5" in out and "loss" in out and "elapsed" in out
    assert "held-out accuracy:" in out and str(out_file) in out
    from llmviz.models.sim.nanogpt import load_nanogpt
    assert load_nanogpt(out_file).trace([0, 1, 2])["logits"].shape == (3, 3)


def test_train_rejects_unknown_model_and_bad_steps(capsys):
    assert cli("train", "gpt-5") == 2
    assert cli("train", "nano-gpt", "--steps", "0") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "unknown model" in err and "--steps" in err


def test_training_is_deterministic_from_the_seed():
    from llmviz.models.sim.train_nanogpt import train
    a = train(seed=11, steps=4, log=lambda line: None).model.state_dict()
    b = train(seed=11, steps=4, log=lambda line: None).model.state_dict()
    c = train(seed=12, steps=4, log=lambda line: None).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
