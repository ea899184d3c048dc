"""The explorer's Dear ImGui panels: menu bar, model banner, nano-GPT controls, cell tooltip and key-hint bar.

Panels draw and report what the user chose; the window (scenes/app.py) acts on the choice, so
nothing here owns scene state. The nano-GPT panel is the exception that proves it: it drives
the session's own controls (step, play, temperature, input) directly, as a keypress would.
"""
from __future__ import annotations

import importlib.resources
from dataclasses import dataclass

from imgui_bundle import imgui

from llmviz.models.sim import sort_task
from llmviz.scenes.dataflow import format_number

FONT_PX = 15.0
# Every character our texts use and the scripts of the translations to come (0 ends the list):
# Latin-1 and Latin Extended-A/B (é, ă, đ, ơ, ư), combining marks, Greek (μ σ Σ), phonetic subscripts
# (ᵢ), Latin Extended Additional (Vietnamese ạ ế ữ), punctuation with super- and subscripts
# (… – ′ ² q₂), arrows (→ ↵), maths (√ − ≤ ∞ ·), technical symbols, and Latin Extended-C (ⱼ).
GLYPH_RANGES = [0x0020, 0x024F, 0x0300, 0x036F, 0x0370, 0x03FF, 0x1D00, 0x1DBF, 0x1E00, 0x1EFF,
                0x2000, 0x209F, 0x2190, 0x21FF, 0x2200, 0x22FF, 0x2300, 0x23FF, 0x2C60, 0x2C7F, 0]

LIVE_RGB = (0.45, 0.90, 0.50, 1.0)
AMBER_RGB = (1.00, 0.74, 0.28, 1.0)
ERROR_RGB = (1.00, 0.40, 0.35, 1.0)
INPUT_RGB = (0.55, 0.78, 1.00, 1.0)
GENERATED_RGB = (1.00, 0.78, 0.35, 1.0)
DIM_RGB = (0.62, 0.65, 0.70, 1.0)
FORMULA_RGB = (0.70, 0.86, 1.00, 1.0)
BANNER_BG = (0.10, 0.11, 0.14, 0.88)
BAR_RGB = (0.35, 0.55, 0.85, 1.0)
BAR_TOP_RGB = (0.95, 0.70, 0.25, 1.0)

PANEL_WIDTH = 380.0
STRESS_SCENE = "stress:100000"
PRESET_ORDER = ("overview", "embedding", "first block", "last block", "output")  # F5..F9, in the order

_FIXED = (imgui.WindowFlags_.no_decoration | imgui.WindowFlags_.no_inputs | imgui.WindowFlags_.no_saved_settings
          | imgui.WindowFlags_.no_focus_on_appearing | imgui.WindowFlags_.no_nav
          | imgui.WindowFlags_.no_bring_to_front_on_focus)


def load_font(pixel_ratio: float = 1.0) -> None:
    """Make DejaVu Sans (bundled) the UI font, with the glyphs the formulas use; call before the renderer is made.
    ``pixel_ratio``: target pixels per UI pixel; the glyphs are rasterised that much larger and scaled back
    for layout, so a picture drawn larger than its view keeps the view's layout with crisp text."""
    path = importlib.resources.files("llmviz.assets").joinpath("fonts/DejaVuSans.ttf")
    io = imgui.get_io()
    io.fonts.clear()
    io.fonts.add_font_from_file_ttf(str(path), FONT_PX * pixel_ratio, None, GLYPH_RANGES)
    io.font_global_scale = 1.0 / pixel_ratio
    io.set_ini_filename("")  # panels are placed by code each run; no imgui.ini beside the user's files


def ordered_presets(presets: dict) -> list[str]:
    """Preset names with the five keyed ones (F5..F9) first, in the issue's order, then the rest."""
    first = [name for name in PRESET_ORDER if name in presets]
    return first + [name for name in presets if name not in first]


def probability_bar(label: str, p: float, top: bool = False, indent: float = 60, width: float = 220) -> None:
    """One candidate's row in a live panel: its name, then a bar as long as its probability, with the number."""
    imgui.text(label)
    imgui.same_line(indent)   # 0: right after the label
    imgui.push_style_color(imgui.Col_.plot_histogram, BAR_TOP_RGB if top else BAR_RGB)
    imgui.progress_bar(float(p), imgui.ImVec2(width, 0), f"{p:.3f}")
    imgui.pop_style_color()


