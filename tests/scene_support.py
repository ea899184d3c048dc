"""Shared by the scene tests: a model scene built headless with its live values in, closed afterwards."""
import contextlib

import pytest


@contextlib.contextmanager
def live_scene(name: str, size):
    """Yield (scene, renderer) for ``name`` on an EGL renderer, once the live model's first values arrived."""
    headless = pytest.importorskip("llmviz.engine.render.headless")
    from llmviz.scenes.registry import build_scene

    renderer = headless.headless_renderer(size)
    scene = build_scene(name, renderer)
    try:
        assert scene.wait_for_values(), scene.live.session.error
        yield scene, renderer
    finally:
        scene.close()
        renderer.release()


def same_pose(a, b) -> bool:
    """Two camera poses equal to rounding."""
    import numpy as np

    return np.allclose(a.position, b.position, atol=1e-9) and np.allclose(a.orientation, b.orientation, atol=1e-9)


def play_live_chapter(scene, size, number: int):
    """Play chapter `number` on a live scene from its start to its end as a viewer would (Space at each
    pause): every moment shows the scene's model with its text rendered (no template left) and animations
    shaped like the trace's tensors, every step is visited, and the end is the last step's camera. A step on a
    scene of its own (chapter 19's retrieval scene) names that scene and animates nothing here: the window opens
    it for the step (tests/test_chapter_scenes.py).
    Returns (runner, chapter) for further checks."""
    import numpy as np

    from llmviz.scenes.chapters.apply import chapter_runner

    runner = chapter_runner(scene, size)
    index = runner.chapter_index(number)        # a model may have several chapters (jamba-tiny: 14 and 19)
    runner.go_to(index)
    chapter = runner.current
    runner.go_to_step_end(len(chapter.steps) - 1)
    final = runner.moment().camera
    runner.go_to(index)
    runner.play()
    seen, frames = set(), 0
    while True:
        runner.update(0.25)
        moment = runner.moment()
        frames += 1
        if moment.scene != scene.name:
            assert moment.scene == chapter.scene_of(moment.step) != chapter.model
            assert runner.animated_values(moment) == {}
        else:
            assert moment.text is not None and "{" not in moment.text.text
        for tensor, shown in runner.animated_values(moment).items():
            assert shown.shape == np.shape(scene.live.trace[tensor])
        seen.add(moment.step)
        if runner.at_end:
            assert same_pose(moment.camera, final)
            break
        if moment.waiting:
            runner.press_space()
        assert frames < 5_000
    assert seen == set(range(len(chapter.steps)))
    return runner, chapter


# A number as a chapter prints it (format_number: U+2212 for the minus, maybe an exponent, maybe in parentheses).
SHOWN_NUMBER = r"(\(?−?\d+(?:\.\d+)?(?:e−?\d+)?\)?)"


def shown_number(text: str) -> float:
    return float(text.strip("()").replace("−", "-"))


def shown_close(shown: float, exact: float) -> bool:
    """`shown` is `exact` printed to 4 significant digits (with float32 slack)."""
    import math

    return abs(shown - exact) <= 0.5 * 10.0 ** (math.floor(math.log10(abs(exact) or 1e-12)) - 3) * 1.01 + 1e-6


def played_chapter_texts(scene, size, number: int) -> list[str]:
    """Chapter `number` played to its end on a live scene (play_live_chapter), then each step's text at its
    end, every template filled in and every reference named."""
    runner, chapter = play_live_chapter(scene, size, number)
    texts = []
    for k in range(len(chapter.steps)):
        runner.go_to_step_end(k)
        text = runner.moment().text
        assert "{" not in text.text and text.references
        texts.append(text.text)
    return texts


@contextlib.contextmanager
def with_text(scene, text: str):
    """The live scene traced on another text inside the block, its own text restored (and traced) after."""
    live = scene.live
    original = live.text
    try:
        assert live.set_text(text) is None and scene.wait_for_values()
        yield
    finally:
        live.set_text(original)
        scene.wait_for_values()


def assert_chapter_is(number: int, model: str, allowed_digits: set[str], names_pattern: str = "", steps=(7, 9)):
    """Chapter `number` is on `model` with a step count in `steps`, and its prose has no number of its own: every
    figure comes from a template, so the prose holds only indices and formula constants (`allowed_digits`);
    `names_pattern` strips proper names that contain digits. Returns the chapter."""
    import re

    from llmviz.scenes.chapters.format import chapter_files, load_chapter, model_names

    path = next(p for p in chapter_files() if p.name.startswith(f"{number}-"))
    chapter = load_chapter(path, model_names)
    assert chapter.number == number and chapter.model == model and steps[0] <= len(chapter.steps) <= steps[1]
    strip = r"\{[^{}]*\}|\[\[[^\]]*\]\]" + (f"|{names_pattern}" if names_pattern else "")
    for step in chapter.steps:
        prose = re.sub(strip, "", step.text)
        assert set(re.findall(r"\d+(?:\.\d+)?", prose)) <= allowed_digits, step.title
    return chapter
