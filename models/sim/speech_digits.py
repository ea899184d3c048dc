"""Spoken digit sequences synthesised with espeak-ng, for training and measuring whisper-tiny: "three one four"
said by one of many voices at a speed and pitch drawn from a seed, then placed in a 4-second clip with a
random offset, gain and background noise.

Voices and speeds are split: training draws TRAIN_VOICES and speeds outside HELD_OUT_SPEEDS, the accuracy is
measured on EVAL_VOICES (variants and accents never trained on) at the held-out speeds. Training's second
phase draws a wider pool (WIDE: every espeak-ng variant but the held-out ones, on the training accents, a
wider pitch range, and half its words said with a pronunciation variant, PRONUNCIATIONS, given to espeak-ng as
phonemes: more accents than espeak-ng's five training ones); the evaluation's draws are the same whichever
pool is trained on. espeak-ng is run as a program (the Debian package); the test suite never needs it (it
reads the WAVs in assets/audio). The same seed gives the same clips: espeak-ng is deterministic, and every
random draw comes from the seed.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from llmviz.models.sim.audio_features import SAMPLE_RATE

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
MIN_DIGITS, MAX_DIGITS = 1, 6
CLIP_SECONDS = 4
CLIP_SAMPLES = CLIP_SECONDS * SAMPLE_RATE
# espeak-ng's English voices (accents) and voice variants (timbre, pitch range, the klatt synthesisers).
TRAIN_ACCENTS = ("en", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-029")
TRAIN_VARIANTS = ("", "m1", "m2", "m3", "m5", "m7", "f1", "f2", "f3", "f5", "klatt", "klatt3", "Andy", "Annie",
                  "david", "linda")
EVAL_ACCENTS = ("en-gb-x-gbclan", "en-us-nyc", "en-gb-x-gbcwmd")
EVAL_VARIANTS = ("m4", "m6", "f4", "klatt2", "paul", "steph")
TRAIN_VOICES = tuple(f"{a}+{v}" if v else a for a in TRAIN_ACCENTS for v in TRAIN_VARIANTS)
# Every voice variant espeak-ng 1.51 ships (espeak-ng-data/voices/!v; "Mr serious", a name with a space, left
# out), for the second phase's wider pool: timbre is what the held-out voices differ in most.
ESPEAK_VARIANTS = (
    "Alex", "Alicia", "Andrea", "Andy", "Annie", "AnxiousAndy", "Demonic", "Denis", "Diogo", "Gene", "Gene2",
    "Henrique", "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "Nguyen", "RicishayMax",
    "RicishayMax2", "RicishayMax3", "Storm", "Tweaky", "UniRobot", "adam", "anika", "anikaRobot", "announcer",
    "antonio", "aunty", "belinda", "benjamin", "boris", "caleb", "croak", "david", "ed", "edward", "edward2", "f1",
    "f2", "f3", "f4", "f5", "fast", "grandma", "grandpa", "gustave", "iven", "iven2", "iven3", "iven4", "john",
    "kaukovalta", "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "linda", "m1", "m2", "m3", "m4", "m5",
    "m6", "m7", "m8", "marcelo", "max", "michel", "miguel", "norbert", "pablo", "paul", "pedro", "quincy", "rob",
    "robert", "robosoft", "robosoft2", "robosoft3", "robosoft4", "robosoft5", "robosoft6", "robosoft7",
    "robosoft8", "sandro", "shelby", "steph", "steph2", "steph3", "travis", "victor", "whisper", "whisperf", "zac")
# steph2 and steph3 are steph's formants with another pitch or breath: held out with it
WIDE_TRAIN_VARIANTS = ("",) + tuple(v for v in ESPEAK_VARIANTS if v not in EVAL_VARIANTS + ("steph2", "steph3"))
WIDE_TRAIN_VOICES = tuple(f"{a}+{v}" if v else a for a in TRAIN_ACCENTS for v in WIDE_TRAIN_VARIANTS)
# never trained on: a held-out variant on any accent, or any variant on a held-out accent
EVAL_VOICES = tuple(f"{a}+{v}" for a in TRAIN_ACCENTS + EVAL_ACCENTS for v in EVAL_VARIANTS) + \
    tuple(f"{a}+{v}" if v else a for a in EVAL_ACCENTS for v in TRAIN_VARIANTS)
SPEEDS = (120, 240)                     # words per minute (espeak-ng's default is 175)
HELD_OUT_SPEEDS = ((135, 145), (170, 180), (205, 215))   # inclusive bands of wpm only the evaluation uses
PITCHES = (25, 75)                      # espeak-ng's 0-99 pitch
WIDE_PITCHES = (10, 90)                 # the second phase's pool: beyond the held-out clips' range both ways
WORD_GAPS = (0, 3)                      # extra pause between words, in 10 ms units
SNR_DB = (8.0, 40.0)                    # background noise
GAIN_DB = (-24.0, 0.0)                  # peak level below full scale
PERTURB = (0.88, 1.14)                  # training's speed perturbation (both tempo and pitch)
SYNTH_WORKERS = 2
# Pronunciation variants of each digit word, espeak-ng phoneme mnemonics (given as [[...]] in the text, so each
# training accent's own phoneme table says them): vowels other English accents use (Midlands and Northern
# English, Scottish, Australian, Cockney, Southern US), written from accent descriptions, not read off the
# held-out voices. The five training accents say each word nearly alike; the held-out West Midlands voices'
# errors (two heard as four, five as four, eight as five) are the vowel shifts such accents have, which the
# model had never heard. The first of each is espeak-ng's own (en).
PRONUNCIATIONS = {
    "0": ("z'i@roU", "z'i:roU", "z'IroU", "z'3:roU", "z'i@r0"),
    "1": ("w'0n", "w'Vn", "w'Un", "w'an"),
    "2": ("t'u:", "t'U", "t'Uu:", "t'Iu:"),
    "3": ("Tr'i:", "tr'i:", "Tr'Ii:", "fr'i:"),
    "4": ("f'o@", "f'O:", "f'O@", "f'oU", "f'o@r"),
    "5": ("f'aIv", "f'OIv", "f'A:v", "f'VIv", "f'a:v"),
    "6": ("s'Iks", "s'i:ks", "s'Eks", "s'@ks"),
    "7": ("s'Ev@n", "s'Iv@n", "s'Evn", "s'ev@n"),
    "8": ("'eIt", "'aIt", "'VIt", "'e:t", "'EIt"),
    "9": ("n'aIn", "n'OIn", "n'A:n", "n'VIn"),
}
SILENCE = 1e-3                          # what counts as silence when trimming espeak-ng's own pauses


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def is_held_out(speed: int) -> bool:
    return any(lo <= speed <= hi for lo, hi in HELD_OUT_SPEEDS)


@dataclass(frozen=True)
class Utterance:
    digits: str        # "314"
    voice: str         # espeak-ng -v
    speed: int         # -s, words per minute
    pitch: int         # -p
    gap: int           # -g, 10 ms units
    # per digit: 0 (the word as the voice's accent says it) or the index of a PRONUNCIATIONS variant
    variants: tuple[int, ...] = ()

    @property
    def text(self) -> str:
        said = self.variants or (0,) * len(self.digits)
        return " ".join(f"[[{PRONUNCIATIONS[d][v]}]]" if v else DIGIT_WORDS[int(d)] for d, v in zip(self.digits, said))

    def command(self) -> list[str]:
        return ["espeak-ng", "-v", self.voice, "-s", str(self.speed), "-p", str(self.pitch), "-g", str(self.gap),
                "--stdout", self.text]


@dataclass(frozen=True)
class PoolKind:
    """Which voices and pitches a pool draws from (the held-out flag picks the speeds too), and how often a word
    is said with one of its PRONUNCIATIONS variants instead of the accent's own."""
    voices: tuple[str, ...] = TRAIN_VOICES
    pitches: tuple[int, int] = PITCHES
    variant_share: float = 0.0


