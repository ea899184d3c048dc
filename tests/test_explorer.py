"""The Explorer controller headless: keys and menu items through the action table, hover, presets,
model switching off the frame thread, chapters, focus, tour, bookmarks, MoE routing — what the
window does, without a window."""
import json
import time

import numpy as np
import pytest

from llmviz.engine.ecs.components import FLAG_DIMMED, FLAG_HIGHLIGHTED


@pytest.fixture(scope="module")
def renderer():
    from llmviz.engine.render.headless import HeadlessRenderer

    r = HeadlessRenderer((1280, 720))
    yield r
    r.release()


def make(renderer, scene, **kwargs):
    from llmviz.engine.input import load_bindings
    from llmviz.scenes.explorer import Explorer

    renderer.reset_data()
    return Explorer(renderer, scene, bindings=load_bindings(), adaptive_quality=False, **kwargs)


def frame(ex, n=1):
    for _ in range(n):
        ex.frame(1 / 60)
        ex.renderer.ctx.finish()
        ex.presented()


def tap(ex, *keys):
    """Keys pressed for exactly one frame, as a quick keypress in the window."""
    for key in keys:
        ex.key_down(key)
    frame(ex)
    for key in reversed(keys):
        ex.key_up(key)
    frame(ex)


def wait_until(ex, condition, timeout=60.0):
    end = time.perf_counter() + timeout
    while not condition() and time.perf_counter() < end:
        frame(ex)
        time.sleep(0.002)
    return condition()


def opened(ex, name):
    """The scene ``name`` is on screen whole (not only its outline)."""
    return lambda: ex.session.name == name and not ex.session.prepared.outline


def cell_center(layout, i, r, c):
    center, size = layout.center[i], layout.size[i]
    return np.array([center[0] - size[0] / 2 + (c + 0.5) * size[0] / layout.cols[i],
                     center[1] + size[1] / 2 - (r + 0.5) * size[1] / layout.rows[i], center[2] + size[2] / 2])


def test_keys_hover_presets_and_switching_without_stalling(renderer):
    ex = make(renderer, "nano-gpt")
    try:
        ex.wait_for_values()
        frame(ex, 2)
        live = ex.session.scene.live
        tap(ex, "N")
        live.session.wait(10)
        assert live.session.text == "CBABBCA"  # N: one greedy letter appended
        tap(ex, "SPACE")
        assert live.session.playing is True  # Space toggled play (no chapter, no MoE: the live model takes it)
        tap(ex, "SPACE")
        ex.start_at_preset("output")
        frame(ex)
        layout = ex.session.model.layout
        i = layout.index("probs")
        px, py, _ = ex.session.engine.camera.project(cell_center(layout, i, 1, 2))[0]
        ex.pointer_moved(px, py)
        frame(ex, 3)
        reading = ex.session.explore.reading
        assert reading.tensor_id == "probs" and reading.indices == "t=1, v=2" and reading.formula.startswith("softmax")
        assert len(ex.session.explore.highlight.marked) == 2  # the logits row it came from, and the hovered cell
        flags = ex.session.engine.world["renderable"]["flags"]
        assert flags[ex.session.model.slot_of("probs")] & FLAG_HIGHLIGHTED  # the hover layer lights the block
        ex.pointer_moved(None)
        tap(ex, "F9")
        assert ex.session.rig.transition is not None  # F9: a smooth move to the output preset
        names = [entry.scene for entry in ex.catalog]
        expected = names[(names.index("nano-gpt") + 1) % len(names)]
        tap(ex, "BRACKETRIGHT")
        # The next model builds on a worker: the frames went on while it was still being built.
        assert ex.loader.busy and not opened(ex, expected)()
        assert wait_until(ex, opened(ex, expected))
        frame(ex)
        assert ex.switch_seconds is not None and ex.notice == ""
        ex.request_scene("gpt-3-175b")
        assert ex.session.name == expected and ex.loader.busy  # still the old scene while the new one builds
        assert not ex.session.prepared.outline
        assert wait_until(ex, opened(ex, "gpt-3-175b"))
        assert not ex.session.explore.highlight.marked
    finally:
        ex.close()


