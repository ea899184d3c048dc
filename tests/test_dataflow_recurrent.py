"""mamba2-tiny, rwkv-tiny and jamba-tiny in the scene: every drawn activation recomputes cell by cell from its
dataflow declaration, against the traces (which tests/test_mamba2_tiny.py, test_rwkv_tiny.py and test_jamba_tiny.py
hold to transformers), names the sources its formula reads, and reads the carried state past the window."""
import importlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from llmviz.models.registry import load_registry  # noqa: E402
from llmviz.models.sim.moe_corpus import encode  # noqa: E402
from llmviz.scenes.dataflow import explain, format_number, model_shape  # noqa: E402
from llmviz.scenes.layout import layout_model  # noqa: E402
from llmviz.scenes.live import TEXT_CONTEXT  # noqa: E402
from llmviz.scenes.ssm_live import SSM_MODELS, scene_arrays  # noqa: E402

REGISTRY = load_registry(include_user=False)
TEXT = "def f(x): return x+1"
LONG_TEXT = "the old river runs under the bridge and on past the mill"   # longer than the window
TOL = 2e-4
MODELS = {  # model id: (model module, loader, trace module, scene arrays) as the live scene builds them
    **SSM_MODELS,
    "jamba-tiny": ("llmviz.models.sim.jamba_model", "load_jamba", "llmviz.models.sim.jamba_trace", scene_arrays),
}
EXPLAINED = ("mamba2-tiny", "rwkv-tiny", "jamba-tiny")   # the families this declaration adds


def _load(model_id):
    model_module, loader, trace_module, arrays = MODELS[model_id]
    model = getattr(importlib.import_module(model_module), loader)()
    return model, importlib.import_module(trace_module), arrays


@pytest.fixture(scope="module", params=EXPLAINED)
def traced(request):
    model, tracer, arrays = _load(request.param)
    trace = arrays(tracer.trace(model, encode(TEXT)), model.config.num_hidden_layers)
    return request.param, trace, dict(tracer.weights(model).items())


_cache = {}


def _scene(model_id):
    """One model's scene arrays over TEXT, its weights (shared by the targeted tests)."""
    if model_id not in _cache:
        model, tracer, arrays = _load(model_id)
        _cache[model_id] = (arrays(tracer.trace(model, encode(TEXT)), model.config.num_hidden_layers),
                            dict(tracer.weights(model).items()))
    return _cache[model_id]


def _check(tensor_id, cell, trace, weights):
    ex = explain(tensor_id, cell[0], cell[1] if len(cell) > 1 else None, trace, weights)
    value = float(trace[tensor_id][cell])
    if np.isinf(value):   # a masked score
        assert ex.masked and ex.recomputed == value, f"{tensor_id}{cell}: {ex.formula}"
    else:
        assert abs(ex.recomputed - value) <= TOL * max(1.0, abs(value)), f"{tensor_id}{cell}: {ex.formula}"
    assert format_number(value) in ex.formula, f"{tensor_id}{cell}: {ex.formula}"
    return ex


def _sources(ex):
    return [s.tensor_id for s in ex.sources]


def test_every_drawn_activation_recomputes_from_its_declaration(traced):
    model_id, trace, weights = traced
    drawn = [i for i in layout_model(REGISTRY.get(model_id), 32).ids if i in trace]
    rng = np.random.default_rng(0)
    for tensor_id in drawn:
        cells = list(np.ndindex(*trace[tensor_id].shape))
        for k in rng.choice(len(cells), min(4, len(cells)), replace=False):
            _check(tensor_id, cells[k], trace, weights)
    assert len(drawn) > 50


def test_the_family_and_layers_are_read_from_the_ids():
    shapes = {m: model_shape(_scene(m)[0]) for m in EXPLAINED}
    assert [s.family for s in shapes.values()] == ["mamba2", "rwkv", "jamba"]
    jamba = shapes["jamba-tiny"]
    assert (jamba.n_layers, jamba.n_heads, jamba.n_kv_heads, jamba.n_experts) == (4, 4, 2, 4)
    assert jamba.layer_kinds == (("mamba", "mlp"), ("mamba", "moe"), ("attention", "mlp"), ("mamba", "moe"))


def test_an_rwkv_numerator_reads_the_previous_one_the_key_and_the_value():
    trace, weights = _scene("rwkv-tiny")
    p = "blocks.1.time_mix"
    ex = _check(f"{p}.num", (5, 7), trace, weights)
    assert _sources(ex) == [f"{p}.num", f"{p}.decay", f"{p}.key", f"{p}.value"]
    assert list(ex.sources[0].rows) == [4] and list(ex.sources[2].rows) == [5]
    first = _check(f"{p}.num", (0, 7), trace, weights)          # t=0: what was carried in, zeros from the start
    assert _sources(first)[0] == f"{p}.num_init" and trace[f"{p}.num_init"][7] == 0
    wkv = _check(f"{p}.wkv", (5, 7), trace, weights)
    assert _sources(wkv) == [f"{p}.num", f"{p}.den", f"{p}.bonus", f"{p}.key", f"{p}.value"]
    shift = _check("blocks.0.channel_mix.shift", (5, 7), trace, weights)
    assert _sources(shift) == ["blocks.0.ln2.out"] and list(shift.sources[0].rows) == [4]


