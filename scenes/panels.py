"""The explorer's Dear ImGui panels: menu bar, model banner, nano-GPT controls, cell tooltip and key-hint bar.

Panels draw and report what the user chose; the window (scenes/app.py) acts on the choice, so
nothing here owns scene state. The nano-GPT panel is the exception that proves it: it drives
the session's own controls (step, play, temperature, input) directly, as a keypress would.
"""
from __future__ import annotations

import importlib.resources
import re
from dataclasses import dataclass

from imgui_bundle import imgui

from llmviz.common.i18n import num, num_text, tr, translator
from llmviz.models.sim import sort_task
from llmviz.scenes.dataflow import format_number

FONT_PX = 15.0
# Every character our texts use and the scripts of the translations to come (0 ends the list):
# Latin-1 and Latin Extended-A/B (é, ă, đ, ơ, ư), combining marks, Greek (μ σ Σ), phonetic subscripts
# (ᵢ), Latin Extended Additional (Vietnamese ạ ế ữ), punctuation with super- and subscripts
# (… – ′ ² q₂), arrows (→ ↵), maths (√ − ≤ ∞ ·), technical symbols, geometric shapes (▸ of menu paths)
# and Latin Extended-C (ⱼ).
GLYPH_RANGES = [0x0020, 0x024F, 0x0300, 0x036F, 0x0370, 0x03FF, 0x1D00, 0x1DBF, 0x1E00, 0x1EFF,
                0x2000, 0x209F, 0x2190, 0x21FF, 0x2200, 0x22FF, 0x2300, 0x23FF, 0x25A0, 0x25FF, 0x2C60, 0x2C7F, 0]

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


def preset_label(name: str) -> str:
    """A camera preset's name as the menus show it: translated where the language files name it ("first block" is
    preset.first_block), else as the layout named it; the name itself stays the key (F5..F9, --view, links)."""
    key = "preset." + re.sub(r"[^A-Za-z0-9_-]+", "_", name.strip())
    return tr(key) if translator().has(key) else name


def ordered_presets(presets: dict) -> list[str]:
    """Preset names with the five keyed ones (F5..F9) first, in the issue's order, then the rest."""
    first = [name for name in PRESET_ORDER if name in presets]
    return first + [name for name in presets if name not in first]


def probability_bar(label: str, p: float, top: bool = False, indent: float = 60, width: float = 220) -> None:
    """One candidate's row in a live panel: its name, then a bar as long as its probability, with the number."""
    imgui.text(label)
    imgui.same_line(indent)   # 0: right after the label
    imgui.push_style_color(imgui.Col_.plot_histogram, BAR_TOP_RGB if top else BAR_RGB)
    imgui.progress_bar(float(p), imgui.ImVec2(width, 0), num(float(p), ".3f"))
    imgui.pop_style_color()


def fit_side_panel(area) -> None:
    """The next side panel never taller than the free area (its contents scroll instead): in a small window it
    stays above the hint bar."""
    imgui.set_next_window_size_constraints(imgui.ImVec2(PANEL_WIDTH, 0),
                                           imgui.ImVec2(PANEL_WIDTH, max(120.0, area.height - 4)))


def begin_side_panel(title: str, x: float, y: float) -> bool:
    """Open a live model's side panel at (x, y): PANEL_WIDTH wide, as tall as its contents, placed by code (never
    moved, saved or focused on appearing). True when expanded; end_side_panel() closes it either way."""
    imgui.set_next_window_pos(imgui.ImVec2(x, y), imgui.Cond_.always)
    imgui.set_next_window_size(imgui.ImVec2(PANEL_WIDTH, 0))
    imgui.set_next_window_bg_alpha(0.88)
    expanded, _ = imgui.begin(title, None, imgui.WindowFlags_.no_saved_settings | imgui.WindowFlags_.no_move
                              | imgui.WindowFlags_.no_focus_on_appearing)
    # Its lines wrap at the panel's edge (a long sentence, a translation) instead of running out of sight;
    # end_side_panel() takes the wrap back.
    _side_panel_wraps.append(expanded)
    if expanded:
        imgui.push_text_wrap_pos(0.0)
    return expanded


