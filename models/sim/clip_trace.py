"""clip-tiny computed by llmviz: the two towers' forward (torch, float32) over a CLIPModel's parameters, used
batched to train it and on one picture and one caption to trace it (every intermediate under the clip
layout's ids: the vision tower under "vision.", the text tower unprefixed, the shared space under
"contrast."), the weights under the same ids, and the embeddings of many pictures and captions at once.

It follows transformers' modeling_clip.py (eager attention): the 4 × 4 patches, each flattened channel-major
as the bias-free patch conv's kernel is; [CLS] first; the learned positions added; CLIP's pre-LayerNorm
(ln0 here); per layer x + Attn(LN(x)), then x + MLP(LN(x)) with exact GELU; the text tower's attention
causal; the post-LayerNorm read at [CLS] (ln_f, computed on every token as LayerNorm is per token), the
final LayerNorm read at the first <end>; both projected without bias; the score cos · e^logit_scale.
Tests (tests/test_clip_tiny.py) hold it to transformers' embeddings, logits and hidden states.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from llmviz.models.sim import clip_vocab, sequence_trace
from llmviz.models.sim.trace import ActivationTrace
from llmviz.models.sim.vision_encoder import (CLIP_LAYER, block_ids, block_weight_ids, block_weights, check_pixels,
                                              embed_patches, encoder, layer_norm, ln_ids, patch_ids)
from llmviz.models.sim.vit_trace import pixel_tensor

VISION = "vision."


def image_features(model, pixels: torch.Tensor, record=None) -> torch.Tensor:
    """pixel values (B, 3, H, W), as clip_image.preprocess gives them → image embeddings (B, projection),
    not normalised (CLIPModel.get_image_features). `record(id, tensor)` receives batch row 0's intermediates."""
    vm, cfg = model.vision_model, model.config.vision_config
    check_pixels(pixels, 3, cfg.image_size)
    emb = vm.embeddings
    r = None if record is None else (lambda name, value: record(VISION + name, value))
    x = embed_patches(pixels, cfg.patch_size, emb.patch_embedding.weight, None, emb.class_embedding,
                      emb.position_embedding.weight, r)
    x = layer_norm(vm.pre_layrnorm, x, r, "ln0")
    x = encoder(vm.encoder.layers, CLIP_LAYER, x, cfg.num_attention_heads, r)
    pooled = layer_norm(vm.post_layernorm, x, r, "ln_f")[:, 0]
    out = F.linear(pooled, model.visual_projection.weight)
    if r is not None:
        r("pool", pooled[0])
        r("proj", out[0])
    return out


def text_features(model, ids: torch.Tensor, record=None) -> torch.Tensor:
    """(B, T) token ids, each row <start> … <end> then <pad>s → text embeddings (B, projection), not
    normalised (CLIPModel.get_text_features), read at each row's first <end>."""
    tm, cfg = model.text_model, model.config.text_config
    sequence_trace.check_batch(ids)
    if ids.shape[1] > cfg.max_position_embeddings:
        raise ValueError(f"captions of {ids.shape[1]} tokens; at most {cfg.max_position_embeddings} fit")
    ends = (ids == cfg.eos_token_id).int().argmax(-1)
    if not bool((ids[torch.arange(len(ids)), ends] == cfg.eos_token_id).all()):
        raise ValueError("every caption must end with <end>")
    tok = F.embedding(ids, tm.embeddings.token_embedding.weight)
    pos = tm.embeddings.position_embedding.weight[:ids.shape[1]]
    x = tok + pos
    if record is not None:
        for name, value in (("tokens", ids[0]), ("embed.tok", tok[0]), ("embed.pos", pos), ("embed.out", x[0])):
            record(name, value)
    x = encoder(tm.encoder.layers, CLIP_LAYER, x, cfg.num_attention_heads, record, causal=True)
    h = layer_norm(tm.final_layer_norm, x, record, "ln_f")
    pooled = h[torch.arange(len(ids)), ends]
    out = F.linear(pooled, model.text_projection.weight)
    if record is not None:
        record("pool", pooled[0])
        record("proj", out[0])
    return out


def unit(x: torch.Tensor) -> torch.Tensor:
    """x / ‖x‖ along the last axis (transformers' _get_vector_norm: the square root of the sum of squares)."""
    return x / x.pow(2).sum(-1, keepdim=True).sqrt()


