"""`llmviz doctor`: its report on this machine, and one line per failure (never a traceback) without wgpu or GL."""
import json
import subprocess
import sys

import pytest

from llmviz.engine import gpu_adapters


def doctor(*args, prelude=""):
    """Runs the command in a fresh interpreter (the adapter survey and the device are cached per process)."""
    code = f"{prelude}\nimport sys\nfrom llmviz.scenes.cli.main import main\nsys.exit(main({list(args)!r}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_doctor_json_reports_gl_adapters_auto_choice_and_compute_check():
    done = doctor("doctor", "--json")
    report = json.loads(done.stdout)
    assert "Traceback" not in done.stderr
    survey = gpu_adapters.survey_adapters()
    # the same adapters this process lists, in wgpu's order, with the fields the issue names
    assert [(a["name"], a["backend"], a["software"]) for a in report["wgpu_adapters"]] == \
        [(a.name, a.backend, a.software) for a in survey.adapters]
    assert report["backend_auto"]["backend"] in ("wgpu", "gl") and report["backend_auto"]["reason"]
    for key in ("backend_auto_render", "backend_auto_window"):  # what auto picks once the renderer's needs count
        assert report[key]["backend"] in ("wgpu", "gl") and "\n" not in report[key]["reason"]
    if survey.adapters:
        assert report["backend_auto"]["backend"] == "wgpu"
        # a window takes wgpu where a native adapter can make its surface (engine/render/wgpu_window.py)
        native = any(a.backend not in ("OpenGL", "GL") for a in survey.adapters)
        assert report["backend_auto_window"]["backend"] == ("wgpu" if native else "gl")
        assert report["compute"]["passed"] and report["compute_max_error"] <= 1e-5
        assert report["compute"]["adapter"] == gpu_adapters.best_adapter(survey).label()
    if "error" not in report["gl"]:
        assert report["gl"]["renderer"] and report["gl"]["version"]
    assert done.returncode == (1 if report["problems"] else 0)
    assert len(done.stderr.strip().splitlines()) == len(report["problems"])


def test_doctor_text_names_each_part():
    done = doctor("doctor")
    assert "Traceback" not in done.stderr
    for heading in ("GL renderer:", "wgpu adapters:", "backend auto:", "for render:", "for a window:",
                    "compute check:"):
        assert heading in done.stdout


def test_without_wgpu_or_gl_each_failure_is_one_line_and_exit_1():
    # wgpu and moderngl made unimportable, as on a machine without them
    done = doctor("doctor", "--json", prelude="import sys; sys.modules['wgpu'] = None; sys.modules['moderngl'] = None")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    assert report["wgpu_adapters"] == [] and "wgpu is not installed" in report["wgpu_problem"]
    for key in ("backend_auto", "backend_auto_render", "backend_auto_window"):
        assert report[key]["backend"] == "gl" and "wgpu is not installed" in report[key]["reason"]
    assert report["compute_max_error"] is None and "wgpu is not installed" in report["compute"]["error"]
    assert "moderngl is not importable" in report["gl"]["error"]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("llmviz doctor: ") for line in lines)
    assert [line.split(": ")[1] for line in lines] == ["GL renderer", "wgpu adapters", "compute"]


def test_doctor_rejects_unknown_arguments_in_one_line():
    done = doctor("doctor", "--frobnicate")
    assert done.returncode == 2 and "unrecognized arguments: --frobnicate" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("flag", ["--help"])
def test_doctor_help_lists_json(flag):
    done = doctor("doctor", flag)
    assert done.returncode == 0 and "--json" in done.stdout
