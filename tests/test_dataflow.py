"""The dataflow declaration is right: every traced cell is recomputed from its declared sources."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
torch.set_num_threads(1)

from llmviz.models.sim import sort_task  # noqa: E402
from llmviz.models.sim.nanogpt import NanoGPT, NanoGPTConfig, load_nanogpt  # noqa: E402
from llmviz.models.sim.tensor_ids import activation_ids, weight_ids  # noqa: E402
from llmviz.scenes.dataflow import explain, format_number, model_size, resolve  # noqa: E402

TOL = 1e-4


@pytest.fixture(scope="module")
def real():
    model = load_nanogpt()
    tokens = sort_task.encode("CBABBC")
    tokens += [step["token"] for step in model.generate(tokens, 5)]  # the full 11-token context
    return model.trace(tokens), model.weights()


def _cells(shape, rng, k):
    """Every cell of a small tensor, else k random ones plus the last row's last cell."""
    cells = list(np.ndindex(*shape))
    if len(cells) > k:
        picks = rng.choice(len(cells), k - 1, replace=False)
        cells = [cells[i] for i in picks] + [tuple(n - 1 for n in shape)]
    return [(c[0], c[1] if len(c) > 1 else None) for c in cells]


def _check_all(trace, weights, per_tensor, seed):
    rng = np.random.default_rng(seed)
    checked = 0
    for tensor_id in trace:
        for row, col in _cells(trace[tensor_id].shape, rng, per_tensor):
            ex = explain(tensor_id, row, col, trace, weights)
            value = float(trace[tensor_id][(row,) if col is None else (row, col)])
            assert ex.value == value
            where = f"{tensor_id}[{ex.indices}]: {ex.formula}"
            if math.isinf(value):
                assert ex.masked and ex.recomputed == value, where
            else:
                assert abs(ex.recomputed - value) <= TOL * max(1.0, abs(value)), where
            assert format_number(value) in ex.formula, where
            checked += 1
    return checked


def test_every_activation_recomputes_from_its_declared_sources(real):
    trace, weights = real
    assert model_size(trace) == (3, 3)
    assert trace["tokens"].shape == (11,)
    assert _check_all(trace, weights, per_tensor=10, seed=0) > 900


def test_every_cell_of_one_head_and_the_masked_triangle(real):
    trace, weights = real
    head = "blocks.2.attn.head.1"
    for name in ("scores", "scores_masked", "softmax", "out"):
        arr = trace[f"{head}.{name}"]
        for row, col in np.ndindex(*arr.shape):
            ex = explain(f"{head}.{name}", row, col, trace, weights)
            assert ex.recomputed == pytest.approx(ex.value, abs=TOL) or ex.recomputed == ex.value == -math.inf
            assert ex.masked == (name == "scores_masked" and col > row)
    ex = explain(f"{head}.scores_masked", 3, 7, trace, weights)
    assert ex.formula == "masked: t'=7 > t=3 so −∞"
    assert ex.sources[0].tensor_id == f"{head}.scores"


def test_a_random_model_of_another_size_recomputes_too():
    torch.manual_seed(0)
    model = NanoGPT(NanoGPTConfig(n_layers=5, n_heads=4)).eval()
    trace = model.trace([2, 0, 1, 1, 0, 2, 0])
    assert model_size(trace) == (5, 4)
    _check_all(trace, model.weights(), per_tensor=3, seed=1)


@pytest.mark.parametrize("n_layers,n_heads", [(3, 3), (5, 4), (1, 1)])
def test_declaration_covers_every_id_with_matching_axes_and_earlier_sources(n_layers, n_heads):
    acts = activation_ids(n_layers, n_heads)
    known = dict(acts) | dict(weight_ids(n_layers, n_heads))
    order = {tid: i for i, (tid, _) in enumerate(acts)}
    for tensor_id, axes in acts:
        rule = resolve(tensor_id, n_layers, n_heads)
        assert rule.axes == axes, tensor_id
        for spec in rule.sources:
            assert spec.tensor_id in known, f"{tensor_id} reads undeclared {spec.tensor_id}"
            assert len(spec.selectors) == len(known[spec.tensor_id]), f"{tensor_id} <- {spec.tensor_id}"
            # Data flows forward: an activation only reads activations computed before it.
            assert order.get(spec.tensor_id, -1) < order[tensor_id], f"{tensor_id} <- {spec.tensor_id}"
    assert resolve("blocks.0.ln1.mean", n_layers, n_heads).source_ids == ("embed.out",)
    assert resolve("ln_f.mean", n_layers, n_heads).source_ids == (f"blocks.{n_layers - 1}.resid2",)
    proj = resolve(f"blocks.{n_layers - 1}.attn.proj", n_layers, n_heads).source_ids
    assert len(proj) == n_heads + 2
    with pytest.raises(KeyError):
        resolve("blocks.0.attn.nothing", n_layers, n_heads)


