"""`llmviz export html`: one self-contained page (every src/href is data: or #, no <link>, no CSS url() elsewhere),
the schematic inline with a tooltip entry per drawn block (shape and parameter count from the model's own
declaration, values from the live trace), and the llmviz:// link that reopens the same view."""
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from llmviz.scenes.cli.main import main
from llmviz.scenes.link import parse_link

VIEW = ["--scene", "nano-gpt", "--camera", "preset:first block", "--size", "960x540"]


class PageParser(HTMLParser):
    """Every tag with its attributes, the text of each <script> and <style>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.scripts, self.styles, self._open = [], {}, [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        self._open = (tag, attrs.get("id"))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        self._open = None

    def handle_data(self, data):
        if self._open and self._open[0] == "script":
            self.scripts[self._open[1]] = self.scripts.get(self._open[1], "") + data
        elif self._open and self._open[0] == "style":
            self.styles.append(data)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("html") / "view.html"
    assert main(["export", "html", *VIEW, "--out", str(out)]) == 0
    parser = PageParser()
    parser.feed(out.read_text(encoding="utf-8"))
    parser.close()
    return parser


def test_the_page_references_nothing_outside_itself(exported):
    references = [(tag, name, value) for tag, attrs in exported.tags for name, value in attrs.items()
                  if name in ("src", "href", "xlink:href", "action", "poster", "srcset", "data")]
    assert references, "the schematic's cell images are data: references"
    outside = [r for r in references if not (r[2].startswith("data:") or r[2].startswith("#"))]
    assert outside == []
    assert not any(tag in ("link", "iframe", "object", "embed", "base") for tag, _ in exported.tags)
    assert all("src" not in attrs for tag, attrs in exported.tags if tag == "script")
    css = "".join(exported.styles) + "".join(attrs.get("style", "") for _, attrs in exported.tags)
    assert "@import" not in css
    assert all(u.startswith(("#", "data:")) for u in re.findall(r"url\(\s*['\"]?([^)'\"]*)", css))
    fills = [v for _, attrs in exported.tags for k, v in attrs.items() if k in ("fill", "stroke")]
    assert all(u.startswith("#") for v in fills for u in re.findall(r"url\(([^)]*)\)", v))


def test_every_block_has_its_tooltip_facts(exported):
    from llmviz.models.registry import load_registry
    from llmviz.scenes.layout import layout_model

    facts = json.loads(exported.scripts["blocks"])
    drawn = {attrs["data-id"] for tag, attrs in exported.tags if tag == "g" and attrs.get("class") == "block"}
    assert drawn and set(facts) == drawn
    spec = load_registry().get("nano-gpt")
    layout = layout_model(spec)
    arch = spec.architecture
    weight = "blocks.0.mlp.w_fc" if "blocks.0.mlp.w_fc" in facts else next(i for i in facts if ".w" in i)
    row = layout.index(weight)
    rows, cols = int(layout.rows[row]), int(layout.cols[row])
    assert f"{rows * cols:,} parameters" in facts[weight]["params"]  # a weight matrix is rows x cols numbers
    assert str(arch.d_model) in facts[weight]["shape"]
    for fact in facts.values():
        assert fact["name"] and fact["shape"] and fact["params"]


def test_values_are_the_live_trace_summarised(exported):
    """The tooltip's min / max / mean of an activation, against the model's own forward pass."""
    from llmviz.scenes.nanogpt_session import NanoGptSession

    facts = json.loads(exported.scripts["blocks"])
    activation = next(i for i in facts if i.endswith("resid1"))
    session = NanoGptSession()
    try:
        assert session.wait(60)
        values = np.asarray(session.trace[activation], np.float64)
    finally:
        session.close()
    finite = values[np.isfinite(values)]
    shown = facts[activation]["values"]
    assert f"{finite.min():.4g}" in shown and f"{finite.max():.4g}" in shown and f"{finite.mean():.4g}" in shown


def test_the_link_on_the_page_reopens_the_view(exported):
    (field,) = [attrs for tag, attrs in exported.tags if tag == "input" and attrs.get("id") == "link"]
    view = parse_link(field["value"])
    assert (view.scene, view.camera) == ("nano-gpt", "preset:first block")


def test_bad_arguments_are_one_line(tmp_path, capsys):
    assert main(["export", "html", "--scene", "nano-gpt", "--out", str(tmp_path / "x.svg")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--out" in err and ".html" in err


def test_a_view_with_pulses_in_flight_exports(tmp_path):
    """The overview's first frame has the values' opening wave of flow pulses in flight (a batch appended
    after the entities' own): the page is the entities, a block per drawn model block."""
    out = tmp_path / "overview.html"
    assert main(["export", "html", "--scene", "nano-gpt", "--camera", "overview", "--size", "640x360",
                 "--out", str(out)]) == 0
    parser = PageParser()
    parser.feed(out.read_text(encoding="utf-8"))
    blocks = [a for t, a in parser.tags if t == "g" and a.get("class") == "block"]
    assert len(blocks) > 100 and len(json.loads(parser.scripts["blocks"])) == len({a["data-id"] for a in blocks})
