"""The retrieval scene (issue 20) without a window: the worker's compute on the demo store, and what the view
writes from it: the top-k lit (a switched-off one red), each passage's words as labels coloured by the
answer's attention, the answer, the per-layer shares; a pinned chunk joins the prompt."""
from __future__ import annotations

import numpy as np
import pytest

from llmviz.models.rag import demo, facts
from llmviz.scenes import rag_live
from llmviz.scenes.worker_session import WEIGHTS_REQUEST


@pytest.fixture(scope="module")
def compute():
    return rag_live._make_compute(demo.demo_path())()


def _labels(view, ids) -> list[str]:
    w = view.world
    return [w.labels[i] for i in w["label"]["text_index"][w.slots(ids)]]


def test_view_shows_the_retrieval_and_the_answer(compute):
    space = compute(WEIGHTS_REQUEST)
    view = rag_live.RagView(len(space["chunks"]))
    view.show_space(space)
    q = facts.store_questions()[0]
    result = compute(rag_live.RagRequest(q.text, top_k=3))
    view.show_result(result, space)
    hits = [h.chunk for h in result.hits]
    colours = view.world["renderable"]["color"][view.world.slots(view.points)]
    assert np.allclose(colours[hits], rag_live.LIT_RGB)
    assert space["chunks"][hits[0]].text == q.person.card()
    words = [t for t in _labels(view, view.words) if t]
    assert words[0] == q.person.name.lower()          # the card as the reader reads it: its heading first
    assert len(words) == sum(len(w) for w in result.words)
    assert _labels(view, view.answer_label)[0] == f"answer: {result.answer.text}"
    assert result.answer.text.startswith(f"{q.person.name} lives in ")
    grid = [t for t in _labels(view, view.grid_labels) if t]
    assert len(grid) == 3 * len(result.passages)

    # the answer's passage switched off: it is red, out of the prompt, and the reader does not know
    off = compute(rag_live.RagRequest(q.text, top_k=3, off=frozenset({hits[0]})))
    view.show_result(off, space)
    colours = view.world["renderable"]["color"][view.world.slots(view.points)]
    assert np.allclose(colours[hits[0]], rag_live.OFF_RGB)
    assert hits[0] not in off.passages and not off.answer.knows

    # pinned back in, by its number, the answer returns
    pinned = compute(rag_live.RagRequest(q.text, top_k=3, off=frozenset({hits[1]}), pinned=(hits[0],)))
    assert hits[0] in pinned.passages and pinned.answer.knows


def test_every_index_type_retrieves_the_answer_card(compute):
    # HNSW and IVF are approximate (IVF probes 8 of the demo store's 13 lists): the rate, not every question
    questions = facts.store_questions()[::8]
    chunks = compute(WEIGHTS_REQUEST)["chunks"]
    for kind in ("flat", "hnsw", "ivf"):
        found = [q.person.card() in [chunks[h.chunk].text for h in
                                     compute(rag_live.RagRequest(q.text, top_k=3, index_type=kind)).hits]
                 for q in questions]
        assert np.mean(found) >= 0.95, kind
