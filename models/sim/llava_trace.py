"""llava-tiny computed by llmviz: one forward function (torch, float32) over a LlavaForConditionalGeneration's
parameters that trains it (batched, autograd) and traces it (one picture and its text, every intermediate
under the layout's tensor ids: scenes/layouts/vlm.py), the weights under the layout's ids, greedy answers
with their probabilities, and what each answer token's attention draws from the image patches.

It follows transformers' modeling_clip.py, modeling_llava.py and modeling_llama.py (eager attention): the
tower's 4 × 4 patches times W_patch (no bias), [CLS] first, the learned positions, CLIP's pre-LayerNorm,
per layer x + Attn(LN(x)), x + MLP(LN(x)) with exact GELU; the last layer's patch tokens ([CLS] dropped)
through linear_1, GELU, linear_2 into the places of the <image> tokens; then Llama: x + Attn(RMSNorm(x))
with RoPE and the causal mask, x + down(SiLU(gate)·up) of RMSNorm(x), the final RMSNorm and the head.
Tests (tests/test_llava_tiny.py) hold it to transformers' logits and hidden states.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from llmviz.models.sim import llava_vocab, sequence_trace
from llmviz.models.sim.long_attention import rotate
from llmviz.models.sim.mamba_trace import _rms_norm
from llmviz.models.sim.trace import ActivationTrace
from llmviz.models.sim.vision_encoder import (CLIP_LAYER, block_ids, block_weight_ids, block_weights, check_pixels,
                                              embed_patches, encoder, layer_norm, ln_ids, patch_ids)

V = "vision."


def image_features(model, pixels: torch.Tensor, record=None) -> torch.Tensor:
    """pixel values (B, 3, H, W) → the projector's image tokens (B, patches, d_model)."""
    cfg = model.config.vision_config
    check_pixels(pixels, cfg.num_channels, cfg.image_size)
    tower = model.model.vision_tower
    emb = tower.embeddings
    x = embed_patches(pixels, cfg.patch_size, emb.patch_embedding.weight, None, emb.class_embedding,
                      emb.position_embedding.weight, record, V)
    x = layer_norm(tower.pre_layrnorm, x, record, V + "ln0")
    hidden = [x]                       # transformers' hidden_states: the embeddings, then each layer's output
    # training needs no layer past the one LLaVA reads; a trace records every layer
    at = len(tower.encoder.layers) + 1 + model.config.vision_feature_layer     # vision_feature_layer, from 0
    n_run = len(tower.encoder.layers) if record is not None else at
    x = encoder(tower.encoder.layers[:n_run], CLIP_LAYER, x, cfg.num_attention_heads, record, V, hidden=hidden)
    if record is not None:   # CLIP's post_layernorm reads [CLS] alone (its pooled output), which LLaVA ignores
        layer_norm(tower.post_layernorm, x[:, :1], record, V + "ln_f")
    # vision_feature_layer's hidden state, strategy "default": [CLS] dropped
    features = hidden[at][:, 1:]
    proj = model.model.multi_modal_projector
    fc1 = F.linear(features, proj.linear_1.weight, proj.linear_1.bias)
    act1 = F.gelu(fc1)
    fc2 = F.linear(act1, proj.linear_2.weight, proj.linear_2.bias)
    if record is not None:
        for name, value in ((V + "image_features", features), ("projector.fc1", fc1), ("projector.act1", act1),
                            ("projector.fc2", fc2), ("embed.image", fc2)):
            record(name, value[0])
    return fc2


def _lm_attention(attn, h: torch.Tensor, n_heads: int, theta: float, record, p: str) -> torch.Tensor:
    b, t, c = h.shape
    d = c // n_heads

    def heads(proj):
        return F.linear(h, proj.weight).view(b, t, n_heads, d).transpose(1, 2)      # (B, H, T, d)
    q, k, v = heads(attn.q_proj), heads(attn.k_proj), heads(attn.v_proj)
    positions = torch.arange(t)
    q_rope, k_rope = rotate(q, positions, theta), rotate(k, positions, theta)
    if record is None:
        out = F.scaled_dot_product_attention(q_rope, k_rope, v, is_causal=True)
    else:
        scores = (q_rope @ k_rope.transpose(-1, -2)) * d ** -0.5
        future = torch.ones(t, t, dtype=torch.bool).triu(1)
        masked = scores.masked_fill(future, float("-inf"))
        weights = masked.softmax(dim=-1)
        out = weights @ v
    proj = F.linear(out.transpose(1, 2).reshape(b, t, c), attn.o_proj.weight)
    if record is not None:
        for i in range(n_heads):
            for name, value in (("q", q), ("q_rope", q_rope), ("k", k), ("k_rope", k_rope), ("v", v),
                                ("scores", scores), ("scores_masked", masked), ("softmax", weights), ("out", out)):
                record(f"{p}.attn.head.{i}.{name}", value[0, i])
        record(f"{p}.attn.proj", proj[0])
    return proj


