"""Chapter text in other languages: assets/chapters/LANG/NN-name.toml holds only the text, English is the fallback.

A chapter's structure (model, cameras, focus, animations, durations, pauses) is written once, in the English
file; a translation file of the same name under the language's folder gives the words::

    title = "Mã hoá token (tokenization)"
    summary = "..."

    [[step]]                 # the K-th [[step]] translates the English file's K-th step
    title = "..."
    text = '''...'''         # the same templates ({value x[0]}, {input}, ...) and [[target|...]] targets

Every field is optional: what a translation leaves out (a title, a step, the whole file) is shown in English
and reported by ``language_report`` (`llmviz chapters --check-lang vi`). A translated text must carry exactly
the English text's templates and reference targets (the words around them are free), so that every live
number the English step shows, the translation shows too; one that does not is a ChapterError naming the
translation's file and line, like any malformed chapter.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

from .format import MAX_STEPS, Chapter, ChapterError, _Lines, parse_toml, read_source
from .text import _MARKUP

ENGLISH = "en"
TEXT_FIELDS = {"title": str, "summary": str, "step": list}
STEP_TEXT_FIELDS = {"title": str, "text": str}
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})?")


def translation_path(chapter_path, lang: str) -> Path:
    """Where a chapter's text in ``lang`` lives: beside the chapter, in the language's folder."""
    path = Path(chapter_path)
    return path.parent / lang / path.name


def markup(text: str) -> Counter:
    """The templates and reference targets of a text (what must survive translation), with their counts."""
    found = Counter()
    for m in _MARKUP.finditer(text):
        if m.group(0) in ("{{", "}}"):
            continue
        found["[[" + m.group(1).strip() + "]]" if m.group(1) is not None else "{" + " ".join(m.group(3).split()) + "}"] += 1
    return found


def _read(path: Path) -> tuple[dict, _Lines] | None:
    """A translation file's table and line finder; None where there is none."""
    if not path.is_file():
        return None
    source = read_source(path)
    return parse_toml(source, path), _Lines(source)


def _check(data: dict, lines: _Lines, path: Path, chapter: Chapter) -> list:
    """The translation's step tables after checking fields, types, count and markup against the chapter."""
    for key, value in data.items():
        if key not in TEXT_FIELDS:
            raise ChapterError(path, lines.find(key, key=True),
                               f"unknown field {key!r} in a translation (known: {', '.join(TEXT_FIELDS)}; "
                               f"cameras, focus and timing stay in the English file)")
        if not isinstance(value, TEXT_FIELDS[key]):
            raise ChapterError(path, lines.find(key, key=True), f"{key!r} must be a {TEXT_FIELDS[key].__name__}")
    steps = data.get("step", [])
    if len(steps) > min(MAX_STEPS, len(chapter.steps)):
        raise ChapterError(path, lines.step(len(chapter.steps)),
                           f"{len(steps)} steps, but chapter {chapter.number} has {len(chapter.steps)}")
    for i, raw in enumerate(steps):
        if not isinstance(raw, dict):
            raise ChapterError(path, lines.step(i), f"step {i + 1}: each step is a [[step]] table")
        for key, value in raw.items():
            if key not in STEP_TEXT_FIELDS:
                raise ChapterError(path, lines.find(key, i, key=True),
                                   f"step {i + 1}: unknown field {key!r} in a translation (known: title, text)")
            if not isinstance(value, str):
                raise ChapterError(path, lines.find(key, i, key=True), f"step {i + 1}: {key!r} must be a string")
        if "text" in raw:
            want, got = markup(chapter.steps[i].text), markup(raw["text"])
            if want != got:
                missing, extra = sorted((want - got).elements()), sorted((got - want).elements())
                what = "; ".join(p for p in (f"missing {', '.join(missing)}" if missing else "",
                                            f"not in English {', '.join(extra)}" if extra else "") if p)
                raise ChapterError(path, lines.find("text", i, key=True),
                                   f"step {i + 1}: the text's templates and references differ from the English "
                                   f"step's: {what}")
    return steps


def translated(chapter: Chapter, lang: str | None) -> Chapter:
    """The chapter with its text in ``lang`` where a translation gives it (English elsewhere)."""
    if not lang or lang == ENGLISH:
        return chapter
    path = translation_path(chapter.path, lang)
    found = _read(path)
    if found is None:
        return chapter
    data, lines = found
    steps = _check(data, lines, path, chapter)
    new_steps = tuple(replace(step, title=steps[i].get("title", step.title), text=steps[i].get("text", step.text))
                      if i < len(steps) else step for i, step in enumerate(chapter.steps))
    return replace(chapter, title=data.get("title", chapter.title), summary=data.get("summary", chapter.summary),
                   steps=new_steps, language=lang)


def current_language() -> str:
    """The interface's language (common/i18n: --lang, or the window's remembered choice)."""
    from llmviz.common import i18n

    return i18n.language() or ENGLISH


def check_language(lang: str) -> None:
    """ValueError with one line where ``lang`` is not a language tag (it names a folder)."""
    if not _LANGUAGE.fullmatch(lang or ""):
        raise ValueError(f"language {lang!r} is not a language tag such as 'vi' or 'pt-BR'")


def language_report(lang: str, chapters: list[Chapter] | None = None) -> list[str]:
    """One line per piece of chapter text ``lang`` lacks (shown in English): a file, a title, a summary, a step's
    title or text. A translation that is malformed raises its ChapterError (file:line) instead."""
    from .format import load_chapters

    check_language(lang)
    if lang == ENGLISH:
        return []
    chapters = chapters if chapters is not None else load_chapters(lang=ENGLISH)
    lines = []
    for chapter in chapters:
        path = translation_path(chapter.path, lang)
        found = _read(path)
        if found is None:
            lines.append(f"{path}: missing: chapter {chapter.number} \"{chapter.title}\" is shown in English")
            continue
        data, finder = found
        steps = _check(data, finder, path, chapter)
        for key in ("title", "summary"):
            if key not in data and (key == "title" or chapter.summary):
                lines.append(f"{path}: chapter {chapter.number}: no {key} (English shown)")
        for i, step in enumerate(chapter.steps):
            raw = steps[i] if i < len(steps) else {}
            for key in ("title", "text"):
                if key not in raw:
                    lines.append(f"{path}: step {i + 1} \"{step.title}\": no {key} (English shown)")
    return lines
