"""The rebindable action table: raw keyboard, mouse and gamepad events in, one `Actions` snapshot per frame out.

Bindings are data (``assets/bindings.toml``; a user file may override any action). Backends feed
`InputState` through backend-neutral calls (``key_down("W")``, ``pad_stick("left", x, y)``, ...);
the pyglet adapters at the bottom translate pyglet's key symbols and controller events into them.

Conventions: mouse deltas are in pixels with y pointing down (as moderngl-window reports them);
stick y is positive when pushed up (as pyglet's ``on_stick_motion`` reports it); the wheel is
positive when scrolled away from the user (zoom in).
"""
from __future__ import annotations

import importlib.resources
import importlib.util
import math
import re
import sys
import tomllib
from collections import Counter, defaultdict
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from llmviz.common.text import nesting_depth, one_line

# --- the vocabulary ---------------------------------------------------------------------------

BUTTON = "button"  # digital or analog 0..1 value, with a pressed-this-frame edge
AXIS = "axis"      # signed amount per frame (wheel notches)
MOTION = "motion"  # 2D delta per frame in pixels (mouse motion, or a stick integrated over dt)

ACTIONS: dict[str, str] = {
    "move_forward": BUTTON, "move_back": BUTTON, "move_left": BUTTON, "move_right": BUTTON,
    "move_down": BUTTON, "move_up": BUTTON, "boost": BUTTON,
    "look": MOTION, "orbit_rotate": MOTION, "orbit_pan": MOTION, "zoom": AXIS,
    "toggle_mode": BUTTON, "next": BUTTON, "previous": BUTTON, "select": BUTTON, "back": BUTTON,
    "toggle_profiler": BUTTON, "frame_selection": BUTTON, "play_pause": BUTTON,
    "next_model": BUTTON, "previous_model": BUTTON,
    "back_step": BUTTON, "next_chapter": BUTTON, "previous_chapter": BUTTON,
    "toggle_chapters": BUTTON, "toggle_tour": BUTTON, "search": BUTTON, "quit": BUTTON, "toggle_quality": BUTTON,
    "toggle_compare": BUTTON, "toggle_camera_sync": BUTTON, "toggle_heads": BUTTON,
    "toggle_stream": BUTTON,
    **{f"preset_{i}": BUTTON for i in range(1, 6)},
    **{f"bookmark_save_{i}": BUTTON for i in range(1, 10)},
    **{f"bookmark_go_{i}": BUTTON for i in range(1, 10)},
}

MODIFIERS = frozenset({"CTRL", "SHIFT", "ALT", "SUPER"})

