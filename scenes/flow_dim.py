"""Connection lines follow the dimming of the blocks they join: when a chapter or a focus dims the rest of the model, its lines fade with it.

A system after the engine's flag composition: when the flags changed, a line segment is dimmed
if every block at either end of every connection it draws is dimmed, and the result goes into
the engine's FlagLayers as the layer "flow_lines" (so nobody else's flags are overwritten; it
takes effect on the next frame). Whole-array numpy; nothing runs while the flags stand still.
"""
from __future__ import annotations

import numpy as np

from llmviz.engine.ecs.components import FLAG_DIMMED

from .flow_lines import FlowLines

LAYER = "flow_lines"


class FlowDimming:
    def __init__(self, flow: FlowLines, world, flags, block_slots: np.ndarray, line_slots: np.ndarray):
        self.flow, self.world, self.flags = flow, world, flags
        self.block_slots = np.asarray(block_slots, np.int64)
        self.line_slots = np.asarray(line_slots, np.int64)
        self._seen = -1
        # Which path each segment serves (the inverse of the paths' segment lists).
        counts = np.diff(flow.path_seg_offsets)
        self._link_path = np.repeat(np.arange(flow.n_paths), counts)
        self._any_dimmed = False

    def dimmed_segments(self) -> np.ndarray:
        """Segments whose every connection joins dimmed blocks only (bool per segment)."""
        f = self.flow
        dimmed = (self.world["renderable"]["flags"][self.block_slots] & FLAG_DIMMED) != 0
        pair_dim = dimmed[f.pair_src] & dimmed[f.pair_dst]
        path_dim = np.ones(f.n_paths, bool)
        np.logical_and.at(path_dim, f.pair_path, pair_dim)
        seg_dim = np.ones(len(f), bool)
        np.logical_and.at(seg_dim, f.path_segments, path_dim[self._link_path])
        return seg_dim

    def __call__(self, frame=None) -> None:
        """Connection lines dimmed with the blocks they join, recomputed only when the flags changed."""
        flags = self.flags
        if flags.version == self._seen:
            return
        self._seen = flags.version
        own = flags.layers.get(LAYER)
        others_dim = any(layer.dim is not None or layer.dim_rest for name, layer in flags.layers.items()
                         if name != LAYER)
        if not others_dim:
            if own is not None:
                flags.clear(LAYER)
            return
        flags.set(LAYER, dim=self.line_slots[self.dimmed_segments()])
