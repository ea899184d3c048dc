"""The interaction modes of the explorer: each registers its own systems, actions, flag layers and panels.

A mode is made per scene (it holds that scene's objects). The Explorer asks the modes, in
priority order, who takes an action: the first active mode whose table names it runs it — so
Space plays the chapter while one is open, else the MoE routing, else the live model — without
an if/elif chain. Systems go into the scene's engine schedule under their own names, so the
profiler times each. Highlight and dim go through the engine's FlagLayers, one layer per writer.

- ExploreMode: picking (only when the pointer or the view moved), hover reading and lit source
  cells, selection, the tooltip, camera presets, the tour and bookmarks.
- LiveMode: the nano-GPT panel and its keys (step, play).
- FocusMode: the component tree, search (run on a worker, an index built once per model),
  breadcrumbs, details, Esc steps out.
- ChapterMode: the guided chapters (scenes/chapter_view.py) and their panels.
- MoeMode: routing from the live small MoE or simulated (built on a worker), packets, the MoE
  window, shared experts lit.
"""
from __future__ import annotations

import threading

import numpy as np
from imgui_bundle import imgui

from llmviz.common.i18n import tr
from llmviz.engine.picking import pick
from llmviz.engine.systems.packets import PacketSystem
from llmviz.engine.systems.transform import world_box
from llmviz.scenes import panels
from llmviz.scenes.bookmarks import save_bookmarks
from llmviz.scenes.explorer.latest_job import LatestJob
from llmviz.scenes.focus import BLOCK, ComponentTree, Focus, Node
from llmviz.scenes.hover import Reading, SourceHighlight, read_pick
from llmviz.scenes.tour import Tour

PACKET_REFRESH_S = 0.5  # how often the packets' layer follows the camera


class Mode:
    """Base: no systems, no actions, no panels; ``active`` says whether its actions apply now."""

    name = "mode"
    actions: dict = {}

    def __init__(self, ex, session):
        self.ex, self.session = ex, session

    @property
    def active(self) -> bool:
        return True

    def handler(self, action: str):
        return self.actions.get(action) if self.active else None

    def systems(self) -> list:
        """(phase, name, callable, ordering kwargs) to register in the scene's schedule."""
        return []

    def panels(self, area) -> None:
        pass

    def close(self) -> None:
        pass


