"""Our trained small models written out in transformers' format: a folder with config.json and
model.safetensors that `AutoModelForCausalLM.from_pretrained(folder)` loads and that computes
the logits our simulation computes.

One table entry per exportable model says which transformers architecture it is exactly, how
the config's fields come from our spec, and how our parameter names map onto transformers'
(with the transposes GPT-2's Conv1D needs). A model is only listed when it *is* that
architecture; the spec is checked against the architecture's requirements before anything is
written. Writing needs neither transformers nor a network: config.json is plain JSON.

nano-gpt is GPT2LMHeadModel; vit-tiny is ViTForImageClassification; llava-tiny is LlavaForConditionalGeneration; induction-2l is SmolLM3ForCausalLM; jamba-tiny is JambaForCausalLM; mamba2-tiny is Mamba2ForCausalLM, rwkv-tiny RwkvForCausalLM and mamba-tiny is
MambaForCausalLM (it is built as one, so its names
map onto themselves). Models with weights but no exact transformers class (moe-4, moe-8) and models that are
structure only (no weights) raise ExportError, one line saying which model, why and what can
be exported. The folder appears whole or not at all (llmviz.common.atomic for every file).
"""
from __future__ import annotations

import contextlib
import importlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from llmviz.common.atomic import atomic_path, write_atomic

CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"
OUTPUT_FILES = (CONFIG_FILE, WEIGHTS_FILE)
MAX_PATH_CHARS = 4096  # PATH_MAX on Linux: longer is a mistake, not a folder


class ExportError(ValueError):
    """A model or folder that cannot be exported to: one line, naming the model or the folder."""


@dataclass(frozen=True)
class Architecture:
    """One transformers architecture, as data: what a spec must be, its config, its tensor names."""
    model_type: str
    config_class: str
    model_class: str
    # spec.architecture field -> the value it must have for the model to be exactly this architecture
    requires: dict
    # transformers config field -> spec.architecture field it is read from
    config_from_spec: dict
    # transformers config field -> attribute of the loaded model's cfg (what the spec does not hold)
    config_from_model: dict
    # transformers config fields fixed by this architecture as we build it
    config_constants: dict
    # (our state_dict name, transformers' name, transpose); "{i}" stands for the layer index
    tensors: tuple
    layer_tensors: tuple
    # files beside config.json: (name, "module:function" of the loaded model returning the file's JSON object)
    extra_files: tuple = ()
    auto_class: str = "AutoModelForCausalLM"  # the transformers Auto class that loads the folder
    # "module:function" of (spec, loaded model) returning config.json whole, for a nested config (CLIP's two
    # towers) that the flat tables above cannot say; it checks the spec against the weights itself
    config_maker: str = ""
    # tensors written that are fixed buffers, not parameters (Whisper's sinusoidal encoder positions): outside
    # the spec's parameter count
    buffer_tensors: tuple = ()


_GPT2_LAYER = tuple(
    [(f"blocks.{{i}}.{ours}.{p}", f"transformer.h.{{i}}.{theirs}.{p}", False)
     for ours, theirs in (("ln1", "ln_1"), ("ln2", "ln_2")) for p in ("weight", "bias")]
    # GPT-2's Conv1D stores its weight as (in, out), the transpose of nn.Linear's (out, in).
    + [(f"blocks.{{i}}.{ours}.{p}", f"transformer.h.{{i}}.{theirs}.{p}", p == "weight")
       for ours, theirs in (("attn.qkv", "attn.c_attn"), ("attn.proj", "attn.c_proj"),
                            ("mlp.fc", "mlp.c_fc"), ("mlp.proj", "mlp.c_proj"))
       for p in ("weight", "bias")])

GPT2 = Architecture(
    model_type="gpt2", config_class="GPT2Config", model_class="GPT2LMHeadModel",
    requires={"kind": "decoder-only", "mixer": "attention", "pos_encoding": "learned", "norm": "layernorm",
              "activation": "gelu_tanh", "bias": True, "key_bias": None, "n_kv_heads": None, "qk_norm": False,
              "causal": True, "pre_norm": False, "final_norm": True, "moe": None, "mla": None,
              "sliding_window": None, "unembedding": "untied", "components": ()},
    config_from_spec={"n_layer": "n_layers", "n_embd": "d_model", "n_head": "n_heads", "n_inner": "d_ff",
                      "vocab_size": "vocab_size", "n_positions": "context_length"},
    config_from_model={"layer_norm_epsilon": "ln_eps"},
    # Our models have no dropout; the vocabulary has no begin/end token (GPT-2's 50256 lies outside it);
    # the unembedding is its own matrix (lm_head.weight is written, not tied to wte).
    config_constants={"activation_function": "gelu_new", "resid_pdrop": 0.0, "embd_pdrop": 0.0,
                      "attn_pdrop": 0.0, "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
                      "reorder_and_upcast_attn": False, "add_cross_attention": False,
                      "bos_token_id": None, "eos_token_id": None, "pad_token_id": None,
                      "tie_word_embeddings": False, "use_cache": True},
    tensors=(("embed.tok.weight", "transformer.wte.weight", False),
             ("embed.pos.weight", "transformer.wpe.weight", False),
             ("ln_f.weight", "transformer.ln_f.weight", False),
             ("ln_f.bias", "transformer.ln_f.bias", False),
             ("lm_head.weight", "lm_head.weight", False)),
    layer_tensors=_GPT2_LAYER)


