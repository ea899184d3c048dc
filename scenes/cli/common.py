"""Argument checks and set-up shared by the headless subcommands: sizes, output paths, the EGL renderer."""
from __future__ import annotations

import os
import re
import sys
import time

from llmviz.scenes.cli.main import CliError

MAX_SIDE = 8192


def parse_size(text: str, flag: str = "--size") -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text or "")
    if not match:
        raise CliError(f"llmviz: {flag} {text!r} is not WIDTHxHEIGHT (for example 1280x720)")
    w, h = int(match.group(1)), int(match.group(2))
    if not (16 <= w <= MAX_SIDE and 16 <= h <= MAX_SIDE):
        raise CliError(f"llmviz: {flag} {text!r}: width and height must be between 16 and {MAX_SIDE}")
    return w, h


def check_output_path(path: str, flag: str = "--out") -> str:
    """Fail before any work if the file cannot be written (missing folder, no permission, a folder)."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        raise CliError(f"llmviz: {flag} {path!r} is a folder, not a file")
    if not os.path.isdir(folder):
        raise CliError(f"llmviz: {flag} {path!r}: folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise CliError(f"llmviz: {flag} {path!r}: not writable")
    return path


def headless_renderer(size: tuple[int, int]):
    """An EGL-backed renderer of the given size; a clear error if EGL cannot start."""
    from llmviz.engine.render.headless import HeadlessRenderer

    try:
        return HeadlessRenderer(size)
    except Exception as err:  # the GL stack's own exceptions vary by driver
        raise CliError(f"llmviz: cannot start headless OpenGL (EGL): {err}") from None


def process_age_s() -> float:
    """Seconds since this process started (Linux /proc), for the first-frame time."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.process_time()


class Progress:
    """Progress on stderr for work that takes more than a moment: a live line on a terminal, else a line every 2 s."""

    def __init__(self, label: str):
        self.label = label
        self.live = sys.stderr.isatty()
        self._start = self._last = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        finished = done >= total
        interval = 0.25 if self.live else 2.0
        if now - self._last < interval and not (finished and now - self._start > interval):
            return
        self._last = now
        text = f"{self.label}: {done}/{total} ({now - self._start:.1f} s)"
        if self.live:
            print("\r" + text, end="\n" if finished else "", file=sys.stderr, flush=True)
        else:
            print(text, file=sys.stderr, flush=True)
