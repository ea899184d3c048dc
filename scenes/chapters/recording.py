"""A training recording replayed in a chapter: each snapshot loaded and run on its own worker, never on the frame thread.

A chapter that names a recording (``recording = "nano-gpt"``: assets/recordings/nano-gpt, written by
`llmviz train nano-gpt --record`) reads these values in its text, besides the live model's:

  record.loss          the training loss of every step (the curve a step's ``plot`` draws)
  record.steps         the steps the snapshots were taken at
  record.eval_loss     each snapshot's loss on every held-out input, computed here from the snapshot
  record.accuracy      each snapshot's share (%) of all 729 inputs that greedy decoding sorts exactly
  record.correct       1 where the snapshot sorts the chapter's input (the live model's first six letters)
  record.first_correct the step, and record.first_index the snapshot, of the first snapshot that sorts it
  record.input         the six input letters the snapshots are run on
  record.step, .step_loss, .step_eval_loss, .step_accuracy, .output
                       the shown snapshot's step, training loss, held-out loss, accuracy, and the letters it writes

and a step with ``snapshot = K`` (or "first_correct") shows that snapshot's weights and its trace on the
input followed by what that snapshot writes: the blocks, attention patterns included, are its real numbers.
"""
from __future__ import annotations

from collections import ChainMap

import numpy as np

from llmviz.models.sim import sort_task

SUMMARY = "summary"
SNAPSHOT = "snapshot"
RECORD_VALUES = ("record.input", "record.loss", "record.steps", "record.eval_loss", "record.accuracy", "record.correct",
                 "record.first_correct", "record.first_index", "record.step", "record.step_loss",
                 "record.step_eval_loss", "record.step_accuracy", "record.output")
FIRST_CORRECT = "first_correct"


def recording_folder(name: str):
    """The shipped recording of that name (assets/recordings/NAME)."""
    from importlib.resources import files

    return files("llmviz.assets").joinpath("recordings", name)


def replay_compute(folder):
    """Worker-side: load the loss table and every snapshot once, then answer summary and snapshot requests."""
    def make():
        import torch

        from llmviz.models.sim.nanogpt_record import batch_loss, evaluation_batch, load_snapshot, read_losses

        table = read_losses(folder)
        steps = [int(s) for s in table["snapshot_steps"]]
        models = [load_snapshot(folder, s) for s in steps]
        # Greedy decoding writes the sorted answer exactly when, fed the right answer so far, each position's
        # argmax is the right next letter (by induction over the answer): one pass per snapshot, not six.
        every = torch.tensor(sort_task.all_inputs(), dtype=torch.long)
        target = every.sort(dim=1).values
        fed = torch.cat([every, target[:, :-1]], dim=1)
        start = sort_task.INPUT_LENGTH - 1
        accuracy = np.array([100.0 * float((m(fed)[:, start:].argmax(-1) == target).all(dim=1).float().mean())
                             for m in models])
        held = evaluation_batch()
        eval_loss = np.array([batch_loss(m, *held) for m in models])
        loss = table["loss"].astype(np.float64)

        def summary(letters):
            x = torch.tensor([letters], dtype=torch.long)
            correct = np.array([float(bool((m.sort_greedy(x) == x.sort(dim=1).values).all())) for m in models])
            hits = np.flatnonzero(correct)
            first = int(hits[0]) if len(hits) else len(models) - 1
            return {"record.loss": loss, "record.steps": np.array(steps, np.float64), "record.eval_loss": eval_loss,
                    "record.accuracy": accuracy, "record.correct": correct,
                    "record.input": np.array(letters, np.float64),
                    "record.first_correct": np.array([float(steps[first])]),
                    "record.first_index": np.array([float(first)])}

        def snapshot(index, letters):
            model = models[index]
            x = torch.tensor([letters], dtype=torch.long)
            output = model.sort_greedy(x)[0].tolist()
            tokens = list(letters) + output[:-1]  # the context holds 11: the last letter comes from its last row
            step = steps[index]
            extras = {"record.step": np.array([float(step)]),
                      "record.step_loss": np.array([loss[min(step, len(loss) - 1)]]),
                      "record.step_eval_loss": np.array([eval_loss[index]]),
                      "record.step_accuracy": np.array([accuracy[index]]),
                      "record.output": np.array(output, np.float64)}
            return dict(model.trace(tokens)), extras, dict(model.weights())

        def compute(request):
            kind, index, letters = request
            return summary(letters) if kind == SUMMARY else snapshot(index, letters)

        return compute

    return make


