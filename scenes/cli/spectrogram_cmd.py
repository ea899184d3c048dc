"""`llmviz spectrogram --audio FILE --out F.png|F.npz`: a sound file's log-mel features, exactly
WhisperFeatureExtractor's (models/sim/audio_features.py), as a labelled picture (time in seconds, frequency
in Hz on the mel scale, a colour bar) or as arrays (every stage's shape-small result: features, the frame
times, the mel filters' edges). A clip shorter than whisper-tiny's 4 s is padded as the model's input is;
a longer one (up to audio_io.MAX_SECONDS) is shown whole. Bad input is one line and exit code 2.
"""
from __future__ import annotations

import sys

N_MELS = 80
MODEL_SECONDS = 4


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("spectrogram", help="a sound file's log-mel spectrogram as a PNG or .npz (no display needed)",
                              description="Compute Whisper's log-mel features of a WAV, FLAC, OGG or MP3 file and write "
                                          "them as a labelled picture (.png) or arrays (.npz).")
    p.add_argument("--audio", required=True, help="a WAV, FLAC, OGG or MP3 file")
    p.add_argument("--out", required=True, help="F.png (labelled picture) or F.npz (arrays)")
    p.set_defaults(func=run)


def _fail(message: str, code: int = 2) -> int:
    print(f"llmviz spectrogram: error: {message}", file=sys.stderr)
    return code


def features_of(samples):
    """The stages of a clip's features: padded to the model's 4 s, or the whole clip when longer."""
    from llmviz.models.sim import audio_features as af

    chunk = max(MODEL_SECONDS * af.SAMPLE_RATE, -(-samples.size // af.HOP) * af.HOP)
    return af.log_mel_stages(samples, N_MELS, chunk)


def run(args) -> int:
    import numpy as np

    from llmviz.common.atomic import atomic_path, write_atomic
    from llmviz.models.sim import audio_features as af
    from llmviz.models.sim.audio_io import read_audio
    from llmviz.scenes.cli.common import check_output_path
    from llmviz.scenes.cli.main import CliError

    try:
        out = check_output_path(args.out, "--out", suffixes=(".png", ".npz"))
        audio = read_audio(args.audio)
    except (CliError, ValueError) as exc:
        return _fail(str(exc).removeprefix("llmviz: "))
    stages = features_of(audio.samples)
    frames = stages.features.shape[1]
    if out.lower().endswith(".npz"):
        with atomic_path(out) as tmp:
            np.savez_compressed(tmp, features=stages.features, frame_seconds=np.arange(frames) * af.HOP / af.SAMPLE_RATE,
                                mel_edges_hz=af.mel_edges(N_MELS), audio_frames=np.int64(stages.audio_frames),
                                sample_rate=np.int64(af.SAMPLE_RATE))
    else:
        from llmviz.scenes.whisper_picture import spectrogram_png

        title = (f"{args.audio}: {audio.seconds:.2f} s, {N_MELS} mel bins, 25 ms windows every 10 ms "
                 "(WhisperFeatureExtractor's log-mel)")
        write_atomic(out, spectrogram_png(stages.features, title))
    print(f"{args.audio} ({audio.format}, {audio.seconds:.2f} s) -> {out}: {N_MELS} mel bins x {frames} frames")
    return 0
