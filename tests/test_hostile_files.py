"""Hostile files: nothing lost on a full disk or a re-add, nothing allocated before a bad file is refused."""
import json
import os
import stat
import tracemalloc

import pytest

from llmviz.models.registry import add_user_spec, read_spec_text
from llmviz.models.spec import SpecError
from llmviz.scenes.cli.main import main

TINY = {"id": "tiny", "name": "Tiny GPT", "kind": "decoder-only", "sources": ["notes"],
        "architecture": {"n_layers": 2, "d_model": 48, "n_heads": 4, "d_ff": 192, "vocab_size": 10,
                         "context_length": 8, "pos_encoding": "learned", "norm": "layernorm",
                         "activation": "gelu", "bias": True, "unembedding": "tied"}}


def fill(folder):
    """Take every free byte of the file system holding ``folder``."""
    try:
        with open(folder / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:  # ENOSPC, at open or at a write: the disk is full
        pass


def one_line_failure(capsys, code):
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def spec_file(folder, name="tiny.json", **changes):
    data = json.loads(json.dumps(TINY)) | changes
    path = folder / name
    path.write_text(json.dumps(data))
    return path


# ---------------------------------------------------------------- data lost

def test_re_adding_the_stored_spec_keeps_it(tmp_path):
    store = tmp_path / "specs"
    _, target = add_user_spec(spec_file(tmp_path), user_dir=store)
    before = target.read_bytes()
    add_user_spec(target, user_dir=store)
    assert target.read_bytes() == before
    assert stat.S_IMODE(target.stat().st_mode) & 0o044  # readable by others, not mkstemp's 0600


def test_an_id_never_shadows_another_specs_alias(tmp_path):
    store = tmp_path / "specs"
    add_user_spec(spec_file(tmp_path, aliases=["foo"]), user_dir=store)
    with pytest.raises(SpecError, match="'foo' is used by"):
        add_user_spec(spec_file(tmp_path, "foo.json", id="foo"), user_dir=store)
    with pytest.raises(SpecError, match="built-in"):
        add_user_spec(spec_file(tmp_path, "g.json", id="mine", aliases=["claude"]), user_dir=store)
    assert sorted(p.name for p in store.iterdir()) == ["tiny.json"]


def test_a_failed_re_add_on_a_full_disk_keeps_the_old_spec(tiny_fs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLMVIZ_CONFIG_DIR", str(tiny_fs))
    assert main(["models", "--add", str(spec_file(tmp_path))]) == 0
    stored = tiny_fs / "specs" / "tiny.json"
    before = stored.read_bytes()
    fill(tiny_fs)
    capsys.readouterr()
    bigger = spec_file(tmp_path, notes="n" * 60_000)
    one_line_failure(capsys, main(["models", "--add", str(bigger)]))
    assert stored.read_bytes() == before
    assert [p.name for p in (tiny_fs / "specs").iterdir()] == ["tiny.json"]


def test_routing_out_on_a_full_disk_is_one_line_and_leaves_the_old_file(tiny_fs, capsys):
    out = tiny_fs / "trace.csv"
    out.write_text("old,trace\n")
    fill(tiny_fs)
    one_line_failure(capsys, main(["routing", "--model", "mixtral-8x7b", "--text", "hi", "--out", str(out)]))
    assert out.read_text() == "old,trace\n"
    assert sorted(p.name for p in tiny_fs.iterdir()) == ["filler", "trace.csv"]


def test_render_out_on_a_full_disk_fails_before_rendering_and_keeps_the_png(tiny_fs, capsys):
    out = tiny_fs / "good.png"
    out.write_bytes(b"\x89PNG good")
    fill(tiny_fs)
    one_line_failure(capsys, main(["render", "--scene", "stress:10", "--size", "64x64", "--out", str(out)]))
    assert out.read_bytes() == b"\x89PNG good"
    assert sorted(p.name for p in tiny_fs.iterdir()) == ["filler", "good.png"]


def test_train_out_on_a_full_disk_fails_before_training(tiny_fs, capsys, monkeypatch):
    from llmviz.models.sim import train_nanogpt

    monkeypatch.setattr(train_nanogpt, "train", lambda **_: pytest.fail("trained before checking --out"))
    one_line_failure(capsys, main(["train", "nano-gpt", "--out", str(tiny_fs / "w.safetensors")]))
    assert [p.name for p in tiny_fs.iterdir()] == []


def test_bookmarks_on_a_full_disk_keep_the_old_file(tiny_fs):
    import numpy as np

    from llmviz.engine.camera_control import Pose
    from llmviz.scenes.bookmarks import load_bookmarks, save_bookmarks

    pose = Pose(np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.0, 0.0, 1.0]))
    path = save_bookmarks("m", {1: pose}, tiny_fs)
    before = path.read_bytes()
    fill(tiny_fs)
    with pytest.raises(OSError):
        save_bookmarks("m", {k: pose for k in range(10)}, tiny_fs)
    assert path.read_bytes() == before and list(load_bookmarks("m", tiny_fs)) == [1]


