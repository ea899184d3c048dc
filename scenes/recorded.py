"""A model brought by the user, shown with real values: a local Hugging Face folder computed by transformers, or a .llmtrace file recorded elsewhere.

`folder:DIR` records one forward pass of the folder's model (models/hf_record.py) on the scene loader's
worker; `trace:FILE` reads a recording (models/trace_file.py) and needs no weights. Either way the layout
comes from the stored config (models/hf_config.py), the recorded tensors are written on the blocks whose
ids and shapes they match, and the banner says where the values came from. Blocks the recording has no
tensor for (weights, per-head queries…) stay empty, and the status line says so.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from llmviz.scenes.axis_labels import attach_axis_labels
from llmviz.scenes.legend import watch_cells

DEFAULT_TEXT = "The quick brown fox jumps over the lazy dog"
DEFAULT_IDS = tuple(range(1, 9))   # a folder without a tokenizer


class RecordedSession:
    """What the hover and the panels read of a live model (trace, weights), for a fixed recording."""

    explains = False       # no dataflow rules for foreign families: the hover shows the recorded value

    def __init__(self, trace: dict, token_strings: list[str]):
        self.trace = trace
        self.weights: dict = {}
        self.alphabet = token_strings   # hover names token t by its string (the ids are positions here)
        self.error = None


class RecordedModel:
    """A recording bound to its scene: written to the blocks once, on the first frame."""

    # The live models' interface that benchmarks read: a recording generates nothing and runs no worker.
    tokens_generated = 0
    tick_seconds: tuple = ()

    def __init__(self, scene, renderer, recorded: dict, token_strings: list[str], source: str):
        self.scene, self.renderer, self.source = scene, renderer, source
        self.session = RecordedSession(recorded, token_strings)
        self.values_version = 0
        self.cells = watch_cells(scene)
        # The token axes name this recording's T tokens: position t shows token string t.
        self.axis_labels = attach_axis_labels(scene, [_shown(s) for s in token_strings])
        self._written = False

    def update(self, dt: float) -> bool:
        if self._written:
            return False
        self.scene.write_values(self.renderer, self.session.trace)
        self.axis_labels.show_tokens(np.arange(len(self.session.alphabet)))
        self._written = True
        self.values_version += 1
        return True

    def wait(self, timeout: float = 0.0) -> bool:
        self.update(0.0)
        return True

    def close(self) -> None:
        pass


def _shown(token: str) -> str:
    """A token string as an axis label: BPE's space marks as a visible space, at most 12 characters."""
    # Byte-level BPE's space (U+0120) and SentencePiece's (U+2581) are never drawn: they become a middle dot.
    text = token.replace(chr(0x120), "·").replace(chr(0x2581), "·").replace("\n", "↵")
    return text if len(text) <= 12 else text[:11] + "…"


def _token_strings(opened, ids: list[int]) -> list[str]:
    if opened.tokenizer is None:
        return [str(i) for i in ids]
    return [str(s) for s in opened.tokenizer.convert_ids_to_tokens(ids)]


def recording(kind: str, path: str, progress=None) -> tuple[dict, dict, list[str], str]:
    """(config, layout id -> array, token strings, where the values came from) of `folder:` or `trace:`."""
    if kind == "trace":
        from llmviz.models.trace_file import load_trace

        header, arrays = load_trace(path)
        libraries = ", ".join(f"{k} {v}" for k, v in sorted(header["libraries"].items()) if k in ("transformers", "torch"))
        return header["config"], arrays, header["token_strings"], f"recorded in {Path(path).name} ({libraries})"
    from llmviz.models.hf_record import open_folder, record, token_ids

    opened = open_folder(path, progress)
    ids = token_ids(opened, DEFAULT_TEXT) if opened.tokenizer is not None else list(DEFAULT_IDS)
    recorded = record(opened, ids)
    return opened.config, recorded, _token_strings(opened, ids), f"computed by transformers from {Path(path).name}"


def drawn_values(layout, recorded: dict) -> tuple[dict, list[str]]:
    """The recorded tensors the layout draws (same id, same shape), and the ids left out with why."""
    shown, left_out = {}, []
    for tensor_id, values in recorded.items():
        try:
            row = layout.index(tensor_id)
        except KeyError:
            left_out.append(f"{tensor_id} (no such block)")
            continue
        shape = (int(layout.rows[row]), int(layout.cols[row]))
        got = values.shape if values.ndim == 2 else (values.shape[0], 1)
        if got != shape and not (values.ndim == 1 and shape == (1, values.shape[0])):
            left_out.append(f"{tensor_id} ({'×'.join(map(str, values.shape))}, drawn {shape[0]}×{shape[1]})")
            continue
        shown[tensor_id] = values
    return shown, left_out
