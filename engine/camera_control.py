"""Camera navigation: fly and orbit controllers, eased transitions between poses, box framing, and the rig.

Controllers read an `Actions` snapshot (engine.input) and a frame time, and write a `Camera`'s pose.
They keep no copy of the pose: each update starts from the camera as it is, so whatever moved the
camera last (a transition, a bookmark, the other controller) hands over without a jump.
Poses here are roll-free: orientation = yaw about world +y, then pitch about the camera's +x.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from . import math3d
from .camera import Camera
from .input import Actions

WORLD_UP = np.array([0.0, 1.0, 0.0])
_BACK_Z = np.array([0.0, 0.0, -1.0])


class Pose(NamedTuple):
    """Where a camera is and which way it faces; unpacks as ``position, orientation``."""

    position: np.ndarray
    orientation: np.ndarray

    @classmethod
    def of(cls, camera: Camera) -> "Pose":
        return cls(np.array(camera.position, np.float64), np.array(camera.orientation, np.float64))

    def apply(self, camera: Camera) -> None:
        camera.position = np.array(self.position, np.float64)
        camera.orientation = np.array(self.orientation, np.float64)


def yaw_pitch(orientation) -> tuple[float, float]:
    """Yaw (about world +y, 0 = looking down -z) and pitch (up positive) of an orientation, radians."""
    f = math3d.quat_rotate(orientation, _BACK_Z)
    pitch = math.asin(max(-1.0, min(1.0, float(f[1]))))
    if math.hypot(f[0], f[2]) > 1e-9:
        return math.atan2(-f[0], -f[2]), pitch
    # Looking straight up or down the heading is carried by the up vector, which then lies flat.
    u = math3d.quat_rotate(orientation, WORLD_UP)
    s = 1.0 if f[1] > 0 else -1.0
    return math.atan2(s * u[0], s * u[2]), pitch


def orientation_from_yaw_pitch(yaw: float, pitch: float) -> np.ndarray:
    return math3d.quat_mul(math3d.quat_from_axis_angle(WORLD_UP, yaw),
                           math3d.quat_from_axis_angle([1.0, 0.0, 0.0], pitch))


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


# --- controllers ------------------------------------------------------------------------------

class FlyController:
    """WASD flight: move along the view, Q/E down/up along world y, drag to look, Shift to go faster.

    Speed is scaled to the scene: at normal speed the scene's diameter takes ``crossing_seconds``.
    """

    def __init__(self, scene_radius: float = 10.0, *, crossing_seconds: float = 4.0, boost_factor: float = 4.0,
                 look_sensitivity: float = 0.0025, max_pitch_deg: float = 89.0, wheel_step: float = 0.1):
        self.scene_radius = scene_radius
        self.crossing_seconds = crossing_seconds
        self.boost_factor = boost_factor
        self.look_sensitivity = look_sensitivity  # radians per pixel
        self.max_pitch = math.radians(max_pitch_deg)
        self.wheel_step = wheel_step  # fraction of the scene radius per wheel notch

    @property
    def speed(self) -> float:
        """World units per second at normal speed."""
        return 2.0 * self.scene_radius / self.crossing_seconds

    def update(self, camera: Camera, dt: float, actions: Actions) -> bool:
        """Apply one frame of input; returns whether the camera moved."""
        moved = False
        look = actions.look
        if look.any():
            yaw, pitch = yaw_pitch(camera.orientation)
            yaw -= look[0] * self.look_sensitivity
            pitch = _clamp(pitch - look[1] * self.look_sensitivity, -self.max_pitch, self.max_pitch)
            camera.orientation = orientation_from_yaw_pitch(yaw, pitch)
            moved = True

        move = actions.move
        step = self.speed * (self.boost_factor if actions.boost else 1.0) * dt
        delta = (camera.right * move[0] + WORLD_UP * move[1] + camera.forward * move[2]) * step
        delta = delta + camera.forward * (actions.zoom * self.wheel_step * self.scene_radius)
        if delta.any():
            camera.position = np.asarray(camera.position, np.float64) + delta
            moved = True
        return moved


class OrbitController:
    """Turn around a pivot: drag to rotate, wheel to zoom (multiplicative, clamped), middle/Shift-drag to pan.

    Keys and sticks work too: forward/back dolly in and out, left/right and down/up pan.
    The pivot is ``target``; when the camera is not looking at it (something else moved the camera),
    the pivot is first moved onto the view ray, so the view never jumps.
    """

    def __init__(self, target=(0.0, 0.0, 0.0), scene_radius: float = 10.0, *, rotate_sensitivity: float = 0.005,
                 zoom_step: float = 1.15, min_distance: float | None = None, max_distance: float | None = None,
                 key_rate: float = 1.0, boost_factor: float = 3.0, max_pitch_deg: float = 89.0):
        self.target = np.array(target, np.float64)
        self.scene_radius = scene_radius
        self.rotate_sensitivity = rotate_sensitivity  # radians per pixel
        self.zoom_step = zoom_step  # distance factor per wheel notch
        self._min_distance = min_distance
        self._max_distance = max_distance
        self.key_rate = key_rate  # pans and dollies per second, in units of the current distance
        self.boost_factor = boost_factor
        self.max_pitch = math.radians(max_pitch_deg)

    @property
    def min_distance(self) -> float:
        return self._min_distance if self._min_distance is not None else 0.01 * self.scene_radius

    @property
    def max_distance(self) -> float:
        return self._max_distance if self._max_distance is not None else 50.0 * self.scene_radius

    def pivot_on_view(self, camera: Camera, distance: float) -> None:
        """Put the pivot ``distance`` ahead of the camera (how a switch into orbit keeps the view)."""
        self.target = np.asarray(camera.position, np.float64) + camera.forward * max(distance, self.min_distance)

    def _ensure_looking_at_target(self, camera: Camera) -> None:
        f = camera.forward
        to_target = self.target - camera.position
        along = float(np.dot(to_target, f))
        off_axis = float(np.linalg.norm(to_target - f * along))
        if along <= 0.0 or off_axis > 1e-6 * max(1.0, along):
            self.pivot_on_view(camera, along if along > 0.0 else float(np.linalg.norm(to_target)))

    def update(self, camera: Camera, dt: float, actions: Actions) -> bool:
        """Apply one frame of input; returns whether the camera moved."""
        rotate, pan, zoom, move = actions.orbit_rotate, actions.orbit_pan, actions.zoom, actions.move
        if not (rotate.any() or pan.any() or zoom or move.any()):
            return False  # untouched, the camera is left exactly as it is
        self._ensure_looking_at_target(camera)
        distance = float(np.linalg.norm(self.target - camera.position))
        yaw, pitch = yaw_pitch(camera.orientation)

        # Dragging right swings the camera left around the pivot, so the scene turns with the hand.
        yaw -= rotate[0] * self.rotate_sensitivity
        pitch = _clamp(pitch - rotate[1] * self.rotate_sensitivity, -self.max_pitch, self.max_pitch)
        rate = self.key_rate * (self.boost_factor if actions.boost else 1.0) * dt
        notches = zoom + move[2] * rate / math.log(self.zoom_step)  # held keys dolly at ``rate`` e-folds/s
        distance = _clamp(distance * self.zoom_step ** -notches, self.min_distance, self.max_distance)

        orientation = orientation_from_yaw_pitch(yaw, pitch)
        right = math3d.quat_rotate(orientation, [1.0, 0.0, 0.0])
        up = math3d.quat_rotate(orientation, WORLD_UP)
        # A drag moves the pivot so the point under the cursor follows it: world units per pixel at the pivot.
        per_px = 2.0 * distance * math.tan(math.radians(camera.fov_y) / 2.0) / max(1, camera.viewport[1])
        self.target = (self.target + (up * pan[1] - right * pan[0]) * per_px
                       + (right * move[0] + WORLD_UP * move[1]) * distance * rate)
        camera.orientation = orientation
        camera.position = self.target - math3d.quat_rotate(orientation, _BACK_Z) * distance
        return True


# --- transitions ------------------------------------------------------------------------------

def smootherstep(t: float) -> float:
    """Perlin's 6t^5 - 15t^4 + 10t^3: zero velocity and acceleration at both ends."""
    t = _clamp(t, 0.0, 1.0)
    return t * t * t * (t * (6.0 * t - 15.0) + 10.0)