def begin_side_panel(title: str, x: float, y: float) -> bool:
    """Open a live model's side panel at (x, y): PANEL_WIDTH wide, as tall as its contents, placed by code (never
    moved, saved or focused on appearing). True when expanded; imgui.end() closes it either way."""
    imgui.set_next_window_pos(imgui.ImVec2(x, y), imgui.Cond_.always)
    imgui.set_next_window_size(imgui.ImVec2(PANEL_WIDTH, 0))
    imgui.set_next_window_bg_alpha(0.88)
    expanded, _ = imgui.begin(title, None, imgui.WindowFlags_.no_saved_settings | imgui.WindowFlags_.no_move
                              | imgui.WindowFlags_.no_focus_on_appearing)
    return expanded


@dataclass(frozen=True)
class CatalogEntry:
    """One entry of the Model menu."""

    scene: str      # the scene name build_scene takes
    label: str      # "GPT-3 175B"
    params: str     # "174.6B" or "1.76T (483.2B active)"
    tags: str = ""  # " (speculative)", " (live)"


@dataclass
class MenuChoice:
    scene: str | None = None
    preset: str | None = None
    toggle_profiler: bool = False
    toggle_mode: bool = False
    height: float = 0.0
    action: str | None = None  # an input action chosen from a menu: the window runs it as if its key was pressed
    chapter: tuple[int, int] | None = None  # (chapter index, step index) chosen in the Chapters menu
    open_path: str | None = None  # the Model menu's "your model" path as edited this frame


@dataclass
class MenuState:
    """What the menus show beside the scene list: chapters, panels, bookmarks."""
    chapters: list = None           # Chapter objects of this model, or None where it has none
    chapters_on: bool = False
    tour_on: bool = False
    tree_on: bool = False
    bookmarks: tuple = ()           # saved bookmark numbers
    focused: bool = False
    live: bool = False
    adaptive: bool = False          # adaptive quality on
    comparing: bool = False         # a compare set is shown (or being chosen)
    cameras_in_step: bool = True    # the compare set's cameras follow the leading view
    open_path: str = ""             # the path typed under "Your model" (kept by the window between frames)


def _action_item(choice: MenuChoice, label: str, shortcut: str, action: str, selected: bool = False,
                 enabled: bool = True) -> None:
    if imgui.menu_item(label, shortcut, selected, enabled)[0]:
        choice.action = action


def model_catalog() -> list[CatalogEntry]:
    """Every registry model (name, computed size, tags), then the engine's stress test."""
    from llmviz.models.params import count_params, human
    from llmviz.models.registry import load_registry
    from llmviz.scenes.live import is_live

    registry = load_registry()
    entries = []
    for model_id in registry.ids():
        spec = registry.get(model_id)
        count = count_params(spec)
        params = human(count.total) if count.active == count.total else f"{human(count.total)} ({human(count.active)} active)"
        # Speculative names mostly say so already ("SPECULATIVE: …"); the tag is added where they do not.
        speculative = spec.speculative and "speculative" not in spec.name.lower()
        tags = (" (live)" if is_live(spec) else "") + (" (speculative)" if speculative else "")
        entries.append(CatalogEntry(model_id, spec.name, params, tags))
    entries.append(CatalogEntry(STRESS_SCENE, "Stress test (100k boxes)", "engine only"))
    return entries


def params_line(spec) -> str:
    """"174.6B parameters (stated 175B)", with the active share of a mixture of experts."""
    from llmviz.models.params import count_params, human

    count = count_params(spec)
    text = f"{human(count.total)} parameters"
    if count.active != count.total:
        text += f", {human(count.active)} active per token"
    stated = getattr(spec, "params_stated", None)
    return text + (f" (computed; stated {human(stated)})" if stated else " (computed)")


