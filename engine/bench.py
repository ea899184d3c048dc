"""Headless benchmark: run an engine along a scripted camera path and report what each frame cost.

For the stress scene it also runs, in the same process and on the same path, the naive way
(one draw call per entity, no culling, no LOD) and the per-entity Python loop for cull + LOD,
so the ratios come from one run on one machine.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .camera import Camera
from .render.backend import INSTANCE_FLOATS, MATERIAL_TRANSLUCENT, MAX_LODS, Batch
from .runtime import Engine
from .reference_loop import build_objects, cull_lod_per_entity

CULL_LOD_SYSTEMS = ("frustum_hlod", "lod")


@dataclass
class BenchPath:
    """A scripted camera: ``pose(t, camera)`` places the camera for t in [0, 1)."""

    pose: Callable[[float, Camera], None]


def _percentile_fps(frame_ms: np.ndarray, q: float) -> float:
    return float(1000.0 / np.percentile(frame_ms, 100 - q))


def run_frames(engine: Engine, path: BenchPath, frames: int, finish: Callable[[], None],
               progress: Callable[[int, int], None] | None = None) -> dict:
    """Render ``frames`` frames along the path; every frame waits for the GPU so times are real.

    Every figure goes into an array sized for the run before it starts, so a long run (a soak of
    30,000 frames) holds the same memory from its first frame to its last."""
    frame_ms = np.zeros(frames)
    per_system: dict[str, np.ndarray] = {}
    counted = {key: np.zeros(frames) for key in ("draw_calls", "triangles", "visible", "culled")}
    per_lod = np.zeros((frames, MAX_LODS))
    dt = 1.0 / 60.0
    for i in range(frames):
        path.pose(i / max(1, frames), engine.camera)
        start = time.perf_counter()
        engine.frame(dt)
        finish()
        frame_ms[i] = (time.perf_counter() - start) * 1000.0
        for name, ms in engine.schedule.timings.items():
            per_system.setdefault(name, np.zeros(frames))[i] = ms
        last = engine.profiler.last
        for key, values in counted.items():
            values[i] = last.get(key, 0)
        lods = last.get("instances_per_lod", [])[:MAX_LODS]
        per_lod[i, :len(lods)] = lods
        if progress:
            progress(i + 1, frames)
    systems_ms = {name: float(np.median(v)) for name, v in per_system.items()}
    # Draw calls, triangles and visible counts vary along the path: report medians over frames.
    counts = {k: int(np.median(v)) for k, v in counted.items()}
    counts["instances_per_lod"] = [int(x) for x in np.median(per_lod, axis=0)]
    counts["entities"] = engine.world.count
    counts["culled"] = counts["entities"] - counts["visible"]  # so the two medians add up
    return {
        "frames": frames,
        "fps_median": float(1000.0 / np.median(frame_ms)),
        "fps_p5": _percentile_fps(frame_ms, 5),
        "frame_ms_median": float(np.median(frame_ms)),
        "frame_ms_p95": float(np.percentile(frame_ms, 95)),
        "systems_ms": systems_ms,
        "cull_lod_ms_vectorized": float(np.median(np.sum([per_system[s] for s in CULL_LOD_SYSTEMS], axis=0))),
        "visibility_lod_instancing_ms": float(np.median(np.sum(
            [per_system[s] for s in (*CULL_LOD_SYSTEMS, "instancing")], axis=0))),
        **counts,
    }


def run_naive(engine: Engine, path: BenchPath, slots: np.ndarray, frames: int, finish: Callable[[], None]) -> dict:
    """One draw call per entity, every entity, every frame, at full-box LOD: the baseline."""
    rows = np.empty((len(slots), INSTANCE_FLOATS), np.float32)
    engine.transform.update()
    engine.instancing.pack(slots, rows)
    batch = [Batch(mesh=0, material=0, lod=1, instances=rows)]
    renderer = engine.renderer
    if renderer.backend_name != "gl":
        return {"naive_skipped": f"the one-draw-per-entity baseline is written for moderngl, not {renderer.backend_name}"}
    times = []
    for i in range(frames):
        path.pose((i + 0.5) / frames, engine.camera)
        engine.camera.viewport = renderer.size
        start = time.perf_counter()
        renderer.begin_frame(engine.clear_color)
        draw_naive_gl(renderer, engine.camera, batch)
        renderer.end_frame()
        finish()
        times.append((time.perf_counter() - start) * 1000.0)
    return {"naive_fps_median": float(1000.0 / np.median(times)), "naive_frames": frames,
            "naive_draw_calls": int(renderer.stats.draw_calls)}


def run_per_entity(engine: Engine, path: BenchPath, frames: int) -> dict:
    """Cull + LOD as a Python loop over per-entity objects, on the same path, two ways.

    ``cull_lod_ms_per_entity`` is the esper way: every entity visited each frame (no hierarchy),
    against our vectorised systems as they run in the scene. ``..._hierarchical`` runs our exact
    algorithm (with hierarchical LOD) per entity, isolating the gain of column storage alone.
    """
    engine.transform.update()
    objects, roots = build_objects(engine.world)
    leaves = [e for e in objects if not e.is_group]
    flat, hierarchical = [], []
    for i in range(frames):
        path.pose((i + 0.5) / frames, engine.camera)
        cam = engine.camera
        planes, eye, focal = cam.planes(), cam.position, cam.focal_px
        start = time.perf_counter()
        cull_lod_per_entity(leaves, planes, eye, focal, flat=True)
        flat.append((time.perf_counter() - start) * 1000.0)
        start = time.perf_counter()
        cull_lod_per_entity(roots, planes, eye, focal)
        hierarchical.append((time.perf_counter() - start) * 1000.0)
    return {"cull_lod_ms_per_entity": float(np.median(flat)),
            "cull_lod_ms_per_entity_hierarchical": float(np.median(hierarchical)),
            "per_entity_frames": frames}


def flat_cull_lod_ms(engine: Engine, path: BenchPath, frames: int) -> dict:
    """The vectorised systems with every group forced open: every entity tested each frame."""
    group = engine.world["group"]
    saved = group["expand_px"].copy()
    group["expand_px"][:] = 0.0
    cull_lod, instancing = [], []
    try:
        for i in range(frames):
            path.pose((i + 0.5) / frames, engine.camera)
            start = time.perf_counter()
            result = engine.lod.update(engine.visibility.update(engine.camera))
            mid = time.perf_counter()
            engine.instancing.build(result.drawn)
            cull_lod.append((mid - start) * 1000.0)
            instancing.append((time.perf_counter() - mid) * 1000.0)
    finally:
        group["expand_px"][:] = saved
        group["expanded"][:] = False
    return {"cull_lod_ms_all_open": float(np.median(cull_lod)),
            "instancing_ms_all_open": float(np.median(instancing))}


def draw_naive_gl(self, camera, batches: list[Batch]) -> None:
    """One draw call per instance with the row passed as a uniform, on the moderngl backend (``self``): the
    cost instancing avoids. A benchmark's baseline, so it lives here and not in the renderer's contract."""
    import moderngl

    from .render.gl import _VERTEX_ATTRIBUTES, _VERTEX_LAYOUT, _attribute_format
    from .render.meshes import mesh_lod

    self._bind_textures()
    view = camera.view()
    uniforms = self._camera_values(camera, view)
    for batch in self._draw_order(batches):
        geometry = mesh_lod(batch.mesh, batch.lod)
        key = (int(batch.mesh), int(batch.lod))
        program = self._program(geometry.program, geometry.defines + (("PER_DRAW_INSTANCE", 1),))
        vao = self._naive_vaos.get(key)
        if vao is None:
            vertices, _ = self._vertex_buffer(batch.mesh, batch.lod)
            fmt, names = _attribute_format(program, _VERTEX_LAYOUT, _VERTEX_ATTRIBUTES, "")
            vao = self._naive_vaos[key] = self.ctx.vertex_array(program, [(vertices, fmt, *names)])
        rows = batch.instances
        if batch.material == MATERIAL_TRANSLUCENT:
            rows = self._back_to_front(camera, view, rows)
        rows = np.ascontiguousarray(rows, np.float32)
        self._set_material(batch.material)
        self._set_uniforms(program, uniforms)
        uniform = program["u_instance"]
        count = len(geometry.vertices)
        for row in rows:
            uniform.write(row.tobytes())
            vao.render(moderngl.TRIANGLES, vertices=count)
        self._count(batch, len(rows))
