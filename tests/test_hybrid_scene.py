"""jamba-tiny in the scene: attention, Mamba and MoE layers live together; the MoE window routes its two MoE
layers with Jamba's router; the cache sizes it states are those of the cache the model really carries."""
import re

import numpy as np
import pytest
from scene_support import live_scene

pytest.importorskip("torch")

from llmviz.models.registry import load_registry  # noqa: E402
from llmviz.scenes.hybrid_live import cache_bytes  # noqa: E402

SPEC = load_registry(include_user=False).get("jamba-tiny")


def test_the_stated_cache_sizes_are_the_carried_caches():
    from llmviz.models.sim import jamba_trace
    from llmviz.models.sim.jamba_model import load_jamba
    from llmviz.models.sim.moe_corpus import encode

    model = load_jamba()
    for text in ("ab", "the old river runs beside"):
        state = jamba_trace.final_state(model, encode(text))
        kv = sum(t.numel() * 4 for d in (state.keys, state.values) for t in d.values())
        fixed = sum(t.numel() * 4 for d in (state.ssm, state.conv) for t in d.values())
        assert cache_bytes(SPEC, len(text)) == (kv, fixed)


def test_jamba_is_live_with_routing_on_its_moe_layers():
    with live_scene("jamba-tiny", (320, 180)) as (scene, _):
        live = scene.live
        layout = scene.model.layout
        shown = set(live.trace) | set(live.weights)
        later = {i for i in layout.ids if re.search(r"\.(\d+)$", i) and ".mamba." in i
                 and int(i.rsplit(".", 1)[1]) >= len(live.tokens)}
        assert set(layout.ids) - later <= shown, sorted(set(layout.ids) - later - shown)[:5]
        stats = live.stats
        assert list(stats.layers) == SPEC.architecture.moe_layer_indices() and not stats.config.norm_topk_prob
        # Jamba keeps the chosen experts' softmax probabilities as their gates (no renormalising).
        probs = live.trace["blocks.1.moe.router"]
        p = np.exp(probs - probs.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        chosen = np.argsort(-p, axis=1, kind="stable")[:, :2]
        assert np.allclose(np.take_along_axis(p, chosen, 1), stats.gates[0], atol=1e-5)
        assert any("the same at any length" in line for line in live.memory_lines())
        expected = int(np.argmax(live.trace["logits"][-1]))
        before = list(live.tokens)
        assert live.step() and live.wait(60)
        assert live.tokens == before + [expected]
