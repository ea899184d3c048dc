"""Camera bookmarks kept per model across runs: one JSON file per model in the user's config directory.

``$LLMVIZ_CONFIG_DIR/bookmarks/<model>.json`` (else ``$XDG_CONFIG_HOME/llmviz`` or ``~/.config/llmviz``,
as models/registry.py's ``config_dir`` decides). A file that cannot be read is reported in one line and
ignored (the bookmarks start empty); it is never a reason not to open the window.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

from llmviz.common.atomic import write_atomic
from llmviz.engine.camera_control import Pose


def bookmarks_path(model: str, folder: Path | None = None) -> Path:
    from llmviz.models.registry import config_dir

    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model) or "scene"
    return Path(folder if folder is not None else config_dir() / "bookmarks") / f"{safe}.json"


MAX_BOOKMARKS_BYTES = 1 << 20  # ten bookmarks take under 2 KB
MAX_SLOT = 99
MAX_COORDINATE = 1e7


def parse_bookmarks(text: str) -> dict[int, Pose]:
    """Bookmarks from a file's text; ValueError with a one-line reason for anything unusable."""
    from llmviz.common.text import nesting_depth

    if len(text) > MAX_BOOKMARKS_BYTES or nesting_depth(text) > 8:
        raise ValueError("too large or too deeply nested to be a bookmarks file")
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("bookmarks", {}), dict):
        raise ValueError("expected an object with a 'bookmarks' object")
    out = {}
    for slot, entry in data.get("bookmarks", {}).items():
        if not (isinstance(slot, str) and slot.isdigit() and len(slot) <= 2 and int(slot) <= MAX_SLOT):
            raise ValueError(f"bookmark slot {slot[:20]!r} is not a number from 0 to {MAX_SLOT}")
        if not isinstance(entry, dict):
            raise ValueError(f"bookmark {slot}: expected an object with position and orientation")
        position = np.array(entry["position"], np.float64)
        orientation = np.array(entry["orientation"], np.float64)
        if position.shape != (3,) or orientation.shape != (4,) or not np.isfinite([*position, *orientation]).all():
            raise ValueError(f"bookmark {slot}: position needs 3 numbers and orientation 4")
        norm = float(np.linalg.norm(orientation))
        if np.abs(position).max() > MAX_COORDINATE or not 1e-6 < norm < 1e6:
            raise ValueError(f"bookmark {slot}: position beyond ±{MAX_COORDINATE:g} or orientation not a rotation "
                             f"(quaternion length {norm:g})")
        out[int(slot)] = Pose(position, orientation / norm)
    return out


def load_bookmarks(model: str, folder: Path | None = None) -> dict[int, Pose]:
    from llmviz.common.text import one_line

    path = bookmarks_path(model, folder)
    if not path.exists():
        return {}
    try:
        if not path.is_file() or path.stat().st_size > MAX_BOOKMARKS_BYTES:
            raise ValueError(f"not a regular file of at most {MAX_BOOKMARKS_BYTES:,} bytes")
        return parse_bookmarks(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
        print(one_line(f"llmviz: ignoring bookmarks file {path}: {err}"), file=sys.stderr)
        return {}


def save_bookmarks(model: str, bookmarks: dict[int, Pose], folder: Path | None = None) -> Path:
    """Write atomically (llmviz.common.atomic), so a crash or a full disk never leaves half a file."""
    path = bookmarks_path(model, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"model": model, "bookmarks": {str(k): {"position": [float(v) for v in pose.position],
                                                   "orientation": [float(v) for v in pose.orientation]}
                                          for k, pose in sorted(bookmarks.items())}}
    return write_atomic(path, json.dumps(data, indent=1))
