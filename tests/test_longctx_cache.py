"""KV-cache bytes per token in `llmviz models --json` against the spec's sizes worked out here (layers x KV
heads x head size x 2 for keys and values, DeepSeek's MLA latent + rope key, nothing for Mamba), and the
cache line of a model's details panel at 8K, 128K, 200K and 1M tokens with the public context windows."""
import json

import pytest

from llmviz.models.registry import load_registry
from llmviz.scenes.focus import ComponentTree
from llmviz.scenes.layout import layout_model

BF16 = 2


@pytest.fixture(scope="module")
def rows():
    """llmviz models --json, by id."""
    import contextlib
    import io

    from llmviz.scenes.cli.main import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["models", "--json"]) == 0
    return {row["id"]: row for row in json.loads(out.getvalue())}


@pytest.mark.parametrize("model,per_token", [
    ("llama-2-7b", 32 * 32 * 128 * 2 * BF16),        # MHA: 32 layers, 32 KV heads of 128
    ("llama-3-8b", 32 * 8 * 128 * 2 * BF16),         # GQA: 8 KV heads
    ("mistral-7b", 32 * 8 * 128 * 2 * BF16),
    ("deepseek-v3", 61 * (512 + 64) * BF16),         # MLA: the 512-wide latent and the 64-wide rope key
    ("mamba-130m", 0),                               # recurrent: a fixed state, no per-token cache
    ("induction-2l", 2 * 4 * 16 * 2 * BF16),
])
def test_kv_cache_bytes_per_token(rows, model, per_token):
    assert rows[model]["kv_cache_bytes_per_token"] == per_token


def test_every_registry_model_has_the_field(rows):
    assert all(isinstance(row["kv_cache_bytes_per_token"], int) for row in rows.values())


@pytest.mark.parametrize("model,window", [("claude-like", "200,000"), ("gemini-1.5-like", "1,000,000")])
def test_details_show_cache_sizes_and_the_public_context_window(model, window):
    spec = load_registry().get(model)
    tree = ComponentTree(layout_model(spec), spec)
    text = tree.details(tree.root).cache
    arch = spec.architecture
    per_token = BF16 * arch.n_layers * arch.kv_heads * arch.head_width * 2
    assert f"{per_token:,} B of keys and values per token" in text
    assert f"1M {per_token * 1_000_000 / 1e9:.3g} GB" in text
    assert all(label in text for label in ("8K ", "128K ", "200K ", "1M "))
    assert f"context window {window} tokens (public; the architecture is speculative)" in text
    assert spec.speculative
