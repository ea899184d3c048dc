"""Shared by the scene tests: a model scene built headless with its live values in, closed afterwards."""
import contextlib

import pytest


@contextlib.contextmanager
def live_scene(name: str, size):
    """Yield (scene, renderer) for ``name`` on an EGL renderer, once the live model's first values arrived."""
    headless = pytest.importorskip("llmviz.engine.render.headless")
    from llmviz.scenes.registry import build_scene

    renderer = headless.headless_renderer(size)
    scene = build_scene(name, renderer)
    try:
        assert scene.wait_for_values(), scene.live.session.error
        yield scene, renderer
    finally:
        scene.close()
        renderer.release()
