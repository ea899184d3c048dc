"""Every family drawn whole: the weights each layout draws add up to models/params.py's total (buffers and the
few tensors drawn apart listed on their own), and the layouts of Whisper, CLIP, LLaVA, PaliGemma and ViT hold
exactly the tensors of the transformers model built from the same config (built on the meta device: real sizes,
no memory, nothing downloaded), under the naming map below."""
import math
import re

import numpy as np
import pytest

from llmviz.models.params import component_params, count_params, expert_params
from llmviz.models.registry import load_registry
from llmviz.models.spec import EncoderComponent, ProjectorComponent
from llmviz.scenes.component_info import undrawn
from llmviz.scenes.layout import (KIND_BIAS, KIND_BUFFER, KIND_COMPONENT, KIND_EXPERT, KIND_WEIGHT,
                                  layout_model)
from llmviz.scenes.layouts import FAMILIES, family_of

REGISTRY = load_registry(include_user=False)
# Drawn, but outside the model's count: a ViT's classifier (its size is the label set's; the spec leaves it out).
APART = {"classifier.weight", "classifier.bias"}


def _drawn_weights(layout, arch) -> dict[str, int]:
    """Parameters per drawn learned block, from its kind and true dimensions alone."""
    out = {}
    comps = {f"components.{c.name}": c for c in arch.components}
    for i, tensor_id in enumerate(layout.ids):
        kind, cells = layout.kind[i], int(layout.rows[i]) * int(layout.cols[i])
        if kind in (KIND_WEIGHT, KIND_BIAS):
            out[tensor_id] = cells
        elif kind == KIND_EXPERT:
            out[tensor_id] = int(expert_params(arch, int(layout.rows[i])))
        elif kind == KIND_COMPONENT and tensor_id in comps:
            out[tensor_id] = component_params(comps[tensor_id])
    return out


@pytest.mark.parametrize("model_id", REGISTRY.ids())
def test_the_drawn_weights_are_the_counted_parameters(model_id):
    spec = REGISTRY.get(model_id)
    arch = spec.architecture
    layout = layout_model(spec)
    weights = _drawn_weights(layout, arch)
    if arch.unembedding == "tied":
        weights.pop("lm_head.weight", None)       # W_E's numbers, drawn again as W_U
    apart = {k: weights.pop(k) for k in APART if k in weights}
    folded = sum(u.count for u in undrawn(arch))  # tensors drawn without a block of their own
    assert sum(weights.values()) + folded == count_params(spec).total
    # Buffers are drawn, labelled as such, and never counted.
    for i in np.flatnonzero(layout.kind == KIND_BUFFER):
        assert "buffer" in layout.label[i] and layout.ids[i] not in weights
    if family_of(spec) == "vit" and not any(c.name == "classifier" for c in arch.components):
        # ImageNet's classifier, drawn apart, where the spec has no classifier of its own (vit-tiny has)
        assert apart == {"classifier.weight": 1000 * arch.d_model, "classifier.bias": 1000}


@pytest.mark.parametrize("model_id", REGISTRY.ids())
def test_no_encoder_or_projector_is_a_stub(model_id):
    """Every encoder and projector of the spec is laid out whole, under its own prefix."""
    spec = REGISTRY.get(model_id)
    layout = layout_model(spec)
    stubs = {layout.ids[i] for i in np.flatnonzero(layout.kind == KIND_COMPONENT)}
    for comp in spec.architecture.components:
        if isinstance(comp, (EncoderComponent, ProjectorComponent)):
            assert f"components.{comp.name}" not in stubs
            assert any(i.startswith(comp.name + ".") for i in layout.ids)
        if isinstance(comp, EncoderComponent):
            assert f"{comp.name}.blocks.{comp.n_layers - 1}.resid2" in set(layout.ids)


def test_every_family_is_a_registered_module():
    assert {"decoder", "vit", "clip", "encoder-decoder", "vision-language"} <= set(FAMILIES)
    assert {family_of(REGISTRY.get(m)) for m in ("whisper-base", "vit-b-16", "clip-vit-l-14", "llava-1.5-7b",
                                                  "paligemma-3b-224", "gpt-2-small")} == \
        {"encoder-decoder", "vit", "clip", "vision-language", "decoder"}


