"""The retrieval scene (`--scene rag`, or `rag:DIR` for a store of one's own): the question embedded among the
store's chunks in 3D, its nearest chunks lit with their scores, the retrieved passages as the reader reads
them with each word coloured by the answer's attention to it, the answer token by token with its
probability, and the reader's attention layers as a grid of per-passage shares.

Everything that needs torch, FAISS or the embedding model runs on the simulation worker (WorkerSession): the
store, the reader and the PCA of the stored vectors load there once; each request (question, top-k, index
type, passages switched off, passages pinned in) is one search and one answer there. The frame thread only
writes the last result into the world, in a few vectorised writes, when a new one arrived.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llmviz.engine.render import MATERIAL_TRANSLUCENT
from llmviz.scenes.worker_session import WEIGHTS_REQUEST, WorkerSession, _LOADING

DEFAULT_QUESTION = "Where does Idrissa live?"
MAX_K = 8                     # passages shown at most (retrieved + pinned)
MAX_WORDS = 40                # the reader's passage length (reader_vocab.PASSAGE_TOKENS)
WORDS_PER_LINE = 6
MAX_ANSWER = 10
HEADER_NAME = 28              # characters of a file's name in a passage's header at most
QUERY_CACHE = 64              # questions whose embeddings the worker keeps
FLOW_S = 0.9                  # seconds the retrieved chunks' words take to fly into the prompt
SPACE_SIDE = 100.0
SPACE_CENTER = np.array([-115.0, 0.0, 0.0], np.float32)
TEXT_LEFT, TEXT_TOP = -30.0, 50.0
WORD_H, LINE_H, PASSAGE_GAP = 2.4, 6.6, 2.0
CHAR_W = 0.75                 # a character's advance per unit of label height, close up (labels keep a
                              # minimum pixel size, so from afar the layout hides the words that would overlap)
GRID_LEFT, GRID_TOP, GRID_CELL = -150.0, -62.0, 10.0
TEXT_RGB = (0.95, 0.95, 0.98, 1.0)
DIM_WORD = np.array([0.45, 0.47, 0.52, 1.0], np.float32)
HOT_WORD = np.array([1.0, 0.62, 0.18, 1.0], np.float32)
FILE_RGB = np.array([[0.35, 0.65, 0.95, 1.0], [0.55, 0.85, 0.45, 1.0], [0.85, 0.55, 0.85, 1.0],
                     [0.80, 0.80, 0.45, 1.0]], np.float32)
FILE_COLOURS = ("blue", "green", "violet", "yellow")   # FILE_RGB's, as the space's caption names them
LIT_RGB = np.array([1.0, 0.85, 0.2, 1.0], np.float32)
OFF_RGB = np.array([0.9, 0.3, 0.3, 1.0], np.float32)
QUERY_RGB = np.array([1.0, 1.0, 1.0, 1.0], np.float32)
# The camera presets (eye, target): the start view over everything, and one on each part. A chapter step shown on
# this scene names them (scenes/chapters/showable.py); the View menu lists them.
PRESETS = {"overview": ((15.0, 10.0, 210.0), (15.0, 10.0, 0.0)),
           "retrieval": ((-42.0, -8.0, 150.0), (-42.0, -8.0, 0.0)),   # the space, prompt, answer and grid, centred
           "embedding space": ((-95.0, 25.0, 140.0), (-115.0, 0.0, 0.0)),
           "prompt": ((20.0, -5.0, 125.0), (20.0, -5.0, 0.0)),
           "attention layers": ((-110.0, -77.0, 70.0), (-110.0, -77.0, 0.0))}


@dataclass(frozen=True)
class RagRequest:
    question: str
    top_k: int = 3
    index_type: str = "flat"
    off: frozenset = frozenset()          # chunk ids left out of the prompt
    pinned: tuple = ()                    # chunk ids put into the prompt whether retrieved or not


@dataclass
class RagResult:
    request: RagRequest
    query_xyz: np.ndarray                 # the question's embedding in the chunks' PCA space
    hits: list                            # store.Hit, best first
    passages: list[int]                   # chunk ids in the prompt, in order
    answer: object                        # reader.Answer
    words: list[list[str]] = field(default_factory=list)   # per passage, its words as the reader cuts them
    query: np.ndarray | None = None       # the question's all-MiniLM-L6-v2 embedding (unit length)


def _make_compute(folder):
    def make():
        import torch

        from llmviz.models.rag import embedding, reader, reader_model, reader_vocab, store

        torch.set_num_threads(1)
        with _LOADING:
            st = store.load(folder)
            model = reader_model.load_reader()
            embedding.encode(["warm up"])
        stores = {st.index_type: st}
        queries: dict[str, np.ndarray] = {}   # question -> its embedding: a toggle or a top-k change re-asks the
                                              # same question, and MiniLM's forward was 40% of an answer's time
        centred = st.vectors - st.vectors.mean(axis=0)
        _, sing, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
        axes, mean = vt[:3], st.vectors.mean(axis=0)
        share = (sing[:3] ** 2 / (sing ** 2).sum()).tolist()

        def compute(request):
            if request == WEIGHTS_REQUEST:
                files = sorted({c.file for c in st.chunks})
                return {"xyz": (centred @ axes.T).astype(np.float32), "share": share,
                        "file_of": np.array([files.index(c.file) for c in st.chunks]), "files": files,
                        "chunks": st.chunks, "index_type": st.index_type}
            if request.index_type not in stores:
                stores[request.index_type] = st.with_index(request.index_type)
            if request.question not in queries:
                if len(queries) >= QUERY_CACHE:
                    queries.pop(next(iter(queries)))
                queries[request.question] = embedding.encode([request.question])[0]
            query = queries[request.question]
            hits = stores[request.index_type].search_query(query, request.top_k)
            passages = [h.chunk for h in hits if h.chunk not in request.off]
            passages += [c for c in request.pinned if c not in passages and c not in request.off]
            passages = passages[:MAX_K]
            texts = [st.chunks[c].text for c in passages]
            result = reader.answer(model, texts, request.question)
            words = [reader_vocab.split_words(t)[:reader_vocab.PASSAGE_TOKENS] for t in texts]
            xyz = ((query - mean) @ axes.T).astype(np.float32)
            return RagResult(request, xyz, hits, passages, result, words, query)

        return compute

    return make


class LiveRag(WorkerSession):
    """A question in, retrieval and the reader's answer out, on the worker; `view` (a RagView) shows it."""

    kind = "rag"

    def __init__(self, view, folder, question: str = DEFAULT_QUESTION, autoplay: bool = False,
                 index_type: str = "flat"):
        from llmviz.models.rag import reader_model

        self.view, self.folder = view, folder
        self.about = reader_model.WHAT_IT_IS
        self.session = self               # what render's error line and the live mode read
        self.request = RagRequest(question, index_type=index_type)
        self.tick_seconds: list[float] = []
        self.tokens_generated = 0
        self.values_version = 0
        self.autoplay = autoplay
        self._bench_t = 0.0
        self._start_worker(_make_compute(folder))
        self._submit()

    # ---- what the panel changes
    def _request(self):
        return self.request

    def ask(self, **changes) -> None:
        """A new request with `changes` (question, top_k, index_type, off, pinned), sent to the worker."""
        self.request = RagRequest(**{**self.request.__dict__, **changes})
        self._submit()

    def toggle_off(self, chunk: int) -> None:
        off = set(self.request.off)
        off.symmetric_difference_update({chunk})
        self.ask(off=frozenset(off))

    def pin(self, chunk: int) -> None:
        pinned = list(self.request.pinned)
        pinned.remove(chunk) if chunk in pinned else pinned.append(chunk)
        self.ask(pinned=tuple(pinned), off=self.request.off - {chunk})

    def toggle_play(self) -> None:
        self.autoplay = not self.autoplay

    def step(self) -> None:
        self._submit()

    # ---- the worker's results
    def _on_weights(self) -> None:
        self.view.show_space(self.weights)

    def _on_trace(self, result) -> None:
        self.tick_seconds.append(result.seconds)
        self.tokens_generated += len(self.trace.answer.tokens)

    def update(self, dt: float) -> bool:
        self.poll()
        arrived = self.trace is not None and self.trace_version != self.view._shown
        if arrived:
            self.view._shown = self.trace_version
            self.view.show_result(self.trace, self.weights)
            self.values_version += 1
        self._bench_t = 0.0 if arrived else self._bench_t + dt
        arrived |= self.view.animate(dt)
        if self.autoplay and not self.busy and self.trace is not None and self._bench_t >= FLOW_S:
            # bench --app: the best passage switched off and on again, each answer computed anew, the next
            # toggle once the last answer's words have landed (as file_session's samples wait for the last)
            first = self.trace.hits[0].chunk if self.trace.hits else None
            if first is not None:
                self.toggle_off(first)
        return arrived


