"""The residual stream and the connections between blocks: right edges (against the dataflow declaration),
lines that really join their blocks, a stream through every layer, HLOD, pixels on screen, and pulses."""
import re

import numpy as np
import pytest

from llmviz.engine.camera import Camera
from llmviz.engine.runtime import Engine
from llmviz.models.registry import load_registry
from llmviz.scenes import dataflow
from llmviz.scenes.flow_graph import is_node
from llmviz.scenes.flow_lines import KIND_COLORS, KIND_STREAM, LINE_DEPTH, flow_lines
from llmviz.scenes.layout import KIND_RESIDUAL, layout_model
from llmviz.scenes.model_scene import build_model_scene
from gl_support import headless_or_skip

REGISTRY = load_registry()
_LAYER = re.compile(r"blocks\.(\d+)\.")


@pytest.fixture(scope="module")
def nano():
    layout = layout_model(REGISTRY.get("nano-gpt"))
    return layout, flow_lines(layout)


def _pairs(layout, flow):
    return {(layout.ids[s], layout.ids[d]) for s, d in zip(flow.pair_src, flow.pair_dst)}


def _declared_sources(tensor_id, n_layers, n_heads, n_experts=0):
    """The tensors dataflow.py says a tensor is computed from (the independent reference)."""
    return set(dataflow.resolve(tensor_id, n_layers, n_heads, n_experts).source_ids)


def _computing_matrix(tensor_id):
    """The matrix a linear block is computed with, by the layout's naming (W_q for q, ...)."""
    head, _, last = tensor_id.rpartition(".")
    if last in ("q", "k", "v"):
        return f"{head}.w{last}"
    return "lm_head.weight" if tensor_id == "logits" else tensor_id + ".weight"


def test_nano_gpt_lines_are_the_declared_dataflow(nano):
    layout, flow = nano
    arch = REGISTRY.get("nano-gpt").architecture
    nodes = {i for i, node in zip(layout.ids, is_node(layout.kind)) if node}
    drawn = _pairs(layout, flow)
    for src, dst in drawn:
        assert src in _declared_sources(dst, arch.n_layers, arch.n_heads), (src, dst)
    # ...and every declared flow between two blocks is drawn, and each matrix into its own output.
    expected = 0
    for dst in nodes:
        sources = _declared_sources(dst, arch.n_layers, arch.n_heads)
        for src in sources & set(layout.ids):
            if src in nodes or src == _computing_matrix(dst):
                assert (src, dst) in drawn, (src, dst)
                expected += 1
    assert expected > 100


def test_moe_lines_follow_the_moe_declaration():
    layout = layout_model(REGISTRY.get("moe-4"))
    flow = flow_lines(layout)
    arch = REGISTRY.get("moe-4").architecture
    n = arch.moe.n_experts
    drawn = _pairs(layout, flow)
    checked = 0
    for src, dst in drawn:
        if ".moe." not in dst and ".moe." not in src:
            continue
        # The layout's expert block stands for the expert's matrices and its output.
        target = dst + ".out" if re.search(r"moe\.expert\.\d+$", dst) else dst
        sources = _declared_sources(target, arch.n_layers, arch.n_heads, n)
        assert src in sources or (src.endswith(".weight") and src[:-len(".weight")] == dst), (src, dst)
        checked += 1
    assert checked >= 2 * (2 * n + 3)
    for b in range(arch.n_layers):
        for e in range(n):
            assert (f"blocks.{b}.moe.gates", f"blocks.{b}.moe.expert.{e}") in drawn
            assert (f"blocks.{b}.moe.expert.{e}", f"blocks.{b}.moe.out") in drawn


def _box(layout, tensor_id):
    i = layout.index(tensor_id)
    c, h = layout.center[i, :2], layout.size[i, :2] / 2
    return c - h, c + h


def _group_box(layout, group_id):
    g = layout.group_index(group_id)
    c, h = layout.group_center[g, :2], layout.group_size[g, :2] / 2
    return c - h, c + h


