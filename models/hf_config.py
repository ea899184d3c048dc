"""Hugging Face config.json -> ModelSpec: the importer behind `llmviz models --import-config`.

`MODEL_TYPES` is the data: one entry per `model_type`, naming the config keys each value is read
from (a rename) and what every model of the type has (fixed fields, which projections carry
biases). The small functions after it do only what is not a rename: nested text/vision configs,
Whisper's two stacks, the SSM and hybrid layer patterns, MLA and MoE layer sets, shared experts.

Only files on disk are read (no network, no transformers import): a folder means its
config.json, a file over MAX_CONFIG_BYTES is refused before it is parsed, and every problem is one
SpecError naming the file and the config key (or model_type) at fault. A top-level key the type
needs is required: `save_pretrained` writes every key of the config class. Inside text_config and
vision_config, transformers 4.x left out keys equal to the sub-config class's defaults, so there a
missing key takes that class's default (`NESTED_DEFAULTS`, the values of transformers' own config
classes) and the spec's notes list each default used. What the spec format cannot express (biases
on only some projections, Qwen2-MoE's shared-expert gate, per-layer sliding windows, ...) is said
in the notes, with the parameters it leaves out, never dropped silently.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import stat
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from llmviz.common.text import nesting_depth, one_line

from .spec import MAX_LIST, ModelSpec, SpecError, Stack, parse_spec

MAX_CONFIG_BYTES = 4 << 20      # real config.json files are under 100 KB; label maps stay far below
MAX_NESTING = 32                # objects inside objects; a config needs 3
CONFIG_NAME = "config.json"
_LAYER_LIMIT = next(f for f in dataclasses.fields(Stack) if f.name == "n_layers").metadata["max"]
_HUGE_INT = 2 ** 40             # beyond any real size; keeps the arithmetic below small
REQUIRED = object()


# ---------------------------------------------------------------- reading one config object

class _Config:
    """One config object (the file's, or a nested text_config / vision_config) and its file."""

    def __init__(self, data: dict, file: str, prefix: str = "", defaults: dict | None = None,
                 notes: list[str] | None = None, origins: dict | None = None):
        self.data, self.file, self.prefix = data, file, prefix
        self.defaults = defaults or {}          # key -> default when the key is absent
        # Shared with the nested configs: what the spec should say, and which config key each
        # value came from ((scope, name) -> key), so a rule the spec breaks names the key.
        self.notes = notes if notes is not None else []
        self.origins = origins if origins is not None else {}
        self.scope = "component" if prefix.startswith("vision_config") else "main"

    def where(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def fail(self, key: str | None, message: str) -> typing.NoReturn:
        raise SpecError(self.file, self.where(key) if key else (self.prefix.rstrip(".") or None),
                        message)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def read(self, keys: str | tuple[str, ...], kind: str, default: object = REQUIRED) -> object:
        """The value of the first of ``keys`` present (JSON null counts as absent), checked
        against ``kind``; else the nested-config default, else ``default``, else an error."""
        spellings = (keys,) if isinstance(keys, str) else keys
        for key in spellings:
            if self.data.get(key) is not None:
                return _check(self, key, self.data[key], kind)
        for key in spellings:
            if key in self.defaults:
                value = self.defaults[key]
                note = (f"{self.where(key)} is not in the file; transformers' default "
                        f"{json.dumps(value)} is used")
                if note not in self.notes:      # a family may read a key twice
                    self.notes.append(note)
                return value
        if default is REQUIRED:
            self.fail(spellings[0], "required key is missing" if spellings[0] not in self.data
                      else "required key is null")
        return default

    def values(self, keys: dict[str, tuple]) -> dict[str, object]:
        """Read a table of name -> (config key or spellings, kind[, default])."""
        values = {}
        for name, entry in keys.items():
            values[name] = self.read(*entry)
            spellings = (entry[0],) if isinstance(entry[0], str) else entry[0]
            present = next((key for key in spellings if self.has(key)), spellings[0])
            self.origins.setdefault((self.scope, name), self.where(present))
        return values

    def sub(self, key: str, default_type: str | None = None) -> tuple["_Config", str]:
        """A nested config and its model_type (``default_type`` when the file names none)."""
        data = self.data.get(key)
        if data is None:
            self.fail(key, "required key is missing" if key not in self.data else "required key is null")
        if not isinstance(data, dict):
            self.fail(key, f"expected an object, got {_describe(data)}")
        model_type = data.get("model_type", default_type)
        if not isinstance(model_type, str):
            self.fail(f"{key}.model_type", "required key is missing" if model_type is None
                      else f"expected a string, got {_describe(model_type)}")
        nested = _Config(data, self.file, f"{self.where(key)}.", NESTED_DEFAULTS.get(model_type),
                         self.notes, self.origins)
        return nested, model_type


def _describe(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, (int, float)):
        return f"the number {value}" if abs(value) < 10 ** 30 else "a huge number"
    if isinstance(value, str):
        return f"a string {value[:40]!r}" + ("..." if len(value) > 40 else "")
    return {list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(cfg: _Config, key: str, value: object, kind: str) -> object:
    """``value`` of ``key`` if it is of ``kind``; one SpecError naming the key otherwise."""
    if kind in ("size", "count", "layers", "index"):
        if not _is_int(value):
            cfg.fail(key, f"expected an integer, got {_describe(value)}")
        low = {"size": 1, "layers": 1, "count": 0, "index": -_HUGE_INT}[kind]
        high = _LAYER_LIMIT if kind == "layers" else _HUGE_INT
        if value < low:
            cfg.fail(key, f"must be {'positive' if low == 1 else 'at least ' + str(low)}, got {value}")
        if value > high:
            cfg.fail(key, f"must be at most {high:,}, got {value if value < 10**30 else 'a huge number'}")
        return value
    if kind == "rank":                      # Mamba's time_step_rank: a size or "auto"
        return value if value == "auto" else _check(cfg, key, value, "size")
    if kind == "flag":
        if not isinstance(value, bool):
            cfg.fail(key, f"expected true or false, got {_describe(value)}")
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            cfg.fail(key, f"expected a number, got {_describe(value)}")
        if not math.isfinite(value) or abs(value) > 1e300:
            cfg.fail(key, "must be a finite number")
        return float(value)
    if kind == "text":
        if not isinstance(value, str):
            cfg.fail(key, f"expected a string, got {_describe(value)}")
        return value[:200]
    if kind in ("indices", "texts"):
        item_kind = "index" if kind == "indices" else "text"
        if not isinstance(value, list):
            cfg.fail(key, f"expected a list, got {_describe(value)}")
        if len(value) > MAX_LIST:
            cfg.fail(key, f"has {len(value):,} entries; at most {MAX_LIST:,} are read")
        return [_check(cfg, f"{key}[{i}]", item, item_kind) for i, item in enumerate(value)]
    if kind == "index_or_indices":          # LLaVA's vision_feature_layer
        return _check(cfg, key, value, "indices" if isinstance(value, list) else "index")
    if kind == "object":
        if not isinstance(value, dict):
            cfg.fail(key, f"expected an object, got {_describe(value)}")
        return value
    raise ValueError(f"unknown kind {kind!r}")


# ---------------------------------------------------------------- the table

@dataclass(frozen=True)
class Family:
    """How one model_type becomes a spec: the kind, the per-family function for what is not a
    rename, the keys it reads, the fields every such model has, and which projections have biases
    (True/False, or the name of a value read, e.g. "attention_bias")."""
    kind: str
    build: Callable[[_Config, "Family"], dict]
    keys: dict[str, tuple]
    fixed: dict[str, object] = field(default_factory=dict)
    biases: dict[str, bool | str] = field(default_factory=dict)
    gated: bool = True                  # the MLP has a gate projection (SwiGLU / GeGLU)
    window: str | None = None           # "all": sliding_window is every layer's; "qwen": per layer


# The keys of a Llama-style decoder; families add or replace entries.
_DECODER_KEYS = {
    "n_layers": ("num_hidden_layers", "layers"),
    "d_model": ("hidden_size", "size"),
    "n_heads": ("num_attention_heads", "size"),
    "n_kv_heads": ("num_key_value_heads", "size", None),
    "head_dim": ("head_dim", "size", None),
    "d_ff": ("intermediate_size", "size"),
    "vocab_size": ("vocab_size", "size"),
    "context_length": ("max_position_embeddings", "size", None),
    "hidden_act": ("hidden_act", "text", "silu"),
    "tied": ("tie_word_embeddings", "flag", False),
}
_ROPE_RMS = {"pos_encoding": "rope", "norm": "rmsnorm"}
_NO_BIAS = dict.fromkeys(("q", "k", "v", "o", "mlp"), False)
_ATTENTION_BIAS = dict.fromkeys(("q", "k", "v", "o"), "attention_bias") | {"mlp": False}
_QWEN_WINDOW_KEYS = {
    "use_sliding_window": ("use_sliding_window", "flag", False),
    "sliding_window": ("sliding_window", "count", None),
    "max_window_layers": ("max_window_layers", "count", None),
    "layer_types": ("layer_types", "texts", None),
}
_MOE_KEYS = {
    "top_k": ("num_experts_per_tok", "size"),
    "aux_loss_coef": ("router_aux_loss_coef", "number", None),
}
_QWEN_MOE_KEYS = _MOE_KEYS | {
    "n_experts": (("num_experts", "num_local_experts"), "count"),
    "expert_d_ff": ("moe_intermediate_size", "size"),
    "decoder_sparse_step": ("decoder_sparse_step", "size", 1),
    "mlp_only_layers": ("mlp_only_layers", "indices", []),
    "norm_topk_prob": ("norm_topk_prob", "flag", False),
}


def _decoder(cfg: _Config, family: Family) -> dict:
    """A decoder-only transformer: renames, activation, tied head, biases, sliding window."""
    v = cfg.values(family.keys)
    arch = {name: v[name] for name in ("n_layers", "d_model", "n_heads", "n_kv_heads", "head_dim",
                                        "d_ff", "vocab_size", "context_length") if v.get(name) is not None}
    arch |= family.fixed
    arch["activation"] = _activation(cfg, v["hidden_act"], family.gated)
    arch["unembedding"] = "tied" if v["tied"] else "untied"
    _biases(cfg, arch, v, family)
    if family.window:
        _window(cfg, arch, v, family.window)
    return arch


def _gpt2(cfg: _Config, family: Family) -> dict:
    arch = _decoder(cfg, family)
    arch.setdefault("d_ff", 4 * arch["d_model"])            # n_inner null: 4 x n_embd
    if cfg.read("add_cross_attention", "flag", False):
        cfg.notes.append("add_cross_attention is set: the cross-attention blocks need an encoder, "
                         "which a GPT-2 config does not describe; they are not drawn or counted")
    return arch


def _mixtral(cfg: _Config, family: Family) -> dict:
    arch = _decoder(cfg, family)
    v = cfg.values(family.keys)
    arch["moe"] = _drop_none({"n_experts": v["n_experts"], "top_k": v["top_k"],
                              "expert_d_ff": arch.pop("d_ff"), "routing": "topk-softmax",
                              "aux_loss_coef": v["aux_loss_coef"]})
    return arch


def _qwen_moe(cfg: _Config, family: Family) -> dict:
    """Qwen2-MoE / Qwen3-MoE: MoE on every decoder_sparse_step-th layer not in mlp_only_layers;
    Qwen2-MoE adds one gated shared expert."""
    arch = _decoder(cfg, family)
    v = cfg.values(family.keys)
    n, skip = arch["n_layers"], set(v["mlp_only_layers"])
    moe_layers = [i for i in range(n) if i not in skip and v["n_experts"] > 0
                  and (i + 1) % v["decoder_sparse_step"] == 0]
    if not moe_layers:
        return arch
    moe = {"n_experts": v["n_experts"], "top_k": v["top_k"], "expert_d_ff": v["expert_d_ff"],
           # renormalised top-k weights equal a softmax over the k chosen logits
           "routing": "topk-softmax" if v["norm_topk_prob"] else "softmax-topk",
           "aux_loss_coef": v["aux_loss_coef"]}
    shared = v.get("shared_expert_d_ff")
    if shared:
        moe |= {"n_shared_experts": 1, "shared_expert_d_ff": shared}
        cfg.notes.append(f"each MoE layer's shared expert has a sigmoid gate (a {arch['d_model']} x 1 "
                         f"shared_expert_gate, {arch['d_model']:,} parameters per MoE layer) that "
                         "the spec format cannot express; it is not counted")
    moe["layers"] = _layer_set(cfg, moe_layers, n, "mlp_only_layers")
    arch["moe"] = _drop_none(moe)
    if len(moe_layers) == n:
        arch.pop("d_ff")            # intermediate_size is unused when every layer is MoE
    return arch


def _deepseek_v3(cfg: _Config, family: Family) -> dict:
    """Multi-head latent attention, dense first layers, routed + shared experts, MTP depth."""
    arch = _decoder(cfg, family)
    v = cfg.values(family.keys)
    arch.pop("n_kv_heads", None)            # MLA: keys and values come from the latent
    arch.pop("head_dim", None)
    arch["mla"] = {name: v[name] for name in ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim",
                                              "qk_rope_head_dim", "v_head_dim")}
    if v["attention_bias"]:
        cfg.notes.append("attention_bias is set: the biases of q_a_proj, kv_a_proj_with_mqa and "
                         "o_proj are not in the spec format's MLA and are not counted")
    n, first_moe = arch["n_layers"], v["first_k_dense_replace"]
    if first_moe >= n or v["n_experts"] == 0:
        return arch
    arch["moe"] = _drop_none({
        "n_experts": v["n_experts"], "top_k": v["top_k"], "expert_d_ff": v["expert_d_ff"],
        "n_shared_experts": v["n_shared_experts"], "routing": "sigmoid-grouped",
        "layers": {"start": first_moe} if first_moe else None,
        "router_bias": True, "n_groups": v["n_groups"], "topk_groups": v["topk_groups"],
        "route_scale": v["route_scale"]})
    cfg.notes.append("the router's balancing bias (e_score_correction_bias) is a buffer, as in "
                     "transformers: listed apart from the parameters")
    if v["mtp_modules"]:
        arch["mtp_modules"] = v["mtp_modules"]
        cfg.notes.append(f"num_nextn_predict_layers {v['mtp_modules']}: the multi-token-prediction "
                         "module is reported apart from the total (transformers does not build it)")
    if first_moe == 0:
        arch.pop("d_ff")
    return arch


def _mamba(cfg: _Config, family: Family) -> dict:
    v = cfg.values(family.keys)
    d = v["d_model"]
    expand = v["expand"]
    inner = v["intermediate_size"]
    if inner is not None and inner != expand * d:
        if inner % d:                       # transformers builds the mixer from intermediate_size
            cfg.fail("intermediate_size", f"{inner} is not a multiple of hidden_size {d}; the "
                     "spec format's Mamba width is expand x d_model")
        expand = inner // d
    rank = v["dt_rank"]
    ssm = {"d_state": v["d_state"], "d_conv": v["d_conv"], "expand": expand,
           "dt_rank": math.ceil(d / 16) if rank == "auto" else rank,
           "conv_bias": v["conv_bias"], "proj_bias": v["proj_bias"]}
    return _ssm_stack(cfg, v, "mamba", ssm)


def _mamba2(cfg: _Config, family: Family) -> dict:
    v = cfg.values(family.keys)
    inner = v["expand"] * v["d_model"]
    if v["num_heads"] * v["head_dim"] != inner:
        cfg.fail("num_heads", f"{v['num_heads']} heads x head_dim {v['head_dim']} is not "
                 f"expand x hidden_size = {inner} (transformers refuses such a config too)")
    ssm = {"d_state": v["d_state"], "d_conv": v["d_conv"], "expand": v["expand"],
           "head_dim": v["head_dim"], "n_groups": v["n_groups"], "chunk_size": v["chunk_size"],
           "conv_bias": v["conv_bias"],
           "proj_bias": v["proj_bias"]}
    return _ssm_stack(cfg, v, "mamba2", ssm)


def _ssm_stack(cfg: _Config, v: dict, mixer: str, ssm: dict) -> dict:
    return {"n_layers": v["n_layers"], "d_model": v["d_model"], "mixer": mixer,
            "vocab_size": v["vocab_size"], "pos_encoding": "none", "norm": "rmsnorm",
            "activation": _activation(cfg, v["hidden_act"], gated=False),
            "unembedding": "tied" if v["tied"] else "untied", "ssm": ssm}


def _rwkv(cfg: _Config, family: Family) -> dict:
    v = cfg.values(family.keys)
    d = v["d_model"]
    attention = v["attention_hidden_size"]
    if attention not in (None, d):
        cfg.notes.append(f"attention_hidden_size {attention} differs from hidden_size {d}: the "
                         "spec format's RWKV-4 time-mix is d_model wide, so it is counted at "
                         f"{d} (transformers: key/value/receptance {d} x {attention})")
    return _drop_none({
        "n_layers": v["n_layers"], "d_model": d, "mixer": "rwkv4",
        "d_ff": v["d_ff"] or 4 * d, "vocab_size": v["vocab_size"],
        "context_length": v["context_length"], "pos_encoding": "none", "norm": "layernorm",
        "activation": "relu2", "unembedding": "tied" if v["tied"] else "untied"})


def _jamba(cfg: _Config, family: Family) -> dict:
    """Attention on layers i % attn_layer_period == attn_layer_offset, Mamba elsewhere; MoE on
    i % expert_layer_period == expert_layer_offset when there is more than one expert."""
    arch = _decoder(cfg, family)
    v = cfg.values(family.keys)
    n = arch["n_layers"]
    for what in ("attn", "expert"):
        period, offset = v[f"{what}_layer_period"], v[f"{what}_layer_offset"]
        if offset >= period:
            cfg.fail(f"{what}_layer_offset", f"{offset} must be smaller than {what}_layer_period {period}")
    period = v["attn_layer_period"]
    if period > MAX_LIST:
        cfg.fail("attn_layer_period", f"{period:,} is longer than the {MAX_LIST:,} layers a "
                 "spec's pattern may list")
    arch["hybrid"] = {"period": ["attention" if i == v["attn_layer_offset"] else "mamba"
                                 for i in range(period)]}
    rank = v["dt_rank"]
    arch["ssm"] = {"d_state": v["d_state"], "d_conv": v["d_conv"], "expand": v["expand"],
                   "dt_rank": math.ceil(arch["d_model"] / 16) if rank == "auto" else rank,
                   "conv_bias": v["conv_bias"], "proj_bias": v["proj_bias"], "inner_norms": True}
    start, step = v["expert_layer_offset"], v["expert_layer_period"]
    if v["n_experts"] > 1 and start < n:
        layers = _drop_none({"start": start or None, "step": step if step > 1 else None})
        arch["moe"] = _drop_none({
            "n_experts": v["n_experts"], "top_k": v["top_k"], "expert_d_ff": arch["d_ff"],
            "routing": "softmax-topk", "layers": layers or None,
            "aux_loss_coef": v["aux_loss_coef"]})
        if step == 1 and start == 0:
            arch.pop("d_ff")
    return arch


# ---------------------------------------------------------------- encoders and multimodal models

# Vision towers: the keys of the tower and how its stem and norms are built.
_TOWER_KEYS = {
    "n_layers": ("num_hidden_layers", "layers"),
    "d_model": ("hidden_size", "size"),
    "n_heads": ("num_attention_heads", "size"),
    "d_ff": ("intermediate_size", "size"),
    "hidden_act": ("hidden_act", "text"),
    "image_size": ("image_size", "size"),
    "patch_size": ("patch_size", "size"),
    "channels": ("num_channels", "size", 3),
}
VISION_TOWERS = {
    # CLIP: [CLS] token, bias-free patch conv, a LayerNorm before the layers (pre_layrnorm)
    "clip_vision_model": {"pre_norm": True, "cls_token": True, "patch_bias": False, "head": None},
    # SigLIP: no [CLS], patch conv with bias, no pre-norm; an optional attention-pooling head
    "siglip_vision_model": {"pre_norm": False, "cls_token": False, "patch_bias": True,
                            "head": "vision_use_head"},
}

# Defaults of transformers' own sub-config classes (LlamaConfig(), CLIPVisionConfig(), ...), used
# only inside text_config / vision_config, where transformers 4.x saved just the non-default keys.
NESTED_DEFAULTS = {
    "llama": {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
              "num_attention_heads": 32, "vocab_size": 32000, "max_position_embeddings": 2048,
              "hidden_act": "silu", "tie_word_embeddings": False},
    "mistral": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000,
                "max_position_embeddings": 131072, "hidden_act": "silu",
                "tie_word_embeddings": False, "sliding_window": 4096},
    "qwen2": {"hidden_size": 4096, "intermediate_size": 22016, "num_hidden_layers": 32,
              "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 151936, "max_position_embeddings": 32768,
              "hidden_act": "silu", "tie_word_embeddings": False},
    "gemma": {"hidden_size": 3072, "intermediate_size": 24576, "num_hidden_layers": 28,
              "num_attention_heads": 16, "num_key_value_heads": 16, "head_dim": 256,
              "vocab_size": 256000,
              "max_position_embeddings": 8192, "hidden_act": "gelu_pytorch_tanh",
              "tie_word_embeddings": True},
    "clip_text_model": {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
                        "num_attention_heads": 8, "vocab_size": 49408,
                        "max_position_embeddings": 77, "hidden_act": "quick_gelu"},
    "clip_vision_model": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                          "num_attention_heads": 12, "hidden_act": "quick_gelu", "image_size": 224,
                          "patch_size": 32, "num_channels": 3},
    "siglip_vision_model": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                            "num_attention_heads": 12, "hidden_act": "gelu_pytorch_tanh",
                            "image_size": 224, "patch_size": 16, "num_channels": 3,
                            "vision_use_head": True},
}


