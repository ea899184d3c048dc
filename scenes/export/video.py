"""Video of the Explorer replaying a script offscreen (a chapter, the tour, a live model generating), encoded by ffmpeg.

The frame clock is simulated: every frame advances the Explorer by exactly ``1 / fps`` seconds,
whatever the wall clock does, and before each frame the live model's worker is awaited (the trace
it is computing lands before the frame that would show it), so two recordings of one script are the
same frames. A chapter is put at each frame's time by its runner (``ChapterClock``), not by adding
up ``dt``: frame ``i`` shows the chapter at ``(i + 1) / fps`` seconds, the end of the frame's
interval, so a chapter of D seconds is exactly ``fps × D`` frames and its last frame is its last
step finished. At a pause point the runner holds for that one frame, as a viewer sees it before
pressing Space (the video goes on without waiting), so that frame is the step's end exactly as
``llmviz render --chapter N --step K`` draws it.

Frames are piped to the ffmpeg that imageio-ffmpeg ships (raw RGB on its standard input) and
written through llmviz.common.atomic: ffmpeg writes a temporary file beside the output, which
replaces it only once the encoder has finished cleanly; an error or Ctrl+C leaves no partial file.
"""
from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass

import numpy as np

from llmviz.scenes.live_wait import VALUES_TIMEOUT_S  # a recording waits as long as any headless work

MAX_SECONDS = 600.0  # a script longer than this is cut (a tour of a 96-layer model is about 100 s)
SETTLE_FRAMES = 3    # zero-time frames before the first recorded one: the UI's panels and free window settle
END_EPSILON = 1e-9

# ffmpeg's output arguments per container: widely playable by default, lossless for checks.
CODECS = {
    ".mp4": (["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
              "-movflags", "+faststart", "-f", "mp4"],
             ["-c:v", "libx264rgb", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "rgb24", "-f", "mp4"]),
    ".webm": (["-c:v", "libvpx-vp9", "-crf", "32", "-b:v", "0", "-deadline", "realtime", "-cpu-used", "8",
               "-row-mt", "1", "-pix_fmt", "yuv420p", "-f", "webm"],
              ["-c:v", "libvpx-vp9", "-lossless", "1", "-deadline", "realtime", "-cpu-used", "8",
               "-row-mt", "1", "-pix_fmt", "gbrp", "-f", "webm"]),
    # One palette for the whole clip (palettegen buffers the frames), each frame diffed against the last.
    ".gif": (["-filter_complex", "[0:v]split[a][b];[a]palettegen=stats_mode=diff[p];"
              "[b][p]paletteuse=dither=bayer:bayer_scale=4:diff_mode=rectangle", "-f", "gif"], None),
}
SUFFIXES = tuple(CODECS)
EVEN_SIDES = (".mp4", ".webm")  # 4:2:0 chroma halves each side


class VideoError(Exception):
    """The encoder failed or is missing: one line saying why."""


