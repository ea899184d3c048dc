"""Mesh families: per LOD level, the geometry and the shader program that draws it.

A family is what an entity's ``renderable.mesh`` names; the LOD system picks the level.
Geometry is plain triangles (position, normal) in a unit volume centred at the origin; the
instance's size, rotation and centre place it. Adding a family is adding data here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MESH_BOX = 0

LOD_DETAIL = 0    # full shading: data cells on the +z/-z faces, crisp edge outline
LOD_FLAT = 1      # same box, flat colour, no data sampling
LOD_IMPOSTOR = 2  # a camera-facing quad in the instance colour


@dataclass(frozen=True)
class MeshLod:
    vertices: np.ndarray          # float32 (n, 6): position xyz, normal xyz; n % 3 == 0
    program: str                  # shader file name in shaders/, without .glsl
    defines: tuple = field(default=())  # ((NAME, value), ...) prepended to the program

    @property
    def triangles(self) -> int:
        return len(self.vertices) // 3


@dataclass(frozen=True)
class MeshFamily:
    name: str
    lods: tuple[MeshLod, ...]


def _box_vertices() -> np.ndarray:
    """36 vertices of the unit cube, counter-clockwise seen from outside, one normal per face."""
    rows = []
    for axis in range(3):
        for sign in (1.0, -1.0):
            normal = np.zeros(3)
            normal[axis] = sign
            # Two in-face axes (u, v) with u x v == normal so the winding faces outwards.
            u = np.zeros(3)
            u[(axis + 1) % 3] = 1.0
            v = np.cross(normal, u)
            corners = [normal * 0.5 + (cu * u + cv * v) * 0.5
                       for cu, cv in ((-1, -1), (1, -1), (1, 1), (-1, -1), (1, 1), (-1, 1))]
            rows.extend(np.r_[c, normal] for c in corners)
    return np.asarray(rows, np.float32)


def _quad_vertices() -> np.ndarray:
    """Two triangles covering [-0.5, 0.5]^2 in the xy plane, facing +z."""
    corners = [(-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)]
    return np.asarray([(x, y, 0.0, 0.0, 0.0, 1.0) for x, y in corners], np.float32)


BOX_VERTICES = _box_vertices()
QUAD_VERTICES = _quad_vertices()

MESH_FAMILIES: dict[int, MeshFamily] = {
    MESH_BOX: MeshFamily("box", (
        MeshLod(BOX_VERTICES, "box", (("DETAIL", 1),)),
        MeshLod(BOX_VERTICES, "box"),
        MeshLod(QUAD_VERTICES, "impostor"),
    )),
}

# Triangles drawn per instance: MESH_LOD_TRIANGLES[mesh][lod].
MESH_LOD_TRIANGLES: dict[int, tuple[int, ...]] = {
    mesh: tuple(lod.triangles for lod in family.lods) for mesh, family in MESH_FAMILIES.items()
}


def mesh_lod(mesh: int, lod: int) -> MeshLod:
    family = MESH_FAMILIES.get(int(mesh))
    if family is None:
        raise KeyError(f"unknown mesh family {mesh}; families: "
                       f"{ {m: f.name for m, f in MESH_FAMILIES.items()} }")
    if not 0 <= int(lod) < len(family.lods):
        raise KeyError(f"mesh family {family.name!r} has LOD levels 0..{len(family.lods) - 1}, not {lod}")
    return family.lods[int(lod)]
