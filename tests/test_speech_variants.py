"""The wide pool's pronunciation variants (speech_digits.PRONUNCIATIONS): what espeak-ng is given, the share of
words varied, the held-out draws untouched; with espeak-ng installed, the first variant of each word is what
espeak-ng's own en voice says and every variant is a phoneme string espeak-ng reads as written."""
from __future__ import annotations

import dataclasses
import subprocess

import numpy as np
import pytest

from llmviz.models.sim import speech_digits as sd

needs_espeak = pytest.mark.skipif(not sd.espeak_available(), reason="espeak-ng is not installed")


def test_text_is_words_or_phonemes():
    plain = sd.Utterance("3140", "en", 175, 50, 0)
    assert plain.text == "three one four zero"
    varied = dataclasses.replace(plain, variants=(0, 2, 0, 1))
    assert varied.text == f"three [[{sd.PRONUNCIATIONS['1'][2]}]] four [[{sd.PRONUNCIATIONS['0'][1]}]]"
    assert varied.command()[-1] == varied.text


def test_share_of_varied_words_and_held_out_draws():
    rng = np.random.default_rng(7)
    utts = [sd.draw_utterance(rng, False, sd.WIDE) for _ in range(2000)]
    flags = np.concatenate([np.array(u.variants) > 0 for u in utts])
    assert flags.size == sum(len(u.digits) for u in utts)
    assert abs(flags.mean() - sd.WIDE.variant_share) < 0.03
    assert all(0 <= v < len(sd.PRONUNCIATIONS[d]) for u in utts for d, v in zip(u.digits, u.variants))
    # the evaluation's draws and a pool without variants never draw a variant: the same utterances as before
    for kind in (sd.WIDE, sd.FIRST_PHASE):
        a, b = np.random.default_rng(3), np.random.default_rng(3)
        assert [sd.draw_utterance(a, True, kind) for _ in range(50)] == \
            [sd.draw_utterance(b, True, sd.FIRST_PHASE) for _ in range(50)]
    plain = dataclasses.replace(sd.WIDE, variant_share=0.0)
    assert all(not sd.draw_utterance(rng, False, plain).variants for _ in range(50))
    assert sd.pool_cache_path(1, 10, False, sd.WIDE) != sd.pool_cache_path(1, 10, False, plain)


def _phonemes(text: str, voice: str = "en") -> str:
    return subprocess.run(["espeak-ng", "-q", "-x", "-v", voice, text], capture_output=True, text=True,
                          check=True, timeout=60).stdout.split()


@needs_espeak
def test_first_variant_is_espeaks_own():
    assert _phonemes(" ".join(sd.DIGIT_WORDS)) == [sd.PRONUNCIATIONS[str(d)][0] for d in range(10)]


@needs_espeak
def test_every_variant_is_read_as_written():
    # espeak-ng writes a hiatus between two vowels as ';' (I;u:): the same phonemes
    for variants in sd.PRONUNCIATIONS.values():
        assert [p.replace(";", "") for p in _phonemes(" ".join(f"[[{v}]]" for v in variants))] == list(variants)
