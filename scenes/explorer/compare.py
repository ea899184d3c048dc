"""Compare mode: two to four models side by side, one view each, built on a worker, their cameras on corresponding components.

The set is built off the frame thread in one job (the current views keep drawing, a progress line
shows): every scene allocates its data cells in one shared atlas, and the frame thread swaps all the
views in at once. The view under the pointer leads: it takes the keys and the mouse; with sync on
(L), every other view's camera is put at the same place relative to the corresponding component —
the layer at the same relative depth (layer i of 32 ↔ layer 2i of 64), the same part of it (attention
↔ attention, MoE ↔ MLP, attention ↔ a recurrent mixer: models/compare.py's correspondence) — so moving in
one view moves the others. The models' differences (models/compare.py) are lit softly in every view, the one
under the pointer in the differences panel strongly, beside the table of what each model costs.
"""
from __future__ import annotations

import re
import threading
import time

import numpy as np

from llmviz.common.i18n import num, tr
from llmviz.engine.camera_control import Pose
from llmviz.engine.input import Actions
from llmviz.models.compare import corresponding_id

MIN_MODELS, MAX_MODELS = 2, 4

# Each view's rectangle (x, y, w, h as fractions of the target, top-left origin) for 2, 3 and 4 models.
VIEW_RECTS = {
    2: ((0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 0.5, 1.0)),
    3: ((0.0, 0.0, 1 / 3, 1.0), (1 / 3, 0.0, 1 / 3, 1.0), (2 / 3, 0.0, 1 / 3, 1.0)),
    4: ((0.0, 0.0, 0.5, 0.5), (0.5, 0.0, 0.5, 0.5), (0.0, 0.5, 0.5, 0.5), (0.5, 0.5, 0.5, 0.5)),
}

# A layer or one of its parts (under a tower's prefix too): where a camera can be in a model.
_LAYER_PART = re.compile(r"^(?:[a-z_]+\.)?blocks\.\d+(?:\.[a-z_]+)?$")


class LayoutIndex:
    """What camera sync looks up in one model's layout, computed once when its view opens (GPT-3 has tens of
    thousands of groups: nothing here may walk them every frame)."""

    def __init__(self, spec, layout):
        self.spec, self.layout = spec, layout
        candidates = [g for g, gid in enumerate(layout.group_ids)  # where a camera can be "at": layers, their
                      if _LAYER_PART.match(gid) or (layout.group_parent[g] <= 0 and gid)]   # parts, top groups
        self.candidates = np.asarray(candidates, np.int64)
        self.groups = set(layout.group_ids)
        self.centers = layout.group_center[self.candidates, :2]
        self.half = layout.group_size[self.candidates, :2] / 2
        self.area = np.prod(layout.group_size[self.candidates, :2], axis=1)


def focus_group(index: LayoutIndex, camera) -> int:
    """The component group the camera looks at: the smallest whose box holds the point where the view's
    centre ray meets the model's plane (z = 0), else the one whose centre is nearest that point."""
    position, forward = np.asarray(camera.position, np.float64), np.asarray(camera.forward, np.float64)
    if forward[2] < -1e-6:
        point = position[:2] + forward[:2] * (-position[2] / forward[2])
    else:                                        # looking away from the model's plane: straight below the eye
        point = position[:2]
    inside = np.all(np.abs(point - index.centers) <= index.half, axis=1)
    if inside.any():
        return int(index.candidates[inside][np.argmin(index.area[inside])])
    return int(index.candidates[np.argmin(np.linalg.norm(index.centers - point, axis=1))])


def _scale(layout, group: int) -> float:
    return float(max(layout.group_size[group, :2].max(), 1e-6))


def corresponding_pose(source: LayoutIndex, camera, target: LayoutIndex) -> Pose | None:
    """Where the target model's camera goes to show what the source camera shows: the same offset from the
    corresponding component, scaled by the two components' sizes, looking the same way."""
    group = focus_group(source, camera)
    target_id = corresponding_id(source.spec, source.layout.group_ids[group], target.spec)
    if target_id is None or target_id not in target.groups:
        return None
    to = target.layout.group_index(target_id)
    source_center = np.asarray(source.layout.group_center[group], np.float64)
    target_center = np.asarray(target.layout.group_center[to], np.float64)
    offset = (np.asarray(camera.position, np.float64) - source_center) / _scale(source.layout, group)
    return Pose(target_center + offset * _scale(target.layout, to), np.asarray(camera.orientation, np.float64))


