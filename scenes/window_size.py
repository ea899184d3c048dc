"""The window's size: the one given with --size, else the size the user left it at, else most of the screen."""
from __future__ import annotations

import json

MIN_SIDE, MAX_SIDE = 320, 16384
SCREEN_SHARE = 0.9  # of the screen's width and height, when nothing else says
FALLBACK = (1280, 720)
MAX_FILE_BYTES = 4096


def _file():
    from llmviz.models.registry import config_dir

    return config_dir() / "window.json"


def _valid(size) -> tuple[int, int] | None:
    if (isinstance(size, (list, tuple)) and len(size) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and MIN_SIDE <= v <= MAX_SIDE for v in size)):
        return int(size[0]), int(size[1])
    return None


def remembered_size() -> tuple[int, int] | None:
    """The size saved when the window last closed; None when there is none or the file is not ours."""
    try:
        path = _file()
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return None
        return _valid(json.loads(path.read_text(encoding="utf-8")).get("size"))
    except (OSError, ValueError, AttributeError):
        return None


def remember_size(size) -> None:
    """Keep the window's size for the next start (a failure to write is not worth an error)."""
    from llmviz.common.atomic import write_atomic

    size = _valid([int(v) for v in size])
    if size is None:
        return
    try:
        path = _file()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({"size": list(size)}) + "\n")
    except OSError:
        pass


def screen_size() -> tuple[int, int] | None:
    """The default screen's size in pixels, from pyglet; None without one."""
    try:
        import pyglet

        display = pyglet.display.get_display() if hasattr(pyglet, "display") else pyglet.canvas.get_display()
        screen = display.get_default_screen()
        return int(screen.width), int(screen.height)
    except Exception:  # no display, no X server answering: the caller falls back
        return None


def choose_size(explicit: tuple[int, int] | None) -> tuple[int, int]:
    """--size wins; else the remembered size (made to fit the screen); else most of the screen."""
    if explicit is not None:
        return explicit
    screen = screen_size()
    size = remembered_size() or (
        (int(screen[0] * SCREEN_SHARE), int(screen[1] * SCREEN_SHARE)) if screen else FALLBACK)
    if screen:
        size = (min(size[0], screen[0]), min(size[1], screen[1]))
    return max(MIN_SIDE, size[0]), max(MIN_SIDE, size[1])
