"""`llmviz chapters`: the guided chapters and their steps (validated against the model's layout; no GPU, no torch)."""
from __future__ import annotations

import json

from llmviz.scenes.cli.main import CliError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("chapters", help="list the guided chapters and their steps")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--check-lang", metavar="CODE", default=None,
                   help="list what language CODE lacks (interface texts and chapter text shown in English instead) "
                        "and texts whose placeholders differ from English's; exit 1 if anything is listed")
    p.set_defaults(func=run)


def check_lang(code: str) -> int:
    """`llmviz chapters --check-lang CODE`: one line per interface key or chapter text CODE lacks or fills wrongly."""
    from llmviz.common import i18n
    from llmviz.scenes.chapters.language import language_report
    from llmviz.scenes.component_info import role_texts

    try:
        lines = i18n.check(code).lines() + i18n.check_sentences(code, role_texts()) + language_report(code)
    except ValueError as err:  # LanguageError and ChapterError: one line naming the file
        raise CliError(f"llmviz: {err}") from None
    for line in lines:
        print(line)
    if not lines:
        print(f"{code}: every interface text and every chapter step is translated")
    return 1 if lines else 0


def describe(chapters, timelines) -> list[dict]:
    """Chapters as plain data: number, title, file, total seconds, and each step's timing and targets."""
    out = []
    for chapter, timeline in zip(chapters, timelines):
        steps = []
        for k, (step, (start, duration)) in enumerate(zip(chapter.steps, timeline)):
            steps.append({"step": k + 1, "title": step.title, "start": round(start, 6), "duration": duration,
                          "pause": step.pause, "scene": chapter.scene_of(k), "camera": step.camera.describe() if step.camera else None,
                          "focus": list(step.focus), "frame": list(step.frame), "animations": [a.kind for a in step.animations]})
        out.append({"chapter": chapter.number, "title": chapter.title, "model": chapter.model,
                    "summary": chapter.summary, "file": chapter.path, "duration": chapter.duration, "steps": steps})
    return out


def run(args) -> int:
    if args.check_lang is not None:
        return check_lang(args.check_lang)
    from llmviz.scenes.chapters.format import ChapterError, load_chapters, model_names
    from llmviz.scenes.chapters.runner import step_timeline

    try:
        chapters = load_chapters(model_names)  # each validated against its own model's layout
    except ChapterError as err:
        raise CliError(f"llmviz: {err}") from None
    if not chapters:
        raise CliError("llmviz: no chapter files found")
    data = describe(chapters, [step_timeline(c) for c in chapters])
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    for chapter in data:
        print(f"{chapter['chapter']:>2}  {chapter['title']}  ({chapter['model']}, {len(chapter['steps'])} steps, "
              f"{chapter['duration']:g} s)")
        for step in chapter["steps"]:
            extras = ", ".join(step["animations"])
            print(f"      {step['step']}. {step['title']:<40} {step['start']:>6.1f} s +{step['duration']:g}"
                  f"{'  ⏸' if step['pause'] else ''}{'  [' + extras + ']' if extras else ''}"
                  f"{'  on ' + step['scene'] if step['scene'] != chapter['model'] else ''}")
    return 0



def chapter_camera(scene, engine, chapter: int, step: int):
    """For `llmviz render --no-ui --chapter N --step K`: put the scene at that moment, its blocks filling the
    whole image; bad numbers are one error line."""
    from llmviz.scenes.chapters.apply import apply_chapter_moment

    try:
        return apply_chapter_moment(scene, engine, chapter, step)
    except ValueError as err:  # ChapterError included: a broken chapter file names its file and line
        raise CliError(f"llmviz: {err}") from None