def _as_lists(sources):
    return [(s.tensor_id, s.rows.tolist(), None if s.cols is None else s.cols.tolist()) for s in sources]


def test_linear_cells_read_exactly_the_input_row_and_the_weight_row(real):
    trace, weights = real
    ex = explain("blocks.0.attn.head.1.q", 3, 5, trace, weights)
    assert ex.op == "linear" and ex.indices == "t=3, d=5"
    assert _as_lists(ex.sources) == [("blocks.0.ln1.out", [3], list(range(48))),
                                     ("blocks.0.attn.head.1.wq", [5], list(range(48))),
                                     ("blocks.0.attn.head.1.bq", [5], None)]
    ex = explain("blocks.1.mlp.proj", 2, 7, trace, weights)
    assert _as_lists(ex.sources)[:2] == [("blocks.1.mlp.gelu", [2], list(range(192))),
                                         ("blocks.1.mlp.proj.weight", [7], list(range(192)))]
    ex = explain("blocks.2.attn.proj", 4, 9, trace, weights)
    assert _as_lists(ex.sources) == [(f"blocks.2.attn.head.{h}.out", [4], list(range(16))) for h in range(3)] + [
        ("blocks.2.attn.proj.weight", [9], list(range(48))), ("blocks.2.attn.proj.bias", [9], None)]
    ex = explain("logits", 10, 1, trace, weights)
    assert _as_lists(ex.sources) == [("ln_f.out", [10], list(range(48))), ("lm_head.weight", [1], list(range(48)))]
    ex = explain("embed.tok", 3, 5, trace, weights)
    token = int(trace["tokens"][3])
    assert _as_lists(ex.sources) == [("tokens", [3], None), ("embed.tok.weight", [token], [5])]


def test_softmax_cells_read_their_whole_row_and_attention_reads_only_the_past(real):
    trace, weights = real
    ex = explain("blocks.1.attn.head.0.softmax", 4, 2, trace, weights)
    assert _as_lists(ex.sources) == [("blocks.1.attn.head.0.scores_masked", [4], list(range(11)))]
    assert ex.formula.startswith("softmax over row t=4: exp(")
    ex = explain("probs", 6, 0, trace, weights)
    assert _as_lists(ex.sources) == [("logits", [6], [0, 1, 2])]
    ex = explain("blocks.1.attn.head.0.out", 4, 2, trace, weights)
    assert _as_lists(ex.sources) == [("blocks.1.attn.head.0.softmax", [4], list(range(5))),
                                     ("blocks.1.attn.head.0.v", list(range(5)), [2])]


def test_formulas_show_the_real_operands(real):
    trace, weights = real
    ex = explain("blocks.0.attn.head.1.q", 3, 5, trace, weights)
    bias = float(weights["blocks.0.attn.head.1.bq"][5])
    assert ex.formula.startswith(f"b + dot(LN row, W row) = {format_number(bias)} + ")
    ex = explain("blocks.1.resid1", 2, 0, trace, weights)
    x = float(trace["blocks.0.resid2"][2, 0])
    assert ex.formula.startswith(f"X + Attention(X) = {format_number(x)} + ")
    ex = explain("blocks.0.ln2.mean", 0, None, trace, weights)
    assert ex.formula.startswith("mean of this row (48 values) = ")
    assert format_number(float(trace["blocks.0.ln2.mean"][0])) in ex.tooltip


def test_bad_cells_are_refused(real):
    trace, weights = real
    with pytest.raises(IndexError):
        explain("blocks.0.mlp.fc", 11, 0, trace, weights)
    with pytest.raises(IndexError):
        explain("blocks.0.mlp.fc", 0, -1, trace, weights)


def test_format_number():
    assert format_number(-0.125) == "−0.125"
    assert format_number(-math.inf) == "−∞"
    assert format_number(-0.0) == "0"
    assert format_number(3.466e-9) == "3.466e−9"
    assert format_number(381970.2) == "3.82e5"


def test_explain_resolves_each_tensor_once(real):
    # hover stays cheap because the rule lookup (regex work) runs once per tensor id; what a call
    # costs is a benchmark (benchmarks/timings.py: explain_us), not an assertion here
    trace, weights = real
    ids = list(trace)
    resolve.cache_clear()

    def hover_all():
        return [explain(tensor_id, 10, None if trace[tensor_id].ndim == 1 else 0, trace, weights).tooltip
                for tensor_id in ids]

    first = hover_all()
    looked_up = resolve.cache_info().misses
    assert 0 < looked_up <= len(ids)
    for _ in range(3):
        assert hover_all() == first
    assert resolve.cache_info().misses == looked_up and resolve.cache_info().hits > 0
