"""A local model folder, live: the user's text through the folder's tokenizer, one recorded forward pass per step, and
generation token by token, as nano-GPT's scene does.

The folder was opened and its first input recorded while the scene was built (scenes/registry.py, on the loader's
worker). From then on the opened model stays on this session's worker: `set_text` and `step` return at once, the
worker tokenises and records (models/hf_record.py), and `update(dt)` on the frame thread writes what finished onto
the blocks and the token axes. The next token is picked on the frame thread from the recorded logits with the small
models' own sampler (models/sim/sampling.py: numpy only), so a seed and a temperature give the same text on every
run. The scene is laid out for CONTEXT tokens, so the input and what is generated after it fit without a new layout.
"""
from __future__ import annotations

import numpy as np

from llmviz.models.sim.sampling import Sampler, next_token_distribution
from llmviz.scenes.axis_labels import attach_axis_labels
from llmviz.scenes.legend import watch_cells
from llmviz.scenes.recorded import drawn_values, shown_token
from llmviz.scenes.worker_session import WEIGHTS_REQUEST, WorkerSession

CONTEXT = 32           # token rows a folder's scene lays out: its input and the tokens generated after it
MAX_TEXT = 4000        # characters of input text the panel sends to the tokenizer
WHAT_IT_IS = "computed by transformers from the folder's own weights"


def folder_compute(opened, capacity: int):
    """Worker-side compute over an already opened folder: ("text", s) tokenises s and records it, ("ids", ids)
    records those tokens; both answer the token ids, their strings and the recorded tensors. ("batch", ids)
    records only the attention maps of those tokens (the heads view's other inputs, FolderLive.record_batch)."""
    def make():
        from llmviz.models.hf_record import record, token_ids

        def compute(request):
            if request == WEIGHTS_REQUEST:
                return {}   # the folder's weights stay in transformers: only recorded activations are drawn
            kind, value = request
            if kind == "batch":
                return record(opened, list(value), wanted=lambda tensor_id: tensor_id.endswith(".softmax"))
            ids = token_ids(opened, value)[:capacity] if kind == "text" else token_ids(opened, ids=list(value))
            return {"ids": ids, "strings": token_strings(opened, ids), "recorded": record(opened, ids),
                    "downsampled": dict(opened.downsampled)}

        return compute

    return make


def token_strings(opened, ids: list[int]) -> list[str]:
    """Each token id as its tokenizer's string (the id itself where the folder has no tokenizer)."""
    if opened.tokenizer is None:
        return [str(i) for i in ids]
    return [str(s) for s in opened.tokenizer.convert_ids_to_tokens(ids)]