# Half the wide pool's words are said with a pronunciation variant: 0.5 gave 89.9% of the held-out digits
# against 88.5% for 0.25 and 88.2% for none (1,200 fine-tuning steps each, BENCHMARKS.md).
VARIANT_SHARE = 0.5
FIRST_PHASE, WIDE = PoolKind(), PoolKind(WIDE_TRAIN_VOICES, WIDE_PITCHES, VARIANT_SHARE)


def draw_utterance(rng: np.random.Generator, held_out: bool, kind: PoolKind = FIRST_PHASE) -> Utterance:
    """One utterance's digits and voice: training's voices and speeds, or (held_out) the evaluation's."""
    n = int(rng.integers(MIN_DIGITS, MAX_DIGITS + 1))
    digits = "".join(str(d) for d in rng.integers(0, 10, n))
    voices, pitches = (EVAL_VOICES, PITCHES) if held_out else (kind.voices, kind.pitches)
    speeds = [s for s in range(SPEEDS[0], SPEEDS[1] + 1) if is_held_out(s) == held_out]
    utt = Utterance(digits, voices[int(rng.integers(len(voices)))], int(rng.choice(speeds)),
                    int(rng.integers(pitches[0], pitches[1] + 1)), int(rng.integers(WORD_GAPS[0], WORD_GAPS[1] + 1)))
    if held_out or not kind.variant_share:
        return utt   # the draws as they were before variants existed: the same evaluation and pools
    varied = rng.random(n) < kind.variant_share
    return replace(utt, variants=tuple(int(rng.integers(1, len(PRONUNCIATIONS[d]))) if v else 0
                                       for d, v in zip(digits, varied)))


