"""clip-tiny's word-level vocabulary: every word its captions use ("a small red star": size, colour and shape
words from shapes.py), a tokenizers WordLevel tokenizer built from it (what `llmviz export-hf` saves as
tokenizer.json, loadable by transformers' PreTrainedTokenizerFast), and captions turned into token ids with
an unknown word refused in one line naming it.

A caption is lower-cased, its punctuation dropped, split on spaces, framed by <start> and <end>; the text
tower reads the state at <end> (transformers' CLIPTextModel pools at the first eos_token_id). The vocabulary
is fixed by shapes.py's lists, so the weights file stores it and loading checks it is the same.
"""
from __future__ import annotations

import json
import re

from llmviz.models.sim import shapes

PAD, UNK, START, END = "<pad>", "<unk>", "<start>", "<end>"
SPECIALS = (PAD, UNK, START, END)
# "shape" stands in for a shape left unsaid ("a red shape"), "an" before a vowel ("an orange star").
FUNCTION_WORDS = ("a", "an", "shape")
WORDS = (*FUNCTION_WORDS, *shapes.SIZES, *shapes.COLOURS, *shapes.SHAPES)
VOCAB = (*SPECIALS, *WORDS)
TOKEN_ID = {token: i for i, token in enumerate(VOCAB)}
PAD_ID, UNK_ID, START_ID, END_ID = (TOKEN_ID[t] for t in SPECIALS)
CONTEXT = 8                     # tokens a caption may have with <start> and <end> (six words)
MAX_CAPTION_CHARS = 200         # bounded before it is split
_DROPPED = re.compile(r"[.,;:!?\"']")   # punctuation a caption may carry, dropped as the tokenizer does


class CaptionError(ValueError):
    """A caption the text tower cannot read: one line naming the word or the limit."""


def words_of(caption: str) -> list[str]:
    """The caption's words as the tokenizer sees them (lower case, punctuation dropped)."""
    if len(caption) > MAX_CAPTION_CHARS:
        raise CaptionError(f"caption is {len(caption)} characters, more than the {MAX_CAPTION_CHARS} allowed")
    return _DROPPED.sub(" ", caption.lower()).split()


def encode(caption: str) -> list[int]:
    """<start>, the caption's word ids, <end>; CaptionError for an empty caption, an unknown word (naming it
    and the words known) or one longer than CONTEXT tokens."""
    words = words_of(caption)
    if not words:
        raise CaptionError(f"caption {caption!r} has no words")
    unknown = [w for w in words if w not in TOKEN_ID or w in SPECIALS]
    if unknown:
        raise CaptionError(f"caption {caption!r}: unknown word {unknown[0]!r}; clip-tiny knows only: "
                           + " ".join(WORDS))
    if len(words) + 2 > CONTEXT:
        raise CaptionError(f"caption {caption!r} has {len(words)} words; at most {CONTEXT - 2} fit")
    return [START_ID, *(TOKEN_ID[w] for w in words), END_ID]


def decode(ids) -> list[str]:
    return [VOCAB[int(i)] for i in ids]


def caption_for(size: str | None, colour: str | None, shape: str | None) -> str:
    """The caption naming the attributes given ("a small red star", "an orange shape", "a large shape")."""
    words = [w for w in (size, colour) if w] + [shape or "shape"]
    return f"{'an' if words[0][0] in 'aeiou' else 'a'} {' '.join(words)}"


def all_full_captions() -> list[tuple[str, str, str, str]]:
    """(caption, size, colour, shape) for every combination: the captions zero-shot accuracy chooses among."""
    return [(caption_for(z, c, s), z, c, s) for s in shapes.SHAPES for c in shapes.COLOURS for z in shapes.SIZES]


# ---- the tokenizer files ---------------------------------------------------------------------

def tokenizer():
    """The tokenizers Tokenizer equal to `encode` on every caption it accepts (unknown words map to <unk>)."""
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel

    tok = Tokenizer(WordLevel(dict(TOKEN_ID), unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace(Regex(_DROPPED.pattern), " ")])
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single=f"{START} $A {END}",
                                                       special_tokens=[(START, START_ID), (END, END_ID)])
    return tok


def tokenizer_json(model=None) -> dict:
    """tokenizer.json's object (`model` unused: export-hf's file makers take the model)."""
    return json.loads(tokenizer().to_str())


def tokenizer_config(model=None) -> dict:
    """tokenizer_config.json: the fast tokenizer class over tokenizer.json, and its special tokens."""
    return {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": CONTEXT, "pad_token": PAD,
            "unk_token": UNK, "bos_token": START, "eos_token": END, "clean_up_tokenization_spaces": False}


def special_tokens_map(model=None) -> dict:
    return {"pad_token": PAD, "unk_token": UNK, "bos_token": START, "eos_token": END}