def end_side_panel() -> None:
    """Close the side panel begin_side_panel opened (expanded or not)."""
    if _side_panel_wraps.pop():
        imgui.pop_text_wrap_pos()
    imgui.end()


_side_panel_wraps: list[bool] = []  # the open side panels, innermost last: whether each pushed its wrap


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
    language: str | None = None   # a language code chosen in View ▸ Language


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
        total = num_text(human(count.total))   # "174.6B" written with the language's marks
        params = total if count.active == count.total else tr("menu.model.active", total=total,
                                                              active=num_text(human(count.active)))
        # Speculative names mostly say so already ("SPECULATIVE: …"); the tag is added where they do not.
        speculative = spec.speculative and "speculative" not in spec.name.lower()
        tags = (tr("menu.model.live_tag") if is_live(spec) else "") + (tr("menu.model.speculative_tag") if speculative else "")
        entries.append(CatalogEntry(model_id, spec.name, params, tags))
    entries.append(CatalogEntry(STRESS_SCENE, tr("menu.model.stress"), tr("menu.model.engine_only")))
    return entries


def params_line(spec) -> str:
    """"174.6B parameters (stated 175B)", with the active share of a mixture of experts."""
    from llmviz.models.params import count_params, human

    count = count_params(spec)
    text = tr("banner.params", total=num_text(human(count.total)))
    if count.active != count.total:
        text += tr("banner.active", active=num_text(human(count.active)))
    stated = getattr(spec, "params_stated", None)
    return text + (tr("banner.computed_stated", stated=num_text(human(stated))) if stated else tr("banner.computed"))


def main_menu(catalog: list[CatalogEntry], current: str, presets: list[str], profiler_on: bool,
              camera_mode: str, state: MenuState | None = None) -> MenuChoice:
    choice = MenuChoice()
    if not imgui.begin_main_menu_bar():
        return choice
    choice.height = imgui.get_window_size().y
    if imgui.begin_menu(tr("menu.model.title") + "###model"):
        _your_model(choice, state or MenuState())
        imgui.text_disabled(tr("menu.model.step_hint"))
        imgui.separator()
        for entry in catalog:
            if entry.scene.startswith("stress:"):
                imgui.separator()
            if imgui.menu_item_simple(entry.label + entry.tags, entry.params, entry.scene == current):
                choice.scene = entry.scene
        imgui.end_menu()
    if imgui.begin_menu(tr("menu.camera.title") + "###camera"):
        if not presets:
            imgui.text_disabled(tr("menu.camera.no_presets"))
        for i, name in enumerate(presets):
            if imgui.menu_item_simple(preset_label(name) + f"###preset{i}", f"F{5 + i}" if i < 5 else ""):
                choice.preset = name
        imgui.separator()
        if imgui.menu_item_simple(tr("menu.camera.orbit" if camera_mode == "fly" else "menu.camera.fly"), "Tab"):
            choice.toggle_mode = True
        state = state or MenuState()
        _action_item(choice, tr("menu.camera.stop_tour" if state.tour_on else "menu.camera.fly_tour"), "T", "toggle_tour",
                     state.tour_on)
        imgui.separator()
        if imgui.begin_menu(tr("menu.camera.save_bookmark") + "###save_bookmark"):
            for i in range(1, 10):
                _action_item(choice, tr("menu.camera.bookmark", i=i), f"Ctrl+{i}", f"bookmark_save_{i}", i in state.bookmarks)
            imgui.end_menu()
        if imgui.begin_menu(tr("menu.camera.go_bookmark") + "###go_bookmark", bool(state.bookmarks)):
            for i in range(1, 10):
                _action_item(choice, tr("menu.camera.bookmark", i=i), str(i), f"bookmark_go_{i}", enabled=i in state.bookmarks)
            imgui.end_menu()
        imgui.separator()
        _action_item(choice, tr("menu.camera.frame_selection"), "F", "frame_selection", enabled=state.focused)
        _action_item(choice, tr("menu.camera.step_out"), "Esc", "back", enabled=state.focused)
        imgui.end_menu()
    _chapters_menu(choice, state or MenuState())
    if imgui.begin_menu(tr("menu.view.title") + "###view"):
        if imgui.menu_item_simple(tr("menu.view.profiler"), "F3", profiler_on):
            choice.toggle_profiler = True
        _action_item(choice, tr("menu.view.tree"), "Ctrl+F", "search", (state or MenuState()).tree_on)
        imgui.separator()
        _action_item(choice, tr("menu.view.compare"), "M", "toggle_compare", (state or MenuState()).comparing)
        _action_item(choice, tr("menu.view.cameras_in_step"), "L", "toggle_camera_sync",
                     (state or MenuState()).cameras_in_step, enabled=(state or MenuState()).comparing)
        _action_item(choice, tr("menu.view.next_model"), "]", "next_model")
        _action_item(choice, tr("menu.view.previous_model"), "[", "previous_model")
        _action_item(choice, tr("menu.view.adaptive"), "", "toggle_quality", (state or MenuState()).adaptive)
        _action_item(choice, tr("menu.view.report"), "", "write_report")
        _language_menu(choice)
        imgui.separator()
        _action_item(choice, tr("menu.view.quit"), "Ctrl+Q", "quit")
        imgui.end_menu()
    if state is not None and state.live and imgui.begin_menu(tr("menu.run.title") + "###run"):
        _action_item(choice, tr("menu.run.step"), "N", "next")
        _action_item(choice, tr("menu.run.play_pause"), "Space", "play_pause")
        imgui.end_menu()
    imgui.end_main_menu_bar()
    return choice