class RagView:
    """The world of the retrieval scene; `show_space` and `show_result` write into it (frame thread)."""

    def __init__(self, n_chunks: int):
        from llmviz.engine.ecs.world import World

        self.world = w = World(capacity=8192)
        self.n_chunks = n_chunks
        half = SPACE_SIDE / 2
        c = SPACE_CENTER
        # the space: axes, chunk points, the query
        centres = c + np.array([[half / 2, 0, 0], [0, half / 2, 0], [0, 0, half / 2]], np.float32)
        sizes = np.array([[half, 0.25, 0.25], [0.25, half, 0.25], [0.25, 0.25, half]], np.float32)
        self.axes = w.spawn(3, transform={"position": centres, "scale": sizes}, bounds={},
                            renderable={"color": np.tile([0.55, 0.58, 0.66, 1.0], (3, 1))})
        ends = c + np.eye(3, dtype=np.float32) * (half + 5.0)
        self.axis_labels = self._labels(ends, ["PC1", "PC2", "PC3"], 3.0)
        self._labels([c + np.array([0.0, half + 20.0, 0.0])], ["the store's chunks: PCA of their all-MiniLM-L6-v2 "
                                                               "embeddings"], 2.4)
        # two short lines: one long line ran off the view's left edge, and a label that does not fit is hidden
        self.space_note = self._labels([c + np.array([0.0, half + 15.0, 0.0]), c + np.array([0.0, half + 10.5, 0.0])],
                                       ["loading the store...", ""], 1.6)
        self.points = w.spawn(n_chunks, transform={"position": np.tile(c, (n_chunks, 1)),
                                                   "scale": np.zeros((n_chunks, 3), np.float32)},
                              bounds={}, renderable={"color": np.tile(FILE_RGB[0], (n_chunks, 1))}, pickable={})
        self.query = w.spawn(1, transform={"position": c[None, :], "scale": np.zeros((1, 3), np.float32)},
                             bounds={}, renderable={"color": QUERY_RGB[None, :]}, pickable={})
        w.add_labels(self.query, ["your question"], height=3.0, color=TEXT_RGB, min_px=0.5, priority=3.0,
                     offset=np.array([[0.0, 5.0, 0.0]], np.float32))
        self.hit_labels = self._labels(np.tile(c, (MAX_K, 1)), [""] * MAX_K, 2.4, priority=2.8,
                                       offset=np.tile([0.0, 4.0, 0.0], (MAX_K, 1)))
        # the prompt: a header and the words of each passage, the answer below
        self._labels([[TEXT_LEFT, TEXT_TOP + 10.0, 0.0]], ["the prompt as the reader reads it; a word's colour: the "
                                                           "answer's attention to it"], 2.2,
                     left=True)
        self.question_label = self._labels([[TEXT_LEFT, TEXT_TOP + 5.0, 0.0]], [""], 2.2)
        self._shown = 0
        self._flow_from = self._flow_to = None
        self._flow_t = 1.0
        # a passage's header (rank, score, file, share of attention) outranks its words when the view is too small
        # for both: zoomed out, the words it keeps are a sample, the header says what the passage is
        self.headers = self._labels(np.zeros((MAX_K, 3)), [""] * MAX_K, WORD_H, priority=2.6)
        self.bars = w.spawn(MAX_K, transform={"position": np.zeros((MAX_K, 3), np.float32),
                                              "scale": np.zeros((MAX_K, 3), np.float32)},
                            bounds={}, renderable={"color": np.tile(HOT_WORD, (MAX_K, 1)),
                                                   "material": np.full(MAX_K, MATERIAL_TRANSLUCENT)}, pickable={})
        n_words = MAX_K * MAX_WORDS
        self.words = self._labels(np.zeros((n_words, 3)), [""] * n_words, WORD_H, priority=1.5)
        self.answer_label = self._labels(np.zeros((1, 3)), [""], 2.4, priority=3.0)
        self.answer_tokens = self._labels(np.zeros((MAX_ANSWER, 3)), [""] * MAX_ANSWER, WORD_H, priority=2.5)
        # the reader's attention layers: per layer, per passage, the answer's mean share
        self._labels([[GRID_LEFT, GRID_TOP + 12.0, 0.0]], ["rag-llama's attention layers: the answer's share "
                                                           "per passage"], 1.6, left=True)
        # translucent: the label layout keeps text off opaque boxes, and each cell's share belongs on it
        self.grid = w.spawn(3 * MAX_K, transform={"position": np.zeros((3 * MAX_K, 3), np.float32),
                                                  "scale": np.zeros((3 * MAX_K, 3), np.float32)},
                            bounds={}, renderable={"color": np.tile(DIM_WORD, (3 * MAX_K, 1)),
                                                   "material": np.full(3 * MAX_K, MATERIAL_TRANSLUCENT)},
                            pickable={})
        self.grid_labels = self._labels(np.zeros((3 * MAX_K, 3)), [""] * (3 * MAX_K), 1.6, priority=2.0)
        self.row_labels = self._labels([[GRID_LEFT - 9.0, GRID_TOP - (i + 0.5) * GRID_CELL, 0.0] for i in range(3)],
                                       [f"layer {i + 1}" for i in range(3)], 2.0)
        self.col_labels = self._labels([[GRID_LEFT + (j + 0.5) * GRID_CELL, GRID_TOP + 4.0, 0.0]
                                        for j in range(MAX_K)], [""] * MAX_K, 2.0)
        self.status = "loading the store, the embedding model and rag-llama on the worker..."

    def _labels(self, positions, texts, height, priority=2.0, offset=None, left=False):
        """Labels at `positions` (their centres; their left ends with `left`)."""
        positions = np.asarray(positions, np.float32).reshape(-1, 3).copy()
        if left:
            positions[:, 0] += np.array([len(t) for t in texts]) * height * CHAR_W / 2
        ids = self.world.spawn(len(texts), transform={"position": positions,
                                                      "scale": np.tile([height, height, 1.0], (len(texts), 1))},
                               bounds={})
        self.world.add_labels(ids, list(texts), height=height, color=TEXT_RGB, min_px=0.5, priority=priority,
                              offset=np.zeros((len(texts), 3), np.float32) if offset is None else offset)
        return ids

    def _texts(self, ids, texts) -> None:
        start = len(self.world.labels)
        self.world.labels.extend(texts)
        self.world.set("label", ids, text_index=np.arange(start, start + len(texts), dtype=np.int32))

    def animate(self, dt: float) -> bool:
        """Moves the words of the last result from their chunks' points to the prompt (FLOW_S); True while moving."""
        if self._flow_t >= 1.0 or self._flow_to is None:
            return False
        self._flow_t = min(1.0, self._flow_t + dt / FLOW_S)
        e = self._flow_t * self._flow_t * (3 - 2 * self._flow_t)      # smoothstep
        self.world.set("transform", self.words, position=self._flow_from + (self._flow_to - self._flow_from) * e)
        return True

    # ---- the space, once
    def show_space(self, space) -> None:
        xyz = space["xyz"]
        top = float(np.abs(xyz).max()) or 1.0
        self.scale = SPACE_SIDE / 2 / top
        self.base_rgb = FILE_RGB[space["file_of"] % len(FILE_RGB)]
        self.world.set("transform", self.points, position=SPACE_CENTER + xyz * self.scale,
                       scale=np.full((len(xyz), 3), 1.6, np.float32))
        self.world.set("renderable", self.points, color=self.base_rgb)
        names = space["files"]
        files = (", ".join(f"{name} ({FILE_COLOURS[i]})" for i, name in enumerate(names))
                 if len(names) <= len(FILE_COLOURS) else f"{len(names)} files (coloured in turn)")
        self._texts(self.space_note, [f"{len(xyz):,} chunks from {files}",
                                      "lit: the top-k and their cosine scores; red: switched off"])
        self._texts(self.axis_labels, [f"PC{i + 1} ({100 * s:.0f}%)" for i, s in enumerate(space["share"])])

    # ---- one result
    def show_result(self, result: RagResult, space) -> None:
        w, req, ans = self.world, result.request, result.answer
        # the space: query, lit hits, their scores
        q = SPACE_CENTER + result.query_xyz * getattr(self, "scale", 1.0)
        w.set("transform", self.query, position=q[None, :], scale=np.full((1, 3), 4.5, np.float32))
        colour = self.base_rgb.copy()
        size = np.full((self.n_chunks, 3), 1.6, np.float32)
        hit_ids = [h.chunk for h in result.hits]
        colour[hit_ids] = LIT_RGB
        off = [c for c in hit_ids if c in req.off]
        colour[off] = OFF_RGB
        size[hit_ids] = 3.2
        w.set("renderable", self.points, color=colour)
        w.set("transform", self.points, scale=size)
        pos = np.tile(SPACE_CENTER, (MAX_K, 1))
        pos[:len(hit_ids)] = w["transform"]["position"][w.slots(self.points)][hit_ids]
        w.set("transform", self.hit_labels, position=pos)
        self._texts(self.hit_labels, [f"#{h.rank + 1} {h.score:.2f}" + (" off" if h.chunk in req.off else "")
                                      for h in result.hits] + [""] * (MAX_K - len(hit_ids)))
        # the prompt
        question = f"question: {req.question}   (top-k {req.top_k}, {req.index_type} index)"
        w.set("transform", self.question_label, position=np.array(
            [[TEXT_LEFT + len(question) * 2.2 * CHAR_W / 2, TEXT_TOP + 5.0, 0.0]], np.float32))
        self._texts(self.question_label, [question])
        shares = ans.passage_shares()
        y = TEXT_TOP
        header_pos, bar_pos, bar_size, header_text = [], [], [], []
        word_pos = np.zeros((MAX_K * MAX_WORDS, 3), np.float32)
        word_rgb = np.tile(DIM_WORD, (MAX_K * MAX_WORDS, 1))
        word_text = [""] * (MAX_K * MAX_WORDS)
        tokens = ans.tokens
        chunks = space["chunks"]
        rank = {h.chunk: h for h in result.hits}
        for j, c in enumerate(result.passages):
            ch = chunks[c]
            where = f"#{rank[c].rank + 1} {rank[c].score:.2f}" if c in rank else "pinned"
            # the file's name, not its path: a long header ran under the side panel and the layout hid it
            name = Path(ch.file).name
            name = name if len(name) <= HEADER_NAME else name[:HEADER_NAME - 1] + "…"
            page = f" page {ch.page}" if ch.page is not None else ""
            header_text.append(f"{where}  {name}{page} chars {ch.start}-{ch.end}  attention {100 * shares[j]:.1f}%")
            header_pos.append((TEXT_LEFT, y, 0.0))
            bar_pos.append((TEXT_LEFT + 20.0 * shares[j], y - 2.6, 0.0))     # under the header, from its left
            bar_size.append((40.0 * shares[j], 0.8, 0.3))
            y -= LINE_H
            per_word = np.mean([t.token_attention[j][1:] for t in tokens], axis=0) if tokens else np.zeros(0)
            hot = float(per_word.max()) if per_word.size else 1.0
            x = TEXT_LEFT
            for k, word in enumerate(result.words[j][:MAX_WORDS]):
                if k and k % WORDS_PER_LINE == 0:
                    y -= LINE_H
                    x = TEXT_LEFT
                slot = j * MAX_WORDS + k
                word_pos[slot] = (x + len(word) * WORD_H * CHAR_W / 2, y, 0.0)
                x += (len(word) + 2) * WORD_H * CHAR_W
                word_text[slot] = word
                t = float(per_word[k] / hot) if k < len(per_word) and hot > 0 else 0.0
                word_rgb[slot] = DIM_WORD + (HOT_WORD - DIM_WORD) * max(0.0, t)
            y -= LINE_H + PASSAGE_GAP
        n = len(result.passages)
        hp = np.zeros((MAX_K, 3), np.float32)
        hp[:n] = np.array(header_pos, np.float32).reshape(-1, 3)
        hp[:n, 0] += np.array([len(t) for t in header_text]) * WORD_H * CHAR_W / 2
        w.set("transform", self.headers, position=hp)
        self._texts(self.headers, header_text + [""] * (MAX_K - n))
        bp, bs = np.zeros((MAX_K, 3), np.float32), np.zeros((MAX_K, 3), np.float32)
        bp[:n], bs[:n] = np.array(bar_pos).reshape(-1, 3), np.array(bar_size).reshape(-1, 3)
        w.set("transform", self.bars, position=bp, scale=bs)
        # the chunks flow into the prompt: each word starts at its chunk's point in the space
        points = w["transform"]["position"][w.slots(self.points)]
        starts = np.repeat(points[result.passages], MAX_WORDS, axis=0) if n else np.zeros((0, 3), np.float32)
        self._flow_from = word_pos.copy()
        self._flow_from[:len(starts)] = starts
        self._flow_to, self._flow_t = word_pos, 0.0
        w.set("transform", self.words, position=self._flow_from)
        w.set("label", self.words, color=word_rgb)
        self._texts(self.words, word_text)
        # the answer
        y -= 2.0
        text = f"answer: {ans.text}" if ans.knows else f"answer: {ans.text} (no passage holds it)"
        w.set("transform", self.answer_label, position=np.array([[TEXT_LEFT + len(text) * 2.4 * CHAR_W / 2, y, 0]],
                                                                np.float32))
        self._texts(self.answer_label, [text])
        tp = np.zeros((MAX_ANSWER, 3), np.float32)
        labels = [f"{t.word} {100 * t.probability:.0f}%" for t in tokens[:MAX_ANSWER]]
        x = TEXT_LEFT
        for i, s in enumerate(labels):
            tp[i] = (x + len(s) * WORD_H * CHAR_W / 2, y - LINE_H, 0.0)
            x += (len(s) + 3) * WORD_H * CHAR_W
        w.set("transform", self.answer_tokens, position=tp)
        self._texts(self.answer_tokens, labels + [""] * (MAX_ANSWER - len(labels)))
        # the attention layers' grid
        layers = np.array(ans.layer_shares, np.float32).reshape(-1, n) if n else np.zeros((3, 0), np.float32)
        gp = np.zeros((3 * MAX_K, 3), np.float32)
        gs = np.zeros((3 * MAX_K, 3), np.float32)
        gc = np.tile(DIM_WORD, (3 * MAX_K, 1))
        gt = [""] * (3 * MAX_K)
        for layer in range(min(3, layers.shape[0])):
            for j in range(n):
                i = layer * MAX_K + j
                gp[i] = (GRID_LEFT + (j + 0.5) * GRID_CELL, GRID_TOP - (layer + 0.5) * GRID_CELL, 0.0)
                gs[i] = (GRID_CELL * 0.92, GRID_CELL * 0.92, 0.6)
                v = float(layers[layer, j])
                gc[i] = DIM_WORD * 0.5 + (HOT_WORD - DIM_WORD * 0.5) * math.sqrt(max(0.0, min(1.0, v)))
                gt[i] = f"{100 * v:.0f}%"
        w.set("transform", self.grid, position=gp, scale=gs)
        w.set("renderable", self.grid, color=gc)
        gl = gp.copy()
        gl[:, 2] = 0.8
        w.set("transform", self.grid_labels, position=gl)
        self._texts(self.grid_labels, gt)
        self._texts(self.col_labels, [f"#{j + 1}" for j in range(n)] + [""] * (MAX_K - n))
        self.status = (f"live: real retrieval (FAISS {req.index_type}) and rag-llama's real forward; "
                       f"{n} passages in the prompt")


