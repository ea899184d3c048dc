"""The explorer's token-stream window, headless: the frame runs while the server holds back its first token,
then the strip shows one cell per token coloured by the server's probability, and a cell's details its top-K."""

import numpy as np
import pytest

from llmviz.engine.render import colormaps
from servers.scripted import TOKENS, ScriptedServer

SIZE = (1280, 800)


@pytest.fixture(scope="module")
def explorer():
    headless = pytest.importorskip("llmviz.engine.render.headless")
    from llmviz.engine.input import load_bindings
    from llmviz.scenes.explorer import Explorer

    renderer = headless.headless_renderer(SIZE)
    ex = Explorer(renderer, "stress:1000", bindings=load_bindings(), adaptive_quality=False, background_imports=False)
    server = ScriptedServer()
    try:
        yield ex, server
    finally:
        server.close()
        ex.close()
        renderer.release()


def test_the_key_opens_the_window_and_the_menu_names_it(explorer):
    from llmviz.engine.input import load_bindings

    ex, _ = explorer
    assert load_bindings().inputs_for("toggle_stream") == ["key:CTRL+L"]
    assert not ex.stream.open
    ex.do("toggle_stream")
    ex.frame(0.016)
    assert ex.stream.open
    ex.do("toggle_stream")
    assert not ex.stream.open


def test_the_frame_never_waits_for_the_server(explorer):
    """The server holds its first token until released: frames run meanwhile and say they are waiting."""
    ex, server = explorer
    panel = ex.stream
    panel.open, panel.url, panel.model, panel.top_k = True, server.url("slowstart"), "m", 2
    server.release.clear()
    try:
        assert panel.start()
        for _ in range(3):
            ex.frame(0.016)
        assert panel.running and not panel.result.tokens
        assert panel.status()[0] == "waiting for the first token…"
    finally:
        server.release.set()
    panel.worker.join(30)
    ex.frame(0.016)
    assert panel.status()[0].startswith("done: 3 tokens, finish length")


def test_each_token_is_a_cell_coloured_by_the_servers_probability(explorer):
    ex, server = explorer
    panel = ex.stream
    panel.open, panel.url, panel.model, panel.chat = True, server.url("ok"), "m", True
    assert panel.start()
    panel.worker.join(30)
    ex.frame(0.016)
    strip = panel.strip
    assert strip.labels == ["Hello", ",", "·world"]  # a space shows as ·
    expected = colormaps.apply(np.exp([lp for _, lp, _ in TOKENS]), 0.0, 1.0, colormaps.COLORMAP_VIRIDIS)
    packed = np.clip(np.round(expected * 255), 0, 255).astype(np.uint32)
    assert (strip.fill == (0xFF << 24 | packed[:, 2] << 16 | packed[:, 1] << 8 | packed[:, 0])).all()
    # cells left to right on one row, none overlapping; the pointer over the second finds it
    assert (np.diff(strip.x) > 0).all() and (strip.x[1:] >= strip.x[:-1] + strip.w[:-1]).all()
    assert strip.at(strip.x[1] + 1, strip.y[1] + 1) == 1 and strip.at(-5, 0) is None


def test_a_server_without_log_probabilities_gives_grey_cells_and_says_so(explorer):
    ex, server = explorer
    panel = ex.stream
    panel.open, panel.url, panel.chat = True, server.url("plain"), False
    assert panel.start()
    panel.worker.join(30)
    ex.frame(0.016)
    assert panel.result.logprobs_note == "no log-probabilities from this server"
    grey = np.clip(np.round(colormaps.NAN_RGB * 255), 0, 255).astype(np.uint32)
    assert (panel.strip.fill == (0xFF << 24 | grey[2] << 16 | grey[1] << 8 | grey[0])).all()


def test_an_error_is_one_line_and_the_tokens_stay(explorer):
    ex, server = explorer
    panel = ex.stream
    panel.open, panel.url, panel.chat = True, server.url("cut"), False
    assert panel.start()
    panel.worker.join(30)
    ex.frame(0.016)
    text, color = panel.status()
    assert "cut off" in text and "2 tokens arrived and are kept" in text and "\n" not in text
    assert len(panel.strip) == 2


def test_a_bad_field_is_named_and_nothing_starts(explorer):
    ex, _ = explorer
    panel = ex.stream
    panel.url = "localhost:8000"
    assert not panel.start()
    assert "is not http://HOST:PORT/v1" in panel.status()[0]
    ex.frame(0.016)


def test_drawable_keeps_every_shown_character_in_the_font():
    from llmviz.scenes import panels
    from llmviz.scenes.stream_panel import drawable

    shown = drawable(" a\n\tä中😀")
    assert shown == "·a↵→ä\\u4e2d\\U0001f600"
    ranges = panels.GLYPH_RANGES[:-1]
    assert all(any(ranges[i] <= ord(c) <= ranges[i + 1] for i in range(0, len(ranges), 2)) for c in shown)
    assert drawable("") == "(empty)"
