"""llmviz:// links: a view survives the round trip (text and pixels), and hostile links are one line and exit code 2."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from llmviz.scenes.cli.main import main
from llmviz.scenes.link import MAX_LINK_CHARS, LinkError, LinkView, make_link, parse_link

settings.register_profile("suite", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("fuzz", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("fuzz" if os.environ.get("LLMVIZ_FUZZ") else "suite")

printable = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=60).filter(
    str.isprintable)
model_id = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters=","),
                   min_size=1, max_size=30).filter(str.isprintable)
views = st.builds(LinkView, scene=printable, camera=st.none() | printable,
                  chapter=st.none() | st.integers(1, 999), step=st.none(),
                  text=st.none() | st.text(max_size=200),
                  temperature=st.none() | st.floats(0.0, 10.0), seed=st.none() | st.integers(0, 2 ** 63 - 1),
                  compare=st.none() | st.lists(model_id, min_size=2, max_size=4).map(tuple))
specs = st.none() | st.tuples(st.text(max_size=2000), st.sampled_from(["mine.json", "my-model.toml"]))


@given(views, st.none() | st.integers(1, 999), specs)
def test_a_view_survives_its_link(view, step, spec):
    fields = dict(view.__dict__)
    if view.chapter is not None:
        fields["step"] = step
    if spec is not None:
        fields["spec"], fields["spec_name"] = spec
    view = LinkView(**fields)
    link = make_link(view)
    assert link.startswith("llmviz://v") and link.isascii() and " " not in link and "\n" not in link
    v1 = all(getattr(view, name) is None for name in ("temperature", "seed", "compare", "spec", "spec_name"))
    assert link.startswith("llmviz://v1/?" if v1 else "llmviz://v2/?")  # older readers open what they can
    assert parse_link(link) == view


def one_line(err):
    text = str(err)
    assert text and "\n" not in text, repr(text)


VALID = "llmviz://v1/?scene=gpt-2-small&camera=preset:first%20block&chapter=2&step=3&text=hi"


@given(st.text(max_size=300))
def test_any_text_is_a_view_or_one_line(text):
    try:
        parse_link(text)
    except LinkError as err:
        one_line(err)


@given(st.integers(0, len(VALID)), st.integers(0, 20), st.text(max_size=12))
def test_a_damaged_link_is_a_view_or_one_line(at, cut, insert):
    try:
        parse_link(VALID[:at] + insert + VALID[at + cut:])
    except LinkError as err:
        one_line(err)


HOSTILE = [
    ("llmviz://v1/?scene=" + "a" * (MAX_LINK_CHARS + 10), "characters long"),
    ("x" * 10_000_000, "characters long"),  # refused on its length, before any decoding
    ("https://example.com/?scene=gpt-2-small", "not an llmviz link"),
    ("llmviz://v9/?scene=gpt-2-small", "version"),
    ("llmviz://v1/scene=gpt-2-small", "no view"),
    ("llmviz://v1/?scene=%ff%fe", "UTF-8"),
    ("llmviz://v1/?scene=a&scene=b", "twice"),
    ("llmviz://v1/?scene=a&zoom=3", "zoom"),
    ("llmviz://v1/?camera=start", "no scene"),
    ("llmviz://v1/?scene=gpt-2-small&step=2", "step without a chapter"),
    ("llmviz://v1/?scene=gpt-2-small&chapter=99999999999999999999", "chapter"),
    ("llmviz://v1/?scene=gpt-2-small&chapter=-1", "chapter"),
    ("llmviz://v1/?scene=gpt-2-small&camera=1,2:3", "--camera"),
    ("llmviz://v1/?scene=no-such-model", "no-such-model"),
    ("llmviz://v1/?scene=gpt-2-small&" + "&".join(f"k{i}=1" for i in range(50)), "more fields"),
    ("llmviz://v1/?scene=gpt-2-small&text=" + "A" * 3000, "text"),
    ("llmviz://v1/?scene=nano-gpt&temperature=0.5", "temperature"),  # a v2 field in a v1 link
    ("llmviz://v2/?scene=nano-gpt&temperature=11", "temperature"),
    ("llmviz://v2/?scene=nano-gpt&temperature=nan", "temperature"),
    ("llmviz://v2/?scene=nano-gpt&seed=-3", "seed"),
    ("llmviz://v2/?scene=nano-gpt&seed=99999999999999999999", "seed"),
    ("llmviz://v2/?scene=x&compare=gpt-2-small", "compare set"),
    ("llmviz://v2/?scene=x&compare=a,b,c,d,e", "compare set"),
    ("llmviz://v2/?scene=x&compare=gpt-2-small,no-such-model", "no-such-model"),
    ("llmviz://v2/?scene=x&spec=!!!&spec_name=x.json", "spec"),
    ("llmviz://v2/?scene=x&spec=" + "A" * 13000 + "&spec_name=x.json", "spec is 13,000 characters"),
    ("llmviz://v2/?scene=x&spec=eJzLSM3JyQcABiwCFQ&spec_name=x.json", "spec"),  # 'hello': not a spec
    ("llmviz://v2/?scene=x&spec=eJzLSM3JyQcABiwCFQ", "spec_name"),
    ("llmviz://v2/?scene=x&spec=eJzLSM3JyQcABiwCFQ&spec_name=../x.json", "spec_name"),
]


def test_a_spec_bomb_is_refused_before_it_unpacks():
    import base64
    import zlib

    bomb = base64.urlsafe_b64encode(zlib.compress(b" " * (4 << 20), 9)).decode().rstrip("=")
    assert len(bomb) < 12000  # small enough to pass the length check: the unpacking bound must catch it
    with pytest.raises(LinkError, match="more than"):
        parse_link(f"llmviz://v2/?scene=x&spec={bomb}&spec_name=x.json")


@pytest.mark.parametrize("link, needle", HOSTILE)
def test_render_refuses_a_hostile_link_in_one_line(tmp_path, capsys, link, needle):
    assert main(["render", "--link", link, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err, err
    assert not (tmp_path / "x.png").exists()


def test_a_link_and_a_flag_for_the_view_is_one_line(tmp_path, capsys):
    assert main(["render", "--link", "llmviz://v1/?scene=stress:10", "--scene", "stress:20",
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "--scene" in capsys.readouterr().err


def printed_link(capsys, *flags) -> str:
    assert main(["link", *flags]) == 0
    out = capsys.readouterr().out.strip()
    assert "\n" not in out
    return out


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.parametrize("flags", [
    ["--scene", "gpt-2-small", "--camera", "preset:first block"],
    ["--scene", "gpt-2-small", "--camera", "12.5,3,40:0,-2,0"],
])
def test_a_link_renders_the_same_pixels_as_its_flags(tmp_path, capsys, flags):
    link = printed_link(capsys, *flags)
    size = ["--size", "320x180"]
    assert main(["render", *flags, *size, "--out", str(tmp_path / "flags.png")]) == 0
    assert main(["render", "--link", link, *size, "--out", str(tmp_path / "link.png")]) == 0
    flagged = pixels(tmp_path / "flags.png")
    assert flagged.std() > 5
    np.testing.assert_array_equal(pixels(tmp_path / "link.png"), flagged)


def test_a_link_holds_the_input_text(tmp_path, capsys):
    flags = ["--scene", "nano-gpt", "--camera", "preset:first block", "--text", "CBACBA"]
    link = printed_link(capsys, *flags)
    assert "text=CBACBA" in link
    size = ["--size", "320x180", "--no-ui"]
    assert main(["render", *flags, *size, "--out", str(tmp_path / "flags.png")]) == 0
    assert main(["render", "--link", link, *size, "--out", str(tmp_path / "link.png")]) == 0
    assert main(["render", *flags[:4], *size, "--out", str(tmp_path / "own.png")]) == 0  # its own input
    flagged = pixels(tmp_path / "flags.png")
    np.testing.assert_array_equal(pixels(tmp_path / "link.png"), flagged)
    assert not np.array_equal(pixels(tmp_path / "own.png"), flagged)  # the text changed what is drawn


def test_link_refuses_what_render_would_refuse(capsys):
    assert main(["link", "--scene", "gpt-2-small", "--camera", "sideways"]) == 2
    assert "--camera" in capsys.readouterr().err
    assert main(["link", "--scene", "gpt-2-small", "--step", "2"]) == 2
    assert "--step needs --chapter" in capsys.readouterr().err


def test_a_link_holds_the_sampling_settings(tmp_path, capsys):
    flags = ["--scene", "nano-gpt", "--camera", "preset:first block", "--temperature", "0.8", "--seed", "7"]
    link = printed_link(capsys, *flags)
    assert link.startswith("llmviz://v2/?") and "temperature=0.8" in link and "seed=7" in link
    size = ["--size", "640x360"]  # the UI: the panel's temperature slider and the tempered P(next letter)
    assert main(["render", *flags, *size, "--out", str(tmp_path / "flags.png")]) == 0
    assert main(["render", "--link", link, *size, "--out", str(tmp_path / "link.png")]) == 0
    assert main(["render", *flags[:4], *size, "--out", str(tmp_path / "greedy.png")]) == 0
    flagged = pixels(tmp_path / "flags.png")
    np.testing.assert_array_equal(pixels(tmp_path / "link.png"), flagged)
    assert not np.array_equal(pixels(tmp_path / "greedy.png"), flagged)  # the temperature shows


def test_sampling_on_a_scene_without_a_generator_is_one_line(tmp_path, capsys):
    assert main(["render", "--scene", "gpt-2-small", "--temperature", "0.5", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--temperature" in err and "\n" not in err


def test_a_link_holds_a_compare_set(tmp_path, capsys):
    link = printed_link(capsys, "--compare", "gpt-2-small,llama-3-8b", "--camera", "overview")
    assert "compare=gpt-2-small,llama-3-8b" in link
    size = ["--size", "640x180"]
    assert main(["render", "--compare", "gpt-2-small,llama-3-8b", "--camera", "overview", *size,
                 "--out", str(tmp_path / "flags.png")]) == 0
    assert main(["render", "--link", link, *size, "--out", str(tmp_path / "link.png")]) == 0
    np.testing.assert_array_equal(pixels(tmp_path / "link.png"), pixels(tmp_path / "flags.png"))


def test_a_link_carries_a_model_of_ones_own(tmp_path, capsys, monkeypatch):
    import json

    spec = json.loads(open(os.path.join(os.path.dirname(__file__), "..", "models", "specs", "gpt-2-small.json")).read())
    spec.update(id="my-small-gpt", name="My small GPT")
    spec["architecture"]["n_layers"] = 3
    source = tmp_path / "my-small-gpt.json"
    source.write_text(json.dumps(spec))
    monkeypatch.setenv("LLMVIZ_CONFIG_DIR", str(tmp_path / "sender"))
    assert main(["models", "--add", str(source)]) == 0
    capsys.readouterr()
    flags = ["--scene", "my-small-gpt", "--camera", "overview"]
    link = printed_link(capsys, *flags)
    assert "spec=" in link and "spec_name=my-small-gpt.json" in link
    size = ["--size", "320x180", "--no-ui"]
    assert main(["render", *flags, *size, "--out", str(tmp_path / "sender.png")]) == 0
    # Someone who has never seen the model opens the link: it is added to their models, then drawn.
    monkeypatch.setenv("LLMVIZ_CONFIG_DIR", str(tmp_path / "receiver"))
    assert main(["render", "--link", link, *size, "--out", str(tmp_path / "receiver.png")]) == 0
    assert "added the link's model 'my-small-gpt'" in capsys.readouterr().out
    assert (tmp_path / "receiver" / "specs" / "my-small-gpt.json").read_text() == source.read_text()
    np.testing.assert_array_equal(pixels(tmp_path / "receiver.png"), pixels(tmp_path / "sender.png"))
    assert main(["render", "--link", link, *size, "--out", str(tmp_path / "again.png")]) == 0
    assert "added" not in capsys.readouterr().out  # the same file is there now


def test_a_link_cannot_shadow_a_built_in_model(tmp_path, capsys, monkeypatch):
    from llmviz.scenes.link import LinkView

    monkeypatch.setenv("LLMVIZ_CONFIG_DIR", str(tmp_path))
    text = open(os.path.join(os.path.dirname(__file__), "..", "models", "specs", "gpt-2-small.json")).read()
    link = make_link(LinkView("gpt-2-small", spec=text, spec_name="gpt-2-small.json"))
    assert main(["render", "--link", link, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert "built-in" in err and "\n" not in err
