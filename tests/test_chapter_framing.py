"""Chapter cameras frame what each step explains: its blocks (the step's ``frame``, else its focus, else its
``block:`` camera) lie inside the part of the view no panel covers and fill it along at least one axis, in
the headless Explorer (the window's path, which `llmviz render --chapter` takes too), in the runner for
every chapter of every model, and in `llmviz render --no-ui --chapter` (no panels: the whole image).

The reference is brute force: the blocks' world boxes, their 8 corners each, through the camera's
view-projection matrix; the blocks under a group are found by walking the layout's group tree."""
import numpy as np
import pytest
from scene_support import live_scene

from llmviz.engine.camera import Camera
from llmviz.scenes.chapters.format import load_chapters, model_names
from llmviz.scenes.chapters.runner import ChapterRunner, scene_layout

FILL = 0.6  # the target: the blocks cover >= 60% of the free window's width or height
SIGNS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)


def subject_rows(layout, step, previous):
    """Rows of the blocks a step explains, by walking each block's group ancestry; a step naming
    nothing (no frame, focus or block camera) keeps the previous step's."""
    names = set(getattr(step, "frame", ()) or step.focus or ((step.camera.block,) if step.camera and step.camera.block else ()))
    if not names:
        return previous
    rows = []
    for i, tensor in enumerate(layout.ids):
        g, hit = int(layout.group[i]), tensor in names
        while g >= 0 and not hit:
            hit = layout.group_ids[g] in names
            g = int(layout.group_parent[g])
        if hit:
            rows.append(i)
    return np.array(rows, int)


def projected_box(pose, viewport, fov_y, layout, rows):
    """(x0, y0, x1, y1) pixels, top-left origin, of the blocks' corners, and whether all are in front."""
    corners = (layout.center[rows][:, None, :] + SIGNS * layout.size[rows][:, None, :] / 2).reshape(-1, 3)
    return projected_points(pose, viewport, fov_y, corners)


def projected_points(pose, viewport, fov_y, points):
    camera = Camera(fov_y=fov_y, viewport=viewport)
    camera.position, camera.orientation = np.asarray(pose[0], float), np.asarray(pose[1], float)
    clip = np.c_[points, np.ones(len(points))] @ camera.view_projection().T
    ndc = clip[:, :2] / clip[:, 3:4]
    w, h = viewport
    x, y = (ndc[:, 0] + 1) / 2 * w, (1 - ndc[:, 1]) / 2 * h
    return (x.min(), y.min(), x.max(), y.max()), bool((clip[:, 3] > 0).all())


def check_framed(box, in_front, window, where):
    x0, y0, x1, y1 = box
    wx0, wy0, wx1, wy1 = window
    assert in_front, where
    assert x0 >= wx0 - 0.5 and x1 <= wx1 + 0.5 and y0 >= wy0 - 0.5 and y1 <= wy1 + 0.5, (where, box, window)
    fill = max((x1 - x0) / (wx1 - wx0), (y1 - y0) / (wy1 - wy0))
    assert fill >= FILL, (where, fill)


def test_frame_boxes_fills_any_window_with_any_boxes_exactly():
    """The engine's framing: every corner inside the window, touching its margin along one axis."""
    from llmviz.engine.camera_control import frame_boxes

    rng = np.random.default_rng(7)
    for _ in range(300):
        viewport = (int(rng.integers(200, 2000)), int(rng.integers(200, 1400)))
        w, h = viewport
        x0, y0 = rng.uniform(0, 0.6 * w), rng.uniform(0, 0.6 * h)
        window = (x0, y0, rng.uniform(x0 + 0.2 * w, w), rng.uniform(y0 + 0.2 * h, h))
        n = int(rng.integers(1, 6))
        centers = rng.normal(size=(n, 3)) * rng.uniform(0.1, 50.0)
        halves = rng.uniform(0.01, 10.0, size=(n, 3))
        margin, fov = rng.uniform(1.0, 1.5), rng.uniform(20.0, 90.0)
        lens = Camera(fov_y=fov, viewport=viewport)
        pose = frame_boxes(lens, centers, halves, rng.normal(size=3), window, margin)
        corners = (centers[:, None, :] + SIGNS * halves[:, None, :]).reshape(-1, 3)
        box, in_front = projected_points(pose, viewport, fov, corners)
        check_framed(box, in_front, window, "random boxes")
        fill = max((box[2] - box[0]) / (window[2] - window[0]), (box[3] - box[1]) / (window[3] - window[1]))
        assert abs(fill * margin - 1.0) < 1e-6


