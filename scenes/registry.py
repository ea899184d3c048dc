"""Scene names the command line and the app accept, and how each is built.

A scene is a world, a camera to start from and a scripted camera path for benchmarks.
``stress:N`` is the engine's own stress scene; model scenes join this table as they arrive.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from llmviz.engine.bench import BenchPath
from llmviz.engine.camera import Camera
from llmviz.engine.ecs.world import World

# The stress scene's data textures (one 8x8 block per 40 boxes, in strips of 128) fill the renderer's
# 2048x2048 data atlas at 2,621,440 boxes; the limit stays below that (tests/test_hostile_cli.py
# recomputes it from the engine's constants).
MAX_STRESS = 2_600_000
MAX_SCENE_NAME = 200  # characters; longer is no scene name (and keeps int() of digit floods away)


class SceneError(ValueError):
    """An unknown or malformed scene name; the message lists what is accepted."""


@dataclass
class BuiltScene:
    name: str
    world: World
    start_camera: Callable[[tuple[int, int]], Camera]
    path: BenchPath
    leaf_slots: object  # slots the naive benchmark draws one by one
    is_stress: bool = False
    caption: str = ""
    camera_mode: str = "orbit"  # the window's starting camera mode: "fly" or "orbit"
    model: object = None  # a ModelScene for model scenes
    live: object = None  # a LiveModel for models computing real values
    presets: dict = field(default_factory=dict)  # camera preset name -> (eye, target)
    status: str = ""  # what the values on screen are: real, simulated, or structure only
    describe_status: Callable[[], str] | None = None  # the status again in the language chosen since (View ▸ Language)
    routing_source: object = None  # () -> SimulatedRouting, for MoE specs without weights (built on first use)
    start_preset: str | None = None  # the preset start_camera shows (re-framed by the window around its panels)
    _routing: object = None

    @property
    def routing(self):
        """Routing statistics to show: the live MoE's own, or simulated ones for MoE specs without weights."""
        if self.live is not None and hasattr(self.live, "stats"):
            return self.live
        if self._routing is None and self.routing_source is not None:
            self._routing = self.routing_source()
        return self._routing

    def update(self, dt: float) -> bool:
        """Per-frame simulation work (polling the worker, uploading new values); True when values changed."""
        return self.live.update(dt) if self.live is not None else False

    def _model_values(self, frame) -> None:
        """The live model's results taken from its worker (never waiting) and their values written onto the blocks."""
        self.update(frame.dt)

    def attach(self, engine) -> None:
        """Register this scene's per-frame simulation work in the engine's simulation phase."""
        engine.schedule.add("simulation", "model_values", self._model_values)
        if self.model is not None:  # the flow lines' pulses and their dimming with the blocks they join
            self.model.attach(engine)

    def wait_for_values(self, timeout: float | None = None) -> bool:
        """Headless only: block until a live model's first values are on its blocks (scenes.live_wait's limit)."""
        if self.live is None:
            return True
        from llmviz.scenes.live_wait import wait_with_progress

        return wait_with_progress(self.live.wait, timeout, what=self.name,
                                  failed=lambda: getattr(self.live, "error", None))

    def close(self) -> None:
        if self.live is not None:
            self.live.close()


def _build_stress(name: str, count: int, renderer, data=None) -> BuiltScene:
    from llmviz.engine.stress import build_stress

    from llmviz.common.i18n import tr

    scene = build_stress(count, renderer=data or renderer)

    def start(viewport):
        cam = scene.camera_at(0.0)
        cam.viewport = viewport
        return cam

    return BuiltScene(name, scene.world, start, BenchPath(lambda t, cam: scene.camera_at(t, cam)),
                      scene.world.slots(scene.boxes), is_stress=True,
                      caption=tr("banner.stress_caption", boxes=count, clusters=len(scene.groups)), camera_mode="fly")


