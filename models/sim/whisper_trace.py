"""whisper-tiny computed by llmviz: one forward (torch, float32) over a WhisperForConditionalGeneration's
parameters that trains it (batched, autograd) and traces it (one clip, every intermediate under the layout's
ids: scenes/layouts/whisper.py, the encoder's under "audio."), greedy decoding token by token, the weights
under the layout's ids, and the word timings Whisper reads from its alignment heads (DTW).

It follows transformers' modeling_whisper.py (eager attention): conv1 (kernel 3, padding 1) and GELU, conv2
(stride 2) and GELU, the sinusoidal positions added; per encoder layer x + Attn(LN(x)), x + MLP(LN(x)); the
encoder's LayerNorm. The decoder: token embedding + learned positions; per layer causal self-attention,
cross-attention whose keys and values come from the encoder's output, the MLP, each pre-norm with its
residual; the decoder's LayerNorm; logits by the embedding (tied head). Keys have no bias, queries are
scaled by 1/sqrt(head dim). Tests (tests/test_whisper_tiny.py) hold it to transformers.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from llmviz.models.sim import sequence_trace
from llmviz.models.sim.nanogpt import NanoGPT
from llmviz.models.sim.trace import ActivationTrace
from llmviz.models.sim.whisper_config import EOT_ID, SOT_ID

ENC = "audio."
# Axis names beyond tensor_ids.AXES: a log-mel bin, an encoder frame (20 ms), an audio frame (10 ms).
WHISPER_AXES = {"m": "mel bin", "s": "encoder frame (20 ms)", "a": "audio frame (10 ms)"}
SECONDS_PER_SOURCE = 0.02       # an encoder frame: two 10 ms log-mel frames (conv2's stride 2)
MEDIAN_WIDTH = 7                # Whisper's median filter over the alignment heads' frames (timing.py)

_layer_norm = NanoGPT._layer_norm


def _attention(attn, h: torch.Tensor, memory: torch.Tensor, n_heads: int, causal: bool, record, p: str,
               keep: list | None = None):
    """Self-attention (memory is h) or cross-attention (memory the encoder's output), recorded per head;
    `keep`, when given, receives the (B, H, T, S) softmax (training's guided-attention loss)."""
    b, t, c = h.shape
    s = memory.shape[1]
    d = c // n_heads

    def heads(x, proj, n):
        return F.linear(x, proj.weight, proj.bias).view(b, n, n_heads, d).transpose(1, 2)     # (B, H, n, d)
    q, k, v = heads(h, attn.q_proj, t), heads(memory, attn.k_proj, s), heads(memory, attn.v_proj, s)
    if record is None and keep is None:
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    else:
        scores = q @ k.transpose(-1, -2) / math.sqrt(d)
        masked = scores.masked_fill(torch.ones(t, s, dtype=torch.bool).triu(1), float("-inf")) if causal else scores
        weights = masked.softmax(dim=-1)
        out = weights @ v
        if keep is not None:
            keep.append(weights)
    proj = F.linear(out.transpose(1, 2).reshape(b, t, c), attn.out_proj.weight, attn.out_proj.bias)
    if record is not None:
        named = [("q", q), ("k", k), ("v", v), ("scores", scores)] + ([("scores_masked", masked)] if causal else [])
        for i in range(n_heads):
            for name, value in named + [("softmax", weights), ("out", out)]:
                record(f"{p}.head.{i}.{name}", value[0, i])
        record(f"{p}.proj", proj[0])
    return proj


def _mlp(layer, x: torch.Tensor, record, p: str) -> torch.Tensor:
    h = _layer_norm(layer.final_layer_norm, x, record, f"{p}.ln2")
    fc = F.linear(h, layer.fc1.weight, layer.fc1.bias)
    act = F.gelu(fc)
    proj = F.linear(act, layer.fc2.weight, layer.fc2.bias)
    if record is not None:
        for name, value in (("mlp.fc", fc), ("mlp.gelu", act), ("mlp.proj", proj), ("resid2", x + proj)):
            record(f"{p}.{name}", value[0])
    return x + proj


def encode(model, features: torch.Tensor, record=None) -> torch.Tensor:
    """log-mel features (B, n_mels, frames), as audio_features gives them → the encoder's output (B, S, d)."""
    cfg, enc = model.config, model.model.encoder
    frames = cfg.max_source_positions * 2
    if features.dim() != 3 or tuple(features.shape[1:]) != (cfg.num_mel_bins, frames):
        raise ValueError(f"features must be (batch, {cfg.num_mel_bins}, {frames}), got {tuple(features.shape)}")
    c1 = F.conv1d(features, enc.conv1.weight, enc.conv1.bias, padding=1)
    a1 = F.gelu(c1)
    c2 = F.conv1d(a1, enc.conv2.weight, enc.conv2.bias, stride=2, padding=1)
    a2 = F.gelu(c2)
    x = a2.transpose(1, 2) + enc.embed_positions.weight
    if record is not None:
        for name, value in (("features", features[0].T), ("embed.conv1", c1[0].T), ("embed.conv1_act", a1[0].T),
                            ("embed.conv2", c2[0].T), ("embed.conv2_act", a2[0].T), ("embed.out", x[0])):
            record(ENC + name, value)
    for i, layer in enumerate(enc.layers):
        p = f"{ENC}blocks.{i}"
        h = _layer_norm(layer.self_attn_layer_norm, x, record, f"{p}.ln1")
        x = x + _attention(layer.self_attn, h, h, cfg.encoder_attention_heads, False, record, f"{p}.attn")
        if record is not None:
            record(f"{p}.resid1", x[0])
        x = _mlp(layer, x, record, p)
    return _layer_norm(enc.layer_norm, x, record, f"{ENC}ln_f")


def decode(model, memory: torch.Tensor, tokens: torch.Tensor, record=None, cross: list | None = None) -> torch.Tensor:
    """The decoder over `tokens` (B, T) reading the encoder's output `memory` → logits (B, T, vocab); `cross`,
    when given, receives each layer's cross-attention softmax (B, H, T, S)."""
    cfg, dec = model.config, model.model.decoder
    t = tokens.shape[1]
    if not 1 <= t <= cfg.max_target_positions:
        raise ValueError(f"tokens: 1 to {cfg.max_target_positions} decoder tokens, got {t}")
    tok = F.embedding(tokens, dec.embed_tokens.weight)
    pos = dec.embed_positions.weight[:t]
    x = tok + pos
    if record is not None:
        for name, value in (("tokens", tokens[0]), ("embed.tok", tok[0]), ("embed.pos", pos), ("embed.out", x[0])):
            record(name, value)
    for i, layer in enumerate(dec.layers):
        p = f"blocks.{i}"
        h = _layer_norm(layer.self_attn_layer_norm, x, record, f"{p}.ln1")
        x = x + _attention(layer.self_attn, h, h, cfg.decoder_attention_heads, True, record, f"{p}.attn")
        if record is not None:
            record(f"{p}.resid1", x[0])
        h = _layer_norm(layer.encoder_attn_layer_norm, x, record, f"{p}.ln_cross")
        x = x + _attention(layer.encoder_attn, h, memory, cfg.decoder_attention_heads, False, record,
                           f"{p}.cross_attn", cross)
        if record is not None:
            record(f"{p}.resid_cross", x[0])
        x = _mlp(layer, x, record, p)
    h = _layer_norm(dec.layer_norm, x, record, "ln_f")
    return sequence_trace.lm_head(h, dec.embed_tokens.weight, record)


def forward(model, features: torch.Tensor, tokens: torch.Tensor, record=None, cross: list | None = None) -> torch.Tensor:
    """Features (B, n_mels, frames) and decoder tokens (B, T) → logits (B, T, vocab). Differentiable."""
    return decode(model, encode(model, features, record), tokens, record, cross)


# ---- greedy decoding -------------------------------------------------------------------------

@torch.inference_mode()
def greedy(model, features: torch.Tensor, max_tokens: int | None = None) -> torch.Tensor:
    """(B, T) tokens: SOT, then each next token the most likely, until every row has said EOT (rows that
    have are padded with EOT, as transformers pads) or the decoder's positions run out."""
    memory = encode(model, features)
    b = features.shape[0]
    limit = min(max_tokens or model.config.max_target_positions, model.config.max_target_positions)
    tokens = torch.full((b, 1), SOT_ID, dtype=torch.long)
    done = torch.zeros(b, dtype=torch.bool)
    while tokens.shape[1] < limit and not bool(done.all()):
        nxt = decode(model, memory, tokens)[:, -1].argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, EOT_ID), nxt)
        tokens = torch.cat([tokens, nxt[:, None]], dim=1)
        done |= nxt == EOT_ID
    return tokens


