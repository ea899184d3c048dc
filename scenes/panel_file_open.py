"""The "open a file" row of a live model's side panel: a path field with Open, a native file dialog (imgui_bundle's
portable_file_dialogs, in its own process, polled each frame so the frame never waits) and a note saying what
happened. What to do with the chosen path is the caller's (`open(path)`: a worker request, never file work here).
whisper-tiny's, vit-tiny's, clip-tiny's and llava-tiny's panels use it.
"""
from __future__ import annotations

from imgui_bundle import imgui

from llmviz.common.i18n import tr
from llmviz.scenes.panels import DIM_RGB, PANEL_WIDTH

MAX_PATH_CHARS = 4096


class FileOpener:
    """One panel's path field and dialog. `filters` are portable_file_dialogs' [label, patterns] pairs."""

    def __init__(self, title: str, filters: list[str], source: str = ""):
        self.title, self.filters = title, filters
        self.path = self._source = source
        self._dialog = None
        self.note = ""

    def poll(self, open_path) -> None:
        """Once a frame: the dialog's answer, when it has one, goes to `open_path`."""
        if self._dialog is None or not self._dialog.ready(0):
            return
        chosen = [p for p in self._dialog.result() if p]
        self._dialog = None
        self.note = "" if chosen else tr("file_open.none_chosen")
        if chosen:
            open_path(chosen[0])

    def draw(self, source: str, open_path) -> None:
        """The path field (showing `source` when it changed elsewhere), Open, and Choose file…; the caller may
        put more buttons on the same line after it."""
        if source != self._source:
            self.path = self._source = source
        imgui.set_next_item_width(PANEL_WIDTH - 90)
        changed, self.path = imgui.input_text("##path", self.path, imgui.InputTextFlags_.enter_returns_true)
        imgui.same_line()
        if (imgui.button(tr("menu.model.open") + "###open") or changed) and 0 < len(self.path) <= MAX_PATH_CHARS:
            open_path(self.path)
        if imgui.button(tr("file_open.choose") + "###choose") and self._dialog is None:
            self._open_dialog()

    def draw_note(self) -> None:
        if self.note:
            imgui.push_text_wrap_pos(PANEL_WIDTH - 12)
            imgui.text_colored(DIM_RGB, self.note)
            imgui.pop_text_wrap_pos()

    def _open_dialog(self) -> None:
        try:
            from imgui_bundle import portable_file_dialogs as pfd

            self._dialog = pfd.open_file(self.title, "", self.filters)
            self.note = tr("file_open.choosing")
        except Exception as err:  # no dialog backend on this platform: say so, the other ways still work
            self._dialog, self.note = None, tr("file_open.no_dialog", error=str(err))
