"""Playing chapters: deterministic timeline, pauses and stepping, a headless play-through of every chapter on the
live nano-GPT, numbers that follow the input, and `render --chapter`'s moment (camera and focus flags)."""
import numpy as np
import pytest
from scene_support import live_scene, play_live_chapter, same_pose

from llmviz.engine.camera_control import Pose
from llmviz.engine.ecs.components import FLAG_DIMMED, FLAG_HIGHLIGHTED
from llmviz.models.registry import load_registry
from llmviz.scenes.chapters.format import load_chapters, model_names, parse_chapter
from llmviz.scenes.chapters.runner import ChapterRunner, step_timeline
from llmviz.scenes.layout import layout_model

SIZE = (320, 180)


@pytest.fixture(scope="module")
def layout():
    return layout_model(load_registry().get("nano-gpt"))


@pytest.fixture(scope="module")
def chapters():
    return [c for c in load_chapters(model_names) if c.model == "nano-gpt"]



def test_timeline_is_deterministic_and_comes_from_the_durations(chapters, layout):
    again = [c for c in load_chapters(model_names) if c.model == "nano-gpt"]
    for a, b in zip(chapters, again):
        assert step_timeline(a) == step_timeline(b)
        starts = [s for s, _ in step_timeline(a)]
        assert starts == list(np.cumsum([0.0] + [s.duration for s in a.steps])[:-1])

    # Playing with different frame times stops at the same pause points at the same times.
    def pauses(dt):
        runner = ChapterRunner(chapters, layout)
        runner.go_to(runner.chapter_index(2))
        runner.play()
        held = []
        for _ in range(10_000):
            runner.update(dt)
            if runner.held is not None:
                held.append((runner.held, round(runner.t, 9)))
                if runner.at_end:
                    break
                runner.press_space()
        return held

    assert pauses(1 / 60) == pauses(0.25) == pauses(0.7)


def test_pause_continue_stepping_and_scrubbing(chapters, layout):
    runner = ChapterRunner(chapters, layout)
    runner.go_to(runner.chapter_index(1))
    runner.play()
    runner.update(100.0)  # one long frame still stops at the first pause point, the end of step 1
    assert (runner.held, runner.t, runner.playing) == (0, 6.0, False)
    assert runner.moment().waiting and runner.moment().step == 0
    runner.update(1.0)
    assert runner.t == 6.0  # held until Space
    runner.press_space()
    runner.update(1.0)
    assert runner.step_index == 1 and runner.t == 7.0
    runner.next_step()
    assert runner.step_index == 2 and runner.t == 12.0
    runner.previous_step()
    assert runner.step_index == 1
    runner.seek(19.5)
    scrubbed = runner.moment()
    runner.seek(3.0)
    runner.seek(19.5)
    again = runner.moment()
    assert scrubbed.step == again.step == 3 and same_pose(scrubbed.camera, again.camera)
    runner.go_to(runner.chapter_index(1), 3)
    runner.next_step()  # past the last step: the next chapter
    assert runner.current.number == 2 and runner.t == 0.0
    runner.previous_chapter()
    assert runner.current.number == 1
    runner.next_chapter()
    runner.previous_step()  # before the first step: the previous chapter's last step
    assert runner.current.number == 1 and runner.step_index == 3


def test_camera_eases_between_step_targets(layout, chapters):
    source = '''title = "c"
[[step]]
text = "a"
duration = 2.0
camera = "preset:overview"
[[step]]
text = "b"
duration = 3.0
move = 2.0
camera = "block:blocks.0.attn.head.1.q"
'''
    runner = ChapterRunner([parse_chapter(source, "c.toml", model_names("nano-gpt"))], layout)
    start, _ = runner.camera_at(0, 0.0)
    end, point = runner.camera_at(1, 2.0)
    mid, _ = runner.camera_at(1, 1.0)
    assert same_pose(runner.camera_at(1, 0.0)[0], start) and same_pose(runner.camera_at(1, 3.0)[0], end)
    assert not same_pose(mid, start) and not same_pose(mid, end)
    assert np.allclose(point, layout.center[layout.index("blocks.0.attn.head.1.q")])
    # The framed block is in the middle of the view (its 8 corners' projected box, brute force).
    from llmviz.engine.camera import Camera

    camera = Camera(viewport=runner.viewport)
    end.apply(camera)
    i = layout.index("blocks.0.attn.head.1.q")
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
    px = camera.project(layout.center[i] + signs * layout.size[i] / 2)
    w, h = runner.viewport
    assert (px[:, 2] > 0).all()
    assert abs((px[:, 0].min() + px[:, 0].max()) / 2 - w / 2) < 0.05 * w
    assert abs((px[:, 1].min() + px[:, 1].max()) / 2 - h / 2) < 0.05 * h


@pytest.fixture(scope="module")
def live():
    with live_scene("nano-gpt", SIZE) as opened:
        yield opened


