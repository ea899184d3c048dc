"""Reading a safetensors weights file without trusting it: bounded, checked against the model, then loaded.

Order matters: the file's size, its header (length, JSON, each tensor's dtype, shape and byte range)
and the config in its metadata are checked before any model is built, the expected shapes come from
a model built on torch's "meta" device (no memory), and only then are the tensors read and tested
for NaN, Inf and all-zero matrices. Every problem is one WeightsError naming the file and tensor.
"""
from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

MAX_FILE_BYTES = 64 * 2**20     # the shipped small models are under 2 MB
MAX_HEADER_BYTES = 2**20
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                "BOOL": 1}


class WeightsError(ValueError):
    """A weights file that cannot be used: '<file>: <tensor>: <problem>'."""

    def __init__(self, file, problem: str, tensor: str | None = None):
        self.file, self.tensor, self.problem = str(file), tensor, problem
        where = f"{tensor!r}: " if tensor else ""
        super().__init__(f"{self.file}: {where}{problem}")


def read_bytes(source, name: str | None = None) -> bytes:
    """The whole file, refusing devices, FIFOs and anything over MAX_FILE_BYTES before reading."""
    name = name or str(source)
    try:
        if isinstance(source, (str, os.PathLike)):
            info = os.stat(source)
            if not stat.S_ISREG(info.st_mode):
                raise WeightsError(name, "not a regular file")
            if info.st_size > MAX_FILE_BYTES:
                raise WeightsError(name, f"{info.st_size:,} bytes is more than the {MAX_FILE_BYTES:,} allowed")
            with open(source, "rb") as f:
                return f.read(MAX_FILE_BYTES + 1)
        return source.read_bytes()  # an importlib.resources file shipped with the package
    except OSError as err:
        raise WeightsError(name, f"cannot read ({err.strerror or err})") from None


def parse_header(data: bytes, name: str) -> tuple[dict, dict]:
    """(tensors: name -> (dtype, shape), metadata) after checking the header's structure and byte ranges."""
    if len(data) > MAX_FILE_BYTES:
        raise WeightsError(name, f"more than the {MAX_FILE_BYTES:,} bytes allowed")
    if len(data) < 8:
        raise WeightsError(name, "too short to be a safetensors file")
    n = int.from_bytes(data[:8], "little")
    if not 2 <= n <= min(MAX_HEADER_BYTES, len(data) - 8):
        raise WeightsError(name, f"header length {n} does not fit the file ({len(data)} bytes)")
    try:
        header = json.loads(data[8:8 + n])
    except (ValueError, RecursionError):
        raise WeightsError(name, "the header is not valid JSON") from None
    if not isinstance(header, dict):
        raise WeightsError(name, "the header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise WeightsError(name, "__metadata__ must map names to strings")
    body, tensors, spans = len(data) - 8 - n, {}, []
    for tensor, entry in header.items():
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise WeightsError(name, "needs exactly dtype, shape and data_offsets", tensor)
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in _DTYPE_BYTES:
            raise WeightsError(name, f"unknown dtype {dtype!r}", tensor)
        if not (isinstance(shape, list) and len(shape) <= 8
                and all(type(d) is int and 0 <= d <= 2**31 for d in shape)):
            raise WeightsError(name, "shape must be a list of at most 8 sizes", tensor)
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= body):
            raise WeightsError(name, f"data_offsets {offsets!r} lie outside the file's {body} data bytes", tensor)
        if offsets[1] - offsets[0] != math.prod(shape) * _DTYPE_BYTES[dtype]:
            raise WeightsError(name, f"{offsets[1] - offsets[0]} bytes do not hold a {dtype} tensor of shape "
                               f"{shape}", tensor)
        tensors[tensor] = (dtype, tuple(shape))
        spans.append(tuple(offsets))
    spans.sort()
    if any(a[1] > b[0] for a, b in zip(spans, spans[1:])):
        raise WeightsError(name, "tensors overlap in the file")
    return tensors, metadata


def llmviz_config(metadata: dict, name: str, fields: dict[str, tuple[type, float, float]]) -> dict:
    """The model config the trainer stored under metadata['llmviz'], each field typed and in range."""
    try:
        info = json.loads(metadata["llmviz"])
        config = info["config"]
    except (KeyError, TypeError, ValueError, RecursionError):
        raise WeightsError(name, "no llmviz model config in the metadata (not a file from `llmviz train`)") from None
    if not isinstance(config, dict):
        raise WeightsError(name, "the metadata's config is not an object")
    for key, value in config.items():
        if key not in fields:
            raise WeightsError(name, f"unknown config field {key!r} in the metadata")
        kind, low, high = fields[key]
        ok_type = isinstance(value, (int, float)) if kind is float else type(value) is kind
        if not ok_type or not (low <= value <= high):
            raise WeightsError(name, f"config {key} = {value!r} must be {kind.__name__} in [{low:g}, {high:g}]")
    return config


def check_against(tensors: dict, expected: dict, name: str) -> None:
    """Same tensor names, float32 dtype and shapes as the model about to be built."""
    for tensor, shape in expected.items():
        if tensor not in tensors:
            raise WeightsError(name, "missing", tensor)
        dtype, got = tensors[tensor]
        if dtype != "F32":
            raise WeightsError(name, f"dtype {dtype}, expected F32", tensor)
        if got != tuple(shape):
            raise WeightsError(name, f"shape {list(got)}, expected {list(shape)}", tensor)
    extra = sorted(set(tensors) - set(expected))
    if extra:
        raise WeightsError(name, "not a tensor of this model", extra[0])


def check_values(state: dict, name: str) -> None:
    """Finite everywhere, and no weight matrix all zeros (an untrained or wiped file)."""
    import torch

    for tensor, value in state.items():
        if not bool(torch.isfinite(value).all()):
            raise WeightsError(name, "contains NaN or Inf", tensor)
        if value.dim() >= 2 and not bool(value.any()):
            raise WeightsError(name, "is all zeros", tensor)


def expected_shapes(build) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of the model ``build()`` makes, built on the meta device (no memory used)."""
    import torch

    with torch.device("meta"):
        model = build()
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def load_checked(source, build_for_config, fields, name: str | None = None):
    """The model from a weights file, every check above passed; ``build_for_config(config)`` makes it."""
    from safetensors.torch import load

    name = name or (Path(source).name if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "weights"))
    data = read_bytes(source, name)
    tensors, metadata = parse_header(data, name)
    config = llmviz_config(metadata, name, fields)
    try:
        expected = expected_shapes(lambda: build_for_config(config))
    except (TypeError, ValueError, ZeroDivisionError, RuntimeError) as err:
        raise WeightsError(name, f"the metadata's config cannot build the model ({err})".splitlines()[0]) from None
    check_against(tensors, expected, name)
    state = load(data)
    check_values(state, name)
    model = build_for_config(config)
    model.load_state_dict(state)
    return model.eval()
