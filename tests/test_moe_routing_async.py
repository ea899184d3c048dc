"""MoE routing changes never wait for torch: top-k, capacity and text requests return before their
statistics exist, are computed on a worker thread, and the newest request wins."""
import threading

import numpy as np
import pytest

from llmviz.models.registry import load_registry
from llmviz.models.sim import moe_corpus
from llmviz.scenes import moe_live, moe_panels
from llmviz.scenes.moe_live import LiveMoE, SimulatedRouting

TEXT = "def f(x): return x+1"


class Gate:
    """Wraps compute_stats so each computation waits until the test opens the gate, and records the
    top-k it computed for and the thread it ran on."""

    def __init__(self, monkeypatch):
        self.open = threading.Event()
        self.started = threading.Event()
        self.calls: list[tuple[int | None, str]] = []
        real = moe_live.compute_stats

        def gated(*args, **kwargs):
            self.calls.append((args[6] if len(args) > 6 else kwargs.get("top_k"), threading.current_thread().name))
            self.started.set()
            assert self.open.wait(30), "the test never opened the gate"
            return real(*args, **kwargs)

        monkeypatch.setattr(moe_live, "compute_stats", gated)


@pytest.fixture(scope="module")
def registry():
    return load_registry(include_user=False)


@pytest.fixture
def deepseek(registry):
    routing = SimulatedRouting(registry.get("deepseek-v3"), TEXT)   # first stats: computed here, at once
    yield routing
    routing.close()


def test_set_routing_returns_before_the_statistics_exist(deepseek, monkeypatch):
    before, version = deepseek.stats, deepseek.stats_version
    gate = Gate(monkeypatch)
    deepseek.set_routing(3, 1.0)           # would block until the gate opens if it ran torch itself
    assert gate.started.wait(30)           # the computation has begun, elsewhere, and is held there
    assert deepseek.pending and deepseek.busy
    assert deepseek.stats is before and deepseek.stats_version == version
    gate.open.set()
    assert deepseek.wait_routing()
    assert not deepseek.pending and deepseek.stats_version == version + 1
    assert deepseek.stats.top_k == 3 and deepseek.stats.capacity_factor == 1.0
    assert [name for _, name in gate.calls] and all(name != threading.main_thread().name for _, name in gate.calls)
    # the result is what a direct computation gives
    assert np.array_equal(deepseek.stats.topk, moe_live.restat(before, 3, 1.0).topk)


def test_many_requests_while_one_computes_last_one_wins(deepseek, monkeypatch):
    version = deepseek.stats_version
    gate = Gate(monkeypatch)
    deepseek.set_routing(1, None)
    assert gate.started.wait(30)
    for k in range(2, 8):                  # a slider dragged while the first computes
        deepseek.set_routing(k, None)
    gate.open.set()
    assert deepseek.wait_routing()
    assert deepseek.stats.top_k == 7
    # the one in flight finished (and was dropped), the waiting ones were replaced by the newest
    assert [k for k, _ in gate.calls] == [1, 7]
    assert deepseek.stats_version == version + 1


def test_text_edits_route_off_the_frame_thread(deepseek, monkeypatch):
    before, version = deepseek.stats, deepseek.stats_version
    gate = Gate(monkeypatch)
    assert deepseek.set_text("print(42)") is None
    assert gate.started.wait(30)
    assert deepseek.stats is before and deepseek.stats_version == version
    assert deepseek.set_text("naïve").startswith("characters outside")   # checked at once, nothing posted
    assert deepseek.set_text("x = [1, 2]") is None                    # replaces "print(42)"'s result
    gate.open.set()
    assert deepseek.wait_routing()
    assert deepseek.stats.text == "x = [1, 2]" and deepseek.stats.n_tokens == len("x = [1, 2]")
    assert deepseek.stats_version == version + 1
    # the same text routes as a fresh routing source would route it
    fresh = SimulatedRouting(deepseek.spec, "x = [1, 2]")
    assert np.array_equal(deepseek.stats.topk, fresh.stats.topk)


def test_repeating_the_current_request_posts_nothing(deepseek, monkeypatch):
    gate = Gate(monkeypatch)
    gate.open.set()
    deepseek.set_routing(4, None)
    deepseek.set_routing(4, None)          # the panel repeats a request until its result lands
    assert deepseek.wait_routing()
    deepseek.set_routing(4, None)
    assert not deepseek.pending and [k for k, _ in gate.calls] == [4]


def test_live_moe_routing_and_text_do_not_wait(monkeypatch):
    spec = load_registry(include_user=False).get("moe-4")
    session = LiveMoE(None, None, variant=spec.id, text=TEXT)
    try:
        assert session.wait(30.0), session.error
        before, version, ticks = session.stats, session.stats_version, len(session.tick_seconds)
        gate = Gate(monkeypatch)
        session.set_routing(1, 0.5)
        assert gate.started.wait(30)
        session.update(0.0)                # a frame meanwhile: nothing landed, nothing changes
        assert session.pending and session.stats is before and session.stats_version == version
        gate.open.set()
        assert session.wait(30.0)
        assert session.stats.top_k == 1 and session.stats.capacity_factor == 0.5
        assert len(session.tick_seconds) == ticks      # re-routing does not re-run the model

        gate.open.clear()
        gate.started.clear()
        version = session.stats_version
        assert session.set_text("abc") is None         # the trace runs on the model's worker
        for _ in range(3000):                          # frames: one collects the trace and posts its routing
            session.update(0.0)
            if gate.started.wait(0.01):
                break
        assert gate.started.is_set()                   # the routing computes on the routing worker, held
        assert session.pending and session.trace_version > 0
        assert session.stats_version == version and session.stats.n_tokens == len(TEXT)
        gate.open.set()
        assert session.wait(30.0)
        assert session.stats.n_tokens == 3 and session.stats.top_k == 1
        assert session.stats.tokens.tolist() == moe_corpus.encode("abc")
    finally:
        session.close()


class FakeRouting:
    def __init__(self, pending, top_k, capacity_factor):
        self.pending, self.top_k, self.capacity_factor = pending, top_k, capacity_factor


def test_controls_show_the_request_while_it_computes(deepseek):
    stats = deepseek.stats
    assert moe_panels.requested_routing(FakeRouting(True, 5, 0.75), stats) == (5, 0.75)
    assert moe_panels.requested_routing(FakeRouting(False, 5, 0.75), stats) == (stats.top_k, stats.capacity_factor)
    # a live model that was never re-routed has top_k None: its statistics say which k is in use
    assert moe_panels.requested_routing(FakeRouting(True, None, None), stats) == (stats.top_k, None)