def test_every_chapter_plays_headless_to_its_final_camera_pose(live):
    from llmviz.scenes.chapters.apply import chapter_runner

    scene, _ = live
    runner = chapter_runner(scene, SIZE)
    finals = []
    for index, chapter in enumerate(runner.chapters):
        runner.go_to(index)
        runner.go_to_step_end(len(chapter.steps) - 1)
        finals.append(runner.moment().camera)
    runner.go_to(0)
    runner.play()
    seen_steps, frames = set(), 0
    while True:
        runner.update(0.2)
        moment = runner.moment()  # renders the text from the live trace: any template error raises here
        for _ in range(3):  # a recording's summary, then its snapshot, computed on their worker
            if moment.text is None and runner.current.recording is not None:
                assert runner.replay(runner.current.recording).wait(240)
                moment = runner.moment()
        frames += 1
        assert moment.text is not None and "{" not in moment.text.text
        for frame in moment.animations:
            assert 0.0 <= frame.progress <= 1.0
        for tensor, shown in runner.animated_values(moment).items():
            assert shown.shape == np.shape(scene.live.session.trace[tensor])
        seen_steps.add((moment.chapter_number, moment.step))
        if runner.at_end:
            assert same_pose(moment.camera, finals[runner.chapter]), f"chapter {moment.chapter_number}"
            if runner.chapter == len(runner.chapters) - 1:
                break
        if moment.waiting:
            runner.press_space()
        assert frames < 20_000
    runner.close()  # a recording's worker
    assert seen_steps == {(c.number, k) for c in runner.chapters for k in range(len(c.steps))}


def test_changing_the_input_changes_the_numbers(live):
    from llmviz.scenes.chapters.apply import chapter_runner

    scene, _ = live
    runner = chapter_runner(scene, SIZE)

    def texts():
        out = []
        for index in (1, 2, 9):  # embedding, layer norm, output
            runner.go_to(index)
            out.append(runner.moment().text.text)
            runner.go_to_step_end(len(runner.current.steps) - 1)
            out.append(runner.moment().text.text)
        return out

    before = texts()
    session = scene.live.session
    original = session.input_text
    try:
        assert session.set_input("AABBCA" if original != "AABBCA" else "CCBBAA") is None
        assert scene.wait_for_values()
        after = texts()
    finally:
        session.set_input(original)
        scene.wait_for_values()
    assert all(isinstance(t, str) for t in after)
    assert sum(a != b for a, b in zip(before, after)) >= 3
    assert texts() == before  # same input, same numbers


def test_apply_chapter_moment_sets_camera_and_focus(live):
    from llmviz.engine.runtime import Engine
    from llmviz.scenes.chapters.apply import apply_chapter_moment, chapter_runner
    from llmviz.scenes.model_paths import preset_camera

    scene, renderer = live
    engine = Engine(scene.world, preset_camera(scene.presets["overview"], SIZE, scene.model.layout), renderer)
    camera = apply_chapter_moment(scene, engine, 2, 4)
    runner = chapter_runner(scene, SIZE)
    runner.go_to(1)
    runner.go_to_step_end(3)
    expected = runner.moment()
    assert camera is engine.camera and same_pose(Pose.of(camera), expected.camera)
    flags = scene.world["renderable"]["flags"]
    slots = scene.model.block_slots
    focused = slots[expected.focus_rows]
    assert len(focused) == 3 and (flags[focused] & FLAG_HIGHLIGHTED).all()
    assert not (flags[focused] & FLAG_DIMMED).any()
    others = np.setdiff1d(slots, focused)
    assert (flags[others] & FLAG_DIMMED).all()
    engine.frame(0.0)
    assert renderer.read_pixels()[:, :, :3].any()
    apply_chapter_moment(scene, engine, 1, 1)  # no focus: nothing dimmed or lit
    assert not (flags[slots] & (FLAG_DIMMED | FLAG_HIGHLIGHTED)).any()
    for bad in ((12, 1), (2, 9), (2, 0)):
        with pytest.raises(ValueError, match=r"--chapter"):
            apply_chapter_moment(scene, engine, *bad)
    with pytest.raises(ValueError, match=r"^--chapter 11 --step 2: chapter 11 shows moe-4, not nano-gpt: "
                                         r"use --scene moe-4$"):
        apply_chapter_moment(scene, engine, 11, 2)
    with pytest.raises(ValueError, match=r"chapter 9 step 6 shows gpt-3-175b, not nano-gpt: use --scene gpt-3-175b$"):
        apply_chapter_moment(scene, engine, 9, 6)