def _on_edge(point, lo, hi, tol):
    inside = np.all(point >= lo - tol) and np.all(point <= hi + tol)
    near_edge = np.any(np.abs(point - lo) <= tol) or np.any(np.abs(point - hi) <= tol)
    return inside and near_edge


def test_every_line_starts_at_its_source_and_ends_at_its_target(nano):
    """Brute force over every path: its ends lie on the boxes of what it joins (the block, its
    matrix, the head holding it, or the stream's spine)."""
    layout, flow = nano
    stream_x = np.unique(layout.center[layout.kind == KIND_RESIDUAL, 0])
    for p in range(flow.n_paths):
        pts = flow.path_points[p, :flow.path_count[p], :2]
        assert len(pts) >= 2
        legs = np.diff(pts, axis=0)
        assert np.all((np.abs(legs[:, 0]) < 1e-4) | (np.abs(legs[:, 1]) < 1e-4)), "orthogonal legs only"
        tol = flow.path_width[p]
        pairs = np.flatnonzero(flow.pair_path == p)
        srcs = {layout.ids[flow.pair_src[i]] for i in pairs}
        dsts = {layout.ids[flow.pair_dst[i]] for i in pairs}

        def boxes(ids):
            for tensor_id in ids:
                yield _box(layout, tensor_id)
                if _computing_matrix(tensor_id) in layout.ids:
                    yield _box(layout, _computing_matrix(tensor_id))
                head = re.match(r"(.*\.head\.\d+)\.", tensor_id)
                if head:
                    yield _group_box(layout, head.group(1))

        start_ok = any(_on_edge(pts[0], lo, hi, tol) for lo, hi in boxes(srcs)) or \
            np.abs(stream_x - pts[0, 0]).min() <= tol  # a tap leaves the spine
        end_ok = any(_on_edge(pts[-1], lo, hi, tol) for lo, hi in boxes(dsts))
        assert start_ok and end_ok, (p, sorted(srcs), sorted(dsts), pts.tolist())


@pytest.mark.parametrize("model", ["nano-gpt", "gpt-2-small", "mamba-2.8b", "rwkv-4-169m", "whisper-base",
                                   "jamba-v0.1", "vit-b-16", "llama-3-8b"])
def test_the_stream_runs_through_every_layer_in_order(model):
    """The spine joins the stream blocks in layer order (from the ids: blocks.0, blocks.1, ...), and
    inside a column its segments cover the whole way from the embedding to the last layer."""
    layout = layout_model(REGISTRY.get(model))
    flow = flow_lines(layout)
    n_layers = REGISTRY.get(model).architecture.n_layers
    stream = flow.path_kind[flow.pair_path] == KIND_STREAM
    hops = {(layout.ids[s], layout.ids[d]) for s, d in zip(flow.pair_src[stream], flow.pair_dst[stream])}

    def layer(tensor_id):
        m = _LAYER.match(tensor_id)
        return int(m.group(1)) if m else (-1 if tensor_id.startswith("embed") else n_layers)

    for i in range(n_layers):
        into = [h for h in hops if layer(h[1]) == i and layer(h[0]) == i - 1]
        out = [h for h in hops if layer(h[0]) == i and layer(h[1]) > i]
        assert into and out, f"{model}: no stream into or out of layer {i}"
    # Continuity: per column, the stream's segments leave no gap between consecutive stream blocks.
    seg = flow.seg_kind == KIND_STREAM
    centers, sizes = flow.seg_center[seg], flow.seg_size[seg]
    rows = np.flatnonzero(layout.kind == KIND_RESIDUAL)
    for a, b in zip(rows[:-1], rows[1:]):
        x = layout.center[a, 0]
        tol = 1e-3 + 1e-5 * abs(x)  # float32 positions ten thousands of units out
        if abs(x - layout.center[b, 0]) > tol:
            continue  # a new column: the stream ends in a stub and starts again above
        y_hi = layout.center[a, 1] - layout.size[a, 1] / 2
        y_lo = layout.center[b, 1] + layout.size[b, 1] / 2
        on = np.abs(centers[:, 0] - x) < tol
        lo, hi = centers[on, 1] - sizes[on, 1] / 2, centers[on, 1] + sizes[on, 1] / 2
        ys = np.linspace(y_lo, y_hi, 50)
        covered = ((ys[:, None] >= lo[None] - tol) & (ys[:, None] <= hi[None] + tol)).any(axis=1)
        assert covered.all(), f"{model}: gap in the stream between {layout.ids[a]} and {layout.ids[b]}"


