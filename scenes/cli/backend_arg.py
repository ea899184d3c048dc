"""`--backend auto|wgpu|gl` for the window, `render` and `bench`: the flag, and the offscreen renderer it names.

engine/render/factory.py makes the choice; here it becomes one stderr line when auto falls back to OpenGL
(why: no adapter, or what the wgpu backend cannot do yet for this command) and one error line naming the
flag when wgpu was asked for and cannot serve.
"""
from __future__ import annotations

import sys

from llmviz.scenes.cli.common import CliError

BACKEND_CHOICES = ("auto", "wgpu", "gl")
DEFAULT_BACKEND = "gl"  # auto becomes the default once both backends' pictures have held in the full suite


def add_backend_argument(p, default: str = DEFAULT_BACKEND) -> None:
    p.add_argument("--backend", default=default, choices=BACKEND_CHOICES,
                   help="renderer: 'wgpu', 'gl' (OpenGL), or 'auto': wgpu where an adapter is found and it can "
                        f"draw what is asked, else OpenGL with a line saying why (default {default})")


def say_fallback(requested: str, backend: str, reason: str) -> None:
    if requested == "auto" and backend != "wgpu":
        print(f"llmviz: --backend {reason}", file=sys.stderr)


def pick_backend(requested: str, needs: tuple[str, ...]) -> str:
    """The backend to use for a renderer the caller makes itself (the window: call it before anything lists
    wgpu adapters); the fallback line said."""
    from llmviz.engine.render.factory import BackendUnavailable, pick, pick_for_window

    try:
        backend, reason = pick_for_window(requested) if "window" in needs else pick(requested, needs)
    except BackendUnavailable as err:
        raise CliError(f"llmviz: {err}") from None
    say_fallback(requested, backend, reason)
    return backend


def offscreen_renderer(requested: str, size, pixel_ratio: float = 1.0, needs: tuple[str, ...] = ()):
    """An offscreen renderer by --backend; one clear line where none can start."""
    from llmviz.engine.render.factory import offscreen_renderer as make

    return _made(requested, lambda: make(requested, size, pixel_ratio=pixel_ratio, needs=needs))


def tiled_renderer(requested: str, size, tile: int | None, pixel_ratio: float = 1.0, needs: tuple[str, ...] = ()):
    """A tiled renderer (``bands()``) by --backend; a tile side beyond the backend's limit names --tile."""
    from llmviz.engine.render.factory import tiled_renderer as make

    try:
        return _made(requested, lambda: make(requested, size, tile, pixel_ratio=pixel_ratio, needs=needs))
    except ValueError as err:
        raise CliError(f"llmviz: --tile {tile}: {err}") from None


def _made(requested: str, make):
    from llmviz.engine.render.factory import BackendUnavailable

    try:
        made = make()
    except BackendUnavailable as err:
        raise CliError(f"llmviz: {err}") from None
    except ValueError:  # a tile side beyond the backend's limit: the caller names its option
        raise
    except Exception as err:  # the GL stack's own exceptions vary by driver
        raise CliError(f"llmviz: cannot start headless OpenGL (EGL): {err}") from None
    say_fallback(requested, made.backend, made.reason)
    return made.renderer
