"""Which GPU adapters this machine has (wgpu's, and the OpenGL renderer moderngl gets), a wgpu device on the best
of them, and which renderer backend `auto` picks and why.

    survey_adapters()        every adapter wgpu finds (name, backend type, software or not), or the one-line
                             reason none could be listed (wgpu missing, its native library failing, no adapter)
    best_adapter(survey)     the adapter a device is made on: hardware before software, Vulkan/Metal/D3D12 before GL
    create_device()          a wgpu device on that adapter; GpuUnavailable(reason) where there is none
    shared_device()          one device per process, made on first use (the compute kernels share it)
    use_native_backends_only()  before anything lists adapters: the window's process (no wgpu GL backend)
    gl_renderer()            GL_RENDERER / GL_VERSION / GL_VENDOR of a headless (EGL) moderngl context, or the reason
    choose_backend(request)  'auto' | 'wgpu' | 'gl' -> BackendChoice(backend, reason, adapter): auto prefers wgpu when
                             an adapter is found and falls back to 'gl' with the reason in one line

Nothing here raises for a machine without wgpu: every failure becomes a reason string a caller prints.
Mesa's software adapters (lavapipe for Vulkan, llvmpipe for GL) count as software: they run on the CPU.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import re
import tempfile
import threading
from dataclasses import asdict, dataclass

BACKENDS = ("auto", "wgpu", "gl")
# Device names of adapters that run on the CPU even where the driver reports another adapter type.
_SOFTWARE_NAMES = re.compile(r"llvmpipe|lavapipe|softpipe|swiftshader|swrast|microsoft basic render", re.I)
# Among equals, native APIs before wgpu's GL backend (which lacks some compute and storage features).
_BACKEND_ORDER = {"Vulkan": 0, "Metal": 0, "D3D12": 0, "OpenGL": 2, "GL": 2}


class GpuUnavailable(RuntimeError):
    """No wgpu device can be made here; str(err) is the one-line reason."""


@dataclass(frozen=True)
class Adapter:
    """What one wgpu adapter says of itself (wgpu's GPUAdapterInfo, reduced to what a user needs)."""

    name: str  # the device name, e.g. 'llvmpipe (LLVM 15.0.6, 256 bits)'
    backend: str  # 'Vulkan', 'Metal', 'D3D12', 'OpenGL'
    adapter_type: str  # 'DiscreteGPU', 'IntegratedGPU', 'CPU', 'VirtualGPU', 'Unknown'
    software: bool
    description: str  # the driver, e.g. 'Mesa 22.3.6 (LLVM 15.0.6)'
    known_as: str = ""  # the driver's usual name where the device name hides it: Mesa's Vulkan llvmpipe is lavapipe

    def label(self) -> str:
        known = f"{self.known_as}: " if self.known_as else ""
        return f"{known}{self.name} ({self.backend}, {'software' if self.software else 'hardware'})"

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class AdapterSurvey:
    adapters: tuple[Adapter, ...]
    problem: str | None = None  # why no adapter could be listed; None when the list is what wgpu gave


@dataclass(frozen=True)
class BackendChoice:
    backend: str  # 'wgpu' or 'gl'
    reason: str  # one line: why this backend
    adapter: Adapter | None = None  # the wgpu adapter, when the choice is wgpu


def is_software(name: str, adapter_type: str) -> bool:
    return adapter_type.upper() == "CPU" or bool(_SOFTWARE_NAMES.search(name))


def adapter_from_info(info) -> Adapter:
    """An Adapter from wgpu's info mapping (a GPUAdapterInfo, or a plain dict in tests)."""
    name = str(info.get("device") or info.get("description") or info.get("vendor") or "unnamed adapter")
    adapter_type = str(info.get("adapter_type") or "Unknown")
    backend = str(info.get("backend_type") or "Unknown")
    known_as = "lavapipe" if backend == "Vulkan" and "llvmpipe" in name.lower() else ""
    return Adapter(name=name, backend=backend, adapter_type=adapter_type, software=is_software(name, adapter_type),
                   description=str(info.get("description") or ""), known_as=known_as)


def _quiet_mesa_wayland_probe() -> None:
    # Mesa's Vulkan drivers probe for a Wayland compositor and print "error: XDG_RUNTIME_DIR is invalid or not
    # set" once per probe where the variable is unset (headless machines, CI). Any existing folder silences it;
    # the probe then finds no compositor, which is the truth.
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())


