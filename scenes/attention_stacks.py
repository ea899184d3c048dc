"""The heads view for the live models whose attention sits in stacks of their own (vit-tiny's vision
transformer, clip-tiny's two towers, llava-tiny's vision tower and language model, whisper-tiny's encoder
and decoder, a model folder opened live): which arrays of the live trace are a stack's heads, the tokens'
names, and the other inputs the clustering pools over, traced by the live scene's own compute.

A stack is the heads of one prefix (`vision.`, `audio.`, none for the language model) over square
self-attention; a decoder's cross-attention (a token against the encoder's frames) is no such matrix and is
drawn in its model's own panel. The batch is the live input's request with the picture or the sound
replaced by each shipped sample (scenes/vit_live.SAMPLE_IMAGES, scenes/whisper_live.SAMPLE_CLIPS), so the
questions, captions and answers stay the user's. A folder's model is not loaded a second time: its batch is
variants of the current input made here (FOLDER_VARIANTS), recorded one at a time on the folder session's own
worker (scenes/folder_live.FolderLive.record_batch), and the view says which.
"""
from __future__ import annotations

import re

import numpy as np

STACK_HEAD = re.compile(r"(?:([a-z_]+)\.)?blocks\.(\d+)\.attn\.head\.(\d+)\.softmax")
STACK_KINDS = ("vision", "clip", "llava", "audio", "folder")   # live kinds (scenes/explorer/modes.LiveMode)
STACK_NAMES = {"": "language model", "vision": "vision tower", "text": "text tower", "audio": "audio encoder"}
BATCH_SAMPLES = 4          # shipped samples traced besides the current input
# a folder's other inputs, each made from the current input's ids; the first token stays first (a tokenizer's
# <s> or BOS, where attention sinks)
FOLDER_VARIANTS = ("reversed", "shuffled", "first half twice")


def stacks_in(trace) -> list[str]:
    """The prefixes with square attention heads in a trace, the prefix-less (language) stack last."""
    found = {m[1] or "" for m in (STACK_HEAD.fullmatch(i) for i in trace.keys()) if m}
    return sorted(found, key=lambda p: (p == "", p))


def stack_name(kind: str, prefix: str) -> str:
    if kind == "audio" and prefix == "":
        return "decoder (self-attention)"
    if kind == "vision":
        return "vision transformer"
    if kind == "clip" and prefix == "":
        return "text tower"
    return STACK_NAMES.get(prefix, prefix)


def _positions_words(kind: str, prefix: str, trace, strings) -> tuple[list[int], list[str]]:
    """(ids for the pattern rules, each position as text). Patches and audio frames take their position as
    id (nothing recurs: no induction); llava's image tokens each a distinct negative id, not the one
    <image> id 256 times over."""
    length = _length(trace, prefix)
    if prefix in ("vision",) or kind == "vision":
        grid = int(round((length - 1) ** 0.5))
        return list(range(length)), ["[CLS]"] + [f"patch {i // grid},{i % grid}" for i in range(length - 1)]
    if prefix == "audio":
        return list(range(length)), [f"frame {t} ({20 * t} ms)" for t in range(length)]
    ids = [int(t) for t in np.asarray(trace["tokens"]).reshape(-1)][-length:]
    images = length - len(ids)      # llava's trace names its text tokens; the picture's come first
    words = [f"image {i // 16},{i % 16}" for i in range(images)] + list(strings(ids))
    return [-1 - i for i in range(images)] + ids, words


def _length(trace, prefix: str) -> int:
    head = f"{prefix + '.' if prefix else ''}blocks.0.attn.head.0.softmax"
    return int(np.asarray(trace[head]).shape[-1])


def stack_heads(kind: str, trace, prefix: str, strings):
    """One stack's heads in a trace, layer by layer, heads in order; `strings(ids)` names the tokens."""
    from llmviz.scenes.attention_live import TracedHeads

    found: dict[int, dict[int, str]] = {}
    for tensor_id in trace.keys():
        m = STACK_HEAD.fullmatch(tensor_id)
        if m and (m[1] or "") == prefix:
            found.setdefault(int(m[2]), {})[int(m[3])] = tensor_id
    if not found:
        raise ValueError(f"the trace has no attention heads under {prefix or 'its language model'!r}")
    tokens, labels = _positions_words(kind, prefix, trace, strings)
    layers = [np.stack([np.asarray(trace[found[b][h]], np.float32) for h in sorted(found[b])]) for b in sorted(found)]
    ids = [[found[b][h] for h in sorted(found[b])] for b in sorted(found)]
    kinds = ["softmax attention"] * len(layers)
    return TracedHeads(tokens, labels, sorted(found), layers, ids, kinds)