def _vision_tower(cfg: _Config, model_type: str, name: str = "vision") -> dict:
    """A CLIP or SigLIP vision tower as an encoder component."""
    tower = VISION_TOWERS.get(model_type)
    if tower is None:
        cfg.fail("model_type", f"unknown vision model_type {model_type!r}; importable: "
                 + ", ".join(VISION_TOWERS))
    v = cfg.values(_TOWER_KEYS)
    if tower["head"] and cfg.read(tower["head"], "flag", False):
        cfg.notes.append(f"{cfg.where(tower['head'])} is set: the attention-pooling head (probe, "
                         "attention, LayerNorm, MLP) is not in the spec format and is not counted")
    patches = _drop_none({"type": "patches", "patch_size": v["patch_size"],
                          "image_size": v["image_size"], "channels": v["channels"],
                          "cls_token": tower["cls_token"] or None,
                          "bias": tower["patch_bias"] or False})
    return _drop_none({
        "type": "encoder", "name": name, "role": "vision-encoder",
        "n_layers": v["n_layers"], "d_model": v["d_model"], "n_heads": v["n_heads"],
        "d_ff": v["d_ff"], "pos_encoding": "learned", "norm": "layernorm",
        "activation": _activation(cfg, v["hidden_act"], gated=False), "bias": True,
        "pre_norm": tower["pre_norm"] or None, "input": patches})


