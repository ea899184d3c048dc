"""Small 3D maths in numpy: quaternions, view/projection matrices and frustum planes.

Conventions: right-handed world, y up; a camera looks down its local -z; clip space is
OpenGL's (depth -1..1). Matrices are float64 (4, 4) for column vectors (``M @ v``); upload
them to GL as ``M.T.astype('f4')`` (GL reads column-major). Quaternions are (x, y, z, w).
"""
from __future__ import annotations

import math

import numpy as np

IDENTITY_QUAT = np.array([0.0, 0.0, 0.0, 1.0])


def normalize(v):
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.where(n > 0, v / np.where(n > 0, n, 1), v)


def quat_mul(a, b):
    ax, ay, az, aw = np.moveaxis(np.asarray(a, np.float64), -1, 0)
    bx, by, bz, bw = np.moveaxis(np.asarray(b, np.float64), -1, 0)
    return np.stack([
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    ], axis=-1)


def quat_conj(q):
    q = np.asarray(q, np.float64)
    return q * np.array([-1.0, -1.0, -1.0, 1.0])


def quat_from_axis_angle(axis, angle):
    axis = normalize(axis)
    half = np.asarray(angle, np.float64)[..., None] / 2.0
    return np.concatenate([axis * np.sin(half), np.cos(half)], axis=-1)


def quat_rotate(q, v):
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4)."""
    q = np.asarray(q, np.float64)
    v = np.asarray(v, np.float64)
    u, w = q[..., :3], q[..., 3:4]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def quat_to_matrix(q):
    """Rotation matrices (..., 3, 3) from unit quaternions (..., 4)."""
    x, y, z, w = np.moveaxis(np.asarray(q, np.float64), -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def quat_slerp(a, b, t):
    """Spherical interpolation along the shorter arc; t in [0, 1]."""
    a = normalize(a)
    b = normalize(b)
    dot = float(np.dot(a, b))
    if dot < 0.0:
        b, dot = -b, -dot
    if dot > 0.9995:
        return normalize(a + (b - a) * t)
    theta = math.acos(min(1.0, dot))
    s = math.sin(theta)
    return (math.sin((1 - t) * theta) / s) * a + (math.sin(t * theta) / s) * b


def quat_look_rotation(forward, up=(0.0, 1.0, 0.0)):
    """Orientation whose local -z points along ``forward`` with ``up`` as close to local +y as possible."""
    f = normalize(forward)
    up = np.asarray(up, np.float64)
    if abs(float(np.dot(f, normalize(up)))) > 0.999:
        up = np.array([0.0, 0.0, 1.0]) if abs(f[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    right = normalize(np.cross(f, up))
    true_up = np.cross(right, f)
    m = np.stack([right, true_up, -f], axis=1)  # columns are the local axes in world space
    return matrix_to_quat(m)


def matrix_to_quat(m):
    m = np.asarray(m, np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    return normalize(np.array(q))


def perspective(fov_y_deg: float, aspect: float, near: float, far: float) -> np.ndarray:
    f = 1.0 / math.tan(math.radians(fov_y_deg) / 2.0)
    m = np.zeros((4, 4))
    m[0, 0] = f / aspect
    m[1, 1] = f
    m[2, 2] = (far + near) / (near - far)
    m[2, 3] = 2.0 * far * near / (near - far)
    m[3, 2] = -1.0
    return m


def view_matrix(position, orientation) -> np.ndarray:
    """World -> view transform of a camera at ``position`` with orientation quaternion."""
    r = quat_to_matrix(orientation)
    m = np.eye(4)
    m[:3, :3] = r.T
    m[:3, 3] = -r.T @ np.asarray(position, np.float64)
    return m


def frustum_planes(view_proj: np.ndarray) -> np.ndarray:
    """Six inward-facing planes (a, b, c, d), normalised so a*x + b*y + c*z + d is a distance.

    Order: left, right, bottom, top, near, far (Gribb & Hartmann extraction).
    """
    m = np.asarray(view_proj, np.float64)
    rows = [m[3] + m[0], m[3] - m[0], m[3] + m[1], m[3] - m[1], m[3] + m[2], m[3] - m[2]]
    planes = np.array(rows)
    planes /= np.linalg.norm(planes[:, :3], axis=1, keepdims=True)
    return planes
