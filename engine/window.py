"""The desktop window shell: moderngl-window on pyglet, a renderer on its framebuffer or surface, ImGui fed its events.

An application subclasses ``WindowShell`` and overrides its ``on_*`` callbacks (moderngl-window's
WindowConfig ones); everything that names the window system or a GL object stays here, so the
application (scenes/app.py) sees only a renderer, an ImGui integration and plain values.

``backend`` ('gl', 'wgpu' or 'auto', set before the window opens) says who draws. On wgpu the renderer draws
into a WebGPU surface on the same window (engine/render/wgpu_window.py) and presents it where moderngl-window
would swap GL's buffers; ImGui is drawn by the wgpu overlay and fed the same events. A surface that cannot be
made is, for 'auto', OpenGL and one line (``say``) why; for 'wgpu', BackendUnavailable with that line.
"""
from __future__ import annotations

import numpy as np
import moderngl_window as mglw
from moderngl_window.integrations.imgui_bundle import ModernglWindowRenderer

from moderngl_window.integrations.imgui_bundle import ModernglWindowMixin

from .input import moderngl_window_mouse_button
from .render.gl import GLRenderer
from .render.gl_ui import GLUiImages
from .render.wgpu_backend import WgpuUiOverlay


class QueuedImguiEvents(ModernglWindowMixin):
    """moderngl-window's ImGui event handling, with the pointer given to ImGui as queued events.

    The stock integration sets ``io.mouse_down`` directly, so a quick click whose press and release
    both land between two frames never reaches ImGui (a menu did not open). ImGui's event queue
    keeps both and plays them over the next frames."""

    def _button(self, button):
        mouse = self.wnd.mouse
        return {mouse.left: 0, mouse.right: 1, mouse.middle: 2}.get(button)

    def _move(self, x, y) -> None:
        self.io.add_mouse_pos_event(*self._mouse_pos_viewport(x, y))

    def mouse_position_event(self, x, y, dx, dy):
        self._move(x, y)

    def mouse_drag_event(self, x, y, dx, dy):
        self._move(x, y)

    def mouse_press_event(self, x, y, button):
        self._move(x, y)
        if self._button(button) is not None:
            self.io.add_mouse_button_event(self._button(button), True)

    def mouse_release_event(self, x, y, button):
        self._move(x, y)
        if self._button(button) is not None:
            self.io.add_mouse_button_event(self._button(button), False)

    def mouse_scroll_event(self, x_offset, y_offset):
        self.io.add_mouse_wheel_event(x_offset, y_offset)

    # The stock integration maps neither the modifiers nor letters, so Ctrl+A/C/V/X/Y/Z did nothing in a text field.
    _EDIT_LETTERS = "ACVXYZ"

    def key_event(self, key, action, modifiers):
        from imgui_bundle import imgui

        super().key_event(key, action, modifiers)
        keys = self.wnd.keys
        if action not in (keys.ACTION_PRESS, keys.ACTION_RELEASE):
            return
        for mod, name in ((imgui.Key.mod_ctrl, "ctrl"), (imgui.Key.mod_shift, "shift"), (imgui.Key.mod_alt, "alt")):
            self.io.add_key_event(mod, bool(getattr(modifiers, name, False)))
        for letter in self._EDIT_LETTERS:
            if key == getattr(keys, letter, None):
                self.io.add_key_event(getattr(imgui.Key, letter.lower()), action == keys.ACTION_PRESS)


class QueuedImguiRenderer(GLUiImages, QueuedImguiEvents, ModernglWindowRenderer):
    """The GL window's ImGui: moderngl-window's renderer with the queued events."""


class WgpuWindowImgui(QueuedImguiEvents, WgpuUiOverlay):
    """The wgpu window's ImGui: the wgpu overlay drawing into the window's surface, fed the window's events."""

    def __init__(self, window, renderer):
        WgpuUiOverlay.__init__(self, renderer, float(window.pixel_ratio))
        self.wnd = window
        ModernglWindowRenderer._init_key_maps(self)
        self.io.display_size = window.size
        self.io.display_framebuffer_scale = window.pixel_ratio, window.pixel_ratio


