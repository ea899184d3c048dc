"""The mixed corpus is seeded, tagged by domain, encodable, and its arithmetic is right."""
import random

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from llmviz.models.sim import moe_corpus  # noqa: E402


def test_same_seed_same_text_and_every_domain_present():
    a = moe_corpus.build_corpus(3, chars_per_domain=2000)
    assert a == moe_corpus.build_corpus(3, chars_per_domain=2000)
    assert a != moe_corpus.build_corpus(4, chars_per_domain=2000)
    assert tuple(a) == moe_corpus.DOMAINS
    assert all(len(text) >= 2000 for text in a.values())
    assert "def " in a["code"] and "User: " in a["chat"] and "The " in a["prose"]


def test_round_trip_through_the_alphabet():
    text = "".join(moe_corpus.build_corpus(0, 500).values())
    assert moe_corpus.decode(moe_corpus.encode(text)) == text
    assert len(moe_corpus.ALPHABET) == 96


def test_arithmetic_lines_are_correct():
    rng = random.Random(0)
    for _ in range(200):
        line = moe_corpus.sample("math", rng).strip()
        lhs, value = line.split("=")
        assert eval(lhs) == int(value)  # noqa: S307 (digits and + - * only)


def test_windows_are_shifted_pairs_tagged_by_domain():
    corpus = moe_corpus.build_corpus(1, 3000)
    sampler = moe_corpus.WindowSampler(corpus, 16, seed=5)
    x, y, domain = sampler.batch(8)
    assert x.shape == y.shape == (8, 16) and domain.shape == (8,)
    assert torch.equal(x[:, 1:], y[:, :-1])
    for row, d in zip(x, domain.tolist()):
        assert moe_corpus.decode(row) in corpus[moe_corpus.DOMAINS[d]]
    _, _, only_math = sampler.batch(4, "math")
    assert (only_math == moe_corpus.DOMAINS.index("math")).all()
