"""The action table: raw events to actions, bindings as data, clear errors for bad files, pyglet adapters."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from llmviz.engine import input as inp
from llmviz.engine.input import (
    ACTIONS, Actions, BindingsError, InputState, PygletControllerHandler, load_bindings, parse_input,
)

REQUIRED = ["move_forward", "move_back", "move_left", "move_right", "move_down", "move_up", "look", "boost",
            "toggle_mode", "orbit_rotate", "orbit_pan", "zoom", "next", "previous", "select", "back",
            "toggle_profiler", "frame_selection", "play_pause",
            *[f"bookmark_save_{i}" for i in range(1, 10)], *[f"bookmark_go_{i}" for i in range(1, 10)]]


@pytest.fixture(scope="module")
def bindings():
    return load_bindings()


@pytest.fixture
def state(bindings):
    return InputState(bindings)


def write(tmp_path, text, name="user.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# --- defaults -----------------------------------------------------------------------------------

def test_default_file_binds_every_required_action(bindings):
    for action in REQUIRED:
        assert action in ACTIONS
        assert bindings.inputs_for(action), f"{action} has no default input"
    assert bindings.inputs_for("toggle_profiler")[0] == "key:F3"
    assert "key:ESCAPE" in bindings.inputs_for("back")
    assert bindings.inputs_for("bookmark_save_4") == ["key:CTRL+4"]
    assert bindings.inputs_for("bookmark_go_4") == ["key:4"]


@pytest.mark.parametrize("key, action", [("F3", "toggle_profiler"), ("F", "frame_selection"), ("ESCAPE", "back"),
                                         ("SPACE", "play_pause"), ("7", "bookmark_go_7"), ("TAB", "toggle_mode")])
def test_keys_press_their_actions(state, key, action):
    state.key_down(key)
    assert state.frame(0.016).pressed == {action}


# --- keyboard -----------------------------------------------------------------------------------

def test_held_key_gives_continuous_move_and_pressed_only_once(state):
    state.key_down("W")
    first = state.frame(0.016)
    assert np.array_equal(first.move, [0.0, 0.0, 1.0]) and first.was_pressed("move_forward")
    state.key_down("W")  # auto-repeat is not a new press
    second = state.frame(0.016)
    assert np.array_equal(second.move, [0.0, 0.0, 1.0]) and not second.pressed
    state.key_up("W")
    assert not state.frame(0.016).move.any()


def test_a_tap_between_frames_still_counts_as_pressed(state):
    state.key_down("SPACE")
    state.key_up("SPACE")
    actions = state.frame(0.016)
    assert actions.was_pressed("play_pause") and not actions.is_held("play_pause")


def test_modifier_chords_pick_the_most_specific_binding(state):
    state.key_down("LCTRL")  # either ctrl key is CTRL
    state.key_down("3")
    assert state.frame(0.016).pressed == {"bookmark_save_3"}
    state.key_up("LCTRL")
    state.key_up("3")
    state.key_down("3")
    assert state.frame(0.016).pressed == {"bookmark_go_3"}
    state.key_down("CTRL")
    state.key_down("W")  # nothing binds CTRL+W, so W still moves
    assert state.frame(0.016).move[2] == 1.0


def test_a_chord_names_its_actions_without_pressing_them(state):
    """What a window asks while a text field has the keys: which actions would this chord press?"""
    assert state.chord_actions("q", ["LCTRL"]) == ["quit"]      # Ctrl+Q, whichever ctrl key
    assert state.chord_actions("Q", []) == ["move_down"]        # Q alone moves down
    assert state.chord_actions("3", ["CTRL", "SHIFT"]) == ["bookmark_save_3"]   # the most specific binding
    assert state.chord_actions("F13", ["CTRL"]) == []
    assert state.frame(0.016).pressed == frozenset()           # asking pressed nothing


def test_shift_is_boost_and_keys_are_case_insensitive(state):
    state.key_down("rshift")
    state.key_down("w")
    actions = state.frame(0.016)
    assert actions.boost and actions.move[2] == 1.0


def test_release_all_forgets_held_inputs(state):
    state.key_down("W")
    state.pad_trigger("righttrigger", 1.0)
    state.release_all()
    assert not state.frame(0.016).held


# --- mouse --------------------------------------------------------------------------------------

def test_drags_route_by_button_and_modifier(state):
    state.mouse_drag("left", 3.0, -2.0)
    actions = state.frame(0.016)
    assert tuple(actions.look) == (3.0, -2.0) and tuple(actions.orbit_rotate) == (3.0, -2.0)
    assert not actions.orbit_pan.any()

    state.key_down("SHIFT")
    state.mouse_drag("left", 5.0, 0.0)
    actions = state.frame(0.016)
    assert tuple(actions.orbit_pan) == (5.0, 0.0) and tuple(actions.look) == (5.0, 0.0)
    assert not actions.orbit_rotate.any()  # shift-drag pans instead of rotating
    state.key_up("SHIFT")

    state.mouse_drag("middle", 1.0, 1.0)
    state.mouse_drag("middle", 1.0, 1.0)  # deltas accumulate within a frame
    assert tuple(state.frame(0.016).orbit_pan) == (2.0, 2.0)
    assert not state.frame(0.016).orbit_pan.any()  # and reset after it


def test_click_selects_but_a_drag_does_not(state):
    state.mouse_button("left", True)
    state.mouse_drag("left", 1.0, 1.0)
    state.mouse_button("left", False)
    assert state.frame(0.016).was_pressed("select")

    state.mouse_button("left", True)
    state.mouse_drag("left", 30.0, 0.0)
    state.mouse_button("left", False)
    assert not state.frame(0.016).was_pressed("select")


def test_wheel_is_zoom(state):
    state.mouse_scroll(1.0)
    state.mouse_scroll(2.0)
    assert state.frame(0.016).zoom == 3.0
    assert state.frame(0.016).zoom == 0.0


# --- gamepad ------------------------------------------------------------------------------------

def test_stick_dead_zone(state, bindings):
    state.pad_stick("left", 0.05, bindings.settings.stick_dead_zone * 0.9)
    assert not state.frame(0.016).move.any()
    state.pad_stick("left", 0.0, 1.0)
    assert state.frame(0.016).move[2] == pytest.approx(1.0)
    state.pad_axis("lefty", -0.6)
    state.pad_axis("leftx", 0.0)
    move = state.frame(0.016).move
    assert -0.6 < move[2] < 0.0 and move[0] == 0.0  # rescaled past the dead zone, still proportional


def test_pad_buttons_triggers_and_half_axes_press_actions(state):
    for button, action in [("a", "select"), ("b", "back"), ("rightshoulder", "next"), ("leftshoulder", "previous"),
                           ("y", "toggle_mode"), ("start", "play_pause")]:
        state.pad_button(button, True)
        assert state.frame(0.016).pressed == {action}
        state.pad_button(button, False)

    state.pad_trigger("lefttrigger", 0.3)
    actions = state.frame(0.016)
    assert 0.0 < actions.value("move_down") < 0.3 and not actions.pressed  # below the press threshold
    state.pad_trigger("lefttrigger", 0.9)
    actions = state.frame(0.016)
    assert actions.was_pressed("move_down") and actions.move[1] < -0.85
    state.pad_trigger("lefttrigger", 0.0)

    state.pad_axis("lefty", 0.8)
    assert state.frame(0.016).was_pressed("move_forward")
    state.pad_axis("lefty", 0.9)
    assert not state.frame(0.016).pressed  # still pushed: no second press


def test_right_stick_is_a_look_rate(state, bindings):
    state.pad_stick("right", 1.0, 0.0)
    assert state.frame(0.5).look == pytest.approx([0.5 * bindings.settings.stick_look_rate, 0.0])
    state.pad_stick("right", 0.0, 1.0)  # pushed up looks up, like moving the mouse up (screen y is down)
    assert state.frame(0.1).look[1] < 0.0


def test_keyboard_and_gamepad_give_the_same_actions(bindings):
    keys, pad = InputState(bindings), InputState(bindings)
    keys.key_down("W")
    keys.key_down("A")
    keys.key_down("E")
    keys.key_down("SHIFT")
    pad.pad_stick("left", -1.0, 1.0)
    pad.pad_trigger("righttrigger", 1.0)
    pad.pad_button("leftstick", True)
    a, b = keys.frame(0.016), pad.frame(0.016)
    assert np.allclose(a.move, b.move) and a.boost and b.boost
    assert a.pressed == b.pressed == {"move_forward", "move_left", "move_up", "boost"}


def test_pyglet_controller_handler_feeds_pad_calls(bindings):
    from pyglet.math import Vec2  # pyglet.math opens no display

    state = InputState(bindings)
    handler = PygletControllerHandler(state)
    handler.on_stick_motion(None, "leftstick", Vec2(0.0, 1.0))
    handler.on_trigger_motion(None, "righttrigger", 1.0)
    handler.on_button_press(None, "a")
    handler.on_dpad_motion(None, Vec2(1.0, 0.0))
    actions = state.frame(0.016)
    assert actions.move == pytest.approx([0.0, 1.0, 1.0])
    assert {"select", "next", "move_forward", "move_up"} <= actions.pressed
    handler.on_button_release(None, "a")
    handler.on_dpad_motion(None, Vec2(0.0, 0.0))
    assert not {"select", "next"} & state.frame(0.016).held


# --- rebinding ----------------------------------------------------------------------------------

def test_user_file_overrides_only_the_actions_it_names(tmp_path):
    path = write(tmp_path, """
        [settings]
        stick_dead_zone = 0.3

        [bindings]
        move_forward = ["key:I", "pad:axis:righty+"]
        toggle_profiler = ["key:CTRL+SHIFT+P"]
        play_pause = []
    """)
    b = load_bindings(path)
    assert b.settings.stick_dead_zone == 0.3 and b.sources[-1] == str(path)
    state = InputState(b)
    state.key_down("W")
    assert not state.frame(0.016).move.any()
    state.key_down("I")
    state.key_down("S")  # untouched actions keep their defaults
    assert not state.frame(0.016).move.any()  # I forward, S back
    state.key_up("S")
    state.key_down("SPACE")
    assert state.frame(0.016).move[2] == 1.0 and not state.frame(0.016).pressed
    state.key_down("CTRL")
    state.key_down("SHIFT")
    state.frame(0.016)
    state.key_down("P")
    assert state.frame(0.016).pressed == {"toggle_profiler"}


def test_runtime_rebinding(bindings):
    state = InputState(bindings.with_inputs("select", ["key:X"]))
    state.key_down("ENTER")
    state.key_down("X")
    assert state.frame(0.016).pressed == {"select"}
    with pytest.raises(BindingsError, match="unknown key name"):
        bindings.with_inputs("select", ["key:NOPE"])


@pytest.mark.parametrize("text, device, name, mods, sign", [
    ("key:ctrl+1", "key", "1", {"CTRL"}, 0),
    ("key:Esc", "key", "ESCAPE", set(), 0),
    ("mouse:shift+left_drag", "mouse", "left_drag", {"SHIFT"}, 0),
    ("pad:axis:lefty-", "pad_axis", "lefty", set(), -1),
    ("pad:trigger:lefttrigger", "pad_trigger", "lefttrigger", set(), 0),
    ("pad:stick:right", "pad_stick", "right", set(), 0),
])
def test_parse_input(text, device, name, mods, sign):
    b = parse_input(text)
    assert (b.device, b.name, set(b.modifiers), b.sign) == (device, name, mods, sign)


# --- malformed files ----------------------------------------------------------------------------

@pytest.mark.parametrize("body, line, fragments", [
    ('[bindings]\nmove_forward = ["key:W"\n', 2, ["invalid TOML", "Unclosed array", "end of the file"]),
    ('[bindings]\nmove_forward = ["key:W"]]\nselect = []\n', 2, ["invalid TOML", "column 25"]),
    ('[bindings]\nmove_forward = ["key:W"]\nfly_faster = ["key:X"]\n', 3, ["unknown action", "fly_faster"]),
    ('[bindings]\nmove_forward = [\n  "key:W",\n  "key:WW",\n]\n', 4, ["unknown key name", "WW", "move_forward"]),
    ('[bindings]\nselect = ["mouse:left_klick"]\n', 2, ["unknown mouse input", "left_klick"]),
    ('[bindings]\nselect = ["joystick:fire"]\n', 2, ["unknown input device", "joystick"]),
    ('[bindings]\nselect = ["pad:button:z"]\n', 2, ["unknown gamepad input", "pad:button:z"]),
    ('[bindings]\nselect = ["key:HYPER+1"]\n', 2, ["unknown modifier", "HYPER"]),
    ('[bindings]\nlook = ["key:W"]\n', 2, ["'look' takes", "key:W"]),
    ('[bindings]\nselect = "key:W"\n', 2, ["must map to a list"]),
    ('[bindngs]\nselect = ["key:W"]\n', 1, ["unknown section", "bindngs"]),
    ('[settings]\nstick_dead_zone = 1.5\n', 2, ["stick_dead_zone", "[0, 1)"]),
    ('[settings]\nstick_deadzone = 0.1\n', 2, ["unknown setting", "stick_deadzone"]),
    ('[settings]\nclick_slop_px = "4"\n', 2, ["must be a number"]),
])
def test_malformed_file_names_file_line_and_problem(tmp_path, body, line, fragments):
    path = write(tmp_path, body, "my_bindings.toml")
    with pytest.raises(BindingsError) as info:
        load_bindings(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    for fragment in fragments:
        assert fragment in message
    assert info.value.line == line and info.value.path == str(path)
    # No tomllib traceback chained onto ours.
    assert info.value.__cause__ is None and (info.value.__context__ is None or info.value.__suppress_context__)


def test_missing_and_undecodable_files(tmp_path):
    with pytest.raises(BindingsError, match="cannot read bindings file") as info:
        load_bindings(tmp_path / "nope.toml")
    assert "nope.toml" in str(info.value)
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[bindings]\nselect = ["key:\xe9"]\n')
    with pytest.raises(BindingsError, match="not UTF-8"):
        load_bindings(path)


def test_defaults_file_errors_are_reported_the_same_way(tmp_path):
    path = write(tmp_path, '[bindings]\nwarp = ["key:W"]\n', "defaults.toml")
    with pytest.raises(BindingsError, match=r"defaults\.toml:2: unknown action 'warp'"):
        load_bindings(defaults_path=path)


def test_actions_can_be_extended_by_the_application(tmp_path):
    path = write(tmp_path, '[bindings]\nscrub = ["mouse:CTRL+wheel"]\n')
    b = load_bindings(path, actions={**ACTIONS, "scrub": inp.AXIS})
    state = InputState(b)
    state.key_down("CTRL")
    state.mouse_scroll(2.0)
    actions = state.frame(0.016)
    assert actions.value("scrub") == 2.0 and actions.zoom == 0.0  # the more specific CTRL binding wins


# --- pyglet names -------------------------------------------------------------------------------

def test_pyglet_key_symbols_translate_without_opening_a_display():
    code = textwrap.dedent("""
        import sys
        from llmviz.engine import input as inp
        key = inp._pyglet_key_module()
        names = [inp.pyglet_key_name(s) for s in (key.W, key.LSHIFT, key.RCTRL, key._1, key.F3, key.ESCAPE,
                                                  key.RETURN, key.SPACE, key.NUM_1, key.LCOMMAND, key.GRAVE)]
        assert names == ["W", "SHIFT", "CTRL", "1", "F3", "ESCAPE", "ENTER", "SPACE", "NUM_1", "SUPER", "GRAVE"], names
        assert all(n in inp.KEY_NAMES for n in names)
        assert "pyglet.window" not in sys.modules
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "DISPLAY": ""})
    assert result.stdout.strip() == "ok", result.stderr


def test_pyglet_key_events_drive_actions(state):
    key = inp._pyglet_key_module()
    state.key_down(inp.pyglet_key_name(key.LCTRL))
    state.key_down(inp.pyglet_key_name(key._5))
    assert state.frame(0.016).pressed == {"bookmark_save_5"}


def test_mouse_button_numbers():
    assert [inp.pyglet_mouse_button(b) for b in (1, 2, 4)] == ["left", "middle", "right"]
    assert [inp.moderngl_window_mouse_button(b) for b in (1, 2, 3)] == ["left", "right", "middle"]


def test_empty_actions_are_inert():
    a = Actions()
    assert not a.move.any() and not a.look.any() and a.zoom == 0.0 and not a.boost and not a.steers_camera
