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

import math

import numpy as np
import torch
import torch.nn.functional as F

from llmviz.models.sim import clip_vocab, sequence_trace
from llmviz.models.sim.trace import ActivationTrace
from llmviz.models.sim.vit_trace import _layer_norm, cut_patches, pixel_tensor

VISION = "vision."


def _attention(attn, h: torch.Tensor, n_heads: int, causal: bool, record, p: str) -> torch.Tensor:
    b, t, c = h.shape
    d = c // n_heads

    def heads(proj):
        return F.linear(h, proj.weight, proj.bias).view(b, t, n_heads, d).transpose(1, 2)   # (B, H, T, d)
    q, k, v = heads(attn.q_proj), heads(attn.k_proj), heads(attn.v_proj)
    if record is None:   # the same softmax(q·kᵀ/√d)·v, fused, for training
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    else:
        scores = q @ k.transpose(-1, -2) / math.sqrt(d)
        masked = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf")) if causal else scores
        weights = masked.softmax(dim=-1)
        out = weights @ v
        named = [("q", q), ("k", k), ("v", v), ("scores", scores), *([("scores_masked", masked)] if causal else []),
                 ("softmax", weights), ("out", out)]
        for i in range(n_heads):
            for name, value in named:
                record(f"{p}.attn.head.{i}.{name}", value[0, i])
    proj = F.linear(out.transpose(1, 2).reshape(b, t, c), attn.out_proj.weight, attn.out_proj.bias)
    if record is not None:
        record(f"{p}.attn.proj", proj[0])
    return proj


def _encoder(layers, x: torch.Tensor, n_heads: int, causal: bool, record, prefix: str) -> torch.Tensor:
    for i, layer in enumerate(layers):
        p = f"{prefix}blocks.{i}"
        x = x + _attention(layer.self_attn, _layer_norm(layer.layer_norm1, x, record, f"{p}.ln1"), n_heads,
                           causal, record, p)
        if record is not None:
            record(f"{p}.resid1", x[0])
        h = _layer_norm(layer.layer_norm2, x, record, f"{p}.ln2")
        fc = F.linear(h, layer.mlp.fc1.weight, layer.mlp.fc1.bias)
        act = F.gelu(fc)
        proj = F.linear(act, layer.mlp.fc2.weight, layer.mlp.fc2.bias)
        x = x + proj
        if record is not None:
            for name, value in (("mlp.fc", fc), ("mlp.gelu", act), ("mlp.proj", proj), ("resid2", x)):
                record(f"{p}.{name}", value[0])
    return x


def image_features(model, pixels: torch.Tensor, record=None) -> torch.Tensor:
    """pixel values (B, 3, H, W), as clip_image.preprocess gives them → image embeddings (B, projection),
    not normalised (CLIPModel.get_image_features). `record(id, tensor)` receives batch row 0's intermediates."""
    vm, cfg = model.vision_model, model.config.vision_config
    if pixels.dim() != 4 or tuple(pixels.shape[1:]) != (3, cfg.image_size, cfg.image_size):
        raise ValueError(f"pixels must be (batch, 3, {cfg.image_size}, {cfg.image_size}), got {tuple(pixels.shape)}")
    emb = vm.embeddings
    conv = emb.patch_embedding.weight
    patches = cut_patches(pixels, cfg.patch_size)
    embedded = F.linear(patches, conv.reshape(conv.shape[0], -1))
    cls = emb.class_embedding.expand(pixels.shape[0], 1, -1)
    x = torch.cat([cls, embedded], dim=1) + emb.position_embedding.weight
    r = None if record is None else (lambda name, value: record(VISION + name, value))
    if r is not None:
        for name, value in (("patches", patches[0]), ("embed.patch", embedded[0]),
                            ("embed.pos", emb.position_embedding.weight), ("embed.out", x[0])):
            r(name, value)
    x = _layer_norm(vm.pre_layrnorm, x, r, "ln0")
    x = _encoder(vm.encoder.layers, x, cfg.num_attention_heads, False, r, "")
    pooled = _layer_norm(vm.post_layernorm, x, r, "ln_f")[:, 0]
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
    x = _encoder(tm.encoder.layers, x, cfg.num_attention_heads, True, record, "")
    h = _layer_norm(tm.final_layer_norm, x, record, "ln_f")
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

def _ln_ids(prefix: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(f"{prefix}.mean", ("t",)), (f"{prefix}.std", ("t",)), (f"{prefix}.out", ("t", "c"))]


