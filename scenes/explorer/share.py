"""Sharing from the window: the current view as an llmviz:// link (copied, and shown to select), and its picture or SVG.

The Share menu sits after the main menu bar's own menus (ImGui appends to a menu bar opened twice
in one frame). "Copy link" puts the link of what the window shows (scene, camera pose, open
chapter and step, the live model's input) on the clipboard and opens a small panel holding it as
selectable text, for a desktop without a clipboard. "Export picture…" and "Export SVG…" write
llmviz-SCENE-TIME.png / .svg in the current folder by running `llmviz render --link` / `llmviz
export svg --link` of that link at the window's size in a child process, started from a worker
thread: the window's frame never waits for it, and the file is the same one the command line makes
(written atomically there). "Record this chapter" / "Record the tour" / "Record the model generating"
run `llmviz video --link` of the view the same way (the chapter from its start, the generation from the
input shown, at the window's size and camera). A notice in the banner names the file, or the problem.

``apply_view`` does the reverse for `llmviz open LINK`: the window's Explorer put at a link's view
without waiting (the chapter shows "waiting for the model's values" until they arrive).
"""
from __future__ import annotations

import re
import subprocess
import sys
import threading
import time

import numpy as np
from imgui_bundle import imgui

from llmviz.common.i18n import language, tr
from llmviz.scenes.link import LinkError, LinkView, make_link

LINK_PANEL_WIDTH = 620.0
EXPORT_TIMEOUT_S = 600


def _number(x: float) -> str:
    return f"{x:.6g}"


def current_view(ex) -> LinkView:
    """What the window shows now, as a link's fields."""
    session = ex.session
    camera = session.rig.camera
    eye = np.asarray(camera.position, np.float64)
    target = np.asarray(session.rig.orbit.target, np.float64)
    distance = float(np.linalg.norm(target - eye))
    # The point the camera looks at, at its orbit distance (the pose is what a link keeps; roll is level).
    point = eye + np.asarray(camera.forward, np.float64) * (distance if distance > 1e-6 else 1.0)
    pose = ",".join(map(_number, eye)) + ":" + ",".join(map(_number, point))
    chapter = step = None
    name = session.name
    player = session.chapters
    if player is not None:
        chapter, step = player.runner.current.number, player.runner.step_index + 1
    live = session.scene.live
    text = getattr(getattr(live, "session", None), "input_text", None) or getattr(live, "text", None)
    if player is not None and session.model is None:
        # a step on a scene of its own (chapter 19's retrieval scene) starts no chapter: the link opens the chapter's
        # model, which switches to that scene for the step; the question there is not the model's text
        name, text = player.runner.current.model, None
    from llmviz.scenes.cli.render_cmd import sampling_owner

    sampler = sampling_owner(live)
    temperature = seed = None
    if sampler is not None:
        temperature = float(sampler.temperature)
        seed = getattr(sampler, "seed", None)
        seed = int(seed) if isinstance(seed, int) else None
    compare = tuple(view.session.name for view in ex.views) if ex.compare.on and len(ex.views) > 1 else None
    from llmviz.scenes.link_spec import spec_of

    spec, spec_name = spec_of(name) if compare is None else (None, None)
    return LinkView(compare[0] if compare else name, pose, chapter, step,
                    text if isinstance(text, str) and text else None, temperature, seed, compare, spec, spec_name)