def _component_kinds(model):
    """A function: a set of component kinds ("attention", "mlp", "moe", "norm", …) → the entity slots of the
    model's blocks and groups of those kinds (models/compare.py's path_of names each layout id's kind)."""
    from llmviz.models.compare import path_of

    layout = model.layout

    def kind(ident: str) -> str | None:
        parts = ident.split(".")
        key = ".".join(parts[:3]) if parts[0] == "blocks" else parts[0]   # the component an id belongs to
        if key not in cache:
            path = path_of(model.spec, key)
            cache[key] = None if path is None else path.kind
        return cache[key]

    cache: dict[str, str | None] = {}
    block_kinds = np.array([kind(i) or "" for i in layout.ids], dtype=object)
    group_kinds = np.array([kind(g) or "" if g else "" for g in layout.group_ids], dtype=object)

    def slots(kinds: set[str]) -> np.ndarray:
        wanted = np.array(sorted(kinds), dtype=object)
        return np.concatenate([model.block_slots[np.isin(block_kinds, wanted)],
                               model.group_slots[np.isin(group_kinds, wanted)]]).astype(np.int64)

    return slots


class CompareBuild:
    """The compare set's scenes built in one job on a worker, into one shared data atlas."""

    def __init__(self, renderer, names: list[str], viewports: list[tuple[int, int]], autoplay: bool = False):
        self.names = list(names)
        self.prepared: list = []
        self.comparison = None      # models/compare.py's Comparison of the set
        self.lit: list[dict] = []   # per view: difference index -> entity slots it lights
        self.notes: list[str] = []
        self.error: str | None = None
        self.stage, self.fraction = "starting", 0.0
        self.cancelled = False
        self.started = time.perf_counter()
        self._thread = threading.Thread(target=self._run, args=(renderer, viewports, autoplay),
                                        name="compare build", daemon=True)
        self._thread.start()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def _run(self, renderer, viewports, autoplay) -> None:
        from llmviz.scenes.explorer.loader import prepare_scene

        packer = None
        try:
            for k, (name, viewport) in enumerate(zip(self.names, viewports)):
                if self.cancelled:
                    break

                def progress(stage, fraction, k=k, name=name):
                    self.stage = f"{k + 1} of {len(self.names)}, {name}: {stage}"
                    self.fraction = (k + fraction) / len(self.names)

                prepared = prepare_scene(name, renderer, viewport, autoplay=autoplay, progress=progress,
                                         packer=packer)
                packer = prepared.staging.packer     # the next scenes allocate beside this one's cells
                self.prepared.append(prepared)
            self.stage = tr("compare.stage_comparing")
            self._compare()
        except Exception as err:  # the set is not shown; the views stay as they were, the banner says why
            self.error = tr("compare.failed", names=", ".join(self.names), error=str(err))
        if self.cancelled or self.error:
            self.discard()

    def _compare(self) -> None:
        """The table and differences (models/compare.py), and per view the entity slots each difference lights."""
        from llmviz.models.compare import CompareError, compare

        models = [p.scene.model for p in self.prepared]
        self.comparison, self.lit = None, [dict() for _ in models]
        if any(m is None for m in models):
            return                                   # a scene without a model (the stress scene) has no specs
        try:
            self.comparison = compare([m.spec for m in models])
        except CompareError as err:
            self.notes = [str(err)]
            return
        for k, model in enumerate(models):
            kinds_of = _component_kinds(model)
            for d, difference in enumerate(self.comparison.differences):
                if model.spec.id in difference.models and set(difference.kinds) - {"layer"}:
                    slots = kinds_of(set(difference.kinds) - {"layer"})
                    if len(slots):
                        self.lit[k][d] = slots

    def discard(self) -> None:
        for prepared in self.prepared:
            prepared.scene.close()
        self.prepared = []

    def join(self, timeout: float = 120.0) -> None:
        self._thread.join(timeout)


