"""Scenes other than a model's that a chapter step may show (its ``scene = "rag"``): what each offers a step.

A model's scene offers its layout (blocks to focus, frame and animate, presets, a trace to read); a scene
with a world of its own, such as the retrieval scene, offers only what this table declares: the camera
presets a step's ``camera = "preset:NAME"`` may name (none: the scene's start camera), the values its
text may read (``{value rag.hit.score[0]}``, ``{text rag.answer}``), and what the text panel says while
those values are still loading. The scene's module gives the presets' poses (``PRESETS``, eye and target)
and the values (``chapter_values_of(built_scene)``, a callable returning a dict or None); the table is the
contract, checked against the module by tests/test_chapter_rag_step.py.
"""
from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class ChapterScene:
    id: str                 # the scene name the registry builds (scenes/registry.py)
    presets: tuple          # camera presets a step may name; the first is the scene's start camera
    values: tuple           # ids its text may read
    waiting: str            # i18n key: what the text panel says until the scene's first values arrive
    module: str             # holds PRESETS {name: (eye, target)} and chapter_values_of(scene)

    @property
    def start(self) -> str:
        return self.presets[0]


# The retrieval scene's values (scenes/rag_live.py chapter_values): the question and its embedding, the store,
# the hits best first (score, file name, rank, character positions), the passages in the prompt in order with
# their share of the answer's attention (per cent), the passage with the largest share (the answer's source),
# and the answer with each word's probability.
RAG_VALUES = ("rag.question", "rag.query", "rag.query.xyz", "rag.chunks", "rag.top_k",
              "rag.hit.score", "rag.hit.file", "rag.hit.rank", "rag.hit.start", "rag.hit.end",
              "rag.passage.file", "rag.passage.rank", "rag.passage.attention",
              "rag.source.file", "rag.source.rank", "rag.source.score", "rag.source.attention",
              "rag.answer", "rag.answer.words", "rag.answer.probability", "rag.knows")

CHAPTER_SCENES = {
    "rag": ChapterScene("rag", ("overview", "retrieval", "embedding space", "prompt", "attention layers"), RAG_VALUES,
                        "chapter_ui.waiting_rag", "llmviz.scenes.rag_live"),
}


def chapter_scene(name: str | None) -> ChapterScene | None:
    """The table's entry for a scene name, None for a model's scene (or anything else)."""
    return CHAPTER_SCENES.get(name) if name else None


@functools.lru_cache(maxsize=8)
def preset_poses(name: str) -> dict:
    """The scene's camera presets, name -> (eye, target), from its module (numpy only, no torch)."""
    return dict(importlib.import_module(CHAPTER_SCENES[name].module).PRESETS)


def scene_values(scene):
    """A values callable (a dict of the table's ids, None until they arrive) for a built scene of the table."""
    return importlib.import_module(CHAPTER_SCENES[scene.name].module).chapter_values_of(scene)