def ffmpeg_exe() -> str:
    """The ffmpeg binary inside the imageio-ffmpeg wheel (this machine has no system ffmpeg)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise VideoError("video needs the imageio-ffmpeg package (pip install imageio-ffmpeg)") from None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as err:
        raise VideoError(f"imageio-ffmpeg has no ffmpeg binary here: {err}") from None


def encoder_arguments(suffix: str, lossless: bool) -> list[str]:
    normal, exact = CODECS[suffix]
    if lossless and exact is None:
        raise VideoError(f"a {suffix} cannot be lossless (GIF has 256 colours a frame): use .mp4 or .webm")
    # bitexact: no encoder version or time in the file, so two recordings are the same bytes
    return (exact if lossless else normal) + ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1"]


class VideoWriter:
    """An ffmpeg process fed raw frames, writing ``path`` atomically (a context manager).

    ``channels`` 4 takes the renderer's RGBA read-back as it is (ffmpeg's ``rgb0``: the fourth byte is
    ignored), which saves a copy of every frame into RGB. Frames are handed to a thread that writes them
    into ffmpeg's pipe (made 1 MiB where Linux allows, instead of 64 KiB), so drawing frame i + 1 overlaps
    encoding frame i; at most ``QUEUED`` frames wait, so memory stays bounded."""

    QUEUED = 2

    def __init__(self, path, size, fps: int, lossless: bool = False, channels: int = 3):
        if channels not in (3, 4):
            raise ValueError(f"frames of {channels} channels: 3 (RGB) or 4 (RGBA, alpha ignored)")
        self.path, self.size, self.fps = str(path), (int(size[0]), int(size[1])), int(fps)
        self.channels = channels
        self.suffix = os.path.splitext(self.path)[1].lower()
        self.arguments = encoder_arguments(self.suffix, lossless)
        self.frames = 0
        self._stack = contextlib.ExitStack()
        self._process = None
        self._queue = None
        self._thread = None
        self._failed = None  # the pipe broke in the writer thread: ffmpeg stopped

    def __enter__(self):
        from llmviz.common.atomic import atomic_path

        exe = ffmpeg_exe()
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._log = self._stack.enter_context(tempfile.TemporaryFile())
        w, h = self.size
        command = [exe, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                   "-f", "rawvideo", "-pix_fmt", "rgb24" if self.channels == 3 else "rgb0", "-s", f"{w}x{h}", "-framerate", str(self.fps), "-i", "-",
                   *self.arguments, str(tmp)]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=self._log)
        _widen_pipe(self._process.stdin)
        self._queue = queue.Queue(self.QUEUED)
        self._thread = threading.Thread(target=self._pump, name="video encoder pipe", daemon=True)
        self._thread.start()
        return self

    def _pump(self) -> None:
        while (frame := self._queue.get()) is not None:
            if self._failed is None:
                try:
                    self._process.stdin.write(frame.data)
                except (BrokenPipeError, ValueError) as err:
                    self._failed = err

    def write(self, frame: np.ndarray) -> None:
        """One frame, (h, w, channels) uint8; the array must not change afterwards (it is written later)."""
        if frame.shape != (self.size[1], self.size[0], self.channels):
            raise ValueError(f"a frame of shape {frame.shape} in a {self.size[0]}x{self.size[1]} video "
                             f"of {self.channels} channels")
        if self._failed is not None:
            self._stop_pump()
            self._process.wait()
            raise VideoError(f"ffmpeg stopped after {self.frames} frames: {self._error()}")
        self._queue.put(np.ascontiguousarray(frame, np.uint8))  # no copy for the renderer's own read-back
        self.frames += 1

    def _stop_pump(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _error(self) -> str:
        self._log.seek(0)
        lines = self._log.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else f"exit code {self._process.returncode}"

    def __exit__(self, kind, value, traceback):
        process = self._process
        try:
            if kind is None:
                self._stop_pump()  # every queued frame written
                if self._failed is not None:
                    process.wait()
                    raise VideoError(f"ffmpeg stopped after {self.frames} frames: {self._error()}")
                process.stdin.close()
                if process.wait() != 0:
                    raise VideoError(f"ffmpeg failed: {self._error()}")
            else:  # an error or Ctrl+C while recording: stop the encoder, its temporary file is removed
                process.kill()  # first: a pump blocked on the full pipe then fails and takes the stop
                self._stop_pump()
                process.wait()
        except BaseException as err:
            if process.poll() is None:
                process.kill()
                process.wait()
            self._stop_pump()
            self._stack.__exit__(type(err), err, err.__traceback__)
            raise
        return self._stack.__exit__(kind, value, traceback)


def _widen_pipe(stream) -> None:
    """A 1 MiB pipe to ffmpeg (a 1280x720 frame is 3.7 MB: 56 hand-overs at Linux's 64 KiB, 4 at 1 MiB)."""
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError):  # not Linux, or above /proc/sys/fs/pipe-max-size: the default pipe works
        pass


def decode_frames(path, size) -> np.ndarray:
    """Every frame of a video as (n, h, w, 3) uint8, decoded by the same ffmpeg (for checks and tests)."""
    w, h = size
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(path),
                             "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=False)
    if result.returncode != 0:
        raise VideoError(f"ffmpeg cannot decode {path}: {result.stderr.decode(errors='replace').strip()[-300:]}")
    return np.frombuffer(result.stdout, np.uint8).reshape(-1, h, w, 3)


# ---------------------------------------------------------------------- scripts: what the Explorer replays