def ease_in_out_cubic(t: float) -> float:
    t = _clamp(t, 0.0, 1.0)
    return 4.0 * t * t * t if t < 0.5 else 1.0 - (2.0 - 2.0 * t) ** 3 / 2.0


EASINGS: dict[str, Callable[[float], float]] = {"smootherstep": smootherstep, "cubic": ease_in_out_cubic}


def quat_angle(a, b) -> float:
    """Rotation angle in radians between two orientations (0..pi)."""
    dot = abs(float(np.dot(math3d.normalize(a), math3d.normalize(b))))
    return 2.0 * math.acos(min(1.0, dot))


def transition_duration(distance: float, angle: float = 0.0, *, length_scale: float = 1.0,
                        min_seconds: float = 0.35, max_seconds: float = 2.5) -> float:
    """Seconds for a move of ``distance`` (and a turn of ``angle`` radians), clamped.

    Logarithmic in distance: a move ten times longer should not take ten times as long, or far
    jumps would drag; ``length_scale`` is the distance that counts as one step (the scene's size).
    """
    raw = min_seconds + 0.45 * math.log2(1.0 + max(0.0, distance) / max(length_scale, 1e-12)) + 0.25 * abs(angle)
    return _clamp(raw, min_seconds, max_seconds)


class CameraTransition:
    """A smooth move from one pose to another: eased straight-line position, slerped orientation.

    The camera never moves away from the target (progress is monotone) and the update that reaches
    the end puts it exactly at the target pose.
    """

    def __init__(self, start: Pose, target: Pose, duration: float | None = None, *, length_scale: float = 1.0,
                 easing: str = "smootherstep"):
        self.start = Pose(np.array(start[0], np.float64), math3d.normalize(start[1]))
        self.target = Pose(np.array(target[0], np.float64), math3d.normalize(target[1]))
        self.distance = float(np.linalg.norm(self.target.position - self.start.position))
        self.angle = quat_angle(self.start.orientation, self.target.orientation)
        self.duration = (transition_duration(self.distance, self.angle, length_scale=length_scale)
                         if duration is None else max(0.0, float(duration)))
        self.ease = EASINGS[easing]
        self.elapsed = 0.0
        self.done = False
        self._progress = 0.0

    @classmethod
    def from_camera(cls, camera: Camera, position, orientation, duration: float | None = None,
                    **kwargs) -> "CameraTransition":
        return cls(Pose.of(camera), Pose(position, orientation), duration, **kwargs)

    @property
    def progress(self) -> float:
        """Eased progress in [0, 1]; never decreases (an easing polynomial can dip by a rounding step)."""
        if self.done:
            return 1.0
        if self.duration <= 0.0:
            return 0.0
        self._progress = max(self._progress, self.ease(self.elapsed / self.duration))
        return self._progress

    def pose_at(self, s: float) -> Pose:
        """The pose at eased progress ``s``."""
        p0, p1 = self.start.position, self.target.position
        return Pose(p0 + (p1 - p0) * s, math3d.normalize(math3d.quat_slerp(self.start.orientation,
                                                                            self.target.orientation, s)))

    def update(self, camera: Camera, dt: float) -> bool:
        """Advance by ``dt`` seconds and pose the camera; returns True once the target is reached."""
        if self.done:
            return True
        self.elapsed += max(0.0, dt)
        if self.elapsed >= self.duration:
            self.done = True
            self.target.apply(camera)  # exactly the target, not an eased approximation of it
            return True
        self.pose_at(self.progress).apply(camera)
        return False


