"""Shared by the window tests: running llmviz under a virtual X display, and a window class a test script drives."""
import subprocess
import sys

import numpy as np

XVFB = ["xvfb-run", "-a", "-s", "-screen 0 1280x720x24"]


def run_cli(*args, timeout=180):
    return subprocess.run([*XVFB, sys.executable, "-m", "llmviz.scenes.cli.main", *args],
                          capture_output=True, text=True, timeout=timeout)


def window_screenshot(tmp_path, *args, timeout=180) -> np.ndarray:
    """Open the window with ``args`` for a few frames, save its last frame, and return it as RGB."""
    from PIL import Image

    shot = tmp_path / "window.png"
    if "--size" not in args:  # the window's own default follows the screen: tests pin the size
        args = (*args, "--size", "1280x720")
    proc = run_cli(*args, "--screenshot", str(shot), timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return np.asarray(Image.open(shot).convert("RGB"))


def colours(image):
    return len(np.unique(image.reshape(-1, 3), axis=0))