def test_scene_steps_use_their_models_layout_and_spec(chapters, layout):
    from llmviz.engine import math3d

    runner = ChapterRunner(chapters, layout)
    runner.go_to(runner.chapter_index(9))
    stack = runner.current
    scenes = [stack.scene_of(k) for k in range(len(stack.steps))]
    assert scenes == ["nano-gpt"] * 3 + ["gpt-2-small", "gpt-2-small", "gpt-3-175b", "nano-gpt"]
    gpt2, gpt3 = layout_model(load_registry().get("gpt-2-small")), layout_model(load_registry().get("gpt-3-175b"))
    texts = {}
    for k, (model, other) in enumerate(zip(scenes, [layout] * 3 + [gpt2, gpt2, gpt3, layout])):
        runner.go_to(runner.chapter, k)
        start = runner.moment()
        runner.go_to_step_end(k)
        moment = runner.moment()
        assert moment.scene == start.scene == model
        assert moment.text is None if model == "nano-gpt" else moment.text is not None
        if k and scenes[k - 1] != model:  # a cut to another scene: already at the target at the step's start
            assert same_pose(start.camera, moment.camera)
        if stack.steps[k].camera is not None and stack.steps[k].camera.preset:
            # Looking the preset's way (of this model's layout), at the middle of what the step frames there.
            eye, target = other.presets[stack.steps[k].camera.preset]
            forward = math3d.quat_rotate(moment.camera.orientation, [0.0, 0.0, -1.0])
            assert np.allclose(forward, (target - eye) / np.linalg.norm(target - eye), atol=1e-6)
            names = stack.steps[k].frame or stack.steps[k].focus
            rows = [i for i, t in enumerate(other.ids)
                    if any(n == "model" or t == n or t.startswith(n + ".") for n in names)]
            lo = (other.center[rows] - other.size[rows] / 2).min(axis=0)
            hi = (other.center[rows] + other.size[rows] / 2).max(axis=0)
            assert np.allclose(moment.look_at, (lo + hi) / 2, atol=1e-3)
        if moment.focus:
            assert len(moment.focus_rows) and moment.focus_rows.max() < len(other.ids)
        texts[k] = moment.text.text if moment.text else ""
        assert runner.animated_values(moment) == {} or model == "nano-gpt"
    assert "12 blocks, each 768 wide with 12 heads" in texts[3] and "124.4M" in texts[3]
    assert "3,072" in texts[4]
    assert "96 of these blocks, 12,288 wide, 96 heads" in texts[5] and "174.6B" in texts[5]
    # GPT-2's first block, focused, is found in GPT-2's layout (12 heads), not nano-GPT's (3).
    runner.go_to_step_end(4)
    rows = runner.moment().focus_rows
    assert np.array_equal(rows, runner.focus_rows(["blocks.0"], gpt2))
    assert len(rows) > len(runner.focus_rows(["blocks.0"], layout))


def test_render_helper_reports_bad_numbers_as_one_cli_line(live):
    from llmviz.engine.runtime import Engine
    from llmviz.scenes.cli.chapters_cmd import chapter_camera
    from llmviz.scenes.cli.main import CliError
    from llmviz.scenes.model_paths import preset_camera

    scene, renderer = live
    engine = Engine(scene.world, preset_camera(scene.presets["overview"], SIZE, scene.model.layout), renderer)
    assert chapter_camera(scene, engine, 5, 2) is engine.camera
    with pytest.raises(CliError, match=r"^llmviz: --chapter 5 --step 7: chapter 5 has steps 1 to 3$"):
        chapter_camera(scene, engine, 5, 7)


@pytest.fixture(scope="module")
def moe():
    with live_scene("moe-4", SIZE) as opened:
        yield opened


def test_moe_chapter_plays_headless_with_live_routing_numbers(moe):
    from llmviz.scenes.chapters.runner import live_values

    scene, _ = moe
    values = live_values(scene.live)()
    assert values is not None and {"blocks.0.moe.load", "blocks.1.moe.aux_loss", "blocks.0.moe.topk"} <= set(values)
    runner, chapter = play_live_chapter(scene, SIZE, 11)

    def texts():
        out = []
        for k in range(len(chapter.steps)):
            runner.go_to_step_end(k)
            out.append(runner.moment().text.text)
        return out

    before = texts()
    assert "def f(x): return x+1" in before[0] and "4 experts" in before[0]
    live = scene.live
    original = live.text
    try:
        assert live.set_text("The cat sat on the mat. It was warm.") is None
        assert scene.wait_for_values()
        after = texts()
    finally:
        live.set_text(original)
        scene.wait_for_values()
    assert sum(a != b for a, b in zip(before, after)) >= 5
    assert texts() == before


def test_render_helper_puts_the_moe_scene_at_a_chapter_11_step(moe):
    from llmviz.engine.runtime import Engine
    from llmviz.scenes.cli.chapters_cmd import chapter_camera
    from llmviz.scenes.cli.main import CliError
    from llmviz.scenes.model_paths import preset_camera

    scene, renderer = moe
    engine = Engine(scene.world, preset_camera(scene.presets["overview"], SIZE, scene.model.layout), renderer)
    assert chapter_camera(scene, engine, 11, 2) is engine.camera
    flags = scene.world["renderable"]["flags"]
    router = scene.model.block_slots[scene.model.layout.index("blocks.0.moe.router")]
    assert flags[router] & FLAG_HIGHLIGHTED
    engine.frame(0.0)
    assert renderer.read_pixels()[:, :, :3].any()
    with pytest.raises(CliError, match=r"^llmviz: --chapter 2 --step 1: chapter 2 shows nano-gpt, not moe-4: "
                                       r"use --scene nano-gpt$"):
        chapter_camera(scene, engine, 2, 1)