def test_a_zero_quaternion_bookmark_is_ignored_not_a_nan_pose(tmp_path, capsys):
    from llmviz.scenes.bookmarks import load_bookmarks

    (tmp_path / "m.json").write_text(json.dumps({"bookmarks": {"1": {"position": [0, 0, 0],
                                                                      "orientation": [0, 0, 0, 0]}}}))
    assert load_bookmarks("m", tmp_path) == {}
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "m.json" in err


def test_trained_weights_are_written_readable_by_others(tmp_path):
    from llmviz.models.sim.nanogpt import NanoGPT, save_safetensors

    old = os.umask(0o022)
    try:
        save_safetensors(NanoGPT(), tmp_path / "w.safetensors")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "w.safetensors").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


# ---------------------------------------------------------------- memory: refused before allocation

@pytest.mark.parametrize("changes", [
    {"n_layers": 10**8}, {"n_layers": 10**6}, {"n_heads": 2**20, "d_model": 2**20},
    {"n_layers": 10_000, "n_heads": 1024, "d_model": 1024 * 64},
    {"moe": {"n_experts": 10**6, "top_k": 2, "expert_d_ff": 8, "routing": "topk-softmax"}},
    {"hybrid": {"period": ["attention"] * 10**6}},
])
def test_hostile_sizes_are_refused_before_any_large_allocation(changes):
    data = json.loads(json.dumps(TINY))
    data["architecture"].update(changes)
    text = json.dumps(data)
    tracemalloc.start()
    try:
        with pytest.raises(SpecError) as err:
            read_spec_text(text, "hostile.json")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "\n" not in str(err.value)
    assert peak < 4 * len(text) + 2_000_000  # the parsed text itself, never a per-layer list


def _relabel(config_changes=None, dtype=None, fill_value=None):
    """The shipped nano-GPT weights with their metadata config, one dtype or all values changed."""
    import torch
    from safetensors.torch import load, save

    from llmviz.models.sim.nanogpt import shipped_weights_path

    data = shipped_weights_path().read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    info = json.loads(header["__metadata__"]["llmviz"])
    info["config"].update(config_changes or {})
    state = load(data)
    if fill_value is not None:
        state = {k: torch.full_like(v, fill_value) for k, v in state.items()}
    out = bytearray(save(state, metadata={"llmviz": json.dumps(info)}))
    if dtype:  # relabel the first tensor's dtype in place, keeping the header's length
        m = int.from_bytes(out[:8], "little")
        text = out[8:8 + m].decode().replace('"F32"', f'"{dtype}"', 1)
        out[8:8 + m] = text.encode()
    return bytes(out)