# --- framing ----------------------------------------------------------------------------------

_CORNER_SIGNS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float64)


def frame_bounds(camera: Camera, center, half_extents, margin: float = 1.15, direction=None,
                 up=WORLD_UP) -> Pose:
    """The pose, looking along ``direction`` (default: the camera's current view), that fits a box in view.

    ``margin`` >= 1 is the padding factor: at 1.0 the farthest corner touches the viewport edge.
    The distance is exact for the box's 8 corners (not a bounding sphere), so flat boxes fill the view.
    """
    center = np.asarray(center, np.float64)
    f = math3d.normalize(camera.forward if direction is None else np.asarray(direction, np.float64))
    orientation = math3d.quat_look_rotation(f, up)
    axes = math3d.quat_to_matrix(orientation)  # columns: camera right, up, back in world space
    local = (_CORNER_SIGNS * np.asarray(half_extents, np.float64)) @ axes  # corners in camera axes
    tan_y = math.tan(math.radians(camera.fov_y) / 2.0)
    tan_x = tan_y * camera.aspect
    # With the camera at center - f * D a corner at local (x, y, z) sits at view depth D - z; it is in
    # view when |x| <= tan_x * depth / margin and likewise for y, and in front of the near plane.
    need = np.maximum(margin * np.abs(local[:, 0]) / tan_x, margin * np.abs(local[:, 1]) / tan_y) + local[:, 2]
    distance = max(float(need.max()), float(local[:, 2].max()) + 2.0 * camera.near)
    return Pose(center - f * distance, orientation)


