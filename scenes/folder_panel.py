"""A user's model folder's panel: the input text, step / play, the temperature, the tokens generated with their
probabilities, the next token's most likely candidates, and what the recording left out or pooled."""
from __future__ import annotations

import numpy as np
from imgui_bundle import imgui

from llmviz.common.i18n import num, tr
from llmviz.models.sim.sampling import next_token_distribution
from llmviz.scenes.panels import (DIM_RGB, ERROR_RGB, GENERATED_RGB, INPUT_RGB, PANEL_WIDTH, begin_side_panel, end_side_panel,
                                  probability_bar)
from llmviz.scenes.recorded import DEFAULT_TEXT, downsampled_note, shown_token

TOP_CANDIDATES = 5


class FolderPanel:
    """Draws a FolderLive; edits go back to it (set_text, step, toggle_play), which return at once."""

    def __init__(self, live):
        self.live = live
        self.text = DEFAULT_TEXT
        self._top_key, self._top = None, []

    def draw(self, x: float, y: float) -> None:
        s = self.live
        if begin_side_panel(tr("folder.title", name=s.name) + "###folder", x, y):
            imgui.text_colored(DIM_RGB, tr("folder.about", n=s.parameters, about=s.about))
            self._input(s)
            imgui.separator()
            self._sequence(s)
            imgui.separator()
            self._next(s)
            note = downsampled_note(s.downsampled)
            if note:
                imgui.text_colored(DIM_RGB, note)
            if s.error:
                imgui.text_colored(ERROR_RGB, s.error)
        end_side_panel()

    def _input(self, s) -> None:
        if s.has_tokenizer:
            imgui.text(tr("folder.text", n=s.capacity))
            imgui.set_next_item_width(-1)
            entered, text = imgui.input_text("##folder_text", self.text, imgui.InputTextFlags_.enter_returns_true)
            self.text = text
            if entered:
                s.set_text(text)
        else:
            imgui.text_colored(DIM_RGB, tr("folder.no_tokenizer"))
        if imgui.button(tr("nano.step") + "###step"):
            s.step()
        imgui.same_line()
        if imgui.button(tr("nano.pause" if s.playing else "folder.generate") + "###play"):
            s.toggle_play()
        imgui.set_next_item_width(PANEL_WIDTH - 130)
        _, s.temperature = imgui.slider_float(tr("nano.temperature") + "###temperature", s.temperature, 0.0, 2.0,
                                              num(s.temperature, ".2f").replace("%", "%%"))
        if s.busy:
            imgui.text_colored(DIM_RGB, tr("folder.recording"))
        if s.stopped:
            imgui.text_colored(DIM_RGB, tr("folder.stopped", why=s.stopped))

    def _sequence(self, s) -> None:
        imgui.text(tr("folder.tokens", n=len(s.ids)))
        n_input = len(s.ids) - len(s.generated)
        imgui.text_colored(INPUT_RGB, " ".join(shown_token(t) for t in s.strings[:n_input]))
        if s.generated:   # one wrapped line: each generated token with the probability it was picked at
            imgui.text_colored(GENERATED_RGB, "  ".join(f"{token} ({num(p, '.2f')})" for token, p in s.generated))

    def _next(self, s) -> None:
        if s.trace is None or not len(s.ids):
            return
        key = (s.trace_version, round(s.temperature, 3))
        if key != self._top_key:   # once per new pass or temperature, not every frame
            probs = next_token_distribution(s.trace["logits"][-1], s.temperature)
            order = np.argsort(-probs, kind="stable")[:TOP_CANDIDATES]
            self._top = [(int(i), float(probs[i])) for i in order]
            self._top_key = key
            self._names = s.token_names([i for i, _ in self._top])
        imgui.text(tr("folder.next", t=s.temperature))
        for rank, ((token, p), name) in enumerate(zip(self._top, self._names)):
            probability_bar(f"{name} ({token})", p, top=rank == 0, indent=120, width=PANEL_WIDTH - 150)
