"""The retrieval scene's panel: the question (editable), top-k and the index type, each retrieved passage with
its score and a box to switch it off, a chunk number to pin into the prompt, and the answer with each token's
probability and each passage's share of its attention. Changing anything sends one request to the worker
(scenes/rag_live.py); the panel shows the last result meanwhile."""
from __future__ import annotations

from imgui_bundle import imgui

from llmviz.common.i18n import num, tr
from llmviz.scenes.panels import DIM_RGB, ERROR_RGB, PANEL_WIDTH, begin_side_panel, end_side_panel

INDEX_TYPES = ("flat", "hnsw", "ivf")


class RagPanel:
    def __init__(self, live):
        self.live = live
        self.question = live.request.question
        self.pin_chunk = 0

    def draw(self, x: float, y: float) -> None:
        s = self.live
        if begin_side_panel(tr("rag.title") + "###rag", x, y):
            imgui.text_colored(DIM_RGB, s.about)
            imgui.text(tr("rag.question"))
            imgui.set_next_item_width(PANEL_WIDTH - 20)
            changed, self.question = imgui.input_text("##question", self.question[:200],
                                                      imgui.InputTextFlags_.enter_returns_true)
            if changed and self.question.strip():
                s.ask(question=self.question.strip())
            imgui.set_next_item_width(160)
            changed, k = imgui.slider_int(tr("moe.top_k") + "###top_k", s.request.top_k, 1, 8)
            if changed:
                s.ask(top_k=k)
            imgui.same_line()
            imgui.set_next_item_width(90)
            current = INDEX_TYPES.index(s.request.index_type)
            changed, choice = imgui.combo(tr("rag.index") + "###index", current, list(INDEX_TYPES))
            if changed:
                s.ask(index_type=INDEX_TYPES[choice])
            imgui.separator()
            r = s.trace
            if r is None:
                imgui.text_colored(DIM_RGB, tr("rag.loading"))
            else:
                self._passages(s, r)
                imgui.separator()
                self._answer(r)
            if s.busy:
                imgui.text_colored(DIM_RGB, tr("rag.busy"))
            if s.error:
                imgui.text_colored(ERROR_RGB, s.error)
        end_side_panel()

    def _passages(self, s, r) -> None:
        chunks = s.weights["chunks"]
        shares = dict(zip(r.passages, r.answer.passage_shares()))
        imgui.text(tr("rag.retrieved"))
        for h in r.hits:
            used = h.chunk not in s.request.off
            changed, _ = imgui.checkbox(tr("rag.hit", rank=h.rank + 1, score=h.score, chunk=h.chunk) + f"##use{h.chunk}", used)
            if changed:
                s.toggle_off(h.chunk)
            imgui.same_line()
            share = tr("rag.share", percent=100 * shares[h.chunk]) if h.chunk in shares else tr("rag.off")
            imgui.text_colored(DIM_RGB, share)
            imgui.text_colored(DIM_RGB, "   " + chunks[h.chunk].text.splitlines()[0][:60])
        for c in s.request.pinned:
            changed, _ = imgui.checkbox(tr("rag.pinned", chunk=c) + f"##pin{c}", True)
            if changed:
                s.pin(c)
        imgui.set_next_item_width(120)
        _, self.pin_chunk = imgui.input_int("##pin", self.pin_chunk)
        self.pin_chunk = max(0, min(len(chunks) - 1, self.pin_chunk))
        imgui.same_line()
        if imgui.button(tr("rag.pin") + "###pin_button"):
            s.pin(self.pin_chunk)
        imgui.text_colored(DIM_RGB, "   " + chunks[self.pin_chunk].text.splitlines()[0][:60])

    def _answer(self, r) -> None:
        a = r.answer
        imgui.text(tr("llava.answer", said=a.text))
        if not a.knows:
            imgui.text_colored(DIM_RGB, tr("rag.unknown"))
        for t in a.tokens:
            per = "  ".join(f"#{j + 1} {num(100 * v, '.0f')}%" for j, v in enumerate(t.passage_shares))
            imgui.text(f"{t.word:<12} {num(100 * t.probability, '5.1f')}%")
            imgui.same_line()
            imgui.text_colored(DIM_RGB, per)
