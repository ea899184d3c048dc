"""Every cell of every live model explains itself in its own vocabulary and with its own formula (issue 10, defect 15).

For nano-GPT, moe-4 and moe-8, sample cells of every block with data are hovered the way the
window does (read_pick); each activation's reading must carry a formula ending in the shown value,
and that value must equal an independent recomputation written here from the weights and the
trace (torch for the MoE layer, from the model's own parameters).
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

import torch.nn.functional as F  # noqa: E402

from llmviz.models.registry import load_registry  # noqa: E402
from llmviz.models.sim import moe_corpus  # noqa: E402
from llmviz.models.sim.moe_model import load_moe  # noqa: E402
from llmviz.scenes.dataflow import format_number  # noqa: E402
from llmviz.scenes.hover import read_pick  # noqa: E402
from llmviz.scenes.inspect import inspect_cell  # noqa: E402
from llmviz.scenes.live import LiveModel  # noqa: E402
from llmviz.scenes.model_scene import build_model_scene  # noqa: E402
from llmviz.scenes.moe_live import LiveMoE  # noqa: E402

TEXT = "def f(x): return x+1"


class AtlasRecorder:
    """Just enough renderer for data regions."""

    def __init__(self):
        self.next_y = 0

    def alloc_data(self, rows, cols):
        y, self.next_y = self.next_y, self.next_y + rows
        return 0, y

    def write_data(self, x, y, values):
        pass


@pytest.fixture(scope="module", params=["nano-gpt", "moe-4", "moe-8"])
def live(request):
    spec = load_registry(include_user=False).get(request.param)
    renderer = AtlasRecorder()
    scene = build_model_scene(spec, renderer)
    if request.param == "nano-gpt":
        session = LiveModel(scene, renderer)
    else:
        session = LiveMoE(scene, renderer, text=TEXT)
    assert session.wait(30.0), session.session.error
    yield request.param, scene, session
    session.close()


def _sample_cells(rows: int, cols: int, shape: tuple) -> list[tuple[int, int]]:
    """A few face cells that hold values: the corners and the middle of the filled part."""
    r = min(rows, shape[0]) - 1
    c = (min(cols, shape[1]) if len(shape) == 2 else 1) - 1
    return sorted({(0, 0), (r, c), (r // 2, c // 2), (r, 0), (0, c)})


def _index(shape, cell):
    return cell if len(shape) == 2 else (cell[0],)


def test_every_block_with_data_is_explained(live):
    model_id, scene, session = live
    trace, weights = session.session.trace, session.session.weights
    layout = scene.layout
    for row, tensor_id in enumerate(layout.ids):
        source = trace if tensor_id in trace else weights if tensor_id in weights else None
        if source is None:
            continue
        array = source[tensor_id]
        for cell in _sample_cells(int(layout.rows[row]), int(layout.cols[row]), array.shape):
            if array.ndim == 1 and layout.rows[row] == 1:
                cell = (0, cell[0])  # a 1-D weight is drawn as a row
            reading = read_pick(scene, session, scene.slot_of(tensor_id), cell)
            index = _index(array.shape, cell if array.ndim == 2 else (cell[0] if layout.rows[row] > 1 else cell[1],))
            assert reading.value == pytest.approx(float(array[index]), abs=1e-7), (tensor_id, cell)
            if source is trace:
                assert reading.formula, (model_id, tensor_id, cell, reading.note)
                assert format_number(reading.value) in reading.formula, (tensor_id, reading.formula)
                e = inspect_cell(scene, session, scene.slot_of(tensor_id), cell).explanation
                assert e.masked or e.recomputed == pytest.approx(e.value, rel=1e-4, abs=1e-6), (tensor_id, cell)


def test_expert_blocks_read_the_w_gate_they_show(live):
    model_id, scene, session = live
    if model_id == "nano-gpt":
        pytest.skip("no experts")
    model = load_moe(model_id)
    for e in (0, model.cfg.n_experts - 1):
        w_gate = model.blocks[1].moe.expert[e].gate.weight.detach().numpy()
        for cell in ((0, 0), (5, 7), (127, 63)):
            reading = read_pick(scene, session, scene.slot_of(f"blocks.1.moe.expert.{e}"), cell)
            assert reading.value == pytest.approx(float(w_gate[cell]), abs=0)


def _moe_reference(model, tokens):
    """Router logits, gates and MoE output of every layer, recomputed here from the parameters."""
    idx = torch.tensor([tokens])
    x = model.embed["tok"](idx)[0] + model.embed["pos"].weight[:len(tokens)]
    out = {}
    for b, blk in enumerate(model.blocks):
        T, H, D = len(tokens), model.cfg.n_heads, model.cfg.head_dim
        h = F.layer_norm(x, (x.shape[-1],), blk.ln1.weight, blk.ln1.bias, blk.ln1.eps)
        q, k, v = F.linear(h, blk.attn.qkv.weight, blk.attn.qkv.bias).view(T, 3, H, D).permute(1, 2, 0, 3)
        att = (q @ k.transpose(-1, -2) / D ** 0.5).masked_fill(torch.ones(T, T).triu(1).bool(), float("-inf"))
        heads = (att.softmax(-1) @ v).transpose(0, 1).reshape(T, -1)
        x = x + F.linear(heads, blk.attn.proj.weight, blk.attn.proj.bias)
        h = F.layer_norm(x, (x.shape[-1],), blk.ln2.weight, blk.ln2.bias, blk.ln2.eps)
        logits = h @ blk.moe.router.weight.T
        top = logits.topk(model.cfg.top_k, dim=-1)
        gates = torch.zeros_like(logits).scatter(1, top.indices, top.values.softmax(-1))
        moe = torch.zeros_like(x)
        for e, expert in enumerate(blk.moe.expert):
            y = F.linear(F.silu(F.linear(h, expert.gate.weight)) * F.linear(h, expert.up.weight), expert.down.weight)
            moe = moe + gates[:, e:e + 1] * y
        x = x + moe
        out.update({f"blocks.{b}.moe.router": logits, f"blocks.{b}.moe.gates": gates,
                    f"blocks.{b}.moe.out": moe, f"blocks.{b}.resid2": x})
    return {k: v.detach().numpy() for k, v in out.items()}


def test_moe_cells_equal_an_independent_recomputation(live):
    model_id, scene, session = live
    if model_id == "nano-gpt":
        pytest.skip("nano-GPT's cells are checked against transformers in test_nanogpt_reference")
    reference = _moe_reference(load_moe(model_id), moe_corpus.encode(TEXT))
    n = min(len(TEXT), int(scene.layout.rows[scene.layout.index("tokens")]))
    for tensor_id, expected in reference.items():
        for cell in ((0, 0), (n - 1, expected.shape[1] - 1), (n // 2, 1)):
            reading = read_pick(scene, session, scene.slot_of(tensor_id), cell)
            assert reading.formula and reading.sources, (tensor_id, reading.note)
            assert reading.value == pytest.approx(float(expected[cell]), abs=2e-5), (tensor_id, cell, reading.formula)


def test_tokens_and_logit_columns_are_named_in_the_models_own_vocabulary(live):
    model_id, scene, session = live
    tokens = session.session.trace["tokens"]
    alphabet = "ABC" if model_id == "nano-gpt" else "\n" + "".join(chr(c) for c in range(32, 127))
    for t in range(min(len(tokens), int(scene.layout.rows[scene.layout.index("tokens")]))):
        note = read_pick(scene, session, scene.slot_of("tokens"), (t, 0)).note
        ch = alphabet[int(tokens[t])]
        assert note == ("space" if ch == " " else f"letter {ch}" if model_id == "nano-gpt" else f"character '{ch}'")
    note = read_pick(scene, session, scene.slot_of("probs"), (0, len(alphabet) - 1)).note
    assert note.endswith(f"letter {alphabet[-1]}" if model_id == "nano-gpt" else f"character '{alphabet[-1]}'")


@pytest.mark.parametrize("variant", ["moe-4", "moe-8"])
def test_every_cell_of_every_moe_trace_tensor_recomputes_from_its_declared_sources(variant):
    from llmviz.scenes.dataflow import explain

    model = load_moe(variant)
    trace, weights = model.trace(moe_corpus.encode(TEXT)), model.weights()
    for tensor_id, array in trace.items():
        for index in np.ndindex(*array.shape):
            e = explain(tensor_id, index[0], index[1] if len(index) > 1 else None, trace, weights)
            assert e.masked or e.recomputed == pytest.approx(e.value, rel=1e-4, abs=1e-6), (tensor_id, index)
