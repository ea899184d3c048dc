"""llava-tiny's panel: the picture (opened as vit-tiny's panel opens one: a path, a file dialog, a dropped file,
the next sample), the question (editable, or one of the three it was trained on), the answer generated token by
token with each token's probability, and for the chosen answer token its attention to the image patches laid
over the picture (one layer and head, a layer's heads' mean, or the mean of every layer and head).

It is vit-tiny's panel (scenes/vit_panels.py) for the picture's opening, its texture and its dialog; what it draws
besides is small and runs on the frame thread; the model runs on the worker (scenes/llava_live.py).
"""
from __future__ import annotations

from imgui_bundle import imgui

from llmviz.common.i18n import num, tr
from llmviz.models.sim import llava_vocab
from llmviz.scenes.panels import BAR_RGB, BAR_TOP_RGB, DIM_RGB, ERROR_RGB, PANEL_WIDTH, begin_side_panel, end_side_panel
from llmviz.scenes.vit_panels import VitPanel

MAX_QUESTION_FIELD = llava_vocab.MAX_QUESTION_CHARS


class LlavaPanel(VitPanel):
    """Draws a LiveLlava's picture, question, answer and patch attention."""

    def __init__(self, live, ui_renderer=None):
        super().__init__(live, ui_renderer)
        self.question = live.question
        self.question_note = ""

    def draw(self, x: float, y: float) -> None:
        s = self.live
        self.opener.poll(s.set_image_path)
        if begin_side_panel(tr("llava.title") + "###llava", x, y):
            imgui.text_colored(DIM_RGB, s.about)
            self._open(s)
            imgui.separator()
            self._ask(s)
            imgui.separator()
            if s.trace is None:
                imgui.text_colored(DIM_RGB, tr("nano.waiting"))
            else:
                self._answer(s)
                imgui.separator()
                self._choice(s)
                self._picture(s)
            if s.error:
                imgui.text_colored(ERROR_RGB, s.error)
        end_side_panel()

    def _open(self, s) -> None:
        """vit-tiny's row (its Replay patches has no picture to replay here)."""
        self._open_row(s, s.next_sample)
        self._open_notes()

    def _ask(self, s) -> None:
        imgui.text(tr("llava.question"))
        imgui.set_next_item_width(PANEL_WIDTH - 70)
        changed, self.question = imgui.input_text("##question", self.question[:MAX_QUESTION_FIELD],
                                                  imgui.InputTextFlags_.enter_returns_true)
        imgui.same_line()
        if imgui.button(tr("llava.ask") + "###ask") or changed:
            self.question_note = s.set_question(self.question) or ""
        for kind, text in llava_vocab.QUESTIONS.items():
            if imgui.button(f"{text}##{kind}"):
                self.question, self.question_note = text, s.set_question(text) or ""
            imgui.same_line()
        imgui.new_line()
        if self.question_note:
            imgui.text_colored(ERROR_RGB, self.question_note)

    def _answer(self, s) -> None:
        said = llava_vocab.answer_text([t for t, _ in s.answer])
        imgui.text(tr("llava.answer", said=said) + ("" if s.done else " …"))
        if imgui.button(tr("llava.pause" if s.playing else "llava.play") + "###play"):
            s.toggle_play()
        imgui.same_line()
        if imgui.button(tr("llava.step") + "###step") and not s.playing:
            s.step()
        imgui.same_line()
        imgui.text_colored(DIM_RGB, tr("llava.prompt", n=s.prompt_length()))
        imgui.text_colored(DIM_RGB, tr("llava.answer_tokens"))
        shown = s.trace_answer()
        for k, (token, p) in enumerate(s.answer):
            word = llava_vocab.WORDS[token]
            chosen = s.choice.token == k
            if imgui.radio_button(f"{word}##tok{k}", chosen):
                s.choose(token=None if chosen else k)
            imgui.same_line(110)
            imgui.push_style_color(imgui.Col_.plot_histogram, BAR_TOP_RGB if chosen else BAR_RGB)
            imgui.progress_bar(p, imgui.ImVec2(200, 0), num(p, ".3f") + ("" if k < len(shown) else tr("llava.tracing")))
            imgui.pop_style_color()
        nxt = s.next_distribution()
        if nxt is not None and not s.done:
            best = int(nxt.argmax())
            imgui.text_colored(DIM_RGB, tr("llava.next", word=llava_vocab.WORDS[best], p=float(nxt[best])))
        imgui.text_colored(DIM_RGB, tr("clip.last_pass", ms=s.last_tick_seconds * 1000))

    def _choice(self, s) -> None:
        c = s.choice
        imgui.text_colored(DIM_RGB, s.heat_words())
        n_layers = sum(1 for i in s.trace if i.startswith("blocks.") and i.endswith(".resid2"))
        n_heads = sum(1 for i in s.trace if i.startswith("blocks.0.attn.head.") and i.endswith(".softmax"))
        imgui.text(tr("vit.layer"))
        for b in [None, *range(n_layers)]:
            imgui.same_line()
            if imgui.radio_button(tr("vit.mean") + "###meanlayer" if b is None else f"{b}##layer", c.layer == b):
                s.choose(layer=b, head=None if b is None else c.head)
        if c.layer is None:
            return
        imgui.text(tr("vit.head"))
        for h in [None, *range(n_heads)]:
            imgui.same_line()
            if imgui.radio_button(tr("vit.mean") + "###meanhead" if h is None else f"{h}##head", c.head == h):
                s.choose(head=h)

    def _picture(self, s) -> None:
        self._picture_grid(s, s.heat())
        g = s.grid
        imgui.text_colored(DIM_RGB, tr("llava.patches", g=g, n=g * g))
