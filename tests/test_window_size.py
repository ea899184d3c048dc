"""The window opens at --size, else at the size it was left at (fitted to the screen), else at 90% of the screen."""
import json

from llmviz.scenes import window_size


def test_size_follows_the_screen_then_what_the_user_left(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMVIZ_CONFIG_DIR", str(tmp_path))
    monkeypatch.setattr(window_size, "screen_size", lambda: (1600, 900))
    assert window_size.choose_size(None) == (1440, 810)  # a 1600×900 screen: 90% of it, not 1280×720
    assert window_size.choose_size((800, 600)) == (800, 600)  # --size still wins
    window_size.remember_size((1000, 700))
    assert json.loads((tmp_path / "window.json").read_text()) == {"size": [1000, 700]}
    assert window_size.choose_size(None) == (1000, 700)
    window_size.remember_size((3000, 2000))
    assert window_size.choose_size(None) == (1600, 900)  # a remembered size larger than this screen fits it


def test_a_broken_or_hostile_size_file_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMVIZ_CONFIG_DIR", str(tmp_path))
    monkeypatch.setattr(window_size, "screen_size", lambda: None)
    for text in ("{", '{"size": [1e9, 5]}', '{"size": "big"}', "[]", '{"size": [true, 700]}', "x" * 10000):
        (tmp_path / "window.json").write_text(text)
        assert window_size.choose_size(None) == window_size.FALLBACK