def _language_menu(choice: MenuChoice) -> None:
    """View ▸ Language: each bundled language by its own name; the window switches and remembers it."""
    from llmviz.common.i18n import language
    from llmviz.scenes.language import language_choices

    if imgui.begin_menu(tr("menu.view.language") + "###language"):
        current = language()
        for code, name in language_choices():
            if imgui.menu_item_simple(name, code, code == current):
                choice.language = code
        imgui.end_menu()


def _your_model(choice: MenuChoice, state: MenuState) -> None:
    """The Model menu's first entry: a local Hugging Face folder (computed live) or a .llmtrace file, by its path."""
    imgui.text(tr("menu.model.yours"))
    imgui.set_next_item_width(340)
    entered, text = imgui.input_text("##open_path", state.open_path, imgui.InputTextFlags_.enter_returns_true)
    choice.open_path = text
    imgui.same_line()
    if (imgui.button(tr("menu.model.open")) or entered) and text.strip():
        from pathlib import Path

        path = Path(text.strip()).expanduser()
        choice.scene = f"folder:{path}" if path.is_dir() else f"trace:{path}"
        imgui.close_current_popup()   # the menu closes on the way to the model, as choosing a listed one does
    imgui.separator()


def _chapters_menu(choice: MenuChoice, state: MenuState) -> None:
    if not imgui.begin_menu(tr("menu.chapters.title") + "###chapters"):
        return
    if not state.chapters:
        imgui.text_disabled(tr("menu.chapters.none"))
        imgui.end_menu()
        return
    _action_item(choice, tr("menu.chapters.close" if state.chapters_on else "menu.chapters.open"), "C", "toggle_chapters",
                 state.chapters_on)
    _action_item(choice, tr("menu.chapters.play"), "Space", "play_pause", enabled=state.chapters_on)
    _action_item(choice, tr("menu.chapters.next_step"), "N", "next", enabled=state.chapters_on)
    _action_item(choice, tr("menu.chapters.back_step"), "Backspace", "back_step", enabled=state.chapters_on)
    _action_item(choice, tr("menu.chapters.next_chapter"), "PageDown", "next_chapter", enabled=state.chapters_on)
    _action_item(choice, tr("menu.chapters.previous_chapter"), "PageUp", "previous_chapter", enabled=state.chapters_on)
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
    imgui.begin(tr("moe.title") + "###moe", None, imgui.WindowFlags_.no_saved_settings | imgui.WindowFlags_.no_move
                | imgui.WindowFlags_.no_focus_on_appearing)
    imgui.text_colored(ERROR_RGB if error else DIM_RGB, text)
    imgui.end()


