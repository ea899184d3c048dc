"""The one declaration of each family's tensors (models/inventory.py): the layout is checked against it,
the simulation's weight ids are its ids, and a layout that strays from it is an error naming the tensor."""
import dataclasses

import numpy as np
import pytest

from llmviz.models.inventory import BUFFER, FAMILY_RULES, family_of, model_tensors
from llmviz.models.params import count_params
from llmviz.models.registry import load_registry
from llmviz.scenes.layout import KIND_WEIGHT, LayoutMismatch, check_against_inventory, layout_model
from llmviz.scenes.layouts import FAMILIES

REGISTRY = load_registry(include_user=False)


def test_every_family_rule_has_a_layout_and_every_spec_a_family():
    assert [name for name, _ in FAMILY_RULES] == sorted(FAMILIES, key=[n for n, _ in FAMILY_RULES].index)
    assert {family_of(REGISTRY.get(m)) for m in REGISTRY.ids()} == set(FAMILIES)


@pytest.mark.parametrize("model_id", REGISTRY.ids())
def test_ids_are_unique_and_the_counted_tensors_are_the_total(model_id):
    spec = REGISTRY.get(model_id)
    tensors = model_tensors(spec)
    ids = [t.id for t in tensors]
    assert len(ids) == len(set(ids))
    assert sum(t.params for t in tensors) == count_params(spec).total
    assert all(not t.counted for t in tensors if t.kind == BUFFER)


def _broken(layout, **columns):
    return dataclasses.replace(layout, **columns)


def test_a_layout_that_strays_from_the_inventory_is_an_error_naming_the_tensor():
    spec = REGISTRY.get("gpt-2-small")
    layout = layout_model(spec)
    check_against_inventory(spec, layout)                 # as laid out: agrees
    row = layout.index("blocks.3.mlp.fc.weight")
    rows = layout.rows.copy()
    rows[row] += 1
    with pytest.raises(LayoutMismatch, match=r"blocks\.3\.mlp\.fc\.weight is drawn 3073×768, declared 3072×768"):
        check_against_inventory(spec, _broken(layout, rows=rows))
    kind = layout.kind.copy()
    kind[layout.index("blocks.0.attn.head.2.wq")] = 0     # no longer a learned block: missing from the picture
    with pytest.raises(LayoutMismatch, match=r"blocks\.0\.attn\.head\.2\.wq is declared but not drawn"):
        check_against_inventory(spec, _broken(layout, kind=kind))
    ids = list(layout.ids)
    ids[layout.index("ln_f.weight")] = "ln_f.scale"
    with pytest.raises(LayoutMismatch, match=r"ln_f\.scale is drawn but not declared"):
        check_against_inventory(spec, _broken(layout, ids=ids))


def test_the_simulations_weight_ids_are_the_inventorys():
    """nano-GPT's weight trace (models/sim) holds exactly the inventory's learned tensors, same shapes."""
    torch = pytest.importorskip("torch")
    from llmviz.models.sim.nanogpt import load_nanogpt

    spec = REGISTRY.get("nano-gpt")
    model = load_nanogpt()
    with torch.inference_mode():
        trace = model.weights()
    traced = {i: tuple(np.asarray(values).shape) for i, values in trace.items()}
    declared = {t.id: t.shape for t in model_tensors(spec) if t.counted}
    assert traced == declared


def test_buffers_are_drawn_as_buffers_and_never_counted():
    for model_id in ("whisper-base", "deepseek-v3"):
        spec = REGISTRY.get(model_id)
        layout = layout_model(spec)
        buffers = [t for t in model_tensors(spec) if t.kind == BUFFER]
        assert buffers
        for t in buffers:
            assert layout.kind[layout.index(t.id)] != KIND_WEIGHT