KEY_NAMES = frozenset(
    [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    + [str(d) for d in range(10)]
    + [f"F{i}" for i in range(1, 25)]
    + [f"NUM_{d}" for d in range(10)]
    + """SPACE TAB ENTER ESCAPE BACKSPACE DELETE INSERT HOME END PAGEUP PAGEDOWN UP DOWN LEFT RIGHT
         SHIFT CTRL ALT SUPER CAPSLOCK NUMLOCK SCROLLLOCK PRINT PAUSE MENU
         MINUS EQUAL PLUS COMMA PERIOD SLASH BACKSLASH SEMICOLON APOSTROPHE GRAVE BRACKETLEFT BRACKETRIGHT
         NUM_ADD NUM_SUBTRACT NUM_MULTIPLY NUM_DIVIDE NUM_DECIMAL NUM_EQUAL""".split()
)

# Other spellings people write, and the left/right variants backends report, folded to one name:
# a binding says "SHIFT" and either shift key should satisfy it.
_KEY_ALIASES = {
    "ESC": "ESCAPE", "RETURN": "ENTER", "NUM_ENTER": "ENTER", "CONTROL": "CTRL",
    "LCTRL": "CTRL", "RCTRL": "CTRL", "LSHIFT": "SHIFT", "RSHIFT": "SHIFT",
    "LALT": "ALT", "RALT": "ALT", "OPTION": "ALT", "LOPTION": "ALT", "ROPTION": "ALT",
    "META": "SUPER", "LMETA": "SUPER", "RMETA": "SUPER", "CMD": "SUPER", "COMMAND": "SUPER",
    "LCOMMAND": "SUPER", "RCOMMAND": "SUPER", "WINDOWS": "SUPER", "LWINDOWS": "SUPER", "RWINDOWS": "SUPER",
    "PGUP": "PAGEUP", "PGDN": "PAGEDOWN", "DEL": "DELETE", "QUOTELEFT": "GRAVE",
}

MOUSE_BUTTONS = ("left", "right", "middle")
MOUSE_INPUTS: dict[str, str] = {
    **{b: BUTTON for b in MOUSE_BUTTONS},
    **{f"{b}_click": BUTTON for b in MOUSE_BUTTONS},
    **{f"{b}_drag": MOTION for b in MOUSE_BUTTONS},
    "move": MOTION, "wheel": AXIS, "wheel_up": BUTTON, "wheel_down": BUTTON,
}
PAD_BUTTONS = frozenset({"a", "b", "x", "y", "back", "start", "guide", "leftshoulder", "rightshoulder",
                         "leftstick", "rightstick", "dpup", "dpdown", "dpleft", "dpright"})
PAD_AXES = {"leftx": ("left", 0), "lefty": ("left", 1), "rightx": ("right", 0), "righty": ("right", 1)}
PAD_TRIGGERS = frozenset({"lefttrigger", "righttrigger"})
PAD_STICKS = ("left", "right")


def canonical_key_name(name: str) -> str:
    """Our name for a key, from any accepted spelling (case-insensitive; pyglet's ``_1`` is ``1``)."""
    upper = name.strip().upper()
    if len(upper) == 2 and upper[0] == "_" and upper[1].isdigit():
        return upper[1]
    return _KEY_ALIASES.get(upper, upper)


# --- bindings: parsing and validation --------------------------------------------------------

MAX_BINDINGS_BYTES = 1 << 20  # the shipped table is 3 KB
MAX_BINDINGS_NESTING = 8      # a bindings file needs 2 (a table of lists)


class BindingsError(ValueError):
    """A bindings file that cannot be used; the message names the file, the line when known, and the problem."""

    def __init__(self, path, problem: str, line: int | None = None):
        self.path, self.problem, self.line = str(path), one_line(problem), line
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(one_line(f"{where}: {self.problem}"))


@dataclass(frozen=True)
class InputBinding:
    """One parsed input name such as ``key:CTRL+1``, ``mouse:SHIFT+left_drag`` or ``pad:axis:lefty+``."""

    device: str  # key, mouse, pad_button, pad_axis, pad_trigger, pad_stick
    name: str
    modifiers: frozenset[str] = frozenset()
    sign: int = 0  # pad_axis only: +1 / -1 for one half of the axis, 0 for the whole axis
    text: str = ""

    @property
    def kind(self) -> str:
        if self.device == "mouse":
            return MOUSE_INPUTS[self.name]
        if self.device == "pad_axis":
            return BUTTON if self.sign else AXIS
        return MOTION if self.device == "pad_stick" else BUTTON


def parse_input(text: str) -> InputBinding:
    """Parse one input name; raises ValueError with a one-line reason."""
    if not isinstance(text, str):
        raise ValueError(f"input names are strings like \"key:W\", got {text!r}")
    device, sep, rest = text.strip().partition(":")
    device = device.lower()
    if not sep or not rest:
        raise ValueError(f"unknown input name {text!r} (expected key:NAME, mouse:NAME or pad:KIND:NAME)")
    if device in ("key", "mouse"):
        *mod_tokens, base = rest.split("+")
        mods = set()
        for token in mod_tokens:
            mod = canonical_key_name(token)
            if mod not in MODIFIERS:
                raise ValueError(f"unknown modifier {token!r} in input {text!r} (modifiers: CTRL, SHIFT, ALT, SUPER)")
            mods.add(mod)
        if device == "key":
            key = canonical_key_name(base)
            if key not in KEY_NAMES:
                raise ValueError(f"unknown key name {base!r} in input {text!r}")
            return InputBinding("key", key, frozenset(mods - {key}), text=text)
        name = base.strip().lower()
        if name not in MOUSE_INPUTS:
            raise ValueError(f"unknown mouse input {base!r} in input {text!r} (known: {', '.join(MOUSE_INPUTS)})")
        return InputBinding("mouse", name, frozenset(mods), text=text)
    if device == "pad":
        kind, _, name = rest.lower().partition(":")
        if kind == "button" and name in PAD_BUTTONS:
            return InputBinding("pad_button", name, text=text)
        if kind == "axis":
            sign = {"+": 1, "-": -1}.get(name[-1:], 0)
            axis = name[:-1] if sign else name
            if axis in PAD_AXES:
                return InputBinding("pad_axis", axis, sign=sign, text=text)
        if kind == "trigger" and name in PAD_TRIGGERS:
            return InputBinding("pad_trigger", name, text=text)
        if kind == "stick" and name in PAD_STICKS:
            return InputBinding("pad_stick", name, text=text)
        raise ValueError(
            f"unknown gamepad input {text!r} (known: pad:button:{'|'.join(sorted(PAD_BUTTONS))}, "
            f"pad:axis:{'|'.join(PAD_AXES)} with optional + or -, pad:trigger:{'|'.join(sorted(PAD_TRIGGERS))}, "
            f"pad:stick:left|right)")
    raise ValueError(f"unknown input device {device!r} in {text!r} (expected key:, mouse: or pad:)")


_KIND_INPUTS = {
    BUTTON: "keys, mouse buttons/clicks, mouse:wheel_up/down, pad buttons, triggers or half axes (pad:axis:lefty+)",
    AXIS: "mouse:wheel or a whole pad axis (pad:axis:righty)",
    MOTION: "mouse:move, mouse:<button>_drag or pad:stick:left|right",
}


@dataclass(frozen=True)
class InputSettings:
    """Tuning that travels with the bindings (the [settings] table)."""

    stick_dead_zone: float = 0.15   # radial; stick noise below this reads as centred
    trigger_dead_zone: float = 0.05
    press_threshold: float = 0.5    # an analog input counts as a press when it crosses this
    stick_look_rate: float = 900.0  # pixels per second a fully deflected stick stands for
    pad_zoom_rate: float = 6.0      # wheel notches per second a fully deflected axis stands for
    click_slop_px: float = 4.0      # a press and release that moved less than this is a click

    @staticmethod
    def problem(name: str, value: float) -> str | None:
        """Why ``value`` cannot be setting ``name``, or None when it can."""
        if not math.isfinite(value) or value > 1e6:
            return f"setting {name!r} must be a finite number (at most 1e6), got {value}"
        if name.endswith("dead_zone") and not 0.0 <= value < 1.0:
            return f"setting {name!r} must be in [0, 1), got {value}"
        if name == "press_threshold" and not 0.0 < value <= 1.0:
            return f"setting {name!r} must be in (0, 1], got {value}"
        if value < 0.0:
            return f"setting {name!r} must not be negative, got {value}"
        return None


@dataclass(frozen=True)
class Bindings:
    """The action table: for each action, the inputs that drive it, plus the input settings."""

    table: Mapping[str, tuple[InputBinding, ...]]
    settings: InputSettings = InputSettings()
    actions: Mapping[str, str] = field(default_factory=lambda: dict(ACTIONS))
    sources: tuple[str, ...] = ()

    def inputs_for(self, action: str) -> list[str]:
        """The input names bound to ``action``, as written (for help screens)."""
        return [b.text for b in self.table.get(action, ())]

    def with_inputs(self, action: str, inputs: Iterable[str]) -> "Bindings":
        """A copy with ``action`` rebound to ``inputs`` (raises BindingsError like a file would)."""
        table = dict(self.table)
        table[action] = _validate_action("<runtime>", action, list(inputs), self.actions, "", None)
        return replace(self, table=table)


def default_bindings_path() -> Path:
    return Path(str(importlib.resources.files("llmviz.assets").joinpath("bindings.toml")))


def load_bindings(user_path=None, *, defaults_path=None, actions: Mapping[str, str] = ACTIONS) -> Bindings:
    """The default table, with every action that ``user_path`` lists replaced by the user's inputs.

    ``actions`` is the vocabulary (name -> BUTTON/AXIS/MOTION); an application may extend it.
    """
    defaults_path = Path(defaults_path) if defaults_path is not None else default_bindings_path()
    table, settings = _read_bindings_file(defaults_path, actions)
    sources = [str(defaults_path)]
    if user_path is not None:
        user_table, user_settings = _read_bindings_file(Path(user_path), actions)
        table.update(user_table)
        settings.update(user_settings)
        sources.append(str(user_path))
    return Bindings(table, InputSettings(**settings), dict(actions), tuple(sources))


def _read_bindings_file(path: Path, actions: Mapping[str, str]):
    try:
        info = path.stat()  # a missing file fails here, as "cannot read"
        if not path.is_file() or info.st_size > MAX_BINDINGS_BYTES:
            raise BindingsError(path, f"cannot read bindings file (not a regular file of at most "
                                f"{MAX_BINDINGS_BYTES:,} bytes)")
        with open(path, "rb") as f:
            raw = f.read(MAX_BINDINGS_BYTES + 1)
    except OSError as exc:
        raise BindingsError(path, f"cannot read bindings file ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
        if nesting_depth(text) > MAX_BINDINGS_NESTING:
            raise BindingsError(path, f"tables and lists nest more than {MAX_BINDINGS_NESTING} deep")
        data = tomllib.loads(text)
    except RecursionError:
        raise BindingsError(path, "tables and lists nest too deeply") from None
    except UnicodeDecodeError as exc:
        raise BindingsError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib puts "(at line L, column C)" in its message; lift the line into ours.
        # tomllib ends its message with "(at line L, column C)" or "(at end of document)".
        message = str(exc)
        match = re.search(r"\s*\(at line (\d+), column (\d+)\)", message)
        if match:
            line, where = int(match.group(1)), f", column {match.group(2)}"
        elif "(at end of document)" in message:
            line, where = max(1, len(text.splitlines())), " at the end of the file"
        else:
            line, where = None, ""
        reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message).strip()
        raise BindingsError(path, f"invalid TOML: {reason}{where}", line) from None

    for section in data:
        if section not in ("bindings", "settings"):
            raise BindingsError(path, f"unknown section [{section}] (expected [bindings] and [settings])",
                                _line_of(text, rf"^\s*\[\s*{re.escape(section)}\s*\]") or _key_line(text, section))
    bindings = data.get("bindings", {})
    if not isinstance(bindings, dict):
        raise BindingsError(path, "'bindings' must be a table of action = [inputs]", _key_line(text, "bindings"))
    table = {action: _validate_action(path, action, inputs, actions, text, _key_line(text, action))
             for action, inputs in bindings.items()}

    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        raise BindingsError(path, "'settings' must be a table", _key_line(text, "settings"))
    known = {f.name for f in fields(InputSettings)}
    for name, value in settings.items():
        line = _key_line(text, name)
        if name not in known:
            raise BindingsError(path, f"unknown setting {name!r} (known: {', '.join(sorted(known))})", line)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, int) and
                                                                               abs(value) > 10**6):
            raise BindingsError(path, f"setting {name!r} must be a number up to 1e6, got {str(value)[:40]}", line)
        problem = InputSettings.problem(name, float(value))
        if problem:
            raise BindingsError(path, problem, line)
    return table, {k: float(v) for k, v in settings.items()}


