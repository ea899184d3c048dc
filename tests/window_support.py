"""Shared by the window tests: running llmviz under a virtual X display, and a window class a test script drives."""
import json
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
    proc = run_cli(*args, "--screenshot", str(shot), timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return np.asarray(Image.open(shot).convert("RGB"))


def colours(image):
    return len(np.unique(image.reshape(-1, 3), axis=0))


# The head of every driven-window script: a test appends `class Scripted(Driven)` whose on_render
# calls self.release_taps() first, then reads state, taps keys or pad buttons, and closes.
DRIVER = r'''
import json, os, sys
import moderngl_window as mglw
import numpy as np
from llmviz.engine.ecs.components import FLAG_DIMMED, FLAG_HIGHLIGHTED
from llmviz.scenes.app import ExplorerWindow


class Driven(ExplorerWindow):
    """Presses keys and pad buttons for exactly one frame; counts frames in self.n."""
    n = 0
    seen = {}

    def tap(self, key):
        self.input.key_down(key)
        self.taps.append(("key", key))

    def pad(self, button):
        self.input.pad_button(button, True)
        self.taps.append(("pad", button))

    def release_taps(self):
        self.n += 1
        for kind, name in getattr(self, "taps", []):
            self.input.key_up(name) if kind == "key" else self.input.pad_button(name, False)
        self.taps = []
'''


def driver_footer(scene: str, view: str | None = None) -> str:
    """The end of a driven-window script: open the window on ``scene`` with the Scripted class."""
    options = {"scene": scene, "frames": None, "screenshot": None, "view": view, "hover": None}
    return f"\nExplorerWindow.options = {options!r}\nmglw.run_window_config(Scripted, args=['--window', 'pyglet'])\n"


def run_driven(script_text: str, tmp_path, *args, env=None, cwd=None, timeout=240) -> dict:
    """Run a driven-window script under Xvfb; returns the dict it printed on its "SEEN " line."""
    script = tmp_path / "drive.py"
    script.write_text(script_text)
    proc = subprocess.run([*XVFB, sys.executable, str(script), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("SEEN "))[5:])
