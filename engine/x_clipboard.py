"""The X11 clipboard of a pyglet window, answered from the frame loop: text another program can paste.

On X the clipboard is a conversation: the owner keeps the text, and a reader (a terminal's paste,
`xclip -o -selection clipboard`) sends the owner a SelectionRequest event and waits for its
SelectionNotify. pyglet has a handler for that request, but moderngl-window pumps a pyglet window's
events with ``window.dispatch_events()``, which takes only maskable events (``XCheckWindowEvent``)
and ClientMessage: SelectionRequest and SelectionClear are never taken from the queue, so every
reader waited forever. ``serve()`` takes exactly those two kinds for this window, without blocking,
and is called once a frame; the answer is flushed at once, not left in Xlib's output buffer.

The text is offered as UTF8_STRING and STRING (Latin-1, as ICCCM defines it, for old readers),
and TARGETS lists them. It is kept as bytes, so a property's length is the encoded length (pyglet's
handler sent the character count, cutting any non-ASCII text short).
"""
from __future__ import annotations

import ctypes

XA_ATOM = 4     # X11/Xatom.h
XA_STRING = 31  # X11/Xatom.h: ISO Latin-1 text
MAX_BYTES = 1 << 18  # one property; larger text would need the INCR protocol (a link is at most 16 KiB)


class ClipboardError(Exception):
    """The clipboard could not be taken: one line saying why."""


class XClipboard:
    """The CLIPBOARD selection owned by one pyglet Xlib window (``window._x_display``, ``window._window``)."""

    def __init__(self, pyglet_window):
        from pyglet.libs.x11 import xlib

        self.xlib = xlib
        self.display = pyglet_window._x_display
        self.window = pyglet_window._window
        atom = lambda name: xlib.XInternAtom(self.display, name.encode("ascii"), False)  # noqa: E731
        self.clipboard = atom("CLIPBOARD")
        self.utf8 = atom("UTF8_STRING")
        self.targets = atom("TARGETS")
        self.data: bytes | None = None  # what this window offers while it owns the clipboard
        self.answered = 0               # requests answered with the text (for tests and the status)

    @property
    def owned(self) -> bool:
        return self.data is not None

    def set_text(self, text: str) -> None:
        data = text.encode("utf-8")
        if len(data) > MAX_BYTES:
            raise ClipboardError(f"{len(data):,} bytes is more than one X property holds here")
        x = self.xlib
        x.XSetSelectionOwner(self.display, self.clipboard, self.window, x.CurrentTime)
        if x.XGetSelectionOwner(self.display, self.clipboard) != self.window:
            raise ClipboardError("the X server gave the clipboard to another program")
        self.data = data
        x.XFlush(self.display)

    def serve(self) -> None:
        """Answer every clipboard request waiting for this window, and notice when another program took it."""
        x = self.xlib
        event = x.XEvent()
        while x.XCheckTypedWindowEvent(self.display, self.window, x.SelectionClear, ctypes.byref(event)):
            # A clear queued before this window took the clipboard again is stale: ask who owns it now.
            if event.xselectionclear.selection == self.clipboard and \
                    x.XGetSelectionOwner(self.display, self.clipboard) != self.window:
                self.data = None
        sent = False
        while x.XCheckTypedWindowEvent(self.display, self.window, x.SelectionRequest, ctypes.byref(event)):
            self._answer(event.xselectionrequest)
            sent = True
        if sent:
            x.XFlush(self.display)

    def _answer(self, request) -> None:
        x = self.xlib
        # An obsolete reader names no property: the answer goes into the property named like the target.
        prop = request.property or request.target
        granted = False
        if request.selection == self.clipboard and self.data is not None:
            if request.target == self.targets:
                offered = (x.Atom * 3)(self.targets, self.utf8, XA_STRING)
                x.XChangeProperty(self.display, request.requestor, prop, XA_ATOM, 32, x.PropModeReplace,
                                  ctypes.cast(offered, ctypes.POINTER(ctypes.c_ubyte)), len(offered))
                granted = True
            elif request.target in (self.utf8, XA_STRING):
                data = self.data if request.target == self.utf8 else \
                    self.data.decode("utf-8").encode("latin-1", "replace")
                buffer = (ctypes.c_ubyte * max(1, len(data))).from_buffer_copy(data or b"\0")
                x.XChangeProperty(self.display, request.requestor, prop, request.target, 8, x.PropModeReplace,
                                  buffer, len(data))
                granted = True
                self.answered += 1
        reply = x.XEvent()
        reply.xselection.type = x.SelectionNotify
        reply.xselection.display = request.display
        reply.xselection.requestor = request.requestor
        reply.xselection.selection = request.selection
        reply.xselection.target = request.target
        reply.xselection.property = prop if granted else 0  # 0 (None): refused, the reader tries another target
        reply.xselection.time = request.time
        x.XSendEvent(self.display, request.requestor, False, 0, ctypes.byref(reply))


def window_clipboard(pyglet_window) -> XClipboard | None:
    """The window's X clipboard, or None on a window system that is not X11 (pyglet's own works there)."""
    if not hasattr(pyglet_window, "_x_display"):
        return None
    return XClipboard(pyglet_window)