def main_menu(catalog: list[CatalogEntry], current: str, presets: list[str], profiler_on: bool,
              camera_mode: str, state: MenuState | None = None) -> MenuChoice:
    choice = MenuChoice()
    if not imgui.begin_main_menu_bar():
        return choice
    choice.height = imgui.get_window_size().y
    if imgui.begin_menu("Model"):
        _your_model(choice, state or MenuState())
        imgui.text_disabled("[ and ] step through this list")
        imgui.separator()
        for entry in catalog:
            if entry.scene.startswith("stress:"):
                imgui.separator()
            if imgui.menu_item_simple(entry.label + entry.tags, entry.params, entry.scene == current):
                choice.scene = entry.scene
        imgui.end_menu()
    if imgui.begin_menu("Camera"):
        if not presets:
            imgui.text_disabled("this scene has no camera presets")
        for i, name in enumerate(presets):
            if imgui.menu_item_simple(name, f"F{5 + i}" if i < 5 else ""):
                choice.preset = name
        imgui.separator()
        if imgui.menu_item_simple("Orbit mode" if camera_mode == "fly" else "Fly mode", "Tab"):
            choice.toggle_mode = True
        state = state or MenuState()
        _action_item(choice, "Stop the tour" if state.tour_on else "Fly the tour", "T", "toggle_tour", state.tour_on)
        imgui.separator()
        if imgui.begin_menu("Save bookmark"):
            for i in range(1, 10):
                _action_item(choice, f"Bookmark {i}", f"Ctrl+{i}", f"bookmark_save_{i}", i in state.bookmarks)
            imgui.end_menu()
        if imgui.begin_menu("Go to bookmark", bool(state.bookmarks)):
            for i in range(1, 10):
                _action_item(choice, f"Bookmark {i}", str(i), f"bookmark_go_{i}", enabled=i in state.bookmarks)
            imgui.end_menu()
        imgui.separator()
        _action_item(choice, "Frame the selection", "F", "frame_selection", enabled=state.focused)
        _action_item(choice, "Step out of the focus", "Esc", "back", enabled=state.focused)
        imgui.end_menu()
    _chapters_menu(choice, state or MenuState())
    if imgui.begin_menu("View"):
        if imgui.menu_item_simple("Profiler", "F3", profiler_on):
            choice.toggle_profiler = True
        _action_item(choice, "Component tree and search", "Ctrl+F", "search", (state or MenuState()).tree_on)
        imgui.separator()
        _action_item(choice, "Compare models side by side…", "M", "toggle_compare", (state or MenuState()).comparing)
        _action_item(choice, "Cameras in step (compare)", "L", "toggle_camera_sync",
                     (state or MenuState()).cameras_in_step, enabled=(state or MenuState()).comparing)
        _action_item(choice, "Next model", "]", "next_model")
        _action_item(choice, "Previous model", "[", "previous_model")
        _action_item(choice, "Adaptive quality (holds 60 FPS by lowering detail)", "", "toggle_quality",
                     (state or MenuState()).adaptive)
        _action_item(choice, "Write frame report", "", "write_report")
        imgui.separator()
        _action_item(choice, "Quit", "Ctrl+Q", "quit")
        imgui.end_menu()
    if state is not None and state.live and imgui.begin_menu("Model run"):
        _action_item(choice, "Step (one letter)", "N", "next")
        _action_item(choice, "Play / pause", "Space", "play_pause")
        imgui.end_menu()
    imgui.end_main_menu_bar()
    return choice


def _your_model(choice: MenuChoice, state: MenuState) -> None:
    """The Model menu's first entry: a local Hugging Face folder (computed live) or a .llmtrace file, by its path."""
    imgui.text("Your model: a Hugging Face folder or a .llmtrace file")
    imgui.set_next_item_width(340)
    entered, text = imgui.input_text("##open_path", state.open_path, imgui.InputTextFlags_.enter_returns_true)
    choice.open_path = text
    imgui.same_line()
    if (imgui.button("Open") or entered) and text.strip():
        from pathlib import Path

        path = Path(text.strip()).expanduser()
        choice.scene = f"folder:{path}" if path.is_dir() else f"trace:{path}"
        imgui.close_current_popup()   # the menu closes on the way to the model, as choosing a listed one does
    imgui.separator()


def _chapters_menu(choice: MenuChoice, state: MenuState) -> None:
    if not imgui.begin_menu("Chapters"):
        return
    if not state.chapters:
        imgui.text_disabled("this model has no chapters (nano-GPT has)")
        imgui.end_menu()
        return
    _action_item(choice, "Close chapters" if state.chapters_on else "Open chapters", "C", "toggle_chapters",
                 state.chapters_on)
    _action_item(choice, "Play / pause / continue", "Space", "play_pause", enabled=state.chapters_on)
    _action_item(choice, "Next step", "N", "next", enabled=state.chapters_on)
    _action_item(choice, "Back a step", "Backspace", "back_step", enabled=state.chapters_on)
    _action_item(choice, "Next chapter", "PageDown", "next_chapter", enabled=state.chapters_on)
    _action_item(choice, "Previous chapter", "PageUp", "previous_chapter", enabled=state.chapters_on)
    imgui.separator()
    for i, chapter in enumerate(state.chapters):
        if imgui.begin_menu(f"{chapter.number}. {chapter.title}"):
            for k, step in enumerate(chapter.steps):
                if imgui.menu_item_simple(f"{k + 1}. {step.title}"):
                    choice.chapter = (i, k)
            imgui.end_menu()
    imgui.end_menu()


