"""induction-2l: a small two-layer transformer that is exactly transformers' SmolLM3ForCausalLM, built to
learn induction heads and to keep them far beyond its training length; its config, vocabulary and
weights file.

The position scheme is chosen for length: layer 0 uses RoPE inside a sliding window of WINDOW tokens
(so the relative distances it ever sees are 0..WINDOW-1, whatever the sequence's length: nothing to
extrapolate), which is where the previous-token heads live; layer 1 has no positional encoding at all
(NoPE: SmolLM3's no_rope_layers) and attends over the whole causal prefix, matching content only, which
is what an induction head needs ("the token after the last time these tokens occurred"). Neither layer
has a rotation angle or a position it has not seen in training, at 131,072 tokens as at 256.

The vocabulary is VOCAB_SIZE pseudo-words (two consonant-vowel syllables, "bako", "mire"), id 0 the
begin token "<s>", so the long-context view can show tokens as text.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

from llmviz.models.sim.text_model_files import TextModelFiles, config_from

MODEL_ID = "induction-2l"
BOS_ID = 0
BOS_TEXT = "<s>"
VOCAB_SIZE = 2048
TRAINING_LENGTH = 256     # the sequences it is trained on (train_induction.CONTEXT)
_CONSONANTS, _VOWELS = "bdfghklmnprstvz", "aeiou"


@lru_cache(maxsize=1)
def vocabulary() -> tuple[str, ...]:
    """Token id -> text: "<s>", then pseudo-words of two consonant-vowel syllables in a fixed order."""
    syllables = [c + v for c, v in itertools.product(_CONSONANTS, _VOWELS)]
    words = (a + b for a, b in itertools.product(syllables, repeat=2))
    return (BOS_TEXT, *itertools.islice(words, VOCAB_SIZE - 1))


def decode(ids) -> list[str]:
    """Each id's text (ids outside the vocabulary as '?')."""
    words = vocabulary()
    return [words[i] if 0 <= i < len(words) else "?" for i in (int(i) for i in ids)]


@dataclass(frozen=True)
class InductionTinyConfig:
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    d_ff: int = 128               # SwiGLU width
    window: int = 8               # layer 0's sliding window (RoPE inside it)
    vocab_size: int = VOCAB_SIZE
    rope_theta: float = 10_000.0
    rms_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    # SmolLM3Config's fields that follow from ours (what export-hf writes into config.json)
    @property
    def no_rope_layers(self) -> list[int]:
        """1 where a layer rotates its queries and keys: layer 0 only."""
        return [int(i == 0) for i in range(self.n_layers)]

    @property
    def layer_types(self) -> list[str]:
        return ["sliding_attention" if i == 0 else "full_attention" for i in range(self.n_layers)]

    @property
    def rope_parameters(self) -> dict:
        return {"rope_type": "default", "rope_theta": self.rope_theta}


# Bounds for a config read from a weights file (weights_file.llmviz_config).
CONFIG_FIELDS = {"n_layers": (int, 2, 8), "d_model": (int, 8, 512), "n_heads": (int, 1, 64),
                 "d_ff": (int, 1, 4096), "window": (int, 1, 4096), "vocab_size": (int, VOCAB_SIZE, VOCAB_SIZE),
                 "rope_theta": (float, 1.0, 1e9), "rms_eps": (float, 1e-12, 1e-1)}


def checked_config(config: dict | InductionTinyConfig | None = None) -> InductionTinyConfig:
    """Our config from a dict (defaults where a field is missing); heads must divide d_model evenly."""
    return config_from(InductionTinyConfig, config, lambda c: [
        (c.d_model % c.n_heads != 0, f"n_heads {c.n_heads} does not divide d_model {c.d_model}"),
        (c.head_dim % 2 != 0, f"head size {c.head_dim} must be even (RoPE rotates pairs)")])


def hf_config(config: dict | InductionTinyConfig | None = None):
    """transformers.SmolLM3Config for our config: no biases, tied head, layer 0 sliding + RoPE, layer 1 NoPE."""
    from transformers import SmolLM3Config

    c = checked_config(config)
    return SmolLM3Config(
        vocab_size=c.vocab_size, hidden_size=c.d_model, intermediate_size=c.d_ff, num_hidden_layers=c.n_layers,
        num_attention_heads=c.n_heads, num_key_value_heads=c.n_heads, hidden_act="silu",
        max_position_embeddings=1 << 20, rms_norm_eps=c.rms_eps, rope_theta=c.rope_theta,
        rope_parameters=c.rope_parameters, use_sliding_window=True, sliding_window=c.window,
        no_rope_layers=c.no_rope_layers, layer_types=c.layer_types, attention_bias=False, mlp_bias=False,
        attention_dropout=0.0, tie_word_embeddings=True, use_cache=True,
        pad_token_id=BOS_ID, bos_token_id=BOS_ID, eos_token_id=BOS_ID)


def our_config(model) -> InductionTinyConfig:
    """Our config read back from a built SmolLM3ForCausalLM (what the weights file stores)."""
    hf = model.config
    return InductionTinyConfig(n_layers=hf.num_hidden_layers, d_model=hf.hidden_size, n_heads=hf.num_attention_heads,
                               d_ff=hf.intermediate_size, window=hf.sliding_window, vocab_size=hf.vocab_size,
                               rope_theta=float(hf.rope_parameters["rope_theta"]), rms_eps=float(hf.rms_norm_eps))


def state_shapes(config: dict | InductionTinyConfig | None = None) -> dict[str, tuple[int, ...]]:
    """The weights file's tensors under transformers' names; lm_head is tied, so absent."""
    c = checked_config(config)
    d, f = c.d_model, c.d_ff
    shapes = {"model.embed_tokens.weight": (c.vocab_size, d)}
    for i in range(c.n_layers):
        p = f"model.layers.{i}"
        shapes.update({f"{p}.self_attn.{n}_proj.weight": (d, d) for n in "qkvo"})
        shapes.update({f"{p}.mlp.gate_proj.weight": (f, d), f"{p}.mlp.up_proj.weight": (f, d),
                       f"{p}.mlp.down_proj.weight": (d, f), f"{p}.input_layernorm.weight": (d,),
                       f"{p}.post_attention_layernorm.weight": (d,)})
    shapes["model.norm.weight"] = (d,)
    return shapes


def build_model(config: dict | InductionTinyConfig | None = None, attention: str = "eager"):
    """A fresh SmolLM3ForCausalLM (transformers' init, from torch's global generator), float32, eval mode.
    Eager attention by default: it returns the attention weights the tests compare with."""
    from transformers import SmolLM3ForCausalLM

    hf = hf_config(config)
    hf._attn_implementation = attention
    return SmolLM3ForCausalLM(hf).float().eval()


FILES = TextModelFiles(MODEL_ID, CONFIG_FIELDS, checked_config, our_config, state_shapes, build_model,
                       tied_head=("lm_head.weight", "model.embed_tokens.weight"))
state_tensors, safetensors_bytes, save_safetensors = FILES.state_tensors, FILES.safetensors_bytes, FILES.save
shipped_weights_path, load_weights, load_induction = FILES.shipped_weights_path, FILES.load_weights, FILES.load_model
