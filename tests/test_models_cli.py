"""`llmviz models`: the table, --json, --show, and --add of good and bad user spec files."""
import argparse
import json
from pathlib import Path

import pytest

from llmviz.models.registry import builtin_specs, config_dir
from llmviz.scenes.cli import models_cmd

GOOD = {
    "id": "tiny-gpt", "name": "Tiny GPT", "kind": "decoder-only", "sources": ["a test"],
    "architecture": {"n_layers": 2, "d_model": 48, "n_heads": 4, "d_ff": 192, "vocab_size": 10,
                     "context_length": 8, "pos_encoding": "learned", "norm": "layernorm",
                     "activation": "gelu", "bias": True, "unembedding": "tied"},
}
JSON_KEYS = {"id", "name", "kind", "layers", "d_model", "heads", "experts", "params_total",
             "params_active", "params_stated", "speculative"}


@pytest.fixture(autouse=True)
def config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMVIZ_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path / "config"


def models(*argv) -> int:
    parser = argparse.ArgumentParser(prog="llmviz")
    models_cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["models", *argv])
    return args.func(args)


def write(folder: Path, name: str, data) -> Path:
    path = folder / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def listed(capsys) -> dict:
    capsys.readouterr()                     # drop what earlier commands printed
    assert models("--json") == 0
    return {row["id"]: row for row in json.loads(capsys.readouterr().out)}


def test_json_lists_every_builtin_with_the_keys(capsys):
    rows = listed(capsys)
    assert len(rows) == len(builtin_specs())
    for row in rows.values():
        assert JSON_KEYS <= set(row)
    mixtral = rows["mixtral-8x7b"]
    assert (mixtral["experts"], mixtral["top_k"], mixtral["layers"]) == (8, 2, 32)
    assert mixtral["params_total"] == 46_702_792_704 and mixtral["params_stated"] == 47e9
    assert rows["gpt-4"]["speculative"] is True and rows["gpt-2-small"]["speculative"] is False


def test_table_has_one_row_per_model_in_human_units(capsys):
    assert models() == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "KIND", "LAYERS", "WIDTH", "HEADS", "STACKS", "EXPERTS",
                                "TOTAL", "ACTIVE", "SPECULATIVE"]
    assert len(lines) == 1 + len(builtin_specs())
    deepseek = next(line for line in lines if line.startswith("deepseek-v3 "))
    assert "256+1 top-8" in deepseek and "671.0B" in deepseek and "37.6B" in deepseek
    gpt4 = next(line for line in lines if line.startswith("gpt-4 "))
    assert gpt4.rstrip().endswith("yes")


def test_add_good_file_makes_it_listable(tmp_path, capsys, config_home):
    assert models("--add", str(write(tmp_path, "mine.json", GOOD))) == 0
    assert "added tiny-gpt" in capsys.readouterr().out
    assert (config_home / "specs" / "tiny-gpt.json").is_file()
    row = listed(capsys)["tiny-gpt"]
    assert row["params_total"] > 0 and row["origin"].endswith("tiny-gpt.json")
    assert models("--show", "tiny-gpt") == 0
    assert "Tiny GPT" in capsys.readouterr().out


def test_add_toml_file(tmp_path, capsys, config_home):
    toml = "\n".join(['id = "toml-gpt"', 'name = "TOML GPT"', 'kind = "decoder-only"',
                      'sources = []', "[architecture]"]
                     + [f"{k} = {json.dumps(v).lower() if isinstance(v, bool) else json.dumps(v)}"
                        for k, v in GOOD["architecture"].items()])
    assert models("--add", str(write(tmp_path, "mine.toml", toml))) == 0
    assert (config_home / "specs" / "toml-gpt.toml").is_file()
    assert "toml-gpt" in listed(capsys)


def test_add_bad_file_exits_2_with_one_line(tmp_path, capsys, config_home):
    bad = json.loads(json.dumps(GOOD))
    bad["architecture"]["n_heads"] = 5
    assert models("--add", str(write(tmp_path, "my.json", bad))) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("llmviz models: my.json: architecture.n_heads: "
                            "5 does not divide d_model 48\n")
    assert not (config_home / "specs").exists() or not any((config_home / "specs").iterdir())


@pytest.mark.parametrize("content,words", [
    ("{not json", "not valid JSON"),
    (dict(GOOD, id="gpt-2-small"), "'gpt-2-small' is a built-in model"),
    (dict(GOOD, kind="transformer"), "kind: unknown kind 'transformer'"),
    ([1, 2], "expected an object"),
])
def test_add_refusals_are_one_line(tmp_path, capsys, content, words):
    assert models("--add", str(write(tmp_path, "x.json", content))) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_add_missing_or_wrong_suffix(tmp_path, capsys):
    assert models("--add", str(tmp_path / "absent.json")) == 2
    assert "cannot read the file" in capsys.readouterr().err
    assert models("--add", str(write(tmp_path, "spec.yaml", "id: x"))) == 2
    assert ".json or .toml" in capsys.readouterr().err


def test_re_adding_an_id_replaces_the_old_file(tmp_path, capsys, config_home):
    assert models("--add", str(write(tmp_path, "a.json", GOOD))) == 0
    assert models("--add", str(write(tmp_path, "b.json", dict(GOOD, name="Renamed")))) == 0
    assert [p.name for p in (config_home / "specs").iterdir()] == ["tiny-gpt.json"]
    assert listed(capsys)["tiny-gpt"]["name"] == "Renamed"


def test_broken_user_file_is_reported_not_fatal(capsys, config_home):
    (config_home / "specs").mkdir(parents=True)
    write(config_home / "specs", "broken.json", dict(GOOD, id="x", architecture={}))
    assert models("--json") == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)) == len(builtin_specs())
    assert "skipped broken.json: architecture.n_layers: required field is missing" in captured.err


def test_show_prints_sources_and_notes(capsys):
    assert models("--show", "deepseek-v3") == 0
    out = capsys.readouterr().out
    assert "sources:" in out and "config_671B.json" in out
    assert "notes:" in out and "not in the total: mtp" in out


def test_show_unknown_id_suggests_close_names(capsys):
    assert models("--show", "gpt2") == 2
    err = capsys.readouterr().err
    assert err.startswith("llmviz models: unknown model 'gpt2'; did you mean: gpt-2-small")
    assert err.count("\n") == 1


def test_show_json(capsys):
    assert models("--show", "claude", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == "claude-like" and shown["speculative"] and shown["sources"]


def test_config_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMVIZ_CONFIG_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_dir() == tmp_path / "explicit"
    monkeypatch.delenv("LLMVIZ_CONFIG_DIR")
    assert config_dir() == tmp_path / "xdg" / "llmviz"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config_dir() == tmp_path / "home" / ".config" / "llmviz"


def test_main_dispatcher_runs_models(capsys):
    from llmviz.scenes.cli.main import main

    assert main(["models", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == len(builtin_specs())
