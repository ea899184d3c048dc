"""Every live model's attention, from its own trace: which arrays are its heads, how it reads an input and
draws a batch of inputs for clustering, and the analysis (models/attention_analysis.py) over that batch.

`llmviz attention` and the heads view (scenes/heads_view.py) both go through ATTENTION_MODELS, so the
command line writes the numbers the window draws. The traces are the scenes' own (nano-GPT's and the MoEs'
`trace`, scenes/ssm_live.py's and scenes/hybrid_live.py's traced models with their scene arrays), so a
head here is a block there, found by the same tensor id.

What counts as a head (HEAD_IDS): a softmax head; a Mamba-2 layer's SSD matrix per head; a Mamba layer's
hidden attention α, its mean over the channels, as the scene draws it; an RWKV layer's WKV as attention,
its mean over the channels. The recurrent matrices are not distributions (α and SSD entries take either
sign; a row's sum is not 1), so the analysis reads them as |M| with rows renormalised: what share of the
magnitude each earlier token contributes. The exported matrices are the trace's own values.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from llmviz.models import attention_analysis
from llmviz.models.sim import moe_corpus, sort_task
from llmviz.scenes.live import (ATTENTION_MODEL_IDS, LIVE_HYBRID_MODELS, LIVE_MOE_MODELS, LIVE_SSM_MODELS,
                                TEXT_CONTEXT)

# tensor id -> (layer, head); what such a head is, in words
HEAD_IDS: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r"blocks\.(\d+)\.attn\.head\.(\d+)\.softmax"), "softmax attention"),
    (re.compile(r"blocks\.(\d+)\.mamba\.ssd\.(\d+)"), "Mamba-2 SSD matrix, read as |M| with rows renormalised"),
    (re.compile(r"blocks\.(\d+)\.mamba\.alpha"), "Mamba hidden attention α (channel mean), read as |α| renormalised"),
    (re.compile(r"blocks\.(\d+)\.time_mix\.alpha"), "RWKV WKV as attention (channel mean)"),
)
BATCH_INPUTS = 8          # inputs besides the current one that the clustering and the pattern scores pool over
BATCH_LENGTH = 32         # characters of each text input drawn for the batch (at most the model's context)


class AttentionInputError(ValueError):
    """An input the model cannot take; the message is one line."""


@dataclass(frozen=True)
class TracedHeads:
    """One input's heads: per layer (heads, T, T) as the trace holds them, with their tensor ids."""

    tokens: list[int]
    labels: list[str]              # each token as text
    blocks: list[int]              # the block number of each layer (a hybrid's attention layer is one of several)
    layers: list[np.ndarray]
    ids: list[list[str]]           # ids[layer][head]
    kinds: list[str]               # per layer, what its heads are

    @property
    def distributions(self) -> list[np.ndarray]:
        return [attention_analysis.as_distributions(layer) for layer in self.layers]


def heads_of(trace, tokens, alphabet: str) -> TracedHeads:
    """The heads in a trace (scene arrays), layer by layer in block order, heads in their order."""
    found: dict[int, dict[int, tuple[str, str]]] = {}
    for tensor_id in trace.keys():
        for pattern, kind in HEAD_IDS:
            match = pattern.fullmatch(tensor_id)
            if match:
                layer, head = int(match[1]), int(match[2]) if match.lastindex > 1 else 0
                found.setdefault(layer, {})[head] = (tensor_id, kind)
                break
    if not found:
        raise ValueError("the trace has no attention-like arrays")
    layers, ids, kinds = [], [], []
    for layer in sorted(found):
        heads = [found[layer][h] for h in sorted(found[layer])]
        layers.append(np.stack([np.asarray(trace[i], np.float32) for i, _ in heads]))
        ids.append([i for i, _ in heads])
        kinds.append(heads[0][1])
    return TracedHeads(list(tokens), [alphabet[t] for t in tokens], sorted(found), layers, ids, kinds)


