"""mamba-tiny in the scene: every drawn number of its trace recomputes from the dataflow declaration (the scan
cell by cell: h_t = exp(ΔA)·h_{t−1} + ΔB·x), the scan's per-token blocks hold the trace's state, and the live
session fills them."""
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from llmviz.models.registry import load_registry  # noqa: E402
from llmviz.models.sim import mamba_trace  # noqa: E402
from llmviz.models.sim.mamba_model import load_mamba  # noqa: E402
from llmviz.models.sim.moe_corpus import encode  # noqa: E402
from llmviz.scenes.dataflow import explain, format_number  # noqa: E402
from llmviz.scenes.layout import layout_model  # noqa: E402
from llmviz.scenes.ssm_live import scene_arrays, state_bytes  # noqa: E402

SPEC = load_registry(include_user=False).get("mamba-tiny")
TEXT = "def f(x): return x+1"
TOL = 2e-4


@pytest.fixture(scope="module")
def traced():
    model = load_mamba()
    trace = scene_arrays(mamba_trace.trace(model, encode(TEXT)), model.config.num_hidden_layers)
    return model, trace, dict(mamba_trace.weights(model).items())


def test_the_scan_blocks_are_the_traces_state(traced):
    model, trace, _ = traced
    raw = mamba_trace.trace(model, encode(TEXT))
    T = len(TEXT)
    for t in (0, 5, T - 1):
        assert np.array_equal(trace[f"blocks.1.mamba.h.{t}"], raw["blocks.1.mamba.h"][t])
        assert np.allclose(trace[f"blocks.0.mamba.dBx.{t}"],
                           raw["blocks.0.mamba.dB"][t] * raw["blocks.0.mamba.conv_act"][t][:, None])
    # The state after the last token is the one the recurrent form carries on (transformers' cache, per
    # tests/test_mamba_tiny.py).
    ssm, _ = mamba_trace.final_state(model, encode(TEXT))
    assert np.allclose(trace[f"blocks.0.mamba.h.{T - 1}"], ssm[0], atol=1e-6)


def test_every_drawn_mamba_number_recomputes_from_its_declaration(traced):
    _, trace, weights = traced
    layout = layout_model(SPEC, 32)
    drawn = set(layout.ids)
    rng = np.random.default_rng(0)
    checked = 0
    for tensor_id, values in trace.items():
        if tensor_id not in drawn:
            continue
        cells = list(np.ndindex(*values.shape))
        for k in rng.choice(len(cells), min(6, len(cells)), replace=False):
            cell = cells[k]
            ex = explain(tensor_id, cell[0], cell[1] if len(cell) > 1 else None, trace, weights)
            value = float(values[cell])
            assert abs(ex.recomputed - value) <= TOL * max(1.0, abs(value)), f"{tensor_id}{cell}: {ex.formula}"
            assert format_number(value) in ex.formula
            checked += 1
    assert checked > 6 * 150


def test_a_state_cell_names_its_three_sources(traced):
    _, trace, weights = traced
    ex = explain("blocks.0.mamba.h.4", 7, 3, trace, weights)
    assert [s.tensor_id for s in ex.sources] == ["blocks.0.mamba.dA.4", "blocks.0.mamba.dBx.4", "blocks.0.mamba.h.3"]
    first = explain("blocks.0.mamba.h.0", 7, 3, trace, weights)
    assert [s.tensor_id for s in first.sources] == ["blocks.0.mamba.dA.0", "blocks.0.mamba.dBx.0",
                                                    "blocks.0.mamba.h_init"]
    assert trace["blocks.0.mamba.h_init"][7, 3] == 0 and "·0 +" in first.formula   # a text from the start


@pytest.mark.parametrize("model_id, model_module, trace_module", [
    ("mamba-tiny", "mamba_model:load_mamba", "mamba_trace"),
    ("mamba2-tiny", "mamba2_model:load_mamba2", "mamba2_trace"),
    ("rwkv-tiny", "rwkv_model:load_rwkv", "rwkv_trace"),
])
def test_state_bytes_are_the_recurrent_states_size(model_id, model_module, trace_module):
    """The panel's state size, from the spec alone, is the size of the state the model really carries (the
    cache as transformers keeps it), measured on its tensors."""
    import dataclasses
    import importlib

    module, loader = model_module.split(":")
    model = getattr(importlib.import_module(f"llmviz.models.sim.{module}"), loader)()
    trace = importlib.import_module(f"llmviz.models.sim.{trace_module}")
    _, state = trace.forward(model, torch.tensor([encode("ab")]))
    carried = sum(getattr(state, f.name).numel() * 4 for f in dataclasses.fields(state))
    assert state_bytes(load_registry(include_user=False).get(model_id)) == carried


