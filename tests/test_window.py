"""The real window: opens under a virtual X display, runs frames with the overlay, and saves what it showed."""
import shutil

import numpy as np
import pytest
from window_support import DRIVER, colours, driver_footer, run_driven, window_screenshot

pytestmark = pytest.mark.skipif(shutil.which("xvfb-run") is None,
                                reason="xvfb-run is not installed (make test installs it where apt-get is usable)")

MENU_BAR_RGB = (36, 36, 36)  # ImGui's dark style: MenuBarBg 0.14 grey, opaque


def near(pixels, rgb, tol=40):
    return (np.abs(pixels.astype(int) - np.array(rgb)).max(axis=-1) <= tol)


def test_window_renders_scene_and_overlay(tmp_path):
    image = window_screenshot(tmp_path, "--scene", "stress:5000", "--size", "960x540", "--frames", "20")
    assert image.shape == (540, 960, 3)
    # The profiler panel (ImGui's dark window) sits on the left over the scene; the key hints
    # span the bottom row; the scene itself has many colours.
    assert colours(image) > 50
    bottom = image[-14:, :, :].reshape(-1, 3)
    assert (bottom.max(axis=1) > 180).any()  # hint-bar text


def test_nano_gpt_window_shows_values_menu_banner_and_panel(tmp_path):
    image = window_screenshot(tmp_path, "--scene", "nano-gpt", "--frames", "40")
    assert image.shape == (720, 1280, 3)
    assert colours(image) > 400  # data cells in both colour maps, not flat boxes
    # The menu bar: its empty right part is exactly the menu colour along the whole top row.
    assert near(image[2:16, 700:1270], MENU_BAR_RGB, tol=3).all()
    # The banner's status line is green for a live model (amber for structure only).
    banner = image[24:72, :600]
    assert near(banner, (115, 230, 128)).sum() > 50 and near(banner, (255, 189, 71)).sum() < 20
    # The nano-GPT panel on the right: the winning letter's bar is amber.
    assert near(image[80:420, 880:1280], (242, 178, 64), tol=20).sum() > 1000


def test_large_model_opens_as_structure_only(tmp_path):
    banner = window_screenshot(tmp_path, "--scene", "gpt-3", "--frames", "5")[24:72, :600]
    assert near(banner, (255, 189, 71)).sum() > 50  # "structure only" in amber


# Drives a real window from inside: keys through the input table, the pointer held on a cell,
# a preset key, then the next-model key and a menu-style switch; prints what it saw as JSON.
SCRIPT = DRIVER + r"""
def cell_center(layout, i, r, c):
    center, size = layout.center[i], layout.size[i]
    return np.array([center[0] - size[0] / 2 + (c + 0.5) * size[0] / layout.cols[i],
                     center[1] + size[1] / 2 - (r + 0.5) * size[1] / layout.rows[i], center[2] + size[2] / 2])

class Scripted(Driven):
    def on_render(self, t, dt):
        self.release_taps()
        s, seen = self.scene, self.seen
        if self.n == 2:
            s.wait_for_values()
        elif self.n == 3:
            self.tap("N")
        elif self.n == 5:
            s.live.session.wait(10)
            seen["text_after_step"] = s.live.session.text
            self.tap("SPACE")
        elif self.n == 6:
            seen["playing"] = s.live.session.playing
            self.tap("SPACE")
        elif self.n == 8:
            layout = s.model.layout
            i = layout.index("probs")
            px, py, _ = self.engine.camera.project(cell_center(layout, i, 1, 2))[0]
            self.fixed_pointer = self.mouse = (float(px), float(py))
        elif self.n == 12:
            r = self.reading
            seen["reading"] = [r.tensor_id, r.indices, r.formula[:20]] if r else None
            seen["lit_regions"] = len(self.highlight.marked)
            self.fixed_pointer = self.mouse = None
            self.tap("F9")
        elif self.n == 13:
            seen["preset_transition"] = self.rig.transition is not None
            seen["expected_next"] = self._neighbour(+1)
            self.tap("BRACKETRIGHT")
        elif self.n == 16:
            seen["after_next_model"] = s.name
            seen["switch_seconds"] = self.switch_seconds
            self.request_scene("gpt-3")
        elif self.n == 20:
            seen["after_request"] = s.name
            seen["highlight_after_switch"] = self.highlight is not None and not self.highlight.marked
            print("SEEN " + json.dumps(seen))
            self.wnd.close()
        super().on_render(t, dt)

""" + driver_footer("nano-gpt", view="output")


def test_keys_hover_presets_and_model_switching_in_the_window(tmp_path):
    seen = run_driven(SCRIPT, tmp_path)
    assert seen["text_after_step"] == "CBABBCA"  # N: one greedy letter appended
    assert seen["playing"] is True  # Space toggled play
    assert seen["reading"][:2] == ["probs", "t=1, v=2"] and seen["reading"][2].startswith("softmax")
    assert seen["lit_regions"] == 2  # the logits row it came from, and the hovered cell
    assert seen["preset_transition"] is True  # F9: a smooth move to the output preset
    # ]: the next model in the menu's order (the registry's; models are added to it over time)
    assert seen["expected_next"] != "nano-gpt" and seen["after_next_model"] == seen["expected_next"]
    assert seen["switch_seconds"] is not None and seen["switch_seconds"] < 5.0
    assert seen["after_request"] == "gpt-3-175b" and seen["highlight_after_switch"] is True