def _vit(cfg: _Config, family: Family) -> dict:
    """ViT: the encoder, then the head `architectures` names (a classifier), else ViTModel's pooler."""
    v = cfg.values(family.keys)
    d = v["d_model"]
    arch = {"n_layers": v["n_layers"], "d_model": d, "n_heads": v["n_heads"], "d_ff": v["d_ff"],
            "pos_encoding": "learned", "norm": "layernorm",
            "activation": _activation(cfg, v["hidden_act"], gated=False), "causal": False,
            "unembedding": "none", "modalities": ["image"],
            "input": {"type": "patches", "patch_size": v["patch_size"],
                      "image_size": v["image_size"], "channels": v["channels"], "cls_token": True}}
    _biases(cfg, arch, v, family)
    heads = v["architectures"] or []
    if "ViTForImageClassification" in heads:
        labels = len(v["id2label"]) if v["id2label"] else 2   # transformers' num_labels default
        arch["components"] = [{"type": "projector", "name": "classifier", "role": "head",
                               "dims": [d, labels], "bias": True}]
    else:
        if heads and heads[0] != "ViTModel":
            cfg.notes.append(f"architectures names {heads[0]}; its head is not modelled, the "
                             "ViTModel backbone with its pooler is")
        arch["components"] = [{"type": "projector", "name": "pooler", "role": "head",
                               "dims": [d, v["pooler_output_size"] or d], "bias": True}]
        cfg.notes.append("the pooler is a Linear layer followed by tanh on the [CLS] token")
    return arch


