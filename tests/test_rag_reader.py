"""rag-llama, the retrieval demo's reader (issue 20): the shipped weights are a transformers Llama whose greedy
answer is generate()'s, its attention shares cover the prompt, the held-out targets on the demo store (the
answer from the retrieved passages, "I don't know." with the answer's passage switched off), deterministic
training, and `llmviz rag ask` out of the box."""
from __future__ import annotations

import json
import random

import pytest

from llmviz.common.atomic import write_atomic
from llmviz.models.rag import demo, facts, reader, reader_eval, reader_model, reader_vocab, store, train_reader
from llmviz.scenes.cli.main import main


@pytest.fixture(scope="module")
def model():
    return reader_model.load_reader()


@pytest.fixture(scope="module")
def demo_store():
    return store.load(demo.demo_path())


def test_shipped_reader_is_a_transformers_llama_whose_greedy_answer_is_generate(model):
    import torch
    from transformers import LlamaForCausalLM

    assert isinstance(model, LlamaForCausalLM)
    assert sum(p.numel() for p in model.parameters()) == 170_240
    people = facts.store_people()
    q = facts.store_questions(people)[5]
    passages = [people[3].card(), q.person.card()]
    ours = reader.answer(model, passages, q.text)
    prompt = reader_vocab.prompt(passages, q.text).ids
    out = model.generate(torch.tensor([prompt]), max_new_tokens=reader_vocab.ANSWER_TOKENS, do_sample=False,
                         eos_token_id=reader_vocab.EOS_ID, pad_token_id=reader_vocab.PAD_ID)
    assert [t.id for t in ours.tokens] == out[0, len(prompt):].tolist()
    for t in ours.tokens:       # every share of the prompt and the answer so far: the row sums to 1
        assert sum(t.passage_shares) + t.question_share + t.answer_share == pytest.approx(1.0, abs=1e-6)   # float32 attention weights
        assert 0 < t.probability <= 1


# the shipped weights reach 93/96 exact and 94/96 "I don't know." on these 96 questions (llmviz rag eval
# --questions 96); the thresholds are those less three questions each, above issue 20's 90%
EXACT_AT_LEAST, UNKNOWN_AT_LEAST = 90 / 96, 91 / 96


@pytest.fixture(scope="module")
def held_out(model, demo_store):
    questions = reader_eval.held_out_questions(96)
    assert not {(q.person.name, facts.RELATIONS[q.relation].key, q.person.values[q.relation]) for q in questions} \
        - facts.store_facts()       # they are the store's facts, which training never showed
    assert {q.relation for q in questions} == set(range(len(facts.RELATIONS)))
    return reader_eval.score(model, demo_store, questions)


def test_held_out_questions_find_their_passage_and_say_i_dont_know_without_it(held_out):
    rates = held_out.rates()
    assert rates["retrieved"] >= 0.95
    assert rates["unknown_when_off"] >= UNKNOWN_AT_LEAST, held_out.misses


def test_held_out_answers_are_exact_when_the_passage_is_retrieved(held_out):
    assert held_out.rates()["exact"] >= EXACT_AT_LEAST, held_out.misses


def test_training_targets_point_at_the_value_and_the_latest_name():
    b = train_reader.batch(random.Random(3), 16, facts.store_facts())
    assert len(b.copy_rows) > 0
    names = {reader_vocab.IDS[n.lower()] for n in facts.NAMES}
    for row, query, key in zip(b.copy_rows.tolist(), b.copy_query.tolist(), b.copy_key.tolist()):
        ids = b.ids[row].tolist()
        assert ids[key] == ids[query + 1]           # the card's word is the one the answer writes next
        assert key < b.labels[row].ne(train_reader.IGNORE).nonzero()[0].item() <= query + 1
        card_name = max(i for i in range(key) if ids[i] in names)
        assert ids[card_name] == ids[b.labels[row].ne(train_reader.IGNORE).nonzero()[0].item()]   # whose card
    for row, ids in enumerate(b.ids.tolist()):      # brute force: the last name at or before each position
        for t, word in enumerate(ids):
            expected = -1 if word == reader_vocab.PAD_ID else max([i for i in range(t + 1) if ids[i] in names],
                                                                   default=-1)
            assert b.latest_name[row, t].item() == expected


def test_training_is_deterministic():
    a = train_reader.train(steps=2, log=lambda line: None)
    b = train_reader.train(steps=2, log=lambda line: None)
    assert reader_model.safetensors_bytes(a.model, {}) == reader_model.safetensors_bytes(b.model, {})


def test_rag_ask_answers_from_the_demo_store_out_of_the_box(capsys):
    q = facts.store_questions()[0]
    assert main(["rag", "ask", "--question", q.text, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["knows"] and result["answer"].startswith(f"{q.person.name} lives in ")
    assert result["retrieved"][0]["text"] == q.person.card()
    assert all(0 <= r["attention_share"] <= 1 for r in result["retrieved"])
    assert main(["rag", "ask", "--question", q.text, "--off", "1"]) == 0
    out = capsys.readouterr().out
    assert "switched off" in out and "I don't know." in out


def test_rag_eval_prints_the_rates_and_refuses_a_bad_weights_file(capsys, tmp_path):
    assert main(["rag", "eval", "--questions", "8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["questions"] == 8 and result["retrieved"] == 8
    assert set(result["per_relation"]) == {r.key for r in facts.RELATIONS}
    assert result["rates"]["exact"] == result["exact"] / result["retrieved"]
    bad = tmp_path / "reader.safetensors"
    write_atomic(bad, b"not a weights file")
    assert main(["rag", "eval", "--questions", "8", "--weights", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0]