# ---- ids -------------------------------------------------------------------------------------

def _ln_ids(prefix: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(f"{prefix}.mean", ("t",)), (f"{prefix}.std", ("t",)), (f"{prefix}.out", ("t", "c"))]


def _attn_ids(p: str, n_heads: int, keys: str, causal: bool) -> list[tuple[str, tuple[str, ...]]]:
    ids = []
    for h in range(n_heads):
        a = f"{p}.head.{h}"
        ids += [(f"{a}.q", ("t", "d")), (f"{a}.k", (keys, "d")), (f"{a}.v", (keys, "d")), (f"{a}.scores", ("t", keys))]
        ids += [(f"{a}.scores_masked", ("t", keys))] if causal else []
        ids += [(f"{a}.softmax", ("t", keys)), (f"{a}.out", ("t", "d"))]
    return ids + [(f"{p}.proj", ("t", "c"))]


def _mlp_ids(p: str) -> list[tuple[str, tuple[str, ...]]]:
    return [*_ln_ids(f"{p}.ln2"), (f"{p}.mlp.fc", ("t", "f")), (f"{p}.mlp.gelu", ("t", "f")),
            (f"{p}.mlp.proj", ("t", "c")), (f"{p}.resid2", ("t", "c"))]


def trace_ids(encoder_layers: int, decoder_layers: int, n_heads: int) -> list[tuple[str, tuple[str, ...]]]:
    """Every id `trace` records, in data-flow order, with its axes (the encoder's t is its frames)."""
    ids = [(ENC + "features", ("a", "m")), (ENC + "embed.conv1", ("a", "c")), (ENC + "embed.conv1_act", ("a", "c")),
           (ENC + "embed.conv2", ("t", "c")), (ENC + "embed.conv2_act", ("t", "c")), (ENC + "embed.out", ("t", "c"))]
    for b in range(encoder_layers):
        p = f"{ENC}blocks.{b}"
        ids += [*_ln_ids(f"{p}.ln1"), *_attn_ids(f"{p}.attn", n_heads, "t'", False), (f"{p}.resid1", ("t", "c")),
                *_mlp_ids(p)]
    ids += _ln_ids(f"{ENC}ln_f")
    ids += [("tokens", ("t",)), ("embed.tok", ("t", "c")), ("embed.pos", ("t", "c")), ("embed.out", ("t", "c"))]
    for b in range(decoder_layers):
        p = f"blocks.{b}"
        ids += [*_ln_ids(f"{p}.ln1"), *_attn_ids(f"{p}.attn", n_heads, "t'", True), (f"{p}.resid1", ("t", "c")),
                *_ln_ids(f"{p}.ln_cross"), *_attn_ids(f"{p}.cross_attn", n_heads, "s", False),
                (f"{p}.resid_cross", ("t", "c")), *_mlp_ids(p)]
    return ids + [*_ln_ids("ln_f"), ("logits", ("t", "v")), ("probs", ("t", "v"))]


