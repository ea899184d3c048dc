"""No English left in the code that draws the interface: every text an ImGui call shows, and every notice or error
the window puts on screen, in the files that have moved to assets/lang, is looked up with tr() — found by reading
the code's syntax tree, so a new panel line written as a literal fails here."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MOVED = ["scenes/panels.py", "scenes/legend.py", "scenes/hover.py", "scenes/inspect.py", "scenes/moe_panels.py",
         "scenes/ssm_panels.py", "scenes/stream_panel.py", "scenes/folder_panel.py", "scenes/vit_panels.py",
         "scenes/clip_panels.py", "scenes/llava_panels.py", "scenes/whisper_panels.py", "scenes/panel_file_open.py",
         "scenes/rag_panels.py", "scenes/heads_view.py", "engine/overlay.py", *[f"scenes/explorer/{p.name}" for p in sorted((ROOT / "scenes/explorer").glob("*.py"))]]
# ImGui calls whose text arguments a user reads (labels after "##" are ids, never shown)
SHOWN = {"text", "text_colored", "text_disabled", "text_wrapped", "bullet_text", "button", "small_button", "begin",
         "begin_menu", "menu_item", "menu_item_simple", "selectable", "checkbox", "radio_button", "set_tooltip",
         "progress_bar", "begin_tab_item", "collapsing_header", "input_text_with_hint", "slider_float", "slider_int",
         "input_int", "input_text", "input_text_multiline", "tree_node_ex", "add_text", "plot_lines", "begin_combo"}
WORDS = re.compile(r"[A-Za-z]{3,}")


def _words(node) -> list[str]:
    """English-looking words in a string literal or f-string's literal parts (what is left of "##id" aside)."""
    parts = [node.value] if isinstance(node, ast.Constant) and isinstance(node.value, str) else (
        [v.value for v in node.values if isinstance(v, ast.Constant)] if isinstance(node, ast.JoinedStr) else [])
    return [w for part in parts for w in WORDS.findall(part.split("##")[0])]


def literal_texts(source: str) -> list[tuple[int, str]]:
    """(line, words) of each literal a shown ImGui call or a notice/error assignment gets directly."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SHOWN:
            # a menu item's second argument is its shortcut: key names ("Ctrl+F", "Tab"), the same in every language
            args = [a for k, a in enumerate(node.args) if not (node.func.attr.startswith("menu_item") and k == 1)]
            candidates = [a for a in args if not isinstance(a, ast.Call)]
            candidates += [b for a in args if isinstance(a, ast.IfExp) for b in (a.body, a.orelse)]
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Attribute) and t.attr in ("notice", "error", "note")
                                                  for t in node.targets):
            candidates = [node.value] + ([node.value.body, node.value.orelse] if isinstance(node.value, ast.IfExp) else [])
        else:
            continue
        for arg in candidates:
            words = _words(arg)
            if words:
                found.append((node.lineno, " ".join(words)))
    return sorted(found)


def test_the_checker_finds_literals_and_passes_lookups():
    source = ('imgui.text("Sequence:")\nimgui.button(tr("nano.step") + "###step")\nimgui.begin("##hints", None)\n'
              'imgui.text_colored(DIM, f"last pass {ms:.1f} ms")\nself.notice = "link copied"\n'
              'imgui.text(tr("a") if x else "waiting")\nimgui.text(f"{a} × {b}")\n')
    assert literal_texts(source) == [(1, "Sequence"), (4, "last pass"), (5, "link copied"), (6, "waiting")]


@pytest.mark.parametrize("path", MOVED)
def test_the_moved_files_show_no_literal_text(path):
    found = literal_texts((ROOT / path).read_text(encoding="utf-8"))
    assert found == [], f"{path}: texts not looked up with tr(): {found}"
