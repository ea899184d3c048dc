"""The live nano-GPT session: traces arrive off the main thread, generation appends tokens, input is validated."""
import numpy as np
import pytest

from llmviz.scenes.nanogpt_session import NanoGptSession


@pytest.fixture()
def session():
    s = NanoGptSession()
    assert s.wait(30.0), s.error
    yield s
    s.close()


def test_greedy_generation_sorts_the_input(session):
    assert session.text == "CBABBC" and session.trace is not None and session.weights is not None
    while session.can_generate:
        assert session.step()
        assert session.wait(10.0)
        assert list(session.trace["tokens"]) == session.tokens[:11]
    assert session.text == "CBABBC" + "ABBBCC"
    assert not session.step()  # context full: nothing more to generate
    for step in session.steps:
        assert step.token == int(np.argmax(step.probs)) and abs(step.probs.sum() - 1) < 1e-9


def test_bad_input_is_refused_with_one_line_and_good_input_restarts(session):
    problem = session.set_input("ABCA")
    assert problem and "exactly 6" in problem and "\n" not in problem
    assert "other than" in session.set_input("ABCXYZ")
    assert session.text == "CBABBC"
    assert session.set_input("ccbbaa") is None and session.wait(10.0)
    assert session.text == "CCBBAA" and list(session.trace["tokens"]) == [2, 2, 1, 1, 0, 0]


def test_temperature_samples_from_the_tempered_distribution(session):
    session.set_temperature(2.0)
    probs = session.next_distribution()
    logits = np.asarray(session.trace["logits"][-1], np.float64) / 2.0
    expected = np.exp(logits - logits.max())
    np.testing.assert_allclose(probs, expected / expected.sum())
    assert session.step() and session.steps[-1].token in (0, 1, 2)


def test_edits_while_busy_end_on_the_latest_tokens(session):
    for text in ("AAAAAA", "BBBBBB", "CCCCCC", "ABCABC"):
        session.set_input(text)
    assert session.wait(10.0)
    assert list(session.trace["tokens"]) == [0, 1, 2, 0, 1, 2]
