"""Ctrl+C during a benchmark ends it cleanly: exit 130, one line, no traceback, no abort from a worker thread."""
import signal
import subprocess
import sys
import time

import pytest


@pytest.mark.parametrize("scene", ["nano-gpt", "deepseek-v3"])
def test_ctrl_c_during_bench_app_exits_cleanly(scene):
    proc = subprocess.Popen([sys.executable, "-m", "llmviz.scenes.cli.main", "bench", "--scene", scene, "--app",
                             "--frames", "3000", "--size", "320x180"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # A runner started in the background ignores SIGINT, and children inherit
                            # that: give the benchmark the disposition of a terminal's foreground.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        # Interrupt once the app run is under way (its progress line), with workers (torch) busy.
        deadline = time.monotonic() + 240
        seen = ""
        while time.monotonic() < deadline and "bench --app" not in seen:
            seen += proc.stderr.readline()
        assert "bench --app" in seen, seen[-2000:]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=240)
    finally:
        proc.kill()
    err = seen + err
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "terminate called" not in err and "Exception in thread" not in err
    assert err.strip().splitlines()[-1] == "llmviz: interrupted"