def test_a_jamba_head_reads_its_kv_groups_keys_and_its_norms():
    trace, weights = _scene("jamba-tiny")
    a = "blocks.2.attn"
    for head, group in ((0, 0), (1, 0), (2, 1), (3, 1)):     # 4 query heads over 2 KV groups, adjacent
        scores = _check(f"{a}.head.{head}.scores", (6, 3), trace, weights)
        assert _sources(scores) == [f"{a}.head.{head}.q", f"{a}.kv_head.{group}.k"]
        out = _check(f"{a}.head.{head}.out", (6, 3), trace, weights)
        assert _sources(out)[1] == f"{a}.kv_head.{group}.v" and list(out.sources[1].rows) == list(range(7))
    # the Mamba layers' input and Δ go through the inner RMSNorms of B and Δ-low
    dbx = _check("blocks.1.mamba.dBx.4", (9, 2), trace, weights)
    assert _sources(dbx) == ["blocks.1.mamba.dt", "blocks.1.mamba.B", "blocks.1.mamba.inner_norms",
                             "blocks.1.mamba.conv_act"] and "RMSNorm(B)" in dbx.formula
    assert list(dbx.sources[2].rows) == list(range(4 + 0, 4 + 16))   # B's γ: after Δ-low's dt_rank = 4
    # MoE gates: softmax over all four experts, the top two kept without renormalising
    gates = trace["blocks.1.moe.gates"][6]
    assert np.count_nonzero(gates) == 2 and gates.sum() < 1
    _check("blocks.1.moe.gates", (6, int(np.argmax(gates))), trace, weights)
    assert _sources(_check("blocks.0.resid2", (6, 3), trace, weights))[1] == "blocks.0.mlp.down"
    assert _sources(_check("blocks.1.resid2", (6, 3), trace, weights))[1] == "blocks.1.moe.out"
    assert _sources(_check("blocks.2.resid1", (6, 3), trace, weights))[1] == "blocks.2.attn.proj"


def test_a_mamba2_channel_reads_its_heads_decay_and_its_groups_b_and_c():
    trace, weights = _scene("mamba2-tiny")
    m = "blocks.0.mamba"
    dbx = _check(f"{m}.dBx.4", (37, 5), trace, weights)      # channel 37: head 2 (16 channels a head)
    assert _sources(dbx) == [f"{m}.dt", f"{m}.conv_act", f"{m}.conv_act"]
    assert list(dbx.sources[0].cols) == [2] and list(dbx.sources[1].cols) == [128 + 5]   # B after x (d_inner 128)
    y = _check(f"{m}.y", (4, 37), trace, weights)
    assert list(y.sources[0].cols) == list(range(144, 160))                                  # C after B
    norm = _check(f"{m}.norm", (4, 37), trace, weights)
    assert _sources(norm) == [f"{m}.y", f"{m}.z", f"{m}.norm.weight"] and len(norm.sources[0].cols) == 128


@pytest.mark.parametrize("model_id", ["mamba-tiny", "mamba2-tiny", "rwkv-tiny"])
def test_past_the_window_the_first_positions_read_the_carried_state(model_id):
    """A text longer than the window is traced as the live scene does, its last TEXT_CONTEXT characters from the
    state the earlier ones left: the first positions' conv, shift and recurrences recompute from that state,
    and it is the whole text's own (its trace at the position before the window)."""
    model, tracer, arrays = _load(model_id)
    tokens = encode(LONG_TEXT)
    offset = len(tokens) - TEXT_CONTEXT
    with torch.inference_mode():
        _, state = tracer.forward(model, torch.tensor([tokens[:offset]]))
    trace = arrays(tracer.trace(model, tokens[offset:], state), model.config.num_hidden_layers, state)
    whole = tracer.trace(model, tokens)
    weights = dict(tracer.weights(model).items())
    if model_id == "rwkv-tiny":
        p = "blocks.1"
        ids = [f"{p}.time_mix.{n}" for n in ("shift", "num", "den", "wkv")] + [f"{p}.channel_mix.shift"]
        carried = {f"{p}.time_mix.shift_init": f"{p}.ln1.out", f"{p}.time_mix.num_init": f"{p}.time_mix.num"}
    else:
        p = "blocks.1.mamba"
        ids = [f"{p}.conv", f"{p}.h.0", f"{p}.y"]
        carried = {}
    for tensor_id in ids:
        for t, c in ((0, 3), (1, 40), (2, 9)):   # the first positions (a scan step's block: its channels)
            _check(tensor_id, (c, t) if ".h." in tensor_id else (t, c), trace, weights)
    for carried_id, traced_id in carried.items():
        assert np.allclose(trace[carried_id], whole[traced_id][offset - 1], rtol=1e-4, atol=1e-5)
    first = explain(ids[0], 0, 3, trace, weights)
    assert _sources(first)[-1].endswith("_init")      # t=0 reads what was carried in
    assert np.allclose(trace[ids[0]], whole[ids[0]][offset:], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("model_id, tensor_id", [("mamba-tiny", "blocks.0.mamba.alpha"),
                                                 ("mamba2-tiny", "blocks.1.mamba.ssd.5"),
                                                 ("rwkv-tiny", "blocks.0.time_mix.alpha"),
                                                 ("jamba-tiny", "blocks.3.mamba.alpha")])
def test_what_each_token_reads_explains_itself_row_by_row(model_id, tensor_id):
    """The hidden attention α and the SSD matrices: every cell of a whole row recomputes from its sources (each
    token's reading of the earlier ones), the diagonal and the first column included, and a later token's
    cell says why it is zero."""
    trace, weights = _scene(model_id)
    values = trace[tensor_id]
    t = values.shape[0] - 1
    for u in range(t + 1):
        _check(tensor_id, (t, u), trace, weights)
    later = explain(tensor_id, 2, 5, trace, weights)
    assert later.recomputed == 0.0 == float(values[2, 5]) and "has not read it" in later.formula
