"""rag-llama, the retrieval demo's reader: a small Llama (transformers' LlamaForCausalLM, exactly) over the
word vocabulary of reader_vocab, trained here to answer a question from the passages before it and to say
"I don't know." when none of them holds the answer.

Shape: 3 layers of d_model 64, 4 heads of 16 with RoPE, a SwiGLU MLP of width 192, RMSNorm, the head tied
to the embedding (170,240 weights). A Jamba hybrid (jamba-tiny's stack) was tried first: its sequential
scan made a training step five times slower than this on the shared 2-core machine, too slow for the
15-minute budget. Its weights file and loaders are TextModelFiles' (the head stored once, as the
embedding). Nothing here imports torch or transformers at module level.
"""
from __future__ import annotations

from dataclasses import dataclass

from llmviz.models.rag import reader_vocab
from llmviz.models.sim.text_model_files import TextModelFiles, config_from

MODEL_ID = "rag-llama"
WHAT_IT_IS = ("a small Llama trained here to answer from the retrieved passages only, and to say when none holds "
              "the answer (on the demo store's 384 held-out questions: 97.7% exact, 98.2% 'I don't know.' with "
              "the answer's card off)")


@dataclass(frozen=True)
class ReaderConfig:
    n_layers: int = 3
    d_model: int = 64
    n_heads: int = 4
    d_ff: int = 192
    vocab_size: int = len(reader_vocab.WORDS)
    rope_theta: float = 10000.0
    rms_eps: float = 1e-6


CONFIG_FIELDS = {"n_layers": (int, 1, 12), "d_model": (int, 8, 1024), "n_heads": (int, 1, 64),
                 "d_ff": (int, 8, 4096), "vocab_size": (int, len(reader_vocab.WORDS), len(reader_vocab.WORDS)),
                 "rope_theta": (float, 1.0, 1e7), "rms_eps": (float, 1e-12, 1e-1)}


def checked_config(config=None) -> ReaderConfig:
    return config_from(ReaderConfig, config, lambda c: [
        (c.d_model % c.n_heads, f"n_heads {c.n_heads} does not divide d_model {c.d_model}")])


def hf_config_dict(config=None) -> dict:
    """transformers' LlamaConfig fields for our config."""
    c = checked_config(config)
    return {"vocab_size": c.vocab_size, "hidden_size": c.d_model, "intermediate_size": c.d_ff,
            "num_hidden_layers": c.n_layers, "num_attention_heads": c.n_heads, "num_key_value_heads": c.n_heads,
            "hidden_act": "silu", "max_position_embeddings": 512, "rms_norm_eps": c.rms_eps,
            "rope_theta": c.rope_theta, "tie_word_embeddings": True, "attention_bias": False, "mlp_bias": False,
            "bos_token_id": reader_vocab.PASSAGE_ID, "eos_token_id": reader_vocab.EOS_ID,
            "pad_token_id": reader_vocab.PAD_ID}


def build_model(config=None):
    """A fresh LlamaForCausalLM (transformers' init from torch's global generator), float32, eval mode, with
    eager attention so that a forward can return its attention weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    hf = LlamaConfig(**hf_config_dict(config))
    hf._attn_implementation = "eager"
    return LlamaForCausalLM(hf).float().eval()


def our_config(model) -> ReaderConfig:
    hf = model.config
    return ReaderConfig(n_layers=hf.num_hidden_layers, d_model=hf.hidden_size, n_heads=hf.num_attention_heads,
                        d_ff=hf.intermediate_size, vocab_size=hf.vocab_size,
                        rope_theta=float(getattr(hf, "rope_theta", None) or hf.rope_parameters["rope_theta"]),
                        rms_eps=float(hf.rms_norm_eps))


def state_shapes(config=None) -> dict[str, tuple[int, ...]]:
    """The weights file's tensors under transformers' names (the tied head is stored as the embedding)."""
    c = checked_config(config)
    d, f = c.d_model, c.d_ff
    shapes = {"model.embed_tokens.weight": (c.vocab_size, d)}
    for i in range(c.n_layers):
        p = f"model.layers.{i}"
        shapes.update({f"{p}.self_attn.{w}_proj.weight": (d, d) for w in "qkvo"})
        shapes.update({f"{p}.mlp.gate_proj.weight": (f, d), f"{p}.mlp.up_proj.weight": (f, d),
                       f"{p}.mlp.down_proj.weight": (d, f), f"{p}.input_layernorm.weight": (d,),
                       f"{p}.post_attention_layernorm.weight": (d,)})
    shapes["model.norm.weight"] = (d,)
    return shapes


FILES = TextModelFiles(MODEL_ID, CONFIG_FIELDS, checked_config, our_config, state_shapes, build_model,
                       tied_head=("lm_head.weight", "model.embed_tokens.weight"))
safetensors_bytes, save_safetensors = FILES.safetensors_bytes, FILES.save
shipped_weights_path, load_weights, load_reader = FILES.shipped_weights_path, FILES.load_weights, FILES.load_model
