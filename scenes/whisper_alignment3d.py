"""whisper-tiny's listening, drawn in the 3D scene along the log-mel spectrogram block's time axis: for every
decoder layer and head a strip of its cross-attention (one column per decoder token, one row per 20 ms encoder
frame, level with the two spectrogram rows that frame was made from), the alignment heads' strips framed in
orange, the matrix Whisper's word timing runs DTW over (models/sim/whisper_trace.alignment_matrix) with the
DTW path on it, the waveform as one box per 10 ms frame (its min-max envelope), and each digit's span from
the path laid across the waveform, the strips and the spectrogram, labelled; hover readings for all of it.

Nothing here runs a model: `update` reads the live session's trace (the worker computed it) and writes the
atlas and the entities only when the trace or the number of revealed decoder rows changed, each as one
vectorised write. Regions are reserved through `allocator` (the renderer, or a worker's DataStaging).
"""
from __future__ import annotations

import numpy as np

from llmviz.engine.render.backend import MATERIAL_TRANSLUCENT
from llmviz.engine.render.colormaps import COLORMAP_DIVERGING, COLORMAP_MAGMA
from llmviz.scenes.entity_hiding import set_hidden

COL_WIDTH = 2.4            # world units per decoder token in a strip
HEAD_GAP = 1.6             # between the heads' strips of a layer
LAYER_GAP = 9.0            # between layers' groups, and between the groups, the timing strip and the waveform
WAVE_WIDTH = 36.0
BESIDE = 10.0              # between the waveform and the spectrogram block
Z = 0.5                    # the strips' front face (the layout's blocks are 1 deep at z = 0)
FRAME_PAD = 0.8            # the alignment heads' orange frame around their strips
SPAN_DEPTH = 0.3           # the digits' spans lie just in front of everything they cross
ALIGN_RGB = (1.0, 0.55, 0.15)
SPAN_RGB = np.array([[1.0, 0.55, 0.15], [1.0, 0.85, 0.3]], np.float32)   # alternating digits
WAVE_RGB = np.array([0.55, 0.85, 0.95], np.float32)
PATH_RGB = (0.3, 1.0, 1.0)
SECONDS_PER_FRAME = 0.01   # a log-mel frame (the spectrogram block's row)
# The waveform's and the path's small boxes are not drawn below a pixel on screen (from afar the strips and
# spans say it all): drawn at 0.8 px and more, as a flat box from 0.3, not at all below (the whole overlay
# costs about 1 ms of the engine's frame at the overview, within the noise of three runs at load 3-4).
SMALL_LOD_PX = (0.8, 0.5, 0.3, 0.0)


def _token_label(tokens: np.ndarray, k: int) -> str:
    from llmviz.models.sim.whisper_config import VOCAB

    short = {"<|startoftranscript|>": "SOT", "<|endoftext|>": "EOT"}
    return short.get(VOCAB[int(tokens[k])], VOCAB[int(tokens[k])])


