"""The long-context view without a window: the scene name's bounds, the region the camera asks to recompute,
the exact block it shows (against the pass's own full matrix, brute force) and the overlays' figures."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from llmviz.models.sim import induction_model, induction_task, long_attention  # noqa: E402
from llmviz.scenes import longctx_view  # noqa: E402
from llmviz.scenes.registry import SceneError, parse_scene  # noqa: E402
from llmviz.engine.ecs.components import FLAG_HIDDEN  # noqa: E402

LENGTH = 2048


@pytest.fixture(scope="module")
def long_pass():
    torch.set_num_threads(1)
    weights = long_attention.ModelWeights.from_model(induction_model.load_weights())
    return long_attention.run(weights, induction_task.long_sequence(LENGTH)[0], heads=[3], tile=512)


def test_scene_names_are_bounded():
    assert parse_scene("longctx:131072") == ("longctx", 131072)
    for bad in ("longctx:12", "longctx:" + "9" * 40, "longctx:99999999"):
        with pytest.raises(SceneError) as err:
            parse_scene(bad)
        assert "\n" not in str(err.value)


def test_zoomed_camera_asks_for_the_block_under_it_and_the_overview_for_none(long_pass):
    view = longctx_view.LongContextView(LENGTH, induction_task.HELD_OUT_SEED, None)
    view.show_overview(None, long_pass, 3)
    view.camera = view.overview_camera((1280, 720))
    assert view.wanted_region(LENGTH) is None
    view.camera = view.camera_over(1000, 990, 40, (1280, 720))
    q0, q1, k0, k1 = view.wanted_region(LENGTH)
    seen = view.visible_tokens()
    assert q0 <= seen[0] and seen[1] <= q1 and k0 <= seen[2] and seen[3] <= k1
    assert (q1 - q0) <= longctx_view.DETAIL_TEXELS


@pytest.fixture(scope="module")
def full(long_pass):
    """Head 3's whole matrix, brute force in float64."""
    q = long_pass.queries[3].double().numpy()
    k = long_pass.keys[3].double().numpy()
    s = q @ k.T / np.sqrt(q.shape[1])
    s[np.triu_indices(LENGTH, 1)] = -np.inf
    full = np.exp(s - s.max(1, keepdims=True))
    return full / full.sum(1, keepdims=True)


