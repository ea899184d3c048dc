"""Adaptive quality: slow frames lower the level step by step, headroom raises it, off pins it."""
from llmviz.engine.quality import LEVELS, AdaptiveQuality


def feed(quality, ms, frames):
    changes = 0
    for _ in range(frames):
        changes += quality.observe(ms)
    return changes


def feed_scene(quality, full_ms, frames):
    """Frames whose cost falls with the level's detail and pixels, as a scene's does."""
    for _ in range(frames):
        level = quality.level
        quality.observe(full_ms * level.detail * level.render_scale)


def test_slow_frames_lower_the_level_until_the_last_and_fast_ones_raise_it_back():
    q = AdaptiveQuality(budget_ms=16.7, window=5, settle_frames=3)
    assert q.level == LEVELS[0]
    feed_scene(q, 400.0, 500)
    assert q.index == len(LEVELS) - 1 and q.level.render_scale < 1.0  # the last step lowers the pixels too
    details = [level.detail for level in LEVELS]
    assert details == sorted(details, reverse=True)
    feed(q, 5.0, 500)
    assert q.index == 0


def test_one_slow_frame_does_not_change_the_level_and_between_levels_it_holds():
    q = AdaptiveQuality(budget_ms=16.7, window=9, settle_frames=0)
    for _ in range(9):
        q.observe(12.0)
    assert q.observe(200.0) is False and q.index == 0  # the median over the window decides
    feed(q, 12.0, 200)  # inside the budget, above the headroom line: stays
    assert q.index == 0


def test_disabled_quality_stays_full():
    q = AdaptiveQuality(enabled=False)
    feed(q, 100.0, 500)
    assert q.level == LEVELS[0]


def test_the_menu_action_turns_adaptive_quality_off_and_back(tmp_path):
    from llmviz.engine.input import load_bindings
    from llmviz.engine.render.headless import HeadlessRenderer
    from llmviz.scenes.explorer import Explorer

    renderer = HeadlessRenderer((320, 240))
    ex = Explorer(renderer, "stress:500", bindings=load_bindings(), ui=False)
    try:
        ex.quality.index = 3
        ex._apply_quality()
        assert ex.session.engine.visibility.detail == LEVELS[3].detail
        ex.do("toggle_quality")
        assert not ex.quality.enabled and ex.session.engine.visibility.detail == 1.0 and renderer.render_scale == 1.0
        ex.do("toggle_quality")
        assert ex.quality.enabled
    finally:
        ex.close()
        renderer.release()


def test_a_step_down_that_does_not_help_is_taken_back_and_not_retried_at_once():
    from llmviz.engine.quality import HOLD_FRAMES

    q = AdaptiveQuality(budget_ms=16.7, window=5, settle_frames=2)
    # Frames cost 25 ms whatever the detail (the time goes to the display): one step down, judged
    # useless, taken back; the level then stays full for the hold.
    feed(q, 25.0, 40)
    assert q.index == 0
    feed(q, 25.0, HOLD_FRAMES // 2)
    assert q.index == 0


def test_a_step_down_that_helps_is_kept():
    q = AdaptiveQuality(budget_ms=16.7, window=5, settle_frames=2)
    feed(q, 25.0, 8)  # slow at full detail
    assert q.index == 1
    feed(q, 15.0, 30)  # much faster at the lower level, inside the budget, above the headroom line
    assert q.index == 1
