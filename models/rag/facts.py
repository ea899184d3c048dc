"""Generated facts about invented people, for the retrieval demo and the reader's training: each person
has a card (a Markdown section) with four facts, each fact has questions, each question one answer word.

The names and towns are invented so that no model can know them: the reader can only answer by reading
the card it is given. The demo store's people are drawn with STORE_SEED; the reader's training draws its
cards from its own generator and never uses a fact of the store (`store_facts`), so the store's questions
are held out. Everything here is plain Python (random.Random with an integer seed is the same stream on
every platform), so a card, its questions and the vocabulary are the same on every machine.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

# invented names, no two sharing a first syllable, so that one name's word pieces do not point at another
NAMES = (
    "Borvik", "Talessa", "Quenmar", "Ildrath", "Umbrisse", "Yorrel", "Xantho", "Pellivar", "Gwendrel", "Osmerak",
    "Feyla", "Druskin", "Marlowen", "Ketrisse", "Zabulon", "Hespera", "Corvanth", "Nimrael", "Astrid", "Lukrano",
    "Wendolyx", "Saphrine", "Jorvald", "Emberlyn", "Vashtor", "Rhodwin", "Ophelian", "Brannock", "Tilmara", "Quillon",
    "Idrissa", "Ulfgard", "Yselde", "Garrowin", "Fennimore", "Darvesh", "Mirabeth", "Kolwen", "Zephyrine", "Hadrael",
    "Cassivel", "Nordrake", "Elspire", "Lorimund", "Wystan", "Solvenna", "Jessamond", "Voltaire", "Rennick", "Orsolya",
    "Pembrace", "Gideric", "Thessaly", "Ambrosine", "Kaspian", "Mordecan", "Ysolde", "Falkor", "Benedix", "Ulrika",
)
TOWNS = (
    "Kelmira", "Dunmarrow", "Veskhold", "Pirnwick", "Alcabra", "Torvelle", "Quessen", "Mirrowdale", "Ostrevan",
    "Glimmerby", "Haskany", "Zundria", "Breckmoor", "Lyssandor", "Farrowgate", "Nevrakos", "Skellmoor", "Iriscombe",
    "Wolvenby", "Caddrith",
)
JOBS = ("potter", "baker", "sailor", "weaver", "miner", "tailor", "farmer", "painter", "cooper", "glazier",
        "drummer", "fletcher", "miller", "scribe", "smith", "cartographer")
ANIMALS = ("heron", "goat", "ferret", "tortoise", "parrot", "beetle", "badger", "lizard", "peacock", "hedgehog",
           "moth", "salamander", "crow", "donkey", "otter", "llama")
COLOURS = ("amber", "crimson", "teal", "violet", "ochre", "indigo", "scarlet", "silver", "olive", "turquoise",
           "maroon", "lilac")


@dataclass(frozen=True)
class Relation:
    key: str
    values: tuple[str, ...]
    sentence: str                   # "{name} ... {value}."
    questions: tuple[str, ...]      # templates of questions whose answer is the value


RELATIONS = (
    Relation("town", TOWNS, "{name} lives in {value}.", ("Where does {name} live?", "In which town does {name} live?")),
    Relation("job", JOBS, "{name} works as a {value}.", ("What does {name} work as?", "What is the job of {name}?")),
    Relation("animal", ANIMALS, "{name} keeps a {value}.",
             ("What animal does {name} keep?", "Which animal does {name} keep?")),
    Relation("colour", COLOURS, "{name} likes the colour {value}.",
             ("What colour does {name} like?", "Which colour does {name} like?")),
)
UNKNOWN_ANSWER = "I don't know."
STORE_SEED = 2024
STORE_PEOPLE = 48


@dataclass(frozen=True)
class Person:
    name: str
    values: tuple[str, ...]         # one per RELATIONS entry

    def card(self) -> str:
        """The person's Markdown section: a heading, then the four facts on one line."""
        facts = " ".join(r.sentence.format(name=self.name, value=v) for r, v in zip(RELATIONS, self.values))
        return f"## {self.name}\n{facts}"

    def fact(self, relation: int) -> str:
        """The sentence of one fact: the answer to a question about it."""
        return RELATIONS[relation].sentence.format(name=self.name, value=self.values[relation])

    def facts(self) -> set[tuple[str, str, str]]:
        return {(self.name, r.key, v) for r, v in zip(RELATIONS, self.values)}


@dataclass(frozen=True)
class Question:
    person: Person
    relation: int
    text: str

    @property
    def answer(self) -> str:
        return self.person.fact(self.relation)


def random_person(rng: random.Random, name: str | None = None) -> Person:
    return Person(name or rng.choice(NAMES), tuple(rng.choice(r.values) for r in RELATIONS))


def store_people(seed: int = STORE_SEED, count: int = STORE_PEOPLE) -> list[Person]:
    """The demo store's people: `count` distinct names, each with values drawn from `seed`."""
    rng = random.Random(seed)
    return [random_person(rng, name) for name in rng.sample(NAMES, count)]


def store_facts(people: list[Person] | None = None) -> set[tuple[str, str, str]]:
    """Every (name, relation, value) of the store: the facts the reader's training never shows."""
    return set().union(*(p.facts() for p in (people if people is not None else store_people())))


def store_questions(people: list[Person] | None = None) -> list[Question]:
    """Every question about the store: each person, each relation, each template."""
    return [Question(p, i, q.format(name=p.name)) for p in (people if people is not None else store_people())
            for i, r in enumerate(RELATIONS) for q in r.questions]


def facts_markdown(people: list[Person] | None = None) -> str:
    """The store's facts file: a title, what it is, then one section per person."""
    people = people if people is not None else store_people()
    head = ("# Invented people\n\nGenerated facts about invented people (llmviz's retrieval demo): "
            "every name and town here is made up, so a model can only answer from what it reads.")
    return head + "\n\n" + "\n\n".join(p.card() for p in people) + "\n"