def weight_ids(encoder_layers: int, decoder_layers: int, n_heads: int) -> list[tuple[str, tuple[str, ...]]]:
    """Every parameter (and the sinusoidal buffer) under the layout's ids; convs as (out, in·kernel)."""
    ids = [(ENC + "embed.conv1.weight", ("c", "p")), (ENC + "embed.conv1.bias", ("c",)),
           (ENC + "embed.conv2.weight", ("c", "p")), (ENC + "embed.conv2.bias", ("c",)), (ENC + "embed.pos", ("t", "c"))]

    def attn(p):
        out = []
        for h in range(n_heads):
            a = f"{p}.head.{h}"
            out += [(f"{a}.wq", ("d", "c")), (f"{a}.bq", ("d",)), (f"{a}.wk", ("d", "c")), (f"{a}.wv", ("d", "c")),
                    (f"{a}.bv", ("d",))]
        return out + [(f"{p}.proj.weight", ("c", "c")), (f"{p}.proj.bias", ("c",))]

    def norm(p):
        return [(f"{p}.weight", ("c",)), (f"{p}.bias", ("c",))]

    def mlp(p):
        return [(f"{p}.mlp.fc.weight", ("f", "c")), (f"{p}.mlp.fc.bias", ("f",)), (f"{p}.mlp.proj.weight", ("c", "f")),
                (f"{p}.mlp.proj.bias", ("c",))]

    for b in range(encoder_layers):
        p = f"{ENC}blocks.{b}"
        ids += [*norm(f"{p}.ln1"), *attn(f"{p}.attn"), *norm(f"{p}.ln2"), *mlp(p)]
    ids += norm(f"{ENC}ln_f")
    ids += [("embed.tok.weight", ("v", "c")), ("embed.pos.weight", ("t", "c"))]
    for b in range(decoder_layers):
        p = f"blocks.{b}"
        ids += [*norm(f"{p}.ln1"), *attn(f"{p}.attn"), *norm(f"{p}.ln_cross"), *attn(f"{p}.cross_attn"),
                *norm(f"{p}.ln2"), *mlp(p)]
    return ids + [*norm("ln_f"), ("lm_head.weight", ("v", "c"))]