class Share:
    """The Share menu, the link panel and the exports' workers of one Explorer."""

    def __init__(self, ex, clipboard=None):
        self.ex = ex
        self.clipboard = clipboard  # set_text(str) of the window system; None: ImGui's own
        self.window_clipboard = None  # an X11 owner answered each frame (engine/x_clipboard.py), in the window
        self.link: str | None = None  # shown in the panel while not None
        self.workers: list[threading.Thread] = []

    def use_window_clipboard(self, clipboard) -> None:
        """Copy links to ``clipboard`` (``set_text``, ``serve``, ``data``; None: leave ``self.clipboard`` as it is),
        and ImGui's copies too: Ctrl+C in the link panel's field (or any field) reaches the desktop."""
        if clipboard is None:
            return
        self.window_clipboard = clipboard
        self.clipboard = None  # ImGui's copy below is the window's
        platform = imgui.get_platform_io()
        platform.platform_set_clipboard_text_fn = self._imgui_copied
        platform.platform_get_clipboard_text_fn = self._imgui_paste

    def _imgui_copied(self, _context, text: str) -> None:
        self._copied = text
        try:
            self.window_clipboard.set_text(text)
        except Exception as err:  # raised back into ImGui's C++ frame, it would be lost: say it instead
            self.ex.notice = tr("share.no_clipboard", error=str(err))

    def _imgui_paste(self, _context) -> str:
        """What a Ctrl+V in the window's fields pastes: our own copy (another program's text is not fetched,
        which would wait on that program in the frame)."""
        data = self.window_clipboard.data
        return data.decode("utf-8") if data is not None else getattr(self, "_copied", "")

    # ------------------------------------------------------------------ menu and panel (inside the UI frame)
    def menu(self) -> None:
        if self.window_clipboard is not None:
            self.window_clipboard.serve()  # a paste in another program is answered while the frames run
        if not imgui.begin_main_menu_bar():
            return
        if imgui.begin_menu(tr("share.menu") + "###share"):
            if imgui.menu_item_simple(tr("share.copy_link"), "", False):
                self.copy_link()
            imgui.separator()
            if imgui.menu_item_simple(tr("share.export_png")):
                self.export("png")
            if imgui.menu_item_simple(tr("share.export_svg")):
                self.export("svg")
            imgui.separator()
            player = self.ex.session.chapters
            if imgui.menu_item_simple(tr("share.record_chapter"), "", False, player is not None):
                self.export("mp4", script=["--chapter", str(player.runner.current.number)])
            if imgui.menu_item_simple(tr("share.record_tour"), "", False, self.ex.session.explore.tour is not None):
                self.export("mp4", script=["--tour"])
            text = self.generating_text()
            if imgui.menu_item_simple(tr("share.record_generating"), "", False, text is not None):
                self.export("mp4", script=["--generate", text])
            imgui.end_menu()
        imgui.end_main_menu_bar()
        self.panel()

    def panel(self) -> None:
        if self.link is None:
            return
        w = self.ex.ui.io.display_size.x if self.ex.ui is not None else 1280.0
        imgui.set_next_window_pos(imgui.ImVec2(max(10.0, (w - LINK_PANEL_WIDTH) / 2), 90.0), imgui.Cond_.appearing)
        imgui.set_next_window_size(imgui.ImVec2(LINK_PANEL_WIDTH, 0), imgui.Cond_.appearing)
        opened, keep = imgui.begin(tr("share.link_title") + "###sharelink", True, imgui.WindowFlags_.no_collapse)
        if opened:
            imgui.text_wrapped(tr("share.link_help"))
            imgui.set_next_item_width(-1)
            imgui.input_text("##link", self.link, imgui.InputTextFlags_.read_only | imgui.InputTextFlags_.auto_select_all)
            if imgui.button(tr("share.copy_again") + "###copy_again"):
                self.copy_link()
            imgui.same_line()
            if imgui.button(tr("chapter_ui.close") + "###close_link"):
                keep = False
        imgui.end()
        if not keep:
            self.link = None

    # ------------------------------------------------------------------ actions
    def view_link(self) -> str | None:
        try:
            return make_link(current_view(self.ex))
        except LinkError as err:
            self.ex.notice = tr("share.no_link", error=str(err))
            return None

    def generating_text(self) -> str | None:
        """The live model's input, where it writes an answer (what "Record the model generating" starts from)."""
        live = self.ex.session.scene.live
        session = getattr(live, "session", None)
        if session is None or not hasattr(session, "toggle_play"):
            return None
        text = getattr(session, "input_text", None) or getattr(live, "text", None)
        return text if isinstance(text, str) and text.strip() else None

    def copy_link(self) -> None:
        link = self.view_link()
        if link is None:
            return
        self.link = link
        self.ex.notice = tr("share.copied")
        try:
            imgui.set_clipboard_text(link)  # ImGui's: a paste into any field of the window (and X11's, if used)
            if self.clipboard is not None:
                self.clipboard(link)  # the desktop's, where the window system gave one
        except Exception as err:  # a window system without a clipboard: the panel still shows the link
            self.ex.notice = tr("share.no_clipboard", error=str(err))

    def export(self, kind: str, folder: str = ".", script=None) -> threading.Thread | None:
        """Write the view's picture (``png``) or schematic (``svg``), or a video (``mp4``) of ``script`` (the
        `llmviz video` flags: a chapter or the tour of this scene), into ``folder`` from a child process."""
        link = self.view_link()
        if link is None:
            return None
        # The window's own pixels and layout: a 1920x1080 window is exported as laid out there, not as the
        # 1280x720 view scaled up (the commands' --pixel-ratio auto).
        ratio = float(getattr(self.ex.renderer, "pixel_ratio", 1.0))
        w, h = (int(round(side * ratio)) for side in self.ex.renderer.size)
        w, h = w - w % 2, h - h % 2  # H.264's 4:2:0 wants even sides
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"llmviz-{re.sub(r'[^A-Za-z0-9._-]+', '_', self.ex.session.name)}-{stamp}.{kind}"
        from pathlib import Path

        path = Path(folder).resolve() / name
        # A recording starts at the window's view (camera, input, sampling: the link's), its script from the start.
        view = (["video", *script, "--link", link] if kind == "mp4"
                else ["render", "--link", link, "--backend", getattr(self.ex.renderer, "backend_name", "gl")]
                if kind == "png" else ["export", "svg", "--link", link])  # a picture drawn by the window's backend
        scale = [] if kind == "svg" else ["--pixel-ratio", f"{ratio:g}"]
        # the window's language too: the picture's panels speak as the window does
        command = [sys.executable, "-m", "llmviz.scenes.cli.main", *view, "--size", f"{w}x{h}", *scale,
                   "--lang", language(), "--out", str(path)]
        self.ex.notice = tr("share.exporting", name=name)

        def run():
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S,
                                      stdin=subprocess.DEVNULL)
            except (OSError, subprocess.TimeoutExpired) as err:
                self.ex.notice = tr("share.not_written", name=name, error=str(err))
                return
            lines = (done.stderr or done.stdout or "").strip().splitlines()
            self.ex.notice = (tr("share.wrote", path=str(path)) if done.returncode == 0
                              else tr("share.not_written", name=name,
                                      error=lines[-1] if lines else f"exit {done.returncode}"))

        worker = threading.Thread(target=run, name=f"export {kind}", daemon=True)
        worker.start()
        self.workers.append(worker)
        return worker


