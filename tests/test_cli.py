"""The command line: one clear error line and exit code 2 for bad input, never a traceback; real runs work."""
import json
import os
import subprocess
import sys

import pytest

from llmviz.scenes.cli.main import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("argv,needle", [
    (["render", "--scene", "nope", "--out", "/tmp/x.png"], "unknown scene 'nope'"),
    (["render", "--scene", "stress:0", "--out", "/tmp/x.png"], "N must be between"),
    (["render", "--scene", "stress:10", "--size", "big", "--out", "/tmp/x.png"], "--size 'big' is not WIDTHxHEIGHT"),
    (["render", "--scene", "stress:10", "--size", "10x5", "--out", "/tmp/x.png"], "between 16 and"),
    (["render", "--scene", "stress:10", "--out", "/nonexistent/dir/x.png"], "does not exist"),
    (["render", "--scene", "stress:10", "--out", "/tmp"], "is a folder"),
    (["render", "--scene", "stress:10", "--out", "/tmp/x.png", "--camera", "sideways"], "--camera 'sideways'"),
    (["render", "--out", "/tmp/x.png"], "the following arguments are required: --scene"),
    (["bench", "--scene", "stress:10", "--frames", "0"], "--frames must be at least 1"),
    (["bench", "--scene", "stress:10", "--frames", "ten"], "invalid int value"),
    (["bench", "--scene", "mystery"], "unknown scene 'mystery'"),
    (["fly"], "invalid choice"),
])
def test_bad_arguments_give_one_line_and_exit_2(capsys, argv, needle):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err


def test_unwritable_output_file(capsys, tmp_path):
    target = tmp_path / "locked.png"
    target.write_bytes(b"")
    target.chmod(0o400)
    if os.access(target, os.W_OK):  # root ignores file modes: /sys refuses new files even to root
        target = "/sys/llmviz-test.png"
    code, _, err = run_cli(capsys, "render", "--scene", "stress:10", "--out", str(target))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert "not writable" in lines[0] or "cannot write" in lines[0]


def test_no_display_names_the_headless_commands():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run([sys.executable, "-m", "llmviz.scenes.cli.main"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display" in lines[0] and "llmviz render" in lines[0] and "llmviz bench" in lines[0]


def test_render_writes_a_png(tmp_path):
    out = tmp_path / "shot.png"
    proc = subprocess.run([sys.executable, "-m", "llmviz.scenes.cli.main", "render", "--scene", "stress:3000",
                           "--size", "320x180", "--out", str(out), "--camera", "overview"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    from PIL import Image
    image = Image.open(out)
    assert image.size == (320, 180)
    import numpy as np
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 10  # something was drawn, not a blank clear colour


def test_bench_json_has_the_documented_keys():
    proc = subprocess.run([sys.executable, "-m", "llmviz.scenes.cli.main", "bench", "--scene", "stress:2000",
                           "--frames", "8", "--size", "320x180", "--baseline-frames", "2", "--json"],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    for key in ("scene", "frames", "size", "fps_median", "fps_p5", "frame_ms_median", "systems_ms", "draw_calls",
                "triangles", "entities", "visible", "culled", "naive_fps_median", "cull_lod_ms_vectorized",
                "cull_lod_ms_per_entity"):
        assert key in report, key
    assert report["frames"] == 8 and report["entities"] == 2000 + 4
    assert report["visible"] + report["culled"] == report["entities"]
    assert {"frustum_hlod", "lod", "instancing", "render"} <= set(report["systems_ms"])


def test_engine_and_stress_render_do_not_import_torch():
    code = ("import sys; from llmviz.scenes.cli.main import main; "
            "main(['render', '--scene', 'stress:500', '--size', '64x64', '--out', '/tmp/llmviz_notorch.png']); "
            "print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False"


def test_bench_app_reports_the_whole_frame_beside_the_bare_engine():
    proc = subprocess.run([sys.executable, "-m", "llmviz.scenes.cli.main", "bench", "--scene", "stress:2000", "--app",
                           "--interact", "--frames", "12", "--size", "320x180", "--baseline-frames", "0", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(proc.stdout)
    for key in ("fps_median", "fps_p5", "wall_fps", "engine_fps_median", "frame_ms_max", "frames_over_50ms",
                "profiler_fps", "systems_ms", "ratio_app_vs_engine", "interact"):
        assert key in r, key
    # The app frame is the engine's systems plus the explorer's own, every one timed.
    assert {"events", "ui", "picking", "camera", "flags", "frustum_hlod", "render", "present"} <= set(r["systems_ms"])
    assert r["engine"]["frames"] == 12 and r["frames_counted"] == 12
    steps = r["interact"]["steps"]
    assert steps["switch"]["back_to"] == "stress:2000" and steps["switch"]["to"] != "stress:2000"
    assert r["interact"]["frames"] >= sum(s["frames_counted"] for s in steps.values()) > 0


def test_bench_interact_needs_app():
    proc = subprocess.run([sys.executable, "-m", "llmviz.scenes.cli.main", "bench", "--scene", "stress:100",
                           "--interact"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "need --app" in proc.stderr and "Traceback" not in proc.stderr