def test_vit_tokens_are_the_patches_and_cls():
    spec = REGISTRY.get("vit-b-16")
    layout = layout_model(spec)
    src = spec.architecture.input
    n = (src.image_size // src.patch_size) ** 2
    assert layout.n_tokens == n + 1 == 197
    assert layout.rows[layout.index("embed.out")] == 197 and layout.rows[layout.index("patches")] == n
    assert layout.rows[layout.index("blocks.0.attn.head.0.scores")] == 197
    assert "T = 197" in layout.text
    assert "token embedding" not in " ".join(layout.label)
    for tensor_id in ("embed.cls", "embed.patch.bias", "pool", "classifier.weight", "probs"):
        layout.index(tensor_id)


def test_whisper_cross_attention_reads_the_encoder_output():
    from llmviz.scenes.flow_graph import flow_graph

    spec = REGISTRY.get("whisper-base")
    layout = layout_model(spec)
    graph = flow_graph(layout)
    memory = layout.index("audio.ln_f.out")
    enc = spec.architecture.components[0]
    for layer in range(spec.architecture.n_layers):
        for h in range(spec.architecture.n_heads):
            for x in ("k", "v"):
                row = layout.index(f"blocks.{layer}.cross_attn.head.{h}.{x}")
                assert memory in graph.sources(row)
                assert layout.rows[row] == enc.context_length
    # the log-mel input: 2 × 1500 frames of 80 bands, two convolutions, the sinusoids a buffer
    assert (layout.rows[layout.index("audio.features")], layout.cols[layout.index("audio.features")]) == (3000, 80)
    assert layout.kind[layout.index("audio.embed.pos")] == KIND_BUFFER


def test_vision_language_prefix_and_mask():
    from llmviz.scenes.flow_graph import flow_graph

    for model_id, image_tokens in (("llava-1.5-7b", 576), ("paligemma-3b-224", 256)):
        spec = REGISTRY.get(model_id)
        layout = layout_model(spec, n_tokens=8)
        assert layout.n_tokens == image_tokens + 8
        assert layout.rows[layout.index("embed.image")] == image_tokens
        assert layout.rows[layout.index("blocks.0.attn.head.0.scores_masked")] == image_tokens + 8
        graph = flow_graph(layout)
        proj_out = layout.index(layout.links["image"])
        assert proj_out in graph.sources(layout.index("embed.image"))
        mask = layout.label[layout.index("blocks.0.attn.head.0.scores_masked")]
        if model_id.startswith("paligemma"):
            assert mask.startswith(f"prefix-LM mask: first {image_tokens + 4} both ways, last 4 causal")
        else:
            assert mask.startswith("causal mask")
    llava = layout_model(REGISTRY.get("llava-1.5-7b"))
    assert (llava.rows[llava.index("projector.fc1.weight")], llava.cols[llava.index("projector.fc1.weight")]) == \
        (4096, 1024)
    llava.index("projector.act1")


# ---------------------------------------------------------------------------- against transformers

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

# transformers' module names -> ours, per layer and per stem ({h} expands to every head, or K/V group)
_LAYER_MAP = [
    (r"(?:self_attn|attention(?:\.attention)?)\.(?:q_proj|query)\.(weight|bias)", "attn.head.{h}.{qb}"),
    (r"(?:self_attn|attention(?:\.attention)?)\.(?:k_proj|key)\.(weight|bias)", "attn.{kv}.{kb}"),
    (r"(?:self_attn|attention(?:\.attention)?)\.(?:v_proj|value)\.(weight|bias)", "attn.{kv}.{vb}"),
    (r"(?:(?:self_attn|attention)\.(?:out_proj|o_proj)|attention\.output\.dense)\.(weight|bias)", "attn.proj.{w}"),
    (r"encoder_attn\.q_proj\.(weight|bias)", "cross_attn.head.{h}.{qb}"),
    (r"encoder_attn\.k_proj\.(weight|bias)", "cross_attn.head.{h}.{kb}"),
    (r"encoder_attn\.v_proj\.(weight|bias)", "cross_attn.head.{h}.{vb}"),
    (r"encoder_attn\.out_proj\.(weight|bias)", "cross_attn.proj.{w}"),
    (r"(?:self_attn_layer_norm|layer_norm1|input_layernorm|layernorm_before)\.(weight|bias)", "ln1.{w}"),
    (r"encoder_attn_layer_norm\.(weight|bias)", "ln_cross.{w}"),
    (r"(?:final_layer_norm|layer_norm2|post_attention_layernorm|layernorm_after)\.(weight|bias)", "ln2.{w}"),
    (r"(?:mlp\.)?fc1\.(weight|bias)|intermediate\.dense\.(weight|bias)", "mlp.fc.{w}"),
    (r"(?:mlp\.)?fc2\.(weight|bias)|output\.dense\.(weight|bias)", "mlp.proj.{w}"),
    (r"mlp\.gate_proj\.weight", "mlp.gate.weight"),
    (r"mlp\.up_proj\.weight", "mlp.up.weight"),
    (r"mlp\.down_proj\.weight", "mlp.down.weight"),
]
_STEM_MAP = [
    (r"conv([12])\.(weight|bias)", "embed.conv{0}.{1}"),
    (r"embed_positions\.weight", "embed.pos"),                       # Whisper: a buffer (encoder) or W_P
    (r"embed_tokens\.weight|embeddings\.token_embedding\.weight", "embed.tok.weight"),
    (r"embeddings\.(?:class_embedding|cls_token)", "embed.cls"),
    (r"embeddings\.(?:patch_embedding|patch_embeddings\.projection)\.(weight|bias)", "embed.patch.{0}"),
    (r"embeddings\.position_embedding(?:s|\.weight)", "embed.pos.weight"),
    (r"pre_layrnorm\.(weight|bias)", "ln0.{0}"),
    (r"(?:post_layernorm|final_layer_norm|layer_norm|layernorm|norm)\.(weight|bias)", "ln_f.{0}"),
    (r"(?:visual_projection|text_projection)\.weight", "proj.weight"),
    (r"linear(?:_([12]))?\.(weight|bias)", "fc{0}.{1}"),            # the projector
    (r"classifier\.(weight|bias)", "classifier.{0}"),
    (r"lm_head\.weight|proj_out\.weight", "lm_head.weight"),
    (r"logit_scale", "logit_scale"),
]
_LAYER = re.compile(r"(?:layers|layer)\.(\d+)\.(.+)$")


def _stack_of(name: str, stacks: dict[str, str]) -> str:
    """Which of our stacks a transformers parameter belongs to, by the module it lives in."""
    for marker, prefix in stacks.items():
        if marker in name:
            return prefix
    return ""


def _ours(name: str, stacks: dict[str, str], stack_arch) -> list[str]:
    """Our block ids holding one transformers tensor (several: the heads a projection is split into)."""
    prefix = _stack_of(name, stacks)
    arch = stack_arch.get(prefix, stack_arch[""])
    m = _LAYER.search(name)
    if m:
        layer, rest = m.groups()
        for pattern, ours in _LAYER_MAP:
            mm = re.fullmatch(pattern, rest)
            if not mm:
                continue
            w = next((g for g in mm.groups() if g), "weight")
            bias = w == "bias"
            fields = {"{kv}": "kv_head.{g}" if arch.kv_heads < arch.n_heads else "head.{h}", "{w}": w,
                      "{qb}": "bq" if bias else "wq", "{kb}": "bk" if bias else "wk", "{vb}": "bv" if bias else "wv"}
            text = ours
            for key, value in fields.items():
                text = text.replace(key, value)
            base = f"{prefix}blocks.{layer}."
            if "{g}" in text:
                return [base + text.format(g=g) for g in range(arch.kv_heads)]
            if "{h}" in text:
                return [base + text.format(h=h) for h in range(arch.n_heads)]
            return [base + text]
        raise AssertionError(f"no naming map for {name}")
    tail = name.split(".")
    for k in range(len(tail)):
        rest = ".".join(tail[k:])
        for pattern, ours in _STEM_MAP:
            mm = re.fullmatch(pattern, rest)
            if mm:
                groups = [g or "1" for g in mm.groups()]
                if ours == "embed.pos" and arch.pos_encoding != "sinusoidal":
                    ours = "embed.pos.weight"
                return [prefix + ours.format(*groups)]
    raise AssertionError(f"no naming map for {name}")


def _compare(layout, model, stacks, stack_arch, buffers=()):
    """Every transformers tensor is our blocks' (same numbers, same shape once split heads are stacked
    and a conv's kernel is flattened into its input axis); every weight or bias we draw is one of theirs."""
    used = set()
    for name, p in model.named_parameters():
        ids = _ours(name, stacks, stack_arch)
        rows = [layout.index(i) for i in ids]
        used.update(ids)
        shape = [s for s in p.shape]
        while len(shape) > 1 and shape[0] == 1:      # (1, 1, d) class tokens, (1, n, d) position tables
            shape = shape[1:]
        r, c = layout.rows[rows], layout.cols[rows]
        if len(shape) == 0:
            assert (int(r.sum()), int(c[0])) == (1, 1), name
        elif len(shape) == 1:
            assert (r == 1).all() and int(c.sum()) == shape[0], (name, shape, ids)
        else:
            assert int(r.sum()) == shape[0] and (c == math.prod(shape[1:])).all(), (name, shape, ids)
        if ids[0].endswith("embed.pos") and layout.kind[rows[0]] == KIND_BUFFER:
            assert ids[0] in buffers, name                 # a table transformers stores, openai/whisper buffers
    learned = {layout.ids[i] for i in np.flatnonzero(np.isin(layout.kind, (KIND_WEIGHT, KIND_BIAS)))}
    tied = {"lm_head.weight"} if "lm_head.weight" in learned and "lm_head.weight" not in used else set()
    assert learned - used == tied


def _meta(cls, config):
    with torch.device("meta"):
        return cls(config)


def _stack_archs(spec):
    from llmviz.scenes.layout_blocks import as_architecture

    out = {"": spec.architecture}
    for c in spec.architecture.components:
        if isinstance(c, EncoderComponent):
            out[c.name + "."] = as_architecture(c)
    return out


def test_whisper_base_matches_transformers():
    spec = REGISTRY.get("whisper-base")
    config = transformers.WhisperConfig(
        vocab_size=51865, num_mel_bins=80, d_model=512, encoder_layers=6, decoder_layers=6,
        encoder_attention_heads=8, decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048,
        max_source_positions=1500, max_target_positions=448)
    model = _meta(transformers.WhisperForConditionalGeneration, config)
    layout = layout_model(spec)
    _compare(layout, model, {"model.encoder.": "audio."}, _stack_archs(spec), buffers={"audio.embed.pos"})


def test_clip_vit_l_14_matches_transformers():
    spec = REGISTRY.get("clip-vit-l-14")
    config = transformers.CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                         num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu"),
        vision_config=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                           image_size=224, patch_size=14, hidden_act="quick_gelu"),
        projection_dim=768)
    model = _meta(transformers.CLIPModel, config)
    _compare(layout_model(spec), model, {"vision_model.": "vision.", "visual_projection": "vision."},
             _stack_archs(spec))