# ---- one clip --------------------------------------------------------------------------------

def feature_tensor(features: np.ndarray) -> torch.Tensor:
    array = np.asarray(features, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"features must be (n_mels, frames), got shape {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array)).unsqueeze(0)


@torch.inference_mode()
def trace(model, features: np.ndarray, tokens) -> ActivationTrace:
    """One clip's intermediates with the decoder over `tokens`, float32 numpy under the layout's ids."""
    got: dict[str, torch.Tensor] = {}
    forward(model, feature_tensor(features), torch.as_tensor(np.asarray(tokens, np.int64))[None],
            record=got.__setitem__)
    cfg = model.config
    return sequence_trace.in_order(sequence_trace.numpy_copies(got), trace_ids(
        cfg.encoder_layers, cfg.decoder_layers, cfg.decoder_attention_heads))


@torch.inference_mode()
def weights(model) -> ActivationTrace:
    """Every parameter as float32 numpy under the layout's ids: q, k and v cut per head."""
    cfg = model.config
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    d = cfg.d_model // cfg.encoder_attention_heads
    e, m = "model.encoder", "model.decoder"
    named = {}
    for k in (1, 2):
        w = sd[f"{e}.conv{k}.weight"]
        named[f"{ENC}embed.conv{k}.weight"] = w.reshape(w.shape[0], -1)
        named[f"{ENC}embed.conv{k}.bias"] = sd[f"{e}.conv{k}.bias"]
    named[ENC + "embed.pos"] = sd[f"{e}.embed_positions.weight"]

    def attn(ours, theirs):
        for n in "qkv":
            w = sd[f"{theirs}.{n}_proj.weight"]
            for h in range(cfg.encoder_attention_heads):
                named[f"{ours}.head.{h}.w{n}"] = w[h * d:(h + 1) * d]
                if n != "k":
                    named[f"{ours}.head.{h}.b{n}"] = sd[f"{theirs}.{n}_proj.bias"][h * d:(h + 1) * d]
        named[f"{ours}.proj.weight"], named[f"{ours}.proj.bias"] = sd[f"{theirs}.out_proj.weight"], sd[f"{theirs}.out_proj.bias"]

    def norm(ours, theirs):
        named[f"{ours}.weight"], named[f"{ours}.bias"] = sd[f"{theirs}.weight"], sd[f"{theirs}.bias"]

    def mlp(ours, theirs):
        for a, b in (("fc", "fc1"), ("proj", "fc2")):
            named[f"{ours}.mlp.{a}.weight"], named[f"{ours}.mlp.{a}.bias"] = sd[f"{theirs}.{b}.weight"], sd[f"{theirs}.{b}.bias"]

    for stack, ours_prefix, n_layers in ((e, ENC, cfg.encoder_layers), (m, "", cfg.decoder_layers)):
        for b in range(n_layers):
            p, t = f"{ours_prefix}blocks.{b}", f"{stack}.layers.{b}"
            norm(f"{p}.ln1", f"{t}.self_attn_layer_norm")
            attn(f"{p}.attn", f"{t}.self_attn")
            if stack == m:
                norm(f"{p}.ln_cross", f"{t}.encoder_attn_layer_norm")
                attn(f"{p}.cross_attn", f"{t}.encoder_attn")
            norm(f"{p}.ln2", f"{t}.final_layer_norm")
            mlp(p, t)
        norm(f"{ours_prefix}ln_f", f"{stack}.layer_norm")
    named["embed.tok.weight"] = named["lm_head.weight"] = sd[f"{m}.embed_tokens.weight"]
    named["embed.pos.weight"] = sd[f"{m}.embed_positions.weight"]
    return sequence_trace.in_order(sequence_trace.numpy_copies(named), weight_ids(
        cfg.encoder_layers, cfg.decoder_layers, cfg.decoder_attention_heads), "weight")


# ---- timings from the alignment heads (openai/whisper timing.py, find_alignment) ------------------

def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> np.ndarray:
    """Whisper's fixed encoder positions (openai/whisper model.py sinusoids): sines then cosines."""
    increment = math.log(max_timescale) / (channels // 2 - 1)
    inv = np.exp(-increment * np.arange(channels // 2))
    t = np.arange(length)[:, None] * inv[None, :]
    return np.concatenate([np.sin(t), np.cos(t)], axis=1)


def median_filter(x: np.ndarray, width: int = MEDIAN_WIDTH) -> np.ndarray:
    """The median over `width` frames of the last axis, reflect-padded at both ends (timing.py's)."""
    if x.shape[-1] <= width // 2:
        return x
    pad = [(0, 0)] * (x.ndim - 1) + [(width // 2, width // 2)]
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(x, pad, mode="reflect"), width, axis=-1)
    return np.median(windows, axis=-1)


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cheapest monotone path through `cost` (N tokens × M frames), from (0, 0) to (N-1, M-1), as
    (token indices, frame indices): timing.py's dtw_cpu and backtrace, ties broken as there."""
    n, m = cost.shape
    total = np.full((n + 1, m + 1), np.inf)
    step = -np.ones((n + 1, m + 1), np.int8)
    total[0, 0] = 0.0
    for j in range(1, m + 1):
        for i in range(1, n + 1):
            c0, c1, c2 = total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]
            if c0 < c1 and c0 < c2:
                c, t = c0, 0
            elif c1 < c0 and c1 < c2:
                c, t = c1, 1
            else:
                c, t = c2, 2
            total[i, j] = cost[i - 1, j - 1] + c
            step[i, j] = t
    step[0, :], step[:, 0] = 2, 1
    i, j, path = n, m, []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        t = step[i, j]
        i, j = (i - 1, j - 1) if t == 0 else (i - 1, j) if t == 1 else (i, j - 1)
    path = np.array(path[::-1])
    return path[:, 0], path[:, 1]


def alignment_matrix(trace, heads, audio_frames: int) -> np.ndarray:
    """(rows, frames) the alignment heads' cross-attention over the frames that hold the clip: each head's
    scores re-softmaxed over those frames, standardised over the tokens, median-filtered over time, then
    averaged over the heads; rows are the decoder inputs that predict each transcript token and EOT."""
    frames = max(1, audio_frames // 2)
    stack = []
    for layer, head in heads:
        scores = np.asarray(trace[f"blocks.{layer}.cross_attn.head.{head}.scores"], np.float64)[:, :frames]
        w = np.exp(scores - scores.max(-1, keepdims=True))
        w /= w.sum(-1, keepdims=True)
        w = (w - w.mean(0, keepdims=True)) / (w.std(0, keepdims=True) + 1e-12)
        stack.append(median_filter(w))
    return np.mean(stack, axis=0)[:-1]


def token_times(trace, heads, audio_frames: int) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """(start, end) seconds of each transcript token (the trace's tokens between SOT and EOT) and the DTW
    path (token row, encoder frame) they come from. Token k starts where the path first reaches the row
    that predicts it and ends where it reaches the next row."""
    matrix = alignment_matrix(trace, heads, audio_frames)
    rows, cols = dtw(-matrix)
    jumps = np.diff(rows, prepend=-1).astype(bool)
    times = cols[jumps] * SECONDS_PER_SOURCE
    return times[:-1], times[1:], (rows, cols)
