"""The specs, the layout and the hover name the activation that runs: GPT-2's tanh GELU is "gelu_tanh" (issue 10, defect 17)."""
import math

import numpy as np
import pytest

from llmviz.models.registry import builtin_specs
from llmviz.scenes import dataflow
from llmviz.scenes.layout import layout_model

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

# What each spec name means, written here from the definitions (not from the code under test).
_FUNCTIONS = {
    "gelu": lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
}
SPECS = {s.id: s for s in builtin_specs()}
X = torch.linspace(-4, 4, 401, dtype=torch.float64)


def _same(a, b):
    return torch.allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("model_id", ["gpt-2-small", "gpt-2-medium", "gpt-2-large", "gpt-2-xl"])
def test_gpt2_specs_name_the_function_transformers_runs(model_id):
    activations = pytest.importorskip("transformers.activations")
    from transformers import GPT2Config

    runs = activations.ACT2FN[GPT2Config().activation_function]  # GPT-2's own: "gelu_new"
    named = SPECS[model_id].architecture.activation
    assert _same(_FUNCTIONS[named](X), runs(X))
    assert not _same(_FUNCTIONS["gelu"](X), runs(X))  # the two really differ, so the name matters


def test_nano_gpt_spec_names_the_function_its_trace_runs():
    from llmviz.models.sim.nanogpt import load_nanogpt

    trace = load_nanogpt().trace([0, 1, 2, 1])
    fc = torch.from_numpy(np.asarray(trace["blocks.0.mlp.fc"], np.float64))
    shown = torch.from_numpy(np.asarray(trace["blocks.0.mlp.gelu"], np.float64))
    named = SPECS["nano-gpt"].architecture.activation
    err_named = float((_FUNCTIONS[named](fc) - shown).abs().max())
    err_other = min(float((f(fc) - shown).abs().max()) for n, f in _FUNCTIONS.items() if n != named)
    assert err_named < 1e-6 and err_named < err_other


def test_the_layout_and_the_hover_say_tanh():
    layout = layout_model(SPECS["nano-gpt"])
    assert "tanh" in layout.label[layout.index("blocks.0.mlp.gelu")]
    rule = dataflow.resolve("blocks.0.mlp.gelu", 3, 3)
    assert rule.op == "gelu_tanh" and "tanh" in rule.label
    fc = np.array([[0.7]])
    trace = {"blocks.0.mlp.fc": fc, "blocks.0.mlp.gelu": fc * 0 + float(_FUNCTIONS["gelu_tanh"](torch.tensor(0.7, dtype=torch.float64)))}
    for i in range(1, 3):  # model_size reads the block count from the ids
        trace[f"blocks.{i}.resid2"] = fc
    trace["blocks.0.resid2"] = fc
    ex = dataflow.explain("blocks.0.mlp.gelu", 0, 0, trace, {})
    assert "tanh" in ex.formula and ex.recomputed == pytest.approx(ex.value, abs=1e-12)
