"""Instancing: packs the drawn entities into one float32 instance array per (mesh, material, LOD) batch.

The packed array is a reused buffer grown by doubling; batches are views into it, so a frame
allocates nothing proportional to the number of entities. Grouping uses one integer key per
entity and one comparison pass per distinct key (there are only a handful).
"""
from __future__ import annotations

import numpy as np

from ..ecs.components import MAX_LOD_LEVELS
from ..ecs.world import World
from ..render.backend import INSTANCE_FLOATS, Batch
from ..render.meshes import MESH_LOD_TRIANGLES

_MATERIAL_SLOTS = 64
# Coarsest level each mesh family has: an entity given more LOD thresholds than its mesh has
# variants keeps drawing the coarsest variant rather than asking for one that does not exist.
_COARSEST_LOD = np.array([len(MESH_LOD_TRIANGLES[m]) - 1 for m in sorted(MESH_LOD_TRIANGLES)], np.int64)


def batch_keys(mesh: np.ndarray, material: np.ndarray, lod: np.ndarray) -> np.ndarray:
    return (mesh.astype(np.int64) * _MATERIAL_SLOTS + material) * MAX_LOD_LEVELS + lod


def split_key(key: int) -> tuple[int, int, int]:
    mesh_material, lod = divmod(int(key), MAX_LOD_LEVELS)
    mesh, material = divmod(mesh_material, _MATERIAL_SLOTS)
    return mesh, material, lod


class InstancingSystem:
    """Builds ``frame.batches`` from ``frame.visibility.drawn``."""

    def __init__(self, world: World):
        self.world = world
        self._packed = np.empty((1024, INSTANCE_FLOATS), np.float32)
        self.batches: list[Batch] = []
        self.batch_slots: list[np.ndarray] = []  # entity slots of each batch's rows, for picking and tests
        self.instances_per_lod = [0] * MAX_LOD_LEVELS

    def __call__(self, frame) -> None:
        frame.batches = self.build(frame.visibility.drawn)

    def pack(self, slots: np.ndarray, out: np.ndarray) -> None:
        """Write the instance rows of ``slots`` into ``out`` (len(slots), INSTANCE_FLOATS)."""
        w = self.world
        tr, bd, rd, dt = w["transform"], w["bounds"], w["renderable"], w["datatex"]
        wb = w["world_bounds"]
        out[:, 0] = wb["cx"][slots]
        out[:, 1] = wb["cy"][slots]
        out[:, 2] = wb["cz"][slots]
        out[:, 3:6] = (bd["local_max"][slots] - bd["local_min"][slots]) * tr["scale"][slots]
        out[:, 6:10] = tr["rotation"][slots]
        out[:, 10:14] = rd["color"][slots]
        out[:, 13] *= rd["opacity"][slots]
        has_data = dt.has[slots]
        out[:, 14:18] = np.where(has_data[:, None], dt["region"][slots], 0)
        out[:, 18:20] = dt["value_range"][slots]
        out[:, 20] = dt["colormap"][slots]
        out[:, 21] = rd["flags"][slots]

    def build(self, drawn: np.ndarray) -> list[Batch]:
        w = self.world
        n = len(drawn)
        if n > len(self._packed):
            capacity = len(self._packed)
            while capacity < n:
                capacity *= 2
            self._packed = np.empty((capacity, INSTANCE_FLOATS), np.float32)
        rd = w["renderable"]
        lod = w["lod"]["level"][drawn].astype(np.int64)
        mesh = rd["mesh"][drawn]
        lod = np.minimum(np.where(w["lod"].has[drawn], lod, 0), _COARSEST_LOD[mesh])
        keys = batch_keys(mesh, rd["material"][drawn], lod)
        batches, batch_slots = [], []
        per_lod = [0] * MAX_LOD_LEVELS
        start = 0
        for key in np.flatnonzero(np.bincount(keys)) if n else ():
            members = drawn[keys == key]
            view = self._packed[start: start + len(members)]
            self.pack(members, view)
            mesh, material, level = split_key(key)
            batches.append(Batch(mesh=mesh, material=material, lod=level, instances=view))
            batch_slots.append(members)
            per_lod[level] += len(members)
            start += len(members)
        self.batches = batches
        self.batch_slots = batch_slots
        self.instances_per_lod = per_lod
        return batches
