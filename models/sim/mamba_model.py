"""mamba-tiny: a small character-level Mamba-1 that is exactly transformers' MambaForCausalLM,
its config, its shipped weights and how they are read.

Shape: 2 Mamba layers, d_model 64, d_state 16, d_conv 4, expand 2 (d_inner 128), dt_rank
ceil(64/16) = 4, RMSNorm, tied embeddings, the moe_corpus alphabet (96 symbols, no padding).
transformers runs it on its slow torch path (no CUDA kernels, use_mambapy off), which is also
what the trace in mamba_trace.py recomputes number by number. The weights file is the model's
state dict under transformers' tensor names, so `llmviz export-hf` copies it as it is.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from importlib.resources import files
from pathlib import Path

from llmviz.models.sim import moe_corpus

MODEL_ID = "mamba-tiny"
SHIPPED_WEIGHTS = ("weights", f"{MODEL_ID}.safetensors")


@dataclass(frozen=True)
class MambaTinyConfig:
    n_layers: int = 2
    d_model: int = 64
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    dt_rank: int = 4              # ceil(d_model / 16), mamba_simple.py's "auto"
    vocab_size: int = len(moe_corpus.ALPHABET)
    rms_eps: float = 1e-5

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model


# Bounds for a config read from a weights file, checked before anything is built from it
# (weights_file.llmviz_config). The alphabet fixes the vocabulary.
CONFIG_FIELDS = {"n_layers": (int, 1, 12), "d_model": (int, 1, 1024), "d_state": (int, 1, 256),
                 "d_conv": (int, 1, 16), "expand": (int, 1, 8), "dt_rank": (int, 1, 256),
                 "vocab_size": (int, len(moe_corpus.ALPHABET), len(moe_corpus.ALPHABET)),
                 "rms_eps": (float, 1e-12, 1e-1)}


def checked_config(config: dict | MambaTinyConfig | None = None) -> MambaTinyConfig:
    """Our config from a dict (defaults where a field is missing); dt_rank may not exceed d_model."""
    if isinstance(config, MambaTinyConfig):
        cfg = config
    else:
        known = {f.name for f in fields(MambaTinyConfig)}
        unknown = sorted(set(config or {}) - known)
        if unknown:
            raise ValueError(f"config: unknown field {unknown[0]!r}; known: {', '.join(sorted(known))}")
        cfg = MambaTinyConfig(**(config or {}))
    if cfg.dt_rank > cfg.d_model:
        raise ValueError(f"config: dt_rank {cfg.dt_rank} exceeds d_model {cfg.d_model}")
    return cfg


def mamba_config(config: dict | MambaTinyConfig | None = None):
    """transformers.MambaConfig for our config."""
    from transformers import MambaConfig

    c = checked_config(config)
    return MambaConfig(
        vocab_size=c.vocab_size, hidden_size=c.d_model, state_size=c.d_state, num_hidden_layers=c.n_layers,
        layer_norm_epsilon=c.rms_eps, expand=c.expand, conv_kernel=c.d_conv, time_step_rank=c.dt_rank,
        use_bias=False, use_conv_bias=True, hidden_act="silu", residual_in_fp32=True, tie_word_embeddings=True,
        # the slow torch scan, the one the trace follows; no mamba.py, no torch.compile scan
        use_mambapy=False, use_associative_scan=False,
        # the alphabet has no special tokens: newline (0) stands in so generate() has something
        pad_token_id=0, bos_token_id=0, eos_token_id=0)


def our_config(model) -> MambaTinyConfig:
    """Our config read back from a built MambaForCausalLM (what the weights file stores)."""
    hf = model.config
    return MambaTinyConfig(n_layers=hf.num_hidden_layers, d_model=hf.hidden_size, d_state=hf.state_size,
                           d_conv=hf.conv_kernel, expand=hf.expand, dt_rank=int(hf.time_step_rank),
                           vocab_size=hf.vocab_size, rms_eps=float(hf.layer_norm_epsilon))


def state_shapes(config: dict | MambaTinyConfig | None = None) -> dict[str, tuple[int, ...]]:
    """The weights file's tensors and shapes, under transformers' names (mamba_simple.py's layout:
    in_proj gives x then z, x_proj gives dt_low then B then C); lm_head is tied, so absent."""
    c = checked_config(config)
    shapes = {"backbone.embeddings.weight": (c.vocab_size, c.d_model)}
    for i in range(c.n_layers):
        m = f"backbone.layers.{i}.mixer"
        shapes.update({
            f"backbone.layers.{i}.norm.weight": (c.d_model,), f"{m}.A_log": (c.d_inner, c.d_state),
            f"{m}.D": (c.d_inner,), f"{m}.conv1d.weight": (c.d_inner, 1, c.d_conv), f"{m}.conv1d.bias": (c.d_inner,),
            f"{m}.in_proj.weight": (2 * c.d_inner, c.d_model),
            f"{m}.x_proj.weight": (c.dt_rank + 2 * c.d_state, c.d_inner),
            f"{m}.dt_proj.weight": (c.d_inner, c.dt_rank), f"{m}.dt_proj.bias": (c.d_inner,),
            f"{m}.out_proj.weight": (c.d_model, c.d_inner)})
    shapes["backbone.norm_f.weight"] = (c.d_model,)
    return shapes


def build_model(config: dict | MambaTinyConfig | None = None):
    """A fresh MambaForCausalLM (transformers' init, from torch's global generator), float32, eval mode."""
    from transformers import MambaForCausalLM

    model = MambaForCausalLM(mamba_config(config)).float()
    return model.eval()


def parameter_count(model) -> int:
    """Distinct parameters: the tied lm_head is the embedding, counted once (as torch lists it)."""
    return sum(p.numel() for p in model.parameters())


# ---- weights on disk ---------------------------------------------------------------------

def state_tensors(model) -> dict:
    """The tensors a weights file holds: the state dict without lm_head.weight, which is tied to
    backbone.embeddings.weight (safetensors refuses two names for one storage; transformers re-ties
    it on load)."""
    return {k: v.detach().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}


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


class MambaWeights:
    """A weights file's contents, checked, without a transformers model: `cfg` (our config) and
    `state_dict()` under transformers' names. weights_file.load_checked builds it twice: first on
    torch's meta device for the expected shapes (state_shapes), then to receive the tensors."""

    def __init__(self, cfg: MambaTinyConfig):
        import torch

        self.cfg = cfg
        self._state = {name: torch.empty(shape) for name, shape in state_shapes(cfg).items()}

    def state_dict(self) -> dict:
        return dict(self._state)

    def load_state_dict(self, state: dict) -> None:
        if set(state) != set(self._state):
            raise ValueError(f"tensors {sorted(set(state) ^ set(self._state))} do not fit mamba-tiny")
        self._state = dict(state)

    def eval(self) -> "MambaWeights":
        return self


