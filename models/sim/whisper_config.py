"""whisper-tiny's sizes and vocabulary, without torch or transformers (the scene's hover rules and the panel
read them on the frame thread): the config dataclass, the twelve tokens, and text <-> token ids.
whisper_model.py builds the transformers model from them.
"""
from __future__ import annotations

from dataclasses import dataclass

from llmviz.models.sim import audio_features, speech_digits

MODEL_ID = "whisper-tiny"
# The vocabulary: the digits are their own tokens; the transcript "314" is [SOT, 3, 1, 4, EOT].
DIGITS = tuple("0123456789")
EOT, SOT = "<|endoftext|>", "<|startoftranscript|>"
VOCAB = (*DIGITS, EOT, SOT)
EOT_ID, SOT_ID = VOCAB.index(EOT), VOCAB.index(SOT)


@dataclass(frozen=True)
class WhisperTinyConfig:
    n_mels: int = 80
    chunk_seconds: int = speech_digits.CLIP_SECONDS
    d_model: int = 64
    encoder_layers: int = 2
    decoder_layers: int = 2
    n_heads: int = 4
    d_ff: int = 256
    max_target_positions: int = 16
    vocab_size: int = len(VOCAB)
    ln_eps: float = 1e-5

    @property
    def n_layers(self) -> int:
        """The main stack's layers (the decoder's), as the spec counts them."""
        return self.decoder_layers

    @property
    def n_frames(self) -> int:
        """Log-mel frames of a chunk (10 ms each)."""
        return self.chunk_seconds * audio_features.SAMPLE_RATE // audio_features.HOP

    @property
    def n_source(self) -> int:
        """Encoder frames (20 ms each: the second conv's stride 2)."""
        return self.n_frames // 2


def encode(digits: str) -> list[int]:
    """The decoder's tokens of a transcript: SOT, the digits, EOT."""
    return [SOT_ID, *(VOCAB.index(ch) for ch in digits), EOT_ID]


def decode(ids) -> str:
    """The transcript of token ids (specials left out)."""
    return "".join(VOCAB[i] for i in ids if 0 <= int(i) < len(DIGITS))