def hint_bar_height(text: str, width: float) -> float:
    """How tall the hint bar is with `text` wrapped to `width` (two lines at 1280, three or more in a small
    window): what the panels above it must leave free."""
    return imgui.calc_text_size(text, None, False, width - 16).y + 10


def hint_bar(text: str, width: float, height: float) -> None:
    """The key hints along the bottom edge, wrapped to the window's width."""
    wrapped = hint_bar_height(text, width)
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
        grid = re.match(r"(\d+) × (\d+)", reading.dims or "")
        shown = reading.dims and (grid is None or f"{grid[1]}×{grid[2]}" not in reading.label)
        lines.append(("label", reading.label + (f"   ({reading.dims})" if shown else "")))
    if reading.role:
        lines.append(("role", reading.role))
    if reading.shape:
        lines.append(("shape", tr("tooltip.shape", shape=reading.shape)))
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
        value = "" if reading.value is None else f" = {num_text(format_number(reading.value))}"
        imgui.text(f"[{reading.indices}]{value}")
    if reading.formula:
        imgui.text_colored(FORMULA_RGB, reading.formula)
    if reading.note:
        structure = reading.note.startswith(("structure only", "no token", tr("hover.structure_only"), tr("hover.waiting"),
                                             tr("inspect.structure_only"), tr("inspect.no_token")))
        imgui.text_colored(AMBER_RGB if structure else DIM_RGB, reading.note)
    if reading.sources:
        tensors = len({s.tensor_id for s in reading.sources})
        imgui.text_colored(DIM_RGB, tr("tooltip.sources_many" if tensors > 1 else "tooltip.sources_one",
                                       cells=reading.source_cells, tensors=tensors))
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
        if begin_side_panel(tr("nano.title") + "###nanogpt", x, y):
            self._input(s)
            self._controls(s)
            imgui.separator()
            self._sequence(s)
            imgui.separator()
            self._next_letter(s)
            if s.error:
                imgui.text_colored(ERROR_RGB, s.error)
        end_side_panel()

    def _input(self, s) -> None:
        imgui.text(tr("nano.input", n=sort_task.INPUT_LENGTH, letters=", ".join(sort_task.ALPHABET)))
        imgui.set_next_item_width(120)
        changed, text = imgui.input_text("##input", self.text, imgui.InputTextFlags_.chars_uppercase
                                         | imgui.InputTextFlags_.auto_select_all)
        if changed:
            self.text = text
            self.error = s.set_input(text)  # a valid input restarts the sequence at once
        imgui.same_line()
        imgui.text_colored(DIM_RGB, tr("nano.edit_to_restart"))
        if self.error:
            imgui.text_colored(ERROR_RGB, self.error)

    def _controls(self, s) -> None:
        if imgui.button(tr("nano.step") + "###step"):
            s.step()
        imgui.same_line()
        if imgui.button(tr("nano.pause" if s.playing else "nano.play") + "###play"):
            s.toggle_play()
        imgui.same_line()
        if imgui.button(tr("nano.reset") + "###reset"):
            self.text = s.input_text
            self.error = s.set_input(s.input_text)
        imgui.set_next_item_width(160)
        fmt = tr("nano.greedy_zero") if s.temperature == 0 else num(s.temperature, ".2f").replace("%", "%%")
        changed, value = imgui.slider_float(tr("nano.temperature") + "###temperature", s.temperature, 0.0, 2.0, fmt)
        if changed:
            s.set_temperature(0.0 if value < 0.005 else value)
        imgui.text_colored(DIM_RGB, tr("nano.greedy" if s.temperature == 0 else "nano.sampled"))

    def _sequence(self, s) -> None:
        tokens = s.tokens
        n_input = len(tokens) - len(s.steps)
        imgui.text(tr("nano.sequence"))
        for i, token in enumerate(tokens):
            imgui.same_line(0, 4 if i else 10)
            imgui.text_colored(INPUT_RGB if i < n_input else GENERATED_RGB, sort_task.ALPHABET[token])
        for _ in range(len(tokens), sort_task.INPUT_LENGTH * 2):
            imgui.same_line(0, 4)
            imgui.text_colored(DIM_RGB, "_")
        imgui.text_colored(INPUT_RGB, tr("nano.input_word"))
        imgui.same_line()
        imgui.text_colored(GENERATED_RGB, tr("nano.generated"))
        target = sort_task.decode(sort_task.sorted_answer(tokens[:n_input]))
        generated = sort_task.decode(tokens[n_input:])
        imgui.same_line()
        if generated and not target.startswith(generated):
            imgui.text_colored(AMBER_RGB, tr("nano.sorted_would_be", target=target))
        else:
            imgui.text_colored(DIM_RGB, tr("nano.sorted", target=target))
        if s.steps:
            probs = " ".join(f"{sort_task.ALPHABET[st.token]} {num(float(st.probs[st.token]), '.2f')}" for st in s.steps)
            imgui.text_colored(DIM_RGB, tr("nano.p_each", probs=probs))

    def _next_letter(self, s) -> None:
        probs = s.next_distribution()
        if not s.can_generate:
            imgui.text(tr("nano.complete"))
            return
        title = tr("nano.p_next") + (tr("nano.at_temperature", t=s.temperature) if s.temperature > 0 else "")
        imgui.text(title + (tr("nano.computing") if s.busy else ""))
        if probs is None:
            imgui.text_colored(DIM_RGB, tr("nano.waiting"))
            return
        top = int(probs.argmax())
        for i, letter in enumerate(sort_task.ALPHABET):
            probability_bar(f"P({letter})", float(probs[i]), top=i == top, indent=0)
        imgui.text_colored(DIM_RGB, tr("nano.last_pass", ms=s.last_tick_seconds * 1000))
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
    expanded, _ = imgui.begin(tr("chapter_ui.contents") + "###contents", None, (_PANEL & ~imgui.WindowFlags_.no_collapse)
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
        imgui.text_colored(DIM_RGB, tr("chapter_ui.chapter_of", i=runner.chapter + 1, n=len(runner.chapters)))
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
                        imgui.set_tooltip(tr("chapter_ui.lit", target=target))
                line_width += w
                first = False


def chapter_plot(series, marked, width: float, height: float = 90.0) -> None:
    """A chapter's recorded series (the training loss of every step) on a log scale, the shown snapshot's step
    marked: the axis reads in powers of ten and steps, no words."""
    import numpy as np

    y = np.log10(np.maximum(np.asarray(series, np.float64), 1e-12)).astype(np.float32)
    lo, hi = float(np.floor(y.min())), float(np.ceil(y.max()))
    imgui.plot_lines("##chapterplot", y, overlay_text=f"10^{hi:.0f} … 10^{lo:.0f} · 0 … {len(y)}",
                     scale_min=lo, scale_max=hi, graph_size=imgui.ImVec2(width, height))
    if marked is not None:
        a, b = imgui.get_item_rect_min(), imgui.get_item_rect_max()
        x = a.x + (b.x - a.x) * min(1.0, max(0.0, marked / max(1, len(y) - 1)))
        imgui.get_window_draw_list().add_line(imgui.ImVec2(x, a.y), imgui.ImVec2(x, b.y),
                                              imgui.get_color_u32(AMBER_RGB), 2.0)


def chapter_text_panel(player, x: float, y: float, choice: ChapterChoice) -> None:
    """The current step: chapter and step title, text with lit references, transport buttons and a scrub bar."""
    runner, m = player.runner, player.moment
    imgui.set_next_window_pos(imgui.ImVec2(x, y), imgui.Cond_.always)
    imgui.set_next_window_size(imgui.ImVec2(CHAPTER_PANEL_WIDTH, 0), imgui.Cond_.always)
    imgui.set_next_window_bg_alpha(0.9)
    chapter = runner.current
    expanded, _ = imgui.begin(tr("chapter_ui.title", number=chapter.number, title=chapter.title) + "###chaptertext",
                              None, _PANEL)
    if expanded and m is not None:
        imgui.text_colored(AMBER_RGB, tr("chapter_ui.step_of", i=m.step + 1, n=len(chapter.steps), title=m.title))
        imgui.separator()
        if m.text is None:
            imgui.text_colored(DIM_RGB, tr(getattr(m, "waits_for", "chapter_ui.waiting")))
        else:
            _wrapped_text_with_references(m.text, CHAPTER_PANEL_WIDTH - 24, choice)
        if getattr(m, "plot", None) is not None:
            chapter_plot(*m.plot, width=CHAPTER_PANEL_WIDTH - 24)
        imgui.separator()
        if imgui.button("<<##prevch"):
            choice.action = "previous_chapter"
        imgui.same_line()
        if imgui.button(tr("chapter_ui.back") + "###back"):
            choice.action = "back_step"
        imgui.same_line()
        label = tr("chapter_ui.continue" if m.waiting else ("nano.pause" if runner.playing else "nano.play"))
        if imgui.button(label + "###play"):
            choice.action = "play_pause"
        imgui.same_line()
        if imgui.button(tr("chapter_ui.next") + "###next"):
            choice.action = "next"
        imgui.same_line()
        if imgui.button(">>##nextch"):
            choice.action = "next_chapter"
        imgui.same_line()
        if imgui.button(tr("chapter_ui.close") + "###close"):
            choice.close = True
        imgui.set_next_item_width(CHAPTER_PANEL_WIDTH - 24)
        changed, t = imgui.slider_float("##scrub", float(runner.t), 0.0, float(runner.duration),
                                        tr("chapter_ui.scrub", t=float(runner.t), total=runner.duration).replace("%", "%%"))
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
            imgui.text_colored(DIM_RGB, tr("chapter_ui.keys"))
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
    if imgui.small_button(tr("focus.clear") + "###clear"):
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
    expanded, still_open = imgui.begin(tr("focus.components") + "###components", True, _PANEL)
    choice.close_tree = not still_open
    if expanded:
        if focus_search:
            imgui.set_keyboard_focus_here()
        imgui.set_next_item_width(-1)
        changed, text = imgui.input_text_with_hint("##search", tr("focus.search_hint"), query)
        if changed:
            choice.search = text
        imgui.separator()
        if query.strip() and results is None:
            imgui.text_colored(DIM_RGB, tr("focus.searching"))
        elif query.strip():
            if not results:
                imgui.text_colored(DIM_RGB, tr("focus.no_match"))
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
        lines.append(("shape", tr("tooltip.shape", shape=details.units)))
    elif not details.group:
        lines.append(("shape", tr("tooltip.shape", shape=details.shape)))
    if details.group:
        lines.append(("shape", tr("focus.contains", shape=details.shape)))
    lines.append(("params", details.params_text or tr("focus.params", n=details.params)))
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
        imgui.text(tr("focus.values_range", lo=num_text(format_number(lo)), hi=num_text(format_number(hi))))
        imgui.text(tr("focus.values_mean", mean=num_text(format_number(mean)), std=num_text(format_number(std))))
    else:
        imgui.text_colored(AMBER_RGB, tr("focus.no_trace"))
    imgui.end()
