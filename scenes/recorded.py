"""A model brought by the user, shown with real values: a local Hugging Face folder computed by transformers, or a .llmtrace file recorded elsewhere.

`folder:DIR` records one forward pass of the folder's model (models/hf_record.py) on the scene loader's
worker; `trace:FILE` reads a recording (models/trace_file.py) and needs no weights. Either way the layout
comes from the stored config (models/hf_config.py), the recorded tensors are written on the blocks whose
ids and shapes they match, and the banner says where the values came from. Blocks the recording has no
tensor for (weights, per-head queries…) stay empty, and the status line says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
        self.axis_labels = attach_axis_labels(scene, "")
        self._written = False

    def update(self, dt: float) -> bool:
        if self._written:
            return False
        self.scene.write_values(self.renderer, self.session.trace)
        self.axis_labels.show_strings([shown_token(s) for s in self.session.alphabet])
        self._written = True
        self.values_version += 1
        return True

    def wait(self, timeout: float = 0.0) -> bool:
        self.update(0.0)
        return True

    def close(self) -> None:
        pass


def shown_token(token: str) -> str:
    """A token string as an axis label: BPE's space marks as a visible space, at most 12 characters."""
    # Byte-level BPE's space (U+0120) and SentencePiece's (U+2581) are never drawn: they become a middle dot.
    text = token.replace(chr(0x120), "·").replace(chr(0x2581), "·").replace("\n", "↵")
    return text if len(text) <= 12 else text[:11] + "…"


@dataclass
class Recording:
    """One recorded pass and where it came from; `opened` is the folder's model (None for a trace file)."""
    config: dict
    arrays: dict
    token_strings: list
    source: str
    downsampled: dict
    opened: object = None


def recording(kind: str, path: str, progress=None) -> Recording:
    """The recording of `folder:` (computed here, on DEFAULT_TEXT) or `trace:` (read from the file)."""
    if kind == "trace":
        from llmviz.models.trace_file import load_trace

        header, arrays = load_trace(path)
        libraries = ", ".join(f"{k} {v}" for k, v in sorted(header["libraries"].items()) if k in ("transformers", "torch"))
        return Recording(header["config"], arrays, header["token_strings"],
                         f"recorded in {Path(path).name} ({libraries})", header["downsampled"])
    from llmviz.models.hf_record import open_folder, record, token_ids
    from llmviz.scenes.folder_live import token_strings

    opened = open_folder(path, progress)
    ids = token_ids(opened, DEFAULT_TEXT) if opened.tokenizer is not None else list(DEFAULT_IDS)
    arrays = record(opened, ids)
    return Recording(opened.config, arrays, token_strings(opened, ids), f"computed by transformers from "
                     f"{Path(path).name}", dict(opened.downsampled), opened)


def downsampled_note(downsampled: dict) -> str:
    """The status line's words for what a recording pooled ('' when nothing was)."""
    return "; ".join(f"{pattern} recorded as the {how} (down-sampled)" for pattern, how in downsampled.items())


def _fits(got: tuple, shape: tuple) -> bool:
    """Whether a recorded array of shape `got` is drawn on a block of `shape` cells: the same shape, or fewer token
    rows than a scene laid out for generation has (a T × T map in a C × C block, T ≤ C); a vector as a column or a
    row."""
    if len(got) == 1:
        return got[0] <= max(shape) and 1 in shape
    if len(got) != 2 or got[0] > shape[0] or got[1] > shape[1]:
        return False
    return got[1] == shape[1] or (shape[0] == shape[1] and got[0] == got[1])


def drawn_values(layout, recorded: dict, downsampled: dict | None = None) -> tuple[dict, list[str]]:
    """The recorded tensors the layout draws (same id, same shape or fewer token rows), and the ids left out with
    why. A pooled attention map (the header's `downsampled`) is drawn cell for cell at its tokens' size, each cell
    showing the mean it was pooled into."""
    import fnmatch

    from llmviz.models.hf_record import pooling_of

    shown, left_out = {}, []
    n_tokens = len(recorded["tokens"]) if "tokens" in recorded else 0
    pooled = {pattern: pooling_of(how) for pattern, how in (downsampled or {}).items()}
    for tensor_id, values in recorded.items():
        factor = next((f for pattern, f in pooled.items() if fnmatch.fnmatchcase(tensor_id, pattern)), None)
        if factor and values.ndim == 2:
            values = values.repeat(factor, 0).repeat(factor, 1)[:n_tokens, :n_tokens]
        try:
            row = layout.index(tensor_id)
        except KeyError:
            left_out.append(f"{tensor_id} (no such block)")
            continue
        shape = (int(layout.rows[row]), int(layout.cols[row]))
        if not _fits(values.shape, shape):
            left_out.append(f"{tensor_id} ({'×'.join(map(str, values.shape))}, drawn {shape[0]}×{shape[1]})")
            continue
        shown[tensor_id] = values
    return shown, left_out
