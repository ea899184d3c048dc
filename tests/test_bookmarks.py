"""Camera bookmarks survive a restart: saved per model in the config directory, loaded by a new process."""
import json
import subprocess
import sys

import numpy as np

from llmviz.engine.camera import Camera
from llmviz.engine.camera_control import CameraRig
from llmviz.engine.input import Actions
from llmviz.scenes.bookmarks import bookmarks_path, load_bookmarks, save_bookmarks


def rig_at(position, target):
    camera = Camera(viewport=(1280, 720))
    camera.position = np.array(position, np.float64)
    camera.look_at(np.array(target, np.float64))
    return CameraRig(camera, scene_radius=20.0)


def test_path_respects_llmviz_config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMVIZ_CONFIG_DIR", str(tmp_path))
    assert bookmarks_path("gpt-2-small") == tmp_path / "bookmarks" / "gpt-2-small.json"
    monkeypatch.delenv("LLMVIZ_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert bookmarks_path("nano-gpt") == tmp_path / "xdg" / "llmviz" / "bookmarks" / "nano-gpt.json"


def test_bookmarks_survive_a_restart(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMVIZ_CONFIG_DIR", str(tmp_path))
    rig = rig_at((3.0, 4.0, 25.0), (1.0, -2.0, 0.0))
    rig.save_bookmark(3)
    save_bookmarks("nano-gpt", rig.bookmarks)
    saved = rig.bookmarks[3]
    # A new process (a restart): loads the file, flies to bookmark 3 from elsewhere, prints its pose.
    code = (
        "import json, numpy as np\n"
        "from llmviz.engine.camera import Camera\n"
        "from llmviz.engine.camera_control import CameraRig\n"
        "from llmviz.engine.input import Actions\n"
        "from llmviz.scenes.bookmarks import load_bookmarks\n"
        "rig = CameraRig(Camera(viewport=(1280, 720)), scene_radius=20.0)\n"
        "rig.bookmarks.update(load_bookmarks('nano-gpt'))\n"
        "rig.go_to_bookmark(3)\n"
        "for _ in range(600):\n"
        "    rig.update(1 / 60, Actions())\n"
        "    if rig.transition is None: break\n"
        "print(json.dumps([list(rig.camera.position), list(rig.camera.orientation)]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "LLMVIZ_CONFIG_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    position, orientation = json.loads(proc.stdout.strip().splitlines()[-1])
    assert np.allclose(position, saved.position, atol=1e-6)
    assert np.allclose(np.abs(np.dot(orientation, saved.orientation)), 1.0, atol=1e-6)
    # Kept per model: another model's bookmarks are separate.
    assert load_bookmarks("gpt-3-175b") == {}


def test_a_broken_bookmarks_file_is_named_and_ignored(tmp_path, capsys):
    path = bookmarks_path("nano-gpt", tmp_path)
    path.write_text('{"bookmarks": {"1": {"position": [1, 2], "orientation": [0, 0, 0, 1]}}}')
    assert load_bookmarks("nano-gpt", tmp_path) == {}
    err = capsys.readouterr().err
    assert str(path) in err and "position needs 3 numbers" in err


def test_save_keeps_every_slot(tmp_path):
    rig = rig_at((0.0, 0.0, 10.0), (0.0, 0.0, 0.0))
    for slot in (1, 9):
        rig.save_bookmark(slot)
        rig.update(1 / 60, Actions())
    save_bookmarks("m", rig.bookmarks, tmp_path)
    assert sorted(load_bookmarks("m", tmp_path)) == [1, 9]


def test_a_malformed_user_bindings_file_is_named_with_its_line(tmp_path, monkeypatch, capsys):
    pytest = __import__("pytest")
    pytest.importorskip("imgui_bundle")
    from llmviz.scenes.explorer.controller import load_user_bindings, user_bindings_path

    monkeypatch.setenv("LLMVIZ_CONFIG_DIR", str(tmp_path))
    path = user_bindings_path()
    assert path == tmp_path / "bindings.toml"
    path.write_text('[bindings]\nmove_forward = ["key:W"]\nback_step = ["key:NO_SUCH_KEY"]\n')
    bindings, problem = load_user_bindings()
    assert problem is not None and f"{path}:3" in problem and "NO_SUCH_KEY" in problem
    assert f"{path}:3" in capsys.readouterr().err
    assert "key:BACKSPACE" in bindings.inputs_for("back_step")  # the defaults stay usable
    path.write_text('[bindings]\nback_step = ["key:DELETE"]\n')
    bindings, problem = load_user_bindings()
    assert problem is None and bindings.inputs_for("back_step") == ["key:DELETE"]
