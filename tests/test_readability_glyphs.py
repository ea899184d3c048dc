"""Every character the program can show is in the bundled font, the SDF label atlas and the ImGui font (issue 10, defect 9).

The characters are collected from the texts themselves: the chapters, every string literal of the
code that draws or explains (docstrings aside; the terminal-only CLI aside, whose font is the
user's terminal's), the specs, every label the layout makes for every registry model, and the
Vietnamese alphabet, generated here from its letters and tone marks, for the translations to come.
"""
import ast
import io
import unicodedata
from pathlib import Path

import pytest
from PIL import ImageFont

from llmviz.engine.render.text import _font_bytes, default_glyph_atlas
from llmviz.models.registry import load_registry
from llmviz.models.sim import moe_corpus, sort_task
from llmviz.scenes.layout import layout_model

ROOT = Path(__file__).resolve().parent.parent
CODE = ("scenes", "engine", "models", "common")
TERMINAL_ONLY = ROOT / "scenes" / "cli"


def _vietnamese() -> str:
    marks = ("", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323")  # huyền, sắc, ngã, hỏi, nặng
    vowels = "aăâeêioôơuưy"
    letters = {unicodedata.normalize("NFC", v + m) for v in vowels + vowels.upper() for m in marks}
    return "".join(sorted(letters)) + "đĐ"


def _string_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def _shown(text: str) -> set[str]:
    """The characters of a text that take a glyph (not controls such as newline; space does)."""
    return {ch for ch in text if ch == " " or not (ch.isspace() or unicodedata.category(ch).startswith("C"))}


@pytest.fixture(scope="module")
def characters() -> dict[str, str]:
    """Every shown character -> one place it comes from."""
    found: dict[str, str] = {}

    def add(text, where):
        for ch in sorted(_shown(text)):
            found.setdefault(ch, where)

    for path in sorted((ROOT / "assets" / "chapters").glob("*.toml")):
        add(path.read_text("utf-8"), path.name)
    for folder in CODE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if TERMINAL_ONLY not in path.parents:
                for literal in _string_literals(path):
                    add(literal, str(path.relative_to(ROOT)))
    for path in sorted((ROOT / "models" / "specs").glob("*.json")):
        add(path.read_text("utf-8"), path.name)
    for spec in load_registry(include_user=False):
        layout = layout_model(spec)
        add("".join(layout.label) + "".join(layout.group_label) + "".join(layout.text), f"layout of {spec.id}")
    add(sort_task.ALPHABET + moe_corpus.ALPHABET, "the small models' vocabularies")
    add(_vietnamese(), "Vietnamese")
    return found


def test_the_texts_use_the_characters_the_issue_saw_missing(characters):
    for ch in "₂₁ᵢ−√∞Σσμ·×→′":  # q₂ · k₁, exp(sᵢ), ...: the collection really reaches the chapters and formulas
        assert ch in characters


def test_the_bundled_font_has_every_glyph(characters):
    font = ImageFont.truetype(io.BytesIO(_font_bytes()), 48)
    notdef = bytes(font.getmask("\uffff"))  # what a character the font lacks draws: the .notdef box
    missing = {ch: where for ch, where in characters.items() if ch != " " and bytes(font.getmask(ch)) == notdef}
    assert not missing, f"DejaVu Sans lacks {missing}"


def test_the_label_atlas_has_every_character(characters):
    atlas = default_glyph_atlas()
    missing = {ch: where for ch, where in characters.items() if ch not in atlas.index}
    assert not missing, f"not in the SDF atlas: {missing}"


def test_the_imgui_font_has_every_character(characters):
    imgui = pytest.importorskip("imgui_bundle").imgui
    from llmviz.scenes import panels

    context = imgui.create_context()
    try:
        panels.load_font()
        fonts = imgui.get_io().fonts
        fonts.build()
        font = fonts.fonts[0]
        missing = {ch: where for ch, where in characters.items() if font.find_glyph_no_fallback(ord(ch)) is None}
        assert not missing, f"not in the ImGui font: {missing}"
    finally:
        imgui.destroy_context(context)
