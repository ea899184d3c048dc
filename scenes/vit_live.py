"""vit-tiny live: a picture in, its trace on the scene's blocks, and what its attention looks at.

The model runs on the session's worker (scenes/worker_session.py); the file events, samples and autoplay
are scenes/file_session.py's: `set_image_path` and `set_image` return at once; the worker reads and decodes the file (bounded, models/sim/vit_image.py), prepares it as
ViTImageProcessor would, traces every intermediate, and adds what the panel and the 3D picture draw
(scenes/vit_panels.py, scenes/vit_picture.py): the picture as the model sees it (`input.rgb`), the attention
rollout across the layers (`rollout`) and, with the weights, the position-embedding similarity maps.
`choice` (an AttentionChoice) is what attention the picture shows; the panel, a click on a patch and the
chapter change it with `choose`. `update(dt)` once per frame collects what finished and writes it to the
blocks. With ``autoplay`` (the benchmark) a new sample picture is traced every AUTOPLAY_INTERVAL seconds.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from importlib.resources import files

import numpy as np

from llmviz.scenes.file_session import FileSession
from llmviz.scenes.worker_session import _LOADING, WEIGHTS_REQUEST

WHAT_IT_IS = "a small model trained here on generated shapes"
# The pictures shipped under assets/images (assets/images/README.md says where each came from).
SAMPLE_IMAGES = ("star.png", "ring.png", "triangle.png", "cross.png", "astronaut.jpg")
DEFAULT_IMAGE = SAMPLE_IMAGES[0]
# Ids the worker adds to the trace beside the layout's: the picture as the model sees it, and the rollout.
PICTURE_ID, ROLLOUT_ID = "input.rgb", "rollout"
SIMILARITY_ID = "embed.pos.similarity"   # beside the weights: vit_trace.similarity_tiles of W_P
VIEWS = ("picture", "attention", "rollout")


@dataclass(frozen=True)
class AttentionChoice:
    """What attention the picture shows: `view` one of VIEWS; for "attention" a layer and a head (None: the
    heads' mean); whose attention: `token` 0 for [CLS], k + 1 for patch k."""

    view: str = "rollout"
    layer: int = 0
    head: int | None = None
    token: int = 0


def sample_path(name: str):
    """A shipped picture as an importlib.resources Traversable."""
    return files("llmviz.assets").joinpath("images", name)


def _vit_compute():
    """Worker-side compute: loads vit-tiny on the worker (torch is imported there, not on the frame thread)."""
    def make():
        from llmviz.models.sim import vit_image, vit_model, vit_trace
        from llmviz.models.sim.trace import ActivationTrace

        with _LOADING:
            model = vit_model.load_vit()
        size = model.config.image_size

        def compute(request):
            if request == WEIGHTS_REQUEST:
                weights = vit_trace.weights(model)
                grid = size // model.config.patch_size
                tiles = vit_trace.similarity_tiles(vit_trace.position_similarity(weights["embed.pos.weight"]), grid)
                return ActivationTrace([(i, weights[i], weights.axes(i)) for i in weights]
                                       + [(SIMILARITY_ID, tiles.astype(np.float32), ("t", "t'"))])
            kind, value = request
            rgb = vit_image.read_image(value) if kind == "path" else value
            pixels = vit_image.preprocess(rgb, size)
            trace = vit_trace.trace(model, pixels)
            seen = np.asarray(np.clip((pixels.transpose(1, 2, 0) + 1.0) * 0.5, 0.0, 1.0), np.float32)
            entries = [(i, trace[i], trace.axes(i)) for i in trace]
            entries += [(PICTURE_ID, seen, ("y", "x", "rgb")), (ROLLOUT_ID, vit_trace.rollout(trace).astype(np.float32),
                                                                ("t", "t'"))]
            return ActivationTrace(entries)

        return compute

    return make


class LiveVit(FileSession):
    """A picture in, trace out. ``scene`` and ``renderer`` may be None (a benchmark runs the model alone)."""

    kind = "vision"
    about = WHAT_IT_IS
    PICTURE_ID, SIMILARITY_ID = PICTURE_ID, SIMILARITY_ID
    samples = SAMPLE_IMAGES

    @staticmethod
    def sample_path(name: str) -> str:
        return str(sample_path(name))

    def __init__(self, scene, renderer, image_path=None, autoplay: bool = False, data=None):
        """`data`: where the 3D picture's atlas regions are reserved (the loader's DataStaging for a scene
        built on a worker; the renderer by default)."""
        self.scene, self.renderer = scene, renderer
        self.choice = AttentionChoice()
        self.picture = None
        if scene is not None and (data or renderer) is not None:
            from llmviz.scenes.vit_picture import VitPicture

            self.picture = VitPicture(scene, data or renderer)
        self._start_files(scene, _vit_compute(), autoplay)
        self.set_image_path(self.sample_path(DEFAULT_IMAGE) if image_path is None else image_path)

    # ------------------------------------------------------------------ events
    def set_image_path(self, path: str) -> None:
        """Trace the picture at `path`; read on the worker, a bad file becomes `error`."""
        self.open_path(path)

    def set_image(self, rgb: np.ndarray, source: str = "picture") -> None:
        """Trace an already decoded (height, width, 3) uint8 picture."""
        self.open_value("rgb", np.asarray(rgb, np.uint8), source)

    def choose(self, **changes) -> None:
        """A new attention choice (fields of AttentionChoice); the picture and the panel follow."""
        self.choice = replace(self.choice, **changes)

    def heat(self) -> np.ndarray | None:
        """The (grid, grid) map the choice draws on the picture, or None for the picture alone."""
        c = self.choice
        if self.trace is None or c.view == "picture":
            return None
        return attention_map(self.trace, self.grid, None if c.view == "rollout" else c.layer, c.head, c.token)

    def heat_words(self) -> str:
        """What heat() is, in words: "[CLS]'s rollout", "patch (3, 4) (token 53)'s attention, layer 1, head 2"."""
        from llmviz.scenes.vit_picture import _token_name

        c = self.choice
        who = _token_name(c.token, self.grid)
        if c.view == "rollout":
            return f"{who}'s rollout through the layers"
        return f"{who}'s attention, layer {c.layer}, " + ("the heads' mean" if c.head is None else f"head {c.head}")

    @property
    def grid(self) -> int:
        return int(round(self.trace["patches"].shape[0] ** 0.5)) if self.trace is not None else 0

    def on_click(self, slot: int, cell) -> bool:
        """A click on a patch of the 3D picture shows its attention (again: back to [CLS]); True if it was one."""
        token = self.picture.token_at(slot) if self.picture is not None else None
        if token is None:
            return False
        self.choose(token=0 if token == self.choice.token else token,
                    view="rollout" if self.choice.view == "picture" else self.choice.view)
        return True

    def reading_at(self, slot: int, cell):
        """The hover reading of the 3D picture's patches and the similarity maps (None elsewhere)."""
        return self.picture.reading(self, slot, cell) if self.picture is not None else None

    # ------------------------------------------------------------------ per frame
    def update(self, dt: float) -> bool:
        changed = self.poll()
        if self.picture is not None:
            self.picture.update(self.renderer, self, dt)
        self._autoplay(dt)
        if changed:
            self.values_version += 1
        return changed

    def _show(self, values) -> None:
        """Values on their blocks (none without a renderer)."""
        if self.renderer is not None:
            self.scene.write_values(self.renderer, values)
        self.values_version += 1

    def _on_weights(self) -> None:
        self._show(self.weights)

    def _on_trace(self, result) -> None:
        self.tick_seconds.append(result.seconds)
        self._show(self.trace)


# ---- what the panel reads ---------------------------------------------------------------------

def top_classes(trace, labels, k: int = 6) -> list[tuple[str, float]]:
    """(label, probability) of the k most likely classes, most likely first."""
    probs = np.asarray(trace["probs"], np.float64)
    order = np.argsort(-probs, kind="stable")[:k]
    return [(labels[int(i)], float(probs[i])) for i in order]


def attention_map(trace, grid: int, layer: int | None, head: int | None, token: int = 0) -> np.ndarray:
    """(grid, grid) how much `token` ([CLS] by default) draws on each patch: one head's softmax row (layer,
    head), the heads' mean of a layer (head None), or the rollout through every layer (layer None)."""
    from llmviz.models.sim.vit_trace import cls_map   # loaded with the model on the worker already

    if layer is None:
        return cls_map(trace[ROLLOUT_ID], grid, token)
    if head is None:
        n = 0
        while f"blocks.{layer}.attn.head.{n}.softmax" in trace:
            n += 1
        return np.mean([cls_map(trace[f"blocks.{layer}.attn.head.{h}.softmax"], grid, token) for h in range(n)],
                       axis=0)
    return cls_map(trace[f"blocks.{layer}.attn.head.{head}.softmax"], grid, token)
