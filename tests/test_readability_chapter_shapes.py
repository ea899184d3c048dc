"""A chapter that states a tensor's shape says what the rest of its larger block is (issue 10, defect 14)."""
import re
from collections import ChainMap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from llmviz.models.registry import load_registry  # noqa: E402
from llmviz.models.sim import sort_task  # noqa: E402
from llmviz.models.sim.nanogpt import load_nanogpt  # noqa: E402
from llmviz.scenes.chapters.format import load_chapters, model_names  # noqa: E402
from llmviz.scenes.chapters.text import render_text  # noqa: E402
from llmviz.scenes.layout import layout_model  # noqa: E402

SHAPE = re.compile(r"\{shape ([\w.]+)\}")


@pytest.fixture(scope="module")
def nano():
    model = load_nanogpt()
    trace = model.trace(sort_task.parse_input("CBABBC"))
    spec = load_registry().get("nano-gpt")
    return spec, layout_model(spec), ChainMap(dict(trace), dict(model.weights()))


def _block_shape(layout, tensor_id):
    row = layout.index(tensor_id)
    return int(layout.rows[row]), int(layout.cols[row])


def _shown_shape(values, tensor_id):
    shape = np.shape(values[tensor_id])
    return (shape[0], 1) if len(shape) == 1 else shape


def test_a_stated_shape_smaller_than_its_block_comes_with_what_the_empty_cells_are(nano):
    spec, layout, values = nano
    checked = 0
    # chapters that replay a training recording read its snapshots' values (tests/test_learning_chapter.py checks them)
    for chapter in (c for c in load_chapters(model_names) if c.model == "nano-gpt" and c.recording is None):
        for step in chapter.steps:
            text = render_text(step.text, values, spec).text
            for tensor_id in SHAPE.findall(step.text):
                if (tensor_id not in layout.ids or np.ndim(values[tensor_id]) != 2  # a 1-D shape reads as a count
                        or _shown_shape(values, tensor_id) == _block_shape(layout, tensor_id)):
                    continue
                checked += 1
                rows, cols = _block_shape(layout, tensor_id)
                assert "empty" in text and (f"{rows}×{cols}" in text or f"{rows} rows" in text), (chapter.title, text)
    assert checked  # the 6×6 scores in an 11×11 block are among them


def test_the_token_column_says_its_rows_after_the_input_are_empty(nano):
    spec, layout, values = nano
    rows = _block_shape(layout, "tokens")[0]
    assert rows > len(values["tokens"])  # the block really is longer than the input
    step = next(s for c in load_chapters(model_names) if c.model == "nano-gpt" for s in c.steps
                if "[[tokens|" in s.text)  # where the token column is first named
    text = render_text(step.text, values, spec).text
    assert f"{rows} rows" in text and "empty" in text