def apply_view(ex, view: LinkView) -> str | None:
    """Put the Explorer at a link's view: the input text, then the chapter and step or the camera; returns
    a problem line (shown as the notice) or None. Nothing here waits for the model."""
    session = ex.session
    if view.compare is not None:
        problem = ex.compare.open(list(view.compare))
        if problem:
            return tr("share.link_compare", problem=problem)
    if view.temperature is not None or view.seed is not None:
        from llmviz.scenes.cli.main import CliError
        from llmviz.scenes.cli.render_cmd import apply_sampling

        try:
            apply_sampling(session.scene, view.temperature, view.seed)
        except CliError as err:
            return str(err)
    if view.text is not None:
        live = session.scene.live
        owner = getattr(live, "session", None)
        setter = getattr(live, "set_text", None) or getattr(owner, "set_input", None)
        problem = setter(view.text) if setter is not None else tr("share.no_input", name=session.name)
        if problem:
            return tr("share.link_text", problem=problem)
    if view.chapter is not None:
        mode = session.chapters_mode
        if mode is None:
            return tr("share.no_chapters", name=session.name)
        mode.toggle(0, 0)
        player = mode.player
        if player is None:
            return ex.notice or tr("share.chapters_failed")
        try:
            index = player.runner.chapter_index(view.chapter)
            player.go_to(index, (view.step or 1) - 1)
            player.runner.go_to_step_end((view.step or 1) - 1)
        except (KeyError, IndexError) as err:
            mode.close()
            return tr("share.link_problem", problem=str(err.args[0]))
        return None
    if view.camera is not None:
        from llmviz.scenes.cli.main import CliError
        from llmviz.scenes.cli.render_cmd import check_camera, parse_camera

        try:
            kind, name = check_camera(view.camera)
            camera = parse_camera(view.camera, session.scene, ex.renderer.size)
        except CliError as err:
            return str(err)
        session.frame_start = None
        session.rig.transition = None
        session.rig.camera.position = np.asarray(camera.position, np.float64).copy()
        session.rig.camera.orientation = np.asarray(camera.orientation, np.float64).copy()
        if kind == "pose":
            session.rig.orbit.target = np.asarray(name[1], np.float64).copy()
        elif kind in ("preset", "overview") and (name or "overview") in session.scene.presets:
            session.frame_start = name or "overview"  # framed into the panels' free window on the first UI frame
    return None
