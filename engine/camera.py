"""The perspective camera: a pose (position, orientation) plus lens and viewport, and what derives from them."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import math3d


@dataclass
class Camera:
    position: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 10.0]))
    orientation: np.ndarray = field(default_factory=lambda: math3d.IDENTITY_QUAT.copy())
    fov_y: float = 60.0  # degrees
    near: float = 0.1
    far: float = 10000.0
    viewport: tuple[int, int] = (1280, 720)

    @property
    def aspect(self) -> float:
        return self.viewport[0] / max(1, self.viewport[1])

    def view(self) -> np.ndarray:
        return math3d.view_matrix(self.position, self.orientation)

    def projection(self) -> np.ndarray:
        return math3d.perspective(self.fov_y, self.aspect, self.near, self.far)

    def view_projection(self) -> np.ndarray:
        return self.projection() @ self.view()

    def planes(self) -> np.ndarray:
        return math3d.frustum_planes(self.view_projection())

    @property
    def focal_px(self) -> float:
        """Pixels per unit of size at distance 1: projected height = size * focal_px / distance."""
        return self.viewport[1] / (2.0 * math.tan(math.radians(self.fov_y) / 2.0))

    @property
    def forward(self) -> np.ndarray:
        return math3d.quat_rotate(self.orientation, [0.0, 0.0, -1.0])

    @property
    def right(self) -> np.ndarray:
        return math3d.quat_rotate(self.orientation, [1.0, 0.0, 0.0])

    @property
    def up(self) -> np.ndarray:
        return math3d.quat_rotate(self.orientation, [0.0, 1.0, 0.0])

    def look_at(self, target, up=(0.0, 1.0, 0.0)) -> None:
        self.orientation = math3d.quat_look_rotation(np.asarray(target, np.float64) - self.position, up)

    def ray(self, px: float, py: float) -> tuple[np.ndarray, np.ndarray]:
        """World-space ray (origin, unit direction) through pixel (px, py), origin top-left."""
        w, h = self.viewport
        ndc_x = 2.0 * (px + 0.5) / w - 1.0
        ndc_y = 1.0 - 2.0 * (py + 0.5) / h
        tan_half = math.tan(math.radians(self.fov_y) / 2.0)
        local = np.array([ndc_x * tan_half * self.aspect, ndc_y * tan_half, -1.0])
        direction = math3d.normalize(math3d.quat_rotate(self.orientation, local))
        return self.position.astype(np.float64).copy(), direction

    def project(self, points) -> np.ndarray:
        """Pixel coordinates (x right, y down) and view depth of world points, shape (N, 3)."""
        pts = np.atleast_2d(np.asarray(points, np.float64))
        hom = np.c_[pts, np.ones(len(pts))] @ self.view_projection().T
        ndc = hom[:, :3] / hom[:, 3:4]
        w, h = self.viewport
        return np.c_[(ndc[:, 0] + 1) * 0.5 * w, (1 - ndc[:, 1]) * 0.5 * h, hom[:, 3]]