def _import_wgpu():
    """The wgpu module, or GpuUnavailable with the reason in one line."""
    _quiet_mesa_wayland_probe()
    try:
        import wgpu
    except ImportError as err:
        raise GpuUnavailable(f"wgpu is not installed ({err})") from None
    except Exception as err:  # the native library fails to load: a missing or broken wgpu-native
        raise GpuUnavailable(f"wgpu's native library did not load: {_one_line(err)}") from None
    return wgpu


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _enumerate_raw():
    """wgpu's adapter objects (GPUAdapter), in wgpu's order. Tests replace this to simulate other machines."""
    with _keeping_current_egl():
        raw = list(_import_wgpu().gpu.enumerate_adapters_sync())
    _ADAPTERS_KEPT.append(raw)  # a GL adapter's destructor unbinds the thread's EGL context: never let it run
    return raw


_ADAPTERS_KEPT: list = []  # every list enumerated (one or two a process)
_native_only: list[bool] = []  # [True] once this process's wgpu instance lists the native backends alone


def native_backends_only() -> bool:
    """Whether this process's wgpu instance lists the native backends alone (use_native_backends_only ran first)."""
    return bool(_native_only)


def use_native_backends_only() -> str | None:
    """Make this process's wgpu instance list Vulkan, Metal and D3D12 adapters only (what a window surface
    needs: wgpu's OpenGL backend aborts the process making a surface on a window that has an OpenGL
    context). None when done (or done before); the one-line reason where it cannot be (wgpu missing, or its
    instance made already with every backend)."""
    if _native_only:
        return None
    try:
        _import_wgpu()
        from wgpu.backends.wgpu_native.extras import set_instance_extras

        set_instance_extras(backends=["Primary"])
    except GpuUnavailable as err:
        return str(err)
    except Exception as err:  # RuntimeError: the instance exists already (adapters were listed before)
        return f"wgpu's instance was made before the window, with its OpenGL backend ({_one_line(err)})"
    _native_only.append(True)
    with _survey_lock:
        global _survey_cache
        _survey_cache = None
    return None


@contextlib.contextmanager
def _keeping_current_egl():
    """Enumerating probes wgpu's GL backend through EGL, which leaves no EGL context current: a moderngl
    context made before (headless renderer, tests drawing with both backends) would fail its next call.
    The context current before is made current again after."""
    try:
        egl = ctypes.CDLL("libEGL.so.1")
        for name in ("eglGetCurrentContext", "eglGetCurrentDisplay", "eglGetCurrentSurface"):
            getattr(egl, name).restype = ctypes.c_void_p
        egl.eglGetCurrentSurface.argtypes = [ctypes.c_int]
        egl.eglMakeCurrent.argtypes = [ctypes.c_void_p] * 4
        saved = (egl.eglGetCurrentDisplay(), egl.eglGetCurrentSurface(0x3059), egl.eglGetCurrentSurface(0x305A),
                 egl.eglGetCurrentContext())  # EGL_DRAW, EGL_READ
    except (OSError, AttributeError):  # no EGL here: nothing to keep
        yield
        return
    try:
        yield
    finally:
        if saved[3]:
            egl.eglMakeCurrent(*saved)


_survey_lock = threading.Lock()
_survey_cache: AdapterSurvey | None = None


def survey_adapters(refresh: bool = False) -> AdapterSurvey:
    """Every adapter wgpu finds, listed once per process (enumerating takes about a second on Mesa)."""
    global _survey_cache
    with _survey_lock:
        if _survey_cache is None or refresh:
            _survey_cache = _survey_now()
        return _survey_cache


def _survey_now() -> AdapterSurvey:
    try:
        raw = _enumerate_raw()
    except GpuUnavailable as err:
        return AdapterSurvey((), str(err))
    except Exception as err:  # wgpu-native's own errors vary by platform and driver
        return AdapterSurvey((), f"wgpu could not list adapters: {_one_line(err)}")
    adapters = tuple(adapter_from_info(a.info) for a in raw)
    if not adapters:
        drivers = "Vulkan, Metal or D3D12 driver (a window surface needs one)" if _native_only else \
            "Vulkan, Metal, D3D12 or GL driver"
        return AdapterSurvey((), f"wgpu found no adapter (no {drivers} it can use; on "
                                 "Debian/Ubuntu, mesa-vulkan-drivers gives the software adapter lavapipe)")
    return AdapterSurvey(adapters)


def _rank(adapter: Adapter) -> tuple[int, int]:
    return (1 if adapter.software else 0, _BACKEND_ORDER.get(adapter.backend, 1))


def best_adapter(survey: AdapterSurvey | None = None) -> Adapter | None:
    """The adapter a device is made on: hardware first, then native APIs before GL; wgpu's order breaks ties."""
    adapters = (survey or survey_adapters()).adapters
    return min(adapters, key=_rank) if adapters else None


@dataclass
class GpuDevice:
    device: object  # wgpu.GPUDevice
    adapter: Adapter


