"""How well the reader answers held-out questions over a store: for each question about the demo store's
invented people (facts the reader's training never shows, facts.store_facts), the top-k chunks are
retrieved, the answer is exact when it is the fact's sentence word for word, and with the answer's card
switched off (the other retrieved chunks kept) it should be "I don't know.".

`llmviz rag eval` prints these rates and tests/test_rag_reader.py holds the shipped weights to them. The
questions are the store's own (every person, relation and question template: 384 for the shipped store),
or `limit` of them spread over the people, relations and templates.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from llmviz.models.rag import embedding, facts, reader


@dataclass
class Miss:
    question: str
    expected: str
    got: str
    card_off: bool                  # True: the miss is an answer given with the card switched off


@dataclass
class ReaderScore:
    questions: int
    retrieved: int                  # the answer's card among the top k
    exact: int                      # of the retrieved: the answer word for word
    unknown: int                    # of the retrieved: "I don't know." once the card is switched off
    per_relation: dict[str, list[int]] = field(default_factory=dict)    # key -> [exact, retrieved]
    misses: list[Miss] = field(default_factory=list)

    def rates(self) -> dict[str, float]:
        seen = max(1, self.retrieved)
        return {"retrieved": self.retrieved / max(1, self.questions), "exact": self.exact / seen,
                "unknown_when_off": self.unknown / seen}

    def as_dict(self) -> dict:
        return {"questions": self.questions, "retrieved": self.retrieved, "exact": self.exact,
                "unknown_when_off": self.unknown, "rates": self.rates(),
                "per_relation": {k: {"exact": e, "retrieved": n} for k, (e, n) in self.per_relation.items()},
                "misses": [vars(m) for m in self.misses]}


def held_out_questions(limit: int | None = None, people: list[facts.Person] | None = None) -> list[facts.Question]:
    """The store's questions, or `limit` of them: people spread evenly, and the i-th pick takes question
    i mod 8 of its person (relation and template), so even 48 picks cover every relation and template."""
    people = people if people is not None else facts.store_people()
    questions = facts.store_questions(people)
    if limit is None or limit >= len(questions):
        return questions
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    each = len(questions) // len(people)            # a person's questions, consecutive in store_questions
    return [questions[(i * len(people) // limit) * each + i % each] for i in range(limit)]


def score(model, store, questions: list[facts.Question], top_k: int = 3, keep_misses: int = 20) -> ReaderScore:
    """Retrieves each question's top_k chunks from `store` and lets `model` answer with and without the card."""
    _, rows = store.search_vectors(embedding.encode([q.text for q in questions]), top_k)
    result = ReaderScore(len(questions), 0, 0, 0, {r.key: [0, 0] for r in facts.RELATIONS})
    for q, row in zip(questions, rows):
        texts = [store.chunks[i].text for i in row if i >= 0]
        card = q.person.card()
        if card not in texts:
            continue
        result.retrieved += 1
        tally = result.per_relation[facts.RELATIONS[q.relation].key]
        tally[1] += 1
        got = reader.answer(model, texts, q.text).text
        if got == q.answer:
            result.exact += 1
            tally[0] += 1
        elif len(result.misses) < keep_misses:
            result.misses.append(Miss(q.text, q.answer, got, False))
        off = reader.answer(model, [t for t in texts if t != card], q.text)
        if not off.knows:
            result.unknown += 1
        elif len(result.misses) < keep_misses:
            result.misses.append(Miss(q.text, facts.UNKNOWN_ANSWER, off.text, True))
    return result
