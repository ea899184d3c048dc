"""Fixtures shared by test files: a tiny file system to fill."""
import os
import subprocess

import pytest


@pytest.fixture
def tiny_fs(tmp_path):
    """A 64 KiB tmpfs, mounted where the suite runs as root; skipped with the reason elsewhere."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)
