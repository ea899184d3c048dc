"""Weights on disk for a small text model built as a transformers architecture (mamba-tiny, mamba2-tiny,
rwkv-tiny, jamba-tiny): its state dict under transformers' own tensor names, our config as sorted JSON in
the safetensors metadata, and reading it back checked (weights_file.py) with or without transformers.

A model module describes itself once (TextModelFiles: its id, config checks, tensor shapes, builder, and
whether its head is the embedding) and takes its file functions from it, so the four formats cannot drift
apart. Nothing here imports torch, safetensors or transformers at module level: exporting or checking a
file must work where transformers is not installed.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from importlib.resources import files
from pathlib import Path
from typing import Callable

from llmviz.models.sim import moe_corpus

# CONFIG_FIELDS' entry for the vocabulary: the moe_corpus alphabet fixes it (no padding row).
ALPHABET_VOCAB = {"vocab_size": (int, len(moe_corpus.ALPHABET), len(moe_corpus.ALPHABET))}


def config_from(cls, config, problems: Callable = lambda cfg: ()):
    """Our config dataclass `cls` from a dict (defaults where a field is missing, an unknown field refused)
    or an instance as it is; `problems(cfg)` yields (bad, message) pairs, the first bad one raised."""
    if isinstance(config, cls):
        cfg = config
    else:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config or {}) - known)
        if unknown:
            raise ValueError(f"config: unknown field {unknown[0]!r}; known: {', '.join(sorted(known))}")
        cfg = cls(**(config or {}))
    for bad, message in problems(cfg):
        if bad:
            raise ValueError(f"config: {message}")
    return cfg


class Weights:
    """A weights file's contents, checked, without a transformers model: `cfg` (our config) and
    `state_dict()` under transformers' names. weights_file.load_checked builds it twice: first on
    torch's meta device for the expected shapes, then to receive the tensors."""

    def __init__(self, model_id: str, cfg, shapes: dict[str, tuple[int, ...]]):
        import torch

        self.model_id, self.cfg = model_id, cfg
        self._state = {name: torch.empty(shape) for name, shape in shapes.items()}

    def state_dict(self) -> dict:
        return dict(self._state)

    def load_state_dict(self, state: dict) -> None:
        if set(state) != set(self._state):
            raise ValueError(f"tensors {sorted(set(state) ^ set(self._state))} do not fit {self.model_id}")
        self._state = dict(state)

    def eval(self) -> "Weights":
        return self


@dataclass(frozen=True)
class TextModelFiles:
    """One model's weights file and loaders; the model module exports these bound methods as its
    state_tensors, safetensors_bytes, save_safetensors (save), shipped_weights_path, load_weights and
    load_<model> (load_model)."""
    model_id: str
    config_fields: dict                   # CONFIG_FIELDS: the bounds of a config read from a file
    checked_config: Callable              # dict | config | None -> our config, its sizes consistent
    our_config: Callable                  # a built transformers model -> our config (what the file stores)
    state_shapes: Callable                # our config -> {transformers' tensor name: shape}, the file's tensors
    build_model: Callable                 # our config -> a fresh transformers model, float32, eval mode
    # (head, embedding) where the output head is the embedding matrix: the file holds it once, under the
    # embedding's name (safetensors refuses two names for one storage), and loading re-ties it
    tied_head: tuple[str, str] | None = None

    def state_tensors(self, model) -> dict:
        """The tensors a weights file holds: the state dict, float32 (the only dtype load_weights takes),
        without the tied head."""
        skip = self.tied_head[0] if self.tied_head else None
        return {k: v.detach().float().contiguous() for k, v in model.state_dict().items() if k != skip}

    def safetensors_bytes(self, model, info: dict) -> bytes:
        """The file's bytes; one metadata key of sorted JSON so identical trainings write identical bytes."""
        from safetensors.torch import save

        return save(self.state_tensors(model), metadata={"llmviz": json.dumps(info, sort_keys=True)})

    def save(self, model, path, extra_metadata: dict | None = None) -> None:
        """Writes the weights through llmviz.common.atomic: the old file stays whole if anything fails."""
        from llmviz.common.atomic import write_atomic

        info = {"model": self.model_id, "config": asdict(self.our_config(model)), **(extra_metadata or {})}
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, self.safetensors_bytes(model, info))

    def shipped_weights_path(self):
        """The bundled weights as an importlib.resources Traversable (works from a wheel too)."""
        return files("llmviz.assets").joinpath("weights", f"{self.model_id}.safetensors")

    def load_weights(self, path=None) -> Weights:
        """The shipped weights, or a file from `llmviz train`, checked (weights_file.py: size, header,
        config, names, shapes, finite values) — needs no transformers."""
        from llmviz.models.sim.weights_file import load_checked

        source = self.shipped_weights_path() if path is None else Path(path)
        name = f"shipped weights {self.model_id}.safetensors" if path is None else str(path)

        def holder(config: dict) -> Weights:
            cfg = self.checked_config(config)
            return Weights(self.model_id, cfg, self.state_shapes(cfg))
        return load_checked(source, holder, self.config_fields, name)

    def load_model(self, path=None):
        """The trained model as its transformers class, in eval mode (see load_weights)."""
        import torch

        weights = self.load_weights(path)
        with torch.random.fork_rng(devices=[]):  # building draws an init we overwrite: leave the caller's RNG be
            model = self.build_model(weights.cfg)
        missing, unexpected = model.load_state_dict(weights.state_dict(), strict=False)
        if unexpected or set(missing) != ({self.tied_head[0]} if self.tied_head else set()):
            raise RuntimeError(f"{self.model_id} weights: missing {missing}, unexpected {unexpected}")
        if self.tied_head:
            model.tie_weights()  # the head is the embedding, as the file (which holds it once) means
            head, embedding = (model.get_parameter(name) for name in self.tied_head)
            if head.data_ptr() != embedding.data_ptr():
                raise RuntimeError(f"{self.model_id}: {self.tied_head[0]} is not tied to the embedding after loading")
        return model.eval()
