"""rwkv-tiny: a small character-level RWKV-4 that is exactly transformers' RwkvForCausalLM, its
config, its shipped weights, how they are read, and the transformers folder it exports to.

Shape: 2 RWKV-4 blocks, d_model 64 (attention_hidden_size 64: our inventory draws the
receptance/key/value/output matrices as d_model × d_model), channel-mix width 256, training
context 64, LayerNorm (eps 1e-5) with RWKV's extra LayerNorm after the embedding (ln0,
transformers' blocks.0.pre_ln), an untied output head (transformers' default and RWKV-4's),
the moe_corpus alphabet (96 symbols, no padding). transformers runs it on its CPU path
(rwkv_linear_attention_cpu; the CUDA kernel is never loaded on a CPU), which the trace in
rwkv_trace.py recomputes number by number. The weights file is the model's state dict under
transformers' tensor names, so the export copies it as it is.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from importlib.resources import files
from pathlib import Path

from llmviz.models.export_hf import RWKV_CONSTANTS, Exported
from llmviz.models.sim import moe_corpus

MODEL_ID = "rwkv-tiny"
SHIPPED_WEIGHTS = ("weights", f"{MODEL_ID}.safetensors")
LN_EPS = 1e-5  # fixed: transformers' final LayerNorm (ln_out) ignores layer_norm_epsilon and uses 1e-5


@dataclass(frozen=True)
class RwkvTinyConfig:
    # field names are the spec's (export_hf reads model.cfg.<spec field>)
    n_layers: int = 2
    d_model: int = 64
    d_ff: int = 256
    context_length: int = 64      # the training window; the recurrent form runs any length
    vocab_size: int = len(moe_corpus.ALPHABET)

    @property
    def ln_eps(self) -> float:
        return LN_EPS


# Bounds for a config read from a weights file, checked before anything is built from it
# (weights_file.llmviz_config). The alphabet fixes the vocabulary.
CONFIG_FIELDS = {"n_layers": (int, 1, 12), "d_model": (int, 1, 1024), "d_ff": (int, 1, 8192),
                 "context_length": (int, 1, 1 << 20),
                 "vocab_size": (int, len(moe_corpus.ALPHABET), len(moe_corpus.ALPHABET))}


def checked_config(config: dict | RwkvTinyConfig | None = None) -> RwkvTinyConfig:
    """Our config from a dict (defaults where a field is missing)."""
    if isinstance(config, RwkvTinyConfig):
        return config
    known = {f.name for f in fields(RwkvTinyConfig)}
    unknown = sorted(set(config or {}) - known)
    if unknown:
        raise ValueError(f"config: unknown field {unknown[0]!r}; known: {', '.join(sorted(known))}")
    return RwkvTinyConfig(**(config or {}))


def rwkv_config(config: dict | RwkvTinyConfig | None = None):
    """transformers.RwkvConfig for our config."""
    from transformers import RwkvConfig

    c = checked_config(config)
    return RwkvConfig(vocab_size=c.vocab_size, context_length=c.context_length, hidden_size=c.d_model,
                      num_hidden_layers=c.n_layers, attention_hidden_size=c.d_model, intermediate_size=c.d_ff,
                      layer_norm_epsilon=c.ln_eps, **RWKV_CONSTANTS)


def our_config(model) -> RwkvTinyConfig:
    """Our config read back from a built RwkvForCausalLM (what the weights file stores)."""
    hf = model.config
    if hf.attention_hidden_size != hf.hidden_size:
        raise ValueError(f"rwkv-tiny needs attention_hidden_size = hidden_size, got {hf.attention_hidden_size}")
    return RwkvTinyConfig(n_layers=hf.num_hidden_layers, d_model=hf.hidden_size, d_ff=hf.intermediate_size,
                          context_length=hf.context_length, vocab_size=hf.vocab_size)


def state_shapes(config: dict | RwkvTinyConfig | None = None) -> dict[str, tuple[int, ...]]:
    """The weights file's tensors and shapes, under transformers' names. The token-shift mixes are
    (1, 1, d_model) as transformers stores them; ln0 lives in block 0 as pre_ln."""
    c = checked_config(config)
    d, f = c.d_model, c.d_ff
    shapes = {"rwkv.embeddings.weight": (c.vocab_size, d),
              "rwkv.blocks.0.pre_ln.weight": (d,), "rwkv.blocks.0.pre_ln.bias": (d,)}
    for i in range(c.n_layers):
        b, a, m = f"rwkv.blocks.{i}", f"rwkv.blocks.{i}.attention", f"rwkv.blocks.{i}.feed_forward"
        shapes.update({
            f"{b}.ln1.weight": (d,), f"{b}.ln1.bias": (d,), f"{b}.ln2.weight": (d,), f"{b}.ln2.bias": (d,),
            f"{a}.time_decay": (d,), f"{a}.time_first": (d,), f"{a}.time_mix_key": (1, 1, d),
            f"{a}.time_mix_value": (1, 1, d), f"{a}.time_mix_receptance": (1, 1, d),
            f"{a}.key.weight": (d, d), f"{a}.value.weight": (d, d), f"{a}.receptance.weight": (d, d),
            f"{a}.output.weight": (d, d),
            f"{m}.time_mix_key": (1, 1, d), f"{m}.time_mix_receptance": (1, 1, d),
            f"{m}.key.weight": (f, d), f"{m}.receptance.weight": (d, d), f"{m}.value.weight": (d, f)})
    shapes.update({"rwkv.ln_out.weight": (d,), "rwkv.ln_out.bias": (d,), "head.weight": (c.vocab_size, d)})
    return shapes


def build_model(config: dict | RwkvTinyConfig | None = None):
    """A fresh RwkvForCausalLM (transformers' RWKV init, from torch's global generator), float32, eval mode."""
    from transformers import RwkvForCausalLM

    model = RwkvForCausalLM(rwkv_config(config)).float()
    return model.eval()


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


# ---- weights on disk ---------------------------------------------------------------------

def state_tensors(model) -> dict:
    """The tensors a weights file holds: the whole state dict (nothing is tied)."""
    return {k: v.detach().contiguous() for k, v in model.state_dict().items()}


def safetensors_bytes(model, info: dict) -> bytes:
    """The file's bytes; one metadata key of sorted JSON so identical trainings write identical bytes."""
    from safetensors.torch import save

    return save(state_tensors(model), metadata={"llmviz": json.dumps(info, sort_keys=True)})


