"""jamba-tiny: a small character-level Jamba hybrid (Mamba + attention + MoE) that is exactly
transformers' JambaForCausalLM, its config, its shipped weights, how they are read, and its
transformers folder (config.json + model.safetensors).

Shape: Jamba-v0.1's pattern scaled down to 4 layers of d_model 64. One attention layer in four
(attn_layer_period 4, offset 2: layers 0, 1, 3 are Mamba, layer 2 attention, 4 query heads
sharing 2 KV heads, no positional encoding, as Jamba); a mixture-of-experts feed-forward every
other layer (expert_layer_period 2, offset 1: layers 1 and 3, 4 SwiGLU experts of width 128,
top-2, the softmax weights left unnormalised as JambaTopKRouter does), a dense SwiGLU MLP of
width 128 on the others. The Mamba mixers are Mamba-1 (d_state 16, d_conv 4, expand 2, dt_rank 4)
with Jamba's RMSNorms on Δ, B and C. RMSNorm (eps 1e-6) everywhere; the output head is its own
matrix (Jamba does not tie it); the moe_corpus alphabet, 96 symbols, no padding row.

transformers runs it on its torch path (no mamba-ssm kernels on CPU; the sequential scan), which is
what jamba_trace.py recomputes number by number. The weights file is the state dict under
transformers' names, so the exported folder copies it as it is. Nothing here imports torch or
transformers at module level.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmviz.models.sim import moe_corpus
from llmviz.models.sim.text_model_files import ALPHABET_VOCAB, TextModelFiles, config_from

MODEL_ID = "jamba-tiny"
# Switch's α: Jamba ships 0.001, which barely moves the router in a run of a few minutes (as moe-4
# and moe-8 found); the config carries it so transformers' own training loss is ours.
AUX_LOSS_COEF = 0.01


@dataclass(frozen=True)
class JambaTinyConfig:
    # field names follow the spec's (architecture.n_kv_heads, moe.top_k, ssm.d_state, ...)
    n_layers: int = 4
    d_model: int = 64
    n_heads: int = 4
    n_kv_heads: int = 2
    d_ff: int = 128                 # the dense MLP's width and every expert's (Jamba's intermediate_size)
    n_experts: int = 4
    top_k: int = 2
    attn_layer_period: int = 4
    attn_layer_offset: int = 2
    expert_layer_period: int = 2
    expert_layer_offset: int = 1
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    dt_rank: int = 4                # ceil(d_model / 16), Jamba's "auto"
    vocab_size: int = len(moe_corpus.ALPHABET)
    rms_eps: float = 1e-6           # JambaConfig's default, also on the inner Δ, B, C norms

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def layer_kinds(self) -> list[str]:
        """"attention" or "mamba" per layer (JambaConfig.layers_block_type)."""
        return ["attention" if i % self.attn_layer_period == self.attn_layer_offset else "mamba"
                for i in range(self.n_layers)]

    def moe_layers(self) -> list[bool]:
        """Whether each layer's feed-forward part is the MoE (JambaConfig.layers_num_experts > 1)."""
        return [self.n_experts > 1 and i % self.expert_layer_period == self.expert_layer_offset
                for i in range(self.n_layers)]


# Bounds for a config read from a weights file, checked before anything is built from it
# (weights_file.llmviz_config). The alphabet fixes the vocabulary.
CONFIG_FIELDS = {"n_layers": (int, 1, 12), "d_model": (int, 1, 1024), "n_heads": (int, 1, 64),
                 "n_kv_heads": (int, 1, 64), "d_ff": (int, 1, 4096), "n_experts": (int, 1, 64),
                 "top_k": (int, 1, 64), "attn_layer_period": (int, 1, 64), "attn_layer_offset": (int, 0, 63),
                 "expert_layer_period": (int, 1, 64), "expert_layer_offset": (int, 0, 63),
                 "d_state": (int, 1, 256), "d_conv": (int, 1, 16), "expand": (int, 1, 8), "dt_rank": (int, 1, 256),
                 **ALPHABET_VOCAB, "rms_eps": (float, 1e-12, 1e-1)}


