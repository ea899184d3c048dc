"""The engine's own stress scene: N boxes in clusters across a large world, and a camera path through it.

It knows nothing about language models; it exists to prove culling, hierarchical LOD and
instancing at scale. Clusters are hierarchy groups, so a cluster far away is one proxy box.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .camera import Camera
from .ecs.world import World
from .math3d import quat_look_rotation
from .render.backend import MATERIAL_TRANSLUCENT
from .systems.transform import group_bounds

CLUSTER_SIZE = 500  # boxes per cluster
CLUSTER_SPACING = 70.0  # world units between cluster centres
CLUSTER_RADIUS = 22.0
DATA_BLOCK_EVERY = 40  # one box in this many shows a data texture (exercises that path at scale)
DATA_BLOCK_SHAPE = (8, 8)

# Projected-size thresholds in pixels for leaves: detailed box, plain box, impostor quad, then nothing.
LEAF_LOD_PX = (28.0, 5.0, 1.2, 0.0)
PROXY_LOD_PX = (12.0, 2.0, 0.0, 0.0)  # a cluster proxy: plain box, then quad
CLUSTER_EXPAND_PX = 260.0


@dataclass
class StressScene:
    world: World
    groups: np.ndarray  # entity ids of the clusters
    boxes: np.ndarray  # entity ids of the leaves
    extent: float  # half width of the world in x and z
    data_slots: np.ndarray  # slots of the data-texture boxes

    def camera_at(self, t: float, camera: Camera | None = None) -> Camera:
        """Pose on the fly-through path at t in [0, 1): a loop through the clusters, weaving up and down."""
        camera = camera or Camera(far=self.extent * 6, near=0.2)
        position = self.path_point(t)
        tangent = self.path_point(t + 0.01) - position
        tangent /= max(1e-9, float(np.linalg.norm(tangent)))
        # Look ahead along the path, turned partly toward the world's centre so the view stays full.
        inward = -position / max(1e-9, float(np.linalg.norm(position)))
        camera.position = position
        camera.orientation = quat_look_rotation(tangent + 0.6 * inward)
        camera.far = self.extent * 6
        return camera

    def path_point(self, t: float) -> np.ndarray:
        angle = 2.0 * math.pi * t
        r = self.extent * 0.55
        return np.array([
            r * math.cos(angle) + 0.25 * r * math.cos(3 * angle),
            6.0 + 14.0 * math.sin(4.0 * angle),
            r * math.sin(angle) * 0.85,
        ])

    def overview_camera(self, viewport=(1280, 720)) -> Camera:
        camera = Camera(viewport=viewport, far=self.extent * 8, near=1.0)
        camera.position = np.array([0.0, self.extent * 0.9, self.extent * 1.6])
        camera.look_at([0.0, 0.0, 0.0])
        return camera


def _hsv_to_rgb(h, s, v):
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], axis=-1)


def build_stress(n: int, seed: int = 1, renderer=None) -> StressScene:
    """Spawn n boxes in clusters of CLUSTER_SIZE on a square grid; everything in bulk calls.

    With a renderer, every DATA_BLOCK_EVERY-th box gets a small data texture of random values.
    """
    if n < 1:
        raise ValueError(f"stress scene needs at least 1 box, got {n}")
    rng = np.random.default_rng(seed)
    n_clusters = max(1, math.ceil(n / CLUSTER_SIZE))
    side = math.ceil(math.sqrt(n_clusters))
    extent = side * CLUSTER_SPACING / 2.0
    world = World(capacity=n + n_clusters)

    grid = np.arange(n_clusters)
    cluster_centers = np.c_[
        (grid % side - (side - 1) / 2.0) * CLUSTER_SPACING,
        rng.uniform(-8, 8, n_clusters),
        (grid // side - (side - 1) / 2.0) * CLUSTER_SPACING,
    ]
    hues = rng.random(n_clusters)
    cluster_rgb = _hsv_to_rgb(hues, np.full(n_clusters, 0.55), np.full(n_clusters, 0.9))
    # A far cluster is drawn as one translucent box of its colour: it reads as a group, not a solid block.
    groups = world.spawn(
        n_clusters,
        renderable={"color": np.c_[cluster_rgb * 0.9, np.full(n_clusters, 0.45)], "material": MATERIAL_TRANSLUCENT},
        group={"expand_px": CLUSTER_EXPAND_PX},
        lod={"thresholds": PROXY_LOD_PX},
        pickable={},
    )
    world.add_labels(groups, [f"cluster {i}" for i in range(n_clusters)], height=3.0,
                     offset=np.tile([0.0, CLUSTER_RADIUS + 4.0, 0.0], (n_clusters, 1)), billboard=True,
                     min_px=6.0)

    owner = np.arange(n) // CLUSTER_SIZE
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    offsets = direction * (CLUSTER_RADIUS * rng.random((n, 1)) ** (1 / 3))
    positions = cluster_centers[owner] + offsets
    scales = rng.uniform(0.6, 2.6, (n, 3))
    tint = rng.uniform(0.75, 1.15, (n, 1))
    colors = np.c_[np.clip(cluster_rgb[owner] * tint, 0, 1), np.ones(n)]
    boxes = world.spawn(
        n,
        transform={"position": positions, "scale": scales},
        bounds={},
        renderable={"color": colors},
        lod={"thresholds": LEAF_LOD_PX},
        parent={"slot": world.slots(groups)[owner]},
        pickable={},
    )
    data_slots = np.empty(0, np.int64)
    if renderer is not None:
        data_ids = boxes[::DATA_BLOCK_EVERY]
        rows, cols = DATA_BLOCK_SHAPE
        values = rng.normal(size=(len(data_ids), rows, cols)).astype(np.float32)
        regions = np.zeros((len(data_ids), 4), np.int32)
        regions[:, 2:] = (cols, rows)
        # Blocks go side by side in strips: a few uploads instead of one per block.
        per_strip = 128
        for start in range(0, len(data_ids), per_strip):
            strip = values[start: start + per_strip]
            x, y = renderer.alloc_data(rows, cols * len(strip))
            renderer.write_data(x, y, np.concatenate(list(strip), axis=1))
            regions[start: start + len(strip), 0] = x + cols * np.arange(len(strip))
            regions[start: start + len(strip), 1] = y
        world.add("datatex", data_ids, region=regions, value_range=(-2.0, 2.0), colormap=0)
        # Data faces look best square-on: flatten these boxes into tiles facing +z.
        world.set("transform", data_ids, scale=np.c_[np.full(len(data_ids), 2.4), np.full(len(data_ids), 2.4),
                                                     np.full(len(data_ids), 0.3)])
        data_slots = world.slots(data_ids)
    group_bounds(world, world.slots(groups))
    return StressScene(world, groups, boxes, extent, data_slots)