# Mamba-1 as transformers' MambaForCausalLM: our mamba-tiny *is* that class, so its weights file
# already uses transformers' names; the table maps each onto itself. The head is tied to the
# embedding (tie_word_embeddings), so lm_head.weight is not written: transformers re-ties it.
_MAMBA_LAYER = tuple((f"backbone.layers.{{i}}.{name}", f"backbone.layers.{{i}}.{name}", False)
                     for name in ("norm.weight", "mixer.A_log", "mixer.D", "mixer.conv1d.weight",
                                  "mixer.conv1d.bias", "mixer.in_proj.weight", "mixer.x_proj.weight",
                                  "mixer.dt_proj.weight", "mixer.dt_proj.bias", "mixer.out_proj.weight"))

MAMBA = Architecture(
    model_type="mamba", config_class="MambaConfig", model_class="MambaForCausalLM",
    requires={"kind": "ssm", "mixer": "mamba", "hybrid": None, "pos_encoding": "none", "norm": "rmsnorm",
              "activation": "silu", "pre_norm": False, "final_norm": True, "moe": None, "d_ff": None,
              "unembedding": "tied", "vocab_pad_multiple": 1, "components": (),
              "ssm.proj_bias": False, "ssm.conv_bias": True, "ssm.inner_norms": False},
    config_from_spec={"num_hidden_layers": "n_layers", "hidden_size": "d_model", "vocab_size": "vocab_size",
                      "state_size": "ssm.d_state", "conv_kernel": "ssm.d_conv", "expand": "ssm.expand",
                      "time_step_rank": "ssm.dt_rank"},
    config_from_model={"layer_norm_epsilon": "rms_eps"},
    # The slow torch path (no kernels, no mamba.py), fp32 residuals; the alphabet has no special
    # tokens, newline (0) stands in for pad/bos/eos as in mamba_model.mamba_config.
    config_constants={"use_bias": False, "use_conv_bias": True, "hidden_act": "silu", "residual_in_fp32": True,
                      "rescale_prenorm_residual": False, "use_mambapy": False, "use_associative_scan": False,
                      "tie_word_embeddings": True, "use_cache": True,
                      "pad_token_id": 0, "bos_token_id": 0, "eos_token_id": 0},
    tensors=(("backbone.embeddings.weight", "backbone.embeddings.weight", False),
             ("backbone.norm_f.weight", "backbone.norm_f.weight", False)),
    layer_tensors=_MAMBA_LAYER)


# Mamba-2 as transformers' Mamba2ForCausalLM: mamba2-tiny is built as one (names map onto themselves);
# num_heads and chunk_size come from the weights' config; time_step_limit keeps its default (0, inf).
_MAMBA2_LAYER = tuple((f"backbone.layers.{{i}}.{name}", f"backbone.layers.{{i}}.{name}", False)
                      for name in ("norm.weight", "mixer.dt_bias", "mixer.A_log", "mixer.D",
                                   "mixer.conv1d.weight", "mixer.conv1d.bias", "mixer.in_proj.weight",
                                   "mixer.norm.weight", "mixer.out_proj.weight"))

