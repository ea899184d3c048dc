"""Argument checks and set-up shared by the headless subcommands: sizes, output paths, the EGL renderer."""
from __future__ import annotations

import os
import re
import sys
import time

from llmviz.scenes.cli.main import CliError

MAX_SIDE = 8192


def parse_size(text: str, flag: str = "--size", max_side: int = MAX_SIDE) -> tuple[int, int]:
    """WIDTHxHEIGHT, each side 16 to ``max_side`` (a tiled picture may be larger than a window)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text or "")
    if not match:
        raise CliError(f"llmviz: {flag} {text!r} is not WIDTHxHEIGHT (for example 1280x720)")
    w, h = int(match.group(1)), int(match.group(2))
    if not (16 <= w <= max_side and 16 <= h <= max_side):
        raise CliError(f"llmviz: {flag} {text!r}: width and height must be between 16 and {max_side}")
    return w, h


def shown(text: str, limit: int = 40) -> str:
    """A user's value for a message: quoted (so newlines stay escaped, the message one line) and cut short."""
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def parse_int(text, flag: str, low: int, high: int) -> int:
    """An integer argument within [low, high]; ValueError naming the flag otherwise. Digits are
    counted before int() so that a 5000-digit value is an error message, not Python's digit limit."""
    digits = str(text).strip().lstrip("+-").lstrip("0")
    if len(digits) > len(str(max(abs(low), abs(high)))):
        raise ValueError(f"{flag} must be an integer between {low} and {high}, got {shown(text)}")
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ValueError(f"{flag} {shown(text)} is not an integer") from None
    if not low <= value <= high:
        raise ValueError(f"{flag} must be an integer between {low} and {high}, got {value}")
    return value


def check_output_path(path: str, flag: str = "--out", suffixes: tuple[str, ...] = (), reserve: int = 0) -> str:
    """Fail before any work if the file cannot be written: a wrong extension, a missing folder, a
    folder or device in its place, no permission, a read-only or pseudo file system, or (with
    ``reserve``) a disk without that many bytes free. A temporary file is tried, not access()."""
    from llmviz.common.atomic import probe_writable

    if not path:
        raise CliError(f"llmviz: {flag} needs a file name")
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        raise CliError(f"llmviz: {flag} {path!r} is a folder, not a file")
    if suffixes and not path.lower().endswith(suffixes):
        raise CliError(f"llmviz: {flag} {path!r}: the file name must end in {' or '.join(suffixes)}")
    if not os.path.isdir(folder):
        raise CliError(f"llmviz: {flag} {path!r}: folder {folder!r} does not exist")
    if os.path.exists(path) and not os.path.isfile(path):
        raise CliError(f"llmviz: {flag} {path!r} is not a regular file")
    try:
        probe_writable(path, reserve)
    except OSError as err:
        raise CliError(f"llmviz: {flag} {path!r}: not writable ({err.strerror or err})") from None
    return path


def headless_renderer(size: tuple[int, int], pixel_ratio: float = 1.0):
    """An EGL-backed renderer of the given size (laid out for size / pixel_ratio); a clear error if EGL cannot start."""
    from llmviz.engine.render.headless import HeadlessRenderer

    try:
        return HeadlessRenderer(size, pixel_ratio=pixel_ratio)
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