class ExploreMode(Mode):
    name = "explore"

    def __init__(self, ex, session):
        super().__init__(ex, session)
        model = session.model
        self.highlight = SourceHighlight(ex.renderer, model) if model is not None else None
        self.hovered = None  # a picking Hit
        self.selected: int | None = None  # an entity slot selected outside a model (stress scene)
        self.reading: Reading | None = None
        self._reading_key = None
        self._pick_key = None
        self.tour = Tour(session.rig, model.layout) if model is not None else None
        self.actions = {"back": self.deselect, "frame_selection": self.frame_selected}

    @property
    def active(self) -> bool:
        return self.selected is not None

    def systems(self):
        return [("camera", "tour", self._tour, {}),
                ("lod", "picking", self._picking, {})]  # after LOD fills visibility.drawn; before instancing

    def toggle_tour(self) -> None:
        if self.tour is not None:
            self.tour.toggle()

    def deselect(self) -> None:
        self.selected = None
        self.session.engine.flags.clear("selected")

    def frame_selected(self) -> None:
        if self.selected is not None:
            center, half = world_box(self.session.engine.world, np.array([self.selected]))
            self.session.rig.focus(center[0], half[0])

    def _tour(self, frame) -> None:
        """The camera tour advanced; any steering input ends it where the camera is."""
        if self.tour is not None:
            self.tour.update(frame.dt, frame.actions.steers_camera if frame.actions is not None else False)

    def _picking(self, frame) -> None:
        """The block and data cell under the pointer, from the blocks drawn this frame (hover, click to focus)."""
        session, engine = self.session, self.session.engine
        pointer = self.ex.pointer_for(session)
        select = frame.actions is not None and frame.actions.was_pressed("select")
        cam = frame.camera
        key = (pointer, cam.position.tobytes(), cam.orientation.tobytes(), cam.viewport,
               len(frame.visibility.drawn), engine.world.structure_version)
        if key != self._pick_key:  # a still pointer over a still view hits what it hit last frame
            self._pick_key = key
            hit = None
            if pointer is not None:
                origin, direction = cam.ray(*pointer)
                hit = pick(engine.world, frame.visibility.drawn, origin, direction)
            self.hovered = hit
            engine.flags.set("hover", [] if hit is None else [hit.slot])
        hit = self.hovered
        self._read(hit)
        on_click = getattr(session.scene.live, "on_click", None)   # a live scene's own entities (vit's patches)
        if select and hit is not None and on_click is not None and on_click(hit.slot, hit.cell):
            return
        if select and hit is not None:
            row = session.model.row_of_slot[hit.slot] if session.model is not None else -1
            if row >= 0 and session.focus_mode is not None:
                session.focus_mode.select(Node(BLOCK, int(row)))
                return
            self.selected = hit.slot
            engine.flags.set("selected", [hit.slot])
            self.frame_selected()

    def _read(self, hit) -> None:
        """The hovered cell's reading and lit source cells, recomputed only when the cell or the values change."""
        model, live = self.session.model, self.session.scene.live
        if model is None:
            return
        version = live.values_version if live is not None else 0
        key = None if hit is None else (hit.slot, hit.cell, version)
        if key == self._reading_key:
            return
        self._reading_key = key
        if hit is None:
            self.reading = None
        else:
            try:
                self.reading = read_pick(model, live, hit.slot, hit.cell)
            except (KeyError, IndexError, ValueError) as err:  # a tooltip must never take the frame down
                self.reading = Reading(model.tensor_at(hit.slot) or "?", note=tr("window.cannot_explain", error=str(err)))
        self.highlight.show(self.reading)

    def save_bookmarks_if_asked(self, actions) -> None:
        if any(name.startswith("bookmark_save_") for name in actions.pressed):
            try:
                save_bookmarks(self.session.scene.name, self.session.rig.bookmarks)
            except OSError as err:
                self.ex.notice = tr("window.cannot_save_bookmarks", error=str(err))

    def tooltip(self) -> None:
        if self.reading is not None:
            panels.cell_tooltip(self.reading)
        elif self.hovered is not None:
            hit, world = self.hovered, self.session.engine.world
            describe = getattr(self.session.scene.live, "describe_hit", None)   # a scene of its own (longctx:N)
            text = describe(hit) if describe is not None else None
            if text:
                imgui.set_tooltip(text)
                return
            text = tr("hover.entity", entity=int(hit.entity), slot=int(hit.slot))
            if world["label"].has[hit.slot]:
                text = world.labels[world["label"]["text_index"][hit.slot]] + "\n" + text
            if hit.cell is not None:
                text += "\n" + tr("hover.cell_row_column", row=int(hit.cell[0]), column=int(hit.cell[1]))
            imgui.set_tooltip(text + "\n" + tr("hover.distance", distance=float(hit.distance)))