def forward(model, pixels: torch.Tensor, ids: torch.Tensor, record=None) -> torch.Tensor:
    """pixel values (B, 3, H, W) and token ids (B, T) holding the image placeholders → logits (B, T, vocab).

    `record(id, tensor)`, when given, receives batch row 0's intermediates under the layout ids.
    Differentiable: training calls it."""
    sequence_trace.check_batch(ids)
    cfg = model.config.text_config
    features = image_features(model, pixels, record)
    lm = model.model.language_model
    emb = F.embedding(ids, lm.embed_tokens.weight)
    image = ids == model.config.image_token_id
    if int(image.sum()) != features.shape[0] * features.shape[1]:
        raise ValueError(f"the ids hold {int(image.sum())} image tokens; the pictures give "
                         f"{features.shape[0] * features.shape[1]}")
    x = emb.masked_scatter(image[..., None], features)    # the image tokens take the projector's places
    if record is not None:
        text = ~image[0]
        record("tokens", ids[0][text])
        record("embed.tok", emb[0][text])
        record("embed.out", x[0])
    eps, theta = cfg.rms_norm_eps, float(cfg.rope_parameters["rope_theta"])
    for i, layer in enumerate(lm.layers):
        p = f"blocks.{i}"
        x = x + _lm_attention(layer.self_attn, _rms_norm(x, layer.input_layernorm.weight, eps, record, f"{p}.ln1"),
                              cfg.num_attention_heads, theta, record, p)
        if record is not None:
            record(f"{p}.resid1", x[0])
        h = _rms_norm(x, layer.post_attention_layernorm.weight, eps, record, f"{p}.ln2")
        mlp = layer.mlp
        gate = F.linear(h, mlp.gate_proj.weight)
        act = F.silu(gate)
        up = F.linear(h, mlp.up_proj.weight)
        gated = act * up
        down = F.linear(gated, mlp.down_proj.weight)
        x = x + down
        if record is not None:
            for name, value in (("gate", gate), ("act", act), ("up", up), ("gated", gated), ("down", down)):
                record(f"{p}.mlp.{name}", value[0])
            record(f"{p}.resid2", x[0])
    h = _rms_norm(x, lm.norm.weight, eps, record, "ln_f")
    return sequence_trace.lm_head(h, model.lm_head.weight, record)


# ---- ids -------------------------------------------------------------------------------------

def trace_ids(vision_layers: int, vision_heads: int, n_layers: int, n_heads: int) -> list[tuple[str, tuple[str, ...]]]:
    """Every id `trace` records, in data-flow order, with its axes (vision t: [CLS] then the patches; the
    decoder's t: the image tokens, then the text)."""
    ids = [*patch_ids(V), *ln_ids(V + "ln0"), *block_ids(V, vision_layers, vision_heads)]
    ids += ln_ids(V + "ln_f") + [(V + "image_features", ("t", "c")), ("projector.fc1", ("t", "c")),
                                 ("projector.act1", ("t", "c")), ("projector.fc2", ("t", "c")),
                                 ("embed.image", ("t", "c")), ("tokens", ("t",)), ("embed.tok", ("t", "c")),
                                 ("embed.out", ("t", "c"))]
    rms = lambda pre: [(f"{pre}.rms", ("t",)), (f"{pre}.out", ("t", "c"))]  # noqa: E731
    for b in range(n_layers):
        p = f"blocks.{b}"
        ids += rms(f"{p}.ln1")
        for h in range(n_heads):
            a = f"{p}.attn.head.{h}"
            ids += [(f"{a}.{n}", ("t", "d")) for n in ("q", "q_rope", "k", "k_rope", "v")]
            ids += [(f"{a}.{n}", ("t", "t'")) for n in ("scores", "scores_masked", "softmax")]
            ids += [(f"{a}.out", ("t", "d"))]
        ids += [(f"{p}.attn.proj", ("t", "c")), (f"{p}.resid1", ("t", "c")), *rms(f"{p}.ln2")]
        ids += [(f"{p}.mlp.{n}", ("t", "f")) for n in ("gate", "act", "up", "gated")]
        ids += [(f"{p}.mlp.down", ("t", "c")), (f"{p}.resid2", ("t", "c"))]
    return ids + rms("ln_f") + [("logits", ("t", "v")), ("probs", ("t", "v"))]


