"""Hostile command lines, one row each: every one exits non-zero with exactly one stderr line and no traceback.

Each row is a case seen by trying the program as a hostile user would (issue 9); all of them fail
before any scene is built, model trained or file written, so the table runs in-process and fast.
"""
import json
import os
import subprocess

import pytest

from llmviz.scenes.cli.main import main

DIGITS_5000 = "9" * 5000
TINY = {"id": "tiny", "name": "Tiny GPT", "kind": "decoder-only", "sources": ["notes"],
        "architecture": {"n_layers": 2, "d_model": 48, "n_heads": 4, "d_ff": 192, "vocab_size": 10,
                         "context_length": 8, "pos_encoding": "learned", "norm": "layernorm",
                         "activation": "gelu", "bias": True, "unembedding": "tied"}}


def spec_with(tmp, name, **arch):
    data = json.loads(json.dumps(TINY))
    data["architecture"].update(arch)
    path = tmp / name
    path.write_text(json.dumps(data))
    return str(path)


def files(tmp):
    """The hostile files some rows name (created fresh for each test)."""
    fifo = tmp / "pipe.json"
    os.mkfifo(fifo)
    (tmp / "zero.json").symlink_to("/dev/zero")
    newline = json.loads(json.dumps(TINY)) | {"id": "tiny\n"}
    (tmp / "newline.json").write_text(json.dumps(newline))
    (tmp / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp / "deep.toml").write_text("a = " + "[" * 100_000 + "]" * 100_000)
    (tmp / "huge.json").write_text(json.dumps(TINY).replace('"n_layers": 2', '"n_layers": ' + DIGITS_5000))
    weights = tmp / "half.safetensors"
    from llmviz.models.sim.nanogpt import shipped_weights_path

    data = shipped_weights_path().read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    return {
        "FIFO": str(fifo), "ZERO": str(tmp / "zero.json"), "NEWLINE": str(tmp / "newline.json"),
        "DEEP_JSON": str(tmp / "deep.json"), "DEEP_TOML": str(tmp / "deep.toml"), "HUGE_INT": str(tmp / "huge.json"),
        "PERIOD": spec_with(tmp, "period.json", hybrid={"period": []}),
        "COMPONENT": spec_with(tmp, "component.json", components=[{"type": []}]),
        "LAYERS": spec_with(tmp, "layers.json", n_layers=10**8),
        "HEADS": spec_with(tmp, "heads.json", n_heads=2**20, d_model=2**20),
        "HALF_WEIGHTS": str(weights), "DIR": str(tmp), "OUT": str(tmp / "o.png"),
    }


