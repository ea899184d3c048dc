"""Benchmark: a 4-second clip through whisper-tiny's whole pipeline with every intermediate recorded, on one torch
thread.

    .venv/bin/python benchmarks/whisper_pipeline.py      (prints JSON)

What the scene's worker does for each new clip (scenes/whisper_live.py): read the file (bounded, resampled),
every log-mel stage, greedy decoding token by token, the trace of every cell of both stacks, the alignment
heads' DTW timings, and the panel's extra arrays; per shipped sample, 11 runs after a warm-up. Medians per step
and of the whole. Figures, not assertions.
"""
from __future__ import annotations

import json
import statistics
import time

import torch

from llmviz.models.sim import audio_io, whisper_model
from llmviz.models.sim.trace import ActivationTrace
from llmviz.models.sim.whisper_transcribe import transcribe
from llmviz.scenes.whisper_live import SAMPLE_CLIPS, sample_path, trace_entries

RUNS = 11


def main() -> None:
    torch.set_num_threads(1)
    model = whisper_model.load_whisper()
    heads = model.generation_config.alignment_heads
    steps: dict[str, list[float]] = {}
    whole = []
    for name in SAMPLE_CLIPS:
        path = str(sample_path(name))
        for run in range(RUNS + 1):
            start = time.perf_counter()
            audio = audio_io.read_audio(path)
            read = time.perf_counter() - start
            result = transcribe(model, audio.samples, heads)
            trace = trace_entries(result, audio, ActivationTrace)
            if run:
                whole.append(time.perf_counter() - start)
                for step, seconds in {"read and resample": read, **result.seconds}.items():
                    steps.setdefault(step, []).append(seconds)
    print(json.dumps({"runs": len(whole), "clip_seconds": 4.0,
                      "median_ms": round(1000 * statistics.median(whole), 2), "max_ms": round(1000 * max(whole), 2),
                      "steps_median_ms": {k: round(1000 * statistics.median(v), 2) for k, v in steps.items()},
                      "tensors_recorded": len(trace)}, indent=2))


if __name__ == "__main__":
    main()