def _block_ids(prefix: str, n_layers: int, n_heads: int, causal: bool) -> list[tuple[str, tuple[str, ...]]]:
    ids = []
    for b in range(n_layers):
        p = f"{prefix}blocks.{b}"
        ids += _ln_ids(f"{p}.ln1")
        for h in range(n_heads):
            a = f"{p}.attn.head.{h}"
            ids += [(f"{a}.{n}", ("t", "d")) for n in "qkv"]
            ids += [(f"{a}.scores", ("t", "t'")), *([(f"{a}.scores_masked", ("t", "t'"))] if causal else []),
                    (f"{a}.softmax", ("t", "t'")), (f"{a}.out", ("t", "d"))]
        ids += [(f"{p}.attn.proj", ("t", "c")), (f"{p}.resid1", ("t", "c")), *_ln_ids(f"{p}.ln2"),
                (f"{p}.mlp.fc", ("t", "f")), (f"{p}.mlp.gelu", ("t", "f")), (f"{p}.mlp.proj", ("t", "c")),
                (f"{p}.resid2", ("t", "c"))]
    return ids


def trace_ids(model) -> list[tuple[str, tuple[str, ...]]]:
    """Every id `trace` records, in data-flow order, with its axes (vision t: [CLS] then the patches row by
    row; text t: the caption's tokens; e: an embedding's channel in the shared space)."""
    v, t = model.config.vision_config, model.config.text_config
    ids = [(VISION + name, axes) for name, axes in (
        ("patches", ("t", "p")), ("embed.patch", ("t", "c")), ("embed.pos", ("t", "c")),
        ("embed.out", ("t", "c")), *_ln_ids("ln0"), *_block_ids("", v.num_hidden_layers, v.num_attention_heads, False),
        *_ln_ids("ln_f"), ("pool", ("c",)), ("proj", ("e",)))]
    ids += [("tokens", ("t",)), ("embed.tok", ("t", "c")), ("embed.pos", ("t", "c")), ("embed.out", ("t", "c")),
            *_block_ids("", t.num_hidden_layers, t.num_attention_heads, True), *_ln_ids("ln_f"), ("pool", ("c",)),
            ("proj", ("e",))]
    return ids + [("contrast.image", ("e",)), ("contrast.text", ("e",)), ("contrast.logits", ("k",))]


def _tower_weight_ids(prefix: str, n_layers: int, n_heads: int) -> list[tuple[str, tuple[str, ...]]]:
    ids = []
    for b in range(n_layers):
        p = f"{prefix}blocks.{b}"
        ids += [(f"{p}.ln1.weight", ("c",)), (f"{p}.ln1.bias", ("c",))]
        for h in range(n_heads):
            a = f"{p}.attn.head.{h}"
            ids += [x for n in "qkv" for x in ((f"{a}.w{n}", ("d", "c")), (f"{a}.b{n}", ("d",)))]
        ids += [(f"{p}.attn.proj.weight", ("c", "c")), (f"{p}.attn.proj.bias", ("c",)),
                (f"{p}.ln2.weight", ("c",)), (f"{p}.ln2.bias", ("c",)),
                (f"{p}.mlp.fc.weight", ("f", "c")), (f"{p}.mlp.fc.bias", ("f",)),
                (f"{p}.mlp.proj.weight", ("c", "f")), (f"{p}.mlp.proj.bias", ("c",))]
    return ids + [(f"{prefix}ln_f.weight", ("c",)), (f"{prefix}ln_f.bias", ("c",)), (f"{prefix}proj.weight", ("e", "c"))]


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
    d = cfg.hidden_size // cfg.num_attention_heads
    named = {f"{prefix}ln_f.weight": sd[f"{module}.{final_norm}.weight"],
             f"{prefix}ln_f.bias": sd[f"{module}.{final_norm}.bias"], f"{prefix}proj.weight": sd[projection]}
    for b in range(cfg.num_hidden_layers):
        p, m = f"{prefix}blocks.{b}", f"{module}.encoder.layers.{b}"
        for n in "qkv":
            w, bias = sd[f"{m}.self_attn.{n}_proj.weight"], sd[f"{m}.self_attn.{n}_proj.bias"]
            for h in range(cfg.num_attention_heads):
                named[f"{p}.attn.head.{h}.w{n}"] = w[h * d:(h + 1) * d]
                named[f"{p}.attn.head.{h}.b{n}"] = bias[h * d:(h + 1) * d]
        for ours, theirs in (("attn.proj", "self_attn.out_proj"), ("ln1", "layer_norm1"), ("ln2", "layer_norm2"),
                             ("mlp.fc", "mlp.fc1"), ("mlp.proj", "mlp.fc2")):
            named[f"{p}.{ours}.weight"] = sd[f"{m}.{theirs}.weight"]
            named[f"{p}.{ours}.bias"] = sd[f"{m}.{theirs}.bias"]
    return named


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