def banner(top: float, width: float, title: str, params: str, status: str, live: bool, note: str = "",
           rumour: str = "") -> float:
    """The model's name, size and what its values are, across the top (and, for a speculative
    design, the rumour it draws); returns its height."""
    # A fixed height from the font, not auto-resize: auto-sized windows only know their size a
    # frame late, and the panels below are placed from this height on the first frame.
    style = imgui.get_style()
    height = (3 if rumour else 2) * imgui.get_text_line_height_with_spacing() + 2 * style.window_padding.y
    imgui.set_next_window_pos(imgui.ImVec2(0, top))
    imgui.set_next_window_size(imgui.ImVec2(width, height))
    imgui.push_style_color(imgui.Col_.window_bg, BANNER_BG)
    imgui.begin("##banner", None, _FIXED)
    imgui.text(title)
    if params:
        imgui.same_line(0, 14)
        imgui.text_colored(DIM_RGB, params)
    if note:
        imgui.same_line(max(imgui.get_cursor_pos_x() + 14, width - imgui.calc_text_size(note).x - 16))
        imgui.text_colored(DIM_RGB, note)
    if status:
        imgui.text_colored(LIVE_RGB if live else AMBER_RGB, status)
    if rumour:
        imgui.text_colored(AMBER_RGB, rumour)
    imgui.end()
    imgui.pop_style_color()
    return height


MOE_PANEL_WIDTH = 480.0  # the mixture-of-experts window (scenes/moe_panels.py), on the right


def moe_placeholder(x: float, y: float, text: str, error: bool = False) -> None:
    """The MoE window's place while its routing is being prepared (or could not be)."""
    imgui.set_next_window_pos(imgui.ImVec2(x, y), imgui.Cond_.always)
    imgui.set_next_window_size(imgui.ImVec2(MOE_PANEL_WIDTH, 0))
    imgui.set_next_window_bg_alpha(0.88)
    imgui.begin("Mixture of experts", None, imgui.WindowFlags_.no_saved_settings | imgui.WindowFlags_.no_move
                | imgui.WindowFlags_.no_focus_on_appearing)
    imgui.text_colored(ERROR_RGB if error else DIM_RGB, text)
    imgui.end()


def hint_bar(text: str, width: float, height: float) -> None:
    """The key hints along the bottom edge, wrapped to the window's width."""
    wrapped = imgui.calc_text_size(text, None, False, width - 16).y + 10
    imgui.set_next_window_pos(imgui.ImVec2(0, height - wrapped))
    imgui.set_next_window_size(imgui.ImVec2(width, wrapped))
    imgui.set_next_window_bg_alpha(0.6)
    imgui.push_style_var(imgui.StyleVar_.window_padding, imgui.ImVec2(8, 5))
    imgui.begin("##hints", None, _FIXED)
    imgui.push_text_wrap_pos(width - 8)
    imgui.text(text)
    imgui.pop_text_wrap_pos()
    imgui.end()
    imgui.pop_style_var()


def tooltip_lines(reading) -> list[tuple[str, str]]:
    """What the tooltip of a hover reading says, line by line, as (style, text): the component, what it
    does, its shape in model units and its parameters, then the cell's value, formula and note."""
    lines = [("id", reading.tensor_id)]
    if reading.label:
        # "(11 × 16 cells)" only where the caption's dimensions are symbolic ("t×16") or absent.
        shown = reading.dims and reading.dims.removesuffix(" cells").replace(" × ", "×") not in reading.label
        lines.append(("label", reading.label + (f"   ({reading.dims})" if shown else "")))
    if reading.role:
        lines.append(("role", reading.role))
    if reading.shape:
        lines.append(("shape", f"shape: {reading.shape}"))
    if reading.params:
        lines.append(("params", reading.params))
    return lines