def weight_ids(vision_layers: int, vision_heads: int, n_layers: int, n_heads: int) -> list[tuple[str, tuple[str, ...]]]:
    """Every parameter under the layout's ids; matrices (out, in) like torch.nn.Linear, W_patch (c, p)."""
    ids = [(V + "embed.patch.weight", ("c", "p")), (V + "embed.cls", ("c",)), (V + "embed.pos.weight", ("t", "c")),
           (V + "ln0.weight", ("c",)), (V + "ln0.bias", ("c",)), *block_weight_ids(V, vision_layers, vision_heads)]
    ids += [(V + "ln_f.weight", ("c",)), (V + "ln_f.bias", ("c",)),
            ("projector.fc1.weight", ("c", "c")), ("projector.fc1.bias", ("c",)),
            ("projector.fc2.weight", ("c", "c")), ("projector.fc2.bias", ("c",)), ("embed.tok.weight", ("v", "c"))]
    for b in range(n_layers):
        p = f"blocks.{b}"
        ids += [(f"{p}.ln1.weight", ("c",))]
        ids += [(f"{p}.attn.head.{h}.w{n}", ("d", "c")) for h in range(n_heads) for n in "qkv"]
        ids += [(f"{p}.attn.proj.weight", ("c", "c")), (f"{p}.ln2.weight", ("c",)),
                (f"{p}.mlp.gate.weight", ("f", "c")), (f"{p}.mlp.up.weight", ("f", "c")),
                (f"{p}.mlp.down.weight", ("c", "f"))]
    return ids + [("ln_f.weight", ("c",)), ("lm_head.weight", ("v", "c"))]


def _sizes(model) -> tuple[int, int, int, int]:
    v, t = model.config.vision_config, model.config.text_config
    return v.num_hidden_layers, v.num_attention_heads, t.num_hidden_layers, t.num_attention_heads


# ---- one picture -----------------------------------------------------------------------------

def pixel_tensor(pixels: np.ndarray) -> torch.Tensor:
    from llmviz.models.sim.vit_trace import pixel_tensor as one

    return one(pixels)


def sequence(model, question: list[int], answer: list[int] = ()) -> list[int]:
    """The ids of one conversation turn about one picture: image placeholders, the question, the answer so far."""
    n_image = model.config.image_seq_length
    return llava_vocab.prompt_ids(list(question), n_image) + list(answer)


@torch.inference_mode()
def trace(model, pixels: np.ndarray, ids) -> ActivationTrace:
    """One picture's and one token sequence's intermediates, float32 numpy under the layout's ids."""
    got: dict[str, torch.Tensor] = {}
    forward(model, pixel_tensor(pixels), sequence_trace.token_tensor(ids, model.config.text_config.vocab_size),
            record=got.__setitem__)
    return sequence_trace.in_order(sequence_trace.numpy_copies(got), trace_ids(*_sizes(model)))