# Chapters, focus, tour and bookmarks driven from inside a real window: keys and gamepad buttons through
# the same action table, and a menu item as its action; prints what it saw as JSON.
CHAPTER_SCRIPT = DRIVER + r"""
class Scripted(Driven):
    def where(self):
        r = self.chapters.runner
        return [r.chapter, r.step_index]

    def on_render(self, t, dt):
        self.release_taps()
        seen = self.seen
        n = self.n
        if n == 2:
            self.scene.wait_for_values()
            self.original = np.array(self.scene.live.session.trace["embed.tok"]) if "embed.tok" in self.scene.live.session.trace else None
        elif n == 3:
            self.tap("C")
        elif n == 4:
            seen["open"] = self.chapters is not None and self.where()
            self.tap("PAGEDOWN")
        elif n == 5:
            seen["pagedown"] = self.where()
            self.tap("N")
        elif n == 6:
            seen["n"] = self.where()
            self.tap("BACKSPACE")
        elif n == 7:
            seen["backspace"] = self.where()
            self.pad("dpdown")
        elif n == 8:
            seen["pad_dpdown"] = self.where()
            self.pad("dpup")
        elif n == 9:
            seen["pad_dpup"] = self.where()
            self.tap("SPACE")
        elif n == 10:
            seen["space_playing"] = self.chapters.runner.playing
            self.pad("start")
        elif n == 11:
            seen["pad_start_playing"] = self.chapters.runner.playing
            self.tap("PAGEUP")
        elif n == 12:
            seen["pageup"] = self.where()
            seen["text"] = self.chapters.moment.text is not None
            self.menu_actions.add("next_chapter")  # a menu item: its action, pressed
        elif n == 13:
            seen["menu_next_chapter"] = self.where()
            self.tap("C")
        elif n == 14:
            seen["closed"] = self.chapters is None
            flags = self.engine.world["renderable"]["flags"]
            seen["no_dim_after_close"] = not (flags & FLAG_DIMMED).any()
            self.select_component(self.tree.node_of("blocks.1.attn.head.1"))
        elif n == 15:
            seen["crumbs"] = [self.tree.label(x) for x in self.tree.path(self.focus.node)]
            seen["dimmed"] = int((self.engine.world["renderable"]["flags"] & FLAG_DIMMED).astype(bool).sum())
            seen["focus_moving"] = self.rig.transition is not None
            self.tap("ESCAPE")
        elif n == 16:
            seen["after_esc"] = self.tree.ident(self.focus.node)
            self.pad("b")
        elif n == 17:
            seen["after_pad_b"] = self.tree.ident(self.focus.node)
            self.tap("T")
        elif n == 18:
            seen["tour"] = self.tour.playing
            self.tap("T")
            self.input.key_down("CTRL")
        elif n == 19:
            seen["tour_stopped"] = not self.tour.playing
            self.tap("4")
        elif n == 20:
            self.input.key_up("CTRL")
            path = os.path.join(os.environ["LLMVIZ_CONFIG_DIR"], "bookmarks", "nano-gpt.json")
            seen["bookmark_file"] = sorted(json.load(open(path))["bookmarks"]) if os.path.exists(path) else None
            self.select_component(None)
            self.go_to_preset("output", duration=0.0)
        elif n == 22:
            layout = self.scene.model.layout
            px, py, _ = self.engine.camera.project(layout.center[layout.index("probs")])[0]
            self.fixed_pointer = self.mouse = (float(px), float(py))
        elif n == 24:
            self.tap("ENTER")  # select: the block under the pointer
        elif n == 26:
            seen["clicked"] = self.focus.node and self.tree.ident(self.focus.node)
            print("SEEN " + json.dumps(seen))
            self.wnd.close()
        super().on_render(t, dt)

""" + driver_footer("nano-gpt")


def test_chapter_keys_focus_tour_and_bookmarks_in_the_window(tmp_path):
    import os

    env = {**os.environ, "LLMVIZ_CONFIG_DIR": str(tmp_path / "config")}
    seen = run_driven(CHAPTER_SCRIPT, tmp_path, env=env)
    assert seen["open"] == [0, 0]             # C: the chapters open at chapter 1, step 1
    assert seen["pagedown"] == [1, 0]         # PageDown: next chapter
    assert seen["n"] == [1, 1]                # N: next step
    assert seen["backspace"] == [1, 0]        # Backspace: back a step
    assert seen["pad_dpdown"] == [2, 0]       # the gamepad's d-pad down: next chapter, as PageDown
    assert seen["pad_dpup"] == [1, 0]         # d-pad up: previous chapter, as PageUp
    assert seen["space_playing"] is True and seen["pad_start_playing"] is False  # Space and Start: play/pause
    assert seen["pageup"] == [0, 0] and seen["text"] is True
    assert seen["menu_next_chapter"] == [1, 0]
    assert seen["closed"] and seen["no_dim_after_close"]
    assert seen["crumbs"] == ["model", "Transformer 1", "Self-attention", "3 heads", "head 1"]
    assert seen["dimmed"] > 50 and seen["focus_moving"]
    assert seen["after_esc"] == "blocks.1.attn.heads" and seen["after_pad_b"] == "blocks.1.attn"
    assert seen["tour"] and seen["tour_stopped"]
    assert seen["bookmark_file"] == ["4"]
    assert seen["clicked"] == "probs"  # selecting a block under the pointer focuses that block
