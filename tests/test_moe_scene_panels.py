"""The MoE ImGui panels run headless and return what the window reacts to."""
import numpy as np
import pytest
from imgui_bundle import imgui

from llmviz.models.registry import load_registry
from llmviz.scenes import moe_live, moe_panels


@pytest.fixture(scope="module")
def context():
    ctx = imgui.create_context()
    io = imgui.get_io()
    io.set_ini_filename("")  # no imgui.ini left in the working tree
    io.display_size = imgui.ImVec2(1280, 800)
    io.fonts.get_tex_data_as_rgba32()
    yield io
    imgui.destroy_context(ctx)


def _frame(io, draw):
    io.delta_time = 1 / 60
    imgui.new_frame()
    imgui.set_next_window_size(imgui.ImVec2(900, 700))
    imgui.begin("moe")
    try:
        return draw()
    finally:
        imgui.end()
        imgui.render()


@pytest.fixture(scope="module", params=["mixtral-8x7b", "deepseek-v3"])
def stats(request):
    spec = load_registry(include_user=False).get(request.param)
    return moe_live.SimulatedRouting(spec, "def f(x): return x+1", capacity_factor=1.0).stats


def test_gating_returns_the_tokens_choices(context, stats):
    chosen = _frame(context, lambda: moe_panels.draw_gating(stats, 4))
    assert len(chosen) == stats.n_layers
    for row, picks in enumerate(chosen):
        assert [e for e, _, _ in picks] == list(stats.topk[row, 4])
        assert np.allclose([g for _, g, _ in picks], stats.gates[row, 4])
    # out-of-range token indices are clamped, not an error
    assert len(_frame(context, lambda: moe_panels.draw_gating(stats, 10_000))) == stats.n_layers


def test_heatmap_values_and_cells(context, stats):
    for mode in moe_panels.HEATMAP_MODES:
        assert _frame(context, lambda: moe_panels.draw_heatmap(stats, mode)) is None   # nothing clicked
    values, _ = moe_panels.heatmap_values(stats, "tokens")
    assert np.array_equal(values, stats.counts)
    assert moe_panels.heatmap_cell(stats, 0.0, 0.0) == (int(stats.layers[0]), 0)
    assert moe_panels.heatmap_cell(stats, 0.999, 0.999) == (int(stats.layers[-1]), stats.n_experts - 1)
    assert moe_panels.heatmap_cell(stats, 1.2, 0.5) is None
    with pytest.raises(ValueError):
        moe_panels.heatmap_values(stats, "nope")


def test_load_balance_returns_current_controls(context, stats):
    k, factor = _frame(context, lambda: moe_panels.draw_load_balance(stats))
    assert (k, factor) == (stats.top_k, 1.0)
    unlimited = moe_live.restat(stats, None, None)
    assert _frame(context, lambda: moe_panels.draw_load_balance(unlimited)) == (stats.top_k, None)


def test_specialisation_colours_by_top1(context, stats):
    top1 = _frame(context, lambda: moe_panels.draw_specialisation(stats, stats.text))
    assert np.array_equal(top1, stats.topk[..., 0])


def test_binning_keeps_means():
    values = np.arange(58 * 256, dtype=np.float32).reshape(58, 256)
    binned = moe_panels._bin(values, 32, 64)
    assert binned.shape == (29, 64)
    assert binned[0, 0] == pytest.approx(values[:2, :4].mean())
