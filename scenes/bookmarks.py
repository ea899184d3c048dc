"""Camera bookmarks kept per model across runs: one JSON file per model in the user's config directory.

``$LLMVIZ_CONFIG_DIR/bookmarks/<model>.json`` (else ``$XDG_CONFIG_HOME/llmviz`` or ``~/.config/llmviz``,
as models/registry.py's ``config_dir`` decides). A file that cannot be read is reported in one line and
ignored (the bookmarks start empty); it is never a reason not to open the window.
"""
from __future__ import annotations

import json
import os
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


def load_bookmarks(model: str, folder: Path | None = None) -> dict[int, Pose]:
    path = bookmarks_path(model, folder)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        out = {}
        for slot, entry in data.get("bookmarks", {}).items():
            position = np.array(entry["position"], np.float64)
            orientation = np.array(entry["orientation"], np.float64)
            if position.shape != (3,) or orientation.shape != (4,) or not np.isfinite([*position, *orientation]).all():
                raise ValueError(f"bookmark {slot}: position needs 3 numbers and orientation 4")
            out[int(slot)] = Pose(position, orientation / np.linalg.norm(orientation))
        return out
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        print(f"llmviz: ignoring bookmarks file {path}: {err}", file=sys.stderr)
        return {}


def save_bookmarks(model: str, bookmarks: dict[int, Pose], folder: Path | None = None) -> Path:
    """Write atomically (llmviz.common.atomic), so a crash or a full disk never leaves half a file."""
    path = bookmarks_path(model, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"model": model, "bookmarks": {str(k): {"position": [float(v) for v in pose.position],
                                                   "orientation": [float(v) for v in pose.orientation]}
                                          for k, pose in sorted(bookmarks.items())}}
    return write_atomic(path, json.dumps(data, indent=1))