MAMBA2 = Architecture(
    model_type="mamba2", config_class="Mamba2Config", model_class="Mamba2ForCausalLM",
    requires={"kind": "ssm", "mixer": "mamba2", "hybrid": None, "pos_encoding": "none", "norm": "rmsnorm",
              "activation": "silu", "pre_norm": False, "final_norm": True, "moe": None, "d_ff": None,
              "unembedding": "tied", "vocab_pad_multiple": 1, "components": (),
              "ssm.proj_bias": False, "ssm.conv_bias": True, "ssm.inner_norms": False},
    config_from_spec={"num_hidden_layers": "n_layers", "hidden_size": "d_model", "vocab_size": "vocab_size",
                      "state_size": "ssm.d_state", "conv_kernel": "ssm.d_conv", "expand": "ssm.expand",
                      "head_dim": "ssm.head_dim", "n_groups": "ssm.n_groups"},
    config_from_model={"layer_norm_epsilon": "rms_eps", "num_heads": "n_heads", "chunk_size": "chunk_size"},
    config_constants={"use_bias": False, "use_conv_bias": True, "hidden_act": "silu", "residual_in_fp32": True,
                      "rescale_prenorm_residual": False, "tie_word_embeddings": True, "use_cache": True,
                      "pad_token_id": 0, "bos_token_id": 0, "eos_token_id": 0},
    tensors=(("backbone.embeddings.weight", "backbone.embeddings.weight", False),
             ("backbone.norm_f.weight", "backbone.norm_f.weight", False)),
    layer_tensors=_MAMBA2_LAYER)


# RWKV-4 as transformers' RwkvForCausalLM: rwkv-tiny is built as one (names map onto themselves); its head
# is untied and written.
_RWKV_LAYER = tuple((f"rwkv.blocks.{{i}}.{name}", f"rwkv.blocks.{{i}}.{name}", False) for name in (
    "ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias",
    "attention.time_decay", "attention.time_first", "attention.time_mix_key", "attention.time_mix_value",
    "attention.time_mix_receptance", "attention.key.weight", "attention.value.weight",
    "attention.receptance.weight", "attention.output.weight",
    "feed_forward.time_mix_key", "feed_forward.time_mix_receptance", "feed_forward.key.weight",
    "feed_forward.receptance.weight", "feed_forward.value.weight"))

