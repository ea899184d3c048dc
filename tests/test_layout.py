"""The model layout: deterministic, overlap-free, named like the trace, sized from true dimensions,
grouped for hierarchical LOD, and fast enough for the largest registry models."""
import subprocess
import sys

import numpy as np
import pytest

from llmviz.models.registry import load_registry
from llmviz.models.sim.tensor_ids import activation_ids, weight_ids
from llmviz.scenes import layout as lay
from llmviz.scenes.layout import display_length, layout_model

REGISTRY = load_registry(include_user=False)


def spec(model_id):
    return REGISTRY.get(model_id)


_CACHE = {}


def laid(model_id):
    if model_id not in _CACHE:
        _CACHE[model_id] = layout_model(spec(model_id))
    return _CACHE[model_id]


def overlapping_pairs(center, size, eps=1e-6):
    """Every pair of boxes whose interiors intersect, exactly, in O(n) buckets: boxes are binned
    by centre on a grid as coarse as the largest box, so intersecting boxes sit in the same or
    neighbouring bins."""
    lo, hi = center - size / 2, center + size / 2
    cell = float(size[:, :2].max())
    bx = np.floor(center[:, 0] / cell).astype(np.int64)
    by = np.floor(center[:, 1] / cell).astype(np.int64)
    bx -= bx.min()
    by -= by.min()
    stride = int(by.max()) + 3
    key = bx * stride + by + 1
    order = np.argsort(key, kind="stable")
    skey = key[order]
    bins, start, count = np.unique(skey, return_index=True, return_counts=True)
    found = []
    for dx, dy in ((0, 0), (0, 1), (1, -1), (1, 0), (1, 1)):
        target = bins + dx * stride + dy
        pos = np.searchsorted(bins, target)
        pos = np.minimum(pos, len(bins) - 1)
        hit = bins[pos] == target
        a, b = np.flatnonzero(hit), pos[hit]
        na, nb = count[a], count[b]
        total = na * nb
        pair = np.repeat(np.arange(len(a)), total)
        within = np.arange(total.sum()) - np.repeat(np.cumsum(total) - total, total)
        ia = order[start[a][pair] + within // nb[pair]]
        ib = order[start[b][pair] + within % nb[pair]]
        if dx == 0 and dy == 0:
            keep = ia < ib
            ia, ib = ia[keep], ib[keep]
        inter = np.all((lo[ia] < hi[ib] - eps) & (lo[ib] < hi[ia] - eps), axis=1)
        found.append(np.stack([ia[inter], ib[inter]], axis=1))
    return np.concatenate(found)


def test_overlap_checker_finds_overlaps():
    center = np.array([[0, 0, 0], [0.9, 0, 0], [5, 5, 0], [50, 0, 0]], float)
    size = np.array([[1, 1, 1], [1, 1, 1], [1, 1, 1], [10, 1, 1]], float)
    pairs = overlapping_pairs(center, size)
    assert sorted(map(tuple, pairs.tolist())) == [(0, 1)]


def test_deterministic():
    for model_id in ("nano-gpt", "mixtral-8x7b", "jamba-v0.1"):
        a, b = layout_model(spec(model_id)), layout_model(spec(model_id))
        for name in ("ids", "label", "group_ids", "group_label", "text"):
            assert getattr(a, name) == getattr(b, name)
        for name in ("kind", "rows", "cols", "center", "size", "color", "group", "compressed",
                     "group_parent", "group_center", "group_size", "text_position",
                     "text_height", "text_group"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name
        assert a.presets.keys() == b.presets.keys()


@pytest.mark.parametrize("model_id", REGISTRY.ids())
def test_every_registry_model_lays_out_without_overlap(model_id):
    L = laid(model_id)
    n = len(L)
    assert n > 0 and len(set(L.ids)) == n
    for column in (L.kind, L.rows, L.cols, L.center, L.size, L.color, L.group, L.label,
                   L.compressed):
        assert len(column) == n
    assert L.center.dtype == np.float32 and L.center.shape == (n, 3)
    assert np.isfinite(L.center).all() and (L.size > 0).all()
    assert ((L.color >= 0) & (L.color <= 1)).all()
    assert (L.rows >= 1).all() and (L.cols >= 1).all()
    assert ((L.group >= 0) & (L.group < len(L.group_ids))).all()
    assert len(set(L.group_ids)) == len(L.group_ids)
    assert len(overlapping_pairs(L.center.astype(np.float64), L.size.astype(np.float64))) == 0


def test_nano_gpt_has_exactly_the_trace_ids():
    L = laid("nano-gpt")
    wanted = [i for i, _ in activation_ids(3, 3)] + [i for i, _ in weight_ids(3, 3)]
    assert len(L.ids) == len(set(L.ids))
    assert sorted(L.ids) == sorted(wanted)


def _grid_shape(array, axes):
    """The (rows, cols) a layout block shows for a traced array: vectors along t are columns."""
    if array.ndim == 2:
        return array.shape
    return (array.shape[0], 1) if axes[0] == "t" else (1, array.shape[0])


def test_nano_gpt_dims_match_the_trace():
    torch = pytest.importorskip("torch")
    from llmviz.models.sim.nanogpt import NanoGPT
    torch.manual_seed(0)
    model = NanoGPT().eval()
    tokens = [0, 1, 2, 1, 0, 2, 0, 0, 1, 1, 2]
    L = laid("nano-gpt")
    assert L.n_tokens == len(tokens) == 11
    for trace in (model.trace(tokens), model.weights()):
        for tensor_id in trace:
            i = L.index(tensor_id)
            assert (L.rows[i], L.cols[i]) == _grid_shape(trace[tensor_id], trace.axes(tensor_id)), tensor_id


def test_nano_gpt_is_drawn_one_unit_per_cell():
    L = laid("nano-gpt")
    big = (L.rows > lay.LINEAR_LIMIT) | (L.cols > lay.LINEAR_LIMIT)
    assert np.array_equal(L.compressed, big)
    plain = ~big
    assert np.allclose(L.size[plain, 0], L.cols[plain]) and np.allclose(L.size[plain, 1], L.rows[plain])
    i = L.index("blocks.0.attn.head.1.q")
    assert (L.rows[i], L.cols[i]) == (11, 16) and L.label[i] == "Q  t×16"
    i = L.index("blocks.0.attn.head.1.wq")
    assert (L.rows[i], L.cols[i]) == (16, 48)
    i = L.index("blocks.2.attn.head.2.scores_masked")
    assert (L.rows[i], L.cols[i]) == (11, 11) and L.kind[i] == lay.KIND_SCORES


def test_display_length_is_monotone_concave_and_bounded():
    n = np.arange(1, 300_000)
    d = display_length(n)
    assert np.all(np.diff(d) > 0)
    assert np.all(np.diff(d, 2) <= 1e-9)
    assert np.array_equal(d[:64], n[:64])
    assert display_length(12288) < 600
    assert display_length(65) == pytest.approx(65, abs=0.1)


def test_gpt3_labels_keep_true_dims_and_mark_compression():
    L = laid("gpt-3-175b")
    i = L.index("blocks.95.mlp.fc.weight")
    assert (L.rows[i], L.cols[i]) == (49152, 12288)
    assert "49152×12288" in L.label[i] and L.compressed[i]
    assert L.size[i, 0] < 600 and L.size[i, 1] < 700
    assert (L.size[:, :2] < 1000).all()


def test_groups_cover_their_children():
    for model_id in ("nano-gpt", "llama-3-8b", "mixtral-8x7b", "deepseek-v3", "whisper-base"):
        L = laid(model_id)
        glo = L.group_center - L.group_size / 2
        ghi = L.group_center + L.group_size / 2
        blo, bhi = L.center - L.size / 2, L.center + L.size / 2
        assert (glo[L.group] <= blo).all() and (bhi <= ghi[L.group]).all()
        child = np.flatnonzero(L.group_parent >= 0)
        parent = L.group_parent[child]
        assert (glo[parent] <= glo[child]).all() and (ghi[child] <= ghi[parent]).all()
        assert L.group_parent[0] == -1 and (L.group_parent[1:] >= 0).all()
        assert (L.group_parent < np.arange(len(L.group_ids))).all()
        assert ((L.text_group >= 0) & (L.text_group < len(L.group_ids))).all()
        tg = L.text_group
        inside = (glo[tg, :2] <= L.text_position[:, :2]) & (L.text_position[:, :2] <= ghi[tg, :2])
        assert inside.all()


def test_sibling_groups_do_not_overlap():
    # A collapsed group is drawn as its box (the engine's HLOD proxy): siblings must not collide.
    for model_id in ("nano-gpt", "llama-3-8b", "mixtral-8x7b", "deepseek-v3", "jamba-v0.1"):
        L = laid(model_id)
        lo = L.group_center - L.group_size / 2
        hi = L.group_center + L.group_size / 2
        order = np.argsort(L.group_parent, kind="stable")
        parents, starts = np.unique(L.group_parent[order], return_index=True)
        for kids in np.split(order, starts[1:]):
            if len(kids) < 2:
                continue
            a, b = np.triu_indices(len(kids), 1)
            a, b = kids[a], kids[b]
            hit = np.all((lo[a] < hi[b]) & (lo[b] < hi[a]), axis=1)
            assert not hit.any(), (model_id, L.group_ids[a[hit][0]], L.group_ids[b[hit][0]])


def test_hierarchy_of_a_layer():
    L = laid("nano-gpt")
    parent = lambda g: L.group_ids[L.group_parent[L.group_index(g)]]
    assert L.group_ids[0] == "model" and L.group_label[0] == spec("nano-gpt").name
    assert parent("blocks.1.attn.head.2") == "blocks.1.attn.heads"
    assert parent("blocks.1.attn.heads") == "blocks.1.attn"
    assert parent("blocks.1.attn") == "blocks.1"
    assert parent("blocks.1.mlp") == "blocks.1"
    assert parent("blocks.1") == "model" and parent("embed") == "model" and parent("output") == "model"
    assert L.group_label[L.group_index("blocks.1")] == "Transformer 1"
    assert L.group_label[L.group_index("blocks.1.attn")] == "Self-attention"
    assert L.group_label[L.group_index("blocks.1.mlp")] == "MLP"
    assert L.group_ids[L.group[L.index("blocks.1.attn.head.2.softmax")]] == "blocks.1.attn.head.2"
    for text in ("Transformer 2", "Self-attention", "MLP", "C = 48", "T = 11", "head 2", "Embedding"):
        assert text in L.text


def test_llama_style_ids():
    L = laid("llama-3-8b")       # GQA: 32 query heads, 8 K/V heads, RoPE, RMSNorm, SwiGLU
    ids = set(L.ids)
    for tensor_id in ("blocks.0.attn.kv_head.7.k", "blocks.0.attn.kv_head.7.wv",
                      "blocks.0.attn.kv_head.0.k_rope", "blocks.31.attn.head.31.q_rope",
                      "blocks.0.attn.head.0.wq", "blocks.0.ln1.rms", "blocks.0.mlp.gate",
                      "blocks.0.mlp.up.weight", "blocks.0.mlp.down", "blocks.0.mlp.gated",
                      "embed.out", "embed.tok.weight", "lm_head.weight", "probs"):
        assert tensor_id in ids, tensor_id
    for absent in ("embed.pos", "embed.pos.weight", "embed.tok", "blocks.0.ln1.mean",
                   "blocks.0.attn.head.0.k", "blocks.0.attn.kv_head.8.k", "blocks.0.attn.head.0.bq"):
        assert absent not in ids, absent
    i = L.index("blocks.0.attn.kv_head.3.wk")
    assert (L.rows[i], L.cols[i]) == (128, 4096)
    i = L.index("blocks.0.mlp.gate.weight")
    assert (L.rows[i], L.cols[i]) == (14336, 4096)
    parent = lambda g: L.group_ids[L.group_parent[L.group_index(g)]]
    assert parent("blocks.0.attn.head.9") == "blocks.0.attn.kv_head.2"
    assert parent("blocks.0.attn.kv_head.2") == "blocks.0.attn.heads"
    mha = set(laid("llama-2-7b").ids)     # same family, but every head has its own K and V
    assert "blocks.0.attn.head.31.k" in mha and "blocks.0.attn.kv_head.0.k" not in mha


def test_moe_router_and_experts():
    L = laid("mixtral-8x7b")
    i = L.index("blocks.4.moe.router")
    assert (L.rows[i], L.cols[i]) == (8, 8)
    experts = [L.index(f"blocks.4.moe.expert.{e}") for e in range(8)]
    assert all(L.ids[i].startswith("blocks.4.moe.expert.") for i in experts)
    assert {L.group_ids[L.group[i]] for i in experts} == {"blocks.4.moe.experts"}
    assert L.compressed[experts].all() and (L.kind[experts] == lay.KIND_EXPERT).all()
    # Mixtral's spec asks for a circle: the experts are equally far from their centre.
    pts = L.center[experts, :2]
    radius = np.linalg.norm(pts - pts.mean(axis=0), axis=1)
    assert np.allclose(radius, radius[0], rtol=1e-4)
    ds = laid("deepseek-v3")     # dense first three layers, then 256 routed + 1 shared experts
    ids = set(ds.ids)
    assert "blocks.2.mlp.gate" in ids and "blocks.2.moe.router" not in ids
    assert "blocks.3.moe.expert.255" in ids and "blocks.3.moe.shared.0" in ids
    assert "blocks.3.attn.kv_latent" in ids and "blocks.3.attn.head.127.q" in ids


def test_other_families_have_labelled_blocks():
    mamba = set(laid("mamba-130m").ids)
    assert {"blocks.0.mamba.x", "blocks.0.mamba.out", "blocks.23.resid1"} <= mamba
    assert "blocks.0.resid2" not in mamba
    rwkv = set(laid("rwkv-6-1.6b").ids)
    assert {"blocks.0.time_mix.wkv", "blocks.0.channel_mix.out", "ln0.out"} <= rwkv
    jamba = laid("jamba-v0.1")
    ids = set(jamba.ids)
    assert "blocks.4.attn.kv_head.0.k" in ids and "blocks.0.mamba.y" in ids
    assert "blocks.1.moe.expert.15" in ids and "blocks.0.mlp.down" in ids
    assert jamba.group_label[jamba.group_index("blocks.0")] == "Mamba 0"
    whisper = set(laid("whisper-base").ids)
    assert {"blocks.0.cross_attn.head.7.k", "blocks.0.resid_cross", "audio.blocks.5.mlp.proj"} <= whisper
    i = laid("whisper-base").index("blocks.0.cross_attn.head.0.scores")
    assert laid("whisper-base").cols[i] == 1500
    llava = set(laid("llava-1.5-7b").ids)
    assert {"vision.blocks.23.attn.head.15.q", "projector.fc2"} <= llava
    vit = set(laid("vit-b-16").ids)
    assert {"patches", "embed.patch.weight", "embed.pos"} <= vit and "logits" not in vit


def test_n_tokens():
    L = layout_model(spec("gpt-2-small"), n_tokens=5)
    i = L.index("blocks.0.attn.head.0.scores")
    assert (L.rows[i], L.cols[i]) == (5, 5) and L.n_tokens == 5
    assert laid("gpt-2-small").n_tokens == 8 and laid("nano-gpt").n_tokens == 11
    for bad in (0, 12):      # nano-GPT's context holds 11 tokens
        with pytest.raises(ValueError):
            layout_model(spec("nano-gpt"), n_tokens=bad)


def test_presets_look_inside_the_model():
    for model_id in ("nano-gpt", "gpt-3-175b", "mamba-130m"):
        L = laid(model_id)
        for name in ("overview", "embedding", "first block", "last block", "output"):
            eye, target = L.presets[name]
            assert eye.shape == target.shape == (3,)
            lo = L.group_center[0] - L.group_size[0] / 2
            hi = L.group_center[0] + L.group_size[0] / 2
            assert ((lo <= target) & (target <= hi)).all(), name
            assert eye[2] > target[2]          # in front of the blocks, which face +z
        eye, target = L.presets["overview"]
        assert eye[2] - target[2] > 0.5 * L.group_size[0, 1]


def test_long_stacks_wrap_into_columns():
    assert laid("nano-gpt").columns == 1
    L = laid("gpt-3-175b")
    assert L.columns > 1
    x = np.array([L.group_center[L.group_index(f"blocks.{i}"), 0] for i in range(96)])
    assert len(np.unique(np.round(x, 3))) == L.columns
    w, h = L.group_size[0, :2]
    assert h <= 3.5 * w


def test_largest_models_lay_out():
    # How long they take is a benchmark (benchmarks/timings.py: layout_ms), not an assertion here.
    for model_id in ("gpt-3-175b", "llama-3.1-405b"):
        L = layout_model(spec(model_id))
        assert len(L) > 100_000 and len(set(L.ids)) == len(L)


def test_layout_imports_neither_torch_nor_a_renderer():
    code = ("import sys, llmviz.scenes.layout; "
            "bad = [m for m in ('torch', 'moderngl', 'llmviz.engine') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
