"""`llmviz export svg`: valid XML with a shape per drawn block, the labels as text, the cells in the colours the
renderer draws them, the legend; bad arguments are one line; `export-hf` is still its own command."""
import types
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from llmviz.scenes.cli.common import headless_renderer
from llmviz.scenes.cli.main import main
from llmviz.scenes.cli.render_cmd import scene_alone

SVG = "{http://www.w3.org/2000/svg}"
VIEW = ["--scene", "nano-gpt", "--camera", "preset:first head", "--size", "1280x720"]  # cells ~13 px


def drawn_reference(scene_name: str, camera: str, size):
    """What the engine draws for that view, from the engine itself: tensor ids of the drawn blocks, label texts."""
    args = types.SimpleNamespace(scene=scene_name, camera=camera, chapter=None, step=None, text=None)
    renderer = headless_renderer(size)
    try:
        with scene_alone(args, renderer, size) as (scene, engine):
            drawn = engine.visibility.result.drawn
            model = scene.model
            ids = {model.tensor_at(int(s)) for s in drawn if model.row_of_slot[s] >= 0}
            labels = engine.labels
            texts = engine.world.labels
            index = engine.world.column("label", "text_index")[labels.slots[labels.last.labels]]
            captions = {texts[i] for i in index.tolist()}
    finally:
        renderer.release()
    return ids, captions


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("svg")
    assert main(["export", "svg", *VIEW, "--out", str(folder / "view.svg")]) == 0
    assert main(["render", "--no-ui", *VIEW, "--out", str(folder / "view.png")]) == 0
    return ET.parse(folder / "view.svg").getroot(), np.asarray(Image.open(folder / "view.png").convert("RGB"))


def test_a_shape_per_drawn_block_and_the_labels_as_text(exported):
    root, _ = exported
    assert root.tag == SVG + "svg" and (root.get("width"), root.get("height")) == ("1280", "720")
    blocks = [g for g in root.iter(SVG + "g") if g.get("class") == "block"]
    ids, captions = drawn_reference("nano-gpt", "preset:first head", (1280, 720))
    assert len(blocks) == len(ids) > 10
    assert {g.get("data-id") for g in blocks} == ids
    assert all(g.find(SVG + "title").text == g.get("data-id") for g in blocks)  # a tooltip in a browser
    texts = {"\n".join(span.text or "" for span in t) for t in root.iter(SVG + "text")}
    assert captions and captions <= texts
    assert any(p.get("class") == "flow" for p in root.iter(SVG + "path"))  # the residual stream and connections
    legend = [g for g in root.iter(SVG + "g") if g.get("class") == "legend"]
    assert len(legend) == 1 and any(t.text == "cell colours" for t in legend[0].iter(SVG + "text"))


def test_cells_have_the_colours_the_renderer_draws(exported):
    root, picture = exported
    checked = 0
    for group in root.iter(SVG + "g"):
        if group.get("class") != "cells":
            continue
        for cell in group.iter(SVG + "polygon"):
            points = np.array([[float(v) for v in p.split(",")] for p in cell.get("points").split()])
            w, h = np.ptp(points, axis=0)
            if min(w, h) < 7 or not cell.get("fill").startswith("#"):  # clear of grid lines; not a −∞ hatch
                continue
            x, y = points.mean(axis=0).astype(int)
            if not (0 <= x < picture.shape[1] and 0 <= y < picture.shape[0]):
                continue
            fill = cell.get("fill")
            expected = np.array([int(fill[i:i + 2], 16) for i in (1, 3, 5)])
            assert np.abs(picture[y, x].astype(int) - expected).max() <= 3, (fill, picture[y, x])
            checked += 1
    assert checked > 20


@pytest.mark.parametrize("argv, needle", [
    (["export", "svg", "--scene", "nano-gpt", "--out", "x.png"], ".svg"),
    (["export", "svg", "--out", "x.svg"], "--scene"),
    (["export", "svg", "--scene", "no-such-model", "--out", "x.svg"], "no-such-model"),
    (["export", "svg", "--scene", "nano-gpt", "--size", "big", "--out", "x.svg"], "--size"),
    (["export", "pdf", "--scene", "nano-gpt"], "pdf"),
    (["export"], "export"),
])
def test_bad_arguments_are_one_line(tmp_path, monkeypatch, capsys, argv, needle):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err, err
    assert not list(tmp_path.iterdir())


def test_export_hf_is_still_its_own_command(capsys):
    assert main(["export-hf", "no-such-model", "/nonexistent/folder"]) == 2
    assert "export-hf" in capsys.readouterr().err


def test_a_scene_without_model_blocks_exports_its_boxes(tmp_path):
    out = tmp_path / "stress.svg"
    assert main(["export", "svg", "--scene", "stress:300", "--size", "320x180", "--out", str(out)]) == 0
    boxes = [g for g in ET.parse(out).getroot().iter(SVG + "g") if g.get("class") == "box"]
    args = types.SimpleNamespace(scene="stress:300", camera="start", chapter=None, step=None, text=None)
    renderer = headless_renderer((320, 180))
    try:
        with scene_alone(args, renderer, (320, 180)) as (_, engine):
            drawn = len(engine.visibility.result.drawn)
    finally:
        renderer.release()
    assert len(boxes) == drawn > 10
