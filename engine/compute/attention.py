"""Attention of one head (or a stack of heads) by WGSL compute shaders: scores Q.K^T/sqrt(d), causal mask, softmax,
times V; and the tiled online-softmax form that never holds a queries x keys array.

For the long-context tiles (H4: models/sim/long_attention.tiled_attention has the same contract):
    online_attention(q, k, v, causal=True, window=None, scale=None, progress=None) -> (output, row_max, row_sum)
        q (H, Tq, d), k and v (H, Tk, d) float32 (or (T, d) for one head); row_max is each row's largest scaled
        score, row_sum its sum of exp(s - row_max), so a probability is exp(s - row_max) / row_sum.
        progress(done, total) is called after each submitted chunk of query rows.
For live traces' attention:
    head_attention(q, k, v, causal=True, window=None, scale=None) -> HeadAttention(output, probs)
        the full (H, Tq, Tk) probabilities and the (H, Tq, d) output.
Use them when the wgpu backend is active and compute_unavailable() is None; both raise ComputeUnavailable (one
line) where no device exists or wgpu fails inside the call (out of memory, a lost device) and ValueError (one
line) for arrays they cannot take. Calls block until the GPU is done: call them from a worker thread, never the
frame thread.

Masks: key j is allowed for query i when j <= i + (Tk - Tq) (causal: with a cache, the last query sees every key)
and, with ``window``, j > i + (Tk - Tq) - window (a sliding window of that many keys, the query's own included).
"""
from __future__ import annotations

import contextlib
import importlib.resources
import re
import struct
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np

from llmviz.engine.gpu_adapters import MadeOnce, shared_device

MAX_HEAD_DIM_ONLINE = 128  # the online kernel keeps a query row and its accumulator in registers (up to 32 vec4s)
_ONLINE_ROWS = 64  # query rows per workgroup (compute_online_attention.wgsl's workgroup size)
_MAX_GROUPS = 65535  # WebGPU's workgroups per dispatch dimension
_CHUNK_MULTIPLY_ADDS = 1 << 30  # work per submit of the online kernel: progress ticks, no driver timeout


class ComputeUnavailable(RuntimeError):
    """No wgpu device for the kernels; str(err) is the one-line reason."""


@dataclass
class HeadAttention:
    output: np.ndarray  # (H, Tq, d) or (Tq, d), float32
    probs: np.ndarray  # (H, Tq, Tk) or (Tq, Tk), float32; masked entries exactly 0


def compute_unavailable() -> str | None:
    """None when the kernels can run here, else the one-line reason (no wgpu, no adapter, no device)."""
    try:
        _kernels()
    except ComputeUnavailable as err:
        return str(err)
    return None


def head_attention(q, k, v, causal: bool = True, window: int | None = None,
                   scale: float | None = None) -> HeadAttention:
    q3, k3, v3, single = _checked(q, k, v, causal, window)
    kernels = _kernels()
    with kernels.reporting("head_attention"):
        output, probs = kernels.full(q3, k3, v3, causal, window or 0, _scale(scale, q3))
    return HeadAttention(output[0], probs[0]) if single else HeadAttention(output, probs)


def online_attention(q, k, v, causal: bool = True, window: int | None = None, scale: float | None = None,
                     progress: Callable[[int, int], None] | None = None):
    q3, k3, v3, single = _checked(q, k, v, causal, window)
    if q3.shape[-1] > MAX_HEAD_DIM_ONLINE:
        raise ValueError(f"online_attention: head dimension {q3.shape[-1]} is over {MAX_HEAD_DIM_ONLINE}; "
                         "use head_attention")
    kernels = _kernels()
    with kernels.reporting("online_attention"):
        out, row_max, row_sum = kernels.online(q3, k3, v3, causal, window or 0, _scale(scale, q3), progress)
    return (out[0], row_max[0], row_sum[0]) if single else (out, row_max, row_sum)


def _scale(scale: float | None, q: np.ndarray) -> float:
    return float(q.shape[-1] ** -0.5 if scale is None else scale)