def checked_config(config: dict | JambaTinyConfig | None = None) -> JambaTinyConfig:
    """Our config from a dict (defaults where a field is missing), its sizes consistent."""
    return config_from(JambaTinyConfig, config, lambda c: [
        (c.d_model % c.n_heads, f"n_heads {c.n_heads} does not divide d_model {c.d_model}"),
        (c.n_heads % c.n_kv_heads, f"n_kv_heads {c.n_kv_heads} does not divide n_heads {c.n_heads}"),
        (c.top_k > c.n_experts, f"top_k {c.top_k} exceeds n_experts {c.n_experts}"),
        (c.dt_rank > c.d_model, f"dt_rank {c.dt_rank} exceeds d_model {c.d_model}"),
        (c.attn_layer_offset >= c.attn_layer_period, "attn_layer_offset must be below attn_layer_period"),
        (c.expert_layer_offset >= c.expert_layer_period, "expert_layer_offset must be below expert_layer_period")])


def hf_config_dict(config: dict | JambaTinyConfig | None = None) -> dict:
    """transformers' JambaConfig fields for our config, as plain JSON values (config.json's body)."""
    c = checked_config(config)
    return {
        "vocab_size": c.vocab_size, "hidden_size": c.d_model, "intermediate_size": c.d_ff,
        "num_hidden_layers": c.n_layers, "num_attention_heads": c.n_heads, "num_key_value_heads": c.n_kv_heads,
        "num_experts": c.n_experts, "num_experts_per_tok": c.top_k,
        "attn_layer_period": c.attn_layer_period, "attn_layer_offset": c.attn_layer_offset,
        "expert_layer_period": c.expert_layer_period, "expert_layer_offset": c.expert_layer_offset,
        "mamba_d_state": c.d_state, "mamba_d_conv": c.d_conv, "mamba_expand": c.expand, "mamba_dt_rank": c.dt_rank,
        "mamba_conv_bias": True, "mamba_proj_bias": False, "rms_norm_eps": c.rms_eps, "hidden_act": "silu",
        "tie_word_embeddings": False, "router_aux_loss_coef": AUX_LOSS_COEF, "attention_dropout": 0.0,
        # the training window; Jamba has no positions, so nothing depends on it
        "max_position_embeddings": 64,
        # the torch paths the trace follows: no kernels, no mamba.py, the sequential scan
        "use_mamba_kernels": False, "use_mambapy": False, "use_associative_scan": False, "use_cache": True,
        # no padding token: JambaModel would make its embedding row a frozen zero (padding_idx), and
        # the alphabet's id 0 is the newline. Newline stands in for bos/eos so generate() has one.
        "pad_token_id": None, "bos_token_id": 0, "eos_token_id": 0,
    }


def jamba_config(config: dict | JambaTinyConfig | None = None):
    """transformers.JambaConfig for our config."""
    from transformers import JambaConfig

    return JambaConfig(**hf_config_dict(config))


def our_config(model) -> JambaTinyConfig:
    """Our config read back from a built JambaForCausalLM (what the weights file stores)."""
    hf = model.config
    return JambaTinyConfig(
        n_layers=hf.num_hidden_layers, d_model=hf.hidden_size, n_heads=hf.num_attention_heads,
        n_kv_heads=hf.num_key_value_heads, d_ff=hf.intermediate_size, n_experts=hf.num_experts,
        top_k=hf.num_experts_per_tok, attn_layer_period=hf.attn_layer_period, attn_layer_offset=hf.attn_layer_offset,
        expert_layer_period=hf.expert_layer_period, expert_layer_offset=hf.expert_layer_offset,
        d_state=hf.mamba_d_state, d_conv=hf.mamba_d_conv, expand=hf.mamba_expand, dt_rank=int(hf.mamba_dt_rank),
        vocab_size=hf.vocab_size, rms_eps=float(hf.rms_norm_eps))