def load_weights(path=None) -> MambaWeights:
    """The shipped weights, or a file from `llmviz train mamba-tiny`, checked (weights_file.py: size,
    header, config, names, shapes, finite values) — needs no transformers."""
    from llmviz.models.sim.weights_file import load_checked

    source = shipped_weights_path() if path is None else Path(path)
    name = f"shipped weights {SHIPPED_WEIGHTS[1]}" if path is None else str(path)
    return load_checked(source, lambda c: MambaWeights(checked_config(c)), CONFIG_FIELDS, name)


def load_mamba(path=None):
    """The trained mamba-tiny as a transformers MambaForCausalLM, in eval mode (see load_weights)."""
    import torch

    weights = load_weights(path)
    with torch.random.fork_rng(devices=[]):  # building draws an init we overwrite: leave the caller's RNG be
        model = build_model(weights.cfg)
    missing, unexpected = model.load_state_dict(weights.state_dict(), strict=False)
    if unexpected or set(missing) != {"lm_head.weight"}:
        raise RuntimeError(f"mamba-tiny weights: missing {missing}, unexpected {unexpected}")
    model.tie_weights()  # the head is the embedding, as the file (which holds it once) means
    if model.lm_head.weight.data_ptr() != model.backbone.embeddings.weight.data_ptr():
        raise RuntimeError("mamba-tiny: lm_head is not tied to the embedding after loading")
    return model.eval()