def _build_model(spec, renderer, autoplay: bool = False, data=None, on_layout=None) -> BuiltScene:
    from llmviz.scenes.layout import layout_model
    from llmviz.scenes.live import LIVE_BINDINGS, LIVE_HYBRID_MODELS, LIVE_MOE_MODELS
    from llmviz.scenes.model_scene import build_model_scene
    from llmviz.scenes.model_paths import model_path, preset_camera

    binding = LIVE_BINDINGS.get(spec.id)
    layout = layout_model(spec, binding.rows if binding is not None else None)
    if on_layout is not None:
        on_layout(spec, layout)  # the outline can be shown while the blocks are spawned
    drawn = binding.drawn_ids(layout) if binding is not None else None
    scene = build_model_scene(spec, data or renderer, with_data=binding is not None, layout=layout, data_ids=drawn)
    live = binding.make(scene, renderer, autoplay, data) if binding is not None and renderer is not None else None
    presets = scene.layout.presets

    # A live model opens on its first block, where the cells are readable; others on the whole model.
    start_preset = "first block" if live is not None and "first block" in presets else "overview"

    def start(viewport):
        return preset_camera(presets[start_preset], viewport, scene.layout)

    simulated = spec.architecture.moe is not None and spec.id not in (*LIVE_MOE_MODELS, *LIVE_HYBRID_MODELS)

    def describe_status() -> str:
        from llmviz.common.i18n import tr

        status = tr("banner.live_status") if live is not None else tr("hover.structure_only")
        if simulated:
            status += " · " + tr("moe.simulated")
        if spec.speculative:
            status += " · " + tr("banner.speculative_status")
        return status

    built = BuiltScene(spec.id, scene.world, start, model_path(scene.layout), scene.block_slots,
                       caption=f"{spec.name}", model=scene, live=live, presets=presets, status=describe_status(),
                       start_preset=start_preset, describe_status=describe_status)
    if simulated:
        built.routing_source = lambda: _simulated_routing(spec)
    return built


def _simulated_routing(spec):
    # Imported on demand: routing imports torch, which a structure-only scene must not wait for.
    from llmviz.scenes.moe_live import SimulatedRouting

    return SimulatedRouting(spec)


def scene_names() -> list[str]:
    return ["stress:N (N boxes, e.g. stress:100000)", "any model id of `llmviz models` (e.g. nano-gpt, gpt-3)",
            "folder:DIR (a local Hugging Face model folder, computed by transformers)",
            "trace:FILE.llmtrace (a forward pass recorded with llmviz trace)",
            "longctx:N (induction-2l's attention over N tokens, e.g. longctx:131072)",
            "rag or rag:DIR (retrieval over the demo store or a store of llmviz rag index)"]


def parse_scene(name: str):
    """("stress", N) or ("model", spec); SceneError naming what is accepted otherwise."""
    name = name.strip()
    if not name or len(name) > MAX_SCENE_NAME:
        raise SceneError(f"scene name must be 1 to {MAX_SCENE_NAME} characters; scenes are: {'; '.join(scene_names())}")
    recorded = re.fullmatch(r"(folder|trace):(.+)", name, re.S)
    if recorded:
        return recorded.group(1), recorded.group(2)
    if name == "rag" or name.startswith("rag:"):
        from llmviz.models.rag.demo import demo_path

        return "rag", name[4:] if name.startswith("rag:") else str(demo_path())
    long_context = re.fullmatch(r"longctx:(\d+)", name)
    if long_context:
        from llmviz.scenes.longctx_view import parse_length

        try:
            return "longctx", parse_length(long_context.group(1))
        except ValueError as err:
            raise SceneError(f"scene {name[:40]!r}: {err}") from None
    match = re.fullmatch(r"stress:(\d+)", name)
    if match:
        digits = match.group(1).lstrip("0") or "0"
        count = int(digits) if len(digits) <= 9 else MAX_STRESS + 1
        if not 1 <= count <= MAX_STRESS:
            raise SceneError(f"scene {name[:40]!r}: N must be between 1 and {MAX_STRESS:,}")
        return "stress", count
    from llmviz.models.registry import UnknownModelError, load_registry

    try:
        return "model", load_registry().get(name)
    except UnknownModelError as err:
        raise SceneError(f"unknown scene {name!r} ({err}); scenes are: {'; '.join(scene_names())}") from None