def create_device(adapter: Adapter | None = None) -> GpuDevice:
    """A new wgpu device on ``adapter`` (default: best_adapter()). GpuUnavailable(reason) where none can be made."""
    survey = survey_adapters()
    wanted = adapter or best_adapter(survey)
    if wanted is None:
        raise GpuUnavailable(survey.problem or "wgpu found no adapter")
    try:
        # Adapters are listed afresh: a WebGPU adapter may give out only one device.
        raw = next((a for a in _enumerate_raw() if adapter_from_info(a.info) == wanted), None)
        if raw is None:
            raise GpuUnavailable(f"the adapter {wanted.label()} is no longer listed by wgpu")
        device = raw.request_device_sync(required_limits=_generous_limits(raw))
    except GpuUnavailable:
        raise
    except Exception as err:
        raise GpuUnavailable(f"wgpu could not create a device on {wanted.label()}: {_one_line(err)}") from None
    return GpuDevice(device, wanted)


def _generous_limits(raw_adapter) -> dict:
    # WebGPU's defaults cap a storage buffer at 128 MiB and a buffer at 256 MiB; ask for what the adapter has so
    # that long-context tiles and large heads fit, within what the adapter reports.
    limits = raw_adapter.limits
    wanted = {}
    for key in ("max-storage-buffer-binding-size", "max-buffer-size", "max-compute-workgroup-storage-size",
                "max-compute-invocations-per-workgroup", "max-compute-workgroup-size-x"):
        if key in limits:
            wanted[key] = limits[key]
    return wanted


class MadeOnce:
    """A thing made on first use and kept for the process, or the one-line reason it could not be made, kept too
    (so a machine without a device pays the failed attempt once). ``make`` raises GpuUnavailable for a known
    reason; any other exception becomes ``prefix`` + its first line. get() raises ``error(reason)``."""

    def __init__(self, make, error=GpuUnavailable, prefix: str = ""):
        self._make, self._error, self._prefix = make, error, prefix
        self._lock = threading.Lock()
        self._value = None
        self._problem: str | None = None

    def get(self):
        with self._lock:
            if self._value is None and self._problem is None:
                try:
                    self._value = self._make()
                except GpuUnavailable as err:
                    self._problem = str(err)
                except Exception as err:  # e.g. a shader the driver rejects
                    self._problem = self._prefix + _one_line(err)
            if self._value is None:
                raise self._error(self._problem)
            return self._value


_shared = MadeOnce(lambda: create_device(), prefix="wgpu could not create a device: ")


def shared_device() -> GpuDevice:
    """One device per process, made on first use; the same GpuUnavailable reason on every later call if none."""
    return _shared.get()


def choose_backend(requested: str = "auto", *, wgpu_limitation: str | None = None,
                   survey: AdapterSurvey | None = None) -> BackendChoice:
    """Which renderer backend to use and the one line saying why.

    'gl' is taken as asked. 'wgpu' is taken when an adapter exists; otherwise the choice is 'gl' and the reason
    says why, for the caller to refuse or to fall back. 'auto' prefers wgpu when an adapter is found, and falls
    back to 'gl' when none is, or when the caller says what its wgpu path cannot do here (``wgpu_limitation``,
    e.g. 'the wgpu backend has no window surface yet').
    """
    if requested not in BACKENDS:
        raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, got {requested!r}")
    if requested == "gl":
        return BackendChoice("gl", "gl: asked for (--backend gl)")
    survey = survey or survey_adapters()
    adapter = best_adapter(survey)
    if adapter is None:
        return BackendChoice("gl", f"{requested}: moderngl, because {survey.problem or 'wgpu found no adapter'}")
    if wgpu_limitation:
        return BackendChoice("gl", f"{requested}: moderngl, because {wgpu_limitation} (adapter {adapter.label()})")
    if requested == "wgpu":
        return BackendChoice("wgpu", f"wgpu: asked for (--backend wgpu), on {adapter.label()}", adapter)
    return BackendChoice("wgpu", f"auto: wgpu, on {adapter.label()}", adapter)


def gl_renderer() -> dict:
    """{'renderer', 'version', 'vendor'} of a standalone EGL context (what `llmviz render` draws with), or
    {'error': one line} where none starts."""
    try:
        import moderngl
    except Exception as err:
        return {"error": f"moderngl is not importable ({_one_line(err)})"}
    try:
        ctx = moderngl.create_standalone_context(backend="egl")
    except Exception as err:  # the GL stack's own exceptions vary by driver
        return {"error": f"no headless OpenGL context (EGL): {_one_line(err)}"}
    try:
        info = ctx.info
        return {"renderer": str(info.get("GL_RENDERER", "")), "version": str(info.get("GL_VERSION", "")),
                "vendor": str(info.get("GL_VENDOR", ""))}
    finally:
        ctx.release()
