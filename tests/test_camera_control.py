"""Camera controllers, transitions, framing and the rig: the promises the explorer's navigation rests on."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from llmviz.engine import math3d
from llmviz.engine.camera import Camera
from llmviz.engine.camera_control import (
    CameraRig, CameraTransition, FlyController, OrbitController, Pose, frame_bounds, orientation_from_yaw_pitch,
    transition_duration, yaw_pitch,
)
from llmviz.engine.input import Actions, InputState, load_bindings

coord = st.floats(-500, 500, allow_nan=False)
vec3 = st.tuples(coord, coord, coord).map(np.array)
quat = (st.tuples(*[st.floats(-1, 1, allow_nan=False)] * 4)
        .filter(lambda q: np.linalg.norm(q) > 0.1).map(lambda q: math3d.normalize(np.array(q))))
direction = st.tuples(*[st.floats(-1, 1, allow_nan=False)] * 3).filter(lambda d: np.linalg.norm(d) > 0.1)
frame_times = st.lists(st.floats(0.0, 0.2, allow_nan=False), min_size=1, max_size=80)


def held(*names, **deltas):
    """An Actions snapshot with ``names`` held and motion ``deltas`` (look=(dx, dy), ...)."""
    return Actions(values={n: 1.0 for n in names}, deltas={k: tuple(v) for k, v in deltas.items()})


def camera_at(position=(0.0, 0.0, 10.0), target=(0.0, 0.0, 0.0)):
    cam = Camera(position=np.array(position, np.float64))
    cam.look_at(target)
    return cam


# --- transitions ------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(vec3, quat, vec3, quat, frame_times)
def test_transition_is_monotone_stays_unit_and_ends_exactly_at_target(p0, q0, p1, q1, dts):
    cam = Camera(position=p0.copy(), orientation=q0.copy())
    transition = CameraTransition.from_camera(cam, p1, q1)
    target = transition.target
    last_distance = np.linalg.norm(p1 - p0)
    last_progress = 0.0
    tolerance = 1e-9 * (1.0 + last_distance)
    for dt in dts + [transition.duration + 1.0]:  # the last step is long enough to finish
        finished = transition.update(cam, dt)
        distance = np.linalg.norm(target.position - cam.position)
        assert distance <= last_distance + tolerance
        assert transition.progress >= last_progress
        assert abs(np.linalg.norm(cam.orientation) - 1.0) < 1e-9
        last_distance, last_progress = distance, transition.progress
        if finished:
            break
    assert transition.done
    assert np.array_equal(cam.position, target.position)
    assert np.array_equal(cam.orientation, target.orientation)
    assert np.array_equal(target.position, p1)


def test_transition_reaches_target_on_the_update_that_crosses_its_duration():
    cam = camera_at()
    transition = CameraTransition.from_camera(cam, [3.0, 1.0, -2.0], orientation_from_yaw_pitch(1.0, 0.3),
                                              duration=1.0)
    assert not transition.update(cam, 0.6)
    assert not np.array_equal(cam.position, transition.target.position)
    assert transition.update(cam, 0.4)
    assert np.array_equal(cam.position, transition.target.position)


def test_transition_midpoint_is_between_and_eased():
    cam = camera_at((0.0, 0.0, 0.0), (0.0, 0.0, -1.0))
    transition = CameraTransition.from_camera(cam, [10.0, 0.0, 0.0], cam.orientation, duration=2.0)
    transition.update(cam, 0.2)  # 10% of the time: eased, so well under 10% of the way
    assert 0.0 < cam.position[0] < 1.0
    transition.update(cam, 0.8)  # halfway in time is halfway in space for a symmetric ease
    assert cam.position[0] == pytest.approx(5.0)


def test_duration_grows_with_distance_and_is_clamped():
    distances = np.geomspace(1e-3, 1e6, 60)
    durations = [transition_duration(d) for d in distances]
    assert all(b >= a for a, b in zip(durations, durations[1:]))
    assert durations[-1] > durations[0]
    assert transition_duration(0.0) == pytest.approx(0.35)
    assert transition_duration(1e9) == pytest.approx(2.5)
    assert all(0.35 <= d <= 2.5 for d in durations)
    assert transition_duration(1.0, angle=math.pi) > transition_duration(1.0)


# --- framing ----------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(vec3, st.tuples(*[st.floats(0.01, 300)] * 3), st.one_of(st.none(), direction),
       st.sampled_from([(1280, 720), (720, 1280), (800, 800), (1920, 400)]), st.floats(20, 100),
       st.floats(1.0, 2.0))
def test_frame_bounds_puts_every_corner_inside_the_viewport(center, half, view_dir, viewport, fov, margin):
    cam = Camera(position=np.array([5.0, 40.0, 300.0]), fov_y=fov, viewport=viewport, far=1e7)
    cam.look_at([0.0, 0.0, 0.0])
    position, orientation = frame_bounds(cam, center, half, margin, view_dir)
    cam.position, cam.orientation = position, orientation
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
    px = cam.project(center + signs * np.array(half))
    w, h = viewport
    eps = 1e-6 * max(w, h)
    assert np.all(px[:, 2] > cam.near)
    assert np.all((px[:, 0] >= -eps) & (px[:, 0] <= w + eps))
    assert np.all((px[:, 1] >= -eps) & (px[:, 1] <= h + eps))


def test_frame_bounds_is_tight_and_keeps_the_viewing_direction():
    cam = camera_at((30.0, 20.0, 40.0), (0.0, 0.0, 0.0))
    forward = cam.forward
    position, orientation = frame_bounds(cam, [1.0, 2.0, 3.0], [4.0, 1.0, 2.0], margin=1.0)
    cam.position, cam.orientation = position, orientation
    assert np.allclose(cam.forward, forward)
    px = cam.project(np.array([1.0, 2.0, 3.0]) + np.array(
        [[x, y, z] for x in (-4, 4) for y in (-1, 1) for z in (-2, 2)]))
    ndc = np.abs(np.c_[px[:, 0] / cam.viewport[0], px[:, 1] / cam.viewport[1]] * 2 - 1)
    assert ndc.max() == pytest.approx(1.0, abs=1e-9)  # some corner touches an edge


# --- fly ----------------------------------------------------------------------------------------

def test_fly_moves_along_forward_and_boost_is_faster():
    cam = camera_at((0.0, 0.0, 0.0), (1.0, 1.0, -2.0))
    fly = FlyController(scene_radius=50.0)
    start, forward = cam.position.copy(), cam.forward.copy()
    fly.update(cam, 0.5, held("move_forward"))
    step = cam.position - start
    assert np.allclose(step / np.linalg.norm(step), forward)
    assert np.linalg.norm(step) == pytest.approx(fly.speed * 0.5)
    assert fly.speed * fly.crossing_seconds == pytest.approx(100.0)  # the scene's diameter in a few seconds

    before = cam.position.copy()
    fly.update(cam, 0.5, held("move_forward", "boost"))
    assert np.linalg.norm(cam.position - before) == pytest.approx(fly.boost_factor * fly.speed * 0.5)


def test_fly_strafes_and_rises_and_diagonals_are_not_faster():
    cam = camera_at((0.0, 0.0, 0.0), (0.0, 0.0, -1.0))
    fly = FlyController(scene_radius=10.0)
    fly.update(cam, 1.0, held("move_right"))
    assert np.allclose(cam.position, [fly.speed, 0.0, 0.0])
    cam.position = np.zeros(3)
    fly.update(cam, 1.0, held("move_up"))
    assert np.allclose(cam.position, [0.0, fly.speed, 0.0])
    cam.position = np.zeros(3)
    fly.update(cam, 1.0, held("move_forward", "move_right"))
    assert np.linalg.norm(cam.position) == pytest.approx(fly.speed)
    cam.position = np.zeros(3)
    fly.update(cam, 1.0, held("move_forward", "move_up"))  # rising is independent of the ground speed
    assert np.allclose(cam.position, [0.0, fly.speed, -fly.speed])


def test_fly_look_turns_and_pitch_is_clamped():
    cam = camera_at((0.0, 0.0, 0.0), (0.0, 0.0, -1.0))
    fly = FlyController()
    fly.update(cam, 0.016, held(look=(100.0, 0.0)))  # mouse right -> turn right
    assert cam.forward[0] > 0.1
    fly.update(cam, 0.016, held(look=(0.0, -1e6)))  # mouse far up -> straight up, but no further
    _, pitch = yaw_pitch(cam.orientation)
    assert pitch == pytest.approx(fly.max_pitch)
    fly.update(cam, 0.016, held(look=(0.0, 1e6)))
    _, pitch = yaw_pitch(cam.orientation)
    assert pitch == pytest.approx(-fly.max_pitch)
    assert abs(cam.right[1]) < 1e-9  # no roll crept in


@given(st.floats(-math.pi + 1e-3, math.pi - 1e-3), st.floats(-1.5, 1.5))
def test_yaw_pitch_round_trip(yaw, pitch):
    assert np.allclose(yaw_pitch(orientation_from_yaw_pitch(yaw, pitch)), (yaw, pitch), atol=1e-9)


# --- orbit --------------------------------------------------------------------------------------

def test_orbit_rotation_keeps_distance_and_faces_target():
    cam = camera_at((0.0, 3.0, 12.0), (1.0, 1.0, 1.0))
    orbit = OrbitController(target=(1.0, 1.0, 1.0), scene_radius=10.0)
    d0 = np.linalg.norm(cam.position - orbit.target)
    for drag in [(40.0, 0.0), (0.0, 25.0), (-300.0, -80.0), (0.0, 1e5)]:
        orbit.update(cam, 0.016, held(orbit_rotate=drag))
        assert np.linalg.norm(cam.position - orbit.target) == pytest.approx(d0)
        assert np.allclose(math3d.normalize(orbit.target - cam.position), cam.forward)
    _, pitch = yaw_pitch(cam.orientation)
    assert abs(pitch) <= orbit.max_pitch + 1e-9


def test_orbit_zoom_is_multiplicative_and_clamped():
    cam = camera_at((0.0, 0.0, 10.0))
    orbit = OrbitController(scene_radius=10.0)
    orbit.update(cam, 0.016, Actions(values={"zoom": 1.0}))
    assert np.linalg.norm(cam.position) == pytest.approx(10.0 / orbit.zoom_step)
    orbit.update(cam, 0.016, Actions(values={"zoom": -2.0}))
    assert np.linalg.norm(cam.position) == pytest.approx(10.0 * orbit.zoom_step)
    orbit.update(cam, 0.016, Actions(values={"zoom": 1000.0}))
    assert np.linalg.norm(cam.position) == pytest.approx(orbit.min_distance)
    orbit.update(cam, 0.016, Actions(values={"zoom": -1000.0}))
    assert np.linalg.norm(cam.position) == pytest.approx(orbit.max_distance)


def test_orbit_pan_moves_target_with_the_view_and_keeps_distance():
    cam = camera_at((0.0, 0.0, 10.0))
    orbit = OrbitController(scene_radius=10.0)
    before = cam.project([[0.0, 0.0, 0.0]])[0]
    orbit.update(cam, 0.016, held(orbit_pan=(50.0, 0.0)))
    assert orbit.target[0] < 0.0 and np.linalg.norm(cam.position - orbit.target) == pytest.approx(10.0)
    after = cam.project([[0.0, 0.0, 0.0]])[0]
    assert after[0] - before[0] == pytest.approx(50.0, rel=1e-6)  # the grabbed point follows the cursor


def test_orbit_without_input_leaves_camera_untouched_and_repivots_when_moved_elsewhere():
    cam = camera_at((4.0, 5.0, 6.0), (0.0, 0.0, 0.0))
    orbit = OrbitController(target=(100.0, 0.0, 0.0))
    pose = Pose.of(cam)
    assert not orbit.update(cam, 0.016, Actions())
    assert np.array_equal(cam.position, pose.position) and np.array_equal(cam.orientation, pose.orientation)
    orbit.update(cam, 0.016, held(orbit_rotate=(1e-3, 0.0)))  # pivot moves onto the view: no jump
    assert np.allclose(cam.position, pose.position, atol=1e-3)


# --- rig ----------------------------------------------------------------------------------------

def test_rig_toggle_keeps_view_continuous():
    cam = camera_at((20.0, 5.0, 30.0), (0.0, 0.0, 0.0))
    rig = CameraRig(cam, scene_radius=10.0, mode="fly")
    rig.update(0.016, held("move_forward"))
    pose = Pose.of(cam)
    rig.update(0.016, Actions(pressed=frozenset({"toggle_mode"})))
    assert rig.mode == "orbit"
    assert np.array_equal(cam.position, pose.position) and np.array_equal(cam.orientation, pose.orientation)
    rig.update(0.016, held(orbit_rotate=(0.01, 0.0)))  # a tiny drag is a tiny move
    assert np.allclose(cam.position, pose.position, atol=1e-2)
    rig.update(0.016, Actions(pressed=frozenset({"toggle_mode"})))
    assert rig.mode == "fly"
    before = Pose.of(cam)
    rig.update(0.016, Actions())
    assert np.array_equal(cam.position, before.position)


def test_rig_focus_transitions_to_framing_pose_and_pivots_there():
    cam = camera_at((0.0, 0.0, 50.0))
    rig = CameraRig(cam, scene_radius=20.0)
    transition = rig.focus([5.0, 0.0, 0.0], [1.0, 2.0, 1.0])
    expected = frame_bounds(camera_at((0.0, 0.0, 50.0)), [5.0, 0.0, 0.0], [1.0, 2.0, 1.0])
    for _ in range(1000):
        rig.update(1 / 60, Actions())
        if rig.transition is None:
            break
    assert transition.done
    assert np.array_equal(cam.position, expected.position)
    assert np.allclose(rig.orbit.target, [5.0, 0.0, 0.0])
    d = np.linalg.norm(cam.position - rig.orbit.target)
    rig.update(0.016, held(orbit_rotate=(200.0, 0.0)))
    assert np.linalg.norm(cam.position - [5.0, 0.0, 0.0]) == pytest.approx(d)


def test_rig_steering_cancels_transition_where_it_stands():
    cam = camera_at((0.0, 0.0, 50.0))
    rig = CameraRig(cam, scene_radius=20.0, mode="fly")
    rig.move_to([100.0, 0.0, 0.0], cam.orientation, duration=2.0)
    rig.update(0.5, Actions())
    mid = cam.position.copy()
    rig.update(0.016, held("move_back"))
    assert rig.transition is None
    assert np.linalg.norm(cam.position - mid) == pytest.approx(rig.fly.speed * 0.016)


def test_rig_bookmarks_save_and_return():
    cam = camera_at((0.0, 0.0, 50.0))
    rig = CameraRig(cam, scene_radius=20.0, mode="fly")
    rig.update(0.016, Actions(pressed=frozenset({"bookmark_save_3"})))
    saved = Pose.of(cam)
    rig.update(1.0, held("move_forward", look=(300.0, 40.0)))
    rig.update(0.016, Actions(pressed=frozenset({"bookmark_go_3", "bookmark_go_4"})))  # 4 is empty: ignored
    while rig.transition is not None:
        rig.update(0.1, Actions())
    assert np.array_equal(cam.position, saved.position) and np.array_equal(cam.orientation, saved.orientation)


# --- keyboard and gamepad drive the camera identically ------------------------------------------

@pytest.mark.parametrize("mode", ["fly", "orbit"])
def test_keyboard_and_gamepad_move_the_camera_the_same_way(mode):
    bindings = load_bindings()

    def run(feed):
        cam = camera_at((3.0, 4.0, 25.0))
        rig = CameraRig(cam, scene_radius=10.0, mode=mode)
        state = InputState(bindings)
        feed(state)
        for _ in range(30):
            rig.update(1 / 60, state.frame(1 / 60))
        return Pose.of(cam)

    keyboard = run(lambda s: (s.key_down("W"), s.key_down("D"), s.key_down("E"), s.key_down("SHIFT")))
    gamepad = run(lambda s: (s.pad_stick("left", 1.0, 1.0), s.pad_trigger("righttrigger", 1.0),
                             s.pad_button("leftstick", True)))
    assert not np.allclose(keyboard.position, [3.0, 4.0, 25.0])
    # A stick pushed into its corner has unit length; W+D together are clipped to unit length too.
    assert np.allclose(keyboard.position, gamepad.position)
    assert np.allclose(keyboard.orientation, gamepad.orientation)


def test_mouse_drag_and_right_stick_look_the_same():
    bindings = load_bindings()
    dt = 1 / 60
    rate = bindings.settings.stick_look_rate

    def run(feed):
        cam = camera_at((3.0, 4.0, 25.0))
        rig = CameraRig(cam, mode="fly")
        state = InputState(bindings)
        for _ in range(20):
            feed(state)
            rig.update(dt, state.frame(dt))
        return Pose.of(cam)

    mouse = run(lambda s: s.mouse_drag("right", rate * dt * 0.5, -rate * dt * 0.25))
    stick_x, stick_y = 0.5, 0.25
    # Undo the radial dead zone so the live stick value is exactly (0.5, 0.25) after rescaling.
    dz = bindings.settings.stick_dead_zone
    length = math.hypot(stick_x, stick_y)
    raw = (length * (1 - dz) + dz) / length

    def stick(s):
        s.pad_stick("right", stick_x * raw, stick_y * raw)

    pad = run(stick)
    assert np.allclose(mouse.orientation, pad.orientation, atol=1e-9)