def _validate_action(path, action, inputs, actions, text, line) -> tuple[InputBinding, ...]:
    if action not in actions:
        close = [a for a in actions if a.split("_")[0] == action.split("_")[0]][:4]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise BindingsError(path, f"unknown action {action!r}{hint}", line)
    if not isinstance(inputs, list):
        raise BindingsError(path, f"action {action!r} must map to a list of inputs, like [\"key:W\"]", line)
    kind = actions[action]
    parsed: list[InputBinding] = []
    for item in inputs:
        where = _input_line(text, item, line) if isinstance(item, str) else line
        try:
            binding = parse_input(item)
        except ValueError as exc:
            raise BindingsError(path, f"action {action!r}: {exc}", where) from None
        if binding.kind != kind:
            raise BindingsError(path, f"action {action!r} takes {_KIND_INPUTS[kind]}; {item!r} is not one", where)
        if binding not in parsed:
            parsed.append(binding)
    return tuple(parsed)


def _line_of(text: str, pattern: str, start: int = 0) -> int | None:
    for number, line in enumerate(text.splitlines()[start:], start + 1):
        if re.search(pattern, line):
            return number
    return None


def _key_line(text: str, key: str) -> int | None:
    return _line_of(text, rf"^\s*([\"']?){re.escape(key)}\1\s*=")


