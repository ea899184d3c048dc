"""LiveMoE: the worker-thread session of moe-4 writes weights and traces to its blocks and keeps
routing stats that follow top-k / capacity changes without re-running the model."""
import numpy as np
import pytest

from llmviz.models.registry import load_registry
from llmviz.scenes.model_scene import build_model_scene
from llmviz.scenes.moe_live import LiveMoE


class AtlasRecorder:
    """Just enough renderer for data regions: hands out atlas rows and keeps what is written."""

    def __init__(self):
        self.next_y = 0
        self.written = {}

    def alloc_data(self, rows, cols):
        y, self.next_y = self.next_y, self.next_y + rows
        return 0, y

    def write_data(self, x, y, values):
        self.written[(x, y)] = np.array(values)


@pytest.fixture(scope="module")
def live():
    spec = load_registry(include_user=False).get("moe-4")
    renderer = AtlasRecorder()
    scene = build_model_scene(spec, renderer)
    session = LiveMoE(scene, renderer, text="def f(x): return x+1")
    assert session.wait(30.0), session.error
    yield session, scene, renderer
    session.close()


def test_weights_and_trace_reach_the_blocks(live):
    session, scene, renderer = live
    assert session.stats is not None and not session.stats.simulated
    assert session.stats.n_tokens == len("def f(x): return x+1")
    region = scene.regions[scene.layout.index("blocks.0.moe.expert.2")]
    shown = renderer.written[(int(region[0]), int(region[1]))]
    # the expert block keeps the expert's W_gate (d_ff, c), not a (t, c) contribution
    assert np.array_equal(shown, session.weights["blocks.0.moe.expert.2"])
    region = scene.regions[scene.layout.index("blocks.1.moe.router")]
    router = renderer.written[(int(region[0]), int(region[1]))]
    rows = min(router.shape[0], session.stats.n_tokens)
    assert np.allclose(router[:rows], session.stats.logits[1, :rows])


def test_routing_changes_do_not_rerun_the_model(live):
    session, _, _ = live
    ticks, version = len(session.tick_seconds), session.stats_version
    session.set_routing(3, 0.5)
    assert session.wait_routing()
    assert session.stats.top_k == 3 and session.stats.capacity_factor == 0.5
    assert session.stats.n_dropped.sum() > 0
    assert session.stats_version == version + 1 and len(session.tick_seconds) == ticks
    session.set_routing(None, None)
    assert session.wait_routing()
    assert session.stats.top_k == 2 and session.stats.n_dropped.sum() == 0


def test_bad_text_is_one_line_and_step_generates(live):
    session, _, _ = live
    problem = session.set_text("naïve")
    assert problem and "\n" not in problem and "alphabet" in problem
    assert session.set_text("x" * 65).startswith("the text has 65")
    before = len(session.tokens)
    assert session.step()
    assert session.wait(30.0)
    assert len(session.tokens) == before + 1 and session.stats.n_tokens == before + 1


def test_autoplay_keeps_generating_without_a_renderer():
    import time

    session = LiveMoE(None, None, variant="moe-4", text="x" * 60, autoplay=True, play_interval=0.0)
    try:
        assert session.session is session and session.playing
        deadline = time.monotonic() + 20
        while session.tokens_generated < 8 and time.monotonic() < deadline:
            session.update(0.01)
            time.sleep(0.005)
        assert session.tokens_generated >= 8 and session.error is None
        assert len(session.tokens) <= 64 and session.playing   # restarted on a new sample when full
    finally:
        session.close()
