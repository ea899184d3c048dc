"""The window's sharing, headless: a link's view applied to the Explorer and read back as a link, the menu's
picture export written by the same command the shell runs, and `llmviz open`'s bad links as one line."""
import numpy as np
import pytest
from PIL import Image

from llmviz.scenes.cli.main import main
from llmviz.scenes.link import LinkView, make_link, parse_link

SIZE = (640, 360)


@pytest.fixture(scope="module")
def explorer():
    headless = pytest.importorskip("llmviz.engine.render.headless")
    from llmviz.engine.input import load_bindings
    from llmviz.scenes.explorer import Explorer

    renderer = headless.headless_renderer(SIZE)
    ex = Explorer(renderer, "nano-gpt", bindings=load_bindings(), adaptive_quality=False, background_imports=False)
    try:
        assert ex.wait_for_values()
        yield ex
    finally:
        ex.close()
        renderer.release()


def test_a_chapter_link_opens_that_step_and_reads_back(explorer):
    from llmviz.scenes.explorer.share import apply_view, current_view

    assert apply_view(explorer, parse_link("llmviz://v1/?scene=nano-gpt&chapter=1&step=3")) is None
    explorer.frame(0.0)
    runner = explorer.session.chapters.runner
    assert (runner.current.number, runner.step_index, runner.held) == (1, 2, 2)
    view = current_view(explorer)
    assert (view.scene, view.chapter, view.step) == ("nano-gpt", 1, 3)
    explorer.session.chapters_mode.close()


def test_a_camera_link_reads_back_as_the_same_pose(explorer):
    """The pose written into the link (eye:target) puts a fresh camera where the Explorer's is."""
    from llmviz.engine.camera import Camera
    from llmviz.scenes.explorer.share import apply_view, current_view

    eye, target = np.array([10.0, -5.0, 60.0]), np.array([2.0, -8.0, 0.0])
    pose = ",".join(map(str, eye)) + ":" + ",".join(map(str, target))
    assert apply_view(explorer, LinkView("nano-gpt", pose)) is None
    explorer.frame(0.0)
    view = parse_link(make_link(current_view(explorer)))
    back_eye, back_target = (np.array([float(v) for v in part.split(",")]) for part in view.camera.split(":"))
    assert np.allclose(back_eye, eye, rtol=1e-5)
    reference = Camera(viewport=SIZE)
    reference.position = eye
    reference.look_at(target)
    direction = (back_target - back_eye) / np.linalg.norm(back_target - back_eye)
    assert np.allclose(direction, reference.forward, atol=1e-5)


def test_a_bad_link_in_apply_view_is_a_line_not_a_crash(explorer):
    from llmviz.scenes.explorer.share import apply_view

    problem = apply_view(explorer, LinkView("nano-gpt", chapter=99))
    assert problem and "99" in problem and "\n" not in problem


def test_the_menus_picture_export_writes_the_view(explorer, tmp_path):
    worker = explorer.share.export("png", folder=str(tmp_path))
    worker.join(300)
    (written,) = list(tmp_path.iterdir())
    assert written.suffix == ".png" and str(written) in explorer.notice
    assert Image.open(written).size == SIZE


@pytest.mark.parametrize("link, words", [
    ("https://example.org/", "llmviz://"),
    ("llmviz://v9/?scene=nano-gpt", "version"),
    ("llmviz://v1/?scene=no-such-model", "no-such-model"),
])
def test_open_refuses_a_bad_link_in_one_line(link, words, capsys):
    assert main(["open", link]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and words in err


def test_the_menus_tour_recording_writes_a_video(explorer, tmp_path):
    from llmviz.scenes.export.video import decode_frames

    worker = explorer.share.export("mp4", folder=str(tmp_path), script=["--tour", "--seconds", "1", "--fps", "10"])
    worker.join(300)
    (written,) = list(tmp_path.iterdir())
    assert written.suffix == ".mp4" and str(written) in explorer.notice
    assert len(decode_frames(written, SIZE)) == 10


def test_the_menus_generation_recording_starts_from_the_window(explorer, tmp_path):
    """Record the model generating: `llmviz video --generate <the panel's input> --link <this view>`."""
    from llmviz.scenes.export.video import decode_frames

    text = explorer.share.generating_text()
    assert text
    worker = explorer.share.export("mp4", folder=str(tmp_path), script=["--generate", text, "--seconds", "1",
                                                                         "--fps", "5"])
    worker.join(300)
    (written,) = list(tmp_path.iterdir())
    assert written.suffix == ".mp4" and str(written) in explorer.notice
    assert len(decode_frames(written, SIZE)) == 5
