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


def chapter_in_explorer(renderer, scene: str, number: int):
    """(explorer, its chapter mode, the runner, the chapter's index, the scene each step shows) with chapter
    `number` open in an explorer on `scene`; the caller closes the explorer."""
    from llmviz.engine.input import load_bindings
    from llmviz.scenes.explorer import Explorer

    renderer.reset_data()
    ex = Explorer(renderer, scene, bindings=load_bindings(), adaptive_quality=False, background_imports=False)
    ex.wait_for_values()
    mode = ex.session.chapters_mode
    mode.toggle(0, 0)
    runner = mode.player.runner
    chapter = runner.chapter_index(number)
    shows = [runner.scene_of(step, chapter) for step in range(len(runner.chapters[chapter].steps))]
    return ex, mode, runner, chapter, shows


def test_chapter_nine_switches_scenes_and_comes_back(renderer):
    ex, mode, runner, chapter, shows = chapter_in_explorer(renderer, "nano-gpt", 9)
    try:
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


def test_chapter_nineteen_opens_the_retrieval_scene_live_and_comes_back(renderer):
    """The hybrid assistant's retrieval step (a scene of its own, no model): the window opens `rag`, the chapter
    carries on there with its text from the scene's answer (no blocks focused: it has none), and the next step
    returns to jamba-tiny, whose live model the runner then reads."""
    ex, mode, runner, chapter, shows = chapter_in_explorer(renderer, "jamba-tiny", 19)
    try:
        step = shows.index("rag")
        mode.player.go_to(chapter, step)
        assert run_until(ex, lambda: ex.session.name == "rag" and ex.session.chapters is not None, 180.0)
        player = ex.session.chapters
        assert ex.session.model is None and player.runner is runner and runner.step_index == step
        # the worker loads the store, MiniLM and the reader: the text waits for them, then reads the answer
        assert run_until(ex, lambda: player.moment is not None and player.moment.text is not None, 180.0)
        answer = ex.session.scene.live.trace.answer.text
        assert f'Its answer, "{answer}"' in player.moment.text.text and player.moment.focus == ()
        back = shows.index("jamba-tiny", step)
        player.next_step()
        assert run_until(ex, lambda: ex.session.name == "jamba-tiny" and ex.session.chapters is not None, 180.0)
        player = ex.session.chapters
        assert player.runner is runner and runner.step_index == back
        assert run_until(ex, lambda: player.moment is not None and player.moment.text is not None, 90.0)
        assert len(player.moment.focus_rows)
    finally:
        ex.close()