def cell_tooltip(reading) -> None:
    """A hover reading (scenes/hover.py) as a tooltip: id and caption, role, shape in model units, parameters,
    then indices = value, formula, note."""
    imgui.begin_tooltip()
    imgui.push_text_wrap_pos(560)
    for style, text in tooltip_lines(reading):
        if style == "label":
            imgui.same_line(0, 12)
            imgui.text_colored(DIM_RGB, text)
        elif style in ("id", "role"):
            imgui.text(text)
        else:
            imgui.text_colored(FORMULA_RGB if style == "params" else DIM_RGB, text)
    if reading.indices:
        value = "" if reading.value is None else f" = {format_number(reading.value)}"
        imgui.text(f"[{reading.indices}]{value}")
    if reading.formula:
        imgui.text_colored(FORMULA_RGB, reading.formula)
    if reading.note:
        structure = reading.note.startswith("structure only") or reading.note.startswith("no token")
        imgui.text_colored(AMBER_RGB if structure else DIM_RGB, reading.note)
    if reading.sources:
        tensors = len({s.tensor_id for s in reading.sources})
        imgui.text_colored(DIM_RGB, f"computed from {reading.source_cells} cells in {tensors} "
                                    f"tensor{'s' if tensors > 1 else ''} (lit in the scene)")
    imgui.pop_text_wrap_pos()
    imgui.end_tooltip()


class NanoGptPanel:
    """Input letters, step / play / reset, temperature, the sequence so far and P(next letter)."""

    def __init__(self, session):
        self.session = session
        self.text = session.input_text
        self.error: str | None = None

    def draw(self, x: float, y: float) -> None:
        s = self.session
        if begin_side_panel("nano-GPT: sorting letters", x, y):
            self._input(s)
            self._controls(s)
            imgui.separator()
            self._sequence(s)
            imgui.separator()
            self._next_letter(s)
            if s.error:
                imgui.text_colored(ERROR_RGB, s.error)
        imgui.end()

    def _input(self, s) -> None:
        imgui.text(f"Input: {sort_task.INPUT_LENGTH} letters of {', '.join(sort_task.ALPHABET)}")
        imgui.set_next_item_width(120)
        changed, text = imgui.input_text("##input", self.text, imgui.InputTextFlags_.chars_uppercase
                                         | imgui.InputTextFlags_.auto_select_all)
        if changed:
            self.text = text
            self.error = s.set_input(text)  # a valid input restarts the sequence at once
        imgui.same_line()
        imgui.text_colored(DIM_RGB, "edit to restart")
        if self.error:
            imgui.text_colored(ERROR_RGB, self.error)

    def _controls(self, s) -> None:
        if imgui.button("Step (N)"):
            s.step()
        imgui.same_line()
        if imgui.button("Pause (Space)" if s.playing else "Play (Space)"):
            s.toggle_play()
        imgui.same_line()
        if imgui.button("Reset"):
            self.text = s.input_text
            self.error = s.set_input(s.input_text)
        imgui.set_next_item_width(160)
        fmt = "0 = greedy" if s.temperature == 0 else "%.2f"
        changed, value = imgui.slider_float("temperature", s.temperature, 0.0, 2.0, fmt)
        if changed:
            s.set_temperature(0.0 if value < 0.005 else value)
        imgui.text_colored(DIM_RGB, "greedy: always the most likely letter" if s.temperature == 0
                           else "sampled: higher temperature flattens P")

    def _sequence(self, s) -> None:
        tokens = s.tokens
        n_input = len(tokens) - len(s.steps)
        imgui.text("Sequence:")
        for i, token in enumerate(tokens):
            imgui.same_line(0, 4 if i else 10)
            imgui.text_colored(INPUT_RGB if i < n_input else GENERATED_RGB, sort_task.ALPHABET[token])
        for _ in range(len(tokens), sort_task.INPUT_LENGTH * 2):
            imgui.same_line(0, 4)
            imgui.text_colored(DIM_RGB, "_")
        imgui.text_colored(INPUT_RGB, "input")
        imgui.same_line()
        imgui.text_colored(GENERATED_RGB, "generated")
        target = sort_task.decode(sort_task.sorted_answer(tokens[:n_input]))
        generated = sort_task.decode(tokens[n_input:])
        imgui.same_line()
        if generated and not target.startswith(generated):
            imgui.text_colored(AMBER_RGB, f"(sorted would be {target})")
        else:
            imgui.text_colored(DIM_RGB, f"(sorted: {target})")
        if s.steps:
            probs = " ".join(f"{sort_task.ALPHABET[st.token]} {st.probs[st.token]:.2f}" for st in s.steps)
            imgui.text_colored(DIM_RGB, f"P of each generated letter: {probs}")

    def _next_letter(self, s) -> None:
        probs = s.next_distribution()
        if not s.can_generate:
            imgui.text("Sequence complete: all letters generated.")
            return
        title = "P(next letter)" + (f" at temperature {s.temperature:.2f}" if s.temperature > 0 else "")
        imgui.text(title + ("   computing…" if s.busy else ""))
        if probs is None:
            imgui.text_colored(DIM_RGB, "waiting for the first forward pass…")
            return
        top = int(probs.argmax())
        for i, letter in enumerate(sort_task.ALPHABET):
            probability_bar(f"P({letter})", float(probs[i]), top=i == top, indent=0)
        imgui.text_colored(DIM_RGB, f"last forward pass {s.last_tick_seconds * 1000:.1f} ms (worker thread)")
        if s.attention is not None:   # who computed the trace's attention (wgpu backend): a long adapter name
            imgui.push_text_wrap_pos(0.0)
            imgui.text_colored(DIM_RGB, s.attention.label)
            imgui.pop_text_wrap_pos()


