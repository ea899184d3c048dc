"""Benchmark: a new picture through vit-tiny with every intermediate recorded, on one torch thread.

    .venv/bin/python benchmarks/vit_trace.py      (prints JSON)

What the scene's worker does for each new picture (scenes/vit_live.py): read and decode the file (bounded),
prepare it as ViTImageProcessor would, trace every intermediate (models/sim/vit_trace.py), and add the
rollout; per shipped sample, 21 runs after a warm-up. Figures, not assertions.
"""
from __future__ import annotations

import json
import statistics
import time

import torch

from llmviz.models.sim import vit_image, vit_model, vit_trace
from llmviz.scenes.vit_live import SAMPLE_IMAGES, sample_path

RUNS = 21


def main() -> None:
    torch.set_num_threads(1)
    model = vit_model.load_vit()
    size = model.config.image_size
    times = []
    for name in SAMPLE_IMAGES:
        path = str(sample_path(name))
        for run in range(RUNS + 1):
            start = time.perf_counter()
            trace = vit_trace.trace(model, vit_image.preprocess(vit_image.read_image(path), size))
            vit_trace.rollout(trace)
            if run:
                times.append(time.perf_counter() - start)
    print(json.dumps({"runs": len(times), "median_ms": round(1000 * statistics.median(times), 2),
                      "min_ms": round(1000 * min(times), 2), "max_ms": round(1000 * max(times), 2),
                      "tensors_recorded": len(trace)}, indent=2))


if __name__ == "__main__":
    main()