def parse_espeak_wav(data: bytes) -> tuple[np.ndarray, int]:
    """espeak-ng --stdout's WAV (16-bit mono PCM; its header's sizes say 'unknown', 0x7fffffff, since it
    streams): the samples in [-1, 1] and the rate."""
    fmt, at = data.find(b"fmt "), data.find(b"data")
    if data[:4] != b"RIFF" or fmt < 0 or at < 0:
        raise RuntimeError("espeak-ng did not write a WAV")
    rate = int.from_bytes(data[fmt + 12:fmt + 16], "little")
    pcm = np.frombuffer(data[at + 8:at + 8 + (len(data) - at - 8) // 2 * 2], "<i2")
    return pcm.astype(np.float32) / 32768.0, rate


def synthesise(utt: Utterance) -> np.ndarray:
    """The utterance at 16 kHz, float32, espeak-ng's leading and trailing silence trimmed."""
    from llmviz.models.sim.audio_io import resample

    out = subprocess.run(utt.command(), capture_output=True, timeout=60, check=True).stdout
    wave, rate = parse_espeak_wav(out)
    wave = resample(wave, rate)
    loud = np.flatnonzero(np.abs(wave) > SILENCE)
    return wave[loud[0]:loud[-1] + 1] if loud.size else wave


def perturb(speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The speech played a random PERTURB factor faster or slower (pitch and formants move with it, as a longer
    or shorter vocal tract would move them): linear interpolation, enough for training's variety."""
    factor = rng.uniform(*PERTURB)
    n = max(1, int(round(speech.size / factor)))
    return np.interp(np.arange(n) * factor, np.arange(speech.size), speech).astype(np.float32)


def place(speech: np.ndarray, rng: np.random.Generator, samples: int = CLIP_SAMPLES) -> tuple[np.ndarray, int]:
    """The speech at a random offset inside a clip of `samples` (cut if longer), its peak at a random gain,
    background noise (white or pink) at a random SNR. Returns the clip and the offset."""
    speech = speech[:samples]
    offset = int(rng.integers(0, samples - speech.size + 1))
    clip = np.zeros(samples, np.float64)
    clip[offset:offset + speech.size] = speech
    power = float(np.mean(speech.astype(np.float64) ** 2)) + 1e-12
    noise = rng.standard_normal(samples)
    if rng.random() < 0.5:   # pink: white noise through a 1/f amplitude slope
        spectrum = np.fft.rfft(noise)
        spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1.0))
        noise = np.fft.irfft(spectrum, samples)
    snr = rng.uniform(*SNR_DB)
    clip += noise / (np.std(noise) + 1e-12) * np.sqrt(power / 10 ** (snr / 10))
    peak = np.max(np.abs(clip)) + 1e-12
    clip *= 10 ** (rng.uniform(*GAIN_DB) / 20) / peak
    return clip.astype(np.float32), offset


# ---- a pool of clean utterances, synthesised once a seed and kept for the training ----------------------

def pool_cache_path(seed: int, n: int, held_out: bool, kind: PoolKind = FIRST_PHASE) -> Path:
    # the first phase's key as it was before PoolKind, so caches written then are still read
    extra = () if kind == FIRST_PHASE else (kind.voices, kind.pitches)
    if kind.variant_share:
        extra += (kind.variant_share, tuple(sorted(PRONUNCIATIONS.items())))
    key = hashlib.sha256(repr((seed, n, held_out, TRAIN_VOICES, EVAL_VOICES, SPEEDS, HELD_OUT_SPEEDS, PITCHES,
                               WORD_GAPS, CLIP_SAMPLES) + extra).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "llmviz-speech" / f"digits-{key}.npz"


def utterance_pool(seed: int, n: int, held_out: bool = False, log=print,
                   kind: PoolKind = FIRST_PHASE) -> tuple[list[str], list[np.ndarray]]:
    """n utterances' digits and clean 16 kHz speech from `seed`, synthesised (with a progress line) or read
    from the temporary folder's cache of an earlier run with the same draws."""
    path = pool_cache_path(seed, n, held_out, kind)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                lengths, flat, digits = z["lengths"], z["speech"], [str(d) for d in z["digits"]]
            if len(digits) == n == lengths.size and int(lengths.sum()) == flat.size:
                return digits, np.split(flat, np.cumsum(lengths)[:-1])
        except (OSError, ValueError, KeyError):
            pass   # a damaged cache is synthesised again
    if not espeak_available():
        # an OSError: `llmviz train` says it in one line
        raise FileNotFoundError("espeak-ng is not installed (apt-get install espeak-ng): it synthesises the training speech")
    rng = np.random.default_rng(seed)
    utterances = [draw_utterance(rng, held_out, kind) for _ in range(n)]
    speech = []
    # two espeak-ng processes at a time (the machine's two cores); map keeps the draws' order
    with ThreadPoolExecutor(SYNTH_WORKERS) as pool:
        for i, wave in enumerate(pool.map(synthesise, utterances)):
            speech.append(wave[:CLIP_SAMPLES])
            if log and ((i + 1) % 250 == 0 or i + 1 == n):
                log(f"synthesising speech with espeak-ng: {i + 1}/{n} utterances")
    from llmviz.common.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        np.savez(tmp, lengths=np.array([s.size for s in speech]), speech=np.concatenate(speech),
                 digits=np.array([u.digits for u in utterances]))
    return [u.digits for u in utterances], speech


class ClipStream:
    """Batches of noisy clips from a pool: each draw a random utterance, sped up or slowed down (augment), at a
    new offset, gain and noise."""

    def __init__(self, digits: list[str], speech: list[np.ndarray], seed: int, augment: bool = True):
        self.digits, self.speech, self.augment = digits, speech, augment
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> tuple[np.ndarray, list[str], np.ndarray]:
        """(clips, their digits, (n, 2) where the speech lies: first sample, samples)."""
        picks = self.rng.integers(0, len(self.digits), n)
        speech = [perturb(self.speech[int(i)], self.rng) if self.augment else self.speech[int(i)] for i in picks]
        placed = [place(s, self.rng) for s in speech]
        spans = np.array([(offset, min(s.size, CLIP_SAMPLES)) for s, (_, offset) in zip(speech, placed)])
        return np.stack([clip for clip, _ in placed]), [self.digits[int(i)] for i in picks], spans


def write_wav(path, wave: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """A 16-bit mono PCM WAV, written atomically (the shipped samples)."""
    import wave as wavelib

    from llmviz.common.atomic import atomic_path

    pcm = np.clip(np.rint(np.asarray(wave, np.float64) * 32767), -32768, 32767).astype("<i2")
    with atomic_path(path) as tmp:
        with wavelib.open(os.fspath(tmp), "wb") as f:
            f.setnchannels(1)
            f.setsampwidth(2)
            f.setframerate(rate)
            f.writeframes(pcm.tobytes())
