"""training.Prefetch: batches made on a second thread come out in order, with the draws a plain loop makes;
an error in the producer reaches the consumer; leaving early stops the producer."""
import threading
import time

import numpy as np
import pytest

from llmviz.models.sim import training


def test_results_in_order_with_the_loops_draws():
    rng_loop, rng_thread = np.random.default_rng(5), np.random.default_rng(5)
    expected = [rng_loop.standard_normal(3) for _ in range(40)]
    with training.Prefetch(lambda: rng_thread.standard_normal(3), 40, depth=3) as batches:
        got = [batches.next() for _ in range(40)]
    assert all(np.array_equal(a, b) for a, b in zip(expected, got))


def test_runs_ahead_on_another_thread_but_no_further_than_depth():
    calls, threads = [], set()

    def produce():
        threads.add(threading.get_ident())
        calls.append(len(calls))
        return calls[-1]

    with training.Prefetch(produce, 100, depth=2) as batches:
        deadline = time.monotonic() + 5
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        # two waiting in the queue and a third made, waiting for room: never more
        assert len(calls) == 3
        assert batches.next() == 0
    assert threading.get_ident() not in threads


def test_an_error_in_the_producer_is_raised_where_the_consumer_waits():
    made = iter(range(2))

    def produce():
        value = next(made, None)
        if value is None:
            raise ValueError("the pool ran dry")
        return value

    with training.Prefetch(produce, 5) as batches:
        assert [batches.next(), batches.next()] == [0, 1]
        with pytest.raises(ValueError, match="ran dry"):
            batches.next()


def test_leaving_early_stops_the_producer():
    calls = []
    batches = training.Prefetch(lambda: calls.append(1), 10_000, depth=1)
    batches.next()
    batches.close()
    assert not batches._thread.is_alive()
    assert len(calls) < 10


def test_whisper_batches_prefetched_equal_the_plain_loops():
    """The whisper recipe's batches (clips, features, SpecAugment, the guide) are the same made ahead on the
    thread as made one by one, so the trained bytes do not depend on the prefetch."""
    from llmviz.models.sim import speech_digits, train_whisper

    rng = np.random.default_rng(3)
    speech = [rng.standard_normal(int(n)).astype(np.float32) * 0.1 for n in rng.integers(8000, 30000, 12)]
    digits = ["".join(str(d) for d in rng.integers(0, 10, int(k))) for k in rng.integers(1, 7, 12)]

    def maker():
        stream = speech_digits.ClipStream(digits, speech, 11)
        return train_whisper.batch_maker(stream, train_whisper.FINE_TUNE, np.random.default_rng(12), 200)

    plain = maker()
    expected = [plain() for _ in range(4)]
    with training.Prefetch(maker(), 4) as batches:
        got = [batches.next() for _ in range(4)]
    for a, b in zip(expected, got):
        assert a.said == b.said
        for name in ("feats", "inputs", "targets", "penalty"):
            assert np.array_equal(getattr(a, name).numpy(), getattr(b, name).numpy()), name