def save_safetensors(model, path, extra_metadata: dict | None = None) -> None:
    """Writes the weights through llmviz.common.atomic: the old file stays whole if anything fails."""
    from llmviz.common.atomic import write_atomic

    info = {"model": MODEL_ID, "config": asdict(our_config(model)), **(extra_metadata or {})}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, safetensors_bytes(model, info))


def shipped_weights_path():
    """The bundled weights as an importlib.resources Traversable (works from a wheel too)."""
    return files("llmviz.assets").joinpath(*SHIPPED_WEIGHTS)


class RwkvWeights:
    """A weights file's contents, checked, without a transformers model: `cfg` (our config) and
    `state_dict()` under transformers' names. weights_file.load_checked builds it twice: first on
    torch's meta device for the expected shapes (state_shapes), then to receive the tensors."""

    def __init__(self, cfg: RwkvTinyConfig):
        import torch

        self.cfg = cfg
        self._state = {name: torch.empty(shape) for name, shape in state_shapes(cfg).items()}

    def state_dict(self) -> dict:
        return dict(self._state)

    def load_state_dict(self, state: dict) -> None:
        if set(state) != set(self._state):
            raise ValueError(f"tensors {sorted(set(state) ^ set(self._state))} do not fit rwkv-tiny")
        self._state = dict(state)

    def eval(self) -> "RwkvWeights":
        return self


def load_weights(path=None) -> RwkvWeights:
    """The shipped weights, or a file from train_rwkv, checked (weights_file.py: size, header,
    config, names, shapes, finite values) — needs no transformers."""
    from llmviz.models.sim.weights_file import load_checked

    source = shipped_weights_path() if path is None else Path(path)
    name = f"shipped weights {SHIPPED_WEIGHTS[1]}" if path is None else str(path)
    return load_checked(source, lambda c: RwkvWeights(checked_config(c)), CONFIG_FIELDS, name)


def load_rwkv(path=None):
    """The trained rwkv-tiny as a transformers RwkvForCausalLM, in eval mode (see load_weights)."""
    import torch

    weights = load_weights(path)
    with torch.random.fork_rng(devices=[]):  # building draws an init we overwrite: leave the caller's RNG be
        model = build_model(weights.cfg)
    model.load_state_dict(weights.state_dict(), strict=True)
    return model.eval()


# ---- transformers folder -----------------------------------------------------------------

def export_hf_folder(folder, force: bool = False, registry=None) -> Exported:
    """Writes rwkv-tiny to FOLDER as transformers' RwkvForCausalLM (config.json + model.safetensors):
    `llmviz export-hf rwkv-tiny` (models/export_hf.py, whose table has it); an export_hf.Exported."""
    from llmviz.models import export_hf

    return export_hf.export(MODEL_ID, folder, force, registry)