def heatmap_rgb(distribution: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) colours of attention weights in [0, 1]: magma of √weight, so that a head spread evenly
    over 32 tokens (1/32 each) is still seen beside a head that puts everything on one."""
    from llmviz.engine.render.colormaps import COLORMAP_MAGMA, COLORMAP_SIZE, LUTS

    index = np.clip(np.sqrt(np.clip(distribution, 0.0, 1.0)) * (COLORMAP_SIZE - 1) + 0.5, 0, COLORMAP_SIZE - 1)
    return (LUTS[COLORMAP_MAGMA][index.astype(np.int64)] * 255.0 + 0.5).astype(np.uint8)


# ---------------------------------------------------------------- the models

@dataclass(frozen=True)
class AttentionModel:
    """How to trace one live model's heads. `load(weights_path)` gives an object with `.trace(tokens)` (scene
    arrays); `read(text)` the token ids of a user's input (AttentionInputError naming the problem);
    `complete(model, tokens)` what is traced for them (nano-GPT: the input and its greedy sort, the context
    the scene shows once the answer is written; the text models: the tokens themselves);
    `batch(rng, n, length)` n more inputs for the clustering, half of them with a repeated span (induction
    shows only where a token recurs)."""

    load: Callable
    alphabet: str
    context: int
    read: Callable[[str], list[int]]
    complete: Callable
    batch: Callable
    input_hint: str


def _read_sort(text: str) -> list[int]:
    try:
        return sort_task.parse_input(text)
    except sort_task.SortInputError as exc:
        raise AttentionInputError(str(exc)) from None


def _read_text(limit: int):
    def read(text: str) -> list[int]:
        from llmviz.scenes.text_live import validate_text

        problem = validate_text(text, limit)
        if problem:
            raise AttentionInputError(problem)
        return moe_corpus.encode(text)

    return read


def _complete_sort(model, tokens):
    tokens = list(tokens)[:sort_task.CONTEXT_LENGTH]
    steps = model.generate(tokens, sort_task.CONTEXT_LENGTH - len(tokens)) if len(tokens) < sort_task.CONTEXT_LENGTH \
        else []
    return tokens + [s["token"] for s in steps]


def _as_is(model, tokens):
    return list(tokens)


def _sort_batch(rng: np.random.Generator, n: int, length: int) -> list[list[int]]:
    # the sort task's own inputs: six random letters (the sorted half repeats them, which is its induction)
    return [list(map(int, rng.integers(0, len(sort_task.ALPHABET), sort_task.INPUT_LENGTH))) for _ in range(n)]


def _text_batch(rng: np.random.Generator, n: int, length: int) -> list[list[int]]:
    """Corpus samples (code, math, prose, chat) of `length` characters, every other one a span said twice."""
    samples = random.Random(int(rng.integers(2**31)))
    out = []
    for i in range(n):
        text = ""
        while len(text) < length:
            text += moe_corpus.sample(moe_corpus.DOMAINS[int(rng.integers(len(moe_corpus.DOMAINS)))], samples)
        if i % 2:
            half = text[:max(length // 2, 2)]
            text = half + half
        out.append(moe_corpus.encode(text[:length]))
    return out


def _load_nanogpt(path):
    from llmviz.models.sim.nanogpt import load_nanogpt

    return load_nanogpt(path)


def _load_moe(variant: str):
    def load(path):
        from llmviz.models.sim.moe_model import load_moe

        return load_moe(variant, path)

    return load


def _load_ssm(model_id: str):
    def load(path):
        from llmviz.scenes.ssm_live import _TracedSsm

        return _TracedSsm(model_id, path)

    return load


def _load_jamba(path):
    from llmviz.scenes.hybrid_live import _TracedJamba

    return _TracedJamba(path)


def _text_model(load, context: int) -> AttentionModel:
    return AttentionModel(load, moe_corpus.ALPHABET, context, _read_text(context), _as_is, _text_batch,
                          f"a text of 1 to {context} printable ASCII characters")


def _spec_context(model_id: str) -> int:
    # the spec's context, which the MoE's config matches (moe_model.MoEGPTConfig; its module brings torch)
    from llmviz.models.registry import builtin_specs

    return next(s for s in builtin_specs() if s.id == model_id).architecture.context_length


def attention_models() -> dict[str, AttentionModel]:
    """Every live model's entry (built on first use: the MoEs' context comes from their specs)."""
    global _MODELS
    if _MODELS is None:
        models = {"nano-gpt": AttentionModel(_load_nanogpt, sort_task.ALPHABET, sort_task.CONTEXT_LENGTH,
                                             _read_sort, _complete_sort, _sort_batch,
                                             f"{sort_task.INPUT_LENGTH} letters from "
                                             f"{'/'.join(sort_task.ALPHABET)}, e.g. CBABBC")}
        models.update({m: _text_model(_load_moe(m), _spec_context(m)) for m in LIVE_MOE_MODELS})
        models.update({m: _text_model(_load_ssm(m), TEXT_CONTEXT) for m in LIVE_SSM_MODELS})
        models.update({m: _text_model(_load_jamba, TEXT_CONTEXT) for m in LIVE_HYBRID_MODELS})
        _MODELS = models
    return _MODELS


_MODELS: dict[str, AttentionModel] | None = None
MODEL_IDS = ATTENTION_MODEL_IDS


# ---------------------------------------------------------------- tracing and analysing

def trace_heads(entry: AttentionModel, model, tokens) -> TracedHeads:
    tokens = entry.complete(model, tokens)
    return heads_of(model.trace(tokens), tokens, entry.alphabet)


def batch_heads(entry: AttentionModel, model, seed: int = 0, n: int = BATCH_INPUTS) -> list[TracedHeads]:
    """The clustering's other inputs, drawn from a generator seeded with `seed` (the same seed, the same
    inputs), each as long as the model's context allows up to BATCH_LENGTH, whatever the current input's
    length: a one-character input is still named from the batch's rows."""
    rng = np.random.default_rng(seed)
    return [trace_heads(entry, model, tokens) for tokens in entry.batch(rng, n, min(entry.context, BATCH_LENGTH))]


def analyse_heads(entry: AttentionModel, model, current: TracedHeads, seed: int = 0, k: int | None = None,
                  threshold: float | None = None, progress=None) -> attention_analysis.HeadsAnalysis:
    """The analysis of `current` among a seeded batch: clusters and pattern names from all inputs, rollout
    and flow of `current`."""
    others = batch_heads(entry, model, seed)
    inputs = [current, *others]
    return attention_analysis.analyse([h.distributions for h in inputs], [h.tokens for h in inputs], k=k,
                                      threshold=threshold, progress=progress)
