"""The masks a model's scores are drawn with: the causal and prefix-LM rules against their definitions
checked cell by cell, and the cells a built scene paints (structure only or live) against those rules."""
import numpy as np
import pytest

from llmviz.engine.render.datatex import DataStaging
from llmviz.models.attention_mask import key_visible, mask_caption
from llmviz.models.registry import load_registry
from llmviz.scenes.model_scene import build_model_scene

REGISTRY = load_registry(include_user=False)


def _by_definition(n_queries: int, n_keys: int, prefix: int) -> np.ndarray:
    """Query t may read key s when s is not in its future, or when both are in the bidirectional prefix."""
    out = np.zeros((n_queries, n_keys), bool)
    for t in range(n_queries):
        for s in range(n_keys):
            out[t, s] = s <= t or (t < prefix and s < prefix)
    return out


@pytest.mark.parametrize("n, prefix", [(1, 0), (5, 0), (8, 3), (9, 9), (12, 11), (7, 20)])
def test_the_rule_is_the_definition(n, prefix):
    assert (key_visible(n, n, prefix) == _by_definition(n, n, prefix)).all()


def _painted(model_id: str, n_tokens=None):
    """The cells each masked-scores block of a structure-only scene shows at build, by tensor id."""
    staging = DataStaging(4096, 4096)
    scene = build_model_scene(REGISTRY.get(model_id), staging, with_data=False, n_tokens=n_tokens)
    writes = {(x, y): values for x, y, values in staging.writes}
    out = {}
    for row in scene.masked_rows.tolist():
        x, y, cols, rows = scene.regions[row]
        values = writes[int(x), int(y)]
        assert values.shape == (rows, cols)
        out[scene.layout.ids[row]] = values
    return scene, out


def test_paligemma_paints_its_prefix_lm_mask():
    scene, painted = _painted("paligemma-3b-224", n_tokens=8)
    arch = scene.spec.architecture
    heads = arch.n_layers * arch.n_heads
    assert len(painted) == heads                        # every head of every layer shows it
    image, prompt = 256, 4                              # 224 px / 14 px patches; half the text is the prompt
    n = image + 8
    expected = _by_definition(n, n, image + prompt)
    for values in painted.values():
        assert (np.isneginf(values) == ~expected).all()  # removed cells are −∞ ...
        assert np.isnan(values[expected]).all()          # ... the rest empty: no values are invented
    caption = scene.layout.label[scene.layout.index("blocks.0.attn.head.0.scores_masked")]
    assert caption.startswith(mask_caption(n, image + prompt)) and "first 260 both ways, last 4 causal" in caption


@pytest.mark.parametrize("model_id", ["gpt-2-small", "llama-3-8b", "whisper-base", "clip-vit-l-14"])
def test_causal_stacks_paint_a_causal_mask(model_id):
    """Decoders (and CLIP's causal text tower) are causal; encoders have no mask block at all."""
    scene, painted = _painted(model_id)
    assert painted
    for tensor_id, values in painted.items():
        n_q, n_k = values.shape
        assert (np.isneginf(values) == ~_by_definition(n_q, n_k, 0)).all(), tensor_id
    for prefix, title in scene.layout.stacks.items():
        if "encoder" in title.lower() or "vision" in title.lower():
            assert not any(t.startswith(prefix) for t in painted), title


def test_a_live_model_starts_with_its_mask_and_its_trace_replaces_it():
    staging = DataStaging(4096, 4096)
    scene = build_model_scene(REGISTRY.get("nano-gpt"), staging, with_data=True)
    first = {(x, y): v for x, y, v in staging.writes}
    row = scene.layout.index("blocks.0.attn.head.0.scores_masked")
    x, y, cols, rows = scene.regions[row]
    assert (np.isneginf(first[int(x), int(y)]) == ~_by_definition(rows, cols, 0)).all()
    # Each head has a region of its own in a live scene: the trace writes real scores into it.
    other = scene.regions[scene.layout.index("blocks.0.attn.head.1.scores_masked")]
    assert tuple(other[:2]) != (x, y)


@pytest.mark.parametrize("model_id, tensor_id", [("mamba-tiny", "blocks.1.mamba.alpha"),
                                                 ("mamba2-tiny", "blocks.0.mamba.ssd.3"),
                                                 ("rwkv-tiny", "blocks.1.time_mix.alpha")])
def test_a_recurrent_layers_hidden_attention_keeps_its_mask_when_values_arrive(model_id, tensor_id):
    """What a recurrent layer's output reads from each token (Mamba's and RWKV's α, Mamba-2's SSD matrices) is
    zero for later tokens because the recurrence has not reached them: the scene hatches those cells as it does
    attention's masked scores, before values arrive and after, and the earlier tokens' cells show the values."""
    staging = DataStaging(4096, 4096)
    scene = build_model_scene(REGISTRY.get(model_id), staging, with_data=True, n_tokens=12)
    row = scene.layout.index(tensor_id)
    assert row in scene.masked_rows.tolist()
    x, y, cols, rows = (int(v) for v in scene.regions[row])
    visible = _by_definition(rows, cols, 0)
    first = {(wx, wy): v for wx, wy, v in staging.writes}[x, y]
    assert (np.isneginf(first) == ~visible).all()
    values = np.tril(np.random.default_rng(0).uniform(0.1, 1.0, (7, 7))).astype(np.float32)  # 7 tokens so far
    staging.writes.clear()
    scene.write_values(staging, {tensor_id: values}, [tensor_id])
    (written,) = [v for wx, wy, v in staging.writes if (wx, wy) == (x, y)]
    assert (written[:7, :7] == np.where(visible[:7, :7], values, -np.inf)).all()
    assert np.isnan(written[7:]).all() and np.isnan(written[:, 7:]).all()   # no token there yet: empty