def frame_boxes(camera: Camera, centers, half_extents, direction=None, window=None, margin: float = 1.15,
                up=WORLD_UP) -> Pose:
    """The pose, looking along ``direction`` (default: the camera's current view), from which a set of
    boxes (centers and half extents, shape (N, 3) or (3,)) fills ``window`` as far as ``margin`` allows.

    ``window`` is (x0, y0, x1, y1) pixels of the camera's viewport, top-left origin (the part no panel
    covers; None: the whole viewport). The boxes' projection lies inside the window shrunk by
    ``margin`` about its centre and touches it along one axis: the exact perspective fit of every
    corner, with the camera moved sideways as far as an off-centre window needs, not backed away.
    """
    centers = np.atleast_2d(np.asarray(centers, np.float64))
    half = np.abs(np.atleast_2d(np.asarray(half_extents, np.float64)))
    f = math3d.normalize(camera.forward if direction is None else np.asarray(direction, np.float64))
    orientation = math3d.quat_look_rotation(f, up)
    axes = math3d.quat_to_matrix(orientation)  # columns: camera right, up, back in world space
    origin = (centers.min(axis=0) + centers.max(axis=0)) / 2.0  # keeps the numbers small
    rel = centers - origin
    w, h = camera.viewport
    x0, y0, x1, y1 = (0.0, 0.0, float(w), float(h)) if window is None else (float(v) for v in window)
    # The window in normalised device coordinates (y up), shrunk by the margin about its centre.
    lo_x, hi_x, lo_y, hi_y = 2.0 * x0 / w - 1.0, 2.0 * x1 / w - 1.0, 1.0 - 2.0 * y1 / h, 1.0 - 2.0 * y0 / h
    tan_y = math.tan(math.radians(camera.fov_y) / 2.0)
    tans = (tan_y * camera.aspect, tan_y)
    back = axes[:, 2]

    def extreme(weights, sign: float) -> float:
        # The largest (sign +1) or smallest (sign -1) of weights . corner over every corner of every box:
        # per box it is weights . center +- |weights| . half, so no corner list is built.
        values = rel @ weights + sign * (half @ np.abs(weights))
        return float(values.max() if sign > 0 else values.min())

    # Camera at origin + a*right + b*up + D*back. A corner at camera-axis coordinates (x, y, z) has view
    # depth D - z and is inside along x when lo*tan*(D - z) <= x - a <= hi*tan*(D - z): some a fits
    # every corner once (hi - lo)*tan*D >= max(x + hi*tan*z) - min(x + lo*tan*z); likewise along y.
    spans, distance = [], float(extreme(back, 1.0)) + 2.0 * camera.near
    for k, (lo, hi) in enumerate(((lo_x, hi_x), (lo_y, hi_y))):
        mid, halfwidth = (lo + hi) / 2.0, (hi - lo) / (2.0 * max(margin, 1e-6))
        lo, hi = mid - halfwidth, mid + halfwidth
        top = extreme(axes[:, k] + hi * tans[k] * back, 1.0)
        bottom = extreme(axes[:, k] + lo * tans[k] * back, -1.0)
        spans.append((lo, hi, top, bottom))
        if hi > lo:
            distance = max(distance, (top - bottom) / ((hi - lo) * tans[k]))
    offsets = []
    for k, (lo, hi, top, bottom) in enumerate(spans):
        # The feasible sideways offsets at this distance; the middle one centres the boxes in the window.
        offsets.append(((top - hi * tans[k] * distance) + (bottom - lo * tans[k] * distance)) / 2.0)
    eye = origin + axes[:, 0] * offsets[0] + axes[:, 1] * offsets[1] + back * distance
    return Pose(eye, orientation)


def fit_into_window(pose: Pose, target, camera: Camera, window) -> Pose:
    """``pose`` moved so that what it framed in the whole viewport is framed in ``window`` instead:
    (x0, y0, x1, y1) pixels of the viewport, top-left origin (the part no panel covers). The view
    direction stays; the camera backs away by the ratio of the sizes and pans so ``target`` projects
    to the window's centre."""
    w, h = camera.viewport
    x0, y0, x1, y1 = (float(v) for v in window)
    share = min((x1 - x0) / max(w, 1), (y1 - y0) / max(h, 1))
    if share <= 0.0 or share >= 0.999 and abs((x0 + x1) / 2 - w / 2) < 1 and abs((y0 + y1) / 2 - h / 2) < 1:
        return pose
    axes = math3d.quat_to_matrix(pose.orientation)  # columns: right, up, back
    right, up, back = axes[:, 0], axes[:, 1], axes[:, 2]
    target = np.asarray(target, np.float64)
    depth = max(float(np.dot(target - pose.position, -back)), 2.0 * camera.near) / share
    tan_y = math.tan(math.radians(camera.fov_y) / 2.0)
    tan_x = tan_y * camera.aspect
    cx = (x0 + x1) / w - 1.0  # the window's centre in normalised device coordinates
    cy = 1.0 - (y0 + y1) / h
    eye = target + back * depth - right * (cx * depth * tan_x) - up * (cy * depth * tan_y)
    return Pose(eye, pose.orientation)


