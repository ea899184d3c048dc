"""vit-tiny computed by llmviz: one forward function (torch, float32) over a ViTForImageClassification's
parameters that trains it (batched, autograd) and traces it (one picture, every intermediate under the
layout's tensor ids: scenes/layouts/vit.py), the weights under the layout's ids, and attention rollout.

It follows transformers' modeling_vit.py (eager attention): the 4 × 4 patches, each flattened channel-major
as the patch conv's kernel is, times W_patch plus its bias; [CLS] first; the learned positions added; per
layer x + Attn(LN(x)), then x + MLP(LN(x)) with exact GELU; the final LayerNorm; the classifier on [CLS].
Tests (tests/test_vit_tiny.py) hold it to transformers' logits and hidden states.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from llmviz.models.sim import sequence_trace
from llmviz.models.sim.trace import ActivationTrace
from llmviz.models.sim.vision_encoder import (VIT_LAYER, block_ids, block_weight_ids, block_weights, check_pixels,
                                              embed_patches, encoder, layer_norm, ln_ids, patch_ids)

# Axis names beyond tensor_ids.AXES: a patch's flattened pixels, a class.
VIT_AXES = {"p": "patch pixel (channel, row, column)", "k": "class"}


def forward(model, pixels: torch.Tensor, record=None) -> torch.Tensor:
    """pixel values (B, 3, H, W), as vit_image.preprocess gives them → class logits (B, classes).

    `record(id, tensor)`, when given, receives batch row 0's intermediates under the layout ids.
    Differentiable: training calls it."""
    cfg, vit = model.config, model.vit
    check_pixels(pixels, cfg.num_channels, cfg.image_size)
    emb = vit.embeddings
    conv = emb.patch_embeddings.projection
    x = embed_patches(pixels, cfg.patch_size, conv.weight, conv.bias, emb.cls_token, emb.position_embeddings[0],
                      record)
    if record is not None:
        record("embed.cls", emb.cls_token[0, 0])
    x = encoder(vit.layers, VIT_LAYER, x, cfg.num_attention_heads, record)
    pooled = layer_norm(vit.layernorm, x, record, "ln_f")[:, 0]
    logits = F.linear(pooled, model.classifier.weight, model.classifier.bias)
    if record is not None:
        record("pool", pooled[0])
        record("classifier.fc1", logits[0])
        record("probs", torch.softmax(logits[0], dim=-1))
    return logits


# ---- ids -------------------------------------------------------------------------------------

def trace_ids(n_layers: int, n_heads: int) -> list[tuple[str, tuple[str, ...]]]:
    """Every id `trace` records, in data-flow order, with its axes (t: token, [CLS] first, then the patches
    row by row; the patches themselves have no [CLS] row)."""
    return [*patch_ids(cls=True), *block_ids("", n_layers, n_heads), *ln_ids("ln_f"), ("pool", ("c",)),
            ("classifier.fc1", ("k",)), ("probs", ("k",))]


def weight_ids(n_layers: int, n_heads: int) -> list[tuple[str, tuple[str, ...]]]:
    """Every parameter under the layout's ids; matrices (out, in) like torch.nn.Linear, W_patch (c, p)."""
    return [("embed.patch.weight", ("c", "p")), ("embed.patch.bias", ("c",)), ("embed.pos.weight", ("t", "c")),
            *block_weight_ids("", n_layers, n_heads), ("ln_f.weight", ("c",)), ("ln_f.bias", ("c",)),
            ("classifier.fc1.weight", ("k", "c")), ("classifier.fc1.bias", ("k",))]


# ---- one picture -----------------------------------------------------------------------------