def test_llava_1_5_7b_matches_transformers():
    spec = REGISTRY.get("llava-1.5-7b")
    config = transformers.LlavaConfig(
        vision_config=transformers.CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                                    num_attention_heads=16, image_size=336, patch_size=14),
        text_config=transformers.LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                                             num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                                             max_position_embeddings=2048),
        projector_hidden_act="gelu", vision_feature_layer=-2)
    model = _meta(transformers.LlavaForConditionalGeneration, config)
    _compare(layout_model(spec), model, {"vision_tower.": "vision.", "multi_modal_projector.": "projector."},
             _stack_archs(spec))


def test_paligemma_3b_matches_transformers():
    spec = REGISTRY.get("paligemma-3b-224")
    config = transformers.PaliGemmaConfig(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=1152, intermediate_size=4304,
                           num_hidden_layers=27, num_attention_heads=16, image_size=224, patch_size=14,
                           vision_use_head=False),
        text_config=dict(model_type="gemma", vocab_size=257152, hidden_size=2048, intermediate_size=16384,
                         num_hidden_layers=18, num_attention_heads=8, num_key_value_heads=1, head_dim=256),
        projection_dim=2048)
    model = _meta(transformers.PaliGemmaForConditionalGeneration, config)
    _compare(layout_model(spec), model, {"vision_tower.": "vision.", "multi_modal_projector.": "projector."},
             _stack_archs(spec))


