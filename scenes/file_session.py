"""A live model fed one file at a time (a picture for vit-tiny and clip-tiny, a sound for whisper-tiny): the
file named on the command line, typed in the panel, chosen in the dialog or dropped onto the window, or the next
of the shipped samples; with ``autoplay`` (the benchmark) the next sample every AUTOPLAY_INTERVAL seconds.

The file is read, decoded and traced on the session's worker (scenes/worker_session.py): every event here
returns at once and leaves a request, ("path", path) or (kind, already decoded value), which `_request` sends.
"""
from __future__ import annotations

from llmviz.scenes.legend import watch_cells
from llmviz.scenes.worker_session import WorkerSession

AUTOPLAY_INTERVAL = 0.5


class FileSession(WorkerSession):
    """The file events, samples, autoplay and benchmark counters of a one-file live model. Subclasses call
    `_start_files` from their __init__ and give `samples` (shipped file names) and `sample_path(name)`."""

    samples: tuple[str, ...] = ()

    def _start_files(self, scene, make_compute, autoplay: bool) -> None:
        self.values_version = 0
        self.tick_seconds: list[float] = []
        self.autoplay, self.playing = autoplay, autoplay
        self.source = ""
        self.cells = watch_cells(scene) if scene is not None else None
        self._since_new = 0.0
        self._next_sample = 1
        self._start_worker(make_compute)

    @staticmethod
    def sample_path(name: str):
        raise NotImplementedError

    @property
    def tokens_generated(self) -> int:
        """What the benchmark counts of a text model's generation: here, the files traced."""
        return len(self.tick_seconds)

    @property
    def session(self):
        """LiveModel's interface, where callers read live.session.error / .trace / .weights."""
        return self

    # ------------------------------------------------------------------ events
    def open_path(self, path) -> None:
        """Trace the file at `path`; read on the worker, a bad file becomes `error`."""
        self.open_value("path", str(path), str(path))

    def open_value(self, kind: str, value, source: str) -> None:
        """Trace an already decoded `value` of `kind`, shown as coming from `source`."""
        self.source = source
        self._input = (kind, value)
        self._submit()

    def open_dropped(self, path: str) -> None:
        """A file dropped onto the window (scenes/explorer/controller.py files_dropped)."""
        self.open_path(path)

    def toggle_play(self) -> None:
        self.playing = not self.playing

    def step(self) -> bool:
        """The next shipped sample."""
        self.open_path(self.sample_path(self.samples[self._next_sample % len(self.samples)]))
        self._next_sample += 1
        return True

    # ------------------------------------------------------------------ per frame
    def _autoplay(self, dt: float) -> None:
        """While playing, the next sample once the last one is traced and AUTOPLAY_INTERVAL has passed."""
        if self.playing:
            self._since_new += dt
            if self._since_new >= AUTOPLAY_INTERVAL and not self.busy:
                self._since_new = 0.0
                self.step()

    def _request(self):
        return self._input