def build_scene(name: str, renderer=None, autoplay: bool = False, data=None, on_layout=None) -> BuiltScene:
    """Build a scene by name; ``autoplay`` keeps a live model generating (benchmarks).

    ``data`` (a DataStaging) takes the data atlas's allocations and uploads in place of the
    renderer, so the scene can be built off the frame thread; nothing then touches GL. ``on_layout(spec,
    layout)`` is called for model scenes once the layout exists, before any entity (progressive loading).
    """
    kind, arg = parse_scene(name)
    if kind == "stress":
        return _build_stress(name, arg, renderer, data)
    if kind == "longctx":
        from llmviz.scenes.longctx_view import build_longctx_scene

        return build_longctx_scene(name, arg, renderer, data)
    if kind == "rag":
        from llmviz.scenes.rag_live import build_rag_scene

        return build_rag_scene(name, arg, renderer, data)
    if kind in ("folder", "trace"):
        return _build_recorded(name, kind, arg, renderer, data, on_layout)
    return _build_model(arg, renderer, autoplay, data, on_layout)


def _build_recorded(name: str, kind: str, path: str, renderer, data=None, on_layout=None) -> BuiltScene:
    """A user's model with the values of one recorded pass (scenes/recorded.py): its layout from the stored
    config, laid out for the recording's tokens."""
    from llmviz.models.hf_config import spec_from_config
    from llmviz.models.hf_record import RecordError
    from llmviz.models.spec import SpecError
    from llmviz.models.trace_file import TraceFileError
    from llmviz.scenes.layout import layout_model
    from llmviz.scenes.model_paths import model_path, preset_camera
    from llmviz.scenes.model_scene import build_model_scene
    from llmviz.scenes.folder_live import CONTEXT as FOLDER_CONTEXT
    from llmviz.scenes.folder_live import FolderLive
    from llmviz.scenes.recorded import RecordedModel, downsampled_note, drawn_values, recording

    try:
        rec = recording(kind, path)
        file = Path(path) / "config.json" if kind == "folder" else Path(path)
        spec = spec_from_config(rec.config, _recorded_id(path), file).spec
    except (RecordError, TraceFileError, SpecError) as err:
        raise SceneError(str(err)) from None
    n_tokens = len(rec.arrays["tokens"])
    # A folder's scene has rows for the tokens generated after its input; a trace shows what it recorded.
    layout = layout_model(spec, max(n_tokens, FOLDER_CONTEXT) if rec.opened is not None else n_tokens)
    if on_layout is not None:
        on_layout(spec, layout)
    shown, left_out = drawn_values(layout, rec.arrays, rec.downsampled)
    scene = build_model_scene(spec, data or renderer, with_data=True, layout=layout, data_ids=set(shown))
    live = None
    if renderer is not None and rec.opened is not None:
        first = {"ids": [int(t) for t in rec.arrays["tokens"]], "strings": rec.token_strings, "recorded": rec.arrays,
                 "downsampled": rec.downsampled}
        live = FolderLive(scene, renderer, rec.opened, first, rec.source, max(n_tokens, FOLDER_CONTEXT))
    elif renderer is not None:
        live = RecordedModel(scene, renderer, shown, rec.token_strings, rec.source)
    presets = scene.layout.presets
    start_preset = "first block" if "first block" in presets else "overview"
    status = (f"live: {len(shown)} tensors recorded per pass, {rec.source}; N steps, Space generates"
              if rec.opened is not None else
              f"recorded: {len(shown)} tensors {rec.source} on {n_tokens} tokens; other blocks empty")
    if left_out:
        status += f" · {len(left_out)} recorded tensors not drawn"
    if rec.downsampled:
        status += " · " + downsampled_note(rec.downsampled)
    return BuiltScene(name, scene.world, lambda vp: preset_camera(presets[start_preset], vp, scene.layout),
                      model_path(scene.layout), scene.block_slots, caption=spec.name, model=scene, live=live,
                      presets=presets, status=status, start_preset=start_preset)


def _recorded_id(path: str) -> str:
    """A spec id for a user's folder or trace: its name, lower case, safe characters."""
    stem = Path(path).name if Path(path).is_dir() else Path(path).stem
    return re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-") or "model"
