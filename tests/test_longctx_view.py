"""The long-context view without a window: the scene name's bounds, the region the camera asks to recompute,
the exact block it shows (against the pass's own full matrix, brute force) and the overlays' figures."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from llmviz.models.sim import induction_model, induction_task, long_attention  # noqa: E402
from llmviz.scenes import longctx_view  # noqa: E402
from llmviz.scenes.registry import SceneError, parse_scene  # noqa: E402

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


@pytest.mark.parametrize("region", [(960, 1024, 950, 1014), (0, 2048, 0, 2048), (1500, 1800, 100, 612)])
def test_the_shown_block_is_the_exact_attention(long_pass, region):
    """One texel per entry where it fits; coarser, each texel the largest exact entry it covers; the colour's
    value is log10 (p x (q + 1)), the entry against its row's uniform share."""
    q = long_pass.queries[3].double().numpy()
    k = long_pass.keys[3].double().numpy()
    s = q @ k.T / np.sqrt(q.shape[1])
    s[np.triu_indices(LENGTH, 1)] = -np.inf
    full = np.exp(s - s.max(1, keepdims=True))
    full /= full.sum(1, keepdims=True)
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