def logits_per_image(model, image_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
    """(images, texts) cos(image, text) · e^logit_scale of unnormalised embeddings."""
    return unit(image_embeds) @ unit(text_embeds).T * model.logit_scale.exp()


def caption_batch(captions) -> torch.Tensor:
    """(n, T) token ids of captions (clip_vocab.encode, CaptionError for a bad one), padded after <end>."""
    encoded = [clip_vocab.encode(c) for c in captions]
    width = max(len(e) for e in encoded)
    return torch.tensor([e + [clip_vocab.PAD_ID] * (width - len(e)) for e in encoded], dtype=torch.long)


# ---- ids -------------------------------------------------------------------------------------

def trace_ids(model) -> list[tuple[str, tuple[str, ...]]]:
    """Every id `trace` records, in data-flow order, with its axes (vision t: [CLS] then the patches row by
    row; text t: the caption's tokens; e: an embedding's channel in the shared space)."""
    v, t = model.config.vision_config, model.config.text_config
    ids = [(VISION + name, axes) for name, axes in (
        *patch_ids(), *ln_ids("ln0"), *block_ids("", v.num_hidden_layers, v.num_attention_heads),
        *ln_ids("ln_f"), ("pool", ("c",)), ("proj", ("e",)))]
    ids += [("tokens", ("t",)), ("embed.tok", ("t", "c")), ("embed.pos", ("t", "c")), ("embed.out", ("t", "c")),
            *block_ids("", t.num_hidden_layers, t.num_attention_heads, True), *ln_ids("ln_f"), ("pool", ("c",)),
            ("proj", ("e",))]
    return ids + [("contrast.image", ("e",)), ("contrast.text", ("e",)), ("contrast.logits", ("k",))]


def _tower_weight_ids(prefix: str, n_layers: int, n_heads: int) -> list[tuple[str, tuple[str, ...]]]:
    return [*block_weight_ids(prefix, n_layers, n_heads), (f"{prefix}ln_f.weight", ("c",)),
            (f"{prefix}ln_f.bias", ("c",)), (f"{prefix}proj.weight", ("e", "c"))]


def weight_ids(model) -> list[tuple[str, tuple[str, ...]]]:
    """Every parameter under the layout's ids; matrices (out, in) like torch.nn.Linear, W_patch (c, p)."""
    v, t = model.config.vision_config, model.config.text_config
    return [("vision.embed.patch.weight", ("c", "p")), ("vision.embed.cls", ("c",)), ("vision.embed.pos.weight", ("t", "c")),
            ("vision.ln0.weight", ("c",)), ("vision.ln0.bias", ("c",)),
            *_tower_weight_ids(VISION, v.num_hidden_layers, v.num_attention_heads),
            ("embed.tok.weight", ("v", "c")), ("embed.pos.weight", ("t", "c")),
            *_tower_weight_ids("", t.num_hidden_layers, t.num_attention_heads), ("logit_scale", ("i",))]


# ---- one picture and one caption ------------------------------------------------------------

@torch.inference_mode()
def trace(model, pixels: np.ndarray, caption: str) -> ActivationTrace:
    """One picture's and one caption's intermediates, float32 numpy under the layout's ids."""
    got: dict[str, torch.Tensor] = {}
    image = image_features(model, pixel_tensor(pixels), record=got.__setitem__)
    vision = {k: got.pop(k) for k in list(got)}
    text = text_features(model, caption_batch([caption]), record=got.__setitem__)
    got.update(vision)
    got["contrast.image"], got["contrast.text"] = unit(image)[0], unit(text)[0]
    got["contrast.logits"] = logits_per_image(model, image, text)[0]
    return sequence_trace.in_order(sequence_trace.numpy_copies(got), trace_ids(model))


def _tower_weights(sd: dict, prefix: str, module: str, cfg, final_norm: str, projection: str) -> dict:
    return {f"{prefix}ln_f.weight": sd[f"{module}.{final_norm}.weight"],
            f"{prefix}ln_f.bias": sd[f"{module}.{final_norm}.bias"], f"{prefix}proj.weight": sd[projection],
            **block_weights(sd, CLIP_LAYER, prefix, f"{module}.encoder.layers", cfg.num_hidden_layers,
                            cfg.num_attention_heads, cfg.hidden_size)}


@torch.inference_mode()
def weights(model) -> ActivationTrace:
    """Every parameter as float32 numpy under the layout's weight ids: q, k and v cut per head, the patch
    conv as the (width, channels·patch²) matrix it is."""
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    v, t = model.config.vision_config, model.config.text_config
    conv = sd["vision_model.embeddings.patch_embedding.weight"]
    named = {"vision.embed.patch.weight": conv.reshape(conv.shape[0], -1),
             "vision.embed.cls": sd["vision_model.embeddings.class_embedding"],
             "vision.embed.pos.weight": sd["vision_model.embeddings.position_embedding.weight"],
             "vision.ln0.weight": sd["vision_model.pre_layrnorm.weight"],
             "vision.ln0.bias": sd["vision_model.pre_layrnorm.bias"],
             "embed.tok.weight": sd["text_model.embeddings.token_embedding.weight"],
             "embed.pos.weight": sd["text_model.embeddings.position_embedding.weight"],
             "logit_scale": sd["logit_scale"].reshape(1),
             **_tower_weights(sd, VISION, "vision_model", v, "post_layernorm", "visual_projection.weight"),
             **_tower_weights(sd, "", "text_model", t, "final_layer_norm", "text_projection.weight")}
    return sequence_trace.in_order(sequence_trace.numpy_copies(named), weight_ids(model), "weight")


# ---- many at once ----------------------------------------------------------------------------

@torch.inference_mode()
def embed_pictures(model, pixels: np.ndarray, batch: int = 100) -> np.ndarray:
    """(n, projection) float32 unit image embeddings of (n, 3, H, W) pixel values."""
    out = [unit(image_features(model, torch.from_numpy(np.ascontiguousarray(pixels[i:i + batch]))))
           for i in range(0, len(pixels), batch)]
    return torch.cat(out).numpy()


@torch.inference_mode()
def embed_captions(model, captions) -> np.ndarray:
    """(n, projection) float32 unit text embeddings of captions (CaptionError for a bad one)."""
    return unit(text_features(model, caption_batch(captions))).numpy()
