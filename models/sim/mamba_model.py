"""mamba-tiny: a small character-level Mamba-1 that is exactly transformers' MambaForCausalLM,
its config, its shipped weights and how they are read.

Shape: 2 Mamba layers, d_model 64, d_state 16, d_conv 4, expand 2 (d_inner 128), dt_rank
ceil(64/16) = 4, RMSNorm, tied embeddings, the moe_corpus alphabet (96 symbols, no padding).
transformers runs it on its slow torch path (no CUDA kernels, use_mambapy off), which is also
what the trace in mamba_trace.py recomputes number by number. The weights file is the model's
state dict under transformers' tensor names, so `llmviz export-hf` copies it as it is.
"""
from __future__ import annotations

from dataclasses import dataclass

from llmviz.models.sim import moe_corpus
from llmviz.models.sim.text_model_files import ALPHABET_VOCAB, TextModelFiles, config_from

MODEL_ID = "mamba-tiny"


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
                 "d_conv": (int, 1, 16), "expand": (int, 1, 8), "dt_rank": (int, 1, 256), **ALPHABET_VOCAB,
                 "rms_eps": (float, 1e-12, 1e-1)}


def checked_config(config: dict | MambaTinyConfig | None = None) -> MambaTinyConfig:
    """Our config from a dict (defaults where a field is missing); dt_rank may not exceed d_model."""
    return config_from(MambaTinyConfig, config,
                       lambda c: [(c.dt_rank > c.d_model, f"dt_rank {c.dt_rank} exceeds d_model {c.d_model}")])


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

    return MambaForCausalLM(mamba_config(config)).float().eval()


def parameter_count(model) -> int:
    """Distinct parameters: the tied lm_head is the embedding, counted once (as torch lists it)."""
    return sum(p.numel() for p in model.parameters())


# ---- weights on disk ---------------------------------------------------------------------

# The head is tied to backbone.embeddings.weight: the file holds that matrix once (transformers re-ties it).
FILES = TextModelFiles(MODEL_ID, CONFIG_FIELDS, checked_config, our_config, state_shapes, build_model,
                       tied_head=("lm_head.weight", "backbone.embeddings.weight"))
state_tensors, safetensors_bytes, save_safetensors = FILES.state_tensors, FILES.safetensors_bytes, FILES.save
shipped_weights_path, load_weights, load_mamba = FILES.shipped_weights_path, FILES.load_weights, FILES.load_model
