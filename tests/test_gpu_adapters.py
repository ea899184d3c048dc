"""wgpu adapter survey, device creation and the `auto` backend choice, on simulated machines and on this one."""
import pytest

from llmviz.engine import gpu_adapters as ga

LAVAPIPE = {"device": "llvmpipe (LLVM 15.0.6, 256 bits)", "backend_type": "Vulkan", "adapter_type": "CPU",
            "description": "Mesa 22.3.6 (LLVM 15.0.6)"}
MESA_GL = {"device": "llvmpipe (LLVM 15.0.6, 256 bits)", "backend_type": "OpenGL", "adapter_type": "CPU",
           "description": "4.5 (Core Profile) Mesa 22.3.6"}
DISCRETE_GL = {"device": "NVIDIA H200", "backend_type": "OpenGL", "adapter_type": "DiscreteGPU", "description": ""}
DISCRETE_VK = {"device": "NVIDIA H200", "backend_type": "Vulkan", "adapter_type": "DiscreteGPU", "description": ""}


class FakeAdapter:
    def __init__(self, info):
        self.info = info


def survey_of(*infos):
    return ga.AdapterSurvey(tuple(ga.adapter_from_info(i) for i in infos))


def test_software_adapters_are_named_software_whatever_type_they_report():
    assert ga.adapter_from_info(LAVAPIPE).software
    assert ga.adapter_from_info(dict(LAVAPIPE, adapter_type="Unknown")).software  # by name: llvmpipe
    assert ga.adapter_from_info(dict(LAVAPIPE, device="SwiftShader Device", adapter_type="Unknown")).software
    assert not ga.adapter_from_info(DISCRETE_VK).software
    assert ga.adapter_from_info(LAVAPIPE).label() == "lavapipe: llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, software)"
    assert ga.adapter_from_info(MESA_GL).label() == "llvmpipe (LLVM 15.0.6, 256 bits) (OpenGL, software)"


def test_best_adapter_prefers_hardware_then_native_apis_over_gl():
    assert ga.best_adapter(survey_of(MESA_GL, LAVAPIPE)).backend == "Vulkan"
    assert ga.best_adapter(survey_of(LAVAPIPE, DISCRETE_GL)).name == "NVIDIA H200"
    assert ga.best_adapter(survey_of(DISCRETE_GL, DISCRETE_VK)).backend == "Vulkan"
    assert ga.best_adapter(ga.AdapterSurvey((), "none")) is None


def test_auto_prefers_wgpu_when_an_adapter_is_found_and_says_which():
    choice = ga.choose_backend("auto", survey=survey_of(MESA_GL, LAVAPIPE))
    assert choice.backend == "wgpu" and choice.adapter.backend == "Vulkan"
    assert "llvmpipe" in choice.reason and "software" in choice.reason and "\n" not in choice.reason


def test_auto_falls_back_to_gl_with_the_reason():
    none = ga.choose_backend("auto", survey=ga.AdapterSurvey((), "wgpu is not installed (No module named 'wgpu')"))
    assert none.backend == "gl" and "wgpu is not installed" in none.reason and none.adapter is None
    limited = ga.choose_backend("auto", survey=survey_of(LAVAPIPE), wgpu_limitation="the wgpu backend has no window")
    assert limited.backend == "gl" and "has no window" in limited.reason
    assert ga.choose_backend("gl", survey=survey_of(LAVAPIPE)).backend == "gl"
    asked = ga.choose_backend("wgpu", survey=ga.AdapterSurvey((), "wgpu found no adapter"))
    assert asked.backend == "gl" and "no adapter" in asked.reason
    with pytest.raises(ValueError, match="--backend must be one of auto, wgpu, gl"):
        ga.choose_backend("vulkan")


def test_a_failing_or_missing_wgpu_is_a_reason_not_an_exception(monkeypatch):
    def missing():
        raise ga.GpuUnavailable("wgpu is not installed (No module named 'wgpu')")

    def broken():
        raise RuntimeError("libwgpu_native.so: cannot open shared object file\nsecond line")

    for fake, words in ((missing, "wgpu is not installed"), (broken, "could not list adapters: libwgpu_native"),
                        (lambda: [], "found no adapter")):
        monkeypatch.setattr(ga, "_enumerate_raw", fake)
        survey = ga.survey_adapters(refresh=True)
        assert survey.adapters == () and words in survey.problem and "\n" not in survey.problem
        with pytest.raises(ga.GpuUnavailable, match=words.split(":")[0]):
            ga.create_device()
    monkeypatch.setattr(ga, "_enumerate_raw", lambda: [FakeAdapter(LAVAPIPE)])
    assert ga.survey_adapters(refresh=True).adapters[0].software
    monkeypatch.undo()
    ga.survey_adapters(refresh=True)  # leave the real survey cached for the other tests


def test_this_machine_lists_its_adapters_and_makes_a_device():
    survey = ga.survey_adapters()
    if not survey.adapters:
        pytest.skip(f"no wgpu adapter here: {survey.problem}")
    gpu = ga.create_device()
    assert gpu.adapter == ga.best_adapter(survey)
    buffer = gpu.device.create_buffer_with_data(data=b"\x01\x02\x03\x04", usage=ga._import_wgpu().BufferUsage.COPY_SRC)
    assert bytes(gpu.device.queue.read_buffer(buffer)) == b"\x01\x02\x03\x04"