def token_strings(kind: str, live=None):
    """ids -> their words, in the live model's own vocabulary."""
    if kind in ("llava", "clip"):
        from llmviz.models.sim import clip_vocab, llava_vocab

        words = (llava_vocab if kind == "llava" else clip_vocab).WORDS
    elif kind == "audio":
        from llmviz.models.sim.whisper_config import VOCAB

        short = {"<|startoftranscript|>": "SOT", "<|endoftext|>": "EOT"}
        words = [short.get(w, w) for w in VOCAB]
    else:   # a folder: the strings its tokenizer gave the live session
        strings = list(getattr(live, "strings", None) or [])
        return lambda ids: [strings[i] if i < len(strings) else str(t) for i, t in enumerate(ids)]
    return lambda ids: [words[t] if 0 <= t < len(words) else str(t) for t in ids]


def folder_variants(ids, seed: int = 0) -> list[tuple[int, ...]]:
    """The FOLDER_VARIANTS of a folder's current input, in that order, without repeats or the input itself (a
    two-token input has no reversal): the reversed and shuffled tokens after the first, and the first half
    said twice, which gives induction heads a token that recurs."""
    ids = tuple(int(t) for t in ids)
    body = list(ids[1:])
    shuffled = [body[i] for i in np.random.default_rng(seed).permutation(len(body))]
    half = ids[:max(1, len(ids) // 2)]
    out: list[tuple[int, ...]] = []
    for variant in (ids[:1] + tuple(body[::-1]), ids[:1] + tuple(shuffled), half + half):
        if variant != ids and variant not in out:
            out.append(variant)
    return out


def batch_requests(kind: str, request) -> list:
    """The live request with its picture or sound replaced by each shipped sample (none for a folder)."""
    if kind == "folder" or request is None:
        return []
    if kind == "audio":
        from llmviz.scenes.whisper_live import SAMPLE_CLIPS, sample_path

        samples = [("path", str(sample_path(name))) for name in SAMPLE_CLIPS]
    else:
        from llmviz.scenes.vit_live import SAMPLE_IMAGES, sample_path

        samples = [("path", str(sample_path(name))) for name in SAMPLE_IMAGES]
    samples = samples[:BATCH_SAMPLES]
    if kind in ("vision", "audio"):
        return [s for s in samples if s != tuple(request)]
    if kind == "clip":
        return [(*s, *request[2:]) for s in samples if s != tuple(request[:2])]
    if kind == "llava":
        return [(s, *request[1:]) for s in samples if s != request[0]]
    return []


def compute_for(kind: str):
    """The live scene's own worker compute (its factory, called on this view's worker: it loads the model)."""
    if kind == "vision":
        from llmviz.scenes.vit_live import _vit_compute as factory
    elif kind == "clip":
        from llmviz.scenes.clip_live import _clip_compute as factory
    elif kind == "llava":
        from llmviz.scenes.llava_live import _llava_compute as factory
    elif kind == "audio":
        from llmviz.scenes.whisper_live import _whisper_compute as factory
    else:
        return None
    return factory()()


def stack_batch_note(kind: str, inputs: int) -> str:
    if kind == "folder":
        if inputs == 1:
            return "clustered over the current input alone (no variant of it could be recorded)"
        return (f"clustered over the current input and {inputs - 1} variants of it ({', '.join(FOLDER_VARIANTS)}; "
                "the first token kept first), recorded by the folder's model on its own worker")
    what = "sounds" if kind == "audio" else "pictures"
    return f"clustered over the current input and {inputs - 1} shipped sample {what} (the rest of the input as yours)"


def analyse_stack(kind: str, live_trace, prefix: str | None, live_request, strings=(), ids=(), compute=None,
                  traced: dict | None = None, k: int | None = None):
    """(prefix, stacks, current heads, analysis, inputs) of one stack of a trace among the batch of samples
    traced by `compute` (the live scene's own; made here when not given). `traced` keeps the samples' traces
    between calls (request -> trace). For a folder, `live_request` is its variants' recordings, {ids: maps}."""
    from llmviz.models import attention_analysis

    if "tokens" not in live_trace:     # a folder's recording: the token ids are the session's
        live_trace = {**dict(live_trace.items()), "tokens": np.asarray(ids, np.int64)}
    stacks = stacks_in(live_trace)
    if not stacks:
        raise ValueError("the trace has no square attention heads")
    prefix = prefix if prefix in stacks else stacks[-1]
    words = token_strings(kind, type("Live", (), {"strings": strings}))
    current = stack_heads(kind, live_trace, prefix, words)
    traced = {} if traced is None else traced
    others = []
    if kind == "folder":     # recorded by the session's worker already: nothing is traced here
        for variant, maps in (live_request or {}).items():
            recorded = {**dict(maps.items()), "tokens": np.asarray(variant, np.int64)}
            others.append(stack_heads(kind, recorded, prefix, lambda ids: [str(t) for t in ids]))
    for other in batch_requests(kind, live_request):
        if other not in traced:
            if len(traced) > 32:     # a long session's questions and captions: bounded
                traced.clear()
            compute = compute or compute_for(kind)
            traced[other] = compute(other)
        others.append(stack_heads(kind, traced[other], prefix, words))
    inputs = [current, *others]
    analysis = attention_analysis.analyse([h.distributions for h in inputs], [h.tokens for h in inputs], k=k)
    return prefix, stacks, current, analysis, len(inputs)
