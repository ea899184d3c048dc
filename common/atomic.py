"""The one way llmviz writes a file: a temporary file in the same folder, fsync, rename over the target.

It lives in llmviz.common, a fourth package below engine, models and scenes, because all three
write files (bookmarks, weights, specs, images, traces) and engine and models may not import each
other; common imports none of them (tests/test_layering.py). On any failure — a full disk, an
exception in the caller, Ctrl+C — the old file is left as it was and the temporary file is removed.
A replaced file keeps its mode; a new one gets the usual 0666 minus the umask (mkstemp's 0600
would hide shipped weights from other users).
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _target_mode(path: Path) -> int:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return 0o666 & ~_umask()
    if not stat.S_ISREG(info.st_mode):
        # renaming over a device or a folder would replace it: never what the user meant
        raise IsADirectoryError(f"{path} is not a regular file") if stat.S_ISDIR(info.st_mode) else \
            OSError(f"{path} is not a regular file")
    return stat.S_IMODE(info.st_mode)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path`` (same suffix, for writers that pick a format by it, such
    as numpy's savez); on a clean exit its contents replace ``path``, otherwise it is removed."""
    path = Path(path)
    file_mode = _target_mode(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, file_mode)
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt included: no orphan temporary file
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_folder(path.parent)


@contextlib.contextmanager
def atomic_file(path, mode: str = "wb", encoding: str | None = None):
    """Yield an open temporary file; on a clean exit it replaces ``path``, otherwise it vanishes."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=encoding if "b" not in mode else None) as f:
            yield f


def write_atomic(path, data: bytes | str) -> Path:
    """Write all of ``data`` (text is UTF-8) to ``path`` atomically; returns the path."""
    with atomic_file(path, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def probe_writable(path, reserve: int = 0) -> None:
    """Raise OSError now if ``path`` could not be written later: a temporary file of ``reserve``
    bytes is made in its folder and removed (this catches read-only and pseudo file systems,
    permissions and a disk without that much room, which access() alone does not)."""
    path = Path(path)
    _target_mode(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".probe")
    try:
        if reserve:
            chunk = b"\0" * min(reserve, 1 << 20)
            left = reserve
            while left > 0:
                left -= os.write(fd, chunk[:left])
            os.fsync(fd)
    finally:
        os.close(fd)
        os.unlink(tmp)


def _sync_folder(folder: Path) -> None:
    # the rename is only durable once the folder's entry is on disk; some file systems refuse
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
