"""Start an inference server as a child process on a free 127.0.0.1 port, wait until it answers, always kill it."""
from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

START_TIMEOUT_S = 240.0  # transformers serve imports torch and transformers first: a minute on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/v1/models")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


class ServerProcess:
    """``command`` (a server on ``port``) started at once in its own process group, its output in ``log``;
    ``url()`` waits until GET /v1/models answers; ``close()`` kills the group, whatever happened. Starting two
    before waiting on either lets their (slow) imports overlap."""

    def __init__(self, command: list[str], port: int, log: Path, env: dict | None = None):
        self.command, self.port, self.log = command, port, log
        environment = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                           PYTHONUNBUFFERED="1", HF_HUB_DISABLE_UPDATE_CHECK="1", **(env or {}))
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=environment, start_new_session=True)

    def url(self, timeout: float = START_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout
        while not _answers(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.command[:3]} exited with {self.proc.returncode}: {_tail(self.log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.command[:3]} did not answer on port {self.port} within {timeout:g} s: "
                                   f"{_tail(self.log)}")
            time.sleep(0.25)
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(15)


def _tail(log: Path) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-5:])
    except OSError:
        return "(no log)"


def llama_cpp_command(gguf: Path, port: int, alias: str) -> list[str]:
    """llama-cpp-python's OpenAI-compatible server on one GGUF, one thread, a small context."""
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", alias,
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "512", "--n_threads", "1", "--n_threads_batch", "1",
            "--verbose", "False"]


def transformers_command(folder: Path, port: int) -> list[str]:
    """`transformers serve` pinned to one local folder, on the CPU."""
    script = "import sys; from transformers.cli.transformers import main; sys.argv[0] = 'transformers'; main()"
    return [sys.executable, "-c", script, "serve", str(folder), "--host", "127.0.0.1", "--port", str(port),
            "--device", "cpu", "--log-level", "warning"]