class FolderLive(WorkerSession):
    """A user's folder bound to its scene: text in, a recording per step out, tokens generated one at a time."""

    kind = "folder"
    explains = False        # no dataflow rules for a foreign family: the hover shows the recorded value
    about = WHAT_IT_IS

    def __init__(self, scene, renderer, opened, first: dict, source: str, capacity: int = CONTEXT, seed: int = 0):
        self.scene, self.renderer, self.source = scene, renderer, source
        self.name = opened.folder.name
        self.capacity = capacity
        self.config = opened.config
        self.parameters = opened.parameters
        self.has_tokenizer = opened.tokenizer is not None
        self._tokenizer = opened.tokenizer   # for names of candidate tokens; the model itself stays on the worker
        self.values_version = 0
        self.tick_seconds: list[float] = []
        self.playing = False
        self.temperature = 0.0
        self.sampler = Sampler(seed)
        self.generated: list[tuple[str, float]] = []   # (token string, its probability when it was picked)
        self.stopped = ""                               # why generation stopped (context full, end of text)
        self.cells = watch_cells(scene) if scene is not None else None
        self.axis_labels = attach_axis_labels(scene, "") if scene is not None else None
        self.batch: dict[tuple, dict | None] = {}   # token ids -> their recorded maps (None: the pass failed)
        self._batch_wanted: list[tuple] = []
        self._batch_ticket = None
        self._start_worker(folder_compute(opened, capacity))
        self._take(first)
        self._unwritten = True

    @property
    def session(self):
        """LiveModel's interface: the hover and the panels read live.session.trace / .weights / .error."""
        return self

    @property
    def tokens_generated(self) -> int:
        return len(self.generated)

    @property
    def full(self) -> bool:
        return len(self.ids) >= self.capacity

    def token_names(self, ids: list[int]) -> list[str]:
        """Candidate tokens as the panel names them (the id itself without a tokenizer)."""
        if self._tokenizer is None:
            return [str(i) for i in ids]
        return [shown_token(str(t)) for t in self._tokenizer.convert_ids_to_tokens(ids)]

    # ------------------------------------------------------------------ events
    def set_text(self, text: str) -> None:
        """Record `text` (through the folder's tokenizer, cut to the scene's CONTEXT tokens) from the start."""
        self.generated, self.stopped, self.playing = [], "", False
        self._request_now = ("text", str(text)[:MAX_TEXT])
        self._submit()

    def step(self) -> bool:
        """Pick the next token from the last position's logits and record the longer input; False when it cannot
        (a pass is running, the context is full, or the last token ended the text)."""
        if self.busy or self.trace is None or self.stopped:
            return False
        if self.full:
            self.stopped = f"the scene holds {self.capacity} tokens"
            return False
        probs = next_token_distribution(self.trace["logits"][-1], self.temperature)
        token = self.sampler.pick(probs, self.temperature)
        # ids change when the pass over the longer input arrives (_take): until then the panel shows the last one
        self._request_now = ("ids", (*self.ids, token))
        self._submit()
        self._picked = (token, float(probs[token]))
        return True

    def toggle_play(self) -> None:
        self.playing = not self.playing and not self.stopped

    def record_batch(self, inputs) -> None:
        """Have this session's worker record the attention maps of each of `inputs` (token id lists), one pass at a
        time between the live ones: the model is loaded once, here. Only the last inputs asked are kept."""
        self._batch_wanted = [tuple(int(t) for t in ids) for ids in inputs]
        self.batch = {ids: rec for ids, rec in self.batch.items() if ids in self._batch_wanted}
        self._next_batch()

    def batch_recorded(self, inputs) -> dict | None:
        """{ids: recorded maps} of `inputs` once every one is done (a failed pass left out), else None."""
        keys = [tuple(int(t) for t in ids) for ids in inputs]
        if any(ids not in self.batch for ids in keys):
            return None
        return {ids: self.batch[ids] for ids in keys if self.batch[ids] is not None}

    def _next_batch(self) -> None:
        if self._batch_ticket is None:
            missing = [ids for ids in self._batch_wanted if ids not in self.batch]
            if missing:
                self._batch_ticket = self._runner.submit(("batch", missing[0]))

    def _handle(self, result) -> bool:
        if isinstance(result.request, tuple) and result.request[0] == "batch":
            self._batch_ticket = None
            if result.request[1] in self._batch_wanted:
                self.batch[result.request[1]] = None if result.error else result.value
            self._next_batch()
            return False
        return super()._handle(result)

    # ------------------------------------------------------------------ per frame
    def update(self, dt: float) -> bool:
        changed = self.poll()
        if self._unwritten:
            self._write()
            changed = True
        if self.playing and not self.busy and not self.step():
            self.playing = False
        return changed

    def _request(self):
        return self._request_now

    def _on_trace(self, result) -> None:
        self.tick_seconds.append(result.seconds)
        picked, self._picked = getattr(self, "_picked", None), None
        self._take(self.trace)
        if picked is not None:
            token, p = picked
            self.generated.append((shown_token(self.strings[-1]), p))
            if token == self.config.get("eos_token_id"):
                self.stopped = "the model ended the text"
        self._write()

    def _take(self, value: dict) -> None:
        self.ids, self.strings = list(value["ids"]), list(value["strings"])
        self.alphabet = self.strings
        self.downsampled = value.get("downsampled", {})
        self.trace = value["recorded"]
        self._request_now = ("ids", tuple(self.ids))

    def _write(self) -> None:
        """The recording on its blocks (those the layout draws), the token strings on the token axes."""
        self._unwritten = False
        if self.renderer is None or self.scene is None:
            return
        shown, _ = drawn_values(self.scene.layout, self.trace, self.downsampled)
        self.trace.update(shown)   # a pooled map as drawn, cell for cell, so the hover reads what it points at
        # a shorter input than the last one: the rows it no longer has go empty, not stale
        self.scene.write_values(self.renderer, shown)
        self.axis_labels.show_strings([shown_token(s) for s in self.strings])
        self.values_version += 1

    def wait(self, timeout: float = 30.0) -> bool:
        ok = super().wait(timeout)
        self.update(0.0)
        return ok