def _clip(cfg: _Config, family: Family) -> dict:
    """CLIP: the text encoder is the main stack; the vision tower and logit_scale are components;
    both are projected, bias-free, to projection_dim."""
    projection = cfg.read("projection_dim", "size")
    text, text_type = cfg.sub("text_config", "clip_text_model")
    if text_type != "clip_text_model":
        text.fail("model_type", f"unknown text model_type {text_type!r} for clip; expected clip_text_model")
    v = text.values({name: _DECODER_KEYS[name] for name in
                     ("n_layers", "d_model", "n_heads", "d_ff", "vocab_size", "context_length")}
                    | {"hidden_act": ("hidden_act", "text"),
                       "context_length": ("max_position_embeddings", "size")})
    vision, vision_type = cfg.sub("vision_config", "clip_vision_model")
    tower = _vision_tower(vision, vision_type) | {"output_dim": projection}
    return {"n_layers": v["n_layers"], "d_model": v["d_model"], "n_heads": v["n_heads"],
            "d_ff": v["d_ff"], "vocab_size": v["vocab_size"], "context_length": v["context_length"],
            "pos_encoding": "learned", "norm": "layernorm",
            "activation": _activation(text, v["hidden_act"], gated=False), "bias": True,
            "unembedding": "none", "output_dim": projection, "modalities": ["text", "image"],
            "fusion": "contrastive",
            "components": [tower, {"type": "parameter", "name": "logit_scale", "role": "head",
                                   "shape": []}]}


