"""Binds a model that computes real values (the trained nano-GPT) to its scene: traces in, data textures out.

The session runs the model on the worker thread; each frame ``update`` collects what finished
and writes the new values into the blocks' data regions, and the trace's tokens on the token axes
(scenes/axis_labels.py). Weights are written once, when the worker hands them over. ``cells``
notes what every upload holds (finite, −∞, empty) for the colour legend (scenes/legend.py). With
``autoplay`` the model keeps generating, restarting on new random inputs, which is what the
benchmark measures ("while generating").
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from llmviz.models.sim import sort_task
from llmviz.models.sim.llava_vocab import TEXT_TOKENS as LLAVA_TEXT_ROWS
from llmviz.scenes.axis_labels import attach_axis_labels
from llmviz.scenes.legend import watch_cells
from llmviz.scenes.nanogpt_session import NanoGptSession

LIVE_MODELS = {"nano-gpt"}
LIVE_MOE_MODELS = ("moe-4", "moe-8")  # trained here too: real routing, bound by scenes/moe_live.py
LIVE_SSM_MODELS = ("mamba-tiny", "mamba-copy", "mamba2-tiny", "rwkv-tiny")  # trained here too: the scan's state, bound by scenes/ssm_live.py
LIVE_HYBRID_MODELS = ("jamba-tiny",)  # trained here too: attention, Mamba and MoE, bound by scenes/hybrid_live.py
LIVE_VISION_MODELS = ("vit-tiny",)    # trained here too: a picture in, bound by scenes/vit_live.py
LIVE_CLIP_MODELS = ("clip-tiny",)     # trained here too: a picture and captions in, bound by scenes/clip_live.py
LIVE_LLAVA_MODELS = ("llava-tiny",)   # trained here too: a picture and a question in, bound by scenes/llava_live.py
LIVE_AUDIO_MODELS = ("whisper-tiny",)  # trained here too: a sound in, bound by scenes/whisper_live.py
AUDIO_TOKENS = 8                      # whisper-tiny's decoder rows: SOT, up to 6 digits, EOT
TEXT_CONTEXT = 32                     # characters the small text models' scenes lay out
# Every live model whose attention (or what stands for it in a recurrent layer) the heads view analyses.
ATTENTION_MODEL_IDS = ("nano-gpt", *LIVE_MOE_MODELS, *LIVE_SSM_MODELS, *LIVE_HYBRID_MODELS)


@dataclass(frozen=True)
class LiveBinding:
    """How a model trained here computes in its scene: the class that runs it and writes its values onto the
    blocks ("module:Class", imported only when the scene is built), the token rows its blocks are laid out for
    (None: the spec's own context), whether it takes the scene loader's staged data atlas (``data=``), and which
    blocks get values ("module:function" of the layout; None: every data block)."""

    binder: str
    rows: int | None = None
    staged_data: bool = False
    drawn: str | None = None

    def make(self, scene, renderer, autoplay: bool, data=None):
        extra = {"data": data} if self.staged_data else {}
        return _named(self.binder)(scene, renderer, autoplay=autoplay, **extra)

    def drawn_ids(self, layout):
        return _named(self.drawn)(layout) if self.drawn is not None else None


# The small character models read text, so their blocks get rows for 32 characters rather than 11 tokens;
# llava-tiny's decoder has text rows for the turn around its longest question and its longest answer.
LIVE_BINDINGS: dict[str, LiveBinding] = {
    "nano-gpt": LiveBinding("llmviz.scenes.live:LiveModel"),
    **{m: LiveBinding("llmviz.scenes.moe_live:LiveMoE", rows=TEXT_CONTEXT) for m in LIVE_MOE_MODELS},
    **{m: LiveBinding("llmviz.scenes.ssm_live:LiveMamba", rows=TEXT_CONTEXT) for m in LIVE_SSM_MODELS},
    **{m: LiveBinding("llmviz.scenes.hybrid_live:LiveJamba", rows=TEXT_CONTEXT) for m in LIVE_HYBRID_MODELS},
    **{m: LiveBinding("llmviz.scenes.vit_live:LiveVit", staged_data=True) for m in LIVE_VISION_MODELS},
    **{m: LiveBinding("llmviz.scenes.clip_live:LiveClip", staged_data=True) for m in LIVE_CLIP_MODELS},
    **{m: LiveBinding("llmviz.scenes.llava_live:LiveLlava", rows=LLAVA_TEXT_ROWS, staged_data=True,
                      drawn="llmviz.scenes.llava_live:drawn_ids") for m in LIVE_LLAVA_MODELS},
    **{m: LiveBinding("llmviz.scenes.whisper_live:LiveWhisper", rows=AUDIO_TOKENS, staged_data=True)
       for m in LIVE_AUDIO_MODELS},
}


TEXT_SETTERS = ("set_text", "set_input")   # how the text-reading live models take a new text


def input_setter(live, names: tuple[str, ...] = TEXT_SETTERS):
    """The live model's method (the first of `names` found on it, then on its session) that takes a new input and
    returns a one-line problem or None; None where the scene reads no such input."""
    for owner in (live, getattr(live, "session", None)):
        for name in names:
            setter = getattr(owner, name, None) if owner is not None else None
            if callable(setter):
                return setter
    return None


def is_live(spec) -> bool:
    """The model computes in its scene (the Model menu tags it "live")."""
    return spec.id in LIVE_BINDINGS


def _named(target: str):
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


class LiveModel:
    def __init__(self, scene, renderer, autoplay: bool = False, input_text: str | None = None):
        self.scene = scene
        self.renderer = renderer
        from llmviz.scenes.trace_attention import for_renderer

        self.session = NanoGptSession(**({"input_text": input_text} if input_text else {}),
                                      attention=for_renderer(renderer))
        self.autoplay = autoplay
        self.weights_shown = False
        self.values_version = 0  # bumped whenever the blocks' values change
        self.tokens_generated = 0
        self.tick_seconds: list[float] = []  # worker time of every trace shown, for the benchmark
        self._shown_trace = 0  # session.trace_version last written to the blocks
        self._rng = np.random.default_rng(7)
        self.cells = watch_cells(scene)
        self.axis_labels = attach_axis_labels(scene, self.session.alphabet)
        if autoplay:
            self.session.play_interval = 0.1
            self.session.playing = True

    def update(self, dt: float) -> bool:
        session = self.session
        session.update(dt)
        changed = False
        if session.weights is not None and not self.weights_shown:
            self.scene.write_values(self.renderer, session.weights)
            self.weights_shown = True
            changed = True
        if session.trace_version != self._shown_trace:
            self.scene.write_values(self.renderer, session.trace)
            self.axis_labels.show_tokens(session.trace["tokens"])
            self._shown_trace = session.trace_version
            self.tick_seconds.append(session.last_tick_seconds)
            self.tokens_generated += 1 if session.steps else 0
            changed = True
        if self.autoplay and not session.playing and not session.busy:
            letters = "".join(self._rng.choice(list(sort_task.ALPHABET), sort_task.INPUT_LENGTH))
            session.set_input(letters)
            session.playing = True
        if changed:
            self.values_version += 1
        return changed

    def wait(self, timeout: float = 20.0) -> bool:
        """Block until weights and the current trace are on the blocks (headless render, tests)."""
        ok = self.session.wait(timeout)
        self.update(0.0)
        return ok and self.weights_shown

    def close(self) -> None:
        self.session.close()