def overview_camera(viewport):
    from llmviz.engine.camera import Camera

    eye, target = PRESETS["overview"]
    cam = Camera(viewport=viewport, near=0.5, far=5000.0)
    cam.position = np.array(eye)
    cam.look_at(target)
    return cam


def chapter_values(result: RagResult, space) -> dict:
    """What a chapter step shown on this scene reads (the ids of scenes/chapters/showable.py RAG_VALUES), from
    the last result and the store's space: numbers as float arrays, names and words as string arrays."""
    req, ans, chunks = result.request, result.answer, space["chunks"]
    rank = {h.chunk: h for h in result.hits}
    shares = np.asarray(ans.passage_shares(), np.float64) * 100.0
    passages = result.passages

    def name(c):
        return Path(chunks[c].file).name

    source = int(np.argmax(shares)) if len(passages) else None
    src = passages[source] if source is not None else None
    query = result.query if result.query is not None else np.zeros(0)
    return {
        "rag.question": np.array(req.question), "rag.query": np.asarray(query, np.float64),
        "rag.query.xyz": np.asarray(result.query_xyz, np.float64), "rag.chunks": np.array([float(len(chunks))]),
        "rag.top_k": np.array([float(req.top_k)]),
        "rag.hit.score": np.array([h.score for h in result.hits], np.float64),
        "rag.hit.file": np.array([name(h.chunk) for h in result.hits]),
        "rag.hit.rank": np.array([h.rank + 1.0 for h in result.hits]),
        "rag.hit.start": np.array([float(chunks[h.chunk].start) for h in result.hits]),
        "rag.hit.end": np.array([float(chunks[h.chunk].end) for h in result.hits]),
        "rag.passage.file": np.array([name(c) for c in passages]),
        "rag.passage.rank": np.array([rank[c].rank + 1.0 if c in rank else 0.0 for c in passages]),  # 0: pinned
        "rag.passage.attention": shares,
        # the passage the answer came from: the largest share of its attention ("none" with every passage off)
        "rag.source.file": np.array(name(src) if src is not None else "none"),
        "rag.source.rank": np.array([rank[src].rank + 1.0 if src in rank else 0.0]),
        "rag.source.score": np.array([rank[src].score if src in rank else float("nan")]),
        "rag.source.attention": np.array([shares[source] if source is not None else 0.0]),
        "rag.answer": np.array(ans.text), "rag.answer.words": np.array([t.word for t in ans.tokens] or [""]),
        "rag.answer.probability": np.array([t.probability for t in ans.tokens] or [float("nan")], np.float64),
        "rag.knows": np.array([1.0 if ans.knows else 0.0]),
    }


