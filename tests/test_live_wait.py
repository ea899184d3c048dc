"""The one headless wait for a live model's values: its limit, its progress lines and an error ending it early."""
import itertools

from llmviz.scenes import live_wait
from llmviz.scenes.live_wait import wait_with_progress


class FakeClock:
    """A monotonic clock that a fake wait advances, so the test takes no real time."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now


def test_values_that_arrive_late_are_waited_for_with_progress_lines(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(live_wait.time, "monotonic", clock.monotonic)
    arrive_at = 37.0

    def wait(slice_s):
        clock.now = min(clock.now + slice_s, arrive_at)
        return clock.now >= arrive_at

    lines = []
    assert wait_with_progress(wait, 300.0, what="vit-tiny", report=lines.append)
    assert clock.now == arrive_at
    # after 5 s, then every 10 s: at 5, 15, 25, 35 s
    assert [line.split("(")[1].split(" s")[0] for line in lines] == ["5", "15", "25", "35"]
    assert all(line.startswith("llmviz: waiting for vit-tiny's first values") for line in lines)


def test_the_limit_ends_the_wait_with_false(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(live_wait.time, "monotonic", clock.monotonic)

    def never(slice_s):
        clock.now += slice_s
        return False

    assert not wait_with_progress(never, 12.0, report=lambda line: None)
    assert 12.0 <= clock.now < 12.1


def test_an_error_ends_the_wait_at_once(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(live_wait.time, "monotonic", clock.monotonic)
    calls = itertools.count()

    def broken(slice_s):
        next(calls)
        clock.now += 0.01  # a failed live model returns from its wait at once
        return False

    assert not wait_with_progress(broken, None, failed=lambda: "weights: file is corrupt", report=lambda line: None)
    assert next(calls) == 1 and clock.now < 1.0


def test_the_default_limit_is_minutes_not_seconds():
    # loading torch, the weights and the first pass took over 60 s on a shared 2-core machine
    assert live_wait.VALUES_TIMEOUT_S >= 120