class WhisperAlignment3D:
    """The strips, the waveform and the digits' spans beside one whisper-tiny scene's spectrogram block."""

    def __init__(self, scene, allocator, n_layers: int, n_heads: int, n_tokens: int):
        layout, world = scene.layout, scene.world
        self.world, self.n_layers, self.n_heads, self.n_cols = world, n_layers, n_heads, n_tokens
        feat = layout.index("audio.features")
        (cx, cy, _), (w, h, _) = layout.center[feat], layout.size[feat]
        self.frames = int(layout.rows[feat])               # 10 ms log-mel frames
        self.sources = self.frames // 2                    # 20 ms encoder frames
        self.top, self.height = float(cy + h / 2), float(h)
        self.row_h = self.height / self.frames
        right = float(cx - w / 2 - BESIDE)
        # right to left: the waveform, the timing strip, then the layers' heads (the last layer nearest)
        self.wave_x = right - WAVE_WIDTH / 2
        strip_w = n_tokens * COL_WIDTH
        self.strip_w = strip_w
        x = right - WAVE_WIDTH - LAYER_GAP
        self.timing_left = x - strip_w
        x = self.timing_left - LAYER_GAP
        lefts = {}
        for layer in reversed(range(n_layers)):
            for head in reversed(range(n_heads)):
                lefts[layer, head] = x - strip_w
                x -= strip_w + HEAD_GAP
            x -= LAYER_GAP - HEAD_GAP
        self.left_edge = x
        self.right_edge = float(cx + w / 2)
        self.keys = [(layer, head) for layer in range(n_layers) for head in range(n_heads)]
        n = len(self.keys) + 1                            # the heads' strips, then the timing strip
        self.lefts = np.array([lefts[k] for k in self.keys] + [self.timing_left], np.float32)
        self.origins = [allocator.alloc_data(self.sources, n_tokens) for _ in range(n)]
        centres = np.c_[self.lefts + strip_w / 2, np.full(n, self.top - self.height / 2), np.full(n, Z - 0.5)]
        regions = np.array([[ox, oy, n_tokens, self.sources] for ox, oy in self.origins], np.int32)
        colormaps = np.array([COLORMAP_MAGMA] * (n - 1) + [COLORMAP_DIVERGING], np.int8)
        self.strips = world.spawn(n, transform={"position": centres.astype(np.float32),
                                                "scale": np.tile([strip_w, self.height, 1.0], (n, 1)).astype(np.float32)},
                                  bounds={}, renderable={"color": np.tile([0.2, 0.2, 0.24, 1.0], (n, 1))}, pickable={},
                                  datatex={"region": regions, "value_range": np.tile([0.0, 1.0], (n, 1)),
                                           "colormap": colormaps})
        self.strip_slots = world.slots(self.strips)
        self._strip_of_slot = {int(s): k for k, s in enumerate(self.strip_slots)}
        for ox, oy in self.origins:
            allocator.write_data(ox, oy, np.full((self.sources, n_tokens), np.nan, np.float32))
        self.frames_ids = None
        self.heads: list[tuple[int, int]] = []
        # the waveform: one box per 10 ms frame, and its zero line
        rows = self.top - (np.arange(self.frames) + 0.5) * self.row_h
        self.wave = world.spawn(self.frames, transform={"position": np.c_[np.full(self.frames, self.wave_x), rows,
                                                                          np.full(self.frames, Z - 0.25)].astype(np.float32),
                                                        "scale": np.tile([0.05, 0.9 * self.row_h, 0.5], (self.frames, 1)).astype(np.float32)},
                                bounds={}, renderable={"color": np.tile([*WAVE_RGB, 1.0], (self.frames, 1))}, pickable={},
                                lod={"thresholds": SMALL_LOD_PX})
        self.wave_slots = world.slots(self.wave)
        self._frame_of_slot = {int(s): k for k, s in enumerate(self.wave_slots)}
        world.spawn(1, transform={"position": np.array([[self.wave_x, self.top - self.height / 2, Z - 0.4]], np.float32),
                                         "scale": np.array([[0.15, self.height, 0.1]], np.float32)},
                           bounds={}, renderable={"color": np.array([[0.35, 0.4, 0.45, 1.0]], np.float32)})
        # the DTW path's steps on the timing strip (at most one per token row and frame), hidden until used
        self.max_path = n_tokens + self.sources
        self.path = world.spawn(self.max_path, transform={"position": np.zeros((self.max_path, 3), np.float32),
                                                          "scale": np.tile([0.45 * COL_WIDTH, 0.6 * self.height / self.sources, 0.3],
                                                                           (self.max_path, 1)).astype(np.float32)},
                                bounds={}, renderable={"color": np.tile([*PATH_RGB, 1.0], (self.max_path, 1))},
                                lod={"thresholds": SMALL_LOD_PX})
        set_hidden(world, self.path, True)
        # each digit's span across the waveform, the strips and the spectrogram; its label on the waveform side
        span_w = self.right_edge - self.left_edge
        self.spans = world.spawn(n_tokens, transform={"position": np.tile([self.left_edge + span_w / 2, 0.0, Z + SPAN_DEPTH],
                                                                          (n_tokens, 1)).astype(np.float32),
                                                      "scale": np.tile([span_w, 1.0, 0.05], (n_tokens, 1)).astype(np.float32)},
                                 bounds={}, renderable={"color": np.tile([*SPAN_RGB[0], 0.12], (n_tokens, 1)),
                                                        "material": MATERIAL_TRANSLUCENT})
        # not pickable: they lie over the strips' cells; a waveform frame's hover names the span it is in
        self.span_slots = world.slots(self.spans)
        self._span_of_slot = {int(s): k for k, s in enumerate(self.span_slots)}
        set_hidden(world, self.spans, True)
        self.span_tags = world.spawn(n_tokens, transform={"position": np.zeros((n_tokens, 3), np.float32),
                                                          "scale": np.full((n_tokens, 3), 1e-3, np.float32)}, bounds={},
                                     renderable={"color": np.zeros((n_tokens, 4), np.float32), "material": MATERIAL_TRANSLUCENT})
        world.add_labels(self.span_tags, [""] * n_tokens, height=4.0, min_px=3.0, color=(1.0, 0.9, 0.6, 1.0),
                         offset=np.zeros((n_tokens, 3)), priority=2.0)
        self._labels(world)
        from llmviz.scenes.layout import _frame

        lo = np.array([self.left_edge - 45.0, self.top - self.height - 6.0, -1.0])
        hi = np.array([self.right_edge, self.top + 18.0, 1.0])
        layout.presets["listening"] = _frame((lo + hi) / 2, hi - lo)
        self._shown = None          # (trace version, revealed rows) on the strips
        self.trace = None
        self.revealed = 0
        self.matrix = None          # the DTW's input, (rows, audio encoder frames)
        self.path_cells: set[tuple[int, int]] = set()
        self.starts = self.ends = np.zeros(0)

    def _labels(self, world) -> None:
        """Captions above the strips (layer and head), the timing strip and the waveform."""
        texts, xs = [], []
        for (layer, head), left in zip(self.keys, self.lefts):
            texts.append(f"H{head}")
            xs.append(left + self.strip_w / 2)
        texts += ["DTW input + path", "waveform"]
        xs += [self.timing_left + self.strip_w / 2, self.wave_x]
        for layer in range(self.n_layers):
            mine = [left for (l_, _), left in zip(self.keys, self.lefts) if l_ == layer]
            texts.append(f"decoder layer {layer}: cross-attention over the clip")
            xs.append((min(mine) + max(mine) + self.strip_w) / 2)
        n = len(texts)
        ys = np.full(n, self.top + 3.0)
        ys[-self.n_layers:] = self.top + 8.0
        tags = world.spawn(n, transform={"position": np.c_[xs, ys, np.full(n, Z)].astype(np.float32),
                                         "scale": np.full((n, 3), 1e-3, np.float32)}, bounds={},
                           renderable={"color": np.zeros((n, 4), np.float32), "material": MATERIAL_TRANSLUCENT})
        heights = np.full(n, 2.2)
        heights[-self.n_layers:] = 3.2
        world.add_labels(tags, texts, height=heights, min_px=3.0, color=(0.85, 0.9, 1.0, 1.0), offset=np.zeros((n, 3)))
        self.caption_tag = world.spawn(1, transform={"position": np.array([[(self.left_edge + self.right_edge) / 2,
                                                                             self.top + 14.0, Z]], np.float32),
                                                     "scale": np.full((1, 3), 1e-3, np.float32)}, bounds={},
                                       renderable={"color": np.zeros((1, 4), np.float32), "material": MATERIAL_TRANSLUCENT})
        world.add_labels(self.caption_tag, ["time runs down, level with the spectrogram's frames; a column per decoder "
                                            "token; orange frames: the alignment heads"],
                         height=2.6, min_px=3.0, color=(0.8, 0.8, 0.85, 1.0), offset=np.zeros((1, 3)))

    # ------------------------------------------------------------------ per frame
    def update(self, renderer, live) -> bool:
        """Writes a new trace (or newly revealed decoder rows) in; True when something was written."""
        trace = live.trace
        if renderer is None or trace is None:
            return False
        key = (live.trace_version, live.revealed)
        if key == self._shown:
            return False
        new = self._shown is None or self._shown[0] != live.trace_version
        self._shown = key
        self.trace, self.revealed = trace, int(live.revealed)
        if new:
            self._new_trace(renderer, live)
        self._write_strips(renderer)
        return True

    def _new_trace(self, renderer, live) -> None:
        from llmviz.scenes.whisper_live import ALIGNMENT_ID, ENDS_ID, HEADS_ID, STARTS_ID, WAVE_ID

        tr = self.trace
        heads = [tuple(int(v) for v in h) for h in np.asarray(tr[HEADS_ID]).reshape(-1, 2)]
        if heads != self.heads:
            self._frame_heads(heads)
        wave = np.asarray(tr[WAVE_ID], np.float32)
        self.matrix = np.asarray(tr[ALIGNMENT_ID])       # computed on the worker beside the timings
        self.starts, self.ends = np.asarray(tr[STARTS_ID], np.float64), np.asarray(tr[ENDS_ID], np.float64)
        self._write_wave(wave)
        self._write_spans(tr)

    def _frame_heads(self, heads) -> None:
        """Orange frames behind the alignment heads' strips (made again when the heads change)."""
        if self.frames_ids is not None:
            self.world.destroy(self.frames_ids)
        self.heads = heads
        idx = [self.keys.index(h) for h in heads if h in self.keys]
        n = len(idx)
        if not n:
            self.frames_ids = None
            return
        centres = np.c_[self.lefts[idx] + self.strip_w / 2, np.full(n, self.top - self.height / 2), np.full(n, Z - 0.75)]
        self.frames_ids = self.world.spawn(n, transform={"position": centres.astype(np.float32),
                                                         "scale": np.tile([self.strip_w + 2 * FRAME_PAD,
                                                                           self.height + 2 * FRAME_PAD, 0.4],
                                                                          (n, 1)).astype(np.float32)},
                                           bounds={}, renderable={"color": np.tile([*ALIGN_RGB, 1.0], (n, 1))})

    def _write_strips(self, renderer) -> None:
        tr, k = self.trace, self.revealed
        ranges = np.zeros((len(self.origins), 2), np.float32)
        for n, (layer, head) in enumerate(self.keys):
            w = np.asarray(tr[f"blocks.{layer}.cross_attn.head.{head}.softmax"], np.float32)
            grid = np.full((self.sources, self.n_cols), np.nan, np.float32)
            rows = min(k, w.shape[0], self.n_cols)
            grid[:w.shape[1], :rows] = w[:rows, :self.sources].T
            renderer.write_data(*self.origins[n], grid)
            ranges[n] = (0.0, max(float(np.nanmax(grid)) if rows else 1.0, 1e-6))
        m = self.matrix
        grid = np.full((self.sources, self.n_cols), np.nan, np.float32)
        if k >= len(np.asarray(tr["tokens"])):    # the timing is read once the transcript is whole
            grid[:m.shape[1], :min(m.shape[0], self.n_cols)] = m[:self.n_cols].T
            top = float(np.nanmax(np.abs(m))) if m.size else 1.0
            self._show_path(True)
        else:
            top = 1.0
            self._show_path(False)
        renderer.write_data(*self.origins[-1], grid)
        ranges[-1] = (-top, top)
        self.world.set("datatex", self.strips, value_range=ranges)

    def _show_path(self, shown: bool) -> None:
        from llmviz.scenes.whisper_live import PATH_ID

        rows, cols = np.asarray(self.trace[PATH_ID]).reshape(2, -1)
        keep = (rows < self.n_cols) & (cols < self.sources)
        rows, cols = rows[keep][:self.max_path], cols[keep][:self.max_path]
        n = len(rows)
        self.path_cells = {(int(r), int(c)) for r, c in zip(rows, cols)}
        pos = np.zeros((self.max_path, 3), np.float32)
        pos[:n] = np.c_[self.timing_left + (rows + 0.5) * COL_WIDTH,
                        self.top - (cols + 0.5) * self.height / self.sources, np.full(n, Z + 0.2)]
        self.world.set("transform", self.path, position=pos)
        set_hidden(self.world, self.path, (np.arange(self.max_path) >= n) | (not shown))
        set_hidden(self.world, self.spans, (np.arange(self.n_cols) >= len(self.starts)) | (not shown))
        set_hidden(self.world, self.span_tags, (np.arange(self.n_cols) >= len(self.starts)) | (not shown))

    def _write_wave(self, wave: np.ndarray) -> None:
        """Each 10 ms frame's box spans its lowest to its highest sample (scaled to the clip's peak)."""
        self.wave_samples = wave
        n = min(self.frames, -(-wave.size // 160))
        padded = np.zeros(self.frames * 160, np.float32)
        padded[:min(wave.size, padded.size)] = wave[:padded.size]
        frames = padded.reshape(self.frames, 160)
        lo, hi = frames.min(1), frames.max(1)
        peak = max(float(np.abs(wave).max()) if wave.size else 0.0, 1e-9)
        half = WAVE_WIDTH / 2 * 0.95
        x0, x1 = lo / peak * half, hi / peak * half
        pos = self.world["transform"]["position"][self.wave_slots].copy()
        pos[:, 0] = self.wave_x + (x0 + x1) / 2
        scale = self.world["transform"]["scale"][self.wave_slots].copy()
        scale[:, 0] = np.maximum(x1 - x0, 0.05)
        self.world.set("transform", self.wave, position=pos, scale=scale)
        colour = np.tile([*WAVE_RGB, 1.0], (self.frames, 1)).astype(np.float32)
        t = (np.arange(self.frames) + 0.5) * SECONDS_PER_FRAME
        for d, (s, e) in enumerate(zip(self.starts, self.ends)):
            colour[(t >= s) & (t < e), :3] = SPAN_RGB[d % 2]
        self.world.set("renderable", self.wave, color=colour)
        set_hidden(self.world, self.wave, np.arange(self.frames) >= n)

    def _write_spans(self, tr) -> None:
        n = min(len(self.starts), self.n_cols)
        tokens = np.asarray(tr["tokens"]).astype(int)
        pos = self.world["transform"]["position"][self.span_slots].copy()
        scale = self.world["transform"]["scale"][self.span_slots].copy()
        s, e = self.starts[:n], self.ends[:n]
        pos[:n, 1] = self.top - (s + e) / 2 / SECONDS_PER_FRAME * self.row_h
        scale[:n, 1] = np.maximum((e - s) / SECONDS_PER_FRAME * self.row_h, 0.2)
        self.world.set("transform", self.spans, position=pos, scale=scale)
        colour = np.tile([*SPAN_RGB[0], 0.12], (self.n_cols, 1)).astype(np.float32)
        colour[1::2, :3] = SPAN_RGB[1]
        self.world.set("renderable", self.spans, color=colour)
        tag_pos = np.zeros((self.n_cols, 3), np.float32)
        # left of the strips: a label may not cover an opaque box (engine/systems/labels.py), so not over them
        tag_pos[:n] = np.c_[np.full(n, self.left_edge - 22.0), pos[:n, 1], np.full(n, Z + 0.4)]
        self.world.set("transform", self.span_tags, position=tag_pos)
        start = len(self.world.labels)
        texts = [f"'{_token_label(tokens, d + 1)}' {s[d]:.2f}-{e[d]:.2f} s" if d < n else "" for d in range(self.n_cols)]
        self.world.labels.extend(texts)
        self.world.set("label", self.span_tags, text_index=start + np.arange(self.n_cols))

    # ------------------------------------------------------------------ hover
    def reading(self, live, slot: int, cell):
        """A hover Reading for the strips, the waveform and the spans; None for other entities."""
        from llmviz.scenes.hover import WAITING, Reading

        if int(slot) in self._strip_of_slot:
            n = self._strip_of_slot[int(slot)]
            if n == len(self.keys):
                return self._timing_reading(cell)
            return self._head_reading(*self.keys[n], cell)
        if int(slot) in self._frame_of_slot:
            return self._wave_reading(self._frame_of_slot[int(slot)])
        if int(slot) in self._span_of_slot:
            return self._span_reading(self._span_of_slot[int(slot)])
        return None if self.trace is not None or live.trace is not None else Reading("listening", note=WAITING)

    def _head_reading(self, layer: int, head: int, cell):
        from llmviz.scenes.dataflow import Source, format_number as f
        from llmviz.scenes.hover import WAITING, Reading

        p = f"blocks.{layer}.cross_attn.head.{head}"
        aligned = (layer, head) in self.heads
        base = dict(tensor_id=f"{p}.softmax", label=f"decoder layer {layer}, head {head}: cross-attention on the time axis"
                    + (" (an alignment head)" if aligned else ""),
                    dims=f"{self.sources} encoder frames x {self.n_cols} decoder tokens",
                    role="Where each decoder token listened: its cross-attention weights over the encoder's 20 ms "
                         "frames, each drawn level with the two 10 ms spectrogram rows the frame was made from."
                         + (" Its weights feed the DTW timing of every digit." if aligned else ""),
                    shape=f"the {p}.softmax block, turned so time runs down the spectrogram")
        if self.trace is None or cell is None:
            return Reading(**base, note=WAITING if cell is not None else "point at the front face to read a cell")
        s, k = int(cell[0]), int(cell[1])
        w = np.asarray(self.trace[f"{p}.softmax"])
        if k >= min(self.revealed, w.shape[0]):
            return Reading(**base, indices=f"token {k}, frame {s}", note="no token here (yet)", cell=None)
        scores = np.asarray(self.trace[f"{p}.scores"], np.float64)[k]
        top = float(scores.max())
        denom = float(np.exp(scores - top).sum())
        value = float(w[k, s])
        tokens = np.asarray(self.trace["tokens"]).astype(int)
        nxt = f"predicting '{_token_label(tokens, k + 1)}'" if k + 1 < len(tokens) else "after the transcript"
        return Reading(**base, indices=f"token {k} '{_token_label(tokens, k)}' ({nxt}), encoder frame {s} = "
                                       f"{s * 0.02:.2f}-{(s + 1) * 0.02:.2f} s",
                       value=value, cell=None,
                       formula=f"exp(score - max) / sum over the {w.shape[1]} frames = exp({f(scores[s])} - {f(top)}) / "
                               f"{f(denom)} = {f(value)}",
                       note=f"the largest weight of this token: frame {int(np.argmax(w[k]))} "
                            f"({int(np.argmax(w[k])) * 0.02:.2f} s)",
                       sources=(Source(f"{p}.softmax", np.array([k]), np.array([s])),
                                Source(f"{p}.scores", np.array([k]), np.arange(w.shape[1]))))

    def _timing_reading(self, cell):
        from llmviz.models.sim.whisper_trace import MEDIAN_WIDTH
        from llmviz.scenes.dataflow import Source, format_number as f
        from llmviz.scenes.hover import WAITING, Reading

        heads = ", ".join(f"layer {layer} head {head}" for layer, head in self.heads)
        base = dict(tensor_id="timing.alignment", label="the alignment heads' matrix, with the DTW path",
                    dims=f"{self.sources} encoder frames x {self.n_cols} decoder tokens",
                    role=f"What Whisper's word timing reads: the alignment heads ({heads}), each one's scores "
                         f"softmaxed over the clip's frames, standardised over the tokens, median-filtered over "
                         f"{MEDIAN_WIDTH} frames, then averaged. Dynamic time warping finds the monotone path "
                         f"(cyan) through it with the largest sum; a digit starts where the path reaches its row.",
                    shape="token rows predicting each digit and EOT x the clip's encoder frames")
        if self.trace is None or cell is None or self.matrix is None:
            return Reading(**base, note=WAITING if cell is not None else "point at the front face to read a cell")
        s, k = int(cell[0]), int(cell[1])
        m = self.matrix
        if k >= m.shape[0] or s >= m.shape[1] or self.revealed < len(np.asarray(self.trace["tokens"])):
            return Reading(**base, indices=f"token {k}, frame {s}", cell=None,
                           note="outside the clip or the transcript" if self.revealed else "no token here (yet)")
        tokens = np.asarray(self.trace["tokens"]).astype(int)
        on = (k, s) in self.path_cells
        note = "on the DTW path" if on else "off the DTW path"
        if k < len(self.starts):
            note += f" · '{_token_label(tokens, k + 1)}' is timed {self.starts[k]:.2f}-{self.ends[k]:.2f} s"
        return Reading(**base, indices=f"row {k} (predicting '{_token_label(tokens, k + 1)}'), encoder frame {s} = "
                                       f"{s * 0.02:.2f}-{(s + 1) * 0.02:.2f} s",
                       value=float(m[k, s]), cell=None, note=note,
                       formula=f"mean over {len(self.heads)} heads of median{MEDIAN_WIDTH}(z-score(softmax)) = {f(m[k, s])}",
                       sources=tuple(Source(f"blocks.{layer}.cross_attn.head.{head}.scores", np.array([k]),
                                            np.arange(max(0, s - MEDIAN_WIDTH // 2), s + MEDIAN_WIDTH // 2 + 1))
                                     for layer, head in self.heads))

    def _wave_reading(self, frame: int):
        from llmviz.scenes.dataflow import format_number as f
        from llmviz.scenes.hover import WAITING, Reading

        base = dict(tensor_id="input.wave", label=f"the waveform, 10 ms frame {frame}",
                    dims="160 samples", role="The sound pressure the features were computed from, 16,000 samples a "
                                             "second; each box spans the frame's lowest to highest sample, scaled to "
                                             "the clip's peak, level with its spectrogram row.")
        if self.trace is None:
            return Reading(**base, note=WAITING)
        chunk = self.wave_samples[frame * 160:(frame + 1) * 160]
        if chunk.size == 0:
            return Reading(**base, note="past the end of the clip (padding)")
        t = (frame + 0.5) * SECONDS_PER_FRAME
        inside = [d for d, (s, e) in enumerate(zip(self.starts, self.ends)) if s <= t < e]
        tokens = np.asarray(self.trace["tokens"]).astype(int)
        note = (f"inside '{_token_label(tokens, inside[0] + 1)}' ({self.starts[inside[0]]:.2f}-"
                f"{self.ends[inside[0]]:.2f} s by the DTW path)" if inside else "between the digits' spans")
        rms = float(np.sqrt(np.mean(chunk.astype(np.float64) ** 2)))
        return Reading(**base, indices=f"samples {frame * 160}-{frame * 160 + chunk.size - 1} = "
                                       f"{frame * SECONDS_PER_FRAME:.2f}-{(frame + 1) * SECONDS_PER_FRAME:.2f} s",
                       value=float(chunk.max()),
                       formula=f"min {f(chunk.min())}, max {f(chunk.max())}, RMS {f(rms)}", note=note)

    def _span_reading(self, d: int):
        from llmviz.scenes.hover import Reading
        from llmviz.scenes.whisper_live import PROBS_ID

        tokens = np.asarray(self.trace["tokens"]).astype(int)
        p = float(np.asarray(self.trace[PROBS_ID])[d])
        s, e = float(self.starts[d]), float(self.ends[d])
        return Reading("timing.starts", label=f"digit {d + 1}: '{_token_label(tokens, d + 1)}'",
                       indices=f"{s:.2f}-{e:.2f} s", value=s,
                       formula=f"start = the DTW path's first frame on row {d} x 0.02 s = {s:.2f} s; "
                               f"end = its first frame on row {d + 1} x 0.02 s = {e:.2f} s",
                       note=f"probability {p:.3f} when it was generated",
                       role="When this digit was said, by Whisper's word timing: dynamic time warping over the "
                            "alignment heads' cross-attention.")
