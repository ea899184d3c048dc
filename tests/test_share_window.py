"""The real window's "Copy link" reaches the X clipboard: another program (xclip) pastes it back while the frames run.

moderngl-window's event pump never takes a SelectionRequest from the queue, so before the window's
own answer (engine/x_clipboard.py) every reader waited until it was killed; each read here has a
20 s limit of its own, so a hang is a failed assertion, not a stuck suite."""
import shutil

import pytest
from window_support import run_scripted_window

from llmviz.scenes.link import parse_link

pytestmark = pytest.mark.skipif(shutil.which("xvfb-run") is None or shutil.which("xclip") is None,
                                reason="xvfb-run and xclip are not installed (make test installs them where apt-get is usable)")

# Frame by frame: copy, read it from another process, copy through ImGui (Ctrl+C's path), read again,
# then let another program take the clipboard. Each reader is polled while the window keeps drawing.
SCRIPT = """
import subprocess
def reader():
    return subprocess.Popen(['timeout', '20', 'xclip', '-o', '-selection', 'clipboard'], stdout=subprocess.PIPE)
def pasted(proc):
    return proc.returncode, proc.stdout.read().decode('utf-8', 'replace')
if self.n == 5:
    self.explorer.share.copy_link()
    print('LINK', self.explorer.share.link, flush=True)
    self.first = reader()
if getattr(self, 'first', None) is not None and self.first.poll() is not None:
    print('PASTED %d %s' % pasted(self.first), flush=True)
    self.first = None
    from imgui_bundle import imgui
    imgui.set_clipboard_text('Gr\\u00fc\\u00dfe \\u2192 llmviz')
    self.second = reader()
if getattr(self, 'second', None) is not None and self.second.poll() is not None:
    print('PASTED-IMGUI %d %s' % pasted(self.second), flush=True)
    self.second = None
    self.other = subprocess.Popen(['xclip', '-quiet', '-i', '-selection', 'clipboard'], stdin=subprocess.PIPE)
    self.other.stdin.write(b'another program'); self.other.stdin.close()
    self.taken_at = self.n
if getattr(self, 'taken_at', None) is not None and not self.explorer.share.window_clipboard.owned:
    print('RELEASED', flush=True)
    self.taken_at = None
    self.other.terminate()
    self.frames_left = 2
"""


def test_copy_link_is_pasted_by_another_program(tmp_path):
    proc = run_scripted_window(tmp_path, SCRIPT, "stress:500", 600, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = {line.split(" ", 1)[0]: line.split(" ", 1)[1] if " " in line else "" for line in proc.stdout.splitlines()}
    link = lines["LINK"]
    status, text = lines["PASTED"].split(" ", 1)
    assert status == "0" and text == link  # xclip exits 0 with exactly the link (124 is its 20 s limit)
    view = parse_link(text)
    assert view.scene == "stress:500" and view.camera is not None
    status, text = lines["PASTED-IMGUI"].split(" ", 1)
    assert status == "0" and text == "Gr\u00fc\u00dfe \u2192 llmviz"  # every UTF-8 byte, not the character count
    assert "RELEASED" in lines  # another program's copy takes the clipboard back from the window
