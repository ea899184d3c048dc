"""The packet animation system: exact ends, monotone travel, instance rows, one numpy pass whatever the count.

What an update costs is a benchmark (benchmarks/timings.py: packets_update_ms), not an assertion here."""
import sys

import numpy as np
import pytest

from llmviz.engine.render.backend import INSTANCE_SLICES, MATERIAL_TRANSLUCENT
from llmviz.engine.render.meshes import MESH_BOX
from llmviz.engine.systems.packets import PACKET_LOD, PacketSystem


def _system(n=50, w=4, seed=0):
    rng = np.random.default_rng(seed)
    # x strictly increasing along every path, so progress along the path shows as growing x
    pts = rng.normal(size=(n, w, 3)).astype(np.float32)
    pts[:, :, 0] = np.cumsum(rng.uniform(0.1, 2.0, (n, w)), axis=1)
    s = PacketSystem()
    s.set_packets(pts, width=rng.uniform(0.1, 1, n), brightness=rng.uniform(0.1, 1, n),
                  color=(1.0, 0.5, 0.2, 1.0), start=rng.uniform(0, 2, n), duration=rng.uniform(0.5, 3, n))
    return s, pts


def test_ends_are_exact_and_travel_is_monotone():
    s, pts = _system()
    begin, _ = s.positions(float(s.start.min()) - 1.0)
    assert np.array_equal(begin, pts[:, 0])
    end, flying = s.positions(s.end_time + 1e-9)
    assert np.array_equal(end, pts[:, -1]) and not flying.any()
    times = np.linspace(s.start.min(), s.end_time, 200)
    xs = np.stack([s.positions(t)[0][:, 0] for t in times])
    assert (np.diff(xs, axis=0) >= -1e-5).all()
    # never off the path nor back: distance travelled is the polyline's length (sampled chords cut
    # the corners slightly, so a little shorter)
    path = np.stack([s.positions(t)[0] for t in np.linspace(s.start.min(), s.end_time, 2000)])
    travelled = np.linalg.norm(np.diff(path, axis=0), axis=2).sum(axis=0)
    length = np.linalg.norm(np.diff(pts, axis=1), axis=2).sum(axis=1)
    assert (travelled <= length * (1 + 1e-5)).all() and np.allclose(travelled, length, rtol=5e-3)


def test_constant_speed_midpoint():
    s = PacketSystem()
    s.set_packets(np.array([[[0, 0, 0], [1, 0, 0], [1, 3, 0]]], np.float32), start=0.0, duration=2.0)
    pos, flying = s.positions(1.0)      # half of length 4 is 2: one unit up the second segment
    assert np.allclose(pos[0], (1, 1, 0)) and flying[0]


def test_batch_rows_follow_instance_layout():
    s, _ = _system()
    t = 1.5
    pos, flying = s.positions(t)
    batch = s.update(t)
    assert (batch.mesh, batch.material, batch.lod) == (MESH_BOX, MATERIAL_TRANSLUCENT, PACKET_LOD)
    assert batch.count == flying.sum() > 0
    rows = batch.instances
    assert np.allclose(rows[:, INSTANCE_SLICES["center"]], pos[flying])
    assert np.allclose(rows[:, INSTANCE_SLICES["size"]], s.width[flying, None] * s.base_size)
    rgb = rows[:, INSTANCE_SLICES["color"]][:, :3]
    assert np.allclose(rgb, s.color[flying, :3] * s.brightness[flying, None])
    assert (rows[:, INSTANCE_SLICES["region"]] == 0).all()


def test_system_call_plays_and_pauses():
    class Frame:
        dt = 0.5
        batches = []
    s, _ = _system()
    frame = Frame()
    s(frame)
    assert s.time == 0.0
    s.playing = True
    s(frame)
    s(frame)
    assert s.time == 1.0 and len(frame.batches) >= 1


def test_bad_waypoints_rejected():
    with pytest.raises(ValueError):
        PacketSystem().set_packets(np.zeros((3, 1, 3)))


def _python_calls(fn) -> int:
    """How many Python-level function calls `fn()` makes (C calls, numpy's kernels, not counted)."""
    calls = 0

    def profile(frame, event, arg):
        nonlocal calls
        calls += event == "call"

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


def test_update_is_one_numpy_pass_whatever_the_packet_count():
    # 10 tokens or 1000 tokens × top-8: the same Python calls, so no Python loop runs per packet
    small, _ = _system(n=80, w=4, seed=1)
    large, _ = _system(n=8000, w=4, seed=1)
    t = 1.5
    assert 0 < small.update(t).count < large.update(t).count
    assert _python_calls(lambda: small.update(t)) == _python_calls(lambda: large.update(t))
    # and the rows are written into the packets' own buffer, not a new array per frame
    batch = large.update(t)
    assert batch.instances.base is large._rows
    pos, flying = large.positions(t)
    assert np.allclose(batch.instances[:, INSTANCE_SLICES["center"]], pos[flying])