CASES = {
    # the first subcommand-like word is an option's value
    "view-bench-render": ["--view", "bench", "render"],
    "scene-models-render": ["--scene", "models", "render"],
    "window-frames-0": ["--frames", "0"],
    "window-frames-negative": ["--frames", "-1"],
    # render: scenes, outputs and cameras, all checked before work
    "stress-5000-digits": ["render", "--scene", f"stress:{DIGITS_5000}", "--out", "OUT"],
    "stress-over-atlas": ["render", "--scene", "stress:3000000", "--out", "OUT"],
    "render-unknown-extension": ["render", "--scene", "stress:10", "--out", "o.xyz"],
    "render-no-extension": ["render", "--scene", "stress:10", "--out", "noext"],
    "render-dev-full": ["render", "--scene", "stress:10", "--out", "/dev/full"],
    "render-proc-version": ["render", "--scene", "stress:10", "--out", "/proc/version"],
    "render-into-proc": ["render", "--scene", "stress:10", "--out", "/proc/llmviz.png"],
    "render-out-folder": ["render", "--scene", "stress:10", "--out", "DIR"],
    "camera-path-two-dots": ["render", "--scene", "stress:10", "--out", "OUT", "--camera", "path:1.2.3"],
    "camera-path-dot": ["render", "--scene", "stress:10", "--out", "OUT", "--camera", "path:."],
    "camera-double-dot": ["render", "--scene", "stress:10", "--out", "OUT", "--camera", "1..2,0,0:0,0,0"],
    "camera-overflow": ["render", "--scene", "stress:10", "--out", "OUT", "--camera", "1e400,0,0:0,0,0"],
    "step-without-chapter": ["render", "--scene", "stress:10", "--out", "OUT", "--step", "2"],
    "report-not-json": ["render", "--scene", "stress:10", "--out", "OUT", "--report", "r.txt"],
    "report-missing-folder": ["render", "--scene", "stress:10", "--out", "OUT", "--report", "/nonexistent/r.json"],
    "report-proc": ["render", "--scene", "stress:10", "--out", "OUT", "--report", "/proc/r.json"],
    "report-without-ui": ["render", "--scene", "stress:10", "--out", "OUT", "--report", "r.json", "--no-ui"],
    # generate
    "temperature-tiny": ["generate", "--input", "CBABBC", "--temperature", "1e-300"],
    "seed-2-64": ["generate", "--input", "CBABBC", "--seed", str(2**64)],
    "seed-5000-digits": ["generate", "--input", "CBABBC", "--seed", DIGITS_5000],
    "weights-dev-zero": ["generate", "--input", "CBABBC", "--weights", "/dev/zero"],
    "weights-truncated": ["generate", "--input", "CBABBC", "--weights", "HALF_WEIGHTS"],
    # train: every output problem found before training
    "train-seed-30-digits": ["train", "nano-gpt", "--seed", "1" + "0" * 29],
    "train-out-folder": ["train", "nano-gpt", "--out", "DIR"],
    "train-out-proc": ["train", "nano-gpt", "--out", "/proc/version"],
    "train-out-proc-folder": ["train", "nano-gpt", "--out", "/proc/w.safetensors"],
    "train-steps-0": ["train", "nano-gpt", "--steps", "0"],
    "train-record-proc": ["train", "nano-gpt", "--record", "/proc/version/rec"],
    "train-record-a-file": ["train", "nano-gpt", "--record", "/proc/version"],
    "train-record-moe": ["train", "moe-4", "--record", "DIR"],
    # routing
    "capacity-factor-1e308": ["routing", "--capacity-factor", "1e308"],
    "routing-long-text": ["routing", "--model", "deepseek-v3", "--text", "a" * 120_000],
    "routing-top-k-huge": ["routing", "--top-k", "9" * 40],
    "routing-out-dev-full": ["routing", "--out", "/dev/full"],
    "routing-out-txt": ["routing", "--out", "trace.txt"],
    # models
    "show-empty": ["models", "--show", ""],
    "add-empty": ["models", "--add", ""],
    "add-fifo": ["models", "--add", "FIFO"],
    "add-dev-zero": ["models", "--add", "ZERO"],
    "add-id-newline": ["models", "--add", "NEWLINE"],
    "add-deep-json": ["models", "--add", "DEEP_JSON"],
    "add-deep-toml": ["models", "--add", "DEEP_TOML"],
    "add-5000-digit-int": ["models", "--add", "HUGE_INT"],
    "add-empty-period": ["models", "--add", "PERIOD"],
    "add-component-type-list": ["models", "--add", "COMPONENT"],
    "add-1e8-layers": ["models", "--add", "LAYERS"],
    "add-2-20-heads": ["models", "--add", "HEADS"],
    "chapters-unknown-flag": ["chapters", "--bogus"],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_argument_is_one_line_and_non_zero(name, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLMVIZ_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.chdir(tmp_path)
    names = files(tmp_path)
    argv = [names.get(arg, arg) for arg in CASES[name]]
    code = main(argv)  # an exception escaping here is the traceback the user would see
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    assert not (tmp_path / "config" / "specs").exists() or not any((tmp_path / "config" / "specs").iterdir())
    assert not os.path.exists(tmp_path / "o.png")


def test_the_stress_limit_fits_the_data_atlas():
    """MAX_STRESS is the true limit: recomputed from the engine's atlas and the stress scene's data blocks."""
    from llmviz.engine import stress
    from llmviz.engine.render.gl import DATA_ATLAS_SIZE
    from llmviz.scenes.registry import MAX_STRESS

    rows, cols = stress.DATA_BLOCK_SHAPE
    per_strip = 128
    strips = (DATA_ATLAS_SIZE // (cols * per_strip)) * (DATA_ATLAS_SIZE // rows)
    assert MAX_STRESS <= strips * per_strip * stress.DATA_BLOCK_EVERY


def test_a_display_that_does_not_answer_is_one_line_naming_the_headless_commands():
    env = dict(os.environ, DISPLAY=":97")
    env.pop("WAYLAND_DISPLAY", None)
    done = subprocess.run([os.path.join(os.path.dirname(os.sys.executable), "llmviz")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "does not answer" in done.stderr and "llmviz render" in done.stderr
    assert "INFO" not in done.stderr