class RecordingReplay:
    """The chapter's side of the worker: asks for what a step needs, and hands back what has arrived."""

    def __init__(self, name: str, folder=None):
        self.name = name
        self.folder = folder if folder is not None else recording_folder(name)
        self._runner = None
        self.summaries: dict[tuple, dict] = {}    # input letters -> summary values
        self.snapshots: dict[tuple, tuple] = {}   # (index, letters) -> (trace, extras, weights)
        self._asked: set = set()
        self.version = 0                          # bumped whenever a result arrives
        self.error: str | None = None

    def _ask(self, request) -> None:
        if request in self._asked:
            return
        if self._runner is None:
            from llmviz.models.sim.tick import SimulationRunner

            self._runner = SimulationRunner(replay_compute(self.folder), coalesce=False, name="llmviz-recording")
        self._asked.add(request)
        self._runner.submit(request)

    def _store(self, result) -> None:
        if result.request is None:  # the worker could not start (a broken recording): one line, no retry
            self.error = f"recording {self.name}: {result.error}"
            self.version += 1
            return
        kind, index, letters = result.request
        if result.error:
            self.error = f"recording {self.name}: {result.error}"
        elif kind == SUMMARY:
            self.summaries[letters] = result.value
        else:
            self.snapshots[(index, letters)] = result.value
        self.version += 1

    def poll(self) -> bool:
        """Collect finished results (never blocks); True when something new arrived."""
        results = self._runner.poll() if self._runner is not None else []
        for result in results:
            self._store(result)
        return bool(results)

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until every request made so far has an answer (headless use and tests only)."""
        import time

        deadline = time.monotonic() + timeout
        self.poll()
        while self._runner is not None and self.error is None \
                and len(self.summaries) + len(self.snapshots) < len(self._asked):
            result = self._runner.wait(max(0.0, deadline - time.monotonic()))
            if result is None:
                return False
            self._store(result)
        return self.error is None

    def snapshot_index(self, snapshot, letters: tuple) -> int | None:
        """The snapshot a step names, resolved (negative from the end; "first_correct" from the summary)."""
        summary = self.summaries.get(letters)
        if summary is None:
            return None
        count = len(summary["record.steps"])
        if snapshot == FIRST_CORRECT:
            return int(summary["record.first_index"][0])
        return int(snapshot) % count

    def values(self, live, snapshot) -> ChainMap | None:
        """What a step of the chapter reads: the live values with the record's, and for a ``snapshot`` step
        that snapshot's trace and weights in front; None until they have arrived."""
        if live is None or "tokens" not in live:
            return None
        letters = tuple(int(t) for t in np.ravel(live["tokens"])[:sort_task.INPUT_LENGTH])
        if len(letters) < sort_task.INPUT_LENGTH:
            return None
        self._ask((SUMMARY, None, letters))
        summary = self.summaries.get(letters)
        if summary is None:
            return None
        if snapshot is None:
            return ChainMap(summary, live)
        index = self.snapshot_index(snapshot, letters)
        self._ask((SNAPSHOT, index, letters))
        shown = self.snapshots.get((index, letters))
        if shown is None:
            return None
        trace, extras, weights = shown
        return ChainMap(trace, extras, summary, weights, live)

    def arrays(self, live, snapshot) -> dict | None:
        """tensor id -> array the blocks show for a ``snapshot`` step: the snapshot's weights and its trace."""
        values = self.values(live, snapshot) if snapshot is not None else None
        if values is None:
            return None
        trace, _, _, weights, _ = values.maps
        return {**weights, **trace}

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
