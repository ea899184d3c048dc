"""The real window: opens under a virtual X display, runs frames with the overlay, and saves what it showed."""
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(shutil.which("xvfb-run") is None,
                                reason="xvfb-run is not installed (make test installs it where apt-get is usable)")


def test_window_renders_scene_and_overlay(tmp_path):
    shot = tmp_path / "window.png"
    proc = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1280x720x24", sys.executable, "-m", "llmviz.scenes.cli.main",
         "--scene", "stress:5000", "--size", "960x540", "--frames", "20", "--screenshot", str(shot)],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    from PIL import Image
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape == (540, 960, 3)
    # The profiler panel (ImGui's dark window) sits in the top-left corner over the scene; the
    # status bar spans the bottom row; the scene itself has many colours.
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50
    bottom = image[-14:, :, :].reshape(-1, 3)
    assert (bottom.max(axis=1) > 180).any()  # status-bar text
