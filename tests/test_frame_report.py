"""The frame report (what a frame shows) across the registry's presets: no overlapping labels, none under
the UI, none under 11 px; the window's View menu and `llmviz render --report` write it."""
import json
import subprocess
import sys

import numpy as np
import pytest

from llmviz.engine.systems.label_layout import LEGIBLE_PX

MODELS = ("nano-gpt", "gpt-2-small", "gpt-3-175b", "deepseek-v3", "mamba-2.8b", "whisper-base")


@pytest.fixture(scope="module")
def renderer():
    from llmviz.engine.render.headless import HeadlessRenderer

    r = HeadlessRenderer((1280, 720))
    yield r
    r.release()


def explorer(renderer, scene):
    from llmviz.engine.input import load_bindings
    from llmviz.scenes.explorer import Explorer

    renderer.reset_data()
    ex = Explorer(renderer, scene, bindings=load_bindings(), adaptive_quality=False, background_imports=False)
    ex.wait_for_values()
    return ex


def settle(ex, n=4):
    for _ in range(n):
        ex.frame(1 / 15)
        ex.renderer.ctx.finish()
        ex.presented()


def intersects(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def check(report, where):
    """The targets, checked here from the raw boxes (not from the report's own verdicts)."""
    labels = report["labels"]
    boxes = [item["box"] for item in labels]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            overlap_w = min(a[2], b[2]) - max(a[0], b[0])
            overlap_h = min(a[3], b[3]) - max(a[1], b[1])
            assert not (overlap_w > 0.5 and overlap_h > 0.5), f"{where}: {labels[i]['text']!r} over {labels[j]['text']!r}"
    for item in labels:
        assert item["pixel_height"] >= LEGIBLE_PX - 0.05, f"{where}: {item['text']!r} {item['pixel_height']} px"
        for rect in report["ui_rects"]:
            assert not intersects(item["box"], rect), f"{where}: {item['text']!r} under the UI at {rect}"
    assert report["overlaps"] == [] and report["under_ui"] == [] and report["too_small"] == []


@pytest.mark.parametrize("scene", MODELS)
def test_every_preset_meets_the_label_targets(renderer, scene):
    from llmviz.scenes.explorer.frame_report import frame_report

    ex = explorer(renderer, scene)
    try:
        shown = 0
        for preset in ex.session.presets:
            ex.session.go_to_preset(preset, duration=0.0)
            settle(ex)
            report = frame_report(ex)
            check(report, f"{scene} / {preset}")
            shown += len(report["labels"])
        assert shown > 0, f"{scene}: no preset shows a single label"
        assert len(report["ui_rects"]) >= 3  # menu bar, banner, hint bar at least
    finally:
        ex.close()


def test_the_view_menu_writes_the_report(renderer, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMVIZ_CONFIG_DIR", str(tmp_path))
    ex = explorer(renderer, "nano-gpt")
    try:
        settle(ex)
        ex.menu_actions.add("write_report")
        settle(ex, 1)
        for _ in range(100):
            if "frame report" in ex.notice:
                break
            settle(ex, 1)
        written = list((tmp_path / "reports").glob("frame-nano-gpt-*.json"))
        assert len(written) == 1, ex.notice
        report = json.loads(written[0].read_text())
        assert report["scene"] == "nano-gpt" and report["labels"]
        assert str(written[0]) in ex.notice
    finally:
        ex.close()


def test_render_report_describes_the_picture(tmp_path):
    """The CLI's report: labels whose boxes hold ink in the PNG it wrote beside it."""
    from PIL import Image

    png, report_path = tmp_path / "frame.png", tmp_path / "frame.json"
    proc = subprocess.run([sys.executable, "-m", "llmviz.scenes.cli.main", "render", "--scene", "nano-gpt",
                           "--out", str(png), "--report", str(report_path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(report_path.read_text())
    check(report, "render --report")
    image = np.asarray(Image.open(png).convert("RGB")).astype(int)
    background = np.median(image.reshape(-1, 3), axis=0)
    ink = np.abs(image - background).max(axis=-1) > 60
    for item in report["labels"]:
        x0, y0, x1, y1 = (int(round(v)) for v in item["box"])
        assert ink[max(0, y0):y1 + 1, max(0, x0):x1 + 1].any(), item
    assert "labels" in proc.stdout and "under the UI" in proc.stdout


def cells_in_view(ex) -> bool:
    """Whether the frame drew some data block at full detail (its cells), from the world alone."""
    session = ex.session
    world = session.engine.world
    drawn = np.asarray(getattr(session, "last_drawn", np.zeros(0, np.int64)), np.int64)
    drawn = drawn[world["datatex"].has[drawn]]
    region = world.column("datatex", "region")[drawn]
    level = world.column("lod", "level")[drawn]
    return bool(((region[:, 2] > 0) & (level == 0)).any())


def test_every_chapter_step_meets_the_targets_and_explains_its_colours(renderer):
    """Each step at its end, as the window shows it: the label targets, and a legend whenever cells show.
    (Steps on another model open it: tests/test_chapter_scenes.py; here the ones on nano-GPT.)"""
    from llmviz.scenes.explorer.frame_report import frame_report

    ex = explorer(renderer, "nano-gpt")
    try:
        settle(ex, 1)
        mode = ex.session.chapters_mode
        mode.toggle(0, 0)
        runner = mode.player.runner
        steps = with_cells = 0
        for c, chapter in enumerate(runner.chapters):
            for k in range(len(chapter.steps)):
                if runner.scene_of(k, c) != "nano-gpt":
                    continue
                mode.player.go_to(c, k)
                runner.go_to_step_end(k)
                settle(ex, 12)
                report = frame_report(ex)
                where = f"chapter {chapter.number} step {k + 1}"
                check(report, where)
                if cells_in_view(ex):
                    with_cells += 1
                    assert report["legend"], f"{where}: data cells in view and no legend"
                steps += 1
        assert steps >= 35 and with_cells >= 30
    finally:
        ex.close()