class LiveMode(Mode):
    """A live model's panel and keys: nano-GPT's, or a live state-space model's."""

    name = "live"

    def __init__(self, ex, session):
        super().__init__(ex, session)
        live = session.scene.live
        if getattr(live, "kind", None) == "ssm":
            from llmviz.scenes.ssm_panels import SsmPanel

            self.panel = SsmPanel(live)
        elif getattr(live, "kind", None) == "folder":
            from llmviz.scenes.folder_panel import FolderPanel

            self.panel = FolderPanel(live)
        elif getattr(live, "kind", None) == "clip":
            from llmviz.scenes.clip_panels import ClipPanel

            self.panel = ClipPanel(live, ex.ui.renderer if ex.ui is not None else None)
        elif getattr(live, "kind", None) == "llava":
            from llmviz.scenes.llava_panels import LlavaPanel

            self.panel = LlavaPanel(live, ex.ui.renderer if ex.ui is not None else None)
        elif getattr(live, "kind", None) == "rag":
            from llmviz.scenes.rag_panels import RagPanel

            self.panel = RagPanel(live)
        elif getattr(live, "kind", None) == "audio":
            from llmviz.scenes.whisper_panels import WhisperPanel

            self.panel = WhisperPanel(live, ex.ui.renderer if ex.ui is not None else None)
        elif getattr(live, "kind", None) == "vision":
            from llmviz.scenes.vit_panels import VitPanel

            self.panel = VitPanel(live, ex.ui.renderer if ex.ui is not None else None)
        else:
            self.panel = panels.NanoGptPanel(live.session)
        self.actions = {"play_pause": live.session.toggle_play, "next": live.session.step}

    def panels(self, area) -> None:
        draw_in = getattr(self.panel, "draw_in", None)   # a panel that fits itself into the area (vit-tiny's)
        if draw_in is not None:
            draw_in(area)
        else:
            panels.fit_side_panel(area)
            self.panel.draw(area.width - panels.PANEL_WIDTH - 10, area.top)


class FocusMode(Mode):
    name = "focus"

    def __init__(self, ex, session):
        super().__init__(ex, session)
        model = session.model
        self.tree = session.prepared.tree or ComponentTree(model.layout, model.spec)
        self.focus = Focus(self.tree, model, session.engine.world, session.engine.flags)
        self.tree_on = False
        self.query = ""
        self.results: dict[str, list] = {}  # query -> nodes, filled by the search worker
        self._focus_search = False
        self._details, self._details_key = None, None
        self._search = LatestJob(f"search {session.scene.name}")
        self.actions = {"back": self.back, "frame_selection": self.frame}

    @property
    def node(self):
        return self.focus.node

    @property
    def active(self) -> bool:
        return self.focus.node is not None or self.tree_on

    def back(self) -> None:
        """Esc: close the search first, then step out of the focus."""
        if self.tree_on:
            self.close_search()
        elif self.focus.node is not None:
            self.step_out()

    def open_search(self) -> None:
        self.tree_on = True
        self._focus_search = True
        index = getattr(self.tree, "build_search_index", None)
        if index is not None:
            self._search.submit(index)  # built once per model, before the first keystroke needs it

    def close_search(self) -> None:
        self.tree_on = False

    def set_query(self, text: str) -> None:
        self.query = text
        if text.strip() and text not in self.results:
            tree, results = self.tree, self.results
            self._search.submit(lambda: results.__setitem__(text, tree.search(text)))

    def select(self, node) -> None:
        if self.session.chapters is not None:
            self.session.chapters_mode.close()
        self.focus.select(node)
        self._details_key = None
        if node is not None:
            self.frame()

    def step_out(self) -> None:
        self.focus.step_out()
        self._details_key = None
        if self.focus.node is not None:
            self.frame()

    def frame(self) -> None:
        if self.focus.node is not None:
            center, half = self.focus.box(self.focus.node)
            self.session.rig.focus(center, half)

    def _details_of(self, node):
        live = self.session.scene.live
        version = live.values_version if live is not None else 0
        if self._details_key != (node, version):
            values = None
            s = getattr(live, "session", None)
            if getattr(s, "trace", None) is not None:
                from collections import ChainMap

                values = ChainMap(s.trace, getattr(s, "weights", None) or {})
            self._details = self.tree.details(node, values)
            self._details_key = (node, version)
        return self._details

    def panels(self, area) -> None:
        choice = panels.FocusChoice()
        node = self.focus.node
        crumbs_h = 0.0
        moe = self.session.moe_mode is not None
        if node is not None:
            crumbs_h = panels.breadcrumbs(self.tree, node, area.left, area.top, choice) + 6
            y = area.top + (430 if self.session.live_mode is not None else 0) + (crumbs_h if moe else 0)
            x = area.width - panels.PANEL_WIDTH - 10 - (panels.MOE_PANEL_WIDTH + 10 if moe else 0)
            panels.details_panel(self._details_of(node), x, y)
        if self.tree_on:
            panels.component_tree(self.tree, node, self.query, area.left, area.top + crumbs_h, area.height - crumbs_h,
                                  choice, self._focus_search, self.results.get(self.query))
            self._focus_search = False
        if choice.close_tree:
            self.close_search()
        if choice.search is not None:
            self.set_query(choice.search)
        if choice.clear:
            self.select(None)
        elif choice.select is not None:
            self.select(choice.select)


