"""llava-tiny's words: the 32-word vocabulary saved with the model, the prompt around the image tokens, the
questions it is trained on and their answers for a generated picture, and a user's question checked word by
word (an unknown word is one line naming it).

The text is LLaVA's conversation, image first: 256 `<image>` placeholders (the projector's tokens replace
them), then "user : QUESTION assistant :" and the answer, closed by `</s>`. Words are lower case and split
on spaces and punctuation, as the exported tokenizer (tokenizers' WordLevel behind a Lowercase normaliser
and the Whitespace pre-tokenizer) splits them. Numbers only: no torch here.
"""
from __future__ import annotations

import re

from llmviz.models.sim import shapes

PAD, UNK, EOS, IMAGE = "<pad>", "<unk>", "</s>", "<image>"
SPECIAL = (PAD, UNK, EOS, IMAGE)
TEMPLATE = ("user", "assistant", ":")
QUESTION_WORDS = ("what", "shape", "colour", "is", "it", "?", "describe")
# The answers' words: "a", then the size, colour and shape words of shapes.py's captions.
ANSWER_WORDS = ("a", *shapes.SIZES, *shapes.COLOURS, *shapes.SHAPES)
WORDS = SPECIAL + TEMPLATE + QUESTION_WORDS + ANSWER_WORDS
WORD_ID = {w: i for i, w in enumerate(WORDS)}
PAD_ID, EOS_ID, IMAGE_ID = WORD_ID[PAD], WORD_ID[EOS], WORD_ID[IMAGE]

# The three questions the model is trained on, by the kind of answer each asks for.
QUESTIONS = {"shape": "what shape is it?", "colour": "what colour is it?", "describe": "describe it"}
MAX_QUESTION_CHARS = 200
MAX_QUESTION_WORDS = 8
MAX_ANSWER_TOKENS = 5          # the longest answer ("a small red star") and </s>
TEXT_TOKENS = 2 + MAX_QUESTION_WORDS + 2 + MAX_ANSWER_TOKENS   # the text rows the scene lays out
_SPLIT = re.compile(r"\w+|[^\w\s]+")   # tokenizers' Whitespace pre-tokenizer


class QuestionError(ValueError):
    """A question the model cannot read: one line naming the word or the limit."""


def answer(picture: shapes.ShapePicture, kind: str) -> str:
    """The right answer to QUESTIONS[kind] about `picture`."""
    return {"shape": picture.shape, "colour": picture.colour, "describe": picture.caption}[kind]


def words(text: str) -> list[str]:
    """`text` split as the tokenizer splits it (lower case, words and punctuation runs)."""
    return _SPLIT.findall(text.lower())


def encode(text: str) -> list[int]:
    """The ids of `text`'s words; QuestionError naming the first word outside the vocabulary."""
    ids = []
    for w in words(text):
        if w not in WORD_ID or w in SPECIAL:
            known = " ".join(TEMPLATE + QUESTION_WORDS + ANSWER_WORDS)
            raise QuestionError(f"unknown word {w[:40]!r}; llava-tiny knows only: {known}")
        ids.append(WORD_ID[w])
    return ids


def decode(ids) -> list[str]:
    return [WORDS[int(i)] for i in ids]


def question_ids(question: str) -> list[int]:
    """A user's question as ids, bounded: 1 to MAX_QUESTION_WORDS known words."""
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(f"the question has {len(question)} characters; at most {MAX_QUESTION_CHARS}")
    ids = encode(question)
    if not 1 <= len(ids) <= MAX_QUESTION_WORDS:
        raise QuestionError(f"the question has {len(ids)} words; it needs 1 to {MAX_QUESTION_WORDS}")
    return ids


def turn(question: list[int]) -> list[int]:
    """One question's turn up to where the answer starts: user : QUESTION assistant :"""
    return [WORD_ID["user"], WORD_ID[":"], *question, WORD_ID["assistant"], WORD_ID[":"]]


def prompt_text(question: str) -> str:
    """The prompt as text for transformers' LlavaProcessor, which expands <image> into the image tokens."""
    return f"{IMAGE}\nUSER: {question} ASSISTANT:"


def prompt_ids(question: list[int], n_image: int) -> list[int]:
    """The whole prompt: n_image image placeholders, then the turn."""
    return [IMAGE_ID] * n_image + turn(question)


def answer_text(ids) -> str:
    """Generated ids as the answer's words, up to </s>."""
    out = []
    for w in decode(ids):
        if w == EOS:
            break
        out.append(w)
    return " ".join(out)
