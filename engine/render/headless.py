"""Offscreen rendering: an EGL context with no display, or an offscreen target on any context.

``headless_renderer`` is what ``llmviz render``, ``llmviz bench`` and the tests use; it runs
the very same GLRenderer as the window, only drawing into a framebuffer of its own. Given a
window's context (``moderngl.create_context()``) it renders offscreen there too, for
screenshots at a size other than the window's.
"""
from __future__ import annotations

import moderngl

from .gl import GLRenderer


def create_headless_context() -> moderngl.Context:
    """A standalone OpenGL 3.3+ core context through EGL (no window system needed)."""
    return moderngl.create_standalone_context(backend="egl", require=330)


class OffscreenTarget:
    """An RGBA8 colour + 24-bit depth framebuffer of a given size."""

    def __init__(self, ctx: moderngl.Context, size: tuple[int, int]):
        self.ctx = ctx
        self.size = (int(size[0]), int(size[1]))
        self.color = ctx.renderbuffer(self.size, 4)
        self.depth = ctx.depth_renderbuffer(self.size)
        self.framebuffer = ctx.framebuffer(color_attachments=[self.color], depth_attachment=self.depth)

    @property
    def nbytes(self) -> int:
        return self.size[0] * self.size[1] * 8

    def release(self) -> None:
        self.framebuffer.release()
        self.color.release()
        self.depth.release()


class HeadlessRenderer(GLRenderer):
    """A GLRenderer that owns its offscreen target (and its context, when it created one)."""

    def __init__(self, size=(1280, 720), ctx: moderngl.Context | None = None, **kwargs):
        self._owns_context = ctx is None
        ctx = ctx or create_headless_context()
        self.offscreen = OffscreenTarget(ctx, size)
        super().__init__(ctx, self.offscreen.framebuffer, self.offscreen.size, **kwargs)

    def resize(self, size) -> None:
        """Reallocate the offscreen target (window resizes are rare; frames never reallocate)."""
        size = (int(size[0]), int(size[1]))
        if size == self.offscreen.size:
            return
        self.offscreen.release()
        self.offscreen = OffscreenTarget(self.ctx, size)
        self.set_target(self.offscreen.framebuffer, size)

    def buffer_bytes(self) -> int:
        return super().buffer_bytes() + self.offscreen.nbytes

    def release(self) -> None:
        super().release()
        self.offscreen.release()
        if self._owns_context:
            self.ctx.release()


def headless_renderer(size=(1280, 720), ctx: moderngl.Context | None = None, **kwargs) -> HeadlessRenderer:
    """An offscreen renderer; creates an EGL context unless ``ctx`` (e.g. a window's) is given."""
    return HeadlessRenderer(size, ctx, **kwargs)

