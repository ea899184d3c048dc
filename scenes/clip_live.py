"""clip-tiny live: a picture and the user's captions in, both towers' trace on the scene's blocks, the
image–text similarity matrix and the shared embedding space in 3D (scenes/clip_space.py).

The model runs on the session's worker (scenes/worker_session.py): `set_image_path`, `set_image`,
`set_captions` and `select_caption` return at once; the worker reads the picture (bounded,
models/sim/vit_image.py), prepares it as CLIPImageProcessor would, traces the picture and the selected caption
through every intermediate, and adds what the panel and the 3D space draw:
  - "input.rgb": the picture as the model reads it;
  - MATRIX_ID: (captions, pictures) cos · e^s of every caption against the user's picture and GALLERY_SHOWN
    generated ones, PROBS_ID its softmax over the captions (each picture's column sums to 1);
  - the embedding space: a PCA (fitted once, on the unit embeddings of GALLERY generated pictures and all
    144 full captions) of those, the user's picture and captions projected into it.
`update(dt)` once per frame collects what finished and writes it to the blocks. With ``autoplay`` (the
benchmark) a new sample picture is traced every AUTOPLAY_INTERVAL seconds.
"""
from __future__ import annotations

import numpy as np

from llmviz.scenes.vit_live import DEFAULT_IMAGE, PICTURE_ID, AttentionChoice, LiveVit
from llmviz.scenes.worker_session import _LOADING, WEIGHTS_REQUEST

WHAT_IT_IS = "a small CLIP trained here on generated shapes and their captions"
DEFAULT_CAPTIONS = ("a small red star", "a large blue ring", "a star", "a red shape", "a green triangle")
MAX_CAPTIONS = 8
GALLERY_SEED, GALLERY, GALLERY_SHOWN = 2027, 96, 5
MATRIX_ID, PROBS_ID = "clip.matrix", "clip.matrix.probs"
# the space: PCA axes and explained shares, points of the gallery's pictures, of all full captions, the user's
SPACE_AXES, SPACE_SHARE = "clip.space.axes", "clip.space.share"
SPACE_GALLERY, SPACE_CAPTIONS, SPACE_PICTURE, SPACE_YOURS = ("clip.space.gallery", "clip.space.captions",
                                                             "clip.space.picture", "clip.space.yours")
# the unit embeddings behind the matrix, for the hover: the matrix's pictures (yours first) and captions
EMBED_PICTURES, EMBED_CAPTIONS = "clip.embed.pictures", "clip.embed.captions"


def gallery():
    """The generated pictures of the embedding space (their first GALLERY_SHOWN are the matrix's columns)."""
    from llmviz.models.sim import shapes

    return shapes.draw_batch(GALLERY_SEED, GALLERY)


class Space:
    """A 3-component PCA of unit embeddings: mean, axes (3, d) and each axis's share of the variance."""

    def __init__(self, points: np.ndarray):
        x = np.asarray(points, np.float64)
        self.mean = x.mean(0)
        _, s, vt = np.linalg.svd(x - self.mean, full_matrices=False)
        # each axis signed so its largest loading is positive: the same picture whatever LAPACK returns
        signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])
        self.axes = (vt * signs[:, None])[:3]
        self.share = (s ** 2 / (s ** 2).sum())[:3]

    def project(self, points: np.ndarray) -> np.ndarray:
        return ((np.asarray(points, np.float64) - self.mean) @ self.axes.T).astype(np.float32)


def _clip_compute():
    """Worker-side compute: loads clip-tiny on the worker (torch is imported there, not on the frame thread)."""
    def make():
        from llmviz.models.sim import clip_image, clip_model, clip_trace, clip_vocab, vit_image
        from llmviz.models.sim.trace import ActivationTrace

        with _LOADING:
            model = clip_model.load_clip()
        size = model.config.vision_config.image_size
        pictures = gallery()
        shown = clip_trace.embed_pictures(model, clip_image.preprocess_batch(np.stack([p.pixels for p in pictures])))
        full = clip_trace.embed_captions(model, [c[0] for c in clip_vocab.all_full_captions()])
        space = Space(np.concatenate([shown, full]))
        scale = float(model.logit_scale.detach().exp())

        def compute(request):
            if request == WEIGHTS_REQUEST:
                return clip_trace.weights(model)
            kind, value, captions, selected = request
            rgb = vit_image.read_image(value) if kind == "path" else value
            pixels = clip_image.preprocess(rgb, size)
            trace = clip_trace.trace(model, pixels, captions[selected])
            picture = np.asarray(trace["contrast.image"], np.float32)[None, :]
            texts = clip_trace.embed_captions(model, captions)
            columns = np.concatenate([picture, shown[:GALLERY_SHOWN]])
            logits = (texts @ columns.T * scale).astype(np.float32)
            e = np.exp(logits - logits.max(0))
            extra = [(PICTURE_ID, clip_image.seen(pixels), ("y", "x", "rgb")), (MATRIX_ID, logits, ("k", "n")),
                     (PROBS_ID, (e / e.sum(0)).astype(np.float32), ("k", "n")),
                     (EMBED_PICTURES, columns, ("n", "e")), (EMBED_CAPTIONS, texts, ("k", "e")),
                     (SPACE_AXES, space.axes.astype(np.float32), ("i", "e")),
                     (SPACE_SHARE, space.share.astype(np.float32), ("i",)),
                     (SPACE_GALLERY, space.project(shown), ("n", "i")), (SPACE_CAPTIONS, space.project(full), ("k", "i")),
                     (SPACE_PICTURE, space.project(picture), ("n", "i")), (SPACE_YOURS, space.project(texts), ("k", "i"))]
            return ActivationTrace([(i, trace[i], trace.axes(i)) for i in trace] + extra)

        return compute

    return make