def test_a_scene_that_fails_to_build_leaves_the_old_one_and_names_the_problem(renderer, monkeypatch):
    import llmviz.scenes.registry as registry

    ex = make(renderer, "stress:500")
    try:
        real = registry.build_scene

        def broken(name, *a, **k):
            if name == "gpt-2-small":
                raise RuntimeError("disk on fire")
            return real(name, *a, **k)

        monkeypatch.setattr(registry, "build_scene", broken)
        ex.request_scene("gpt-2-small")
        assert wait_until(ex, lambda: not ex.loader.busy and "disk on fire" in ex.notice)
        assert ex.session.name == "stress:500"
    finally:
        ex.close()


def test_chapters_focus_tour_and_bookmarks_through_the_action_table(renderer, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMVIZ_CONFIG_DIR", str(tmp_path / "config"))
    ex = make(renderer, "nano-gpt")
    try:
        ex.wait_for_values()
        frame(ex, 2)
        s = ex.session

        def where():
            r = s.chapters.runner
            return [r.chapter, r.step_index]

        tap(ex, "C")
        assert s.chapters is not None and where() == [0, 0]
        tap(ex, "PAGEDOWN")
        assert where() == [1, 0]
        tap(ex, "N")
        assert where() == [1, 1]
        tap(ex, "BACKSPACE")
        assert where() == [1, 0]
        ex.input.pad_button("dpdown", True)
        frame(ex)
        ex.input.pad_button("dpdown", False)
        frame(ex)
        assert where() == [2, 0]  # the gamepad's d-pad down: next chapter, as PageDown
        tap(ex, "SPACE")
        assert s.chapters.runner.playing is True
        ex.input.pad_button("start", True)
        frame(ex)
        ex.input.pad_button("start", False)
        frame(ex)
        assert s.chapters.runner.playing is False
        ex.menu_actions.add("next_chapter")  # a menu item: its action, pressed
        frame(ex)
        assert where() == [3, 0]
        tap(ex, "C")
        assert s.chapters is None
        flags = s.engine.world["renderable"]["flags"]
        assert not (flags & FLAG_DIMMED).any()
        s.focus_mode.select(s.focus_mode.tree.node_of("blocks.1.attn.head.1"))
        frame(ex)
        tree = s.focus_mode.tree
        assert [tree.label(x) for x in tree.path(s.focus_mode.node)] == ["model", "Transformer 1", "Self-attention",
                                                                           "3 heads", "head 1"]
        assert int((flags & FLAG_DIMMED).astype(bool).sum()) > 50 and s.rig.transition is not None
        tap(ex, "ESCAPE")
        assert tree.ident(s.focus_mode.node) == "blocks.1.attn.heads"
        assert not ex.quit_requested  # Esc steps out; it never quits
        ex.input.pad_button("b", True)
        frame(ex)
        ex.input.pad_button("b", False)
        frame(ex)
        assert tree.ident(s.focus_mode.node) == "blocks.1.attn"
        tap(ex, "T")
        assert s.explore.tour.playing
        tap(ex, "T")
        assert not s.explore.tour.playing
        tap(ex, "CTRL", "4")
        path = tmp_path / "config" / "bookmarks" / "nano-gpt.json"
        assert sorted(json.loads(path.read_text())["bookmarks"]) == ["4"]
        s.focus_mode.select(None)
        s.go_to_preset("output", duration=0.0)
        frame(ex, 2)
        layout = s.model.layout
        px, py, _ = s.engine.camera.project(layout.center[layout.index("probs")])[0]
        ex.pointer_moved(px, py)
        frame(ex, 2)
        tap(ex, "ENTER")  # select: the block under the pointer
        assert tree.ident(s.focus_mode.node) == "probs"
    finally:
        ex.close()


def test_search_runs_off_the_frame_and_the_tree_closes(renderer):
    ex = make(renderer, "gpt-2-small")
    try:
        frame(ex, 2)
        focus = ex.session.focus_mode
        ex.do("search")
        assert wait_until(ex, lambda: ex.ui_wants_keyboard, timeout=5)  # the search field has the keyboard
        for ch in "head 1":
            ex.type_text(ch)
            frame(ex)
        assert focus.query == "head 1"
        assert wait_until(ex, lambda: focus.query in focus.results)
        brute = focus.tree.search("head 1")
        assert focus.results["head 1"] == brute and len(brute) > 0
        ex.key_pressed("Q")  # the field has the keys: Q (move down) does not reach the table
        frame(ex)
        ex.key_up("Q")
        assert "move_down" not in ex._actions.held and not ex.quit_requested
        ex.key_pressed("Q", ["CTRL"])  # but Ctrl+Q quits from a focused field too
        frame(ex)
        ex.key_up("Q")
        assert ex.quit_requested
        ex.quit_requested = False
        ex.key_pressed("ESCAPE")  # the window passes Esc even while the field has the keys
        frame(ex)
        ex.key_up("ESCAPE")
        frame(ex, 2)
        assert not focus.tree_on and not ex.ui_wants_keyboard  # Esc closed the search and let the keys go
        ex.do("search")
        frame(ex, 2)
        focus.close_search()  # its close button
        frame(ex, 2)
        assert not focus.tree_on
    finally:
        ex.close()


def test_moe_routing_packets_experts_export_and_shared_experts(renderer, tmp_path):
    ex = make(renderer, "moe-4")
    try:
        ex.wait_for_values()
        moe = ex.session.moe_mode
        assert wait_until(ex, lambda: moe.panel is not None and len(moe.packets) > 0)
        assert moe.packets.playing
        tap(ex, "N")
        assert moe.packets.playing is False and moe.token == 1  # N: paused, one token on
        version = moe.routing.stats_version
        moe.routing.set_routing(1, None)
        assert wait_until(ex, lambda: moe.routing.stats_version > version)
        frame(ex, 2)
        assert len(moe.packets) == moe.routing.stats.n_tokens  # top-1: one packet a token
        moe.fly_to_expert(1, 2)
        frame(ex)
        s = ex.session
        assert s.focus_mode.tree.ident(s.focus_mode.node) == "blocks.1.moe.expert.2" and s.rig.transition is not None
        line = moe.export(tmp_path)
        assert "routing.npz" in line and (tmp_path / "routing.csv").read_text().startswith("layer,token,char,rank")
        with np.load(tmp_path / "routing.npz") as data:
            assert data["topk"].shape[-1] == 1
        ex.request_scene("deepseek-v3")
        assert wait_until(ex, opened(ex, "deepseek-v3"))
        ds = ex.session.moe_mode
        ds.wait()
        assert wait_until(ex, lambda: ds.panel is not None and len(ds.packets) > 0)
        from llmviz.scenes.explorer.modes import shared_expert_slots

        shared = shared_expert_slots(ex.session.model)
        flags = ex.session.engine.world["renderable"]["flags"]
        assert len(shared) and (flags[shared] & FLAG_HIGHLIGHTED).all()
    finally:
        ex.close()


def test_the_profiler_counts_presented_frames_not_engine_work(renderer):
    ex = make(renderer, "stress:2000")
    try:
        start = time.perf_counter()
        for _ in range(12):
            ex.frame(1 / 60)
            renderer.ctx.finish()
            time.sleep(0.03)  # a slow display: the user sees ~30 FPS although the work is quick
            ex.presented()
        elapsed = time.perf_counter() - start
        wall_fps = 12 / elapsed
        assert ex.profiler.fps < 1.25 * wall_fps  # what the overlay shows is what reached the screen
        assert ex.profiler.cpu_frame_ms < ex.profiler.wall_frame_ms
        names = set(ex.profiler.system_medians())
        assert {"events", "ui", "views", "picking", "flags", "camera", "render", "present"} - {"views"} <= names
    finally:
        ex.close()


def test_split_views_draw_each_scene_in_its_rectangle(renderer):
    ex = make(renderer, "stress:3000", ui=False)
    try:
        frame(ex)
        full = renderer.read_pixels()
        left = ex.views[0]
        left.rect = (0.0, 0.0, 0.5, 1.0)
        right = ex.add_view("stress:3000", (0.5, 0.0, 0.5, 1.0))
        frame(ex)
        split = renderer.read_pixels()
        assert left.session.engine.camera.viewport == (640, 720) == right.session.engine.camera.viewport
        # Each half shows a whole scene, not the left half of one: the halves differ from the full frame's.
        assert not np.array_equal(split[:, :640], full[:, :640])
        assert np.abs(split[:, :640].astype(int) - split[:, 640:].astype(int)).mean() < 20  # the same scene twice
    finally:
        ex.close()


def test_render_scale_draws_the_same_picture_with_fewer_pixels(renderer):
    ex = make(renderer, "stress:3000", ui=False)
    try:
        frame(ex)
        full = renderer.read_pixels().astype(int)
        renderer.render_scale = 0.5
        frame(ex)
        half = renderer.read_pixels().astype(int)
        renderer.render_scale = 1.0
        assert half.shape == full.shape
        assert np.abs(half - full).mean() < 12 and not np.array_equal(half, full)
    finally:
        renderer.render_scale = 1.0
        ex.close()


def test_a_model_shows_its_outline_first_then_its_blocks_where_the_user_looks(renderer):
    ex = make(renderer, "stress:500")
    try:
        ex.request_scene("gpt-2-small")
        states = []
        end = time.perf_counter() + 60
        moved = False
        while time.perf_counter() < end:
            frame(ex)
            s = ex.session
            state = (s.name, s.prepared.outline)
            if not states or states[-1] != state:
                states.append(state)
            if s.prepared.outline and not moved:
                s.rig.camera.position = s.rig.camera.position + np.array([1.0, 2.0, 3.0])  # the user flies meanwhile
                moved_to = s.rig.camera.position.copy()
                moved = True
            if state == ("gpt-2-small", False):
                break
        assert states == [("stress:500", False), ("gpt-2-small", True), ("gpt-2-small", False)]
        np.testing.assert_allclose(ex.session.engine.camera.position, moved_to)  # the full scene keeps the view
        assert ex.outline_seconds is not None and ex.switch_seconds >= ex.outline_seconds
        outline_boxes = ex.session.model.layout.group_parent == 0
        assert outline_boxes.sum() > 12  # the outline had one box per top-level group: embedding, layers, output
    finally:
        ex.close()


def test_a_chapter_step_that_fails_at_run_time_names_its_file_and_line_and_closes(renderer, monkeypatch):
    import llmviz.scenes.chapters.runner as runner

    ex = make(renderer, "nano-gpt")
    try:
        ex.wait_for_values()
        frame(ex, 2)
        ex.toggle_chapters()
        frame(ex, 2)
        chapter = ex.session.chapters.runner.current

        def broken(*args, **kwargs):
            raise KeyError("embed.tok")  # e.g. a template reading a tensor these values lack

        monkeypatch.setattr(runner, "render_text", broken)
        ex.session.chapters.next_step()
        frame(ex, 2)
        line = chapter.steps[1].line
        assert ex.notice.startswith(f"{chapter.path}:{line}: step 2:") and "embed.tok" in ex.notice
        assert ex.session.chapters is None  # closed; the explorer goes on
        frame(ex)
    finally:
        ex.close()


def test_the_ui_font_is_sampled_nearest_and_draws_the_same_pixels_as_linear(renderer):
    import moderngl

    ex = make(renderer, "nano-gpt")
    try:
        ex.wait_for_values()
        font = ex.ui.renderer._font_texture
        assert font.filter == (moderngl.NEAREST, moderngl.NEAREST)
        frame(ex, 3)
        nearest = renderer.read_pixels()
        font.filter = (moderngl.LINEAR, moderngl.LINEAR)
        frame(ex)
        linear = renderer.read_pixels()
        font.filter = (moderngl.NEAREST, moderngl.NEAREST)
        frame(ex)
        again = renderer.read_pixels()
        ui = np.zeros(nearest.shape[:2], bool)
        ui[:80], ui[-44:] = True, True  # menu, banner and hint bar: text on panels
        # The banner is translucent: where the scene moved behind it (a flow pulse) the pixels differ anyway.
        still = ui & (nearest == again).all(axis=-1)
        assert still.sum() > 0.95 * ui.sum()
        assert np.array_equal(nearest[still], linear[still])
    finally:
        ex.close()


def test_quick_presses_between_two_frames_are_all_acted_on(renderer):
    ex = make(renderer, "nano-gpt")
    try:
        ex.wait_for_values()
        frame(ex)
        ex.toggle_chapters()
        frame(ex)
        chapter = ex.session.chapters.runner.current
        last = len(chapter.steps) - 1
        assert last >= 3
        ex.session.chapters.go_to(0, last)
        frame(ex)
        for _ in range(3):  # three Backspaces typed faster than one frame
            ex.key_down("BACKSPACE")
            ex.key_up("BACKSPACE")
        frame(ex)
        assert ex.session.chapters.runner.step_index == last - 3
    finally:
        ex.close()


def test_focus_and_presets_frame_into_the_part_of_the_view_no_panel_covers(renderer):
    ex = make(renderer, "nano-gpt")
    try:
        ex.wait_for_values()
        frame(ex, 2)
        s = ex.session
        x0, y0, x1, y1 = s.rig.window
        assert y0 > 60 and x1 < 1280 - 300  # below the menu and banner, left of the nano-GPT panel

        def corners_in_window(center, half):
            signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float)
            px = s.engine.camera.project(np.asarray(center) + signs * np.asarray(half))
            return ((px[:, 0] >= x0 - 1) & (px[:, 0] <= x1 + 1) & (px[:, 1] >= y0 - 1) & (px[:, 1] <= y1 + 1)).all()

        tree = s.focus_mode.tree
        s.focus_mode.select(tree.node_of("blocks.1.attn"))
        assert wait_until(ex, lambda: s.rig.transition is None, timeout=10)
        frame(ex)
        assert corners_in_window(*s.focus_mode.focus.box(s.focus_mode.node))
        s.focus_mode.select(None)
        layout = s.model.layout
        i = layout.index("probs")
        s.go_to_preset("output", duration=0.0)
        frame(ex, 2)
        assert corners_in_window(layout.center[i], layout.size[i] / 2)
    finally:
        ex.close()


