"""Benchmark: the retrieval store at scale, and one question answered in the scene.

    .venv/bin/python benchmarks/rag_scale.py docs DIR [N]     writes N one-chunk sections of generated text (default
                                                              10000) into DIR, 40 Markdown files, seeded
    .venv/bin/llmviz rag index DIR assets/rag/invented-people.md --out STORE       (timed with /usr/bin/time -v)
    .venv/bin/python benchmarks/rag_scale.py answer STORE     the scene `rag:STORE` headless: from a new question to
                                                              the frame that shows its answer (prints JSON)

The sections are nonsense on purpose (words drawn from one of 8 topic vocabularies per file, so the PCA shows
clusters): each is a '## ' heading and one paragraph of 200-380 characters, so the default chunk rule (400
characters, a heading opens a chunk) makes exactly one chunk of each. Figures, not assertions.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

FILES, TOPICS = 40, 8
SYLLABLES = ("ka", "lo", "mi", "ren", "sa", "tor", "vel", "un", "dra", "pe", "qui", "zo", "bar", "ith", "mon", "es")
QUESTIONS = ("Where does Idrissa live?", "What does Kolwen do?", "Where does Idrissa work?", "Who is Idrissa?")


def _vocabulary(rng, n: int) -> list[str]:
    return sorted({"".join(rng.choice(SYLLABLES, size=int(rng.integers(1, 4)))) for _ in range(n)})


def write_documents(folder: Path, n: int, seed: int = 0) -> int:
    from llmviz.common.atomic import write_atomic

    rng = np.random.default_rng(seed)
    shared = _vocabulary(rng, 300)
    topics = [_vocabulary(rng, 200) for _ in range(TOPICS)]
    folder.mkdir(parents=True, exist_ok=True)
    per_file = [n // FILES + (i < n % FILES) for i in range(FILES)]
    for f, count in enumerate(per_file):
        words = topics[f % TOPICS] * 3 + shared
        sections = []
        for s in range(count):
            target, text = int(rng.integers(200, 380)), []
            while sum(len(w) + 1 for w in text) < target:
                text.append(str(rng.choice(words)))
            sections.append(f"## Note {f}.{s}\n\n{' '.join(text).capitalize()}.\n")
        write_atomic(folder / f"notes-{f:02d}.md", "\n".join(sections))
    return sum(per_file)


def time_answers(store: str) -> dict:
    """Each question: set on the live session, frames drawn until the view shows its result."""
    from llmviz.engine.runtime import Engine
    from llmviz.scenes.cli.common import headless_renderer
    from llmviz.scenes.registry import build_scene

    renderer = headless_renderer((1280, 720))
    start = time.perf_counter()
    scene = build_scene(f"rag:{store}", renderer)
    engine = Engine(scene.world, scene.start_camera((1280, 720)), renderer)
    scene.attach(engine)
    scene.wait_for_values()
    opened = time.perf_counter() - start
    live, view = scene.live, scene.rag_view
    latencies, frames, worker = [], [], []
    for question in QUESTIONS * 3:
        shown_before = view._shown                    # noqa: SLF001 - the benchmark reads the state
        t, n = time.perf_counter(), 0
        live.ask(question=question)
        while view._shown == shown_before or live.busy:  # noqa: SLF001
            engine.frame(1 / 60)
            renderer.finish()
            n += 1
        latencies.append(time.perf_counter() - t)
        frames.append(n)
        worker.append(live.tick_seconds[-1])
    scene.close()
    return {"store": store, "chunks": view.n_chunks, "scene_open_s": round(opened, 1),
            "question_to_frame_ms_median": round(1e3 * statistics.median(latencies), 1),
            "question_to_frame_ms_max": round(1e3 * max(latencies), 1),
            "worker_ms_median": round(1e3 * statistics.median(worker), 1),
            "frames_drawn_meanwhile_median": statistics.median(frames)}


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) >= 2 and args[0] == "docs":
        n = write_documents(Path(args[1]), int(args[2]) if len(args) > 2 else 10_000)
        print(f"{n} sections in {FILES} files under {args[1]}")
        return 0
    if len(args) == 2 and args[0] == "answer":
        print(json.dumps(time_answers(args[1]), indent=2))
        return 0
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