# transformers RwkvConfig fields that are constants of rwkv-tiny (models/sim/rwkv_model.py builds with them).
RWKV_CONSTANTS = {
    # no halving of the hidden state every few layers at inference (transformers' default 6 would
    # divide weights in place when switching to eval; with 2 layers it would be a no-op, but 0 says so)
    "rescale_every": 0,
    "tie_word_embeddings": False,   # RWKV-4's head is its own matrix
    "use_cache": True,
    # the alphabet has no special tokens: newline (0) stands in so generate() has something
    "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0}

RWKV = Architecture(
    model_type="rwkv", config_class="RwkvConfig", model_class="RwkvForCausalLM",
    requires={"kind": "ssm", "mixer": "rwkv4", "hybrid": None, "pos_encoding": "none", "norm": "layernorm",
              "activation": "relu2", "bias": False, "pre_norm": False, "final_norm": True, "moe": None,
              "unembedding": "untied", "vocab_pad_multiple": 1, "components": ()},
    config_from_spec={"num_hidden_layers": "n_layers", "hidden_size": "d_model",
                      "attention_hidden_size": "d_model", "intermediate_size": "d_ff",
                      "vocab_size": "vocab_size", "context_length": "context_length"},
    config_from_model={"layer_norm_epsilon": "ln_eps"},
    config_constants=RWKV_CONSTANTS,
    tensors=(("rwkv.embeddings.weight", "rwkv.embeddings.weight", False),
             # RWKV's LayerNorm after the embedding: ours is ln0, transformers keeps it in block 0
             ("rwkv.blocks.0.pre_ln.weight", "rwkv.blocks.0.pre_ln.weight", False),
             ("rwkv.blocks.0.pre_ln.bias", "rwkv.blocks.0.pre_ln.bias", False),
             ("rwkv.ln_out.weight", "rwkv.ln_out.weight", False),
             ("rwkv.ln_out.bias", "rwkv.ln_out.bias", False),
             ("head.weight", "head.weight", False)),
    layer_tensors=_RWKV_LAYER)


# jamba-tiny as transformers' JambaForCausalLM: built as one, so names map onto themselves. Its layers differ
# (Mamba or attention, MLP or MoE), so the table names every tensor of its pattern, which `requires` pins;
# Jamba needs the experts as wide as the dense MLPs, which the table cannot express, so the width is pinned too.
_JAMBA_PERIOD = ("mamba", "mamba", "attention", "mamba")


def _jamba_names() -> tuple[str, ...]:
    mamba = ("A_log", "D", "conv1d.weight", "conv1d.bias", "in_proj.weight", "x_proj.weight", "dt_proj.weight",
             "dt_proj.bias", "out_proj.weight", "dt_layernorm.weight", "b_layernorm.weight", "c_layernorm.weight")
    attention = ("q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight")
    mlp, moe = ("gate_proj.weight", "up_proj.weight", "down_proj.weight"), \
        ("router.weight", "experts.gate_up_proj", "experts.down_proj")
    names = ["model.embed_tokens.weight", "model.final_layernorm.weight", "lm_head.weight"]
    for i, mixer in enumerate(_JAMBA_PERIOD):
        p = f"model.layers.{i}"
        names += ([f"{p}.self_attn.{n}" for n in attention] if mixer == "attention"
                  else [f"{p}.mamba.{n}" for n in mamba])
        names += [f"{p}.feed_forward.{n}" for n in (moe if i % 2 == 1 else mlp)]
        names += [f"{p}.input_layernorm.weight", f"{p}.pre_ff_layernorm.weight"]
    return tuple(names)


JAMBA = Architecture(
    model_type="jamba", config_class="JambaConfig", model_class="JambaForCausalLM",
    requires={"kind": "hybrid", "hybrid.period": _JAMBA_PERIOD, "pos_encoding": "none", "norm": "rmsnorm",
              "activation": "swiglu", "bias": False, "qk_norm": False, "head_dim": None, "mla": None,
              "sliding_window": None, "unembedding": "untied", "vocab_pad_multiple": 1, "components": (),
              "ssm.proj_bias": False, "ssm.conv_bias": True, "ssm.inner_norms": True,
              "moe.routing": "softmax-topk", "moe.n_shared_experts": 0, "moe.router_bias": False,
              "moe.expert_d_ff": 128, "moe.layers.stop": None},
    config_from_spec={"num_hidden_layers": "n_layers", "hidden_size": "d_model", "intermediate_size": "d_ff",
                      "num_attention_heads": "n_heads", "num_key_value_heads": "n_kv_heads",
                      "vocab_size": "vocab_size", "num_experts": "moe.n_experts",
                      "num_experts_per_tok": "moe.top_k", "expert_layer_offset": "moe.layers.start",
                      "expert_layer_period": "moe.layers.step", "router_aux_loss_coef": "moe.aux_loss_coef",
                      "mamba_d_state": "ssm.d_state", "mamba_d_conv": "ssm.d_conv",
                      "mamba_expand": "ssm.expand", "mamba_dt_rank": "ssm.dt_rank"},
    config_from_model={"rms_norm_eps": "rms_eps", "attn_layer_period": "attn_layer_period",
                       "attn_layer_offset": "attn_layer_offset"},
    config_constants={"hidden_act": "silu", "mamba_conv_bias": True, "mamba_proj_bias": False,
                      "tie_word_embeddings": False, "attention_dropout": 0.0, "max_position_embeddings": 64,
                      "use_mamba_kernels": False, "use_mambapy": False, "use_associative_scan": False,
                      "use_cache": True, "pad_token_id": None, "bos_token_id": 0, "eos_token_id": 0},
    tensors=tuple((n, n, False) for n in _jamba_names()), layer_tensors=())


# induction-2l as transformers' SmolLM3ForCausalLM: built as one (names map onto themselves), the head tied.
# Layer 0 rotates inside a sliding window, layer 1 has no RoPE: fields of the weights' config, not the spec's.
_SMOLLM3_LAYER = tuple((f"model.layers.{{i}}.{name}", f"model.layers.{{i}}.{name}", False) for name in (
    "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
    "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight", "input_layernorm.weight",
    "post_attention_layernorm.weight"))

SMOLLM3 = Architecture(
    model_type="smollm3", config_class="SmolLM3Config", model_class="SmolLM3ForCausalLM",
    requires={"kind": "decoder-only", "mixer": "attention", "pos_encoding": "rope", "norm": "rmsnorm",
              "activation": "swiglu", "bias": False, "n_kv_heads": None, "head_dim": None, "qk_norm": False,
              "moe": None, "mla": None, "sliding_window": None, "unembedding": "tied", "vocab_pad_multiple": 1,
              "components": ()},
    config_from_spec={"num_hidden_layers": "n_layers", "hidden_size": "d_model", "num_attention_heads": "n_heads",
                      "num_key_value_heads": "n_heads", "intermediate_size": "d_ff", "vocab_size": "vocab_size"},
    config_from_model={"rms_norm_eps": "rms_eps", "sliding_window": "window", "no_rope_layers": "no_rope_layers",
                       "layer_types": "layer_types", "rope_parameters": "rope_parameters"},
    config_constants={"hidden_act": "silu", "use_sliding_window": True, "attention_bias": False, "mlp_bias": False,
                      "attention_dropout": 0.0, "max_position_embeddings": 1 << 20, "tie_word_embeddings": True,
                      "use_cache": True, "pad_token_id": 0, "bos_token_id": 0, "eos_token_id": 0},
    tensors=(("model.embed_tokens.weight", "model.embed_tokens.weight", False),
             ("model.norm.weight", "model.norm.weight", False)),
    layer_tensors=_SMOLLM3_LAYER)


# vit-tiny as transformers' ViTForImageClassification: built as one (names map onto themselves), with a
# preprocessor_config.json so ViTImageProcessor.from_pretrained(folder) prepares pictures as vit_image does.
_VIT_LAYER = tuple((f"vit.layers.{{i}}.{name}", f"vit.layers.{{i}}.{name}", False) for name in (
    *(f"attention.{p}_proj.{w}" for p in "qkvo" for w in ("weight", "bias")),
    *(f"{n}.{w}" for n in ("layernorm_before", "layernorm_after", "mlp.fc1", "mlp.fc2") for w in ("weight", "bias"))))

VIT = Architecture(
    model_type="vit", config_class="ViTConfig", model_class="ViTForImageClassification",
    requires={"kind": "multimodal", "pos_encoding": "learned", "norm": "layernorm", "activation": "gelu",
              "bias": True, "causal": False, "input.type": "patches", "input.cls_token": True},
    config_from_spec={"num_hidden_layers": "n_layers", "hidden_size": "d_model", "num_attention_heads": "n_heads",
                      "intermediate_size": "d_ff", "image_size": "input.image_size",
                      "patch_size": "input.patch_size"},
    config_from_model={"layer_norm_eps": "ln_eps", "num_channels": "n_channels", "id2label": "id2label",
                       "label2id": "label2id"},
    config_constants={"hidden_act": "gelu", "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
                      "qkv_bias": True, "encoder_stride": 4, "pooler_output_size": None, "pooler_act": "tanh"},
    tensors=tuple((n, n, False) for n in (
        "vit.embeddings.cls_token", "vit.embeddings.position_embeddings",
        "vit.embeddings.patch_embeddings.projection.weight", "vit.embeddings.patch_embeddings.projection.bias",
        "vit.layernorm.weight", "vit.layernorm.bias", "classifier.weight", "classifier.bias")),
    layer_tensors=_VIT_LAYER,
    extra_files=(("preprocessor_config.json", "llmviz.models.sim.vit_model:preprocessor_config"),),
    auto_class="AutoModelForImageClassification")


# clip-tiny as transformers' CLIPModel: built as one (names map onto themselves; {i} runs over both towers'
# layers, which clip_model keeps equal in number), with its image processor's and its word-level tokenizer's files.
_CLIP_LAYER = tuple((f"{tower}.encoder.layers.{{i}}.{name}", f"{tower}.encoder.layers.{{i}}.{name}", False)
                    for tower in ("vision_model", "text_model") for name in (
    *(f"self_attn.{p}_proj.{w}" for p in ("q", "k", "v", "out") for w in ("weight", "bias")),
    *(f"{n}.{w}" for n in ("layer_norm1", "layer_norm2", "mlp.fc1", "mlp.fc2") for w in ("weight", "bias"))))

CLIP = Architecture(
    model_type="clip", config_class="CLIPConfig", model_class="CLIPModel",
    requires={"kind": "multimodal", "fusion": "contrastive", "pos_encoding": "learned", "norm": "layernorm",
              "activation": "gelu", "bias": True},
    config_from_spec={}, config_from_model={}, config_constants={},
    tensors=tuple((n, n, False) for n in (
        "vision_model.embeddings.class_embedding", "vision_model.embeddings.patch_embedding.weight",
        "vision_model.embeddings.position_embedding.weight", "vision_model.pre_layrnorm.weight",
        "vision_model.pre_layrnorm.bias", "vision_model.post_layernorm.weight", "vision_model.post_layernorm.bias",
        "text_model.embeddings.token_embedding.weight", "text_model.embeddings.position_embedding.weight",
        "text_model.final_layer_norm.weight", "text_model.final_layer_norm.bias", "visual_projection.weight",
        "text_projection.weight", "logit_scale")),
    layer_tensors=_CLIP_LAYER,
    extra_files=(("preprocessor_config.json", "llmviz.models.sim.clip_model:preprocessor_config"),
                 ("tokenizer.json", "llmviz.models.sim.clip_vocab:tokenizer_json"),
                 ("tokenizer_config.json", "llmviz.models.sim.clip_vocab:tokenizer_config"),
                 ("special_tokens_map.json", "llmviz.models.sim.clip_vocab:special_tokens_map")),
    auto_class="CLIPModel", config_maker="llmviz.models.sim.clip_model:hf_config_json")


# llava-tiny as transformers' LlavaForConditionalGeneration: built as one (names map onto themselves). Its two
# configs (CLIP vision, Llama text) come whole from the weights' config; the folder also holds the word-level
# tokenizer, the image processor and LlavaProcessor's fields, so AutoProcessor.from_pretrained(folder) works.
def _llava_names() -> tuple[str, ...]:
    from llmviz.models.sim.llava_model import state_shapes

    return tuple(state_shapes())


def _llava_constants() -> dict:
    from llmviz.models.sim.llava_model import LLAVA_CONSTANTS

    return dict(LLAVA_CONSTANTS)


_LLAVA_FILES = "llmviz.models.sim.llava_model:"
LLAVA = Architecture(
    model_type="llava", config_class="LlavaConfig", model_class="LlavaForConditionalGeneration",
    requires={"kind": "multimodal", "fusion": "prefix-tokens", "pos_encoding": "rope", "norm": "rmsnorm",
              "activation": "swiglu", "unembedding": "untied"},
    config_from_spec={},
    config_from_model={"vision_config": "vision_config", "text_config": "text_config",
                       "image_token_id": "image_token_id", "image_seq_length": "n_image_tokens",
                       "vision_feature_layer": "feature_layer"},
    config_constants=_llava_constants(), tensors=tuple((n, n, False) for n in _llava_names()), layer_tensors=(),
    extra_files=tuple((f"{name}.json", _LLAVA_FILES + function) for name, function in (
        ("preprocessor_config", "preprocessor_config"), ("processor_config", "processor_config"),
        ("tokenizer", "tokenizer_json"), ("tokenizer_config", "tokenizer_config"),
        ("generation_config", "generation_config"))),
    auto_class="AutoModelForImageTextToText")


# whisper-tiny as transformers' WhisperForConditionalGeneration: built as one (names map onto themselves, the
# tied proj_out written once as the embedding), with WhisperFeatureExtractor's preprocessor_config.json, the
# digit tokenizer and the generation config holding the alignment heads.
def _whisper_names() -> tuple[str, ...]:
    from llmviz.models.sim.whisper_model import state_shapes

    return tuple(state_shapes())


_WHISPER_FILES = "llmviz.models.sim.whisper_model:"
WHISPER = Architecture(
    model_type="whisper", config_class="WhisperConfig", model_class="WhisperForConditionalGeneration",
    requires={"kind": "encoder-decoder", "fusion": "cross-attention", "norm": "layernorm", "activation": "gelu",
              "unembedding": "tied"},
    config_from_spec={}, config_from_model={}, config_constants={},
    tensors=tuple((n, n, False) for n in _whisper_names()), layer_tensors=(),
    extra_files=tuple((f"{name}.json", _WHISPER_FILES + function) for name, function in (
        ("preprocessor_config", "export_preprocessor_config"), ("tokenizer", "tokenizer_json"),
        ("tokenizer_config", "tokenizer_config"), ("generation_config", "generation_config_json"))),
    auto_class="WhisperForConditionalGeneration", config_maker=_WHISPER_FILES + "hf_config_json",
    buffer_tensors=("model.encoder.embed_positions.weight",))


@dataclass(frozen=True)
class Exportable:
    architecture: Architecture
    loader: str  # "module:function" returning the trained torch model (imported only when exporting)


# Every model that exports. New small models are built to be exactly a transformers architecture
# and join this table with theirs.
EXPORTABLE = {
    "nano-gpt": Exportable(GPT2, "llmviz.models.sim.nanogpt:load_nanogpt"),
    "mamba-tiny": Exportable(MAMBA, "llmviz.models.sim.mamba_model:load_weights"),
    "mamba2-tiny": Exportable(MAMBA2, "llmviz.models.sim.mamba2_model:load_weights"),
    "rwkv-tiny": Exportable(RWKV, "llmviz.models.sim.rwkv_model:load_weights"),
    "jamba-tiny": Exportable(JAMBA, "llmviz.models.sim.jamba_model:load_weights"),
    "induction-2l": Exportable(SMOLLM3, "llmviz.models.sim.induction_model:load_weights"),
    "vit-tiny": Exportable(VIT, "llmviz.models.sim.vit_model:load_weights"),
    "llava-tiny": Exportable(LLAVA, "llmviz.models.sim.llava_model:load_weights"),
    "clip-tiny": Exportable(CLIP, "llmviz.models.sim.clip_model:load_weights"),
    "whisper-tiny": Exportable(WHISPER, "llmviz.models.sim.whisper_model:load_weights"),
}

# Models with trained weights that no transformers class computes exactly.
_MOE_REASON = ("no transformers class computes it exactly: its Mixtral-style experts sit in a GPT with learned "
               "positions, LayerNorm and attention biases, where Mixtral has rotary positions, RMSNorm and "
               "no biases")
NOT_EXACT = {"moe-4": _MOE_REASON, "moe-8": _MOE_REASON}


@dataclass
class Exported:
    """What was written: the folder, each file with its size, the parameters and how to load them."""
    model_id: str
    folder: Path
    model_class: str
    files: list = field(default_factory=list)  # (name, bytes)
    parameters: int = 0
    auto_class: str = "AutoModelForCausalLM"

    @property
    def load_line(self) -> str:
        return (f"from transformers import {self.auto_class}; "
                f"model = {self.auto_class}.from_pretrained({str(self.folder)!r})")


# ---- which model ---------------------------------------------------------------------------

def exportable_ids() -> list[str]:
    return list(EXPORTABLE)


def resolve(model_id: str, registry=None):
    """(spec, Exportable) for a model that exports; ExportError saying why for any other."""
    from llmviz.models.registry import UnknownModelError, load_registry

    registry = registry if registry is not None else load_registry()
    can = f"exportable: {', '.join(EXPORTABLE)}"
    try:
        spec = registry.get(model_id)
    except UnknownModelError as err:
        raise ExportError(f"{err}; {can}") from None
    if spec.id in NOT_EXACT:
        raise ExportError(f"cannot export {spec.id}: {NOT_EXACT[spec.id]}; {can}")
    if spec.id not in EXPORTABLE:
        raise ExportError(f"cannot export {spec.id}: it is structure only (llmviz has no trained weights for it); "
                          f"{can}")
    entry = EXPORTABLE[spec.id]
    for name, wanted in entry.architecture.requires.items():
        got = spec.kind if name == "kind" else _spec_field(spec.architecture, name)
        if got != wanted:
            raise ExportError(f"cannot export {spec.id}: its spec has {name} = {got!r}, but "
                              f"{entry.architecture.model_class} needs {wanted!r}")
    return spec, entry


def _spec_field(arch, name: str):
    """A spec.architecture field by dotted name ("ssm.d_state"); None below a missing section."""
    value = arch
    for part in name.split("."):
        value = getattr(value, part, None) if value is not None else None
    return value


# ---- what is written -----------------------------------------------------------------------

def hf_config(spec, entry: Exportable, model) -> dict:
    """config.json's fields: the architecture's constants, the spec's shape, the model's epsilon."""
    arch, sa = entry.architecture, spec.architecture
    if arch.config_maker:
        module, function = arch.config_maker.split(":")
        return getattr(importlib.import_module(module), function)(spec, model)
    if sa.n_heads is not None and sa.head_dim not in (None, sa.d_model // sa.n_heads):
        raise ExportError(f"cannot export {spec.id}: head_dim {sa.head_dim} is not "
                          f"d_model / n_heads, which {arch.model_class} assumes")
    config = {"architectures": [arch.model_class], "model_type": arch.model_type}
    for theirs, ours in arch.config_from_spec.items():
        value = _spec_field(sa, ours)
        # the loaded model's config names a field as the spec's last part does (ssm.d_state: d_state)
        built = getattr(model.cfg, ours.rsplit(".", 1)[-1], value)
        if built != value:  # the weights and the spec must describe one model
            raise ExportError(f"cannot export {spec.id}: the spec says {ours} = {value}, its weights {built}")
        config[theirs] = value
    config.update({theirs: getattr(model.cfg, ours) for theirs, ours in arch.config_from_model.items()})
    config.update(arch.config_constants)
    return config


def hf_tensors(entry: Exportable, model) -> dict:
    """transformers' name -> contiguous float32 tensor; every parameter mapped exactly once."""
    arch = entry.architecture
    names = list(arch.tensors) + [(o.format(i=i), t.format(i=i), tr)
                                   for i in range(model.cfg.n_layers) for o, t, tr in arch.layer_tensors]
    state = {k: v.detach() for k, v in model.state_dict().items()}
    unmapped = sorted(set(state) - {o for o, _, _ in names})
    if unmapped:
        raise ExportError(f"cannot export: {unmapped[0]!r} has no {arch.model_class} name")
    absent = [o for o, _, _ in names if o not in state]
    if absent:
        raise ExportError(f"cannot export: the table names {absent[0]!r}, which the model does not have")
    out = {}
    for ours, theirs, transpose in names:
        tensor = state[ours].float()
        out[theirs] = (tensor.T if transpose else tensor).contiguous().clone()
    return out


def build_files(spec, entry: Exportable) -> tuple[dict, int]:
    """({file name: bytes}, parameter count) for one model, its trained weights loaded."""
    import torch
    from safetensors.torch import save

    from llmviz.models.params import count_params

    module, function = entry.loader.split(":")
    with torch.inference_mode():
        model = getattr(importlib.import_module(module), function)()
    config = hf_config(spec, entry, model)
    tensors = hf_tensors(entry, model)
    parameters = sum(t.numel() for n, t in tensors.items() if n not in entry.architecture.buffer_tensors)
    counted = count_params(spec).total
    if parameters != counted:
        raise ExportError(f"cannot export {spec.id}: {parameters:,} parameters written, the spec counts {counted:,}")
    # "format": "pt" is what transformers' loader looks for in a safetensors file's metadata.
    weights = save(tensors, metadata={"format": "pt", "llmviz_model": spec.id})
    files = {CONFIG_FILE: (json.dumps(config, indent=2, sort_keys=True) + "\n").encode("utf-8"),
             WEIGHTS_FILE: weights}
    for name, maker in entry.architecture.extra_files:
        module, function = maker.split(":")
        made = getattr(importlib.import_module(module), function)(model)
        files[name] = (json.dumps(made, indent=2, sort_keys=True) + "\n").encode("utf-8")
    return files, parameters


# ---- where it is written -------------------------------------------------------------------

def check_folder(folder, force: bool = False) -> Path:
    """The absolute folder, if it can receive the export: its parent exists, and it is missing, empty,
    or (with force) a folder whose files of those names are regular files."""
    text = os.fspath(folder)
    if not text or "\0" in text or len(text) > MAX_PATH_CHARS:
        raise ExportError("the output folder needs a name of 1 to 4096 characters without NUL")
    path = Path(os.path.abspath(text))
    if not path.parent.is_dir():
        raise ExportError(f"folder {str(path.parent)!r} does not exist (export-hf makes only the last folder)")
    if path.exists() and not path.is_dir():
        raise ExportError(f"{str(path)!r} exists and is not a folder")
    if path.is_dir() and not _is_empty(path):
        clash = [name for name in OUTPUT_FILES if os.path.lexists(path / name)]
        if not force:
            hit = (f"would overwrite {', '.join(clash)}" if clash
                   else f"would add {', '.join(OUTPUT_FILES)} beside its files")
            raise ExportError(f"{str(path)!r} is not empty; the export {hit}; pass --force to write into it")
        odd = [name for name in clash if not (path / name).is_file() or (path / name).is_symlink()]
        if odd:
            raise ExportError(f"{str(path / odd[0])!r} is not a regular file; it would not be replaced")
    return path


def _is_empty(path: Path) -> bool:
    with os.scandir(path) as entries:  # one entry is enough to know (a huge folder is not listed)
        return next(entries, None) is None


def write_folder(path: Path, files: dict) -> None:
    """Writes the files so that the folder is whole or untouched.

    A missing or empty folder is staged as a hidden sibling and renamed into place in one step. A
    non-empty folder (--force) gets every file written to a temporary beside it first, then each
    renamed over its target; any failure before that removes the temporaries and leaves it as it was.
    """
    if path.is_dir() and not _is_empty(path):
        with contextlib.ExitStack() as stack:
            temporaries = [(stack.enter_context(atomic_path(path / name)), data) for name, data in files.items()]
            for tmp, data in temporaries:
                tmp.write_bytes(data)
        return
    stage = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        for name, data in files.items():
            write_atomic(stage / name, data)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(stage, (path.stat().st_mode & 0o7777) if path.is_dir() else 0o777 & ~mask)
        os.rename(stage, path)  # replaces an empty folder; fails, leaving it, if one appeared with files
    except BaseException:
        for name in files:
            with contextlib.suppress(OSError):
                os.unlink(stage / name)
        with contextlib.suppress(OSError):
            os.rmdir(stage)
        raise


def export(model_id: str, folder, force: bool = False, registry=None) -> Exported:
    """Writes MODEL to FOLDER in transformers' format; ExportError for a model or folder that cannot be."""
    spec, entry = resolve(model_id, registry)
    path = check_folder(folder, force)
    files, parameters = build_files(spec, entry)
    write_folder(path, files)
    return Exported(spec.id, path, entry.architecture.model_class,
                    [(name, len(data)) for name, data in files.items()], parameters,
                    entry.architecture.auto_class)