@pytest.mark.parametrize("scene,profiler", [("nano-gpt", False), ("vit-tiny", False), ("nano-gpt", True),
                                            ("vit-tiny", True), ("whisper-tiny", True)])
def test_in_a_small_window_the_panels_stay_above_the_hint_bar(scene, profiler):
    """At 640 x 400 the hint bar wraps to three lines: the live panel (it scrolls), the legend and the F3 profiler
    (it scrolls too) end above it; with F3 open the live panel stays whole at the right edge."""
    from llmviz.engine.render.headless import HeadlessRenderer
    from llmviz.scenes import panels

    w, h = 640, 400
    small = HeadlessRenderer((w, h))
    ex = make(small, scene)
    try:
        ex.wait_for_values()
        if profiler:
            tap(ex, "F3")
            assert ex.overlay.visible
        frame(ex, 4)
        rects = np.asarray(ex.ui_rects, np.float64).reshape(-1, 4)
        bar = [r for r in rects if r[0] <= 0.5 and r[2] >= w - 0.5 and r[3] >= h - 0.5]
        assert bar, f"no hint bar along the bottom among {rects.tolist()}"
        bar_top = min(r[1] for r in bar)
        assert bar_top < h - panels.hint_bar_height("x", w) - 1, "the hint bar did not wrap at this width"
        intruders = [r.tolist() for r in rects if r[1] < bar_top - 0.5 and r[3] > bar_top + 0.5]
        assert not intruders, f"UI over the hint bar (top {bar_top}): {intruders}"
        # The live side panel whole at the right edge, F3 or not (the rects are clipped to the window).
        side = [r for r in rects if abs(r[2] - (w - 10)) < 2 and r[2] - r[0] >= panels.PANEL_WIDTH - 2]
        assert side, f"no whole side panel at the right edge among {rects.tolist()}"
    finally:
        ex.close()
        small.release()