def _input_line(text: str, item: str, action_line: int | None) -> int | None:
    # An action's list may span lines; the offending string is on or after the action's line.
    quoted = rf"[\"']{re.escape(item)}[\"']"
    return _line_of(text, quoted, (action_line or 1) - 1) or action_line


# --- the per-frame snapshot ------------------------------------------------------------------

_ZERO2 = (0.0, 0.0)


@dataclass(frozen=True)
class Actions:
    """What the player asked for this frame: analog values, 2D deltas and edge-triggered presses."""

    values: Mapping[str, float] = field(default_factory=dict)  # button actions held (0..1), axis amounts
    deltas: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # motion actions, pixels
    pressed: frozenset[str] = frozenset()  # button actions that went down since the previous frame
    presses: Mapping[str, int] = field(default_factory=dict)  # how many times each went down since then

    def value(self, name: str) -> float:
        return self.values.get(name, 0.0)

    def delta(self, name: str) -> np.ndarray:
        return np.array(self.deltas.get(name, _ZERO2), dtype=np.float64)

    def was_pressed(self, name: str) -> bool:
        return name in self.pressed

    def press_count(self, name: str) -> int:
        """Times ``name`` went down since the previous frame (a menu item's press counts once)."""
        return self.presses.get(name, 1 if name in self.pressed else 0)

    def is_held(self, name: str) -> bool:
        return self.values.get(name, 0.0) > 0.0

    @property
    def held(self) -> frozenset[str]:
        return frozenset(k for k, v in self.values.items() if v > 0.0)

    @property
    def move(self) -> np.ndarray:
        """(right, up, forward), each in [-1, 1].

        The horizontal (right, forward) part is clipped to unit length: W+D is no faster than W,
        and it equals a stick pushed into its corner (which reads as unit length after the dead zone).
        """
        v = self.value
        right, forward = v("move_right") - v("move_left"), v("move_forward") - v("move_back")
        planar = math.hypot(right, forward)
        if planar > 1.0:
            right, forward = right / planar, forward / planar
        return np.array([right, v("move_up") - v("move_down"), forward])

    @property
    def look(self) -> np.ndarray:
        return self.delta("look")

    @property
    def orbit_rotate(self) -> np.ndarray:
        return self.delta("orbit_rotate")

    @property
    def orbit_pan(self) -> np.ndarray:
        return self.delta("orbit_pan")

    @property
    def zoom(self) -> float:
        return self.value("zoom")

    @property
    def boost(self) -> bool:
        return self.is_held("boost")

    @property
    def steers_camera(self) -> bool:
        """True when any camera-moving input is active (a transition yields to it)."""
        return bool(self.move.any() or self.zoom or any(
            self.deltas.get(a, _ZERO2) != _ZERO2 for a in ("look", "orbit_rotate", "orbit_pan")))