def test_every_registry_model_gets_a_stream_and_lines():
    for spec in REGISTRY:
        layout = layout_model(spec)
        flow = flow_lines(layout)
        assert len(flow) and np.all(flow.seg_size > 0), spec.id
        assert np.all(flow.seg_size[:, 2] == LINE_DEPTH)
        assert (flow.seg_kind == KIND_STREAM).sum() >= spec.architecture.n_layers, spec.id
        assert flow.seg_group.min() >= 0 and flow.seg_group.max() < len(layout.group_ids)
        # Every node block someone computes from is joined: it appears in some drawn pair.
        joined = set(flow.pair_src.tolist()) | set(flow.pair_dst.tolist())
        stream = np.flatnonzero(layout.kind == KIND_RESIDUAL)
        assert set(stream.tolist()) <= joined, spec.id


def _ancestor_groups(layout, g):
    out = []
    while g >= 0:
        out.append(g)
        g = layout.group_parent[g]
    return out


def test_a_closed_layer_draws_none_of_its_lines():
    spec = REGISTRY.get("gpt-2-medium")  # big enough that its groups close far away
    scene = build_model_scene(spec, None, with_data=False)
    layout = scene.layout
    size = (640, 360)
    eye, target = layout.presets["overview"]
    camera = Camera(position=np.asarray(eye, np.float64), viewport=size)
    camera.look_at(target)
    camera.far = 1e6
    engine = Engine(scene.world, camera)
    frame = engine.frame(0.0)
    drawn = set(frame.visibility.drawn.tolist())
    group = scene.world["group"]
    layers = [layout.group_index(f"blocks.{i}") for i in range(spec.architecture.n_layers)]
    closed = [g for g in layers if not group["expanded"][scene.group_slots[g]]]
    assert closed, "the overview should show closed layers"
    inside = np.array([bool(set(_ancestor_groups(layout, g)) & set(closed)) for g in scene.flow.seg_group])
    assert inside.sum() > 100
    assert not (set(scene.line_slots[inside].tolist()) & drawn)
    # Up close the first layer opens and its lines are drawn.
    eye, target = layout.presets["first block"]
    camera.position = np.asarray(eye, np.float64)
    camera.look_at(target)
    frame = engine.frame(0.0)
    drawn = set(frame.visibility.drawn.tolist())
    first = layout.group_index("blocks.0")
    assert group["expanded"][scene.group_slots[first]]
    expanded = group["expanded"][scene.group_slots]
    chains = [_ancestor_groups(layout, g) for g in scene.flow.seg_group]
    mine = np.array([first in c and expanded[c].all() for c in chains])
    hidden = np.array([not expanded[c].all() for c in chains])
    assert mine.sum() > 20 and len(set(scene.line_slots[mine].tolist()) & drawn) > 0.5 * mine.sum()
    assert not (set(scene.line_slots[hidden].tolist()) & drawn)  # the closed heads' lines stay hidden


@pytest.fixture(scope="module")
def renderer():
    yield from headless_or_skip((640, 480))