# --- chapters -----------------------------------------------------------------------------------

REFERENCE_RGB = (0.55, 0.85, 1.00, 1.0)
CHAPTER_PANEL_WIDTH = 440.0
TOC_WIDTH = 250.0
_PANEL = (imgui.WindowFlags_.no_saved_settings | imgui.WindowFlags_.no_move | imgui.WindowFlags_.no_focus_on_appearing
          | imgui.WindowFlags_.no_collapse)


@dataclass
class ChapterChoice:
    go_to: tuple[int, int] | None = None  # (chapter, step)
    seek: float | None = None
    action: str | None = None             # play_pause, back_step, next, next_chapter, previous_chapter
    hovered_reference: str | None = None  # the block or group a hovered reference names
    close: bool = False


def chapter_contents(runner, x: float, y: float, height: float, choice: ChapterChoice) -> None:
    """Table of contents: a list of every chapter (pick one) and the current chapter's steps; click to go.

    Compact on purpose (the current chapter's steps only): the chapters frame their subject in the
    middle and left of the view, and a full tree down the left edge would cover it.
    """
    imgui.set_next_window_pos(imgui.ImVec2(x, y), imgui.Cond_.always)
    imgui.set_next_window_size_constraints(imgui.ImVec2(TOC_WIDTH, 0), imgui.ImVec2(TOC_WIDTH, height))
    imgui.set_next_window_bg_alpha(0.85)
    expanded, _ = imgui.begin("Contents", None, (_PANEL & ~imgui.WindowFlags_.no_collapse)
                              | imgui.WindowFlags_.always_auto_resize)
    if expanded:
        current = runner.current
        imgui.set_next_item_width(TOC_WIDTH - 16)
        if imgui.begin_combo("##chapter", f"{current.number}. {current.title}", imgui.ComboFlags_.height_large):
            for i, chapter in enumerate(runner.chapters):
                if imgui.selectable(f"{chapter.number}. {chapter.title}##ch{i}", i == runner.chapter)[0]:
                    choice.go_to = (i, 0)
            imgui.end_combo()
        for k, step in enumerate(current.steps):
            if imgui.selectable(f"{k + 1}. {step.title}##st{k}", k == runner.step_index)[0]:
                choice.go_to = (runner.chapter, k)
        imgui.text_colored(DIM_RGB, f"chapter {runner.chapter + 1} of {len(runner.chapters)} · PageUp/PageDown")
    imgui.end()


def _wrapped_text_with_references(rendered, width: float, choice: ChapterChoice) -> None:
    """The step's text word by word, wrapped to ``width``; references coloured, and reported when hovered."""
    text = rendered.text
    pieces, cursor = [], 0
    for ref in sorted(rendered.references, key=lambda r: r.start):
        if ref.start > cursor:
            pieces.append((text[cursor:ref.start], None))
        pieces.append((text[ref.start:ref.end], ref.target))
        cursor = ref.end
    pieces.append((text[cursor:], None))
    space = imgui.calc_text_size(" ").x
    line_width = 0.0
    first = True
    for piece, target in pieces:
        for p, paragraph in enumerate(piece.split("\n")):
            if p > 0:
                first, line_width = True, 0.0  # the next word starts a new line
            for word in paragraph.split(" "):
                if not word:
                    continue
                w = imgui.calc_text_size(word).x
                if not first:
                    if line_width + space + w > width:
                        line_width = 0.0
                    else:
                        imgui.same_line(0, space)
                        line_width += space
                if target is None:
                    imgui.text(word)
                else:
                    imgui.text_colored(REFERENCE_RGB, word)
                    if imgui.is_item_hovered():
                        choice.hovered_reference = target
                        imgui.set_tooltip(f"{target} (lit in the scene)")
                line_width += w
                first = False