def _whisper(cfg: _Config, family: Family) -> dict:
    """Whisper: the text decoder is the main stack (self- and cross-attention); the audio encoder
    (two conv1d, sinusoidal positions) is a component. Keys have no bias."""
    v = cfg.values(family.keys)
    layer = {"d_model": v["d_model"], "norm": "layernorm", "bias": True, "key_bias": False,
             "activation": _activation(cfg, v["hidden_act"], gated=False)}
    encoder = {"type": "encoder", "name": "audio", "role": "audio-encoder",
               "n_layers": v["encoder_layers"], "n_heads": v["encoder_heads"], "d_ff": v["encoder_ff"],
               "context_length": v["source_positions"], "pos_encoding": "sinusoidal",
               "input": {"type": "conv1d", "in_channels": v["mel_bins"], "kernel": 3,
                         "strides": [1, 2]}} | layer
    cfg.notes.append("the audio encoder's sinusoidal position table is fixed, so it is not counted "
                     "(transformers holds it as a frozen embedding)")
    return {"n_layers": v["n_layers"], "n_heads": v["n_heads"], "d_ff": v["d_ff"],
            "vocab_size": v["vocab_size"], "context_length": v["context_length"],
            "pos_encoding": "learned", "unembedding": "tied" if v["tied"] else "untied",
            "cross_attention": True, "modalities": ["audio", "text"], "fusion": "cross-attention",
            "components": [encoder]} | layer


def _text_stack(cfg: _Config, default_type: str) -> dict:
    """The language model inside a vision-language config, through the table."""
    text, text_type = cfg.sub("text_config", default_type)
    family = MODEL_TYPES.get(text_type)
    if family is None or family.kind != "decoder-only":
        known = [name for name, f in MODEL_TYPES.items() if f.kind == "decoder-only"]
        text.fail("model_type", f"unknown text model_type {text_type!r}; importable: {', '.join(known)}")
    return family.build(text, family)


def _llava(cfg: _Config, family: Family) -> dict:
    """LLaVA: vision tower -> 2-layer projector -> the language model, image tokens as a prefix."""
    arch = _text_stack(cfg, "llama")
    vision, vision_type = cfg.sub("vision_config", "clip_vision_model")
    tower = _vision_tower(vision, vision_type)
    v = cfg.values(family.keys)
    layers = v["feature_layer"]
    n_features = len(layers) if isinstance(layers, list) else 1
    arch |= {"modalities": ["text", "image"], "fusion": "prefix-tokens", "components": [
        tower, {"type": "projector", "name": "projector", "role": "projector",
                "dims": [tower["d_model"] * n_features, arch["d_model"], arch["d_model"]],
                "activation": _activation(cfg, v["projector_act"], gated=False),
                "bias": v["projector_bias"]}]}
    if isinstance(layers, int):
        tower["feature_layer"] = layers
    cfg.notes.append(f"image features are taken from vision layer(s) {layers}; transformers builds "
                     "(and counts) the whole tower")
    if v["tied"] or arch["unembedding"] == "tied":          # either setting ties the head
        arch["unembedding"] = "tied"
    return arch


def _paligemma(cfg: _Config, family: Family) -> dict:
    """PaliGemma: SigLIP tower -> one linear projector -> Gemma, tied head."""
    arch = _text_stack(cfg, "gemma")
    vision, vision_type = cfg.sub("vision_config", "siglip_vision_model")
    tower = _vision_tower(vision, vision_type)
    projection = vision.read("projection_dim", "size", None) or cfg.read("projection_dim", "size")
    arch |= {"modalities": ["text", "image"], "fusion": "prefix-tokens",
             "unembedding": "tied" if cfg.read("tie_word_embeddings", "flag", True) else "untied",
             "components": [tower, {"type": "projector", "name": "projector", "role": "projector",
                                    "dims": [tower["d_model"], projection], "bias": True}]}
    return arch


_LLAMA = _DECODER_KEYS | {"attention_bias": ("attention_bias", "flag", False),
                          "mlp_bias": ("mlp_bias", "flag", False)}