def chapter_values_of(scene):
    """The values callable of a built retrieval scene for a chapter's runner: None until the first answer."""
    live = scene.live
    made = {}   # the last result's values: a playing chapter asks every frame, the result changes per answer

    def values():
        if live is None or live.trace is None or live.weights is None:
            return None
        if made.get("from") is not live.trace:
            made.update({"from": live.trace, "values": chapter_values(live.trace, live.weights)})
        return made["values"]
    return values


def build_rag_scene(name: str, folder, renderer, data=None):
    """The BuiltScene of `rag` (the demo store) or `rag:DIR` (scenes/registry.py)."""
    from llmviz.engine.bench import BenchPath
    from llmviz.models.rag import store
    from llmviz.scenes.registry import BuiltScene, SceneError

    try:
        manifest = store.read_manifest(folder)
        n, kind = int(manifest["chunks"]), str(manifest["index_type"])
    except (ValueError, KeyError, TypeError) as exc:        # StoreError is a ValueError
        raise SceneError(str(exc) if isinstance(exc, store.StoreError) else
                         f"{folder}: store.json has no chunk count or index type") from None
    if not 1 <= n <= store.MAX_CHUNKS or kind not in store.INDEX_TYPES[1:]:
        raise SceneError(f"{folder}: store.json's chunks or index_type is out of range")
    view = RagView(n)
    # the request starts on the store's own index (HNSW above FLAT_LIMIT chunks), not a flat one built again
    live = LiveRag(view, folder, index_type=kind) if renderer is not None else None

    def pose(t, cam):
        a = 2 * math.pi * t
        cam.position = np.array([15.0 + 60.0 * math.sin(a), 10.0 + 20.0 * math.sin(2 * a), 210.0])
        cam.look_at([15.0, 10.0, 0.0])

    built = BuiltScene(name, view.world, overview_camera, BenchPath(pose), view.world.slots(view.points),
                       caption="retrieval made visible: all-MiniLM-L6-v2 + FAISS + rag-llama", camera_mode="orbit",
                       live=live, presets={k: (np.array(e), np.array(t)) for k, (e, t) in PRESETS.items()},
                       status="live: real embeddings, a real FAISS index, a reader trained here")
    built.rag_view = view
    if live is not None:
        # the worker loads three things first (the store, the embedding model, the reader): a minute on a busy machine
        def wait_for_values(timeout: float | None = None) -> bool:
            from llmviz.scenes.live_wait import wait_with_progress

            arrived = wait_with_progress(live.wait, timeout, what=name, failed=lambda: getattr(live, "error", None))
            live.update(0.0)
            view.animate(FLOW_S)      # a still picture shows the prompt where the flight ends
            return arrived
        built.wait_for_values = wait_for_values
    return built