def chapter_text_panel(player, x: float, y: float, choice: ChapterChoice) -> None:
    """The current step: chapter and step title, text with lit references, transport buttons and a scrub bar."""
    runner, m = player.runner, player.moment
    imgui.set_next_window_pos(imgui.ImVec2(x, y), imgui.Cond_.always)
    imgui.set_next_window_size(imgui.ImVec2(CHAPTER_PANEL_WIDTH, 0), imgui.Cond_.always)
    imgui.set_next_window_bg_alpha(0.9)
    chapter = runner.current
    expanded, _ = imgui.begin(f"Chapter {chapter.number}: {chapter.title}###chaptertext", None, _PANEL)
    if expanded and m is not None:
        imgui.text_colored(AMBER_RGB, f"Step {m.step + 1} of {len(chapter.steps)}: {m.title}")
        imgui.separator()
        if m.text is None:
            imgui.text_colored(DIM_RGB, "waiting for the model's values…")
        else:
            _wrapped_text_with_references(m.text, CHAPTER_PANEL_WIDTH - 24, choice)
        imgui.separator()
        if imgui.button("<<##prevch"):
            choice.action = "previous_chapter"
        imgui.same_line()
        if imgui.button("< Back"):
            choice.action = "back_step"
        imgui.same_line()
        label = "Continue (Space)" if m.waiting else ("Pause (Space)" if runner.playing else "Play (Space)")
        if imgui.button(label):
            choice.action = "play_pause"
        imgui.same_line()
        if imgui.button("Next >"):
            choice.action = "next"
        imgui.same_line()
        if imgui.button(">>##nextch"):
            choice.action = "next_chapter"
        imgui.same_line()
        if imgui.button("Close"):
            choice.close = True
        imgui.set_next_item_width(CHAPTER_PANEL_WIDTH - 24)
        changed, t = imgui.slider_float("##scrub", float(runner.t), 0.0, float(runner.duration),
                                        f"%.1f s of {runner.duration:.1f} s")
        if changed:
            choice.seek = t
        # Step marks under the slider: where each step starts.
        draw = imgui.get_window_draw_list()
        lo = imgui.get_item_rect_min()
        hi = imgui.get_item_rect_max()
        for start, _ in runner.timeline():
            px = lo.x + (hi.x - lo.x) * (start / max(runner.duration, 1e-9))
            draw.add_line(imgui.ImVec2(px, hi.y), imgui.ImVec2(px, hi.y + 4), imgui.get_color_u32(AMBER_RGB))
        imgui.dummy(imgui.ImVec2(1, 2))
        if m.waiting:
            imgui.text_colored(DIM_RGB, "Space continues · Backspace back · PageUp/PageDown chapters")
    imgui.end()


# --- focus ---------------------------------------------------------------------------------------

@dataclass
class FocusChoice:
    select: object = None   # a focus.Node to select
    clear: bool = False
    search: str | None = None
    close_tree: bool = False  # the component tree's close button


def breadcrumbs(tree, node, x: float, y: float, choice: FocusChoice) -> float:
    """model › Transformer 2 › Self-attention › head 1: each crumb a button; returns the bar's height."""
    imgui.set_next_window_pos(imgui.ImVec2(x, y), imgui.Cond_.always)
    imgui.set_next_window_bg_alpha(0.85)
    imgui.begin("##breadcrumbs", None, imgui.WindowFlags_.no_decoration | imgui.WindowFlags_.no_saved_settings
                | imgui.WindowFlags_.always_auto_resize | imgui.WindowFlags_.no_focus_on_appearing
                | imgui.WindowFlags_.no_move)
    path = tree.path(node)
    for i, crumb in enumerate(path):
        if i:
            imgui.same_line(0, 4)
            imgui.text_colored(DIM_RGB, "›")
            imgui.same_line(0, 4)
        if imgui.small_button(f"{tree.label(crumb)}##crumb{i}"):
            choice.select = crumb
    imgui.same_line(0, 12)
    if imgui.small_button("x (Esc)"):
        choice.clear = True
    height = imgui.get_window_size().y
    imgui.end()
    return height