def test_vit_b_16_matches_transformers():
    spec = REGISTRY.get("vit-b-16")
    config = transformers.ViTConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                    intermediate_size=3072, image_size=224, patch_size=16, num_labels=1000)
    model = _meta(transformers.ViTForImageClassification, config)
    _compare(layout_model(spec), model, {}, _stack_archs(spec))


def test_llava_projector_reads_the_vision_layer_transformers_names():
    """LlavaConfig's vision_feature_layer (-2: the output of the layer before the last, hidden_states[-2])
    is the block the projector's input is linked to, not the tower's final norm."""
    import transformers

    from llmviz.models.registry import builtin_specs
    from llmviz.scenes.layout import layout_model

    spec = next(s for s in builtin_specs() if s.id == "llava-1.5-7b")
    tower = next(c for c in spec.architecture.components if getattr(c, "role", "") == "vision-encoder")
    feature_layer = transformers.LlavaConfig().vision_feature_layer
    layout = layout_model(spec)
    assert layout.links["projector_in"] == f"vision.blocks.{tower.n_layers + feature_layer}.resid2"
    layout.index(layout.links["projector_in"])  # a block the layout draws


def test_a_feature_layer_outside_the_tower_is_a_clear_error():
    import json

    from importlib import resources

    from llmviz.models.spec import SpecError, parse_spec

    data = json.loads(resources.files("llmviz.models.specs").joinpath("llava-1.5-7b.json").read_text())
    data["architecture"]["components"][0]["feature_layer"] = -30
    with pytest.raises(SpecError, match="feature_layer"):
        parse_spec(data, "llava.json")