_JAMBA_KEYS = _DECODER_KEYS | _MOE_KEYS | {
    "n_experts": (("num_experts", "num_local_experts"), "size"),
    "attn_layer_period": ("attn_layer_period", "size"),
    "attn_layer_offset": ("attn_layer_offset", "count"),
    "expert_layer_period": ("expert_layer_period", "size"),
    "expert_layer_offset": ("expert_layer_offset", "count"),
    "d_state": ("mamba_d_state", "size"),
    "d_conv": ("mamba_d_conv", "size"),
    "expand": ("mamba_expand", "size"),
    "dt_rank": ("mamba_dt_rank", "rank"),
    "conv_bias": ("mamba_conv_bias", "flag", True),
    "proj_bias": ("mamba_proj_bias", "flag", False),
}
_SSM_KEYS = {
    "n_layers": ("num_hidden_layers", "layers"),
    "d_model": ("hidden_size", "size"),
    "vocab_size": ("vocab_size", "size"),
    "d_state": ("state_size", "size"),
    "d_conv": ("conv_kernel", "size"),
    "expand": ("expand", "size"),
    "conv_bias": ("use_conv_bias", "flag", True),
    "proj_bias": ("use_bias", "flag", False),
    "hidden_act": ("hidden_act", "text", "silu"),
}

MODEL_TYPES: dict[str, Family] = {
    "gpt2": Family("decoder-only", _gpt2, {
        "n_layers": ("n_layer", "layers"), "d_model": ("n_embd", "size"),
        "n_heads": ("n_head", "size"), "d_ff": ("n_inner", "size", None),
        "vocab_size": ("vocab_size", "size"), "context_length": ("n_positions", "size"),
        "hidden_act": ("activation_function", "text", "gelu_new"),
        "tied": ("tie_word_embeddings", "flag", True)},
        fixed={"pos_encoding": "learned", "norm": "layernorm"},
        biases=dict.fromkeys(("q", "k", "v", "o", "mlp"), True), gated=False),
    "llama": Family("decoder-only", _decoder, _LLAMA, _ROPE_RMS,
                    dict.fromkeys(("q", "k", "v", "o"), "attention_bias") | {"mlp": "mlp_bias"}),
    "mistral": Family("decoder-only", _decoder,
                      _DECODER_KEYS | {"sliding_window": ("sliding_window", "count", None)},
                      _ROPE_RMS, _NO_BIAS, window="all"),
    "mixtral": Family("decoder-only", _mixtral,
                      _DECODER_KEYS | _MOE_KEYS | {"n_experts": ("num_local_experts", "size"),
                                                   "sliding_window": ("sliding_window", "count", None)},
                      _ROPE_RMS, _NO_BIAS, window="all"),
    "qwen2": Family("decoder-only", _decoder, _DECODER_KEYS | _QWEN_WINDOW_KEYS, _ROPE_RMS,
                    dict.fromkeys(("q", "k", "v"), True) | {"o": False, "mlp": False}, window="qwen"),
    "qwen2_moe": Family("decoder-only", _qwen_moe,
                        _DECODER_KEYS | _QWEN_WINDOW_KEYS | _QWEN_MOE_KEYS
                        | {"qkv_bias": ("qkv_bias", "flag", True),
                           "shared_expert_d_ff": ("shared_expert_intermediate_size", "count")},
                        _ROPE_RMS, dict.fromkeys(("q", "k", "v"), "qkv_bias") | {"o": False, "mlp": False},
                        window="qwen"),
    "qwen3": Family("decoder-only", _decoder,
                    _DECODER_KEYS | _QWEN_WINDOW_KEYS | {"attention_bias": ("attention_bias", "flag", False)},
                    _ROPE_RMS | {"qk_norm": True}, _ATTENTION_BIAS, window="qwen"),
    "qwen3_moe": Family("decoder-only", _qwen_moe,
                        _DECODER_KEYS | _QWEN_WINDOW_KEYS | _QWEN_MOE_KEYS
                        | {"attention_bias": ("attention_bias", "flag", False)},
                        _ROPE_RMS | {"qk_norm": True}, _ATTENTION_BIAS, window="qwen"),
    "gemma": Family("decoder-only", _decoder,
                    _DECODER_KEYS | {"hidden_act": (("hidden_activation", "hidden_act"), "text",
                                                    "gelu_pytorch_tanh"),
                                     "tied": ("tie_word_embeddings", "flag", True),
                                     "attention_bias": ("attention_bias", "flag", False)},
                    _ROPE_RMS, _ATTENTION_BIAS),
    "deepseek_v3": Family("decoder-only", _deepseek_v3, _DECODER_KEYS | _MOE_KEYS | {
        "q_lora_rank": ("q_lora_rank", "size", None),
        "kv_lora_rank": ("kv_lora_rank", "size"),
        "qk_nope_head_dim": ("qk_nope_head_dim", "size"),
        "qk_rope_head_dim": ("qk_rope_head_dim", "size"),
        "v_head_dim": ("v_head_dim", "size"),
        "n_experts": ("n_routed_experts", "count"),
        "expert_d_ff": ("moe_intermediate_size", "size"),
        "n_shared_experts": ("n_shared_experts", "count", 0),
        "first_k_dense_replace": ("first_k_dense_replace", "count", 0),
        "n_groups": ("n_group", "size"),
        "topk_groups": ("topk_group", "size"),
        "route_scale": ("routed_scaling_factor", "number", None),
        "mtp_modules": ("num_nextn_predict_layers", "count", 0),
        "attention_bias": ("attention_bias", "flag", False)},
        _ROPE_RMS, _NO_BIAS),
    "mamba": Family("ssm", _mamba, _SSM_KEYS | {
        "dt_rank": ("time_step_rank", "rank", "auto"),
        "intermediate_size": ("intermediate_size", "size", None),
        "tied": ("tie_word_embeddings", "flag", True)}),
    "mamba2": Family("ssm", _mamba2, _SSM_KEYS | {
        "head_dim": ("head_dim", "size"), "num_heads": ("num_heads", "size"),
        "n_groups": ("n_groups", "size", 1), "chunk_size": ("chunk_size", "size", 256),
        "tied": ("tie_word_embeddings", "flag", False)}),
    "rwkv": Family("ssm", _rwkv, {
        "n_layers": ("num_hidden_layers", "layers"), "d_model": ("hidden_size", "size"),
        "vocab_size": ("vocab_size", "size"), "d_ff": ("intermediate_size", "size", None),
        "attention_hidden_size": ("attention_hidden_size", "size", None),
        "context_length": ("context_length", "size", None),
        "tied": ("tie_word_embeddings", "flag", False)}),
    "jamba": Family("hybrid", _jamba, _JAMBA_KEYS, {"pos_encoding": "none", "norm": "rmsnorm"},
                    _NO_BIAS),
    "vit": Family("multimodal", _vit, {
        name: _TOWER_KEYS[name] for name in ("n_layers", "d_model", "n_heads", "d_ff", "image_size",
                                             "patch_size", "channels")} | {
        "hidden_act": ("hidden_act", "text", "gelu"),
        "qkv_bias": ("qkv_bias", "flag", True),
        "pooler_output_size": ("pooler_output_size", "size", None),
        "architectures": ("architectures", "texts", None),
        "id2label": ("id2label", "object", None)},
        biases=dict.fromkeys(("q", "k", "v"), "qkv_bias") | {"o": True, "mlp": True}, gated=False),
    "clip": Family("multimodal", _clip, {}),
    "whisper": Family("encoder-decoder", _whisper, {
        "d_model": ("d_model", "size"), "n_layers": ("decoder_layers", "layers"),
        "n_heads": ("decoder_attention_heads", "size"), "d_ff": ("decoder_ffn_dim", "size"),
        "encoder_layers": ("encoder_layers", "layers"),
        "encoder_heads": ("encoder_attention_heads", "size"),
        "encoder_ff": ("encoder_ffn_dim", "size"),
        "vocab_size": ("vocab_size", "size"), "mel_bins": ("num_mel_bins", "size"),
        "source_positions": ("max_source_positions", "size"),
        "context_length": ("max_target_positions", "size"),
        "hidden_act": ("activation_function", "text", "gelu"),
        "tied": ("tie_word_embeddings", "flag", True)}),
    "llava": Family("multimodal", _llava, {
        "feature_layer": ("vision_feature_layer", "index_or_indices", -2),
        "projector_act": ("projector_hidden_act", "text", "gelu"),
        "projector_bias": ("multimodal_projector_bias", "flag", True),
        "tied": ("tie_word_embeddings", "flag", False)}),
    "paligemma": Family("multimodal", _paligemma, {}),
}