def every_step():
    for chapter in load_chapters(model_names):
        for k in range(len(chapter.steps)):
            yield chapter, k


@pytest.mark.parametrize("viewport, window", [((1280, 720), (270.0, 83.0, 820.0, 676.0)),
                                              ((1920, 1080), (270.0, 83.0, 1460.0, 1036.0)),
                                              ((800, 900), None)])
def test_every_step_of_every_chapter_fills_the_free_window(viewport, window):
    whole = (0.0, 0.0, float(viewport[0]), float(viewport[1]))
    rows, runners = None, {}
    for chapter, k in every_step():
        runner = runners.setdefault(chapter.path, ChapterRunner([chapter], scene_layout(chapter.model), None,
                                                                viewport, window))
        layout = runner.layout_for(chapter.scene_of(k))
        cam = chapter.steps[k].camera
        if layout is None:
            # a scene of its own (chapter 19's retrieval scene): its preset as it stands, moved so that the point it
            # looks at is the free window's centre (the framing of its world: tests/test_chapter_rag_step.py)
            runner.go_to_step_end(k)
            moment = runner.moment()
            (x, y, _, _), in_front = projected_points(moment.camera, viewport, 60.0, moment.look_at[None])
            wx0, wy0, wx1, wy1 = window or whole
            assert in_front and abs(x - (wx0 + wx1) / 2) < 1.0 and abs(y - (wy0 + wy1) / 2) < 1.0, (chapter.number, k)
            rows = None
            continue
        if cam is not None and cam.preset is not None and cam.preset not in layout.presets:
            # a preset the live scene adds around what it builds (vit-tiny's 3D picture): not in this layout,
            # so not checkable here; the vit tests render that step from the live scene
            rows = None
            continue
        rows = subject_rows(layout, chapter.steps[k], rows if k else None)
        assert rows is not None and len(rows), f"chapter {chapter.number} step {k + 1} frames nothing"
        runner.go_to_step_end(k)
        moment = runner.moment()
        box, in_front = projected_box(moment.camera, viewport, 60.0, layout, rows)
        check_framed(box, in_front, window or whole, f"chapter {chapter.number} step {k + 1}")


def test_a_new_window_reframes_the_steps():
    chapter = next(c for c in load_chapters(model_names) if c.number == 10)
    runner = ChapterRunner([chapter], scene_layout(chapter.model), None, (1280, 720))
    layout = runner.layout
    runner.go_to_step_end(2)
    rows = subject_rows(layout, chapter.steps[2], None)
    assert not runner.set_view((1280, 720), None)  # nothing new
    for window in ((270.0, 83.0, 820.0, 676.0), (570.0, 83.0, 820.0, 400.0)):
        assert runner.set_view((1280, 720), window)
        box, in_front = projected_box(runner.moment().camera, (1280, 720), 60.0, layout, rows)
        check_framed(box, in_front, window, window)


@pytest.fixture(scope="module")
def renderer():
    from llmviz.engine.render.headless import HeadlessRenderer

    r = HeadlessRenderer((1280, 720))
    yield r
    r.release()


def settle(ex, frames=40):
    """Frames until the camera's move has ended (the Explorer takes at most 0.1 s a frame); the first
    two let a panel change reach the rig's window and the chapter see it."""
    for n in range(frames):
        ex.frame(0.1)
        ex.renderer.ctx.finish()
        ex.presented()
        if n >= 2 and ex.session.rig.transition is None:
            return
    raise AssertionError("the camera never arrived")


