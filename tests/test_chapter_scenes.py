"""A chapter step that shows another model (chapter 9: GPT-2 small, GPT-3) opens it in the window and the
chapter carries on there, at the same step; the next step back on nano-GPT returns to it."""
import time

import pytest


@pytest.fixture(scope="module")
def renderer():
    from llmviz.engine.render.headless import HeadlessRenderer

    r = HeadlessRenderer((1280, 720))
    yield r
    r.release()


def run_until(ex, done, timeout=90.0):
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        ex.frame(1 / 30)
        ex.renderer.ctx.finish()
        ex.presented()
        if done():
            return True
    return False


def test_chapter_nine_switches_scenes_and_comes_back(renderer):
    from llmviz.engine.input import load_bindings
    from llmviz.scenes.explorer import Explorer

    renderer.reset_data()
    ex = Explorer(renderer, "nano-gpt", bindings=load_bindings(), adaptive_quality=False, background_imports=False)
    try:
        ex.wait_for_values()
        mode = ex.session.chapters_mode
        mode.toggle(0, 0)
        runner = mode.player.runner
        chapter = runner.chapter_index(9)
        shows = [runner.scene_of(step, chapter) for step in range(len(runner.chapters[chapter].steps))]
        others = [i for i, name in enumerate(shows) if name != "nano-gpt"]
        assert others, shows  # the chapter does show other models (checked against the chapter file)
        step = others[0]
        mode.player.go_to(chapter, step)
        assert run_until(ex, lambda: ex.session.name == shows[step] and ex.session.chapters is not None)
        player = ex.session.chapters
        assert player.runner is runner and runner.chapter == chapter and runner.step_index == step
        assert run_until(ex, lambda: player.moment is not None and player.moment.step == step)
        back = next(i for i in range(step + 1, len(shows)) if shows[i] == "nano-gpt")
        ex.session.chapters.go_to(chapter, back)
        assert run_until(ex, lambda: ex.session.name == "nano-gpt" and ex.session.chapters is not None)
        assert ex.session.chapters.runner.step_index == back
    finally:
        ex.close()
