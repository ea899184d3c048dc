"""A recording of nano-GPT's training: weight snapshots at log-spaced steps and the loss of every step, as safetensors.

`llmviz train nano-gpt --record DIR` writes into DIR:

  loss.safetensors          "loss" (steps,) float32: the training batch's loss at every step;
                            "snapshot_steps" (n,) int32: the steps the snapshots were taken at;
                            "snapshot_loss" (n,) float32: each stored snapshot's loss on the evaluation batch
                            (every held-out input, the whole sorted answer scored), computed from the stored
                            float16 weights, so that loading a snapshot reproduces it
  step-NNNNN.safetensors    the weights after NNNNN optimizer steps, in float16 (half the bytes; nano-GPT's
                            86K weights make 173 KB a snapshot)

A snapshot at step s holds the weights the forward pass of step s used, so its loss on that step's batch is
the recorded loss[s] (up to float16's rounding). Reading is bounded and checked like a weights file
(models/sim/weights_file.py): size, header, dtype, shapes, finite values.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LOSS_FILE = "loss.safetensors"
SNAPSHOT_FILE = "step-{:05d}.safetensors"
SNAPSHOT_COUNT = 20          # snapshots kept (fewer on a short run, where small steps coincide): 3.5 MB for nano-GPT
FIRST_SPACED = 4
MAX_SNAPSHOTS = 64
MAX_RECORDED_STEPS = 1_000_000


def snapshot_steps(steps: int, count: int = SNAPSHOT_COUNT) -> list[int]:
    """0, then ``count - 1`` steps spaced evenly in log(step) from FIRST_SPACED to ``steps`` (the end included):
    learning moves fastest early, so early steps are sampled most densely (the ones before FIRST_SPACED,
    in the learning rate's warm-up, barely move the weights)."""
    if steps < 1:
        raise ValueError("a recording needs at least one step")
    first = min(FIRST_SPACED, steps)
    picked = {0, steps}
    for k in range(count - 1):
        picked.add(int(round(first * (steps / first) ** (k / max(1, count - 2)))))
    return sorted(picked)


def evaluation_batch():
    """Every held-out input with its sorted answer as targets (the inputs never trained on)."""
    import torch

    from llmviz.models.sim import sort_task

    _, held = sort_task.split_inputs()
    pairs = [sort_task.example(x) for x in held]
    return (torch.tensor([p[0] for p in pairs], dtype=torch.long),
            torch.tensor([p[1] for p in pairs], dtype=torch.long))


def batch_loss(model, xs, ys) -> float:
    """Mean cross-entropy over the answer positions (the loss training minimises)."""
    import torch
    import torch.nn.functional as F

    from llmviz.models.sim import sort_task

    with torch.inference_mode():
        logits = model(xs)
        return float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ys.reshape(-1),
                                     ignore_index=sort_task.IGNORE_INDEX))


def half_state(model) -> dict:
    """The model's weights rounded to float16, as stored."""
    import torch

    return {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}


class Recorder:
    """Collects a training run: ``loss(step, value)`` every step, ``snapshot(step, model)`` at the chosen steps."""

    def __init__(self, steps: int, count: int = SNAPSHOT_COUNT):
        self.steps = steps
        self.wanted = snapshot_steps(steps, count)
        self.losses = np.full(steps, np.nan, np.float32)
        self.snapshots: dict[int, dict] = {}
        self.config: dict = {}
        self.snapshot_loss: dict[int, float] = {}
        self._eval = evaluation_batch()

    def loss(self, step: int, value: float) -> None:
        self.losses[step] = value

    def snapshot(self, step: int, model) -> None:
        """Keep the weights if ``step`` is one of the chosen steps (the model is left as it was)."""
        if step not in self.wanted or step in self.snapshots:
            return
        from dataclasses import asdict

        state = half_state(model)
        self.snapshots[step] = state
        self.config = asdict(model.cfg)
        self.snapshot_loss[step] = batch_loss(_model_from(state, model.cfg), *self._eval)

    def write(self, folder, info: dict) -> list[Path]:
        """The recording's files in ``folder`` (each through the one atomic write); returns their paths."""
        import torch
        from safetensors.torch import save

        from llmviz.common.atomic import write_atomic

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        steps = sorted(self.snapshots)
        meta = {"llmviz": json.dumps({"model": "nano-gpt", **info}, sort_keys=True)}
        written = []
        for step in steps:
            path = folder / SNAPSHOT_FILE.format(step)
            write_atomic(path, save(self.snapshots[step], metadata={
                "llmviz": json.dumps({"model": "nano-gpt", "config": self.config, "step": step, **info},
                                     sort_keys=True)}))
            written.append(path)
        tables = {"loss": torch.from_numpy(self.losses.copy()),
                  "snapshot_steps": torch.tensor(steps, dtype=torch.int32),
                  "snapshot_loss": torch.tensor([self.snapshot_loss[s] for s in steps], dtype=torch.float32)}
        path = folder / LOSS_FILE
        write_atomic(path, save(tables, metadata=meta))
        return [path] + written


