"""One clip through whisper-tiny end to end, every intermediate kept: the log-mel stages (audio_features), greedy
decoding token by token, the trace of the decoder over the transcript (every cell of both stacks), each
token's probability and its start and end time from the alignment heads (DTW), and how long each step took.
The command line (`llmviz transcribe`), the live scene's worker and the chapter read this one result.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from llmviz.models.sim import audio_features, whisper_trace
from llmviz.models.sim.whisper_model import EOT_ID, VOCAB, decode


@dataclass
class Transcript:
    text: str                          # the digits said
    tokens: list[int]                  # SOT, the digits, EOT (what the trace's decoder read)
    probabilities: list[float]         # each transcript token's probability, and EOT's last
    starts: np.ndarray                 # seconds, one per transcript token
    ends: np.ndarray
    path: tuple[np.ndarray, np.ndarray]   # the DTW path: (token row, encoder frame)
    stages: audio_features.LogMelStages
    trace: object                      # ActivationTrace under the layout's ids
    heads: list[list[int]]             # the alignment heads used
    seconds: dict = field(default_factory=dict)   # step -> seconds taken
    clipped: bool = False              # the audio was longer than the model's chunk and was cut

    def token_rows(self) -> list[dict]:
        """Each transcript token (and the closing EOT) with its probability and times."""
        rows = []
        for k, tok in enumerate(self.tokens[1:-1]):
            rows.append({"token": VOCAB[tok], "id": tok, "probability": self.probabilities[k],
                         "start": round(float(self.starts[k]), 3), "end": round(float(self.ends[k]), 3)})
        rows.append({"token": VOCAB[EOT_ID], "id": EOT_ID, "probability": self.probabilities[-1],
                     "start": None, "end": None})
        return rows


def transcribe(model, wave: np.ndarray, heads) -> Transcript:
    """The transcript of a 16 kHz mono clip (cut to the model's chunk), with every intermediate."""
    import torch

    cfg = model.config
    chunk = cfg.max_source_positions * 2 * audio_features.HOP
    seconds = {}
    t0 = time.perf_counter()
    stages = audio_features.log_mel_stages(wave, cfg.num_mel_bins, chunk)
    t1 = time.perf_counter()
    seconds["log-mel features"] = t1 - t0
    tokens = whisper_trace.greedy(model, torch.from_numpy(stages.features)[None])[0].tolist()
    if EOT_ID in tokens[1:]:
        tokens = tokens[:tokens.index(EOT_ID, 1) + 1]
    else:
        tokens = tokens + [EOT_ID]       # positions ran out: close it as Whisper's timing does
        tokens = tokens[-cfg.max_target_positions:] if len(tokens) > cfg.max_target_positions else tokens
    t2 = time.perf_counter()
    seconds["greedy decoding"] = t2 - t1
    trace = whisper_trace.trace(model, stages.features, tokens)
    t3 = time.perf_counter()
    seconds["trace (every intermediate)"] = t3 - t2
    probs = np.asarray(trace["probs"], np.float64)
    probabilities = [float(probs[i, tokens[i + 1]]) for i in range(len(tokens) - 1)]
    starts, ends, path = whisper_trace.token_times(trace, heads, stages.audio_frames)
    seconds["timings (DTW)"] = time.perf_counter() - t3
    return Transcript(decode(tokens), tokens, probabilities, starts, ends, path, stages, trace,
                      [list(h) for h in heads], seconds, np.asarray(wave).size > chunk)