# --- the state machine fed by raw events -------------------------------------------------------

def _most_specific(entries, held_modifiers: frozenset[str]) -> list[str]:
    """Actions of the bindings whose modifiers are all held, keeping only the most specific ones.

    So with Ctrl held, "key:CTRL+1" (bookmark_save_1) wins over "key:1" (bookmark_go_1), while
    W still moves because nothing binds CTRL+W.
    """
    best, out = -1, []
    for mods, action in entries:
        if mods <= held_modifiers:
            if len(mods) > best:
                best, out = len(mods), [action]
            elif len(mods) == best:
                out.append(action)
    return out


class InputState:
    """Raw events in (backend-neutral calls), one `Actions` per `frame(dt)` out."""

    def __init__(self, bindings: Bindings | None = None):
        self._keys: set[str] = set()
        self._mouse: set[str] = set()
        self._click_travel: dict[str, float] = {}
        self._pad_buttons: set[str] = set()
        self._sticks = {"left": [0.0, 0.0], "right": [0.0, 0.0]}
        self._triggers = {"lefttrigger": 0.0, "righttrigger": 0.0}
        # Presses since the last frame, counted: 14 quick Backspaces between two frames are 14 steps back.
        self._pressed: Counter[str] = Counter()
        self._deltas: dict[str, np.ndarray] = {}
        self._amounts: dict[str, float] = defaultdict(float)
        self.set_bindings(bindings if bindings is not None else load_bindings())

    # -- bindings

    @property
    def bindings(self) -> Bindings:
        return self._bindings

    def set_bindings(self, bindings: Bindings) -> None:
        """Swap the action table; held inputs stay held and are reinterpreted under the new table."""
        self._bindings = bindings
        self._key_map: dict[str, list] = defaultdict(list)
        self._mouse_map: dict[str, list] = defaultdict(list)
        self._pad_button_map: dict[str, list[str]] = defaultdict(list)
        self._pad_trigger_map: dict[str, list[str]] = defaultdict(list)
        self._pad_stick_map: dict[str, list[str]] = defaultdict(list)
        self._pad_half_axes: list[tuple[str, int, str]] = []
        self._pad_full_axes: list[tuple[str, str]] = []
        for action, inputs in bindings.table.items():
            for b in inputs:
                if b.device == "key":
                    self._key_map[b.name].append((b.modifiers, action))
                elif b.device == "mouse":
                    self._mouse_map[b.name].append((b.modifiers, action))
                elif b.device == "pad_button":
                    self._pad_button_map[b.name].append(action)
                elif b.device == "pad_trigger":
                    self._pad_trigger_map[b.name].append(action)
                elif b.device == "pad_stick":
                    self._pad_stick_map[b.name].append(action)
                elif b.sign:
                    self._pad_half_axes.append((b.name, b.sign, action))
                else:
                    self._pad_full_axes.append((b.name, action))

    # -- keyboard

    def _modifiers(self, excluding: str | None = None) -> frozenset[str]:
        return frozenset(k for k in self._keys if k in MODIFIERS and k != excluding)

    def key_down(self, name: str) -> None:
        key = canonical_key_name(name)
        if key in self._keys:  # auto-repeat: a held key is not pressed again
            return
        self._keys.add(key)
        self._pressed.update(_most_specific(self._key_map.get(key, ()), self._modifiers(excluding=key)))

    def key_up(self, name: str) -> None:
        self._keys.discard(canonical_key_name(name))

    def chord_actions(self, name: str, modifiers: Iterable[str]) -> list[str]:
        """The actions pressing key ``name`` with ``modifiers`` held would press, without pressing them: for a
        window that keeps the keys from the table while a text field has them but lets a few chords through."""
        held = frozenset(canonical_key_name(m) for m in modifiers) & MODIFIERS
        return _most_specific(self._key_map.get(canonical_key_name(name), ()), held)

    # -- mouse

    def mouse_button(self, button: str, pressed: bool) -> None:
        """A mouse button ("left", "right", "middle") went down or up; a short press-release is a click."""
        button = button.lower()
        if pressed:
            if button not in self._mouse:
                self._mouse.add(button)
                self._click_travel[button] = 0.0
                self._pressed.update(_most_specific(self._mouse_map.get(button, ()), self._modifiers()))
        elif button in self._mouse:
            self._mouse.discard(button)
            if self._click_travel.pop(button, math.inf) <= self._bindings.settings.click_slop_px:
                self._pressed.update(_most_specific(self._mouse_map.get(f"{button}_click", ()), self._modifiers()))

    def _add_delta(self, source: str, dx: float, dy: float) -> None:
        for action in _most_specific(self._mouse_map.get(source, ()), self._modifiers()):
            acc = self._deltas.setdefault(action, np.zeros(2))
            acc += (dx, dy)

    def mouse_move(self, dx: float, dy: float) -> None:
        self._add_delta("move", dx, dy)

    def mouse_drag(self, button: str, dx: float, dy: float) -> None:
        button = button.lower()
        if button in self._click_travel:
            self._click_travel[button] += math.hypot(dx, dy)
        self._add_delta(f"{button}_drag", dx, dy)

    def mouse_scroll(self, dy: float) -> None:
        mods = self._modifiers()
        for action in _most_specific(self._mouse_map.get("wheel", ()), mods):
            self._amounts[action] += dy
        if dy:
            edge = "wheel_up" if dy > 0 else "wheel_down"
            self._pressed.update(_most_specific(self._mouse_map.get(edge, ()), mods))

    # -- gamepad

    def _stick(self, stick: str) -> tuple[float, float]:
        """Stick position after a radial dead zone, rescaled so the live range still spans 0..1."""
        x, y = self._sticks[stick]
        length = math.hypot(x, y)
        dz = self._bindings.settings.stick_dead_zone
        if length <= dz:
            return 0.0, 0.0
        scale = min(1.0, (length - dz) / (1.0 - dz)) / length
        return x * scale, y * scale

    def _trigger(self, name: str) -> float:
        dz = self._bindings.settings.trigger_dead_zone
        return min(1.0, max(0.0, (self._triggers.get(name, 0.0) - dz) / (1.0 - dz)))

    def _half_axis_values(self) -> list[float]:
        sticks = {s: self._stick(s) for s in PAD_STICKS}
        out = []
        for axis, sign, _ in self._pad_half_axes:
            stick, index = PAD_AXES[axis]
            out.append(max(0.0, sign * sticks[stick][index]))
        return out

    def _edges_from(self, before: list[float], after: list[float], actions: list[str]) -> None:
        threshold = self._bindings.settings.press_threshold
        self._pressed.update(a for b, v, a in zip(before, after, actions) if b < threshold <= v)

    def pad_stick(self, stick: str, x: float, y: float) -> None:
        """Both axes of one stick ("left"/"right"), each in [-1, 1], y up."""
        if stick not in self._sticks:
            return
        before = self._half_axis_values()
        self._sticks[stick] = [float(x), float(y)]
        self._edges_from(before, self._half_axis_values(), [a for _, _, a in self._pad_half_axes])

    def pad_axis(self, name: str, value: float) -> None:
        """One stick axis ("leftx", "lefty", "rightx", "righty") in [-1, 1], y up."""
        if name not in PAD_AXES:
            return
        stick, index = PAD_AXES[name]
        xy = list(self._sticks[stick])
        xy[index] = value
        self.pad_stick(stick, *xy)

    def pad_trigger(self, name: str, value: float) -> None:
        """A trigger ("lefttrigger", "righttrigger") in [0, 1]."""
        before = self._trigger(name)
        self._triggers[name] = float(value)
        actions = self._pad_trigger_map.get(name, [])
        self._edges_from([before] * len(actions), [self._trigger(name)] * len(actions), actions)

    def pad_button(self, name: str, pressed: bool) -> None:
        if pressed and name not in self._pad_buttons:
            self._pad_buttons.add(name)
            self._pressed.update(self._pad_button_map.get(name, ()))
        elif not pressed:
            self._pad_buttons.discard(name)

    def release_all(self) -> None:
        """Forget every held input (call when the window loses focus, so no key sticks down)."""
        self._keys.clear()
        self._mouse.clear()
        self._click_travel.clear()
        self._pad_buttons.clear()
        self._sticks = {"left": [0.0, 0.0], "right": [0.0, 0.0]}
        self._triggers = {"lefttrigger": 0.0, "righttrigger": 0.0}

    # -- the frame

    def frame(self, dt: float) -> Actions:
        """This frame's actions; clears the per-frame presses, deltas and wheel amounts."""
        settings = self._bindings.settings
        held: dict[str, float] = defaultdict(float)

        def hold(actions, value=1.0):
            for action in actions:
                held[action] = max(held[action], value)

        mods = self._modifiers()
        for key in self._keys:
            hold(_most_specific(self._key_map.get(key, ()), self._modifiers(excluding=key)))
        for button in self._mouse:
            hold(_most_specific(self._mouse_map.get(button, ()), mods))
        for button in self._pad_buttons:
            hold(self._pad_button_map.get(button, ()))
        for (_, _, action), value in zip(self._pad_half_axes, self._half_axis_values()):
            hold([action], value)
        for trigger, actions in self._pad_trigger_map.items():
            hold(actions, self._trigger(trigger))

        values = {a: v for a, v in held.items() if v > 0.0}
        amounts = dict(self._amounts)
        sticks = {s: self._stick(s) for s in PAD_STICKS}
        for axis, action in self._pad_full_axes:
            stick, index = PAD_AXES[axis]
            amounts[action] = amounts.get(action, 0.0) + sticks[stick][index] * settings.pad_zoom_rate * dt
        values.update({a: v for a, v in amounts.items() if v})

        deltas = {a: d.copy() for a, d in self._deltas.items()}
        for stick, actions in self._pad_stick_map.items():
            x, y = sticks[stick]
            if x or y:
                # A stick is a rate; integrated over dt it becomes the pixels a mouse would have moved
                # (screen y points down, stick y up).
                step = np.array([x, -y]) * settings.stick_look_rate * dt
                for action in actions:
                    deltas[action] = deltas.get(action, np.zeros(2)) + step
        snapshot = Actions(values=values,
                           deltas={a: (float(d[0]), float(d[1])) for a, d in deltas.items() if d.any()},
                           pressed=frozenset(self._pressed), presses=dict(self._pressed))
        self._pressed.clear()
        self._deltas.clear()
        self._amounts.clear()
        return snapshot


