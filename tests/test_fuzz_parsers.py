"""Property-based fuzzing of every parser of user files: any input gives a value or the parser's own
error type with a one-line message; never another exception, a hang or a traceback.

`make test` runs a few hundred cases per parser; `make fuzz` (LLMVIZ_FUZZ=1) runs thousands.
"""
import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmviz.engine.input import BindingsError, load_bindings
from llmviz.models.registry import read_spec_text
from llmviz.models.spec import SpecError
from llmviz.models.sim.weights_file import WeightsError, parse_header
from llmviz.scenes.bookmarks import parse_bookmarks
from llmviz.scenes.chapters.format import ChapterError, model_names, parse_chapter

settings.register_profile("suite", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("fuzz", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("fuzz" if os.environ.get("LLMVIZ_FUZZ") else "suite")

ROOT = Path(__file__).resolve().parent.parent
SPEC = json.loads((ROOT / "models/specs/mixtral-8x7b.json").read_text())
CHAPTER = (ROOT / "assets/chapters/02-embedding.toml").read_text()
BINDINGS = (ROOT / "assets/bindings.toml").read_text()

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                      max_leaves=20)


def one_line(error):
    text = str(error)
    assert text and "\n" not in text, repr(text)


def mutate(data, path_and_value):
    """``data`` with one nested field replaced (or added) by a hostile value."""
    keys, value = path_and_value
    node = data = json.loads(json.dumps(data))
    for key in keys[:-1]:
        child = node.get(key) if isinstance(node, dict) else None
        if not isinstance(child, dict):
            break
        node = child
    if isinstance(node, dict):
        node[keys[-1]] = value
    return data


def spec_keys():
    arch = [k for k in SPEC["architecture"]] + ["hybrid", "components", "mla", "ssm", "input"]
    top = list(SPEC) + ["aliases", "stated"]
    return st.one_of(st.tuples(st.sampled_from(top)),
                     st.tuples(st.just("architecture"), st.sampled_from(arch)),
                     st.tuples(st.just("architecture"), st.just("moe"), st.sampled_from(list(SPEC["architecture"]["moe"]))))


@given(st.tuples(spec_keys(), values))
def test_spec_fields(change):
    try:
        read_spec_text(json.dumps(mutate(SPEC, change), allow_nan=True), "fuzz.json")
    except SpecError as err:
        one_line(err)


@given(st.text(max_size=300))
def test_spec_text_json_and_toml(text):
    for name in ("fuzz.json", "fuzz.toml"):
        try:
            read_spec_text(text, name)
        except SpecError as err:
            one_line(err)


@given(st.integers(0, 400), st.text(max_size=40))
def test_spec_json_spliced(at, insert):
    text = json.dumps(SPEC)
    try:
        read_spec_text(text[:at] + insert + text[at + len(insert):], "fuzz.json")
    except SpecError as err:
        one_line(err)


NAMES = model_names("nano-gpt")


@given(st.integers(0, len(CHAPTER)), st.text(max_size=30))
def test_chapter_spliced(at, insert):
    try:
        parse_chapter(CHAPTER[:at] + insert + CHAPTER[at:], "02-fuzz.toml", NAMES)
    except ChapterError as err:
        one_line(err)


@given(st.sampled_from(["duration", "delay", "index", "token", "camera", "step", "focus", "kind", "axis", "text"]),
       st.sampled_from(["nan", "inf", "-1", "999999", "-99999", "[]", "[1, 2]", "{}", '"x\\ny"', "1e400", "true",
                        "[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]", '"tokens[99999999]"']))
def test_chapter_values(key, value):
    import re

    text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", CHAPTER)
    try:
        parse_chapter(text, "02-fuzz.toml", NAMES)
    except ChapterError as err:
        one_line(err)


_FOLDER = Path(tempfile.mkdtemp(prefix="llmviz-fuzz-"))


@given(st.integers(0, len(BINDINGS)), st.text(max_size=30))
def test_bindings_spliced(at, insert):
    path = _FOLDER / "bindings.toml"
    path.write_bytes((BINDINGS[:at] + insert + BINDINGS[at:]).encode("utf-8", "replace"))
    try:
        load_bindings(path)
    except BindingsError as err:
        one_line(err)


@given(st.dictionaries(st.text(max_size=12), values, max_size=4))
def test_bindings_settings(settings_table):
    lines = ["[settings]"] + [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in settings_table.items()]
    path = _FOLDER / "settings.toml"
    path.write_text("\n".join(lines), encoding="utf-8", errors="replace")
    try:
        load_bindings(path)
    except BindingsError as err:
        one_line(err)


@given(values)
def test_bookmarks(data):
    for text in (json.dumps(data), json.dumps({"bookmarks": data}), json.dumps({"bookmarks": {"1": data}})):
        try:
            parse_bookmarks(text)
        except (ValueError, KeyError, TypeError) as err:  # load_bookmarks reports these in one line
            assert "\n" not in str(err)


WEIGHTS = (ROOT / "assets/weights/nano-gpt.safetensors").read_bytes()


@given(st.integers(0, 4000), st.binary(min_size=1, max_size=16))
def test_weights_header(at, insert):
    data = WEIGHTS[:at] + insert + WEIGHTS[at + len(insert):]
    try:
        parse_header(data, "fuzz.safetensors")
    except WeightsError as err:
        one_line(err)


@settings(max_examples=int(os.environ.get("LLMVIZ_FUZZ") and 500 or 30))
@given(st.integers(8, 3000), st.binary(min_size=1, max_size=8))
def test_weights_load(at, insert):
    from llmviz.models.sim.nanogpt import load_nanogpt

    path = _FOLDER / "w.safetensors"
    path.write_bytes(WEIGHTS[:at] + insert + WEIGHTS[at + len(insert):])
    try:
        load_nanogpt(path)
    except WeightsError as err:
        one_line(err)
