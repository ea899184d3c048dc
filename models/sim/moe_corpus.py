"""A seeded, character-level corpus of four domains (code, arithmetic, prose, chat) for the small
MoE models, so their routers have something to specialise on and the scene can show it.

Every sample is tagged with its domain; the same seed always gives the same text.
"""
from __future__ import annotations

import random

import torch

DOMAINS = ("code", "math", "prose", "chat")
ALPHABET = "\n" + "".join(chr(c) for c in range(32, 127))  # newline + printable ASCII: 96 symbols
_INDEX = {ch: i for i, ch in enumerate(ALPHABET)}

_NAMES = ("x", "y", "n", "total", "items", "count", "value", "result", "i", "j", "data", "acc")
_FUNCS = ("add", "scale", "mean", "load", "parse", "step", "clip", "merge")
_ADJ = ("quiet", "old", "bright", "small", "green", "cold", "tall", "slow", "warm", "dark")
_NOUN = ("river", "bridge", "garden", "city", "forest", "house", "road", "window", "hill", "boat")
_VERB = ("runs", "rests", "waits", "turns", "shines", "falls", "stands", "grows", "sleeps")
_PREP = ("under", "near", "beyond", "beside", "across", "behind", "above")
_ASK = (("how are you?", "I am fine, thank you."), ("what time is it?", "It is {h} o'clock."),
        ("can you help me?", "Of course, what do you need?"), ("tell me a joke.", "Why did the {n} cross the road?"),
        ("how many {n}s are there?", "There are {k} of them."), ("thanks!", "You are welcome."),
        ("where is the {n}?", "It is {p} the {m}."))


def encode(text: str) -> list[int]:
    return [_INDEX[ch] for ch in text]


def decode(ids) -> str:
    return "".join(ALPHABET[int(i)] for i in ids)


def _code(rng: random.Random) -> str:
    a, b = rng.sample(_NAMES, 2)
    kind = rng.randrange(5)
    if kind == 0:
        return f"def {rng.choice(_FUNCS)}({a}, {b}):\n    return {a} {rng.choice('+-*')} {b}\n"
    if kind == 1:
        return f"for {rng.choice('ijk')} in range({rng.randint(2, 20)}):\n    {a} += {b}[{rng.choice('ijk')}]\n"
    if kind == 2:
        return f"if {a} {rng.choice(['==', '<', '>', '!='])} {rng.randint(0, 99)}:\n    {b} = {a}\n"
    if kind == 3:
        return f"{a} = [{', '.join(str(rng.randint(0, 9)) for _ in range(rng.randint(2, 5)))}]\n"
    return f"print({rng.choice(_FUNCS)}({a}))\n"


def _math(rng: random.Random) -> str:
    # correct arithmetic, so the model can learn to predict the answer's digits
    a, b = rng.randint(0, 99), rng.randint(0, 99)
    op = rng.choice("+-*")
    value = a + b if op == "+" else a - b if op == "-" else a * b
    return f"{a}{op}{b}={value}\n"


def _prose(rng: random.Random) -> str:
    first = f"The {rng.choice(_ADJ)} {rng.choice(_NOUN)} {rng.choice(_VERB)}"
    return f"{first} {rng.choice(_PREP)} the {rng.choice(_ADJ)} {rng.choice(_NOUN)}.\n"


def _chat(rng: random.Random) -> str:
    ask, answer = rng.choice(_ASK)
    fill = {"n": rng.choice(_NOUN), "m": rng.choice(_NOUN), "p": rng.choice(_PREP),
            "h": rng.randint(1, 12), "k": rng.randint(2, 9)}
    return f"User: {ask.format(**fill)}\nBot: {answer.format(**fill)}\n"


_GENERATORS = {"code": _code, "math": _math, "prose": _prose, "chat": _chat}


def sample(domain: str, rng: random.Random) -> str:
    """One sample (a line or a few lines, ending in a newline) of the domain."""
    return _GENERATORS[domain](rng)


def build_corpus(seed: int, chars_per_domain: int = 100_000) -> dict[str, str]:
    """Each domain's text: samples concatenated until at least `chars_per_domain` characters."""
    corpus = {}
    for d, domain in enumerate(DOMAINS):
        # one generator per domain, so a domain's text does not depend on the others' lengths
        rng = random.Random(seed * len(DOMAINS) + d)
        pieces, n = [], 0
        while n < chars_per_domain:
            pieces.append(sample(domain, rng))
            n += len(pieces[-1])
        corpus[domain] = "".join(pieces)
    return corpus


class WindowSampler:
    """Random (context + 1)-character windows of a corpus, each row from one domain."""

    def __init__(self, corpus: dict[str, str], context_length: int, seed: int):
        self.context_length = context_length
        self.data = {d: torch.tensor(encode(text), dtype=torch.long) for d, text in corpus.items()}
        self.gen = torch.Generator().manual_seed(seed)

    def batch(self, size: int, domain: str | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x, y, domain): x and y (size, context) shifted by one; domain (size,) indexes DOMAINS.

        Rows draw their domain uniformly among the corpus's domains, or all use `domain`.
        """
        present = [DOMAINS.index(d) for d in ((domain,) if domain is not None else self.data)]
        domain = torch.tensor(present)[torch.randint(len(present), (size,), generator=self.gen)]
        rows = []
        for d in domain.tolist():
            data = self.data[DOMAINS[d]]
            start = int(torch.randint(len(data) - self.context_length - 1, (1,), generator=self.gen))
            rows.append(data[start:start + self.context_length + 1])
        window = torch.stack(rows)
        return window[:, :-1], window[:, 1:], domain
