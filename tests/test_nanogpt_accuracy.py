"""The shipped nano-GPT weights sort letters perfectly, and they are found as package data."""
import importlib.resources

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
torch.set_num_threads(1)

from llmviz.models.sim import sort_task  # noqa: E402
from llmviz.models.sim.nanogpt import load_nanogpt, shipped_weights_path  # noqa: E402
from llmviz.models.sim.train_nanogpt import EVAL_SAMPLES, held_out_sample, sort_accuracy  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return load_nanogpt()


def test_weights_are_package_data_reached_through_traversable():
    path = shipped_weights_path()
    assert isinstance(path, importlib.resources.abc.Traversable)
    assert path.is_file()
    assert path == importlib.resources.files("llmviz.assets") / "weights" / "nano-gpt.safetensors"
    assert 0 < len(path.read_bytes()) < 1_000_000  # small enough to ship


def test_split_is_disjoint_and_covers_all_inputs():
    train, held = sort_task.split_inputs()
    assert len(train) + len(held) == 3 ** 6
    assert not {tuple(x) for x in train} & {tuple(x) for x in held}
    assert 150 < len(held) < 220  # about a quarter


def test_example_format():
    x, y = sort_task.example(sort_task.encode("CBABBC"))
    assert sort_task.decode(x) == "CBABBCABBBC"
    assert y[:5] == [sort_task.IGNORE_INDEX] * 5
    assert sort_task.decode(y[5:]) == "ABBBCC"


def test_shipped_weights_sort_1000_held_out_inputs(model):
    inputs = held_out_sample()
    assert inputs.shape == (EVAL_SAMPLES, 6)
    assert all(sort_task.is_held_out(row.tolist()) for row in inputs)
    assert sort_accuracy(model, inputs) == 1.0


def test_shipped_weights_sort_every_input(model):
    assert sort_accuracy(model, torch.tensor(sort_task.all_inputs())) == 1.0


def test_greedy_generate_example(model):
    steps = model.generate(sort_task.encode("CBABBC"), 6)
    assert sort_task.decode(s["token"] for s in steps) == "ABBBCC"