class ChapterMode(Mode):
    name = "chapters"

    def __init__(self, ex, session):
        super().__init__(ex, session)
        self.player = None
        self._switching = None  # the scene a step asked for, while it loads
        self._retell = None     # chapters in a newly chosen language, for the playing runner (set by the worker)
        self.chapter_list, error = session.prepared.chapters or model_chapters(session.model)
        if error:
            self.ex.notice = error
        self.actions = {"back": self.close, "play_pause": self._player("press_space"),
                        "next": self._player("next_step"), "previous": self._player("previous_step"),
                        "back_step": self._player("previous_step"), "next_chapter": self._player("next_chapter"),
                        "previous_chapter": self._player("previous_chapter")}

    def _player(self, method: str):
        return lambda: getattr(self.player, method)()

    def reload_chapters(self) -> None:
        """The Chapters menu in the language just chosen (called on the language worker: the files are read
        there); a chapter playing is retold in it by the frame, at the same step and moment."""
        from llmviz.scenes.chapters.format import ChapterError, load_chapters

        try:
            everything = load_chapters()
        except (ChapterError, OSError) as err:  # the menu and a playing chapter keep the words they have
            self.ex.notice = tr("window.chapters_not_loaded", error=str(err))
            return
        model = self.session.model
        if model is not None:
            self.chapter_list = [c for c in everything if c.model == model.layout.spec_id]
        self._retell = everything

    @property
    def active(self) -> bool:
        return self.player is not None

    def systems(self):
        return [("animation", "chapters", self._update, {})]

    def _update(self, frame) -> None:
        """The open chapter's clock advanced: its camera, focus, dimming, animations and text at this moment."""
        if self.player is None:
            return
        from llmviz.scenes.chapters.format import ChapterError

        retell, self._retell = self._retell, None
        if retell is not None:
            self.player.retell(retell)
        try:
            self.player.update(frame.dt, frame.actions.steers_camera if frame.actions is not None else False)
        except ChapterError as err:  # a chapter that cannot be shown names its file:line; the window stays up
            self.ex.notice = str(err)
            self.close()
            return
        self._follow_scene()

    def _follow_scene(self) -> None:
        """A step that shows another model (chapter 9's GPT-2 and GPT-3) or a scene of its own (chapter 19's
        retrieval scene): open it, and carry the chapter on there with the same runner at the same moment (and
        back again for the next step)."""
        moment = self.player.moment
        wanted = moment.scene if moment is not None else ""
        if not wanted or wanted == self.session.name or wanted == self._switching:
            return
        self._switching = wanted
        runner = self.player.runner
        self.ex.request_scene(wanted, then=lambda session: session.chapters_mode.resume(runner))

    def resume(self, runner) -> None:
        """Carry on a chapter another scene was playing (its runner, at its moment), in this scene."""
        from llmviz.scenes.chapter_view import ChapterPlayer

        s = self.session
        self.player = ChapterPlayer(s.scene, s.engine, s.rig, self.ex.renderer, s.engine.camera.viewport, runner)
        self._switching = None
        if s.focus_mode is not None:
            s.focus_mode.focus.select(None)
        if s.explore.tour is not None:
            s.explore.tour.stop()

    def toggle(self, chapter: int | None = None, step: int = 0) -> None:
        """Open the chapters (at ``chapter``/``step`` if given) or, with none given, close them."""
        if self.player is not None and chapter is None:
            self.close()
            return
        if self.player is None:
            if not self.chapter_list:
                self.ex.notice = tr("menu.chapters.none")
                return
            from llmviz.scenes.chapter_view import ChapterPlayer

            s = self.session
            try:
                self.player = ChapterPlayer(s.scene, s.engine, s.rig, self.ex.renderer, s.engine.camera.viewport)
            except ValueError as err:
                self.ex.notice = str(err)
                return
            if s.focus_mode is not None:
                s.focus_mode.focus.select(None)  # the chapter owns the focus now
            if s.explore.tour is not None:
                s.explore.tour.stop()
        if chapter is not None:
            self.player.go_to(chapter, step)

    def close(self) -> None:
        if self.player is not None:
            self.player.close()
            self.player = None
            self.session.rig.transition = None

    def panels(self, area) -> None:
        player = self.player
        if player is None or player.moment is None:
            return
        choice = panels.ChapterChoice()
        panels.chapter_contents(player.runner, area.left, area.top, area.height, choice)
        panels.chapter_text_panel(player, area.width - panels.CHAPTER_PANEL_WIDTH - 10, area.top, choice)
        player.light_reference(choice.hovered_reference)
        if choice.go_to is not None:
            player.go_to(*choice.go_to)
        if choice.seek is not None:
            player.seek(choice.seek)
        if choice.action:
            self.ex.menu_actions.add(choice.action)
        if choice.close:
            self.close()