def pixel_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(3, H, W) float32 pixel values (vit_image.preprocess) as a (1, 3, H, W) tensor."""
    array = np.asarray(pixels, dtype=np.float32)
    if array.ndim != 3:
        raise ValueError(f"pixels must be (3, height, width), got shape {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array)).unsqueeze(0)


@torch.inference_mode()
def trace(model, pixels: np.ndarray) -> ActivationTrace:
    """One picture's intermediates, float32 numpy under the layout's ids."""
    got: dict[str, torch.Tensor] = {}
    forward(model, pixel_tensor(pixels), record=got.__setitem__)
    cfg = model.config
    return sequence_trace.in_order(sequence_trace.numpy_copies(got), trace_ids(cfg.num_hidden_layers,
                                                                                cfg.num_attention_heads))


@torch.inference_mode()
def weights(model) -> ActivationTrace:
    """Every parameter as float32 numpy under the layout's weight ids: q, k and v cut per head, the patch
    conv as the (d_model, channels·patch²) matrix it is."""
    cfg = model.config
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    e = "vit.embeddings"
    conv = sd[f"{e}.patch_embeddings.projection.weight"]
    named = {"embed.patch.weight": conv.reshape(conv.shape[0], -1), "embed.patch.bias": sd[f"{e}.patch_embeddings.projection.bias"],
             "embed.pos.weight": sd[f"{e}.position_embeddings"][0], "ln_f.weight": sd["vit.layernorm.weight"],
             "ln_f.bias": sd["vit.layernorm.bias"], "classifier.fc1.weight": sd["classifier.weight"],
             "classifier.fc1.bias": sd["classifier.bias"],
             **block_weights(sd, VIT_LAYER, "", "vit.layers", cfg.num_hidden_layers, cfg.num_attention_heads,
                             cfg.hidden_size)}
    return sequence_trace.in_order(sequence_trace.numpy_copies(named),
                                   weight_ids(cfg.num_hidden_layers, cfg.num_attention_heads), "weight")


# ---- what the attention looks at ---------------------------------------------------------------

def attention_stack(trace) -> np.ndarray:
    """(layers, heads, T, T) softmax attention of a trace."""
    layers = [[] for _ in range(_count(trace, "blocks.{}.resid2"))]
    for b, row in enumerate(layers):
        h = 0
        while f"blocks.{b}.attn.head.{h}.softmax" in trace:
            row.append(np.asarray(trace[f"blocks.{b}.attn.head.{h}.softmax"], np.float64))
            h += 1
    return np.asarray(layers)


def _count(trace, pattern: str) -> int:
    n = 0
    while pattern.format(n) in trace:
        n += 1
    return n


def rollout(trace) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020) of a trace through every layer: (T, T), row t saying how
    much each input token flows into token t at the top (attention_analysis.rollout: per layer the heads'
    mean plus the identity for the residual path, rows renormalised, multiplied from the first layer up)."""
    from llmviz.models.attention_analysis import rollout as rollout_steps

    return rollout_steps(attention_stack(trace))[-1]


def cls_map(rows: np.ndarray, grid: int, token: int = 0) -> np.ndarray:
    """One token's row of a (T, T) attention (or rollout) over the patches, as the (grid, grid) picture:
    [CLS]'s (token 0) unless another is asked for (patch k is token k + 1)."""
    return np.asarray(rows[token, 1:], np.float64).reshape(grid, grid)


def position_similarity(positions: np.ndarray) -> np.ndarray:
    """(P, P) cosine similarity between the patches' learned position embeddings: `positions` is W_P
    (T, d) with [CLS]'s row first, which is left out; row p, column q is cos(W_P[p + 1], W_P[q + 1])."""
    rows = np.asarray(positions, np.float64)[1:]
    unit = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    return unit @ unit.T


def similarity_tiles(similarity: np.ndarray, grid: int) -> np.ndarray:
    """The (P, P) similarity as a grid of maps, (grid², grid²): the (grid, grid) block at tile (i, j) is patch
    (i, j)'s similarity to every patch, laid out where those patches are in the picture."""
    s = np.asarray(similarity).reshape(grid, grid, grid, grid)      # (i, j, a, b)
    return s.transpose(0, 2, 1, 3).reshape(grid * grid, grid * grid)
