"""`llmviz video`: a recorded chapter has fps × duration frames, its frame at a pause point is `llmviz render
--chapter N --step K`, two recordings are the same bytes, and a failed or interrupted encode leaves no file.

Frames are read back by ffmpeg's own decoder; the chapter's length comes from its TOML file, not from the runner."""
import os
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("imageio_ffmpeg")

from llmviz.scenes.cli.main import main  # noqa: E402
from llmviz.scenes.export.video import VideoWriter, decode_frames  # noqa: E402

SIZE = (640, 360)
FPS = 5
CHAPTER_FILE = Path(__file__).resolve().parents[1] / "assets" / "chapters" / "01-tokens.toml"


def chapter_steps():
    """(duration, pause) of chapter 1's steps, read from its data file."""
    steps = tomllib.loads(CHAPTER_FILE.read_text())["step"]
    return [(float(s["duration"]), bool(s.get("pause", False))) for s in steps]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("video")
    out = folder / "chapter1.mp4"
    view = ["--scene", "nano-gpt", "--size", f"{SIZE[0]}x{SIZE[1]}"]
    assert main(["video", "--chapter", "1", *view, "--fps", str(FPS), "--lossless", "--out", str(out)]) == 0
    return folder, out, decode_frames(out, SIZE)


def test_frame_count_is_fps_times_duration(recorded):
    _, _, frames = recorded
    duration = sum(d for d, _ in chapter_steps())
    assert len(frames) == round(FPS * duration)


def test_frame_at_a_pause_point_is_the_render_of_that_step(recorded):
    """Frame i shows (i + 1) / fps seconds: step K's end at E seconds is frame E·fps − 1. Lossless H.264 4:4:4
    decodes to the very RGB piped in, so the tolerance is zero pixels. Step 3 (a pause point) is compared:
    on step 1 the model's opening wave of flow pulses is still running in `render` (it draws 1.07 s after
    the values arrive, the video 6 s after), which is the render's moment, not the video's."""
    folder, _, frames = recorded
    steps = chapter_steps()
    ends = np.cumsum([d for d, _ in steps])
    step = 3
    assert steps[step - 1][1], "the compared step is a pause point"
    picture = folder / "step3.png"
    assert main(["render", "--scene", "nano-gpt", "--chapter", "1", "--step", str(step),
                 "--size", f"{SIZE[0]}x{SIZE[1]}", "--out", str(picture)]) == 0
    expected = np.asarray(Image.open(picture).convert("RGB"))
    frame = frames[int(round(ends[step - 1] * FPS)) - 1]
    assert (np.abs(frame.astype(int) - expected.astype(int)).max(axis=2) > 0).sum() == 0
    assert not np.array_equal(frames[0], frame)  # the video moves: its first frame is another view


def test_two_recordings_are_the_same_bytes(tmp_path):
    args = ["video", "--chapter", "1", "--scene", "nano-gpt", "--size", "320x180", "--fps", "10", "--seconds", "2"]
    for name in ("a.webm", "b.webm"):
        assert main([*args, "--out", str(tmp_path / name)]) == 0
    a, b = (tmp_path / "a.webm").read_bytes(), (tmp_path / "b.webm").read_bytes()
    assert a == b and len(decode_frames(tmp_path / "a.webm", (320, 180))) == 20


def test_gif_of_the_live_model_generating(tmp_path):
    out = tmp_path / "generate.gif"
    assert main(["video", "--generate", "CABBAC", "--scene", "nano-gpt", "--size", "320x180", "--fps", "10",
                 "--out", str(out)]) == 0
    gif = Image.open(out)
    assert gif.format == "GIF" and gif.n_frames > 10 and gif.size == (320, 180)


def _folder_listing(folder):
    return sorted(os.listdir(folder))


def test_an_interrupted_encode_leaves_no_file(tmp_path):
    out = tmp_path / "clip.mp4"
    frame = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(out, SIZE, FPS) as writer:
            writer.write(frame)
            raise KeyboardInterrupt
    assert _folder_listing(tmp_path) == []
    out.write_bytes(b"the old video")
    with pytest.raises(ValueError):
        with VideoWriter(out, SIZE, FPS) as writer:
            writer.write(frame[:10])  # a frame of the wrong size: the encode fails
    assert _folder_listing(tmp_path) == ["clip.mp4"] and out.read_bytes() == b"the old video"


@pytest.mark.parametrize("extra, flag", [
    (["--chapter", "1", "--fps", "0"], "--fps"),
    (["--chapter", "1", "--size", "641x360"], "--size"),
    (["--chapter", "1", "--lossless", "--out", "x.gif"], "--lossless"),
    (["--chapter", "1", "--out", "x.avi"], "--out"),
    (["--chapter", "1", "--seconds", "-3"], "--seconds"),
    (["--tour", "--chapter", "1"], "--chapter"),
    ([], "--tour"),
])
def test_bad_arguments_are_one_line_naming_the_flag(extra, flag, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["video", "--scene", "nano-gpt", *extra]
    if "--out" not in extra:
        args += ["--out", "x.mp4"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and flag in err
    assert _folder_listing(tmp_path) == []


def test_a_chapter_that_opens_other_models_records_the_same_bytes(tmp_path):
    """Chapter 9 shows GPT-2 and GPT-3 (scenes built by the loader's worker, awaited): the same frames twice,
    and no wall-clock figure ("opened in 0.2 s") in them."""
    args = ["video", "--chapter", "9", "--scene", "nano-gpt", "--size", "320x180", "--fps", "2", "--seconds", "34"]
    for name in ("a.mp4", "b.mp4"):
        assert main([*args, "--out", str(tmp_path / name)]) == 0
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    assert len(decode_frames(tmp_path / "a.mp4", (320, 180))) == 68
