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


def test_a_video_at_a_pixel_ratio_is_the_render_at_that_ratio(tmp_path):
    """--pixel-ratio 2 records the 320x180 view drawn twice as large: its frame at step 3's end is `render
    --pixel-ratio 2` of that step, pixel for pixel (lossless), and not the view laid out for 640x360."""
    steps = chapter_steps()
    end = sum(d for d, _ in steps[:3])
    out, picture = tmp_path / "ratio2.mp4", tmp_path / "ratio2.png"
    view = ["--scene", "nano-gpt", "--size", f"{SIZE[0]}x{SIZE[1]}", "--pixel-ratio", "2"]
    assert main(["video", "--chapter", "1", *view, "--fps", "2", "--seconds", f"{end:g}", "--lossless",
                 "--out", str(out)]) == 0
    assert main(["render", "--chapter", "1", "--step", "3", *view, "--out", str(picture)]) == 0
    frames = decode_frames(out, SIZE)
    assert len(frames) == round(2 * end)
    expected = np.asarray(Image.open(picture).convert("RGB"))
    assert (np.abs(frames[-1].astype(int) - expected.astype(int)).max(axis=2) > 0).sum() == 0
    unscaled = tmp_path / "ratio1.png"
    assert main(["render", "--chapter", "1", "--step", "3", *view[:-1], "1", "--out", str(unscaled)]) == 0
    assert not np.array_equal(np.asarray(Image.open(unscaled).convert("RGB")), expected)


def test_a_video_starts_at_a_links_view(tmp_path):
    """--link puts the recording at the link's camera (and input): its first frame is not the scene's start, and
    a second recording of the same link is the same bytes."""
    link = "llmviz://v1/?scene=nano-gpt&camera=preset:first%20head&text=CCABAB"
    args = ["video", "--generate", "CCABAB", "--size", "320x180", "--fps", "5", "--seconds", "1"]
    for name in ("a.mp4", "b.mp4"):
        assert main([*args, "--link", link, "--out", str(tmp_path / name)]) == 0
    assert main([*args, "--scene", "nano-gpt", "--out", str(tmp_path / "start.mp4")]) == 0
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    at_link, at_start = (decode_frames(tmp_path / name, (320, 180)) for name in ("a.mp4", "start.mp4"))
    assert len(at_link) == 5 and np.abs(at_link[0].astype(int) - at_start[0].astype(int)).mean() > 2


@pytest.mark.parametrize("extra, words", [
    (["--link", "llmviz://v9/?scene=nano-gpt"], "version"),
    (["--link", "llmviz://v1/?scene=nano-gpt", "--scene", "gpt-2-small"], "--scene"),
    (["--link", "llmviz://v2/?scene=nano-gpt&compare=nano-gpt,gpt-2-small"], "compare"),
])
def test_a_bad_link_is_one_line(extra, words, tmp_path, capsys):
    assert main(["video", "--tour", *extra, "--out", str(tmp_path / "x.mp4")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--link" in err and words in err
    assert _folder_listing(tmp_path) == []


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
    (["--chapter", "1", "--pixel-ratio", "0"], "--pixel-ratio"),
    (["--chapter", "1", "--size", "64x64", "--pixel-ratio", "8"], "--pixel-ratio"),
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


def test_a_recording_step_is_recorded_only_once_its_snapshot_is_shown():
    """settle_chapter_step draws zero-time frames, each after waiting on the recording's worker, until the step
    is settled (its snapshot and text shown): the chapter's clock does not move meanwhile."""
    from types import SimpleNamespace

    from llmviz.scenes.export.video import settle_chapter_step

    waits, frames = [], []

    class Replay:
        def wait(self, timeout):
            waits.append(timeout)
            return True

    class Chapters:
        moment = SimpleNamespace(scene="")
        runner = SimpleNamespace(replays={"nano-gpt": Replay()})

        @property
        def settled(self):
            return len(frames) >= 3  # the snapshot lands after three frames have asked for it

    ex = SimpleNamespace(session=SimpleNamespace(chapters=Chapters(), name="nano-gpt"),
                         loader=SimpleNamespace(busy=False), wait_for_values=lambda timeout: True,
                         frame=lambda dt: frames.append(dt))
    settle_chapter_step(ex)
    assert frames == [0.0, 0.0, 0.0] and len(waits) == 3
    settle_chapter_step(ex)  # settled: nothing more drawn
    assert len(frames) == 3