def _checked(q, k, v, causal: bool, window: int | None):
    arrays = []
    for name, a in (("q", q), ("k", k), ("v", v)):
        a = np.asarray(a)
        if a.ndim not in (2, 3):
            raise ValueError(f"attention: {name} must be (T, d) or (heads, T, d), got shape {a.shape}")
        if a.dtype.kind not in "fiu":
            raise ValueError(f"attention: {name} must hold numbers, got dtype {a.dtype}")
        arrays.append(np.ascontiguousarray(a, dtype=np.float32))
    q, k, v = arrays
    if not (q.ndim == k.ndim == v.ndim):
        raise ValueError(f"attention: q, k, v must have the same number of axes, got {q.shape}, {k.shape}, {v.shape}")
    single = q.ndim == 2
    if single:
        q, k, v = q[None], k[None], v[None]
    if k.shape != v.shape or q.shape[0] != k.shape[0] or q.shape[2] != k.shape[2]:
        raise ValueError(f"attention: q {q.shape[-3:] if not single else q.shape[1:]} and k, v "
                         f"{k.shape if not single else k.shape[1:]}, {v.shape if not single else v.shape[1:]} "
                         "do not fit (same heads and head dimension; k and v the same shape)")
    if min(q.shape) < 1 or k.shape[1] < 1:
        raise ValueError(f"attention: empty arrays (q {q.shape}, k {k.shape})")
    if causal and q.shape[1] > k.shape[1]:
        raise ValueError(f"attention: causal attention needs at least as many keys ({k.shape[1]}) as queries "
                         f"({q.shape[1]}); the first queries would see no key")
    if window is not None and (int(window) != window or window < 1 or not causal):
        raise ValueError(f"attention: window must be a positive integer with causal=True, got {window!r}")
    for name, a in (("q", q), ("k", k), ("v", v)):
        if not np.isfinite(a).all():
            raise ValueError(f"attention: {name} holds NaN or infinite values")
    return q, k, v, single


def _shader(name: str) -> str:
    return importlib.resources.files("llmviz.shaders").joinpath(f"{name}.wgsl").read_text()