class MoeMode(Mode):
    name = "moe"

    def __init__(self, ex, session):
        super().__init__(ex, session)
        scene, model = session.scene, session.model
        self.routing = None
        self.panel = None
        self.error = ""
        self._ready: list = []  # (routing, error) once built; per mode, so a late thread of an old scene is ignored
        self._packets_key = None
        self.packet_layer = None  # a layer row chosen in the heatmap; None: the one nearest the camera
        self._packet_clock = 0.0
        size = session.prepared.packet_size or packet_size(model.layout)
        self.packets = PacketSystem(base_size=size)
        self.thread = None
        if hasattr(scene.live, "stats"):
            self._ready.append((scene.live, None))
        else:  # simulated routing imports torch (a second or more): build it off the frame
            self.thread = threading.Thread(target=self._prepare, name=f"routing {scene.name}", daemon=True)
            self.thread.start()
        self.actions = {"play_pause": self.play_pause, "next": self.step}

    def _prepare(self) -> None:
        try:
            routing = self.session.scene.routing
            from llmviz.scenes import moe_panels  # noqa: F401  (imports torch too, here rather than on a frame)
            self._ready.append((routing, None))
        except Exception as err:  # a routing that fails to build is named in the panel; the window stays up
            self._ready.append((None, tr("moe.routing_failed", error=str(err))))

    def close(self) -> None:
        if self.thread is not None:
            # Still building simulated routing in torch: a thread left inside torch at exit aborts the process.
            self.thread.join(60)
            if self._ready and self._ready[0][0] is not None and self.routing is None:
                self.routing = self._ready[0][0]
        routing = getattr(self, "routing", None)
        if routing is not None and routing is not self.session.scene.live and hasattr(routing, "close"):
            routing.close()  # its routing worker thread; a live MoE closes with its scene

    def wait(self, timeout: float = 30.0) -> bool:
        """Headless only (screenshots, tests): block until simulated routing is built; True once it is."""
        if self.thread is not None:
            self.thread.join(timeout)
            return not self.thread.is_alive()
        return True

    def systems(self):
        systems = [("simulation", "moe_routing", self._update, {}),
                   ("instancing", "packets", self.packets, {"after": "instancing"})]
        return systems

    def _update(self, frame) -> None:
        """Per frame: take the routing once ready, rebuild the packets when the stats (or the layer in view)
        change, loop the animation."""
        if self.panel is None and self._ready:
            routing, error = self._ready[0]
            if error:
                self.error = error
            else:
                from llmviz.scenes.moe_panels import MoePanel

                self.routing = routing
                simulated = getattr(routing, "simulated", False)
                name = self.session.model.spec.name
                self.panel = MoePanel(tr("moe.panel_title_simulated" if simulated else "moe.panel_title", name=name),
                                      live=not simulated)
                self.packets.playing = True
        stats = getattr(self.routing, "stats", None)
        if stats is None or not stats.n_layers or not stats.n_tokens:
            return
        self._packet_clock += frame.dt
        row = self.packet_layer
        if row is None or row >= stats.n_layers:
            refresh = self._packets_key is None or self._packet_clock >= PACKET_REFRESH_S
            row = self._layer_in_view(stats) if refresh else self._packets_key[1]
        if self._packet_clock >= PACKET_REFRESH_S:
            self._packet_clock = 0.0
        key = (self.routing.stats_version, row)
        if key != self._packets_key:
            from llmviz.scenes.moe_live import routing_packets

            try:
                self.packets.set_packets(**routing_packets(self.session.model.layout, stats, row))
            except (KeyError, ValueError) as err:  # a layout without an expert block: no packets, a note
                self.error = tr("moe.no_packets", error=str(err))
                self.packets.set_packets(np.zeros((0, 2, 3), np.float32))
            self._packets_key = key
        if self.packets.playing and self.packets.time > self.packets.end_time + 0.5:
            self.packets.seek(0.0)  # loop

    def _layer_in_view(self, stats) -> int:
        """The MoE layer row whose router is on screen nearest its centre; the first MoE layer when none is."""
        layout = self.session.model.layout
        centers = []
        for block in stats.layers:
            try:
                centers.append(layout.center[layout.index(f"blocks.{int(block)}.moe.router")])
            except KeyError:
                centers.append(np.full(3, np.inf))
        camera = self.session.engine.camera
        w, h = camera.viewport
        centers = np.asarray(centers, np.float64)
        finite = np.isfinite(centers).all(axis=1)
        px = np.full((len(centers), 3), np.nan)
        px[finite] = camera.project(centers[finite])
        on_screen = finite & (px[:, 2] > 0) & (px[:, 0] >= 0) & (px[:, 0] <= w) & (px[:, 1] >= 0) & (px[:, 1] <= h)
        if not on_screen.any():
            return 0  # no router in view (the overview of a deep model, a dense block): the first MoE layer
        off = np.hypot(px[:, 0] - w / 2, px[:, 1] - h / 2)
        return int(np.argmin(np.where(on_screen, off, np.inf)))

    @property
    def token(self) -> int:
        """The token whose packets are half way along their paths at the animation's clock."""
        from llmviz.scenes.moe_live import PACKET_DURATION, PACKET_STAGGER

        stats = getattr(self.routing, "stats", None)
        n = stats.n_tokens if stats is not None else 1
        return int(np.clip(round((self.packets.time - PACKET_DURATION / 2) / PACKET_STAGGER), 0, max(n - 1, 0)))

    def play_pause(self) -> None:
        self.packets.playing = not self.packets.playing

    def step(self) -> None:
        """Pause and move the animation on by one token (its packets half way to their experts)."""
        from llmviz.scenes.moe_live import PACKET_DURATION, PACKET_STAGGER

        stats = getattr(self.routing, "stats", None)
        if stats is None:
            return
        self.packets.playing = False
        j = (self.token + 1) % max(stats.n_tokens, 1)
        self.packets.seek(j * PACKET_STAGGER + PACKET_DURATION / 2)

    def fly_to_expert(self, block: int, expert: int) -> None:
        """Focus (and fly the camera to) expert ``expert`` of block ``block``; packets follow that layer."""
        model = self.session.model
        try:
            row = model.layout.index(f"blocks.{block}.moe.expert.{expert}")
        except KeyError:
            self.error = tr("moe.no_block", expert=expert, block=block)
            return
        stats = getattr(self.routing, "stats", None)
        if stats is not None:
            rows = np.flatnonzero(np.asarray(stats.layers) == block)
            self.packet_layer = int(rows[0]) if len(rows) else None
        self.session.focus_mode.select(Node(BLOCK, int(row)))

    def export(self, folder=".") -> str:
        """Write routing.npz and routing.csv into ``folder``; returns the confirmation line (raises OSError)."""
        from pathlib import Path

        from llmviz.scenes.moe_live import export_routing

        stats = getattr(self.routing, "stats", None)
        if stats is None:
            raise OSError(tr("moe.no_trace_yet"))
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise OSError(tr("moe.no_folder", folder=str(folder)))
        written = [export_routing(stats, folder / name) for name in ("routing.npz", "routing.csv")]
        return tr("moe.exported", npz=str(written[0].resolve()), csv=written[1].name, layers=stats.n_layers,
                  tokens=stats.n_tokens)

    def panels(self, area) -> None:
        x, y, height = area.width - panels.MOE_PANEL_WIDTH - 10, area.top, area.height - 8
        if self.panel is None:
            panels.moe_placeholder(x, y, self.error or tr("moe.preparing"), bool(self.error))
            return
        stats = getattr(self.routing, "stats", None)
        row = self._packets_key[1] if self._packets_key is not None else None
        layer = f"layer {int(stats.layers[row])}" if stats is not None and row is not None and row < stats.n_layers else ""
        choice = self.panel.draw(x, y, height, self.routing, self.token, self.packets.playing, layer)
        if self.error:
            self.panel.message, self.panel.message_ok = self.error, False
            self.error = ""
        if choice.play_pause:
            self.play_pause()
        if choice.step:
            self.step()
        if choice.generate and hasattr(self.routing, "step"):
            self.routing.step()
        if choice.toggle_generation and hasattr(self.routing, "toggle_play"):
            self.routing.toggle_play()
        if choice.routing is not None:
            self.routing.set_routing(*choice.routing)
        if choice.fly_to is not None:
            self.fly_to_expert(*choice.fly_to)
        if choice.export:
            try:
                self.panel.message, self.panel.message_ok = self.export(self.panel.export_dir), True
            except (OSError, ValueError) as err:
                self.panel.message, self.panel.message_ok = tr("moe.export_failed", error=str(err)), False


