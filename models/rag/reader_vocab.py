"""The reader's words: a closed vocabulary (the facts' template words, names and values, the unknown answer
and a few markers), how text becomes its ids, and how a prompt of passages and a question is laid out.

Text is lower-cased and cut into words and the two stops '.' and '?'; other characters ('#', ',', ...)
are dropped, and a word outside the vocabulary is <unk>. A passage gives at most PASSAGE_TOKENS ids and a
question at most QUESTION_TOKENS (a long document chunk is cut there, said in the output as `cut`). The
prompt is  <p> passage ... <p> passage <q> question <a>  and the answer follows, ending in <eos>. Nothing
here imports torch.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from llmviz.models.rag import facts

PAD, UNK, PASSAGE, QUESTION, ANSWER, EOS = "<pad>", "<unk>", "<p>", "<q>", "<a>", "<eos>"
SPECIALS = (PAD, UNK, PASSAGE, QUESTION, ANSWER, EOS)
PASSAGE_TOKENS = 40
QUESTION_TOKENS = 16
ANSWER_TOKENS = 10                  # generation stops here if <eos> has not come
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|[0-9]+|[.?]")


def split_words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _build_words() -> tuple[str, ...]:
    seen: dict[str, None] = dict.fromkeys(SPECIALS)
    texts = [facts.UNKNOWN_ANSWER, *facts.NAMES]
    for relation in facts.RELATIONS:
        texts += [relation.sentence, *relation.questions, *relation.values]
    for text in texts:
        for word in split_words(text.replace("{name}", "").replace("{value}", "")):
            seen.setdefault(word)
    return tuple(seen)


WORDS = _build_words()
IDS = {w: i for i, w in enumerate(WORDS)}
PAD_ID, UNK_ID, PASSAGE_ID, QUESTION_ID, ANSWER_ID, EOS_ID = (IDS[s] for s in SPECIALS)
UNKNOWN_IDS = tuple(IDS[w] for w in split_words(facts.UNKNOWN_ANSWER))


def encode(text: str, limit: int) -> tuple[list[int], bool]:
    """(ids of `text`, whether it was cut at `limit`)."""
    ids = [IDS.get(w, UNK_ID) for w in split_words(text)]
    return ids[:limit], len(ids) > limit


@dataclass(frozen=True)
class Prompt:
    ids: list[int]
    spans: list[tuple[int, int]]    # per passage, [start, end) of its ids (its <p> marker included)
    question_span: tuple[int, int]  # <q> .. <a> included
    cut: list[bool]                 # per passage, whether it was cut at PASSAGE_TOKENS


def prompt(passages: list[str], question: str) -> Prompt:
    ids: list[int] = []
    spans, cut = [], []
    for text in passages:
        body, was_cut = encode(text, PASSAGE_TOKENS)
        spans.append((len(ids), len(ids) + 1 + len(body)))
        ids += [PASSAGE_ID, *body]
        cut.append(was_cut)
    q, _ = encode(question, QUESTION_TOKENS)
    start = len(ids)
    ids += [QUESTION_ID, *q, ANSWER_ID]
    return Prompt(ids, spans, (start, len(ids)), cut)


def answer_ids(text: str) -> list[int]:
    return encode(text, ANSWER_TOKENS - 1)[0] + [EOS_ID]


def decode(ids) -> list[str]:
    return [WORDS[i] for i in ids]


def answer_text(ids) -> str:
    """The answer's words as a sentence: names and towns capitalised as the facts write them."""
    proper = {w.lower(): w for w in (*facts.NAMES, *facts.TOWNS)}
    words = [proper.get(w, w) for w in decode(i for i in ids if i != EOS_ID)]
    text = " ".join(words).replace(" .", ".").replace(" ?", "?")
    return text[:1].upper() + text[1:]
