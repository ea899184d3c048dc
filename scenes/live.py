"""Binds a model that computes real values (the trained nano-GPT) to its scene: traces in, data textures out.

The session runs the model on the worker thread; each frame ``update`` collects what finished
and writes the new values into the blocks' data regions, and the trace's tokens on the token axes
(scenes/axis_labels.py). Weights are written once, when the worker hands them over. ``cells``
notes what every upload holds (finite, −∞, empty) for the colour legend (scenes/legend.py). With
``autoplay`` the model keeps generating, restarting on new random inputs, which is what the
benchmark measures ("while generating").
"""
from __future__ import annotations

import numpy as np

from llmviz.models.sim import sort_task
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


def is_live(spec) -> bool:
    return spec.id in LIVE_MODELS


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