def test_a_render_shows_the_line_between_two_blocks(renderer, nano):
    """Square on to the MLP: the pixels on the line from the norm's output into W_fc are the line's
    colour, and a pixel beside the line is the background."""
    layout, _ = nano
    scene = build_model_scene(REGISTRY.get("nano-gpt"), renderer, with_data=False, layout=layout)
    (lo_a, hi_a), (lo_b, hi_b) = _box(layout, "blocks.0.ln2.out"), _box(layout, "blocks.0.mlp.fc.weight")
    assert hi_b[1] < lo_a[1], "W_fc lies below the norm"
    mid = np.array([(max(lo_a[0], lo_b[0]) + min(hi_a[0], hi_b[0])) / 2, (lo_a[1] + hi_b[1]) / 2, 0.0])
    camera = Camera(position=mid + np.array([0.0, 0.0, 40.0]), viewport=(640, 480))
    camera.look_at(mid)
    engine = Engine(scene.world, camera, renderer)
    engine.clear_color = (0.0, 0.0, 0.0, 1.0)
    engine.frame(0.0)
    image = renderer.read_pixels()[:, :, :3].astype(int)
    px, py, _ = camera.project(mid)[0]
    on_line = image[int(py), int(px)]
    assert np.abs(on_line - np.round(KIND_COLORS[0] * 255)).max() < 60, on_line
    width_px = 640 / (2 * 40 * np.tan(np.radians(camera.fov_y) / 2) * camera.aspect)
    beside = image[int(py), int(px + 6 * width_px)]
    assert beside.max() < 20, beside


class _NoRenderer:
    def write_data(self, x, y, values):
        pass


def overview_engine(model: str, with_regions: bool = False):
    """A model's scene (no renderer) with an engine whose camera sits at its overview preset, attached."""
    scene = build_model_scene(REGISTRY.get(model), None, with_data=False)
    if with_regions:
        scene.regions[:, 2:] = 1  # pretend every block has data, so write_values reaches the pulses
    eye, target = scene.layout.presets["overview"]
    camera = Camera(position=np.asarray(eye, np.float64), viewport=(640, 360))
    camera.look_at(target)
    camera.far = 1e6
    engine = Engine(scene.world, camera)
    scene.attach(engine)
    return scene, engine, camera


def test_pulses_run_in_order_along_the_lines_and_only_on_drawn_lines():
    scene, engine, camera = overview_engine("nano-gpt", with_regions=True)
    layout = scene.layout
    assert "instancing/flow_pulses" in engine.schedule.order()
    engine.frame(0.0)
    arrays = {tensor_id: np.zeros((1, 1), np.float32) for tensor_id in layout.ids}
    scene.write_values(_NoRenderer(), arrays)  # a whole trace arrived
    pulses = scene.pulses
    flow = scene.flow
    n_layers = REGISTRY.get("nano-gpt").architecture.n_layers

    def stage(row):  # where a block sits in the model: -1 before the layers, then each layer, then after
        m = _LAYER.match(layout.ids[row])
        return int(m.group(1)) if m else (-1 if layout.ids[row].startswith(("embed", "tokens")) else n_layers)

    def in_flight():
        t = pulses.time
        return np.flatnonzero((t >= pulses.start) & (t < pulses.start + pulses.duration))

    def stages(paths):
        return [max(stage(d) for d in flow.pair_dst[flow.pair_path == p]) for p in paths]

    frame = engine.frame(0.6)  # early in the wave: pulses into the embedding and the first layer only
    early = in_flight()
    assert len(early) and max(stages(early)) <= 0
    drawn = set(frame.visibility.drawn.tolist())
    shown = [p for p in early if any(int(scene.line_slots[sg]) in drawn for sg in
                                     flow.path_segments[flow.path_seg_offsets[p]:flow.path_seg_offsets[p + 1]])]
    assert len(shown) > len(early) / 2 and pulses.last_count == len(shown)  # pulses only where lines are drawn
    batch = frame.batches[-1]  # the pulses' batch, appended after the engine's instancing
    assert batch.count == len(shown)
    for p, pos in zip(shown, batch.instances[:, 0:3]):
        pts = flow.path_points[p, :flow.path_count[p]]
        assert any(np.all(pos >= np.minimum(a, b) - 1e-3) and np.all(pos <= np.maximum(a, b) + 1e-3)
                   for a, b in zip(pts[:-1], pts[1:])), "a pulse lies on its line"
    # Then the wave moves down the model, layer after layer, and ends in the output.
    means = [np.mean(stages(early))]
    t_end = float((pulses.start + pulses.duration).max())
    while pulses.time < t_end - 0.5:
        engine.frame(0.4)
        if len(in_flight()):
            means.append(np.mean(stages(in_flight())))
    assert means[-1] >= n_layers - 1 and all(b >= a - 0.5 for a, b in zip(means, means[1:])), means
    engine.frame(10.0)
    assert pulses.last_count == 0 and not pulses.active


