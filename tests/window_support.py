"""Shared by the window tests: running llmviz under a virtual X display, and a window class a test script drives."""
import subprocess
import sys

import numpy as np

XVFB = ["xvfb-run", "-a", "-s", "-screen 0 1280x720x24"]


def run_cli(*args, timeout=180):
    return subprocess.run([*XVFB, sys.executable, "-m", "llmviz.scenes.cli.main", *args],
                          capture_output=True, text=True, timeout=timeout)


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
