"""Renderers made by name: ``--backend auto|wgpu|gl`` becomes a Renderer and the one line saying why.

``auto`` prefers wgpu when engine/gpu_adapters.py finds an adapter and the wgpu backend can do what the
caller needs; otherwise it falls back to moderngl and the line says exactly why (no adapter, or what the
wgpu backend cannot do yet: a window surface, tiles, the UI). ``wgpu`` asked for and impossible is an error
carrying that line, never a broken picture.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..gpu_adapters import BACKENDS, choose_backend

# What the wgpu backend cannot do yet, by need: the reason auto gives when it falls back.
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
    if requested == "wgpu" and limitation:
        raise BackendUnavailable(f"--backend wgpu: {limitation}")
    choice = choose_backend(requested, wgpu_limitation=limitation)
    if requested == "wgpu" and choice.backend != "wgpu":
        raise BackendUnavailable(f"--backend wgpu: {choice.reason.split('because ', 1)[-1]}")
    return choice.backend, choice.reason


def offscreen_renderer(requested: str, size, *, pixel_ratio: float = 1.0, needs: tuple[str, ...] = (),
                       **kwargs) -> Made:
    """An offscreen renderer of ``size`` target pixels by backend name (see ``pick``)."""
    backend, reason = pick(requested, needs)
    if backend == "wgpu":
        from .wgpu_backend import WgpuRenderer

        try:
            return Made(WgpuRenderer(size, pixel_ratio=pixel_ratio, **kwargs), "wgpu", reason)
        except Exception as err:
            if requested == "wgpu":
                raise BackendUnavailable(f"--backend wgpu: cannot start: {err}") from None
            reason = f"auto: moderngl, because the wgpu renderer did not start ({str(err).splitlines()[0]})"
    from .headless import HeadlessRenderer

    return Made(HeadlessRenderer(size, pixel_ratio=pixel_ratio, **kwargs), "gl", reason)