def test_the_explorer_frames_every_step_into_the_part_of_the_view_no_panel_covers(renderer):
    from llmviz.engine.input import load_bindings
    from llmviz.scenes.explorer import Explorer

    renderer.reset_data()
    ex = Explorer(renderer, "nano-gpt", bindings=load_bindings(), adaptive_quality=False)
    try:
        ex.wait_for_values()
        settle(ex)
        ex.toggle_chapters()
        settle(ex)
        s = ex.session
        player, camera = s.chapters, s.engine.camera
        layout = s.model.layout
        x0, y0, x1, y1 = s.rig.window
        assert x0 >= 250 and x1 <= 1280 - 440 and y0 > 60  # right of the contents, left of the chapter text
        rows, checked = None, 0
        for c, chapter in enumerate(player.runner.chapters):
            for k, (start, duration) in enumerate(player.runner.timeline(c)):
                rows = subject_rows(layout, chapter.steps[k], rows if k else None)
                assert rows is not None, f"chapter {chapter.number} step {k + 1} frames nothing"
                if chapter.scene_of(k) != layout.spec_id:
                    continue  # shown on another model (the window opens it: test_chapter_scenes.py)
                player.go_to(c, k)
                player.seek(start + duration - 1e-7)  # the step's end: its camera has arrived
                settle(ex)
                box, in_front = projected_box((camera.position, camera.orientation), camera.viewport,
                                              camera.fov_y, layout, rows)
                check_framed(box, in_front, s.rig.window, f"chapter {chapter.number} step {k + 1}")
                checked += 1
        assert checked >= 30
        # The panels move (the overlay opens on the left): the step is framed again, into the new window.
        ex.overlay.visible = not ex.overlay.visible
        settle(ex)
        assert s.rig.window[0] != x0
        box, in_front = projected_box((camera.position, camera.orientation), camera.viewport, camera.fov_y,
                                      layout, rows)
        check_framed(box, in_front, s.rig.window, "after the overlay moved the panels")
    finally:
        ex.close()


def test_render_chapter_frames_the_step_into_the_whole_image():
    from llmviz.engine.runtime import Engine
    from llmviz.scenes.cli.chapters_cmd import chapter_camera
    from llmviz.scenes.model_paths import preset_camera

    size = (480, 270)
    with live_scene("nano-gpt", size) as (scene, renderer):
        layout = scene.model.layout
        engine = Engine(scene.world, preset_camera(scene.presets["overview"], size, layout), renderer)
        rows = None
        for chapter, k in every_step():
            if chapter.model != "nano-gpt":
                continue
            rows = subject_rows(layout, chapter.steps[k], rows if k else None)
            assert rows is not None, f"chapter {chapter.number} step {k + 1} frames nothing"
            if chapter.scene_of(k) != "nano-gpt":
                continue
            camera = chapter_camera(scene, engine, chapter.number, k + 1)
            box, in_front = projected_box((camera.position, camera.orientation), size, camera.fov_y, layout, rows)
            check_framed(box, in_front, (0.0, 0.0) + size, f"render --chapter {chapter.number} --step {k + 1}")


def test_a_script_that_puts_a_recording_step_on_screen_exits_cleanly():
    """`render --no-ui --chapter 20` starts the recording's replay worker for the step's snapshot; the process must
    end with status 0, not abort with "terminate called" because a worker was still inside torch at exit."""
    import subprocess
    import sys

    script = """
from llmviz.engine.runtime import Engine
from llmviz.scenes.chapters.apply import apply_chapter_moment
from llmviz.scenes.cli.common import headless_renderer
from llmviz.scenes.model_paths import preset_camera
from llmviz.scenes.registry import build_scene

renderer = headless_renderer((320, 180))
scene = build_scene("nano-gpt", renderer)
scene.wait_for_values()
engine = Engine(scene.world, preset_camera(scene.presets["overview"], (320, 180), scene.model.layout), renderer)
apply_chapter_moment(scene, engine, 20, 1)
print("shown")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "shown" in done.stdout, done.stderr[-1500:]
    assert "terminate called" not in done.stderr, done.stderr[-1500:]