@dataclass
class Script:
    """What a recording plays: ``start(ex)`` once, ``before_frame(ex, i)`` before frame ``i`` (False: the
    script is over), ``total`` frames (or an estimate, for the progress line)."""

    fps: int
    total: int = 0
    label: str = ""

    def start(self, ex) -> None:
        pass

    def before_frame(self, ex, i: int) -> bool:
        return i < self.total

    def layout_changed(self, ex) -> bool:
        """Whether the frame just drawn changed what the panels hold enough to resize them: ImGui fits an
        auto-sized window to its contents one frame late, so such a frame is drawn again at zero time."""
        return False


class ChapterClock(Script):
    """A chapter played from its start at the recording's clock: frame ``i`` shows ``(i + 1) / fps`` seconds
    (at most ``seconds`` of it). The runner is put at that time before the chapter system runs and shown
    as playing after it (the transport reads "Pause"), so no frame's time is a sum of rounded ``dt``."""

    def __init__(self, fps: int, seconds: float | None = None):
        super().__init__(fps)
        self.seconds = seconds
        self._clocked = None  # the session whose schedule has the clock's systems

    def start(self, ex) -> None:
        runner = ex.session.chapters.runner
        duration = runner.duration if self.seconds is None else min(self.seconds, runner.duration)
        self.total = max(1, int(round(duration * self.fps)))
        self.label = f"chapter {runner.current.number}"
        runner.seek(0.0)
        self._time = 0.0

    def _runner(self, ex):
        player = ex.session.chapters
        return player.runner if player is not None else None

    def before_frame(self, ex, i: int) -> bool:
        if i >= self.total:
            return False
        self._time = (i + 1) / self.fps  # exact: a whole number of seconds lands on itself
        if self._clocked is not ex.session:  # the first frame, or a step that opened another model (chapter 9)
            self._clocked = ex.session
            schedule = ex.session.engine.schedule
            schedule.add("animation", "video_clock", lambda frame: self._set_time(ex), before="chapters")
            schedule.add("animation", "video_playing", lambda frame: self._show_playing(ex), after="chapters")
        return True

    def _set_time(self, ex) -> None:
        runner = self._runner(ex)
        if runner is None:
            return
        t = min(self._time, runner.duration)
        runner.playing = False  # the clock, not the frame's dt, moves it
        held = None
        for k, (start, length) in enumerate(runner.timeline()):
            # A pause point (and the chapter's end) holds its step finished, as the runner does when playing.
            end = start + length
            if abs(t - end) <= END_EPSILON and (runner.current.steps[k].pause or k == len(runner.current.steps) - 1):
                held = k
        if held is not None:
            runner.go_to_step_end(held)
        else:
            runner.seek(t)

    def _show_playing(self, ex) -> None:
        runner = self._runner(ex)
        if runner is not None:
            runner.playing = runner.held is None

    def layout_changed(self, ex) -> bool:
        runner = self._runner(ex)
        shown = None if runner is None else (runner.chapter, runner.step_index, runner.held)
        changed, self._shown = shown != getattr(self, "_shown", None), shown
        return changed


class TourScript(Script):
    """The camera tour through the model, to its last stop (and ``HOLD_S`` there)."""

    HOLD_S = 1.0

    def __init__(self, fps: int, seconds: float | None = None):
        super().__init__(fps)
        self.seconds = min(seconds or MAX_SECONDS, MAX_SECONDS)
        self._after = None

    def start(self, ex) -> None:
        tour = ex.session.explore.tour
        if tour is None:
            raise VideoError(f"{ex.session.name} has no tour (it has no model layout)")
        tour.start()
        legs = len(tour.stops) * (tour.dwell + (tour.leg_seconds or 2.5))
        self.total = int(round(min(legs + self.HOLD_S, self.seconds) * self.fps))
        self.label = f"tour of {ex.session.name}"

    def before_frame(self, ex, i: int) -> bool:
        if i >= round(self.seconds * self.fps):
            return False
        if not ex.session.explore.tour.playing:
            self._after = i if self._after is None else self._after
            return i - self._after < self.HOLD_S * self.fps
        return True