# ---------------------------------------------------------------- helpers shared by the families

# transformers' activation names -> the spec's; a gated MLP turns the function into its GLU.
ACTIVATIONS = {"gelu": "gelu", "gelu_python": "gelu", "gelu_new": "gelu_tanh",
               "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh", "gelu_accurate": "gelu_tanh",
               "quick_gelu": "quick_gelu", "relu": "relu", "relu2": "relu2", "silu": "silu",
               "swish": "silu"}
GATED = {"silu": "swiglu", "gelu": "geglu", "gelu_tanh": "geglu"}


def _activation(cfg: _Config, name: str, gated: bool) -> str:
    plain = ACTIVATIONS.get(name)
    spec_name = GATED.get(plain) if gated else plain
    if spec_name is None:
        spec_name = "swiglu" if gated else "gelu"
        cfg.notes.append(f"activation {name!r} has no spec name; drawn as {spec_name} (the "
                         "parameter count does not depend on it)")
    elif gated and plain != "silu" and plain != "gelu":
        cfg.notes.append(f"the gate uses {name}; the spec calls it {spec_name}")
    return spec_name


def _biases(cfg: _Config, arch: dict, v: dict, family: Family) -> None:
    """The spec has one bias switch for the attention and MLP projections (and key_bias); a
    config with biases on only some of them is drawn without, and the notes say what is left out."""
    flags = {p: (v[b] if isinstance(b, str) else b) for p, b in family.biases.items()}
    if not flags or len(set(flags.values())) == 1:
        arch["bias"] = bool(flags) and flags["q"]
        return
    arch["bias"] = False
    d, heads = arch["d_model"], arch["n_heads"]
    width = arch.get("head_dim") or d // heads
    kv = arch.get("n_kv_heads") or heads
    d_ff = arch.get("d_ff") or 0
    sizes = {"q": heads * width, "k": kv * width, "v": kv * width, "o": d,
             "mlp": d_ff * (2 if family.gated else 1) + d}
    biased = [p for p, on in flags.items() if on]
    left_out = sum(sizes[p] for p in biased)
    cfg.notes.append(f"biases on the {', '.join(biased)} projections only: the spec format has "
                     f"one bias switch for attention and MLP, so they are not counted ({left_out:,} "
                     "parameters per layer)")


def _window(cfg: _Config, arch: dict, v: dict, how: str) -> None:
    """A sliding window on every layer goes in the spec; on some layers only, into the notes."""
    window = v.get("sliding_window")
    if how == "all":
        if window:
            arch["sliding_window"] = window
        return
    if not v.get("use_sliding_window") or not window:
        return
    n = arch["n_layers"]
    types = v.get("layer_types")
    if types is None or len(types) != n:
        start = v.get("max_window_layers") or 0
        types = ["sliding_attention" if i >= start else "full_attention" for i in range(n)]
    sliding = [i for i, t in enumerate(types) if t == "sliding_attention"]
    if len(sliding) == n:
        arch["sliding_window"] = window
    elif sliding:
        cfg.notes.append(f"layers {_ranges(sliding)} use a sliding window of {window} tokens, the "
                         "others full attention; the spec's sliding_window is for every layer, so "
                         "it is left unset")


def _layer_set(cfg: _Config, layers: list[int], n: int, key: str) -> dict | None:
    """The spec's LayerSet (start, step, stop) for these layer indices; a set that is no range
    is widened to one, and the notes say which layers are counted as MoE though they are dense."""
    if len(layers) == n:
        return None
    start = layers[0]
    step = layers[1] - layers[0] if len(layers) > 1 else 1
    stop = layers[-1] + 1
    if list(range(start, stop, step)) != layers:
        wide = list(range(start, stop))
        dense = sorted(set(wide) - set(layers))
        cfg.notes.append(f"MoE layers {_ranges(layers)} are no regular range ({cfg.where(key)}); "
                         f"the spec counts layers {_ranges(wide)} as MoE, so dense layers "
                         f"{_ranges(dense)} are drawn and counted as MoE")
        step = 1
    full = stop > n - step                  # range(start, n, step) gives the same layers
    return _drop_none({"start": start or None, "step": step if step > 1 else None,
                       "stop": None if full else stop}) or None