class _Kernels:
    """The compute pipelines on one device, each compiled once (the online one per head dimension), and the buffer
    traffic around them."""

    def __init__(self, gpu):
        import wgpu

        self.wgpu = wgpu
        self.device = gpu.device
        self.adapter = gpu.adapter
        self.lock = threading.Lock()  # one call at a time on the shared device
        self.max_binding = int(self.device.limits.get("max-storage-buffer-binding-size", 1 << 27))
        self.pipelines = {name: self._pipeline(name, _shader(name)) for name in
                          ("compute_attention_scores", "compute_softmax_rows", "compute_attention_values")}
        self._online_source = _shader("compute_online_attention")

    def online_pipeline(self, d4: int):
        """The online kernel compiled for a head dimension of ``d4`` vec4s (its D4 constant), once per size."""
        name = f"compute_online_attention_d{d4}"
        if name not in self.pipelines:
            source, count = re.subn(r"const D4: u32 = \d+u;", f"const D4: u32 = {d4}u;", self._online_source)
            assert count == 1, "compute_online_attention.wgsl lost its D4 line"
            self.pipelines[name] = self._pipeline(name, source)
        return name

    @contextlib.contextmanager
    def reporting(self, what: str):
        """wgpu's own errors inside a call (out of device memory, a lost device) as ComputeUnavailable, one line."""
        try:
            yield
        except self.wgpu.GPUError as err:
            text = " ".join(str(err).split())[:200] or type(err).__name__
            raise ComputeUnavailable(f"{what} failed on {self.adapter.label()}: {text}") from None

    def _pipeline(self, name: str, source: str):
        module = self.device.create_shader_module(code=source, label=name)
        return self.device.create_compute_pipeline(layout="auto", compute={"module": module, "entry_point": "main"},
                                                   label=name)

    def _storage(self, array: np.ndarray | None = None, nbytes: int = 0, what: str = "array"):
        size = array.nbytes if array is not None else nbytes
        if size > self.max_binding:
            raise ValueError(f"attention: the {what} ({size / 2**20:.0f} MiB) is over the adapter's storage limit "
                             f"({self.max_binding / 2**20:.0f} MiB); use online_attention or fewer tokens")
        usage = self.wgpu.BufferUsage.STORAGE | self.wgpu.BufferUsage.COPY_SRC | self.wgpu.BufferUsage.COPY_DST
        if array is not None:
            return self.device.create_buffer_with_data(data=array, usage=usage)
        return self.device.create_buffer(size=max(4, size), usage=usage)

    def _uniform(self, fmt: str, *values):
        return self.device.create_buffer_with_data(data=struct.pack(fmt, *values),
                                                   usage=self.wgpu.BufferUsage.UNIFORM)

    def _pass(self, encoder, name: str, buffers, groups):
        pipeline = self.pipelines[name]
        bind = self.device.create_bind_group(layout=pipeline.get_bind_group_layout(0), entries=[
            {"binding": i, "resource": {"buffer": b, "offset": 0, "size": b.size}} for i, b in enumerate(buffers)])
        compute = encoder.begin_compute_pass()
        compute.set_pipeline(pipeline)
        compute.set_bind_group(0, bind)
        compute.dispatch_workgroups(*groups)
        compute.end()

    def _read(self, buffer, shape) -> np.ndarray:
        return np.frombuffer(self.device.queue.read_buffer(buffer), np.float32).reshape(shape).copy()

    def full(self, q, k, v, causal: bool, window: int, scale: float):
        heads, tq, d = q.shape
        tk = k.shape[1]
        q4, k4, v4 = (_pad4(a) for a in (q, k, v))
        d4 = q4.shape[-1] // 4
        rows = heads * tq
        row_groups = -(-rows // 64)
        if heads > _MAX_GROUPS or -(-tk // 32) > _MAX_GROUPS:
            raise ValueError(f"attention: {heads} heads of {tk} keys is past one dispatch's size")
        with self.lock:
            qb, kb, vb = (self._storage(a, what=w) for a, w in ((q4, "queries"), (k4, "keys"), (v4, "values")))
            probs = self._storage(nbytes=heads * tq * tk * 4, what="probability matrix")
            out = self._storage(nbytes=v4.nbytes // tk * tq, what="output")
            offset = tk - tq
            scores_params = self._uniform("<4I i I f I", tq, tk, d4, int(causal), offset, window, scale, 0)
            softmax_params = self._uniform("<4I", rows, tk, 0, 0)
            values_params = self._uniform("<4I i 3I", tq, tk, d4, int(causal), offset, window, 0, 0)
            encoder = self.device.create_command_encoder()
            self._pass(encoder, "compute_attention_scores", [scores_params, qb, kb, probs],
                       (-(-tk // 32), -(-tq // 32), heads))
            x_groups = min(row_groups, _MAX_GROUPS)
            self._pass(encoder, "compute_softmax_rows", [softmax_params, probs],
                       (x_groups, -(-row_groups // x_groups), 1))
            self._pass(encoder, "compute_attention_values", [values_params, probs, vb, out],
                       (-(-d4 // 8), -(-tq // 32), heads))
            self.device.queue.submit([encoder.finish()])
            output = self._read(out, (heads, tq, d4 * 4))[..., :d]
            return np.ascontiguousarray(output), self._read(probs, (heads, tq, tk))

    def online(self, q, k, v, causal: bool, window: int, scale: float, progress):
        heads, tq, d = q.shape
        tk = k.shape[1]
        q4, k4, v4 = (_pad4(a) for a in (q, k, v))
        d4 = q4.shape[-1] // 4
        if heads > _MAX_GROUPS:
            raise ValueError(f"attention: {heads} heads is past one dispatch's size")
        visible = min(tk, window) if window else tk
        per_row = max(1, visible * d * heads)
        chunk = max(_ONLINE_ROWS, _CHUNK_MULTIPLY_ADDS // per_row // _ONLINE_ROWS * _ONLINE_ROWS)
        chunk = min(chunk, _MAX_GROUPS * _ONLINE_ROWS)
        starts = list(range(0, tq, chunk))
        with self.lock:
            pipeline = self.online_pipeline(d4)
            qb, kb, vb = (self._storage(a, what=w) for a, w in ((q4, "queries"), (k4, "keys"), (v4, "values")))
            out = self._storage(nbytes=q4.nbytes, what="output")
            stats = self._storage(nbytes=heads * tq * 8, what="row statistics")
            for n, start in enumerate(starts):
                end = min(start + chunk, tq)
                params = self._uniform("<4I i I f 5I", tq, tk, d4, int(causal), tk - tq, window, scale, start,
                                       end, 0, 0, 0)
                encoder = self.device.create_command_encoder()
                self._pass(encoder, pipeline, [params, qb, kb, vb, out, stats],
                           (-(-(end - start) // _ONLINE_ROWS), heads, 1))
                self.device.queue.submit([encoder.finish()])
                if progress is not None:
                    # reading back a few bytes waits for the chunk (on_submitted_work_done_sync fails in wgpu 0.32)
                    self.device.queue.read_buffer(stats, 0, 8)
                    progress(n + 1, len(starts))
            output = np.ascontiguousarray(self._read(out, q4.shape)[..., :d])
            row_stats = self._read(stats, (heads, tq, 2))
        return output, row_stats[..., 0].copy(), row_stats[..., 1].copy()


def _pad4(a: np.ndarray) -> np.ndarray:
    """The head dimension padded with zeros to a multiple of 4, for the kernels' vec4 reads (zeros change no dot
    product and add output columns that are cut off)."""
    extra = -a.shape[-1] % 4
    return a if extra == 0 else np.ascontiguousarray(np.pad(a, ((0, 0), (0, 0), (0, extra))))


_made = MadeOnce(lambda: _Kernels(shared_device()), error=ComputeUnavailable,
                 prefix="the attention kernels did not compile: ")


def _kernels() -> _Kernels:
    return _made.get()


def adapter_label() -> str | None:
    """The adapter the kernels run on, or None where they cannot run."""
    try:
        return _kernels().adapter.label()
    except ComputeUnavailable:
        return None