@pytest.mark.parametrize("region", [(960, 1024, 950, 1014), (0, 2048, 0, 2048), (1500, 1800, 100, 612)])
def test_the_shown_block_is_the_exact_attention(long_pass, full, region):
    """One texel per entry where it fits; coarser, each texel the largest exact entry it covers; the colour's
    value is log10 (p x (q + 1)), the entry against its row's uniform share."""
    q0, q1, k0, k1 = region
    values, stride = longctx_view.exact_region(long_pass, 3, q0, q1, k0, k1)
    block = full[q0:q1, k0:k1]
    masked = np.arange(k0, k1)[None, :] > np.arange(q0, q1)[:, None]
    gr, gc = -(-(q1 - q0) // stride), -(-(k1 - k0) // stride)
    assert values.shape == (gr, gc) and max(gr, gc) <= longctx_view.DETAIL_TEXELS
    for r in range(0, gr, max(1, gr // 16)):
        for c in range(0, gc, max(1, gc // 16)):
            cell = block[r * stride:(r + 1) * stride, c * stride:(c + 1) * stride]
            allowed = ~masked[r * stride:(r + 1) * stride, c * stride:(c + 1) * stride]
            rows = np.arange(q0 + r * stride, q0 + r * stride + cell.shape[0])[:, None] + 1.0
            if allowed.any():
                assert values[r, c] == pytest.approx(np.log10((cell * rows)[allowed].max()), abs=1e-5)
            else:
                assert np.isnan(values[r, c])


def test_overlay_figures_come_from_the_run(long_pass):
    schemes = longctx_view._overlay_boxes(long_pass, 3)
    captions = " ".join(caption for caption, _, _ in schemes)
    tiles = -(-LENGTH // long_attention.TILE)
    assert f"{tiles * (tiles + 1) // 2:,} tiles" in captions
    assert "A-shape" in captions and "vertical-slash" in captions
    assert "Llama-3-8B" in longctx_view._kv_sharing_caption(131072)


def test_the_caption_says_where_the_length_claim_degrades_from_this_runs_accuracy(long_pass):
    """Each stretch's figure is induction_task.accuracy over the predictions of that stretch alone."""
    tokens, predictable = induction_task.long_sequence(LENGTH)
    caption = longctx_view.accuracy_caption(long_pass, induction_task.HELD_OUT_SEED)
    for a, b in ((0, 256), (256, LENGTH)):
        mask = np.zeros(LENGTH, bool)
        mask[a:b] = predictable[a:b]
        expected = induction_task.accuracy(long_pass.predicted, tokens, mask)
        assert f"{a:,}-{b:,}: {100 * expected:.0f}%" in caption
    assert "trained on 256-token sequences" in caption


@pytest.mark.parametrize("region", [(768, 1280, 384, 896), (0, 2048, 0, 2048), (1920, 2176, 1536, 1792)])
def test_the_fine_grid_between_overview_and_exact_block_is_each_cells_mean(long_pass, full, region):
    """The same statistic as the overview on finer cells: log10 (mean p x (q + 1)), q the cell's middle row;
    a window past the matrix's end is empty there."""
    q0, q1, k0, k1 = region
    values, cell = longctx_view.mid_region(long_pass, 3, q0, q1, k0, k1, texels=64)
    assert cell >= long_attention.fine_cell(LENGTH) and (q1 - q0) / cell <= 64
    padded = np.zeros((LENGTH + 256, LENGTH + 256))
    padded[:LENGTH, :LENGTH] = full
    mean = padded[q0:q1, k0:k1].reshape(values.shape[0], cell, values.shape[1], cell).mean((1, 3))
    rows = q0 + (np.arange(values.shape[0]) + 0.5) * cell
    with np.errstate(divide="ignore"):
        expected = np.log10(mean * (rows[:, None] + 1))
    expected[mean <= 0] = np.nan
    np.testing.assert_allclose(values, expected, atol=1e-4, rtol=1e-4)


def test_each_zoom_draws_the_finest_layer_that_covers_the_view_and_hides_the_rest(long_pass):
    view = longctx_view.LongContextView(LENGTH, induction_task.HELD_OUT_SEED, None)
    view.show_overview(None, long_pass, 3)
    base, fine = long_pass.levels[3][0].cell, long_pass.fine_cell
    hidden = lambda: tuple(bool(view.world["renderable"]["flags"][view.world.slots(ids)][0] & FLAG_HIDDEN)  # noqa: E731
                           for ids in (view.overview, view.mid, view.detail))
    view.camera = view.overview_camera((1280, 720))
    assert view.wanted_mid(LENGTH, base, fine) is None
    view.stack_layers()
    assert hidden() == (False, True, True)
    view.camera = view.camera_over(1000, 900, 100, (1280, 720))      # a few hundred tokens: the fine grid
    mid = view.wanted_mid(LENGTH, base, fine)
    assert view.wanted_region(LENGTH) is not None
    view.show_mid(None, mid, *longctx_view.mid_region(long_pass, 3, *mid))
    view.stack_layers()
    assert hidden() == (True, False, True)
    region = view.wanted_region(LENGTH)
    view.show_detail(None, region, longctx_view.exact_region(long_pass, 3, *region)[0], long_pass)
    view.stack_layers()
    assert hidden() == (True, True, False)
    view.camera = view.camera_over(1800, 1700, 100, (1280, 720))     # moved on: both cover part of it at most
    view.stack_layers()
    assert hidden() == (False, False, False)
    view.show_mid(None, (0, 2048, 0, 2048), *longctx_view.mid_region(long_pass, 3, 0, 2048, 0, 2048))
    view.stack_layers()                                                # the next fine grid arrives first
    assert hidden() == (True, False, False)


def test_the_hover_gives_the_exact_value_and_the_tokens_and_the_overviews_summaries(long_pass, full):
    view = longctx_view.LongContextView(LENGTH, induction_task.HELD_OUT_SEED, None)
    view.show_overview(None, long_pass, 3)
    view.camera = view.camera_over(1000, 990, 40, (1280, 720))
    region = view.wanted_region(LENGTH)
    values, stride = longctx_view.exact_region(long_pass, 3, *region)
    assert stride == 1
    view.show_detail(None, region, values, long_pass)
    detail = int(view.world.ids(view.world.slots(view.detail))[0])
    words = induction_model.vocabulary()
    q, k = 1000, 990
    text = longctx_view.hover_text(view, long_pass, 3, long_pass.block(3, *region), detail, (q - region[0], k - region[2]))
    p = float(text.split("p = ")[1].split(",")[0])
    assert p == pytest.approx(full[q, k], rel=1e-5, abs=1e-6)
    assert f"query 1,000 {words[long_pass.tokens[q]]!r}" in text and f"key 990 {words[long_pass.tokens[k]]!r}" in text
    overview = int(view.world.ids(view.world.slots(view.overview))[0])
    text = longctx_view.hover_text(view, long_pass, 3, None, overview, (100, 3))
    base = long_pass.levels[3][0]
    assert f"queries {100 * base.cell:,}-" in text and f"max p {full[800:808, 24:32].max():.4g}" in text


def test_the_live_scene_shows_the_exact_block_under_a_zoomed_camera_and_reports_how_long_it_took(tmp_path,
                                                                                                  monkeypatch):
    """The whole path a zoom takes in the window, headless: the worker's pass, the camera's request, the block
    uploaded; its probabilities against the pass's queries and keys brute force, and --stats-json's figures."""
    import time

    from llmviz.engine.runtime import Engine
    from llmviz.scenes.cli.common import headless_renderer
    from llmviz.scenes.registry import build_scene

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))   # the pass is computed here, not read from a user's cache
    renderer = headless_renderer((640, 360))
    scene = build_scene(f"longctx:{LENGTH}", renderer)
    try:
        live, view = scene.live, scene.longctx_view
        assert live.stats_json() == {"exact_blocks_shown": 0}
        engine = Engine(scene.world, scene.start_camera((640, 360)), renderer)
        scene.attach(engine)
        assert scene.wait_for_values()
        pose = view.camera_over(1500.0, 1490.0, 40.0, (640, 360))
        engine.camera.position, engine.camera.orientation = pose.position, pose.orientation
        engine.camera.near, engine.camera.far = pose.near, pose.far
        deadline = time.perf_counter() + 120
        while (live._asked is None or live._shown != live._asked) and time.perf_counter() < deadline:  # noqa: SLF001
            engine.frame(1 / 60)
        q0, q1, k0, k1 = live._shown   # noqa: SLF001
        assert q0 <= 1490 < q1 and k0 <= 1480 < k1
        lp = live.long_pass
        q, k = lp.queries[live.head].double().numpy(), lp.keys[live.head].double().numpy()
        s = q[q0:q1] @ k[:q1].T / np.sqrt(q.shape[1])
        s[np.arange(q1 - q0)[:, None] + q0 < np.arange(q1)[None, :]] = -np.inf
        p = np.exp(s - s.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        np.testing.assert_allclose(live.detail_p, p[:, k0:k1], atol=1e-6)
        figures = live.stats_json()
        assert figures["exact_blocks_shown"] == 1
        assert 0 < figures["zoom_to_exact_ms_median"] == figures["zoom_to_exact_ms_max"]
        assert 0 < figures["worker_ms_median"] <= figures["zoom_to_exact_ms_max"]
        # the fine grid's window asked again under the block already shown (the camera panned inside it): the
        # worker is not asked for the exact block again, and no second zoom is counted
        live._mid_asked = (-1, -1, -1, -1)   # noqa: SLF001 - as after a pan that moved only the window
        asked = []
        submit = live.runner.submit
        live.runner.submit = lambda request: asked.append(request) or submit(request)
        for _ in range(30):
            engine.frame(1 / 60)
            time.sleep(0.01)
        assert asked and all(request[2] is None for request in asked), asked
        assert live.stats_json()["exact_blocks_shown"] == 1 and live._shown == (q0, q1, k0, k1)   # noqa: SLF001
    finally:
        scene.close()
        renderer.release()
