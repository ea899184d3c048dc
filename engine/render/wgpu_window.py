"""The wgpu renderer drawing into a desktop window: a WebGPU surface on the window's native handle, presented per frame.

The window toolkit (pyglet, through engine/window.py) keeps its own OpenGL context; wgpu makes a surface on
the native window pyglet draws into (on X11 its content "view", a child of the top-level), and the frame is
presented there instead of swapping GL's buffers. wgpu's OpenGL
backend cannot make that surface (its EGL surface on a window that has a GLX context fails, and wgpu-native
aborts the process rather than raising), so a window process lists only the native backends
(engine/gpu_adapters.use_native_backends_only) before anything touches wgpu.

The surface texture is taken at the first draw of a frame and presented by ``present``; the scene, the labels
and the UI all draw into it, and ``read_pixels`` reads it back (screenshots) until it is presented.
"""
from __future__ import annotations

import ctypes
import sys

from .wgpu_backend import DEPTH_FORMAT, WgpuRenderer


class SurfaceUnavailable(RuntimeError):
    """No wgpu surface can be made on this window; str(err) is the one-line reason."""


def pyglet_present_info(window, vsync: bool = True) -> dict:
    """What wgpu needs to make a surface on a pyglet window (X11, Windows); SurfaceUnavailable elsewhere."""
    if sys.platform.startswith("linux"):
        # pyglet draws into (and takes events on) a child "view" window covering its top-level: the surface goes
        # there (on the top-level it would be presented under the view, and the screen would stay black).
        xid = getattr(window, "_view", None) or getattr(window, "_window", None)
        display = getattr(window, "_x_display", None)
        if not xid or display is None:
            raise SurfaceUnavailable("the window is not an X11 window (pyglet on Wayland or headless)")
        return {"method": "screen", "platform": "x11", "window": int(xid),
                "display": int(ctypes.cast(display, ctypes.c_void_p).value), "vsync": bool(vsync)}
    if sys.platform.startswith("win"):
        hwnd = getattr(window, "_view_hwnd", None) or getattr(window, "_hwnd", None)  # pyglet's content view, as on X11
        if not hwnd:
            raise SurfaceUnavailable("the pyglet window has no native handle yet")
        return {"method": "screen", "window": int(hwnd), "vsync": bool(vsync)}
    raise SurfaceUnavailable(f"no wgpu surface for a pyglet window on {sys.platform} yet")


class WgpuWindowRenderer(WgpuRenderer):
    """A WgpuRenderer whose colour target is a window's surface texture (depth stays its own)."""

    def __init__(self, present_info: dict, size, **kwargs):
        import wgpu

        from ..gpu_adapters import native_backends_only

        if not native_backends_only():  # wgpu-native aborts the process (no exception) making this surface
            raise SurfaceUnavailable("this process's wgpu lists its OpenGL backend too (factory.pick_for_window "
                                     "was not called before adapters were listed)")
        self.context = None
        self._acquired = False
        super().__init__(size, **kwargs)
        try:
            self.context = wgpu.gpu.get_canvas_context(present_info)
            preferred = self.context.get_preferred_format(self.device.adapter)
            # Not the sRGB view: the shaders' colours are already what the screen shows, as on GL's framebuffer.
            self.color_format = preferred.removesuffix("-srgb")
            self.context.set_physical_size(*self._size)
            self.context.configure(device=self.device, format=self.color_format,
                                   usage=wgpu.TextureUsage.RENDER_ATTACHMENT | wgpu.TextureUsage.COPY_SRC,
                                   alpha_mode="opaque")
            self._acquire()  # a surface that cannot give a texture fails here, not at the first frame
        except Exception as err:
            self.release()
            raise SurfaceUnavailable(f"wgpu could not draw into the window: {' '.join(str(err).split())}") from None

    def _make_target(self) -> None:
        import wgpu

        w, h = self._target_px
        self.color = self.color_view = None  # the surface's texture, taken per frame
        self.depth = self.device.create_texture(size=(w, h, 1), format=DEPTH_FORMAT,
                                                usage=wgpu.TextureUsage.RENDER_ATTACHMENT)
        self.depth_view = self.depth.create_view()

    def _acquire(self) -> None:
        """Take this frame's surface texture as the colour target (once a frame: present gives it back)."""
        if not self._acquired:
            self.color = self.context.get_current_texture()
            self.color_view = self.color.create_view()
            self._acquired = True

    def resize(self, size) -> None:
        size = (int(size[0]), int(size[1]))
        if size == self._size or min(size) <= 0:
            return
        if self._acquired:
            self.present()
        self.depth.destroy()
        self._size = self._target_px = size
        self._flip_height = size[1]
        self._make_target()
        self.context.set_physical_size(*size)

    def begin_frame(self, clear_color=(0.0, 0.0, 0.0, 1.0)) -> None:
        self._acquire()
        super().begin_frame(clear_color)

    def read_pixels(self):
        self._acquire()
        return super().read_pixels()

    def present(self) -> None:
        """Show what this frame drew (nothing when nothing was drawn since the last one)."""
        if self._acquired:
            self.context.present()
            self._acquired = False
            self.color = self.color_view = None

    def release(self) -> None:
        """Free the renderer and the surface: before the toolkit's window goes (a surface outliving its window
        faulted the process at exit)."""
        if self.context is not None:
            try:
                self.context.unconfigure()
            except Exception:  # a surface that never configured has nothing to undo
                pass
            self.context = None  # wgpu releases the surface with its last reference
        self._acquired = False
        self.color = None  # the surface's: not ours to destroy
        if self.depth is not None:
            super().release()
            self.depth = None