class WindowShell(mglw.WindowConfig):
    """A resizable window whose ``renderer`` draws into its framebuffer; ``ui_overlay()`` makes its ImGui renderer."""

    gl_version = (3, 3)
    title = "llmviz"
    window_size = (1280, 720)
    resizable = True
    vsync = True
    aspect_ratio = None

    backend = "gl"  # who draws: 'gl', 'wgpu' or 'auto' (set before the window opens)

    @staticmethod
    def say(line: str) -> None:
        """Where the one line goes when 'auto' falls back to OpenGL at the window (the application sets it)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.wnd.exit_key = None  # the application decides what quits
        self.renderer = self._wgpu_renderer() if self.backend != "gl" else None
        if self.renderer is None:
            self.renderer = GLRenderer(self.ctx, self.wnd.fbo, self.wnd.buffer_size)

    def _wgpu_renderer(self):
        """The wgpu renderer on a surface of this window, presented instead of GL's swap; None (and the line said)
        where 'auto' cannot have one."""
        from .render.factory import fallback_reason
        from .render.wgpu_window import WgpuWindowRenderer, pyglet_present_info

        try:
            renderer = WgpuWindowRenderer(pyglet_present_info(self.wnd._window, self.vsync), self.wnd.buffer_size)
        except Exception as err:
            self.say(fallback_reason(self.backend, "the wgpu backend cannot draw into this window", err))
            return None
        self.clear_color = None  # the renderer clears; GL's clear of an unshown buffer is only cost
        window, close, on_close = self.wnd, self.wnd.close, self.wnd.close_func

        def present_and_poll() -> None:  # moderngl-window's swap_buffers, with the surface presented instead
            renderer.present()
            window._frames += 1
            window._window.dispatch_events()

        closed: list[bool] = []

        def close_once() -> None:  # the application's close, then the surface: before the native window goes
            if not closed:
                closed.append(True)
                on_close()
                renderer.release()

        window.swap_buffers = present_and_poll
        window.close_func = close_once  # the window manager's close: pyglet destroys the window right after
        window.close = lambda: (close_once(), close())  # a scripted or menu close (close() calls close_once again)
        return renderer

    def ui_overlay(self):
        """The window's ImGui renderer (it takes the window's key and text events)."""
        if self.renderer.backend_name == "wgpu":
            return WgpuWindowImgui(self.wnd, self.renderer)
        from .render.gl_ui import sample_font_nearest

        ui = QueuedImguiRenderer(self.wnd)
        sample_font_nearest(ui, 1.0)
        return ui

    def follow_window(self) -> None:
        """Point the renderer at the window's framebuffer (or surface) as it is now (after a resize, before a frame)."""
        if self.renderer.backend_name == "wgpu":
            self.renderer.resize(self.wnd.buffer_size)
        else:
            self.renderer.set_target(self.wnd.fbo, self.wnd.buffer_size)

    @property
    def buffer_size(self) -> tuple[int, int]:
        return tuple(self.wnd.buffer_size)

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.wnd.size)

    @property
    def pixel_ratio(self) -> float:
        return float(self.wnd.pixel_ratio)

    def screen_rgb(self) -> np.ndarray:
        """What the window shows, uint8 (height, width, 3), top row first."""
        if self.renderer.backend_name == "wgpu":
            return np.ascontiguousarray(self.renderer.read_pixels()[:, :, :3])
        w, h = self.wnd.buffer_size
        data = self.wnd.fbo.read(components=3, alignment=1)
        return np.frombuffer(data, np.uint8).reshape(h, w, 3)[::-1].copy()

    def set_clipboard(self, text: str) -> None:
        self.wnd._window.set_clipboard_text(text)  # pyglet's

    def close_window(self) -> None:
        self.wnd.close()

    def is_press(self, action) -> bool:
        return action == self.wnd.keys.ACTION_PRESS

    def is_release(self, action) -> bool:
        return action == self.wnd.keys.ACTION_RELEASE

    def buttons_down(self) -> dict[str, bool]:
        states = self.wnd.mouse_states
        return {"left": states.left, "right": states.right, "middle": states.middle}

    @staticmethod
    def button_name(button) -> str | None:
        return moderngl_window_mouse_button(button)


def run_shell(shell: type[WindowShell]) -> None:
    """Open the window and run its frames until it closes (pyglet)."""
    mglw.run_window_config(shell, args=["--window", "pyglet"])
