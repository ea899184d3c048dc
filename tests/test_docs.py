"""docs/ stays true to the code: the generated pages are current, every path and link the guides name exists, every
system of the frame says what it does, and the API reference renders from the docstrings."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmviz.scenes import docs_reference

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
STALE = "docs/{page} is stale: run `make docs` (python -m llmviz.scenes.docs_reference docs) and commit it"


@pytest.mark.parametrize("page", ["keys.md", "commands.md", "modules.md", "teach.md"])
def test_generated_page_is_current(page):
    assert (DOCS / page).read_text(encoding="utf-8") == docs_reference.PAGES[page](), STALE.format(page=page)


def test_frame_page_is_current_and_every_system_says_what_it_does():
    from llmviz.scenes.cli.main import CliError

    try:
        text = docs_reference.frame_page()
    except CliError as err:  # only where there is no EGL/OpenGL at all
        pytest.skip(str(err))
    assert (DOCS / "frame.md").read_text(encoding="utf-8") == text, STALE.format(page="frame.md")
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) >= 15
    undocumented = [row[1] for row in rows if row[2].strip() == "—"]
    assert not undocumented, f"systems without a docstring: {undocumented}"


def test_keys_page_lists_every_action_with_a_description():
    from llmviz.engine.input import ACTIONS

    text = docs_reference.keys_page()
    for action in ACTIONS:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{action}` |"))
        assert f"keys.action.{action}" not in row, f"{action} has no description in assets/lang/en/keys.toml"


def test_teach_page_links_open_each_chapter_at_its_start():
    from llmviz.scenes.chapters.format import load_chapters
    from llmviz.scenes.link import parse_link

    text = docs_reference.teach_page()
    links = re.findall(r"llmviz open '(llmviz://[^']+)'", text)
    chapters = load_chapters(lang="en")
    assert len(links) == len(chapters)
    for link, chapter in zip(links, chapters):
        view = parse_link(link)
        assert (view.scene, view.chapter, view.step) == (chapter.model, chapter.number, 1)


def _markdown_files():
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: p.name)
def test_relative_links_and_pictures_exist(path):
    text = path.read_text(encoding="utf-8")
    missing = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (path.parent / target.split("#")[0]).exists():
            missing.append(target)
    assert not missing, f"{path.relative_to(ROOT)} links to missing files: {missing}"


def test_architecture_guide_names_only_files_that_exist():
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:engine|models|scenes|common|tests)/[\w/.*-]+?\.(?:py|json|toml))`", text))
    assert len(named) >= 20
    missing = [name for name in sorted(named) if not list(ROOT.glob(name))]
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"
    subfolders = set(re.findall(r"`((?:engine|models|scenes)/[\w]+/)`", text))
    assert not [f for f in subfolders if not (ROOT / f).is_dir()]


def test_api_reference_renders_from_docstrings(tmp_path):
    pdoc = pytest.importorskip("pdoc", reason="pdoc is a dev dependency (make docs)")
    from llmviz.engine.ecs import schedule

    pdoc.render.configure(docformat="restructuredtext", show_source=False)
    pdoc.pdoc("llmviz.engine.ecs.schedule", output_directory=tmp_path)
    page = (tmp_path / "llmviz" / "engine" / "ecs" / "schedule.html").read_text(encoding="utf-8")
    first_line = schedule.__doc__.strip().splitlines()[0]
    assert first_line.split(",")[0] in page
    assert "Schedule" in page and "PHASES" in page
