"""The .llmtrace file: a recorded forward pass (safetensors tensors under layout ids) and a JSON header that says what it is.

Written where the weights run (`llmviz trace`), opened anywhere without them (`llmviz open run.llmtrace`).
The header (safetensors' __metadata__, key "llmtrace") holds the format version, the model's config.json,
the tokens as ids and strings, the recorded ids, what was down-sampled and the library versions. Reading
bounds the file and its header before anything is allocated and checks every field, so a truncated file,
a tampered header or a trace from a future version is one line (TraceFileError), never a traceback.
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

FORMAT = "llmtrace"
VERSION = 1
SUFFIX = ".llmtrace"
MAX_FILE_BYTES = 8 << 30        # a laptop opens it whole
MAX_HEADER_BYTES = 16 << 20     # safetensors' own JSON header (tensor table and metadata)
MAX_TENSORS = 200_000
HEADER_FIELDS = {"format": str, "version": int, "config": dict, "tokens": list, "token_strings": list,
                 "tensors": list, "downsampled": dict, "libraries": dict}


class TraceFileError(ValueError):
    """A trace file that cannot be read or written: the message is one line naming the file."""


def _versions() -> dict:
    import importlib.metadata as md

    out = {}
    for name in ("torch", "transformers", "safetensors", "numpy"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def save_trace(path: str | os.PathLike, recorded: dict[str, np.ndarray], config: dict, token_strings: list[str],
               downsampled: dict | None = None) -> Path:
    """Write `recorded` (layout id -> array) and its header in one atomic write; returns the path."""
    from safetensors.numpy import save

    from llmviz.common.atomic import write_atomic

    path = Path(path)
    tokens = [int(t) for t in np.asarray(recorded["tokens"]).tolist()]
    header = {"format": FORMAT, "version": VERSION, "config": config, "tokens": tokens,
              "token_strings": [str(s) for s in token_strings], "tensors": sorted(recorded),
              "downsampled": downsampled or {}, "libraries": _versions()}
    arrays = {k: np.ascontiguousarray(v) for k, v in recorded.items()}
    data = save(arrays, metadata={FORMAT: json.dumps(header)})
    try:
        write_atomic(path, data)
    except OSError as err:
        raise TraceFileError(f"{path}: not written ({err.strerror or err})") from None
    return path


def _read_bounded(path: Path) -> bytes:
    try:
        size = path.stat().st_size
    except OSError as err:
        raise TraceFileError(f"{path}: {err.strerror or err}") from None
    if not path.is_file():
        raise TraceFileError(f"{path}: not a regular file")
    if size > MAX_FILE_BYTES:
        raise TraceFileError(f"{path}: {size:,} bytes, more than the {MAX_FILE_BYTES:,} a trace may have")
    if size < 8:
        raise TraceFileError(f"{path}: {size} bytes, too short to be a trace file (truncated?)")
    with open(path, "rb") as f:
        head = f.read(8)
        (length,) = struct.unpack("<Q", head)
        if length > MAX_HEADER_BYTES:
            raise TraceFileError(f"{path}: its header claims {length:,} bytes; a trace's header has at most "
                                 f"{MAX_HEADER_BYTES:,} (not a trace file?)")
        if 8 + length > size:
            raise TraceFileError(f"{path}: {size:,} bytes, shorter than its own header says: truncated")
        f.seek(0)
        return f.read(size + 1)


def load_trace(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """(header, layout id -> array) of a trace file; TraceFileError (one line) for anything wrong with it."""
    from safetensors.numpy import load

    path = Path(path)
    raw = _read_bounded(path)
    (length,) = struct.unpack("<Q", raw[:8])
    try:
        table = json.loads(raw[8:8 + length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TraceFileError(f"{path}: its header is not valid JSON ({err.__class__.__name__})") from None
    if not isinstance(table, dict) or len(table) > MAX_TENSORS + 1:
        raise TraceFileError(f"{path}: not a trace file (its header is not a tensor table of a size llmviz reads)")
    meta = table.get("__metadata__") or {}
    if not isinstance(meta, dict) or FORMAT not in meta:
        raise TraceFileError(f"{path}: a safetensors file, but not an llmviz trace (no '{FORMAT}' header)")
    try:
        header = json.loads(meta[FORMAT])
    except (TypeError, json.JSONDecodeError):
        raise TraceFileError(f"{path}: its '{FORMAT}' header is not valid JSON") from None
    _check_header(path, header)
    try:
        arrays = load(raw)
    except Exception as err:  # safetensors' own checks: offsets, dtypes, sizes
        raise TraceFileError(f"{path}: its tensors cannot be read ({' '.join(str(err).split())[:160]})") from None
    if set(arrays) != set(header["tensors"]):
        raise TraceFileError(f"{path}: the header lists {len(header['tensors'])} tensors, the file holds {len(arrays)}")
    if "tokens" not in arrays or arrays["tokens"].tolist() != header["tokens"]:
        raise TraceFileError(f"{path}: its tokens and its header's disagree (tampered?)")
    return header, arrays


def _check_header(path: Path, header) -> None:
    if not isinstance(header, dict):
        raise TraceFileError(f"{path}: its header is not an object")
    if header.get("format") != FORMAT:
        raise TraceFileError(f"{path}: format {header.get('format')!r}, not {FORMAT!r}")
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise TraceFileError(f"{path}: its version is {version!r}, not a number")
    if version > VERSION:
        raise TraceFileError(f"{path}: written by a newer llmviz (trace version {version}; this one reads up to "
                             f"{VERSION}): update llmviz")
    if version < 1:
        raise TraceFileError(f"{path}: trace version {version} is not one llmviz wrote")
    for name, kind in HEADER_FIELDS.items():
        if not isinstance(header.get(name), kind):
            raise TraceFileError(f"{path}: its header's {name!r} is missing or not a {kind.__name__}")
    if len(header["token_strings"]) != len(header["tokens"]):
        raise TraceFileError(f"{path}: {len(header['tokens'])} tokens but {len(header['token_strings'])} token strings")
    if not all(isinstance(t, int) and not isinstance(t, bool) for t in header["tokens"]):
        raise TraceFileError(f"{path}: its header's tokens are not all integers")
