"""Computed parameter counts against the totals the sources state.

Two independent checks: the stated text kept in each spec, and a table written here by hand
from the reference table's total_params / active_params strings (so a wrong number copied into
a spec file cannot pass by agreeing with itself)."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmviz.models.params import count_params, human
from llmviz.models.registry import builtin_specs, load_registry
from llmviz.models.spec import parse_spec

COUNT_TOLERANCE = 0.02     # a source states an actual count
LABEL_TOLERANCE = 0.05     # a size in a name ("7B") or a rounded table entry: a sanity bound

# id -> (total, active, is_a_count), from reference/model_specs.json's text, read by hand.
REFERENCE = {
    "nano-gpt": (85_000, None, True),               # "~85,000 (walkthrough text)"
    "gpt-2-small": (124e6, None, True),             # "124M (nanoGPT comment)"
    "gpt-2-medium": (350e6, None, True),            # "350M (nanoGPT comment)"
    "gpt-2-large": (774e6, None, True),             # "774M (nanoGPT comment)"
    "gpt-2-xl": (1558e6, None, True),               # "1558M (nanoGPT comment)"
    "gpt-3-175b": (175.0e9, None, True),            # "175.0B"
    "gpt-4": (1.76e12, None, True),                 # "~1.76T = 8x220B (George Hotz rumour)"
    "gpt-4-16e": (1.8e12, 280e9, True),             # "~1.8T (SemiAnalysis)", "~280B per forward pass"
    "llama-2-7b": (7e9, None, False),               # "7B"
    "llama-3-8b": (8e9, None, False),               # "8B"
    "llama-3-70b": (70e9, None, False),             # "70B"
    "llama-3.1-405b": (405e9, None, False),         # "405B"
    "mistral-7b": (7.3e9, None, True),              # "7.3B (announcement)"
    "mixtral-8x7b": (47e9, 13e9, True),             # "47B (46.7B computed)", "13B"
    "qwen3-30b-a3b": (30.5e9, 3.3e9, True),         # "30.5B", "3.3B"
    "deepseek-v3": (671e9, 37e9, True),             # "671B (+14B MTP module = 685B on HF)", "37B"
    "mamba-130m": (130e6, None, False),             # "130M"
    "mamba-2.8b": (2.8e9, None, False),             # "2.8B"
    "mamba2-2.7b": (2.7e9, None, False),            # "2.7B"
    "rwkv-4-169m": (169e6, None, False),            # "169M (name)"
    "jamba-v0.1": (52e9, 12e9, True),               # "52B", "12B"
    "vit-b-16": (86e6, None, True),                 # "86M"
    "clip-vit-l-14": (428e6, None, True),           # "~428M (computed)"
    "llava-1.5-7b": (7e9, None, False),             # "~7B"
    "whisper-base": (74e6, None, False),            # "74M (README)": rounded, 2.9% off the count
    "paligemma-3b-224": (3e9, None, False),         # "3B (name)"
}
# Exact counts published with the checkpoints (transformers' num_parameters()).
EXACT = {
    "gpt-2-small": 124_439_808,
    "gpt-2-xl": 1_557_611_200,
    "llama-2-7b": 6_738_415_616,
    "llama-3-8b": 8_030_261_248,
    "mistral-7b": 7_241_732_096,
    "mixtral-8x7b": 46_702_792_704,
    "nano-gpt": 85_728,       # llm-viz checkpoint: 86,091 entries less 3 x 121 mask entries
}


def registry():
    return load_registry(include_user=False)


def off_by(counted: int, stated: float) -> float:
    return abs(counted - stated) / stated


@pytest.mark.parametrize("model_id", sorted(REFERENCE))
def test_totals_match_the_reference_table(model_id):
    total, active, is_count = REFERENCE[model_id]
    counted = count_params(registry().get(model_id))
    tolerance = COUNT_TOLERANCE if is_count else LABEL_TOLERANCE
    assert off_by(counted.total, total) <= tolerance, human(counted.total)
    if active is not None:
        assert off_by(counted.active, active) <= COUNT_TOLERANCE, human(counted.active)


@pytest.mark.parametrize("spec", builtin_specs(), ids=lambda s: s.id)
def test_totals_match_what_each_spec_states(spec):
    counted = count_params(spec)
    assert 0 < counted.active <= counted.total
    if spec.params_stated is not None:
        tolerance = COUNT_TOLERANCE if spec.stated.basis == "count" else LABEL_TOLERANCE
        assert off_by(counted.total, spec.params_stated) <= tolerance
    if spec.params_stated_active is not None:
        assert off_by(counted.active, spec.params_stated_active) <= COUNT_TOLERANCE
    if spec.architecture.moe is None:
        assert counted.active == counted.total


def test_every_reference_count_is_kept_as_a_count_in_its_spec():
    for model_id, (total, _, is_count) in REFERENCE.items():
        spec = registry().get(model_id)
        if spec.params_stated is not None:
            assert spec.params_stated == pytest.approx(total), model_id
            assert (spec.stated.basis == "count") == is_count, model_id


@pytest.mark.parametrize("model_id,exact", sorted(EXACT.items()))
def test_exact_published_counts(model_id, exact):
    assert count_params(registry().get(model_id)).total == exact


@pytest.mark.parametrize("model_id,active", [
    ("mixtral-8x7b", 12.9e9), ("deepseek-v3", 37e9), ("qwen3-30b-a3b", 3.3e9),
    ("jamba-v0.1", 12e9), ("gpt-4-16e", 280e9)])
def test_moe_active_parameters(model_id, active):
    assert off_by(count_params(registry().get(model_id)).active, active) <= COUNT_TOLERANCE


def test_deepseek_mtp_is_counted_apart():
    counted = count_params(registry().get("deepseek-v3"))
    assert off_by(counted.total, 671e9) < 0.001
    # README_WEIGHTS.md: "11.5B unique parameters" in the MTP module.
    assert off_by(counted.excluded["mtp"], 11.5e9) <= COUNT_TOLERANCE


def test_groups_add_up_and_name_the_parts():
    counted = count_params(registry().get("deepseek-v3"))
    assert sum(counted.groups.values()) == counted.total
    assert {"experts", "shared_experts", "router", "attention", "mlp"} <= set(counted.groups)
    llava = count_params(registry().get("llava-1.5-7b"))
    assert llava.groups["projector"] == 1024 * 4096 + 4096 + 4096 * 4096 + 4096


def test_human_units():
    assert human(174_604_259_328) == "174.6B"
    assert human(6_738_415_616) == "6.74B"
    assert human(85_728) == "85.7K"
    assert human(1_759_463_602_176) == "1.76T"
    assert human(512) == "512" and human(None) == "-"


def gpt(n_layers, d_model, n_heads, vocab, context, tied, bias):
    return parse_spec({"id": "g", "name": "g", "kind": "decoder-only", "sources": [],
                       "architecture": {
                           "n_layers": n_layers, "d_model": d_model, "n_heads": n_heads,
                           "d_ff": 4 * d_model, "vocab_size": vocab, "context_length": context,
                           "pos_encoding": "learned", "norm": "layernorm", "activation": "gelu",
                           "bias": bias, "unembedding": "tied" if tied else "untied"}})


@settings(max_examples=60, deadline=None)
@given(n_layers=st.integers(1, 48), heads=st.integers(1, 16), head_dim=st.integers(1, 128),
       vocab=st.integers(1, 300_000), context=st.integers(1, 10_000), bias=st.booleans())
def test_gpt_counts_follow_the_closed_form(n_layers, heads, head_dim, vocab, context, bias):
    """12·L·d² + per-layer biases and norms + embeddings: the textbook GPT-2 formula."""
    d = heads * head_dim
    per_layer = 12 * d * d + 4 * d + (9 * d if bias else 0)     # 2 LayerNorms = 4d
    expected = n_layers * per_layer + vocab * d + context * d + 2 * d
    tied = count_params(gpt(n_layers, d, heads, vocab, context, True, bias))
    untied = count_params(gpt(n_layers, d, heads, vocab, context, False, bias))
    assert tied.total == expected
    assert untied.total - tied.total == vocab * d
