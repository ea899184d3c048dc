"""Chapter text in two languages: every step of every chapter translated into Vietnamese with the same live numbers,
English shown (and reported) where a translation is missing, malformed translations named by file and line."""
import re

import pytest

from llmviz.common.atomic import write_atomic
from llmviz.scenes.chapters.format import ChapterError, chapter_files, load_chapters, model_names
from llmviz.scenes.chapters.language import language_report, markup, translation_path

CHAPTER = '''title = "Tokens"
model = "nano-gpt"
summary = "Letters become indices."

[[step]]
title = "The input"
text = "The model reads {input}: [[tokens|the token column]] holds {tokens}."
duration = 2.0
camera = "preset:overview"

[[step]]
title = "Row 0"
text = "Position 0 holds {letter tokens[0]} (index {value tokens[0]})."
duration = 2.0
'''


def _folder(tmp_path, translation: str | None):
    write_atomic(tmp_path / "01-tokens.toml", CHAPTER)
    if translation is not None:
        (tmp_path / "vi").mkdir()
        write_atomic(tmp_path / "vi" / "01-tokens.toml", translation)
    return tmp_path


def _templates(text: str) -> list[str]:
    """The markup of a text found independently of the code under test: every {...} and [[target|"""
    found = [m.group(0) for m in re.finditer(r"\{[^{}]*\}", text.replace("{{", "").replace("}}", ""))]
    found += ["[[" + m.group(1).strip() for m in re.finditer(r"\[\[([^\]|]+)", text)]
    return sorted(found)


def test_every_chapter_step_is_in_vietnamese_with_the_same_numbers():
    english = load_chapters(model_names, lang="en")
    vietnamese = load_chapters(model_names, lang="vi")
    assert language_report("vi") == []
    assert [c.number for c in vietnamese] == [c.number for c in english]
    for en, vi in zip(english, vietnamese):
        assert translation_path(en.path, "vi").is_file()
        assert vi.language == "vi" and vi.title != en.title
        assert len(vi.steps) == len(en.steps)
        for k, (a, b) in enumerate(zip(en.steps, vi.steps)):
            where = f"chapter {en.number} step {k + 1}"
            assert b.text != a.text, where  # (a title may stay as it is: "GPT-3", "X = E_token + E_pos")
            assert _templates(b.text) == _templates(a.text), where  # placeholders and references match
            # the structure is the English file's, untouched
            assert (b.camera, b.focus, b.frame, b.duration, b.pause, b.animations, b.snapshot) == \
                   (a.camera, a.focus, a.frame, a.duration, a.pause, a.animations, a.snapshot), where
        # Vietnamese, not English left in place: its letters with diacritics appear in every step
        assert all(re.search("[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", s.text.lower())
                   for s in vi.steps), en.number


def test_a_missing_step_is_shown_in_english_and_reported(tmp_path):
    folder = _folder(tmp_path, 'title = "Token"\n[[step]]\ntitle = "Đầu vào"\n'
                               'text = "Mô hình đọc {input}: [[tokens|cột token]] chứa {tokens}."\n')
    names = model_names("nano-gpt")
    (chapter,) = load_chapters(names, folder=folder, lang="vi")
    assert chapter.title == "Token" and chapter.summary == "Letters become indices."
    assert chapter.steps[0].title == "Đầu vào" and chapter.steps[0].text.startswith("Mô hình đọc")
    assert chapter.steps[1].title == "Row 0" and chapter.steps[1].text.startswith("Position 0")
    report = language_report("vi", load_chapters(names, folder=folder, lang="en"))
    assert len(report) == 3 and all(line.startswith(str(folder / "vi" / "01-tokens.toml")) for line in report)
    assert any("no summary" in line for line in report)
    assert sum("step 2" in line for line in report) == 2  # its title and its text
    # no translation file at all: all English, one line
    other = tmp_path / "other"
    other.mkdir()
    write_atomic(other / "01-tokens.toml", CHAPTER)
    (chapter,) = load_chapters(names, folder=other, lang="vi")
    assert chapter.language == "en" and chapter.title == "Tokens"
    assert len(language_report("vi", [chapter])) == 1


@pytest.mark.parametrize("translation,line,needle", [
    ('[[step]]\ntitle = "A"\ntext = "Mô hình đọc các chữ: {tokens}."\n', 3, "missing [[tokens]], {input}"),
    ('[[step]]\ntext = "Mô hình {input} [[tokens|cột]] {tokens} {value tokens[1]}"\n', 2,
     "not in English {value tokens[1]}"),
    ('[[step]]\ntext = "{input} [[embed.out|x]] {tokens}"\n', 2, "missing [[tokens]]; not in English [[embed.out]]"),
    ('title = "T"\n[[step]]\ntitle = "A"\ncamera = "preset:overview"\n', 4, "unknown field 'camera'"),
    ('[[step]]\n[[step]]\n[[step]]\n', 3, "3 steps, but chapter 1 has 2"),
    ('title = 3\n', 1, "'title' must be a str"),
    ('title = "T\n', 1, "not valid TOML"),
])
def test_a_malformed_translation_names_its_file_and_line(tmp_path, translation, line, needle):
    folder = _folder(tmp_path, translation)
    with pytest.raises(ChapterError) as err:
        load_chapters(model_names("nano-gpt"), folder=folder, lang="vi")
    assert err.value.file == str(folder / "vi" / "01-tokens.toml") and err.value.line == line
    assert needle in err.value.problem


def test_markup_counts_templates_and_reference_targets():
    counted = markup("a {value x[0]} b {value  x[0]} [[blocks.0|the block]] {{literal}} [[embed.out]]")
    assert counted == {"{value x[0]}": 2, "[[blocks.0]]": 1, "[[embed.out]]": 1}


def test_bundled_translations_are_files_beside_the_chapters():
    files = {p.name for p in chapter_files()}
    translated = {p.name for p in (chapter_files()[0].parent / "vi").glob("*.toml")}
    assert translated == files
