"""Bad inputs to the small models' traces are refused with one clear error (issue 10, defect 18)."""
import warnings

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from llmviz.models.sim.moe_model import MoEGPT, variant_config  # noqa: E402
from llmviz.models.sim.nanogpt import NanoGPT, NanoGPTConfig  # noqa: E402


@pytest.fixture(scope="module", params=["nano-gpt", "moe-4"])
def model(request):
    torch.manual_seed(0)
    return (NanoGPT(NanoGPTConfig()) if request.param == "nano-gpt" else MoEGPT(variant_config("moe-4"))).eval()


def test_an_empty_input_is_an_error_not_empty_arrays(model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no torch warning on the way to the error either
        with pytest.raises(ValueError, match="empty input"):
            model.trace([])


@pytest.mark.parametrize("tokens", [[-1], "vocab", "context"])
def test_out_of_range_tokens_and_too_long_inputs_are_errors(model, tokens):
    if tokens == "vocab":
        tokens = [0, model.cfg.vocab_size]
    elif tokens == "context":
        tokens = [0] * (model.cfg.context_length + 1)
    with pytest.raises(ValueError):
        model.trace(tokens)


def test_a_valid_input_still_traces(model):
    assert model.trace([0, 1])["tokens"].tolist() == [0, 1]
