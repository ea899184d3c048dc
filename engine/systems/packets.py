"""Packets: small boxes that travel along polylines (data flowing between blocks), vectorised.

Each packet is one row of numpy columns: a polyline of W waypoints (all packets share W, so the
paths are one (P, W, 3) array), a width, a brightness, an RGBA colour, a start time and a
duration. `update(t)` places every packet at constant speed along its path in one numpy pass and
packs the packets in flight into instance rows (INSTANCE_LAYOUT) of one reused buffer, drawn as a
single instanced box batch. The system knows nothing about what the packets stand for.
`polyline_lengths` and `along_polylines` are the interpolation itself, shared with other
movers along paths (the pulses on a model's connection lines).
"""
from __future__ import annotations

import time

import numpy as np

from ..render.backend import (INSTANCE_SLICES, MATERIAL_OPAQUE, MATERIAL_TRANSLUCENT,
                              Batch, empty_instances)
from ..render.meshes import MESH_BOX

PACKET_LOD = 1  # the flat box: a packet is a few pixels wide, cells would be wasted


def polyline_lengths(waypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative arc length at each waypoint (P, W) and each segment's length (P, W-1, at least
    1e-12) of polylines (P, W, 3): what `along_polylines` interpolates with."""
    seg = np.linalg.norm(np.diff(waypoints, axis=1), axis=2)
    cum = np.concatenate([np.zeros((len(waypoints), 1), np.float32), np.cumsum(seg, axis=1)], axis=1)
    return cum.astype(np.float32), np.maximum(seg, 1e-12)


def along_polylines(waypoints: np.ndarray, cum: np.ndarray, seg_len: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(P, 3) points a fraction u (P,) of the way along each polyline at constant speed; u >= 1 is
    exactly the last waypoint and u <= 0 the first. Padding (repeated last points) is never entered."""
    n, w = waypoints.shape[:2]
    s = u * cum[:, -1]
    # Segment holding s: how many interior waypoints lie before it.
    seg = (cum[:, 1:-1] < s[:, None]).sum(axis=1) if w > 2 else np.zeros(n, np.int64)
    rows = np.arange(n)
    a = waypoints[rows, seg]
    b = waypoints[rows, seg + 1]
    frac = ((s - cum[rows, seg]) / seg_len[rows, seg]).clip(0.0, 1.0)
    pos = a + (b - a) * frac[:, None]
    done = u >= 1.0
    pos[done] = waypoints[done, -1]
    return pos


class PacketSystem:
    """Packets along polylines, with a clock that can play, pause and seek.

    Used as a system: `system(frame)` advances the clock by frame.dt while playing and appends
    the batch of packets in flight to frame.batches.
    """

    def __init__(self, base_size: float = 1.0, translucent: bool = True):
        self.base_size = float(base_size)
        self.material = MATERIAL_TRANSLUCENT if translucent else MATERIAL_OPAQUE
        self.time = 0.0
        self.playing = False
        self.speed = 1.0
        self.last_update_ms = 0.0
        self.set_packets(np.zeros((0, 2, 3), np.float32))

    # ------------------------------------------------------------------ data
    def set_packets(self, waypoints, width=1.0, brightness=1.0, color=(1.0, 1.0, 1.0, 1.0),
                    start=0.0, duration=1.0) -> None:
        """Replace all packets. `waypoints` (P, W, 3), W ≥ 2; the rest broadcast to (P,) / (P, 4)."""
        pts = np.ascontiguousarray(waypoints, np.float32)
        if pts.ndim != 3 or pts.shape[2] != 3 or pts.shape[1] < 2:
            raise ValueError(f"waypoints must be (P, W ≥ 2, 3), got {pts.shape}")
        n = pts.shape[0]
        self.waypoints = pts
        self.width = np.broadcast_to(np.asarray(width, np.float32), (n,)).copy()
        self.brightness = np.broadcast_to(np.asarray(brightness, np.float32), (n,)).copy()
        self.color = np.broadcast_to(np.asarray(color, np.float32), (n, 4)).copy()
        self.start = np.broadcast_to(np.asarray(start, np.float64), (n,)).copy()
        self.duration = np.maximum(np.broadcast_to(np.asarray(duration, np.float64), (n,)), 1e-9)
        # Cumulative arc length at each waypoint, so update() only interpolates.
        self._cum, self._seg_len = polyline_lengths(pts)
        self._total = self._cum[:, -1].copy()
        self._rows = empty_instances(n)
        self._rows[:, INSTANCE_SLICES["region"]] = 0.0
        # Colour is fixed per packet: brightness scales rgb, and alpha for translucent packets.
        rgba = self.color.copy()
        rgba[:, :3] *= self.brightness[:, None]
        if self.material == MATERIAL_TRANSLUCENT:
            rgba[:, 3] *= np.clip(self.brightness, 0.0, 1.0)
        self._rgba = rgba
        self._size = (self.width * self.base_size).astype(np.float32)

    def __len__(self) -> int:
        return int(self.waypoints.shape[0])

    @property
    def end_time(self) -> float:
        return float((self.start + self.duration).max()) if len(self) else 0.0

    # ------------------------------------------------------------------ clock
    def advance(self, dt: float) -> None:
        if self.playing:
            self.time += dt * self.speed

    def seek(self, t: float) -> None:
        self.time = float(t)

    # ------------------------------------------------------------------ per frame
    def positions(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(P, 3) positions at time t and (P,) bool in flight (started, not yet arrived).

        Before its start a packet sits on its first waypoint and after its end on its last,
        both exactly (no interpolation rounding at the ends).
        """
        u = np.clip((t - self.start) / self.duration, 0.0, 1.0).astype(np.float32)
        pos = along_polylines(self.waypoints, self._cum, self._seg_len, u)
        flying = (t >= self.start) & (u < 1.0)
        return pos, flying

    def update(self, t: float | None = None) -> Batch:
        """The batch of packets in flight at time t (default: the clock)."""
        began = time.perf_counter()
        t = self.time if t is None else float(t)
        pos, flying = self.positions(t)
        idx = np.flatnonzero(flying)
        k = len(idx)
        out = self._rows[:k]
        out[:, INSTANCE_SLICES["center"]] = pos[idx]
        out[:, INSTANCE_SLICES["size"]] = self._size[idx, None]
        out[:, INSTANCE_SLICES["color"]] = self._rgba[idx]
        self.last_update_ms = (time.perf_counter() - began) * 1e3
        return Batch(MESH_BOX, self.material, PACKET_LOD, out)

    def __call__(self, frame) -> None:
        self.advance(frame.dt)
        if len(self):
            batch = self.update()
            if batch.count:
                frame.batches.append(batch)


def bench_packets(n_tokens: int = 1000, top_k: int = 8, waypoints: int = 4, repeats: int = 50,
                  seed: int = 0) -> float:
    """Median ms of one `update` for n_tokens × top_k packets, most of them in flight."""
    rng = np.random.default_rng(seed)
    n = n_tokens * top_k
    system = PacketSystem()
    system.set_packets(rng.normal(size=(n, waypoints, 3)).astype(np.float32),
                       width=rng.uniform(0.2, 1.0, n), brightness=rng.uniform(0.2, 1.0, n),
                       color=(0.9, 0.7, 0.2, 1.0), start=np.repeat(np.linspace(0, 1, n_tokens), top_k),
                       duration=2.0)
    times = []
    for i in range(repeats):
        system.update(1.0 + i / repeats)
        times.append(system.last_update_ms)
    return float(np.median(times))

