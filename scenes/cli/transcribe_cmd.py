"""`llmviz transcribe --model whisper-tiny --audio FILE [--json]`: a sound file through a small speech model
trained here, headless: the transcript, each token with its probability and its start and end time (from
the alignment heads' cross-attention, by dynamic time warping, as Whisper's word timestamps).

The file is read with its header and duration checked before any sample (models/sim/audio_io.py), resampled
to 16 kHz and made into log-mel features exactly as WhisperFeatureExtractor does. Bad input (an unknown
model, a missing, empty, damaged, too long or non-audio file) is one line and exit code 2.
"""
from __future__ import annotations

import json
import sys

from llmviz.scenes.cli.common import shown

TRANSCRIBERS = {"whisper-tiny": ("llmviz.models.sim.whisper_model", "load_whisper")}
WHAT_IT_IS = "a small model trained here on spoken digits synthesised with espeak-ng"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("transcribe", help="transcribe a sound file with a small speech model (no display needed)",
                              description="Run a WAV, FLAC, OGG or MP3 file through a small Whisper trained here on "
                                          "spoken digits, and print its transcript with token probabilities and times.")
    p.add_argument("--model", default="whisper-tiny", help="model: " + ", ".join(TRANSCRIBERS) + " (default whisper-tiny)")
    p.add_argument("--audio", required=True, help="a WAV, FLAC, OGG or MP3 file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _fail(message: str, code: int = 2) -> int:
    print(f"llmviz transcribe: error: {message}", file=sys.stderr)
    return code


def transcribe_file(model_id: str, audio):
    """(model, Transcript) of decoded audio (audio_io.Audio)."""
    import importlib

    import torch

    from llmviz.models.sim.whisper_transcribe import transcribe

    torch.set_num_threads(1)
    module, loader = TRANSCRIBERS[model_id]
    model = getattr(importlib.import_module(module), loader)()
    return model, transcribe(model, audio.samples, model.generation_config.alignment_heads)


def run(args) -> int:
    from llmviz.models.sim.audio_io import read_audio

    if args.model not in TRANSCRIBERS:
        return _fail(f"unknown model {shown(args.model)}; transcribers: {', '.join(TRANSCRIBERS)}")
    try:
        audio = read_audio(args.audio)
    except ValueError as exc:  # AudioError is a ValueError
        return _fail(str(exc))
    _, result = transcribe_file(args.model, audio)
    out = {"model": args.model, "about": WHAT_IT_IS, "audio": {"file": args.audio, "format": audio.format,
           "seconds": round(audio.seconds, 3), "sample_rate": audio.source_rate, "channels": audio.channels},
           "clipped_to_seconds": result.stages.waveform.size / 16000 if result.clipped else None,
           "text": result.text, "tokens": result.token_rows(), "alignment_heads": result.heads}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{args.model} ({WHAT_IT_IS}): {args.audio} ({audio.format}, {audio.seconds:.2f} s"
          + (f", only the first {out['clipped_to_seconds']:.0f} s heard" if result.clipped else "") + ")")
    print(f"transcript: {result.text or '(nothing)'}")
    for row in out["tokens"]:
        when = f"{row['start']:5.2f} - {row['end']:5.2f} s" if row["start"] is not None else "      (end)    "
        print(f"  {row['token']:<14} p {row['probability']:.3f}   {when}")
    return 0