def _tree_node(tree, g: int, selected, choice: FocusChoice, open_path: set) -> None:
    from llmviz.scenes.focus import BLOCK, GROUP, Node

    node = Node(GROUP, g)
    flags = imgui.TreeNodeFlags_.open_on_arrow | imgui.TreeNodeFlags_.span_avail_width
    if node == selected:
        flags |= imgui.TreeNodeFlags_.selected
    if g in open_path:
        imgui.set_next_item_open(True, imgui.Cond_.always)
    opened = imgui.tree_node_ex(f"{tree.label(node)}##g{g}", flags)
    if imgui.is_item_clicked() and not imgui.is_item_toggled_open():
        choice.select = node
    if opened:
        for child in tree.child_groups(g):
            _tree_node(tree, int(child), selected, choice, open_path)
        for row in tree.child_rows(g)[:400]:
            leaf = Node(BLOCK, int(row))
            if imgui.selectable(f"{tree.label(leaf)}##b{row}", leaf == selected)[0]:
                choice.select = leaf
        imgui.tree_pop()


def component_tree(tree, selected, query: str, x: float, y: float, height: float, choice: FocusChoice,
                   focus_search: bool = False, results=None) -> None:
    """The component tree with a search box: type words ("layer 2 head 1"), click a result to focus it.

    ``results`` are the matches of ``query`` found off the frame (None while the search runs)."""
    imgui.set_next_window_pos(imgui.ImVec2(x, y), imgui.Cond_.always)
    imgui.set_next_window_size(imgui.ImVec2(TOC_WIDTH + 40, height), imgui.Cond_.always)
    imgui.set_next_window_bg_alpha(0.88)
    expanded, still_open = imgui.begin("Components", True, _PANEL)
    choice.close_tree = not still_open
    if expanded:
        if focus_search:
            imgui.set_keyboard_focus_here()
        imgui.set_next_item_width(-1)
        changed, text = imgui.input_text_with_hint("##search", "search: attention head 1", query)
        if changed:
            choice.search = text
        imgui.separator()
        if query.strip() and results is None:
            imgui.text_colored(DIM_RGB, "searching…")
        elif query.strip():
            if not results:
                imgui.text_colored(DIM_RGB, "no component matches")
            for node in results:
                above = " › ".join(tree.label(n) for n in tree.path(node)[1:-1])
                text = tree.label(node) + (f"  ·  {above}" if above else "")
                if imgui.selectable(f"{text}##r{node.kind}{node.index}", node == selected)[0]:
                    choice.select = node
                if imgui.is_item_hovered():
                    imgui.set_tooltip(tree.ident(node))
        else:
            open_path = set()
            if selected is not None:
                open_path = {n.index for n in tree.path(selected)[:-1]}
            _tree_node(tree, 0, selected, choice, open_path)
    imgui.end()


def details_lines(details) -> list[tuple[str, str]]:
    """The details panel's text, line by line as (style, text): what the component does, its shape in
    model units, its contents (a group) and its parameters; never the size of the box it is drawn as."""
    lines = [("id", details.ident)]
    if details.role:
        lines.append(("role", details.role))
    if details.units:
        lines.append(("shape", f"shape: {details.units}"))
    elif not details.group:
        lines.append(("shape", f"shape: {details.shape}"))
    if details.group:
        lines.append(("shape", f"contains: {details.shape}"))
    lines.append(("params", details.params_text or f"{details.params:,} parameters"))
    if getattr(details, "cache", ""):
        lines.append(("cache", details.cache))
    return lines


def details_panel(details, x: float, y: float) -> None:
    """The focused component: id, role, shape in model units, parameters and value statistics."""
    imgui.set_next_window_pos(imgui.ImVec2(x, y), imgui.Cond_.always)
    imgui.set_next_window_size(imgui.ImVec2(PANEL_WIDTH, 0), imgui.Cond_.always)
    imgui.set_next_window_bg_alpha(0.88)
    imgui.begin(f"{details.title}###details", None, _PANEL)
    imgui.push_text_wrap_pos(PANEL_WIDTH - 12)
    for style, text in details_lines(details):
        if style == "role":
            imgui.text(text)
        else:
            imgui.text_colored(FORMULA_RGB if style == "params" else DIM_RGB, text)
    imgui.pop_text_wrap_pos()
    if details.stats is not None:
        lo, mean, hi, std = details.stats
        imgui.text(f"values: min {format_number(lo)} · max {format_number(hi)}")
        imgui.text(f"            mean {format_number(mean)} · std {format_number(std)}")
    else:
        imgui.text_colored(AMBER_RGB, "values: no trace (structure only)")
    imgui.end()
