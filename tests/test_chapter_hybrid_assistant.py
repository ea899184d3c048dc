"""Chapter 19 (the hybrid assistant, issue 20's tour) on the live jamba-tiny reading the tour's question: it plays
headless to the end, its retrieval step runs on the retrieval scene itself (tests/test_chapter_rag_step.py checks
its numbers), and every number the other steps print (the Mamba state, the attention's look back, the experts,
the cache, the guess) is the model's, checked against test_chapter_hybrid's numpy recomputation from the tokens
and the weights alone."""
import re

import numpy as np
import pytest

pytest.importorskip("torch")

from scene_support import assert_chapter_is, live_scene, play_live_chapter, with_text  # noqa: E402
from test_chapter_hybrid import N, V, close, number, reference, routing_stats, vector  # noqa: E402

SIZE = (320, 180)
QUESTION = "Where does Idrissa live?"
# a template that reads the trace (the spec's {layers}, {experts}, ... do not)
TRACE_TEMPLATE = re.compile(r"\{(?:value|term|mean|std|min|max|sum|argmax|letter|letters|vector|shape)\s|\{input\}")
RAG_TEMPLATE = re.compile(r"\{(?:value|vector|shape|text) rag\.")


@pytest.fixture(scope="module")
def asked():
    with live_scene("jamba-tiny", SIZE) as (scene, renderer):
        with with_text(scene, QUESTION):
            yield scene


def test_the_tour_is_chapter_19_on_jamba_tiny_and_every_step_computes_its_numbers():
    chapter = assert_chapter_is(19, "jamba-tiny", {"0", "1", "2", "3"},
                                names_pattern=r"all-MiniLM-L6-v2|3D")
    for k, step in enumerate(chapter.steps):
        # every step reads live values: jamba-tiny's trace, or on the retrieval scene its last result
        reads = RAG_TEMPLATE if chapter.scene_of(k) == "rag" else TRACE_TEMPLATE
        assert reads.search(step.text) and "explanation" not in step.title.lower(), step.title
    assert [chapter.scene_of(k) for k in range(len(chapter.steps))].count("rag") == 1


def test_the_tour_plays_headless_on_the_question(asked):
    runner, chapter = play_live_chapter(asked, SIZE, 19)
    for k in range(len(chapter.steps)):
        runner.go_to_step_end(k)
        text = runner.moment().text
        if chapter.scene_of(k) == "rag":   # its values are the retrieval scene's, which this runner has not opened
            assert text is None and runner.moment().waits_for == "chapter_ui.waiting_rag"
            continue
        assert "{" not in text.text and text.references
    runner.go_to_step_end(0)
    assert f'reading "{QUESTION}" right now' in runner.moment().text.text


def _texts(scene) -> dict[str, str]:
    from llmviz.scenes.chapters.apply import chapter_runner

    runner = chapter_runner(scene, SIZE)
    runner.go_to(runner.chapter_index(19))
    out = {}
    for k, step in enumerate(runner.current.steps):
        runner.go_to_step_end(k)
        if runner.scene_of(k) == "jamba-tiny":
            out[step.title] = runner.moment().text.text
    return out


