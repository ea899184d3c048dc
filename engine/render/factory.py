"""Renderers made by name: ``--backend auto|wgpu|gl`` becomes a Renderer and the one line saying why.

``auto`` prefers wgpu when engine/gpu_adapters.py finds an adapter and the wgpu backend can do what the
caller needs; otherwise it falls back to moderngl and the line says exactly why (no adapter, what the wgpu
backend cannot do, a window without a native adapter, a renderer or surface that did not start). ``wgpu``
asked for and impossible is an error carrying that line, never a broken picture.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import gpu_adapters
from ..gpu_adapters import BACKENDS, choose_backend

# What the wgpu backend cannot do, by need (where wgpu_backend.CAN lacks it): the reason auto gives.
WGPU_LIMITS = {
    "window": "the wgpu backend has no window surface yet",
    "tiled": "the wgpu backend draws no tiled pictures yet",
    "ui": "the wgpu backend draws no UI overlay yet",
}


class BackendUnavailable(RuntimeError):
    """The backend asked for cannot draw here; str(err) is the one-line reason."""


@dataclass
class Made:
    renderer: object
    backend: str
    reason: str  # one line: which backend and why


def wgpu_limitation(needs: tuple[str, ...] = ()) -> str | None:
    """Why the wgpu backend cannot serve these needs ('window', 'tiled', 'ui'), or None where it can."""
    missing = [WGPU_LIMITS[n] for n in needs if n in WGPU_LIMITS and not _wgpu_can(n)]
    return "; ".join(missing) or None


def _wgpu_can(need: str) -> bool:
    try:
        from . import wgpu_backend
    except Exception:
        return False
    return need in wgpu_backend.CAN


def pick(requested: str = "auto", needs: tuple[str, ...] = ()) -> tuple[str, str]:
    """(backend, reason) for ``requested``; BackendUnavailable when 'wgpu' was asked for and cannot serve."""
    if requested not in BACKENDS:
        raise BackendUnavailable(f"--backend must be one of {', '.join(BACKENDS)}, got {requested!r}")
    limitation = wgpu_limitation(needs) if requested != "gl" else None
    if requested != "gl" and "window" in needs and not limitation:
        limitation = window_limitation()
    if requested == "wgpu" and limitation:
        raise BackendUnavailable(f"--backend wgpu: {limitation}")
    choice = choose_backend(requested, wgpu_limitation=limitation)
    if requested == "wgpu" and choice.backend != "wgpu":
        raise BackendUnavailable(f"--backend wgpu: {choice.reason.split('because ', 1)[-1]}")
    return choice.backend, choice.reason


def pick_for_window(requested: str = "auto") -> tuple[str, str]:
    """``pick`` for the process that opens the window: first its wgpu instance is limited to the native backends
    (a surface needs one; wgpu's GL backend would abort the process making it), so call it before anything else
    in the process lists adapters."""
    if requested != "gl":
        gpu_adapters.use_native_backends_only()
    return pick(requested, ("window",))


def window_limitation(survey=None) -> str | None:
    """Why no wgpu surface can be made for a window here, judged by the adapters; None where one can."""
    survey = survey or gpu_adapters.survey_adapters()
    if survey.adapters and all(a.backend in ("OpenGL", "GL") for a in survey.adapters):
        return ("a window surface needs a Vulkan, Metal or D3D12 adapter (wgpu's OpenGL one cannot share the "
                "window with the toolkit's OpenGL context)")
    return None


def fallback_reason(requested: str, what: str, err: BaseException) -> str:
    """The line for a wgpu renderer (or surface) that did not start: BackendUnavailable's text when wgpu was
    asked for, else auto's fallback line."""
    detail = " ".join(str(err).split()) or type(err).__name__
    if requested == "wgpu":
        raise BackendUnavailable(f"--backend wgpu: {what}: {detail}") from None
    return f"auto: moderngl, because {what} ({detail[:200]})"


def offscreen_renderer(requested: str, size, *, pixel_ratio: float = 1.0, needs: tuple[str, ...] = (),
                       **kwargs) -> Made:
    """An offscreen renderer of ``size`` target pixels by backend name (see ``pick``)."""
    backend, reason = pick(requested, needs)
    if backend == "wgpu":
        from .wgpu_backend import WgpuRenderer

        try:
            return Made(WgpuRenderer(size, pixel_ratio=pixel_ratio, **kwargs), "wgpu", reason)
        except Exception as err:
            reason = fallback_reason(requested, "the wgpu renderer did not start", err)
    from .headless import HeadlessRenderer

    return Made(HeadlessRenderer(size, pixel_ratio=pixel_ratio, **kwargs), "gl", reason)


def tiled_renderer(requested: str, size, side: int | None = None, *, pixel_ratio: float = 1.0,
                   needs: tuple[str, ...] = ("tiled",)) -> Made:
    """A renderer of a picture of any size drawn tile by tile (``bands()``), by backend name. A tile side beyond
    what the backend can draw is ValueError naming the limit."""
    backend, reason = pick(requested, tuple(needs) + ("tiled",))
    if backend == "wgpu":
        from .wgpu_tiled import WgpuTiledRenderer

        try:
            return Made(WgpuTiledRenderer(size, side, pixel_ratio=pixel_ratio), "wgpu", reason)
        except ValueError:
            raise
        except Exception as err:
            reason = fallback_reason(requested, "the wgpu renderer did not start", err)
    from .tiled import TiledRenderer

    return Made(TiledRenderer(size, side, pixel_ratio=pixel_ratio), "gl", reason)