def state_shapes(config: dict | JambaTinyConfig | None = None) -> dict[str, tuple[int, ...]]:
    """The weights file's tensors and shapes under transformers' names (modeling_jamba.py): in_proj
    gives x then z, x_proj Δ-low then B then C; an MoE's experts are fused, gate_up_proj (E, 2·d_ff, c)
    holding each expert's gate rows then its up rows, down_proj (E, c, d_ff)."""
    c = checked_config(config)
    d, f, inner, hd = c.d_model, c.d_ff, c.d_inner, c.head_dim
    shapes = {"model.embed_tokens.weight": (c.vocab_size, d)}
    for i, (kind, moe) in enumerate(zip(c.layer_kinds(), c.moe_layers())):
        p = f"model.layers.{i}"
        if kind == "attention":
            a = f"{p}.self_attn"
            shapes.update({f"{a}.q_proj.weight": (c.n_heads * hd, d), f"{a}.k_proj.weight": (c.n_kv_heads * hd, d),
                           f"{a}.v_proj.weight": (c.n_kv_heads * hd, d), f"{a}.o_proj.weight": (d, c.n_heads * hd)})
        else:
            m = f"{p}.mamba"
            shapes.update({
                f"{m}.A_log": (inner, c.d_state), f"{m}.D": (inner,), f"{m}.conv1d.weight": (inner, 1, c.d_conv),
                f"{m}.conv1d.bias": (inner,), f"{m}.in_proj.weight": (2 * inner, d),
                f"{m}.x_proj.weight": (c.dt_rank + 2 * c.d_state, inner), f"{m}.dt_proj.weight": (inner, c.dt_rank),
                f"{m}.dt_proj.bias": (inner,), f"{m}.out_proj.weight": (d, inner),
                f"{m}.dt_layernorm.weight": (c.dt_rank,), f"{m}.b_layernorm.weight": (c.d_state,),
                f"{m}.c_layernorm.weight": (c.d_state,)})
        ff = f"{p}.feed_forward"
        if moe:
            shapes.update({f"{ff}.router.weight": (c.n_experts, d),
                           f"{ff}.experts.gate_up_proj": (c.n_experts, 2 * f, d),
                           f"{ff}.experts.down_proj": (c.n_experts, d, f)})
        else:
            shapes.update({f"{ff}.gate_proj.weight": (f, d), f"{ff}.up_proj.weight": (f, d),
                           f"{ff}.down_proj.weight": (d, f)})
        shapes.update({f"{p}.input_layernorm.weight": (d,), f"{p}.pre_ff_layernorm.weight": (d,)})
    shapes.update({"model.final_layernorm.weight": (d,), "lm_head.weight": (c.vocab_size, d)})
    return shapes


def build_model(config: dict | JambaTinyConfig | None = None):
    """A fresh JambaForCausalLM (transformers' init, from torch's global generator), float32, eval mode."""
    from transformers import JambaForCausalLM
    from transformers.utils import logging as hf_logging

    # transformers 5 says use_mamba_kernels=False "has no effect" when a Mamba layer is built (on CPU the torch
    # path is taken anyway); the field stays in config.json for other versions, the notice out of the terminal.
    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return JambaForCausalLM(jamba_config(config)).float().eval()
    finally:
        hf_logging.set_verbosity(previous)


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


# ---- weights on disk ---------------------------------------------------------------------

# The head is its own matrix (Jamba does not tie it), so the file is the whole state dict.
FILES = TextModelFiles(MODEL_ID, CONFIG_FIELDS, checked_config, our_config, state_shapes, build_model)
state_tensors, safetensors_bytes, save_safetensors = FILES.state_tensors, FILES.safetensors_bytes, FILES.save
shipped_weights_path, load_weights, load_jamba = FILES.shipped_weights_path, FILES.load_weights, FILES.load_model


# ---- transformers' folder ----------------------------------------------------------------

def export_hf_folder(folder, force: bool = False) -> Path:
    """Writes the trained jamba-tiny to FOLDER as transformers' JambaForCausalLM (`llmviz export-hf
    jamba-tiny`, models/export_hf.py's table); the folder appears whole or not at all. Returns it."""
    from llmviz.models import export_hf

    return export_hf.export(MODEL_ID, folder, force).folder