def test_the_numbers_are_the_models_on_the_question(asked):
    from llmviz.models.sim import moe_corpus

    live = asked.live
    assert live.text == QUESTION
    T = len(live.tokens)
    ref = reference(live.tokens, dict(live.weights))
    texts = _texts(asked)

    # Mamba: the state after character 3, its decay and what the character adds
    m = re.search(rf'After character 3 of "{re.escape(QUESTION)}", layer 0\'s channel 0, state 0 is {N}: {N} of the '
                  rf"state before it plus {N}\.", texts["Mamba memory: the question folded into a state"])
    assert m
    h3, dA, dBx = (number(g) for g in m.groups())
    p = "blocks.0.mamba"
    for shown, exact in ((h3, ref[f"{p}.h.3"][0, 0]), (dA, ref[f"{p}.dA.3"][0, 0]), (dBx, ref[f"{p}.dBx.3"][0, 0])):
        assert close(shown, exact), (shown, exact)
    inner, d_state = ref[f"{p}.h.0"].shape
    assert f"the state stays {inner}×{d_state}." in texts["Mamba memory: the question folded into a state"]

    # attention: the last character's strongest weight and where, per head; the row sums to 1
    att = texts["Attention: an exact look back"]
    m = re.search(rf'the "(.)", weighs every character before it: head 0 puts {N} of its weight on character (\d+), '
                  rf"and the weights over all (\d+) characters add up to {N}\. Head 1 reads the same keys with its own "
                  rf"query: {N} at character (\d+)\.", att)
    assert m, att
    letter, top0, at0, n, total, top1, at1 = m.groups()
    assert letter == QUESTION[-1] and int(n) == T and number(total) == 1
    for head, top, at in ((0, top0, at0), (1, top1, at1)):
        row = ref[f"blocks.2.attn.head.{head}.softmax"][-1]
        assert int(at) == int(np.argmax(row)) and close(number(top), row.max())

    # experts: the last character's choices and probabilities in layer 1, its choice in layer 3, the load
    ex = texts["Experts: a router picks for each character"]
    m = re.search(rf"goes to experts {V} in layer 1, with probabilities {V}, and to experts {V} in layer 3\..*"
                  rf"layer 1 hands its experts {V} characters", ex, re.S)
    assert m, ex
    top1, probs1, top3, load1 = (vector(g) for g in m.groups())
    assert top1 == list(ref["blocks.1.moe.topk"][-1]) and top3 == list(ref["blocks.3.moe.topk"][-1])
    assert all(close(s, e) for s, e in zip(probs1, ref["blocks.1.moe.probs"][-1]))
    assert np.array_equal(load1, routing_stats(ref, 1)["load"]) and sum(load1) == 2 * T

    # the cache: one row per character of the question, each KV head; the state does not grow
    cache = texts["A long prompt: the cache grows, the state does not"]
    rows, width = ref["blocks.2.attn.kv_head.0.k"].shape
    assert f"V of {rows}×{width}, one row per character" in cache and rows == T
    assert f"state stays {inner}×{d_state} whatever the length" in cache

    # the guess after the question: the most probable next character and its probability
    m = re.search(rf'guesses "(.)" with probability {N}', texts["The answer, and where it came from"], re.S)
    assert m
    guess = moe_corpus.ALPHABET[int(np.argmax(ref["probs"][-1]))]
    assert m.group(1) == ("↵" if guess == "\n" else guess)          # a newline is shown as on the blocks
    assert close(number(m.group(2)), ref["probs"][-1].max())


def test_the_tour_gives_jamba_tiny_the_retrieval_scenes_question_and_a_text_given_wins():
    """The chapter's own input is the question the retrieval scene answers (one question across the tour); opened
    in the explorer its model reads it, and a text given first (`render --text`) stays."""
    from gl_support import headless_or_skip
    from llmviz.engine.input import load_bindings
    from llmviz.scenes.chapters.format import load_chapters
    from llmviz.scenes.cli.render_cmd import _open_chapter, apply_text
    from llmviz.scenes.explorer import Explorer
    from llmviz.scenes.rag_live import DEFAULT_QUESTION

    tour = next(c for c in load_chapters() if c.number == 19)
    assert tour.input == DEFAULT_QUESTION == QUESTION
    for renderer in headless_or_skip((480, 270)):
        for given in (None, "the old river runs"):
            ex = Explorer(renderer, "jamba-tiny", bindings=load_bindings(), adaptive_quality=False,
                          background_imports=False)
            try:
                assert ex.wait_for_values()
                assert ex.session.scene.live.text != QUESTION   # the scene opens on its own text
                if given is not None:
                    apply_text(ex.session.scene, given)
                _open_chapter(ex, 19, 1, keep_input=given is not None)
                for _ in range(4):
                    ex.frame(1 / 15)
                shown = given or QUESTION
                assert ex.session.scene.live.text == shown
                assert f'reading "{shown}" right now' in ex.session.chapters.moment.text.text
            finally:
                ex.close()