def test_the_live_session_fills_the_scan():
    headless = pytest.importorskip("llmviz.engine.render.headless")
    from llmviz.scenes.registry import build_scene

    renderer = headless.headless_renderer((320, 180))
    scene = build_scene("mamba-tiny", renderer)
    try:
        live = scene.live
        assert live.wait(60) and live.error is None
        T = len(live.tokens)
        cells = live.cells
        slots = scene.model.block_slots
        filled = cells.flags(slots[[scene.model.layout.index(f"blocks.0.mamba.h.{t}") for t in range(32)]])[0]
        assert filled[:T].all() and not filled[T:].any()   # one column per character so far, the rest empty
        before = live.text
        assert live.step() and live.wait(60)
        assert live.text.startswith(before) and len(live.text) == len(before) + 1
        assert live.tokens[-1] == int(np.argmax(mamba_trace.trace(load_mamba(), live.tokens[:-1])["logits"][-1]))
    finally:
        scene.close()


def test_the_scan_chapter_plays_with_the_live_traces_numbers():
    """Chapter 12 on the live mamba-tiny: every step renders from the trace, and the scan step's arithmetic,
    h_3 = exp(ΔA)_3 · h_2 + ΔB·x_3, holds for the numbers it prints (recomputed here from the trace)."""
    from scene_support import live_scene

    from llmviz.scenes.chapters.apply import chapter_runner

    with live_scene("mamba-tiny", (320, 180)) as (scene, _):
        runner = chapter_runner(scene, (320, 180))
        assert [c.number for c in runner.chapters] == [12]
        (chapter,) = runner.chapters
        texts = []
        for k in range(len(chapter.steps)):
            runner.go_to_step_end(k)
            moment = runner.moment()
            assert moment.scene == "mamba-tiny" and "{" not in moment.text.text
            texts.append(moment.text.text)
        trace = scene.live.trace
        p = "blocks.0.mamba"
        h2, a3, bx3, h3 = (float(trace[f"{p}.{name}"][0, 0]) for name in ("h.2", "dA.3", "dBx.3", "h.3"))
        assert abs(a3 * h2 + bx3 - h3) <= 1e-6 * max(1.0, abs(h3))
        scan = next(t for t in texts if "h_prev" in t)
        for number in (h2, a3, bx3, h3):
            assert format_number(number) in scan
        assert scene.live.text in texts[0]


@pytest.mark.parametrize("model_id", ["mamba2-tiny", "rwkv-tiny"])
def test_the_other_recurrent_models_are_live_and_fill_every_block(model_id):
    """mamba2-tiny and rwkv-tiny in their scenes: every block the layout draws gets the trace's or the weights'
    values, and a step appends the model's greedy next character."""
    from scene_support import live_scene

    with live_scene(model_id, (320, 180)) as (scene, _):
        live = scene.live
        shown = set(live.trace) | set(live.weights)
        layout = scene.model.layout
        # The scan's columns past the text are empty until generation reaches them.
        later = {i for i in layout.ids if re.search(r"\.(\d+)$", i) and ".mamba." in i
                 and int(i.rsplit(".", 1)[1]) >= len(live.tokens)}
        assert set(layout.ids) - later <= shown, sorted(set(layout.ids) - later - shown)[:5]
        before = list(live.tokens)
        expected = int(np.argmax(live.trace["logits"][-1]))
        assert live.step() and live.wait(60)
        assert live.tokens == before + [expected]


def test_mamba2s_scan_blocks_satisfy_the_recurrence():
    """The per-token blocks drawn for Mamba-2 (each head's decay spread over its entries, Δ·x⊗B, the state)
    are the recurrence itself: h_t = exp(ΔA)_t ⊙ h_(t−1) + (Δ·x⊗B)_t, from h_(−1) = 0."""
    from llmviz.models.sim import mamba2_trace
    from llmviz.models.sim.mamba2_model import load_mamba2
    from llmviz.scenes.ssm_live import scene_arrays_mamba2

    model = load_mamba2()
    shown = scene_arrays_mamba2(mamba2_trace.trace(model, encode(TEXT)), model.config.num_hidden_layers)
    for layer in range(model.config.num_hidden_layers):
        p = f"blocks.{layer}.mamba"
        h = np.zeros_like(shown[f"{p}.h.0"])
        for t in range(len(TEXT)):
            h = shown[f"{p}.dA.{t}"] * h + shown[f"{p}.dBx.{t}"]
            assert np.allclose(h, shown[f"{p}.h.{t}"], atol=1e-6), (layer, t)