def _model_table(imgui, name: str, models, flags) -> bool:
    """An ImGui table with a label column and one column per model, its header row drawn; False when hidden."""
    if not imgui.begin_table(name, 1 + len(models), flags):
        return False
    imgui.table_setup_column("")
    for m in models:
        imgui.table_setup_column(m)
    imgui.table_headers_row()
    return True


def _plain(_color, text: str) -> None:
    from imgui_bundle import imgui

    imgui.text(text)


def _number(value) -> str:
    """A table value: integers with thousands separators, large ones in K/M/G/T, others to 3 significant digits."""
    v = float(value)
    if abs(v) >= 1e5:
        for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
            if abs(v) >= scale:
                return f"{v / scale:.3g}{suffix}"
    return f"{int(v):,}" if v == int(v) else f"{v:.3g}"


class CompareMode:
    """The Explorer's compare set: which models, which view leads, whether the cameras follow it."""

    def __init__(self, ex):
        self.ex = ex
        self.names: list[str] = []        # the models shown side by side (empty: not comparing)
        self.build: CompareBuild | None = None
        self.sync = True
        self.leader = 0                   # the view that takes the input
        self.chooser_open = False
        self.chosen: list[str] = []       # ticked in the chooser
        self._last_pose: tuple | None = None
        self.indexes: list[LayoutIndex | None] = []   # per view, for camera sync
        self.comparison = None
        self.lit: list[dict] = []
        self.hovered: int | None = None               # the difference under the pointer in the panel

    @property
    def on(self) -> bool:
        return len(self.names) >= MIN_MODELS and len(self.ex.views) == len(self.names)

    # ---------------------------------------------------------------- opening and closing
    def check(self, names: list[str]) -> str | None:
        """Why `names` cannot be compared (one line), or None."""
        known = {entry.scene for entry in self.ex.catalog}
        if not MIN_MODELS <= len(names) <= MAX_MODELS:
            return tr("compare.how_many", lo=MIN_MODELS, hi=MAX_MODELS, n=len(names))
        if len(set(names)) != len(names):
            return tr("compare.different", names=", ".join(names))
        unknown = [n for n in names if n not in known]
        if unknown:
            return tr("compare.unknown", names=", ".join(unknown))
        return None

    def open(self, names: list[str]) -> str | None:
        """Start building the set (returns at once); None, or the reason it cannot be."""
        problem = self.check(list(names))
        if problem:
            self.ex.notice = problem
            return problem
        if self.build is not None:
            self.build.cancelled = True
        rects = VIEW_RECTS[len(names)]
        size = self.ex.renderer.size
        viewports = [(max(1, int(w * size[0])), max(1, int(h * size[1]))) for _, _, w, h in rects]
        self.build = CompareBuild(self.ex.renderer, list(names), viewports, self.ex.autoplay)
        self.chooser_open = False
        return None

    def poll(self, frame=None) -> None:
        """On the frame thread: swap a finished set in (its uploads played back), the old views closed."""
        build = self.build
        if build is None or not build.done:
            return
        self.build = None
        if build.error or build.cancelled:
            if build.error:
                self.ex.notice = build.error
            return
        from llmviz.scenes.explorer.controller import SceneSession, View

        for prepared in build.prepared:
            prepared.staging.apply(self.ex.renderer)
        old = [view.session for view in self.ex.views]
        rects = VIEW_RECTS[len(build.prepared)]
        self.ex.views[:] = [View(SceneSession(self.ex, p), rect) for p, rect in zip(build.prepared, rects)]
        for session in old:
            session.close()
        self.names = list(build.names)
        self.comparison, self.lit, self.hovered = build.comparison, build.lit, None
        for view, lit in zip(self.ex.views, self.lit):
            if lit:
                view.session.engine.flags.set("compare_differences", np.unique(np.concatenate(list(lit.values()))),
                                              soft=True)
        self.indexes = [LayoutIndex(v.session.model.spec, v.session.model.layout) if v.session.model is not None else None
                        for v in self.ex.views]
        self.leader = 0
        self._last_pose = None
        self.ex.quality.reset()
        self.ex._apply_quality()
        self.ex.notice = tr("compare.comparing_in_step" if self.sync else "compare.comparing_free", names=", ".join(self.names))

    def close(self) -> None:
        """Back to one view: the leading one, whole-window."""
        if self.build is not None:
            self.build.cancelled = True
            self.build = None
        if not self.on:
            self.names = []
            return
        keep = self.ex.views[self.leader]
        for view in self.ex.views:
            if view is not keep:
                view.session.close()
        keep.rect = (0.0, 0.0, 1.0, 1.0)
        self.ex.views[:] = [keep]
        self.names = []
        self.ex.notice = ""

    def toggle(self) -> None:
        """M: the chooser, or out of compare mode."""
        if self.on or self.build is not None:
            self.close()
        else:
            self.chooser_open = not self.chooser_open
            if self.chooser_open and not self.chosen:
                self.chosen = [self.ex.session.name]

    def toggle_sync(self) -> None:
        self.sync = not self.sync
        self._last_pose = None
        if self.on:
            self.ex.notice = tr("compare.cameras_in_step" if self.sync else "compare.cameras_free")

    # ---------------------------------------------------------------- every frame
    def lead_from_pointer(self) -> None:
        """The view under the pointer leads (keeps leading while the pointer is over the UI or outside)."""
        pointer = self.ex.pointer
        if pointer is None or self.ex.ui_wants_mouse:
            return
        for k, view in enumerate(self.ex.views):
            x0, y0, w, h = view.pixels(self.ex.renderer.size)
            if x0 <= pointer[0] < x0 + w and y0 <= pointer[1] < y0 + h:
                if k != self.leader:
                    self.leader = k
                    self._last_pose = None
                return

    def follow(self) -> None:
        """Put every other view's camera at the place corresponding to the leader's, when the leader moved."""
        if not self.sync:
            return
        leader = self.ex.views[self.leader].session
        camera = leader.rig.camera
        pose = (tuple(np.round(camera.position, 9)), tuple(np.round(camera.orientation, 9)))
        source = self.indexes[self.leader]
        if pose == self._last_pose or source is None:
            return
        self._last_pose = pose
        for k, view in enumerate(self.ex.views):
            session, index = view.session, self.indexes[k]
            if k == self.leader or index is None:
                continue
            target = corresponding_pose(source, camera, index)
            if target is not None:
                session.rig.transition = None
                target.apply(session.rig.camera)

    def actions_for(self, k: int, actions):
        """The leader takes the input; the others only follow."""
        return actions if k == self.leader else Actions()

    # ---------------------------------------------------------------- the UI
    def draw(self, area) -> None:
        """The chooser (M), and over a compare set each view's model name, the leader outlined."""
        from imgui_bundle import imgui

        if self.chooser_open:
            self._chooser(imgui, area)
        if not self.on:
            return
        self._outputs(imgui, area)
        self._table(imgui, area)
        ui_scale = self.ex.ui.io.display_size.x / max(self.ex.renderer.size[0], 1)
        draw = imgui.get_foreground_draw_list()
        for k, view in enumerate(self.ex.views):
            x0, y0, w, h = (v * ui_scale for v in view.pixels(self.ex.renderer.size))
            session = view.session
            lead = k == self.leader
            color = imgui.get_color_u32(imgui.ImVec4(1.0, 0.78, 0.35, 1.0) if lead else imgui.ImVec4(0.6, 0.65, 0.7, 1.0))
            draw.add_rect(imgui.ImVec2(x0 + 1, y0 + 1), imgui.ImVec2(x0 + w - 1, y0 + h - 1), color, 0.0, 0,
                          2.0 if lead else 1.0)
            top = max(y0, area.top - 4.0)  # below the menu and banner when the view starts at the top
            draw.push_clip_rect(imgui.ImVec2(x0, y0), imgui.ImVec2(x0 + w - 4, y0 + h), True)  # each in its view
            draw.add_text(imgui.ImVec2(x0 + 8, top + 4), color, session.title + ("  (leads)" if lead and self.sync else ""))
            draw.add_text(imgui.ImVec2(x0 + 8, top + 4 + imgui.get_text_line_height()), color, session.params)
            draw.pop_clip_rect()

    def text_models(self) -> list:
        """The compare set's live character models (those that read a text), in view order."""
        from llmviz.scenes.text_live import LiveTextModel

        return [view.session.scene.live for view in self.ex.views if isinstance(view.session.scene.live, LiveTextModel)]

    def set_text(self, text: str) -> list[str]:
        """One input for every live character model; the problems, one line each ("model: why")."""
        problems = []
        for live in self.text_models():
            problem = live.set_text(text)
            if problem:
                problems.append(f"{live.spec.id if getattr(live, 'spec', None) else 'model'}: {problem}")
        return problems

    def timeline(self, action: str) -> None:
        """N / Space on a compare set: every live model moves on together — a character models generates its
        next character (or plays), any other live model takes the action as it would alone."""
        from llmviz.scenes.text_live import LiveTextModel

        for view in self.ex.views:
            live = view.session.scene.live
            if isinstance(live, LiveTextModel):
                live.step() if action == "next" else live.toggle_play()
            elif (handler := view.session.handler(action)) is not None:
                handler()

    def _outputs(self, imgui, area) -> None:
        """The live models on the same input: the text box, each model's text so far and its next-character
        probabilities, side by side."""
        models = self.text_models()
        if not models:
            return
        width = 250.0 * len(models) + 20.0
        # Bottom right: the legend keeps the bottom left.
        imgui.set_next_window_pos(imgui.ImVec2(area.width - width - 10.0, area.top + area.height - 10.0),
                                  imgui.Cond_.appearing, imgui.ImVec2(0.0, 1.0))
        imgui.set_next_window_size(imgui.ImVec2(width, 0))
        imgui.set_next_window_bg_alpha(0.88)
        expanded, _ = imgui.begin(tr("compare.same_input") + "###compare_input", None, imgui.WindowFlags_.no_saved_settings)
        if expanded:
            imgui.set_next_item_width(-1)
            changed, self.text = imgui.input_text("##compare_text", getattr(self, "text", models[0].text))
            if changed:
                self.problems = self.set_text(self.text)
            for line in getattr(self, "problems", []):
                imgui.text_colored(imgui.ImVec4(1.0, 0.4, 0.35, 1.0), line)
            if imgui.begin_table("outputs", len(models), imgui.TableFlags_.borders_inner_v):
                for live in models:
                    imgui.table_next_column()
                    imgui.text(live.spec.id if getattr(live, "spec", None) else tr("compare.live_model"))
                    imgui.text_colored(imgui.ImVec4(0.62, 0.65, 0.70, 1.0), tr("compare.characters", n=len(live.tokens))
                                       + (tr("compare.computing") if live.busy else ""))
                    trace = live.trace
                    if trace is None:
                        imgui.text(tr("compare.waiting"))
                        continue
                    probs = np.asarray(trace["probs"][-1], np.float64)
                    for k in np.argsort(-probs)[:5].tolist():
                        ch = live.alphabet[k]
                        shown = {" ": tr("hover.space"), "\n": "\\n"}.get(ch, ch)
                        imgui.progress_bar(float(probs[k]), imgui.ImVec2(-1, 0), f"{shown}  {num(float(probs[k]), '.3f')}")
                imgui.end_table()
            imgui.text_colored(imgui.ImVec4(0.62, 0.65, 0.70, 1.0), tr("compare.keys"))
        imgui.end()

    def _highlight(self, difference: int | None) -> None:
        """Light one difference strongly in every view (None: only the soft light of all of them)."""
        if difference == self.hovered:
            return
        self.hovered = difference
        for view, lit in zip(self.ex.views, self.lit):
            flags = view.session.engine.flags
            if difference is not None and difference in lit:
                flags.set("compare_focus", lit[difference])
            else:
                flags.clear("compare_focus")

    def _table(self, imgui, area) -> None:
        """What each model costs, the larger and smaller value of each row marked, and the differences list."""
        c = self.comparison
        if c is None:
            return
        width = 200.0 + 130.0 * len(c.models)
        # Top right, over the last view's far side: the leading view on the left stays clear.
        imgui.set_next_window_pos(imgui.ImVec2(area.width - width - 10.0, area.top + 40.0), imgui.Cond_.appearing)
        imgui.set_next_window_size(imgui.ImVec2(width, min(area.height - 60.0, 380.0)), imgui.Cond_.appearing)
        imgui.set_next_window_bg_alpha(0.9)
        expanded, _ = imgui.begin(tr("compare.cost_title", context=c.context) + "###compare_cost", None,
                                  imgui.WindowFlags_.no_saved_settings)
        hovered = None
        if expanded:
            larger, smaller = imgui.ImVec4(1.0, 0.74, 0.28, 1.0), imgui.ImVec4(0.55, 0.78, 1.0, 1.0)
            flags = imgui.TableFlags_.borders_inner_h | imgui.TableFlags_.row_bg | imgui.TableFlags_.sizing_fixed_fit
            if _model_table(imgui, "cost", c.models, flags):
                for row in c.rows:
                    imgui.table_next_row()
                    imgui.table_next_column()
                    shown_unit = row.unit and row.unit not in row.label
                    imgui.text(row.label + (f" ({row.unit})" if shown_unit else ""))
                    if imgui.is_item_hovered():
                        imgui.set_tooltip(row.formula)
                    for m in c.models:
                        imgui.table_next_column()
                        value = row.values.get(m)
                        text = "—" if value is None else _number(value)
                        if m in row.largest:
                            imgui.text_colored(larger, text)
                        elif m in row.smallest:
                            imgui.text_colored(smaller, text)
                        else:
                            imgui.text(text)
                imgui.end_table()
            imgui.text_colored(larger, tr("compare.larger"))
            imgui.same_line()
            imgui.text_colored(smaller, tr("compare.smaller"))
            imgui.same_line()
            imgui.text_colored(imgui.ImVec4(0.62, 0.65, 0.70, 1.0), tr("compare.hover_row"))
            imgui.separator()
            if imgui.collapsing_header(tr("compare.features") + "###features"):
                if _model_table(imgui, "features", c.models, flags):
                    for feature in c.features:
                        imgui.table_next_row()
                        imgui.table_next_column()
                        (imgui.text_colored if feature.differs else _plain)(larger, feature.label)
                        for m in c.models:
                            imgui.table_next_column()
                            value = feature.values.get(m)
                            imgui.text("—" if value is None else str(value))
                    imgui.end_table()
                imgui.text_colored(larger, tr("compare.amber"))
            imgui.text(tr("compare.differences", n=len(c.differences)))
            for d, difference in enumerate(c.differences):
                imgui.push_text_wrap_pos(0.0)
                imgui.bullet_text(f"{difference.component}: {difference.what}")
                imgui.pop_text_wrap_pos()
                if imgui.is_item_hovered():
                    hovered = d
        imgui.end()
        self._highlight(hovered)

    def _chooser(self, imgui, area) -> None:
        imgui.set_next_window_pos(imgui.ImVec2(area.left, area.top), imgui.Cond_.appearing)
        imgui.set_next_window_size(imgui.ImVec2(380, min(520, area.height)), imgui.Cond_.appearing)
        expanded, still_open = imgui.begin(tr("compare.chooser_title") + "###compare_chooser", True,
                                           imgui.WindowFlags_.no_saved_settings | imgui.WindowFlags_.no_collapse)
        if expanded:
            imgui.text_wrapped(tr("compare.tick", lo=MIN_MODELS, hi=MAX_MODELS))
            imgui.begin_child("models", imgui.ImVec2(0, -34))
            for entry in self.ex.catalog:
                ticked = entry.scene in self.chosen
                changed, ticked = imgui.checkbox(f"{entry.label}{entry.tags}  ({entry.params})##{entry.scene}", ticked)
                if changed:
                    if ticked and entry.scene not in self.chosen and len(self.chosen) < MAX_MODELS:
                        self.chosen.append(entry.scene)
                    elif not ticked and entry.scene in self.chosen:
                        self.chosen.remove(entry.scene)
            imgui.end_child()
            ready = MIN_MODELS <= len(self.chosen) <= MAX_MODELS
            imgui.begin_disabled(not ready)
            if imgui.button(tr("compare.compare_n", n=len(self.chosen)) + "###compare_go"):
                self.open(list(self.chosen))
            imgui.end_disabled()
            imgui.same_line()
            if imgui.button(tr("compare.cancel") + "###compare_cancel"):
                self.chooser_open = False
        imgui.end()
        if not still_open:
            self.chooser_open = False
