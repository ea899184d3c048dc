"""Shared by the window tests: running llmviz under a virtual X display, and scripted windows."""
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


def run_scripted_window(tmp_path, on_render: str, scene: str, frames: int, *args, timeout=120, backend="gl"):
    """Run the real window under Xvfb with ``on_render`` (statements, with ``self`` and ``self.n`` the frame
    number, before the window's own on_render) and return the finished process. ``backend``: who draws (as
    ``llmviz --backend``; 'wgpu' is picked before the window opens, as the command does)."""
    body = "".join(f"        {line}\n" for line in on_render.strip("\n").splitlines())
    script = tmp_path / "scripted.py"
    script.write_text(
        "import sys\n"
        "import moderngl_window as mglw\n"
        "from llmviz.scenes.app import ExplorerWindow\n"
        "class Scripted(ExplorerWindow):\n"
        "    n = 0\n"
        "    def on_render(self, t, dt):\n"
        "        self.n += 1\n"
        f"{body}"
        "        super().on_render(t, dt)\n"
        "        self.after_render()\n"
        "    def after_render(self):\n"
        "        if self.n in getattr(self, 'shots', ()):\n"
        "            self._save_screenshot(sys.argv[1] + f'/shot{self.n}.png')\n"
        f"ExplorerWindow.options = {{'scene': {scene!r}, 'frames': {int(frames)}}}\n"
        "from llmviz.engine.render.factory import pick_for_window\n"
        f"ExplorerWindow.backend = {backend!r} if pick_for_window({backend!r})[0] == 'wgpu' else 'gl'\n"
        "mglw.run_window_config(Scripted, args=['--window', 'pyglet'])\n")
    return subprocess.run([*XVFB, sys.executable, str(script), str(tmp_path), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)