def test_pulses_skip_lines_a_closed_group_hides():
    scene, engine, camera = overview_engine("gpt-2-medium")
    layout, flow = scene.layout, scene.flow
    engine.frame(0.0)
    scene.pulses.trigger(np.arange(len(layout.ids)))
    engine.frame(2.0)
    pulses = scene.pulses
    t = pulses.time
    flying = np.flatnonzero((t >= pulses.start) & (t < pulses.start + pulses.duration))
    expanded = scene.world["group"]["expanded"][scene.group_slots]

    def hidden(p):  # every segment of the path lies under a closed group
        segs = flow.path_segments[flow.path_seg_offsets[p]:flow.path_seg_offsets[p + 1]]
        return all(not expanded[_ancestor_groups(layout, flow.seg_group[sg])].all() for sg in segs)

    behind = sum(hidden(p) for p in flying)
    assert behind > 0 and pulses.last_count <= len(flying) - behind


def test_lines_fade_with_the_blocks_they_join():
    from llmviz.engine.ecs.components import FLAG_DIMMED

    scene = build_model_scene(REGISTRY.get("nano-gpt"), None, with_data=False)
    layout, flow = scene.layout, scene.flow
    camera = Camera(position=np.array([0.0, 0.0, 3000.0]), viewport=(320, 240))
    engine = Engine(scene.world, camera)
    scene.attach(engine)
    lit = np.array([layout.index("blocks.0.mlp.fc"), layout.index("blocks.0.mlp.gelu")])
    rest = np.setdiff1d(np.arange(len(layout.ids)), lit)
    engine.flags.set("chapter", scene.block_slots[lit], dim=scene.block_slots[rest])  # as a chapter focus does
    engine.frame(0.0)
    engine.frame(0.0)  # the lines' layer lands one frame after the blocks'
    flags = scene.world["renderable"]["flags"][scene.line_slots]
    dimmed = (flags & FLAG_DIMMED) != 0
    for seg in range(len(flow)):
        paths = np.flatnonzero([seg in flow.path_segments[flow.path_seg_offsets[p]:flow.path_seg_offsets[p + 1]]
                                for p in range(flow.n_paths)])
        rows = set(flow.pair_src[np.isin(flow.pair_path, paths)]) | set(flow.pair_dst[np.isin(flow.pair_path, paths)])
        touches_lit = bool(rows & set(lit.tolist()))
        assert dimmed[seg] != touches_lit or not rows, (seg, sorted(layout.ids[r] for r in rows))
    engine.flags.clear("chapter")
    engine.frame(0.0)
    engine.frame(0.0)
    assert not (scene.world["renderable"]["flags"][scene.line_slots] & FLAG_DIMMED).any()


def test_lines_cross_stacks_from_the_encoder_output_into_every_decoder_layer():
    """Whisper: each decoder layer's cross-attention is joined by a line to the audio encoder's output
    (the block the layout names as the decoder's memory), not only by the flow graph's edges."""
    from llmviz.models.registry import builtin_specs
    from llmviz.scenes.flow_lines import flow_lines
    from llmviz.scenes.layout import layout_model

    spec = next(s for s in builtin_specs() if s.id == "whisper-base")
    layout = layout_model(spec)
    memory = layout.index(layout.links["memory"])
    lines = flow_lines(layout)
    into = {layout.ids[int(d)] for s, d in zip(lines.pair_src, lines.pair_dst) if int(s) == memory}
    for layer in range(spec.architecture.n_layers):
        assert any(t.startswith(f"blocks.{layer}.cross_attn.") for t in into), (layer, sorted(into))