def _ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0-2, 5, 7-8'."""
    parts, i = [], 0
    while i < len(indices):
        j = i
        while j + 1 < len(indices) and indices[j + 1] == indices[j] + 1:
            j += 1
        parts.append(str(indices[i]) if i == j else f"{indices[i]}-{indices[j]}")
        i = j + 1
    return ", ".join(parts)


def _drop_none(data: dict) -> dict:
    return {k: v for k, v in data.items() if v is not None}


# ---------------------------------------------------------------- files in, spec out

@dataclass(frozen=True)
class ImportedConfig:
    """A spec made from a config.json: the validated spec and the data a spec file holds."""
    spec: ModelSpec
    data: dict
    path: Path                      # the config.json read


def config_path(path: str | os.PathLike) -> Path:
    """PATH itself, or PATH/config.json when PATH is a folder."""
    path = Path(path)
    return path / CONFIG_NAME if path.is_dir() else path


def read_config(path: str | os.PathLike) -> tuple[dict, Path]:
    """The parsed config object and the file it came from; SpecError for a missing, special,
    oversized, non-UTF-8, too deeply nested or malformed file."""
    given = Path(path)
    file = config_path(given)
    name = str(file)
    try:
        info = os.stat(file)
    except FileNotFoundError:
        if given.is_dir():
            raise SpecError(str(given), None, f"folder has no {CONFIG_NAME}") from None
        raise SpecError(name, None, "no such file") from None
    except OSError as error:
        raise SpecError(name, None, f"cannot read the file ({error.strerror or error})") from None
    if not stat.S_ISREG(info.st_mode):
        raise SpecError(name, None, "not a regular file")
    if info.st_size > MAX_CONFIG_BYTES:
        raise SpecError(name, None, f"{info.st_size:,} bytes; a config.json may have at most "
                        f"{MAX_CONFIG_BYTES:,}")
    try:
        with open(file, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise SpecError(name, None, f"cannot read the file ({error.strerror or error})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise SpecError(name, None, f"more than {MAX_CONFIG_BYTES:,} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpecError(name, None, f"not UTF-8 text (byte {error.start})") from None
    if nesting_depth(text) > MAX_NESTING:
        raise SpecError(name, None, f"nests lists and objects more than {MAX_NESTING} deep")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SpecError(name, None, f"not valid JSON (line {error.lineno}, column {error.colno}: "
                        f"{error.msg})") from None
    except (ValueError, RecursionError) as error:   # e.g. an integer of more than 4300 digits
        raise SpecError(name, None, f"cannot be read ({str(error).splitlines()[0][:80]})") from None
    if not isinstance(data, dict):
        raise SpecError(name, None, f"expected a JSON object, got {_describe(data)}")
    return data, file


def default_id(file: Path) -> str:
    """A spec id from where the config lives: its folder's name for a config.json (the repository
    name inside a Hugging Face cache), else the file's stem; lower case, safe characters."""
    folder = file.parent.resolve() if file.name == CONFIG_NAME else None
    stem = file.stem
    if folder is not None:
        stem = folder.name
        for parent in (folder, *folder.parents):    # .../models--org--name/snapshots/<hash>
            if parent.name.startswith("models--"):
                stem = parent.name.split("--")[-1]
                break
    slug = re.sub(r"[^a-z0-9._+-]+", "-", stem.lower()).strip("-._+")
    return (slug or "imported")[:100]


def spec_data(config: dict, file: str, model_id: str, source: str) -> dict:
    """The spec file's data for a parsed config; SpecError naming the key that is wrong."""
    return _spec_data(_Config(config, file), model_id, source)


def _spec_data(root: _Config, model_id: str, source: str) -> dict:
    config = root.data
    model_type = root.read("model_type", "text")
    family = MODEL_TYPES.get(model_type)
    if family is None:
        root.fail("model_type", f"unknown model_type {model_type!r}; importable: "
                  + ", ".join(MODEL_TYPES))
    architecture = family.build(root, family)
    sources = [f"Hugging Face config.json (model_type {model_type}) read from {source}"]
    for key in ("_name_or_path", "architectures", "transformers_version"):
        value = config.get(key)
        if isinstance(value, list):
            value = ", ".join(str(item) for item in value[:8])
        if isinstance(value, str) and value.strip():
            sources.append(f"{key}: {one_line(value)[:200]}")
    notes = ["Imported by llmviz models --import-config from the config alone (no weights read); "
             "counts are computed from the spec."] + root.notes
    return {"id": model_id, "name": f"{model_id} ({model_type} config)", "kind": family.kind,
            "sources": sources, "architecture": architecture, "notes": " ".join(
                note if note.endswith(".") else note + "." for note in notes)}


def import_config(path: str | os.PathLike, model_id: str | None = None) -> ImportedConfig:
    """Read a config.json (or a folder holding one) and return the validated spec made from it."""
    config, file = read_config(path)
    return spec_from_config(config, model_id or default_id(file), file)


def spec_from_config(config: dict, model_id: str, file: str | os.PathLike) -> ImportedConfig:
    """The validated spec of a config already read (a config.json, or one a trace file carries) and the spec
    file's data; errors name `file` and the config's field at fault."""
    root = _Config(config, str(file))
    data = _spec_data(root, model_id, str(Path(file).resolve()))
    try:
        spec = parse_spec(data, file=str(file), origin=str(file))
    except SpecError as error:
        raise SpecError(str(file), _spec_field(error.field, root.origins), error.message) from None
    return ImportedConfig(spec, data, Path(file))


def _spec_field(field: str | None, origins: dict) -> str:
    """'architecture.n_heads' -> 'num_attention_heads -> spec architecture.n_heads': the config
    key a broken spec rule came from, where one value maps onto that field."""
    if not field:
        return "spec"
    scope = "component" if ".components[" in field else "main"
    key = origins.get((scope, re.sub(r"\[\d+\]$", "", field.rsplit(".", 1)[-1])))
    return f"{key} -> spec {field}" if key else f"spec {field}"
