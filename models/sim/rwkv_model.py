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

from dataclasses import dataclass

from llmviz.models.export_hf import RWKV_CONSTANTS, Exported
from llmviz.models.sim import moe_corpus
from llmviz.models.sim.text_model_files import ALPHABET_VOCAB, TextModelFiles, config_from

MODEL_ID = "rwkv-tiny"
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
                 "context_length": (int, 1, 1 << 20), **ALPHABET_VOCAB}


def checked_config(config: dict | RwkvTinyConfig | None = None) -> RwkvTinyConfig:
    """Our config from a dict (defaults where a field is missing)."""
    return config_from(RwkvTinyConfig, config)


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

    return RwkvForCausalLM(rwkv_config(config)).float().eval()


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


# ---- weights on disk ---------------------------------------------------------------------

# The head is its own matrix (head.weight), so the file is the whole state dict.
FILES = TextModelFiles(MODEL_ID, CONFIG_FIELDS, checked_config, our_config, state_shapes, build_model)
state_tensors, safetensors_bytes, save_safetensors = FILES.state_tensors, FILES.safetensors_bytes, FILES.save
shipped_weights_path, load_weights, load_rwkv = FILES.shipped_weights_path, FILES.load_weights, FILES.load_model


# ---- transformers folder -----------------------------------------------------------------

def export_hf_folder(folder, force: bool = False, registry=None) -> Exported:
    """Writes rwkv-tiny to FOLDER as transformers' RwkvForCausalLM (config.json + model.safetensors):
    `llmviz export-hf rwkv-tiny` (models/export_hf.py, whose table has it); an export_hf.Exported."""
    from llmviz.models import export_hf

    return export_hf.export(MODEL_ID, folder, force, registry)