# --- pyglet adapters (pyglet is imported lazily: importing pyglet.window opens a display) --------

_pyglet_key = None


def _pyglet_key_module():
    """pyglet.window.key, without importing pyglet.window (whose import creates a GL shadow window).

    key.py only needs pyglet.compat_platform, so when no window module is loaded yet we load the
    file on its own; that keeps symbol translation usable headless and in tests.
    """
    global _pyglet_key
    if _pyglet_key is None:
        _pyglet_key = sys.modules.get("pyglet.window.key")
        if _pyglet_key is None:
            import pyglet

            path = Path(pyglet.__file__).parent / "window" / "key.py"
            spec = importlib.util.spec_from_file_location("_llmviz_pyglet_key", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _pyglet_key = module
    return _pyglet_key


def pyglet_key_name(symbol: int) -> str:
    """Our key name for a pyglet key symbol (``key.LSHIFT`` -> "SHIFT", ``key._1`` -> "1")."""
    return canonical_key_name(_pyglet_key_module().symbol_string(symbol))


# pyglet numbers mouse buttons as bit flags; moderngl-window renumbers them 1, 2, 3.
_PYGLET_MOUSE = {1: "left", 2: "middle", 4: "right"}
_MGLW_MOUSE = {1: "left", 2: "right", 3: "middle"}


def pyglet_mouse_button(button: int) -> str | None:
    return _PYGLET_MOUSE.get(button)


def moderngl_window_mouse_button(button: int) -> str | None:
    return _MGLW_MOUSE.get(button)


class PygletControllerHandler:
    """Push onto a ``pyglet.input.Controller`` (``controller.push_handlers(handler)``) to feed an InputState."""

    def __init__(self, state: InputState):
        self.state = state

    def on_stick_motion(self, controller, stick: str, vector) -> None:
        self.state.pad_stick(stick.removesuffix("stick"), float(vector.x), float(vector.y))

    def on_trigger_motion(self, controller, trigger: str, value: float) -> None:
        self.state.pad_trigger(trigger, float(value))

    def on_button_press(self, controller, button: str) -> None:
        self.state.pad_button(button, True)

    def on_button_release(self, controller, button: str) -> None:
        self.state.pad_button(button, False)

    def on_dpad_motion(self, controller, vector) -> None:
        # pyglet reports the d-pad as one vector; bindings name its four directions as buttons.
        for name, down in (("dpleft", vector.x < -0.5), ("dpright", vector.x > 0.5),
                           ("dpdown", vector.y < -0.5), ("dpup", vector.y > 0.5)):
            self.state.pad_button(name, down)


def attach_pyglet_controllers(state: InputState):
    """Open every connected game controller, and any plugged in later, feeding ``state``.

    Returns the pyglet ControllerManager; keep a reference to it for as long as input is wanted.
    """
    import pyglet.input

    handler = PygletControllerHandler(state)
    manager = pyglet.input.ControllerManager()

    def attach(controller):
        controller.open()
        controller.push_handlers(handler)

    for controller in manager.get_controllers():
        attach(controller)
    manager.push_handlers(on_connect=attach)
    return manager
