"""The one atomic-write helper: the old file survives a full disk, a failing writer and Ctrl+C; no temp file is left."""
import os
import stat
import uuid

import pytest

from llmviz.common.atomic import atomic_file, atomic_path, probe_writable, write_atomic


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_replaces_the_file_and_keeps_its_mode(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    target.chmod(0o640)
    write_atomic(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert leftovers(tmp_path) == []


def test_a_new_file_gets_the_umask_default_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "w.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "w.bin").stat().st_mode) == 0o644


@pytest.mark.parametrize("error", [RuntimeError("writer failed"), KeyboardInterrupt()])
def test_a_failing_writer_leaves_the_old_file_and_no_temp(tmp_path, error):
    target = tmp_path / "keep.png"
    target.write_bytes(b"good image")
    with pytest.raises(type(error)):
        with atomic_file(target) as f:
            f.write(b"half")
            raise error
    assert target.read_bytes() == b"good image"
    assert leftovers(tmp_path) == []


def test_refuses_to_replace_a_device_or_a_folder(tmp_path):
    with pytest.raises(OSError):
        write_atomic("/dev/null", b"x")
    with pytest.raises(OSError):
        write_atomic(tmp_path, b"x")


def test_full_disk_keeps_the_old_file_and_removes_the_temp(tiny_fs):
    target = tiny_fs / "image.png"
    target.write_bytes(b"g" * 1000)
    with pytest.raises(OSError) as err:
        write_atomic(target, os.urandom(256 * 1024))
    assert err.value.errno == 28  # ENOSPC
    assert target.read_bytes() == b"g" * 1000
    assert leftovers(tiny_fs) == []


def test_probe_finds_a_full_disk_before_the_work(tiny_fs, tmp_path):
    with pytest.raises(OSError):
        probe_writable(tiny_fs / "weights.safetensors", reserve=512 * 1024)
    assert leftovers(tiny_fs) == []
    probe_writable(tmp_path / f"{uuid.uuid4().hex}.bin", reserve=1024)
    assert leftovers(tmp_path) == []


def test_probe_refuses_pseudo_file_systems():
    with pytest.raises(OSError):
        probe_writable("/proc/version")


def test_atomic_path_keeps_the_suffix_for_format_picking_writers(tmp_path):
    import numpy as np

    target = tmp_path / "trace.npz"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".npz" and tmp.parent == tmp_path
        np.savez_compressed(tmp, a=np.arange(3))
    assert np.load(target)["a"].tolist() == [0, 1, 2]
    assert leftovers(tmp_path) == []
