"""The headless renderer the GL tests draw with, or a skip where there is no EGL/OpenGL at all."""
import pytest


def headless_or_skip(size, **kwargs):
    """Yields a headless renderer of ``size`` and releases it afterwards (use from a fixture)."""
    headless = pytest.importorskip("llmviz.engine.render.headless")
    try:
        r = headless.headless_renderer(size, **kwargs)
    except Exception as exc:  # only when no EGL/OpenGL at all
        pytest.skip(f"no headless OpenGL context: {exc}")
    yield r
    r.release()