class GenerateScript(Script):
    """A live model writing its answer to ``text`` letter by letter at its play interval, then ``HOLD_S`` more."""

    HOLD_S = 1.5

    def __init__(self, fps: int, text: str, seconds: float | None = None):
        super().__init__(fps)
        self.text = text
        self.seconds = min(seconds or MAX_SECONDS, MAX_SECONDS)
        self._after = None

    def start(self, ex) -> None:
        live = ex.session.scene.live
        session = getattr(live, "session", None)
        if session is None or not hasattr(session, "toggle_play"):
            raise VideoError(f"{ex.session.name} has no live model that generates text")
        from llmviz.scenes.cli.main import CliError
        from llmviz.scenes.cli.render_cmd import apply_text

        try:
            apply_text(ex.session.scene, self.text)
        except CliError as err:  # its message names --text, the flag of `llmviz render`
            raise VideoError(str(err).split(": ", 2)[-1]) from None
        self.session = session
        session.toggle_play()
        interval = getattr(session, "play_interval", 0.6)
        steps = getattr(session, "max_new_tokens", None) or 8
        self.total = int(round(min(steps * interval + self.HOLD_S, self.seconds) * self.fps))
        self.label = f"{ex.session.name} generating"

    def before_frame(self, ex, i: int) -> bool:
        if i >= round(self.seconds * self.fps):
            return False
        if not self.session.playing and not self.session.busy:
            self._after = i if self._after is None else self._after
            return i - self._after < self.HOLD_S * self.fps
        return True


def record(ex, script: Script, writer: VideoWriter, progress=None) -> int:
    """Replay ``script`` (started: ``script.start(ex)``) on the Explorer ``ex`` into ``writer``; returns the
    frames written."""
    dt = 1.0 / script.fps
    settle(ex)
    i = 0
    while script.before_frame(ex, i):
        await_workers(ex)
        ex.frame(dt)
        settle_chapter_step(ex)
        if _scene_changing(ex):  # a chapter step that shows another model: built, swapped in, settled, redrawn
            ex.wait_for_scene()
            settle(ex)
            await_workers(ex)
            ex.frame(0.0)
        if script.layout_changed(ex):
            ex.frame(0.0)
        ex.renderer.finish()
        ex.presented()
        ex.switch_seconds = None  # "opened in 0.22 s" after a scene switch is wall-clock time: not in a replay
        pixels = ex.renderer.read_pixels()
        writer.write(pixels if writer.channels == 4 else pixels[:, :, :3])
        i += 1
        if progress is not None:
            progress(i, max(script.total, i))
    return i


def _scene_changing(ex) -> bool:
    chapters = ex.session.chapters
    moment = chapters.moment if chapters is not None else None
    return ex.loader.busy or (moment is not None and moment.scene not in ("", ex.session.name))


def await_workers(ex) -> None:
    """Block until the live model (and simulated routing) have finished what they were asked, so the
    frame shows a whole trace, the same one on every run. A frame is never recorded without them: on a
    machine so busy that they take longer than ``VALUES_TIMEOUT_S``, the recording stops with that line."""
    if not ex.wait_for_values(VALUES_TIMEOUT_S):
        raise VideoError(f"the live model's values did not arrive within {VALUES_TIMEOUT_S:g} s")


def settle_chapter_step(ex) -> None:
    """A chapter step that replays a training recording asks its worker for a snapshot when it is first drawn:
    zero-time frames (the chapter's clock stands still) until the snapshot and the step's text are shown, so no
    recorded frame says "waiting for the model's values" (as `render --chapter` waits, up to VALUES_TIMEOUT_S)."""
    chapters = ex.session.chapters
    if chapters is None or chapters.moment is None or chapters.settled or _scene_changing(ex):
        return
    deadline = time.monotonic() + VALUES_TIMEOUT_S
    while not chapters.settled and time.monotonic() < deadline:
        for replay in chapters.runner.replays.values():
            replay.wait(0.5)
        await_workers(ex)
        ex.frame(0.0)


def settle(ex) -> None:
    """Zero-time frames until the panels and the free window are known, then the camera put at the
    chapter's pose at once (opening a chapter flies there in 0.8 s of frames; a recording starts there)."""
    for _ in range(SETTLE_FRAMES):
        await_workers(ex)
        ex.frame(0.0)
    player = ex.session.chapters
    if player is not None and player.moment is not None:
        ex.session.rig.transition = None
        player.moment.camera.apply(ex.session.rig.camera)