@torch.inference_mode()
def weights(model) -> ActivationTrace:
    """Every parameter as float32 numpy under the layout's weight ids: q, k and v cut per head, the patch
    conv as the (d_model, channels·patch²) matrix it is."""
    vl, vh, n_layers, n_heads = _sizes(model)
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    vd, d = model.config.vision_config.hidden_size, model.config.text_config.hidden_size
    e, t = "model.vision_tower.embeddings", "model.vision_tower"
    conv = sd[f"{e}.patch_embedding.weight"]
    named = {V + "embed.patch.weight": conv.reshape(conv.shape[0], -1), V + "embed.cls": sd[f"{e}.class_embedding"],
             V + "embed.pos.weight": sd[f"{e}.position_embedding.weight"],
             V + "ln0.weight": sd[f"{t}.pre_layrnorm.weight"], V + "ln0.bias": sd[f"{t}.pre_layrnorm.bias"],
             V + "ln_f.weight": sd[f"{t}.post_layernorm.weight"], V + "ln_f.bias": sd[f"{t}.post_layernorm.bias"]}
    named.update(block_weights(sd, CLIP_LAYER, V, f"{t}.encoder.layers", vl, vh, vd))
    mp = "model.multi_modal_projector"
    for ours, theirs in (("fc1", "linear_1"), ("fc2", "linear_2")):
        for w in ("weight", "bias"):
            named[f"projector.{ours}.{w}"] = sd[f"{mp}.{theirs}.{w}"]
    lm = "model.language_model"
    named.update({"embed.tok.weight": sd[f"{lm}.embed_tokens.weight"], "ln_f.weight": sd[f"{lm}.norm.weight"],
                  "lm_head.weight": sd["lm_head.weight"]})
    hd = d // n_heads
    for b in range(n_layers):
        p, m = f"blocks.{b}", f"{lm}.layers.{b}"
        for n in "qkv":
            w = sd[f"{m}.self_attn.{n}_proj.weight"]
            for h in range(n_heads):
                named[f"{p}.attn.head.{h}.w{n}"] = w[h * hd:(h + 1) * hd]
        named.update({f"{p}.ln1.weight": sd[f"{m}.input_layernorm.weight"],
                      f"{p}.ln2.weight": sd[f"{m}.post_attention_layernorm.weight"],
                      f"{p}.attn.proj.weight": sd[f"{m}.self_attn.o_proj.weight"],
                      f"{p}.mlp.gate.weight": sd[f"{m}.mlp.gate_proj.weight"],
                      f"{p}.mlp.up.weight": sd[f"{m}.mlp.up_proj.weight"],
                      f"{p}.mlp.down.weight": sd[f"{m}.mlp.down_proj.weight"]})
    return sequence_trace.in_order(sequence_trace.numpy_copies(named), weight_ids(vl, vh, n_layers, n_heads), "weight")


# ---- answers ---------------------------------------------------------------------------------

@torch.inference_mode()
def greedy_answer(model, pixels: np.ndarray, question: list[int],
                  max_tokens: int = llava_vocab.MAX_ANSWER_TOKENS) -> list[tuple[int, float]]:
    """The most likely answer, token by token up to </s>: (id, its probability when it was chosen)."""
    px = pixel_tensor(pixels)
    out: list[tuple[int, float]] = []
    for _ in range(max_tokens):
        ids = sequence_trace.token_tensor(sequence(model, question, [i for i, _ in out]),
                                          model.config.text_config.vocab_size)
        probs = torch.softmax(forward(model, px, ids)[0, -1], -1)
        token = int(torch.argmax(probs))
        out.append((token, float(probs[token])))
        if token == llava_vocab.EOS_ID:
            break
    return out


@torch.inference_mode()
def batch_answers(model, pixels: torch.Tensor, question: list[int],
                  max_tokens: int = llava_vocab.MAX_ANSWER_TOKENS) -> np.ndarray:
    """(B, max_tokens) greedy answer ids for a batch of pictures and one question (after </s>: more tokens the
    caller ignores)."""
    base = torch.tensor(sequence(model, question), dtype=torch.int64)[None].repeat(pixels.shape[0], 1)
    ids = base
    for _ in range(max_tokens):
        nxt = forward(model, pixels, ids)[:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, nxt], dim=1)
    return ids[:, base.shape[1]:].numpy()


def patch_attention(trace, row: int, grid: int, layer: int | None = None, head: int | None = None) -> np.ndarray:
    """(grid, grid) how much the decoder's token at `row` draws on each image token: one head's softmax row,
    the heads' mean of a layer (head None), or the mean over layers and heads (layer None)."""
    n_layers = sum(1 for i in trace if i.startswith("blocks.") and i.endswith(".resid2"))
    n_heads = sum(1 for i in trace if i.startswith("blocks.0.attn.head.") and i.endswith(".softmax"))
    layers = range(n_layers) if layer is None else [layer]
    heads = range(n_heads) if head is None else [head]
    rows = [np.asarray(trace[f"blocks.{b}.attn.head.{h}.softmax"][row, :grid * grid], np.float64)
            for b in layers for h in heads]
    return np.mean(rows, axis=0).reshape(grid, grid)