def model_chapters(model) -> tuple[list, str]:
    """(the bundled chapters that play on this model, an error line or "") — a broken file never stops the explorer.
    A scene with no model (the retrieval scene) starts none: it only carries on a chapter whose step shows it."""
    from llmviz.scenes.chapters.format import ChapterError, load_chapters

    if model is None:
        return [], ""
    try:
        return [c for c in load_chapters() if c.model == model.layout.spec_id], ""
    except (ChapterError, OSError) as err:
        return [], tr("window.chapters_not_loaded", error=str(err))


def rows_containing(layout, part: str) -> np.ndarray:
    """Layout rows whose id contains ``part``. A plain loop on purpose: numpy's string functions over
    GPT-3's 122k ids hold the interpreter for ~40 ms in one call, and this runs beside drawn frames."""
    return np.fromiter((i for i, name in enumerate(layout.ids) if part in name), np.int64)


def shared_expert_slots(model) -> np.ndarray:
    """Entity slots of a model's shared experts (always lit, softly: a focus elsewhere still dims them)."""
    return np.asarray(model.block_slots[rows_containing(model.layout, ".moe.shared.")], np.int64)


def packet_size(layout) -> float:
    """Routing packets' size: a fraction of the experts' typical face."""
    experts = rows_containing(layout, ".moe.expert.")
    sizes = np.asarray(layout.size, np.float64)[experts if len(experts) else slice(None)]
    return float(max(np.median(sizes[:, :2].min(axis=1)) * 0.18, 1e-3))