def test_a_stream_past_the_window_shows_its_end_from_the_carried_state():
    """Generating past the 32 columns, the scene shows the last 32 characters traced from the state the
    earlier ones left: the same numbers as tracing the whole text at once, and h before t=0 is the state
    after the character just before the window."""
    from scene_support import live_scene

    from llmviz.scenes.live import TEXT_CONTEXT

    with live_scene("mamba-tiny", (320, 180)) as (scene, _):
        live = scene.live
        assert live.set_text("def f(x): return x+1 if x else") is None and live.wait(60)
        while len(live.tokens) < TEXT_CONTEXT + 5:
            assert live.step() and live.wait(60)
        tokens = list(live.tokens)
        whole = mamba_trace.trace(load_mamba(), tokens)
        offset = len(tokens) - TEXT_CONTEXT
        shown = live.trace
        assert list(shown["tokens"]) == tokens[offset:]
        for t in (0, 7, TEXT_CONTEXT - 1):
            assert np.allclose(shown[f"blocks.1.mamba.h.{t}"], whole["blocks.1.mamba.h"][offset + t], atol=1e-5)
        assert np.allclose(shown["blocks.0.mamba.h_init"], whole["blocks.0.mamba.h"][offset - 1], atol=1e-5)
        assert np.allclose(shown["logits"], whole["logits"][offset:], atol=1e-4)
        # and the next character is the whole text's greedy continuation
        assert live.next_token() == int(np.argmax(whole["logits"][-1]))



def test_mamba_copy_opens_on_its_task_and_its_step_sizes_single_out_the_letters():
    """mamba-copy's scene opens on a selective-copying window (letters among dots, then '|'), not on the corpus's
    prose; greedy generation writes the letters back in order, as the task asks; and the panel's Δ per character
    (layer 0) is larger on the letters than on the dots — the selectivity the model was trained into (the
    ratio is the trace's, recomputed here from its Δ block and the text)."""
    from scene_support import live_scene

    from llmviz.models.sim import selective_copy
    from llmviz.scenes.ssm_live import OPENING_TEXT, step_sizes

    text = OPENING_TEXT["mamba-copy"]
    window, marker = text[:-1], text[-1]
    assert marker == selective_copy.MARKER and len(window) == selective_copy.WINDOW
    letters = [ch for ch in window if ch in selective_copy.DATA]
    assert len(letters) == selective_copy.N_DATA and set(window) - set(letters) == {selective_copy.NOISE}
    with live_scene("mamba-copy", (320, 180)) as (scene, _):
        live = scene.live
        assert live.text == text
        per_char, classes = step_sizes(live.trace, live.tokens, live.alphabet, "mamba-copy")
        dt = np.asarray(live.trace["blocks.0.mamba.dt"], np.float64).mean(axis=1)
        assert np.allclose(per_char, dt)
        on_letters = dt[[i for i, ch in enumerate(text) if ch in selective_copy.DATA]].mean()
        on_dots = dt[[i for i, ch in enumerate(text) if ch == selective_copy.NOISE]].mean()
        assert dict(classes) == pytest.approx({"letters": on_letters, "dots": on_dots})
        assert on_letters > 1.3 * on_dots
        for _ in range(len(letters)):
            assert live.step() and live.wait(60)
        assert live.text == text + "".join(letters)   # the eighth letter comes from the state past the window


def test_step_sizes_compare_only_the_characters_before_the_marker():
    """The letters after '|' are the model's own answer, not letters it was asked to keep: they are left out of
    the comparison, and once the window has scrolled past the marker there is nothing left to compare."""
    from llmviz.models.sim.moe_corpus import ALPHABET
    from llmviz.scenes.ssm_live import step_sizes

    text = "A..B|AB"
    tokens = [ALPHABET.index(ch) for ch in text]
    dt = np.arange(1, len(text) + 1, dtype=np.float32)[:, None] * np.ones((1, 4), np.float32)
    per_char, classes = step_sizes({"blocks.0.mamba.dt": dt}, tokens, ALPHABET, "mamba-copy")
    assert np.allclose(per_char, np.arange(1, 8))
    assert dict(classes) == {"letters": (1 + 4) / 2, "dots": (2 + 3) / 2}
    _, scrolled = step_sizes({"blocks.0.mamba.dt": dt[-2:]}, tokens, ALPHABET, "mamba-copy")
    assert dict(scrolled) == {"letters": None, "dots": None}
    assert step_sizes({"blocks.0.mamba.dt": dt}, tokens, ALPHABET, "mamba-tiny")[1] == []
    assert step_sizes({}, tokens, ALPHABET, "rwkv-tiny") is None
