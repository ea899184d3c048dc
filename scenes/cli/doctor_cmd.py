"""`llmviz doctor [--json]`: what this machine gives llmviz to draw and compute with.

    GL renderer       GL_RENDERER and GL_VERSION of the headless (EGL) context `llmviz render` draws with
    wgpu adapters     each adapter wgpu finds: name, backend (Vulkan, Metal, D3D12, OpenGL), software or not
    backend auto      which backend `--backend auto` picks, and the one-line reason: by the adapters alone, then
                      for the headless commands and for the window (whose surface needs a native adapter)
    compute           the WGSL attention kernels on a fixed random case against a float64 numpy reference
                      (compute_max_error, passed within 1e-5)

Each failure is one line naming the part that failed; the exit code is 0 when every part works, 1 otherwise.
"""
from __future__ import annotations

import json
import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("doctor", help="report the GL renderer, the wgpu adapters, the backend auto picks, "
                                             "and check the compute kernels",
                              description="Report what this machine gives llmviz: the OpenGL renderer of the "
                                          "headless context, the wgpu adapters (name, backend, software or not), "
                                          "which backend --backend auto picks and why, and a self-check of the "
                                          "WGSL attention kernels against a numpy reference.")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=run)


def diagnose() -> dict:
    """The report as a dict; every part that fails adds one line to 'problems' instead of raising."""
    from llmviz.engine import gpu_adapters

    problems: list[str] = []
    gl = gpu_adapters.gl_renderer()
    if "error" in gl:
        problems.append(f"GL renderer: {gl['error']}")
    survey = gpu_adapters.survey_adapters()
    if survey.problem:
        problems.append(f"wgpu adapters: {survey.problem}")
    choice = gpu_adapters.choose_backend("auto", survey=survey)
    report = {
        "gl": gl,
        "wgpu_adapters": [a.as_dict() for a in survey.adapters],
        "wgpu_problem": survey.problem,
        "backend_auto": {"backend": choice.backend, "reason": choice.reason,
                         "adapter": choice.adapter.as_dict() if choice.adapter else None},
    }
    # What auto then picks for the headless commands and for the window, given what the wgpu renderer can do
    # (engine/render/factory.py says; without it, the adapters alone decide).
    for key, needs in (("backend_auto_render", ()), ("backend_auto_window", ("window", "ui"))):
        backend, reason = _renderer_choice(needs, choice)
        report[key] = {"backend": backend, "reason": reason}
    try:
        from llmviz.engine.compute.self_check import run_self_check

        check = run_self_check()
    except Exception as err:  # a driver fault inside the check: the report still comes out
        check = {"error": "the self-check stopped: " + (" ".join(str(err).split()) or type(err).__name__)[:200],
                 "passed": False}
    report["compute"] = check
    report["compute_max_error"] = check.get("compute_max_error")
    if "error" in check:
        problems.append(f"compute: {check['error']}")
    elif not check["passed"]:
        problems.append(f"compute: max error {check['compute_max_error']:.2e} is over the tolerance "
                        f"{check['tolerance']:.0e} on {check['adapter']}")
    report["problems"] = problems
    return report


def _renderer_choice(needs: tuple[str, ...], adapters_choice) -> tuple[str, str]:
    try:
        from llmviz.engine.render.factory import pick
    except ImportError:
        return adapters_choice.backend, adapters_choice.reason
    try:
        return pick("auto", needs)
    except Exception as err:  # the factory's own refusal is a reason too
        return "gl", " ".join(str(err).split())[:200]


def _text(report: dict) -> list[str]:
    gl = report["gl"]
    lines = [f"GL renderer:     {gl['renderer']}, OpenGL {gl['version']} (headless EGL)" if "error" not in gl
             else f"GL renderer:     none ({gl['error']})"]
    if report["wgpu_adapters"]:
        lines.append("wgpu adapters:")
        for a in report["wgpu_adapters"]:
            kind = "software" if a["software"] else "hardware"
            known = f"{a['known_as']}: " if a["known_as"] else ""
            lines.append(f"  {known}{a['name']}  [{a['backend']}, {kind}, {a['adapter_type']}]  {a['description']}")
    else:
        lines.append(f"wgpu adapters:   none ({report['wgpu_problem']})")
    lines.append(f"backend auto:    {report['backend_auto']['reason']}")
    lines.append(f"  for render:    {report['backend_auto_render']['reason']}")
    lines.append(f"  for a window:  {report['backend_auto_window']['reason']}")
    check = report["compute"]
    if "error" in check:
        lines.append(f"compute check:   not run ({check['error']})")
    else:
        verdict = "passed" if check["passed"] else "FAILED"
        lines.append(f"compute check:   {verdict}, max error {check['compute_max_error']:.1e} against a float64 "
                     f"reference (tolerance {check['tolerance']:.0e}), attention of {check['case']['heads']} heads "
                     f"x {check['case']['queries']} queries x {check['case']['keys']} keys, on {check['adapter']}")
    return lines


def run(args) -> int:
    report = diagnose()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(_text(report)))
    for problem in report["problems"]:
        print(f"llmviz doctor: {problem}", file=sys.stderr)
    return 1 if report["problems"] else 0
