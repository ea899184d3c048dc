"""mamba2-tiny: a small character-level Mamba-2 that is exactly transformers' Mamba2ForCausalLM,
its config, its shipped weights, how they are read, and its transformers folder.

Shape: 2 Mamba-2 layers, d_model 64, expand 2 (d_inner 128) in 8 heads of head_dim 16, d_state 16,
one group of B and C, d_conv 4 (the conv runs over x, B and C: 160 channels), RMSNorm, the gated
RMSNorm before out_proj, tied embeddings, the moe_corpus alphabet (96 symbols, no padding).
transformers runs it on its torch path (no CUDA kernels): the chunked SSD scan, with chunk_size 16
so that the scene's and the tests' sequences span several chunks. mamba2_trace.py recomputes it as
the token-by-token recurrence. The weights file is the model's state dict under transformers'
tensor names, so the transformers folder (export_hf_folder) copies it as it is.

The weights file's functions are text_model_files', as for the other transformers-format models.
"""
from __future__ import annotations

from dataclasses import dataclass

from llmviz.models.sim import moe_corpus
from llmviz.models.sim.text_model_files import ALPHABET_VOCAB, TextModelFiles, config_from

MODEL_ID = "mamba2-tiny"
LOADER = "llmviz.models.sim.mamba2_model:load_weights"   # what export_hf calls to read the weights


@dataclass(frozen=True)
class Mamba2TinyConfig:
    n_layers: int = 2
    d_model: int = 64
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    head_dim: int = 16
    n_groups: int = 1
    # Positions per SSD chunk in transformers' scan; only the rounding depends on it. Small, so
    # that a sequence of a few dozen characters crosses chunk boundaries (the inter-chunk recurrence).
    chunk_size: int = 16
    vocab_size: int = len(moe_corpus.ALPHABET)
    rms_eps: float = 1e-5

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def n_heads(self) -> int:
        return self.d_inner // self.head_dim

    @property
    def conv_dim(self) -> int:
        """The conv's channels: x (d_inner), then B and C (n_groups · d_state each)."""
        return self.d_inner + 2 * self.n_groups * self.d_state


# Bounds for a config read from a weights file, checked before anything is built from it
# (weights_file.llmviz_config). The alphabet fixes the vocabulary.
CONFIG_FIELDS = {"n_layers": (int, 1, 12), "d_model": (int, 1, 1024), "d_state": (int, 1, 256),
                 "d_conv": (int, 1, 16), "expand": (int, 1, 8), "head_dim": (int, 1, 1024),
                 "n_groups": (int, 1, 64), "chunk_size": (int, 1, 4096), **ALPHABET_VOCAB,
                 "rms_eps": (float, 1e-12, 1e-1)}


def _problems(c: Mamba2TinyConfig):
    yield c.d_inner % c.head_dim, f"head_dim {c.head_dim} does not divide d_inner {c.d_inner}"
    # reached only when head_dim divides d_inner, so that n_heads means what it says
    yield c.n_heads % c.n_groups, f"n_groups {c.n_groups} does not divide the {c.n_heads} heads"


def checked_config(config: dict | Mamba2TinyConfig | None = None) -> Mamba2TinyConfig:
    """Our config from a dict (defaults where a field is missing); head_dim must divide d_inner
    and n_groups the heads (each group's B and C serve n_heads / n_groups heads)."""
    return config_from(Mamba2TinyConfig, config, _problems)


def mamba2_config(config: dict | Mamba2TinyConfig | None = None):
    """transformers.Mamba2Config for our config."""
    from transformers import Mamba2Config

    c = checked_config(config)
    return Mamba2Config(
        vocab_size=c.vocab_size, hidden_size=c.d_model, state_size=c.d_state, num_hidden_layers=c.n_layers,
        layer_norm_epsilon=c.rms_eps, expand=c.expand, conv_kernel=c.d_conv, head_dim=c.head_dim,
        num_heads=c.n_heads, n_groups=c.n_groups, chunk_size=c.chunk_size,
        use_bias=False, use_conv_bias=True, hidden_act="silu", residual_in_fp32=True,
        rescale_prenorm_residual=False, tie_word_embeddings=True,
        # the alphabet has no special tokens: newline (0) stands in so generate() has something
        pad_token_id=0, bos_token_id=0, eos_token_id=0)


def our_config(model) -> Mamba2TinyConfig:
    """Our config read back from a built Mamba2ForCausalLM (what the weights file stores)."""
    hf = model.config
    return Mamba2TinyConfig(n_layers=hf.num_hidden_layers, d_model=hf.hidden_size, d_state=hf.state_size,
                            d_conv=hf.conv_kernel, expand=hf.expand, head_dim=hf.head_dim, n_groups=hf.n_groups,
                            chunk_size=hf.chunk_size, vocab_size=hf.vocab_size,
                            rms_eps=float(hf.layer_norm_epsilon))


def state_shapes(config: dict | Mamba2TinyConfig | None = None) -> dict[str, tuple[int, ...]]:
    """The weights file's tensors and shapes, under transformers' names (mamba2.py's layout: in_proj
    gives z, then x·B·C, then Δ per head); lm_head is tied, so absent."""
    c = checked_config(config)
    shapes = {"backbone.embeddings.weight": (c.vocab_size, c.d_model)}
    for i in range(c.n_layers):
        m = f"backbone.layers.{i}.mixer"
        shapes.update({
            f"backbone.layers.{i}.norm.weight": (c.d_model,), f"{m}.dt_bias": (c.n_heads,),
            f"{m}.A_log": (c.n_heads,), f"{m}.D": (c.n_heads,),
            f"{m}.conv1d.weight": (c.conv_dim, 1, c.d_conv), f"{m}.conv1d.bias": (c.conv_dim,),
            f"{m}.in_proj.weight": (c.d_inner + c.conv_dim + c.n_heads, c.d_model),
            f"{m}.norm.weight": (c.d_inner,), f"{m}.out_proj.weight": (c.d_model, c.d_inner)})
    shapes["backbone.norm_f.weight"] = (c.d_model,)
    return shapes


def build_model(config: dict | Mamba2TinyConfig | None = None):
    """A fresh Mamba2ForCausalLM (transformers' init, from torch's global generator), float32, eval mode."""
    from transformers import Mamba2ForCausalLM

    return Mamba2ForCausalLM(mamba2_config(config)).float().eval()


# ---- weights on disk ---------------------------------------------------------------------

# The head is tied to backbone.embeddings.weight: the file holds that matrix once (transformers re-ties it).
FILES = TextModelFiles(MODEL_ID, CONFIG_FIELDS, checked_config, our_config, state_shapes, build_model,
                       tied_head=("lm_head.weight", "backbone.embeddings.weight"))
state_tensors, safetensors_bytes, save_safetensors = FILES.state_tensors, FILES.safetensors_bytes, FILES.save
shipped_weights_path, load_weights, load_mamba2 = FILES.shipped_weights_path, FILES.load_weights, FILES.load_model


# ---- the transformers folder ---------------------------------------------------------------


def export_hf_folder(folder, force: bool = False, registry=None):
    """Writes the shipped mamba2-tiny to FOLDER as config.json + model.safetensors that
    Mamba2ForCausalLM.from_pretrained loads: `llmviz export-hf mamba2-tiny` (models/export_hf.py, whose
    table has it); an export_hf.Exported."""
    from llmviz.models import export_hf

    return export_hf.export(MODEL_ID, folder, force, registry)