# --- the rig ----------------------------------------------------------------------------------

class CameraRig:
    """A camera with its fly and orbit controllers, the current mode, an optional transition and bookmarks.

    ``update(dt, actions)`` handles mode toggling and bookmarks, advances a running transition (any
    steering input cancels it where it stands), and otherwise lets the current controller drive.
    """

    MODES = ("fly", "orbit")

    def __init__(self, camera: Camera, *, scene_center=(0.0, 0.0, 0.0), scene_radius: float = 10.0,
                 mode: str = "orbit"):
        if mode not in self.MODES:
            raise ValueError(f"unknown camera mode {mode!r} (expected one of {self.MODES})")
        self.camera = camera
        self.scene_center = np.array(scene_center, np.float64)
        self.scene_radius = float(scene_radius)
        self.fly = FlyController(scene_radius)
        self.orbit = OrbitController(scene_center, scene_radius)
        self.mode = mode
        self.transition: CameraTransition | None = None
        self.bookmarks: dict[int, Pose] = {}
        # The part of the viewport no panel covers (x0, y0, x1, y1, top-left origin); framing aims there.
        self.window: tuple | None = None

    def set_scene_bounds(self, center, radius: float) -> None:
        """Tell the controllers how big the scene is (speeds and zoom limits follow)."""
        self.scene_center = np.array(center, np.float64)
        self.scene_radius = self.fly.scene_radius = self.orbit.scene_radius = float(radius)

    def set_mode(self, mode: str) -> None:
        if mode not in self.MODES:
            raise ValueError(f"unknown camera mode {mode!r} (expected one of {self.MODES})")
        if mode == "orbit" and self.mode != "orbit":
            # Pivot where the view ray passes the scene centre, so orbiting turns around what is in view.
            along = float(np.dot(self.scene_center - self.camera.position, self.camera.forward))
            self.orbit.pivot_on_view(self.camera, along if along > 0.05 * self.scene_radius else self.scene_radius)
        self.mode = mode

    def toggle_mode(self) -> None:
        self.set_mode("orbit" if self.mode == "fly" else "fly")

    def move_to(self, position, orientation, duration: float | None = None, **kwargs) -> CameraTransition:
        """Start a smooth transition to a pose (replacing any running one)."""
        kwargs.setdefault("length_scale", 0.25 * self.scene_radius)
        self.transition = CameraTransition.from_camera(self.camera, position, orientation, duration, **kwargs)
        return self.transition

    def focus(self, center, half_extents, margin: float = 1.15, direction=None) -> CameraTransition:
        """Fly to frame a box, and make its centre the orbit pivot."""
        pose = self.framed(frame_bounds(self.camera, center, half_extents, margin, direction), center)
        self.orbit.target = np.array(center, np.float64)
        return self.move_to(*pose)

    def framed(self, pose: Pose, target) -> Pose:
        """A pose that frames ``target`` in the whole viewport, made to frame it in the free window."""
        return fit_into_window(pose, target, self.camera, self.window) if self.window is not None else pose

    def save_bookmark(self, slot: int) -> None:
        self.bookmarks[slot] = Pose.of(self.camera)

    def go_to_bookmark(self, slot: int) -> CameraTransition | None:
        pose = self.bookmarks.get(slot)
        return None if pose is None else self.move_to(*pose)

    def update(self, dt: float, actions: Actions) -> None:
        if actions.was_pressed("toggle_mode"):
            self.toggle_mode()
        for name in sorted(actions.pressed):
            kind, _, slot = name.rpartition("_")
            if kind == "bookmark_save" and slot.isdigit():
                self.save_bookmark(int(slot))
            elif kind == "bookmark_go" and slot.isdigit():
                self.go_to_bookmark(int(slot))
        if self.transition is not None:
            if not actions.steers_camera:
                if self.transition.update(self.camera, dt):
                    self.transition = None
                return
            self.transition = None  # the user took the controls: stop where we are
        (self.fly if self.mode == "fly" else self.orbit).update(self.camera, dt, actions)