def _model_from(state: dict, cfg):
    import torch

    from llmviz.models.sim.nanogpt import NanoGPT

    with torch.random.fork_rng(devices=[]):  # its initialisation's draws leave training's random stream as it was
        model = NanoGPT(cfg)
    model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()})
    return model.eval()


# ---- reading a recording ---------------------------------------------------------------------------------

class RecordingError(ValueError):
    """A recording that cannot be used: '<file>: <problem>'."""


def shipped_recording():
    """The bundled recording's folder (assets/recordings/nano-gpt)."""
    from importlib.resources import files

    return files("llmviz.assets").joinpath("recordings", "nano-gpt")


def _tables(data: bytes, name: str, expected: dict) -> dict:
    """The named tensors of a safetensors file's bytes, each of the dtype given and one axis."""
    from safetensors.numpy import load

    from llmviz.models.sim.weights_file import WeightsError, parse_header

    try:
        tensors, _ = parse_header(data, name)
    except WeightsError as err:
        raise RecordingError(str(err)) from None
    for tensor, dtype in expected.items():
        if tensors.get(tensor, (None, ()))[0] != dtype or len(tensors[tensor][1]) != 1:
            raise RecordingError(f"{name}: {tensor!r}: needs a {dtype} vector")
    return {k: v for k, v in load(data).items() if k in expected}


def read_losses(folder) -> dict:
    """The recording's loss table: loss (steps,), snapshot_steps (n,), snapshot_loss (n,), as numpy."""
    from llmviz.models.sim.weights_file import WeightsError, read_bytes

    source = Path(folder) / LOSS_FILE if isinstance(folder, (str, Path)) else folder.joinpath(LOSS_FILE)
    name = str(source)
    try:
        data = read_bytes(source, name)
    except WeightsError as err:
        raise RecordingError(str(err)) from None
    tables = _tables(data, name, {"loss": "F32", "snapshot_steps": "I32", "snapshot_loss": "F32"})
    steps, loss = tables["snapshot_steps"].astype(np.int64), tables["loss"]
    if not 1 <= len(steps) <= MAX_SNAPSHOTS or len(tables["snapshot_loss"]) != len(steps):
        raise RecordingError(f"{name}: 1 to {MAX_SNAPSHOTS} snapshots, one snapshot_loss each")
    if not 1 <= len(loss) <= MAX_RECORDED_STEPS or not np.isfinite(loss).all():
        raise RecordingError(f"{name}: loss must hold 1 to {MAX_RECORDED_STEPS:,} finite values")
    if (np.diff(steps) <= 0).any() or steps[0] < 0 or steps[-1] > len(loss):
        raise RecordingError(f"{name}: snapshot_steps must rise within 0..{len(loss)}")
    return {"loss": loss, "snapshot_steps": steps, "snapshot_loss": tables["snapshot_loss"]}


_SHAPES: dict = {}


def _shapes(key: str, build) -> dict:
    """The model's parameter shapes for a config, found once (20 snapshots share one config)."""
    from llmviz.models.sim.weights_file import expected_shapes

    if key not in _SHAPES:
        _SHAPES[key] = expected_shapes(build)
    return _SHAPES[key]


def load_snapshot(folder, step: int):
    """The NanoGPT of one snapshot (float16 weights widened to float32), checked like a weights file."""
    import torch
    from safetensors.torch import load

    from llmviz.models.sim.nanogpt import CONFIG_FIELDS, NanoGPT, NanoGPTConfig, checked_config
    from llmviz.models.sim.weights_file import WeightsError, check_values, llmviz_config, parse_header, read_bytes

    file = SNAPSHOT_FILE.format(int(step))
    source = Path(folder) / file if isinstance(folder, (str, Path)) else folder.joinpath(file)
    name = str(source)
    try:
        data = read_bytes(source, name)
        tensors, metadata = parse_header(data, name)
        config = llmviz_config(metadata, name, CONFIG_FIELDS)
        build = lambda: NanoGPT(checked_config(NanoGPTConfig, config))  # noqa: E731
        expected = _shapes(json.dumps(config, sort_keys=True), build)
        for tensor, shape in expected.items():
            if tensors.get(tensor) != ("F16", tuple(shape)):
                raise WeightsError(name, f"needs float16 of shape {list(shape)}", tensor)
        if set(tensors) != set(expected):
            raise WeightsError(name, "not a tensor of this model", sorted(set(tensors) - set(expected))[0])
        state = {k: v.to(torch.float32) for k, v in load(data).items()}
        check_values(state, name)
    except WeightsError as err:
        raise RecordingError(str(err)) from None
    model = build()
    model.load_state_dict(state)
    return model.eval()

