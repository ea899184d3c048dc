"""Rendering: the backend-neutral interface and data contracts, and the moderngl backend.

Import the contracts from ``backend`` (Batch, INSTANCE_LAYOUT, GLYPH_LAYOUT, Renderer) and
the mesh ids from ``meshes``; ``gl`` and ``headless`` need a moderngl context to be useful.
"""
from .backend import (GLYPH_FLOATS, GLYPH_LAYOUT, GLYPH_SLICES, INSTANCE_DIMMED, INSTANCE_FLOATS,
                      INSTANCE_HIGHLIGHTED, INSTANCE_LAYOUT, INSTANCE_SLICES, MATERIAL_OPAQUE,
                      MATERIAL_TRANSLUCENT, Batch, Renderer, RenderStats, empty_instances)
from .meshes import LOD_DETAIL, LOD_FLAT, LOD_IMPOSTOR, MESH_BOX, MESH_LOD_TRIANGLES
