"""The renderer interface holds: scenes/ names no GL object, and callers make renderers by backend name."""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
GL_NAMES = re.compile(r"moderngl|\.ctx\b|GLRenderer")


def test_scenes_name_no_gl_object():
    hits = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
            for path in sorted((ROOT / "scenes").rglob("*.py"))
            for n, line in enumerate(path.read_text().splitlines(), 1) if GL_NAMES.search(line)]
    assert hits == []


def test_the_naive_baseline_is_not_part_of_the_renderer_contract():
    from llmviz.engine.render.backend import Renderer

    assert not hasattr(Renderer, "draw_naive")
    for name in ("finish", "read_data", "reset_data", "write_highlight", "ui_overlay", "set_viewport", "device_name"):
        assert name in Renderer.__abstractmethods__, name


def test_gl_asked_for_is_gl_and_an_unknown_name_is_one_line():
    from llmviz.engine.render.factory import BackendUnavailable, pick

    assert pick("gl")[0] == "gl"
    with pytest.raises(BackendUnavailable, match="--backend must be one of auto, wgpu, gl"):
        pick("vulkan")


def test_auto_falls_back_with_the_reason_when_the_wgpu_backend_cannot_serve(monkeypatch):
    from llmviz.engine import gpu_adapters
    from llmviz.engine.render import factory

    survey = gpu_adapters.AdapterSurvey(
        [gpu_adapters.adapter_from_info({"device": "SomeGPU", "backend_type": "Vulkan", "adapter_type": "DiscreteGPU"})],
        None)
    monkeypatch.setattr(gpu_adapters, "survey_adapters", lambda refresh=False: survey)
    monkeypatch.setattr(factory, "_wgpu_can", lambda need: need != "window")
    backend, reason = factory.pick("auto", needs=("window",))
    assert backend == "gl" and "the wgpu backend has no window surface yet" in reason
    with pytest.raises(factory.BackendUnavailable, match="no window surface yet"):
        factory.pick("wgpu", needs=("window",))
    assert factory.pick("auto", needs=())[0] == "wgpu"


def test_a_window_needs_a_native_adapter_and_auto_says_so(monkeypatch):
    """Only wgpu's OpenGL adapter here: it cannot make a surface on the toolkit's OpenGL window, so auto opens the
    window on moderngl with that reason and --backend wgpu is the one line; headless commands still take wgpu."""
    from llmviz.engine import gpu_adapters
    from llmviz.engine.render import factory

    gl_only = gpu_adapters.AdapterSurvey(
        [gpu_adapters.adapter_from_info({"device": "llvmpipe", "backend_type": "OpenGL", "adapter_type": "CPU"})], None)
    monkeypatch.setattr(gpu_adapters, "survey_adapters", lambda refresh=False: gl_only)
    backend, reason = factory.pick("auto", needs=("window",))
    assert backend == "gl" and reason.startswith("auto: moderngl, because a window surface needs a Vulkan")
    with pytest.raises(factory.BackendUnavailable, match="--backend wgpu: a window surface needs a Vulkan"):
        factory.pick("wgpu", needs=("window",))
    assert factory.pick("auto", needs=("ui",))[0] == "wgpu"
    vulkan = gpu_adapters.AdapterSurvey(
        [gpu_adapters.adapter_from_info({"device": "llvmpipe", "backend_type": "Vulkan", "adapter_type": "CPU"})], None)
    monkeypatch.setattr(gpu_adapters, "survey_adapters", lambda refresh=False: vulkan)
    assert factory.pick("auto", needs=("window",))[0] == "wgpu"
