"""Pulses along a model's connection lines: when values arrive at blocks, light travels into them along the flow, in order.

`FlowPulses.trigger(rows)` is told which blocks just received values (the model scene calls it
from `write_values`: a live tick writes the whole trace, a chapter the tensor it is animating).
Every line into those blocks sends a pulse from its source to its target, timed by the depth
of each end in the forward pass (scenes/flow_graph.py), so a whole trace runs as one wave
from the embedding down the stream to the logits, and a single tensor being filled draws
pulses only into itself. A line still carrying a pulse is left alone, so frequent ticks make a
steady flow rather than restarting it.

Per frame (`__call__`, a system in the instancing phase, after the engine's instancing): only
the lines drawn this frame carry pulses (a closed layer shows none), positions are one numpy
pass (engine/systems/packets.py's interpolation), and the pulses are one instanced box batch.
With nothing in flight the system returns at once.
"""
from __future__ import annotations

import numpy as np

from llmviz.engine.render.backend import INSTANCE_SLICES, MATERIAL_OPAQUE, Batch, empty_instances
from llmviz.engine.render.meshes import MESH_BOX
from llmviz.engine.systems.packets import along_polylines, polyline_lengths

from .flow_lines import FlowLines

WAVE_SECONDS = 4.0              # a whole forward pass, input to output
STEP_SECONDS = (0.04, 0.25)     # one step of depth, at least and at most
MIN_PULSE_SECONDS = 0.3         # no pulse quicker than this: shorter ones would not be seen
PULSE_COLOR = (1.0, 0.88, 0.5, 1.0)
PULSE_SCALE = 2.4               # a pulse is this many line widths across
PULSE_DEPTH = 0.8               # thicker than a line (0.5), thinner than a block (1)
PULSE_LOD = 1                   # the flat box


class FlowPulses:
    def __init__(self, flow: FlowLines, world, line_slots: np.ndarray, n_rows: int):
        self.flow = flow
        self.world = world
        self.line_slots = np.asarray(line_slots, np.int64)
        n = flow.n_paths
        self.time = 0.0
        depth_span = float(np.nanmax(flow.path_end) - np.nanmin(flow.path_start)) if n else 1.0
        self.step = float(np.clip(WAVE_SECONDS / max(depth_span, 1.0), *STEP_SECONDS))
        self.start = np.full(n, -np.inf)
        self.duration = np.zeros(n)
        self._until = -np.inf          # when the last pulse in flight arrives
        self._pending: list[np.ndarray] = []
        self._cum, self._seg_len = polyline_lengths(flow.path_points)
        self._has_length = self._cum[:, -1] > 1e-6 if n else np.zeros(0, bool)
        # Paths into each block row (CSR over the block-level pairs the paths stand for).
        order = np.argsort(flow.pair_dst, kind="stable")
        self._pair_order = order
        self._pair_starts = np.searchsorted(flow.pair_dst[order], np.arange(n_rows + 1))
        self._size = (flow.path_width * PULSE_SCALE).astype(np.float32)
        self._rows = empty_instances(n)
        self._rows[:, INSTANCE_SLICES["region"]] = 0.0
        self._rows[:, INSTANCE_SLICES["color"]] = PULSE_COLOR
        self.last_count = 0

    # ------------------------------------------------------------------ events
    def trigger(self, rows) -> None:
        """These blocks just received values: send pulses into them (at the next frame)."""
        rows = np.asarray(rows, np.int64).reshape(-1)
        if len(rows):
            self._pending.append(rows)

    def _start_pulses(self) -> None:
        n_rows = len(self._pair_starts) - 1
        rows = np.concatenate(self._pending)
        self._pending.clear()
        mask = np.zeros(n_rows, bool)  # a mask, not np.unique: a whole trace is every block
        mask[rows[(rows >= 0) & (rows < n_rows)]] = True
        rows = np.flatnonzero(mask)
        if not len(rows):
            return
        lo, hi = self._pair_starts[rows], self._pair_starts[rows + 1]
        counts = hi - lo
        if counts.sum() == 0:
            return
        pairs = self._pair_order[_ranges(lo, counts)]
        hit = np.zeros(self.flow.n_paths, bool)
        hit[self.flow.pair_path[pairs]] = True
        paths = np.flatnonzero(hit & self._has_length)
        if not len(paths):
            return
        f = self.flow
        # The wave starts now at the earliest of these paths; a path still busy keeps its pulse.
        base = float(f.path_start[paths].min())
        free = paths[self.time >= self.start[paths] + self.duration[paths]]
        begin = self.time + (f.path_start[free] - base) * self.step
        span = np.maximum(f.path_end[free] - f.path_start[free], 0.5) * self.step
        self.start[free] = begin
        self.duration[free] = np.maximum(span, MIN_PULSE_SECONDS)
        if len(free):
            self._until = max(self._until, float((self.start[free] + self.duration[free]).max()))

    @property
    def active(self) -> bool:
        return bool(self._pending) or self.time < self._until

    # ------------------------------------------------------------------ per frame
    def update(self, dt: float) -> Batch | None:
        """Advance the clock by dt; the batch of pulses on lines drawn this frame (None: none)."""
        if self._pending:  # values written earlier this frame (or since the last): the wave starts now
            self._start_pulses()
        self.time += dt
        self.last_count = 0
        if self.time >= self._until:
            return None
        flying = np.flatnonzero((self.time >= self.start) & (self.time < self.start + self.duration))
        if not len(flying):
            return None
        f = self.flow
        # A path is drawn when any of its segments is (all of them share its groups' fate).
        lo = f.path_seg_offsets[flying]
        counts = f.path_seg_offsets[flying + 1] - lo
        shown = np.zeros(len(flying), bool)
        if counts.sum():
            segs = f.path_segments[_ranges(lo, counts)]
            visible = self.world["visibility"]["visible"][self.line_slots[segs]]
            np.logical_or.at(shown, np.repeat(np.arange(len(flying)), counts), visible)
        flying = flying[shown]
        if not len(flying):
            return None
        u = ((self.time - self.start[flying]) / self.duration[flying]).astype(np.float32)
        pos = along_polylines(f.path_points[flying], self._cum[flying], self._seg_len[flying], u)
        k = len(flying)
        out = self._rows[:k]
        out[:, INSTANCE_SLICES["center"]] = pos
        out[:, 3] = self._size[flying]
        out[:, 4] = self._size[flying]
        out[:, 5] = PULSE_DEPTH
        self.last_count = k
        return Batch(MESH_BOX, MATERIAL_OPAQUE, PULSE_LOD, out)

    def __call__(self, frame) -> None:
        """The pulses running along the connection lines in forward-pass order while the model computes."""
        if not self.active:
            self.time += frame.dt
            self.last_count = 0
            return
        batch = self.update(frame.dt)
        if batch is not None:
            frame.batches.append(batch)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The indices start..start+count of each run, concatenated (no Python loop)."""
    total = int(counts.sum())
    return np.repeat(starts, counts) + (np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts))
