"""The simulation tick: torch on a worker thread, results polled without blocking.

How long a traced forward takes is a benchmark (`llmviz bench --scene nano-gpt --json`: tick_ms_median;
benchmarks/timings.py: nanogpt_trace_ms), not an assertion here."""
import threading

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
torch.set_num_threads(1)

from llmviz.models.sim import sort_task  # noqa: E402
from llmviz.models.sim.nanogpt import load_nanogpt  # noqa: E402
from llmviz.models.sim.tick import SimulationRunner, nanogpt_runner  # noqa: E402
from llmviz.models.sim.trace import ActivationTrace  # noqa: E402

FULL_CONTEXT = sort_task.encode("CBABBCABBBC")


def _wait_for(runner, timeout=20.0):
    result = runner.wait(timeout)
    assert result is not None, "worker produced nothing"
    return result


def test_nanogpt_runner_posts_traces_and_poll_never_blocks():
    with nanogpt_runner() as runner:
        ticket = runner.submit(FULL_CONTEXT)
        runner.poll()  # typically empty: the worker is still loading torch and the weights
        result = _wait_for(runner)
        assert result.ticket == ticket and result.error is None
        assert isinstance(result.value, ActivationTrace)
        assert result.value["probs"][-1].argmax() == sort_task.ALPHABET.index("C")
        expected = load_nanogpt().trace(FULL_CONTEXT)["logits"]
        assert (result.value["logits"] == expected).all()


def test_worker_uses_one_torch_thread_and_reports_errors():
    def make_compute():
        def compute(request):
            if request == "boom":
                raise ValueError("bad request\nsecond line")
            return threading.current_thread().name, torch.get_num_threads()
        return compute

    with SimulationRunner(make_compute, coalesce=False) as runner:
        runner.submit("ok")
        runner.submit("boom")
        ok, boom = _wait_for(runner), _wait_for(runner)
    assert ok.value == ("llmviz-simulation", 1)
    assert boom.value is None and boom.error == "ValueError: bad request"


def test_coalescing_keeps_only_the_latest_waiting_request():
    gate, busy = threading.Event(), threading.Event()

    def make_compute():
        def compute(request):
            busy.set()
            gate.wait(5)
            return request
        return compute

    with SimulationRunner(make_compute) as runner:
        runner.submit("first")
        assert busy.wait(10)  # the worker holds "first"; later requests must wait
        runner.submit("stale")
        last = runner.submit("latest")
        gate.set()
        done = [_wait_for(runner), _wait_for(runner)]
        assert runner.wait(0.2) is None
    assert [r.value for r in done] == ["first", "latest"] and done[1].ticket == last


def test_startup_failure_is_reported_not_raised():
    def make_compute():
        raise FileNotFoundError("no weights")

    with SimulationRunner(make_compute) as runner:
        assert _wait_for(runner).error == "FileNotFoundError: no weights"
        runner.submit([0])
        assert _wait_for(runner).error == "simulation failed to start: FileNotFoundError: no weights"


def test_poll_returns_while_the_worker_computes():
    gate, busy = threading.Event(), threading.Event()

    def make_compute():
        def compute(request):
            busy.set()
            assert gate.wait(30), "the test never released the worker"
            return request * 2
        return compute

    with SimulationRunner(make_compute) as runner:
        ticket = runner.submit(21)
        assert busy.wait(10)
        # the worker is held mid-computation: a poll that waited for it would never return
        assert runner.poll() == [] and runner.poll() == []
        gate.set()
        result = _wait_for(runner)
    assert (result.ticket, result.value, result.error) == (ticket, 42, None)