@pytest.mark.parametrize("case, match", [
    ({"config_changes": {"d_model": 960, "n_layers": 12, "n_heads": 1}}, "shape"),
    ({"config_changes": {"n_heads": 0}}, "n_heads"),
    ({"config_changes": {"n_heads": 5}}, "does not divide"),
    ({"dtype": "I32"}, "dtype I32"),
    ({"fill_value": float("nan")}, "NaN"),
    ({"fill_value": float("inf")}, "NaN or Inf"),
    ({"fill_value": 0.0}, "all zeros"),
])
def test_bad_weights_are_refused_naming_the_file_and_no_full_model_is_built(tmp_path, monkeypatch, case, match):
    import torch

    from llmviz.models.sim import nanogpt
    from llmviz.models.sim.weights_file import WeightsError

    path = tmp_path / "bad.safetensors"
    path.write_bytes(_relabel(**case))
    devices = []
    real = nanogpt.NanoGPT

    def recording(cfg):
        devices.append(torch.empty(0).device.type)
        return real(cfg)

    monkeypatch.setattr(nanogpt, "NanoGPT", recording)
    with pytest.raises(WeightsError, match=match) as err:
        nanogpt.load_nanogpt(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert set(devices) <= {"meta"}, "a real model was built from a file that does not fit it"


def test_a_broken_shipped_weights_file_is_named_by_the_simulation(tmp_path):
    from llmviz.models.sim.tick import SimulationRunner
    from llmviz.models.sim.nanogpt import load_nanogpt

    path = tmp_path / "w.safetensors"
    path.write_bytes(_relabel(fill_value=float("nan")))
    with SimulationRunner(lambda: load_nanogpt(path).trace) as runner:
        runner.submit([0, 1])
        errors = [runner.wait(30).error for _ in range(2)]
    assert all("w.safetensors" in e and "NaN" in e for e in errors), errors


# ---------------------------------------------------------------- chapters and bindings

CHAPTER = """title = "T"
model = "nano-gpt"

[[step]]
text = "hello"
duration = 4.0
camera = "preset:overview"
{extra}
"""


@pytest.mark.parametrize("extra, match", [
    ('[[step.animate]]\nkind = "split"\ntensor = "embed.tok.weight"\nindex = 999999', "outside"),
    ('[[step.animate]]\nkind = "packet"\npath = ["embed.out", "blocks.0.resid1"]\ntoken = -99999', "token"),
    ('[[step.animate]]\nkind = "fill"\ntensor = "embed.tok.weight"\ndelay = nan', "finite"),
])
def test_chapter_references_and_numbers_are_checked_when_loaded(extra, match):
    from llmviz.scenes.chapters.format import ChapterError, model_names, parse_chapter

    with pytest.raises(ChapterError, match=match) as err:
        parse_chapter(CHAPTER.format(extra=extra), "03-x.toml", model_names("nano-gpt"))
    assert str(err.value).startswith("03-x.toml:") and "\n" not in str(err.value)


@pytest.mark.parametrize("source", [
    'title = "T"\nstep = []', 'title = "T"\nstep = [1, 2]', "a = " + "[" * 50_000 + "]" * 50_000,
    'title = "T"\n[[step]]\ntext = "x"\nduration = 1\ncamera = { eye = [nan, 0, 0], target = [0, 0, 0] }',
    'title = "T"\n[[step]]\ntext = "x"\nduration = 1\n"bad\\nfield" = 1',
])
def test_hostile_chapter_files_are_one_chapter_error(source):
    from llmviz.scenes.chapters.format import ChapterError, parse_chapter

    with pytest.raises(ChapterError) as err:
        parse_chapter(source, "05-x.toml")
    assert "\n" not in str(err.value)


def test_a_non_utf8_chapter_names_its_line(tmp_path):
    from llmviz.scenes.chapters.format import ChapterError, load_chapter

    path = tmp_path / "04-x.toml"
    path.write_bytes(b'title = "T"\n\xff\n')
    with pytest.raises(ChapterError, match=r"04-x.toml:2: not UTF-8"):
        load_chapter(path)


@pytest.mark.parametrize("text", [
    "[settings]\nstick_look_rate = nan", "[settings]\nstick_look_rate = inf",
    "[settings]\nstick_look_rate = " + "9" * 400, "[bindings]\nx = " + "[" * 50_000 + "]" * 50_000,
    '[bindings]\n"bad\\naction" = ["key:W"]',
])
def test_hostile_bindings_are_one_bindings_error(tmp_path, text):
    from llmviz.engine.input import BindingsError, load_bindings

    path = tmp_path / "bindings.toml"
    path.write_text(text)
    with pytest.raises(BindingsError) as err:
        load_bindings(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