class LiveClip(LiveVit):
    """A picture and captions in, trace out: vit-tiny's live session (its picture events, samples, autoplay and
    per-frame loop, inherited) with captions, and `picture` the 3D ClipSpace. ``scene`` and ``renderer`` may be
    None (a benchmark runs the model alone); `data`: where the 3D parts' atlas regions are reserved (the
    loader's DataStaging for a scene built on a worker; the renderer by default)."""

    kind = "clip"
    about = WHAT_IT_IS
    choice = AttentionChoice(view="picture")   # what the inherited picture drawing tints: nothing here

    def __init__(self, scene, renderer, image_path=None, autoplay: bool = False, data=None):
        self.scene, self.renderer = scene, renderer
        self.captions = list(DEFAULT_CAPTIONS)
        self.selected = 0
        self.shown_captions: tuple[str, ...] = ()   # the captions of the trace on screen
        self.shown_selected = 0
        self.problem = ""                            # a caption refused before it reached the worker
        self.picture = None
        if scene is not None and (data or renderer) is not None:
            from llmviz.models.sim.clip_vocab import all_full_captions
            from llmviz.scenes.clip_space import ClipSpace

            self.picture = ClipSpace(scene, data or renderer, MAX_CAPTIONS, GALLERY_SHOWN + 1, GALLERY,
                                     len(all_full_captions()))
        self._sent = None
        self._start_files(scene, _clip_compute(), autoplay)
        self.set_image_path(self.sample_path(DEFAULT_IMAGE) if image_path is None else image_path)

    @property
    def space(self):
        return self.picture

    @property
    def grid(self) -> int:
        return int(round(self.trace["vision.patches"].shape[0] ** 0.5)) if self.trace is not None else 0

    def choose(self, **changes) -> None:
        """vit-tiny's panel picks an attention to tint the picture with; clip-tiny's picture shows none."""

    def on_click(self, slot: int, cell) -> bool:
        return False

    # ------------------------------------------------------------------ captions
    def set_captions(self, captions) -> str:
        """New captions (1 to MAX_CAPTIONS, each read by clip-tiny's vocabulary); "" when taken, else the one-line
        problem (also kept in `problem`), the captions on screen staying as they were."""
        from llmviz.models.sim.clip_vocab import CaptionError, encode

        captions = [c.strip() for c in captions if c.strip()]
        if not 1 <= len(captions) <= MAX_CAPTIONS:
            self.problem = f"1 to {MAX_CAPTIONS} captions, got {len(captions)}"
            return self.problem
        try:
            for c in captions:
                encode(c)
        except CaptionError as err:
            self.problem = str(err)
            return self.problem
        self.problem = ""
        self.captions = captions
        self.selected = min(self.selected, len(captions) - 1)
        self._submit()
        return ""

    def set_text(self, text: str) -> str:
        """--text on the command line: one caption, or several separated by "|"."""
        return self.set_captions(text.split("|"))

    def select_caption(self, index: int) -> None:
        """Which caption the text tower's blocks trace."""
        if 0 <= index < len(self.captions) and index != self.selected:
            self.selected = index
            self._submit()

    # ------------------------------------------------------------------ the worker
    def _request(self):
        self._sent = (*self._input, tuple(self.captions), self.selected)
        return self._sent

    def _on_trace(self, result) -> None:
        self.shown_captions, self.shown_selected = self._sent[2], self._sent[3]
        super()._on_trace(result)

    def explain(self, tensor_id, row, col, trace, weights):
        """The hover's explanation of a tower's cell (scenes/clip_dataflow.py routes the prefixed vision tower)."""
        from llmviz.scenes.clip_dataflow import explain

        return explain(tensor_id, row, col, trace, weights)


def caption_probabilities(trace, captions) -> list[tuple[str, float, float]]:
    """(caption, cos · e^s, softmax over the captions) against the user's picture, in the captions' order."""
    logits, probs = trace[MATRIX_ID][:, 0], trace[PROBS_ID][:, 0]
    return [(c, float(v), float(p)) for c, v, p in zip(captions, logits, probs)]
