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


def _viridis_reference(v: float) -> np.ndarray:
    """The colour scale at one value, by interpolating each channel between the stops."""
    stops = np.linspace(0, 1, len(moe_panels._VIRIDIS))
    return np.array([np.interp(np.clip(v, 0, 1), stops, moe_panels._VIRIDIS[:, ch]) for ch in range(3)])


def test_packed_colours_are_imguis(context):
    rng = np.random.default_rng(0)
    rgb = rng.uniform(-0.1, 1.1, (200, 3)).astype(np.float32)
    packed = moe_panels.pack_u32(rgb, 0.6)
    expected = [imgui.get_color_u32(imgui.ImVec4(*map(float, c), 0.6)) for c in rgb]
    assert packed.tolist() == expected


@pytest.mark.parametrize("mode", moe_panels.HEATMAP_MODES)
def test_heatmap_cached_colours_equal_a_brute_force_recomputation(context, stats, mode):
    raw = stats.counts.astype(np.float64) if mode == "tokens" else stats.mean_gate.astype(np.float64)
    L, E = raw.shape
    rb = -(-L // moe_panels.MAX_HEATMAP_ROWS) if L > moe_panels.MAX_HEATMAP_ROWS or E > moe_panels.MAX_HEATMAP_COLUMNS else 1
    cb = -(-E // moe_panels.MAX_HEATMAP_COLUMNS) if L > moe_panels.MAX_HEATMAP_ROWS or E > moe_panels.MAX_HEATMAP_COLUMNS else 1
    hi = raw.max() if raw.max() > 0 else 1.0
    view = moe_panels.heatmap_view(stats, mode)
    assert view.colors.shape == (-(-L // rb), -(-E // cb), 3)
    for r in range(view.rows):
        for c in range(view.cols):
            cell = raw[r * rb:(r + 1) * rb, c * cb:(c + 1) * cb].mean()   # one bin, cell by cell
            assert view.colors[r, c] == pytest.approx(_viridis_reference(cell / hi), abs=1e-5)
            assert int(view.packed[r, c]) == imgui.get_color_u32(imgui.ImVec4(*map(float, view.colors[r, c]), 1.0))
    # drawn twice, derived once; a recomputation's statistics get colours of their own
    assert moe_panels.heatmap_view(stats, mode) is view
    _frame(context, lambda: moe_panels.draw_heatmap(stats, mode))
    assert moe_panels.heatmap_view(stats, mode) is view
    other = moe_live.restat(stats, 1, None)
    again = moe_panels.heatmap_view(other, mode)
    assert again is not view
    other_raw = (other.counts if mode == "tokens" else other.mean_gate).astype(np.float32)
    assert np.allclose(again.shown, other_raw.reshape(view.rows, rb, view.cols, cb).mean(axis=(1, 3)))


def test_gating_cached_bars_equal_a_brute_force_recomputation(context, stats):
    view = moe_panels.gating_view(stats, 4)
    per_bar = view.per_bar
    for row in range(stats.n_layers):
        probs = stats.probs[row, 4]
        bars = [probs[b * per_bar:(b + 1) * per_bar].max() for b in range(view.n_bars)]
        assert view.heights[row] == pytest.approx(np.array(bars) / max(bars), abs=1e-6)
    assert moe_panels.gating_view(stats, 4) is view and moe_panels.gating_view(stats, 5) is not view
    colors = moe_live.expert_colors(stats.n_experts)[::per_bar]
    assert view.bar_colors == [imgui.get_color_u32(imgui.ImVec4(*map(float, c), 0.6)) for c in colors]
