"""llava-tiny's config (its sizes, the tower's feature layer, RoPE's θ, the norms' ε) alone: what the scene's hover
rules read without importing torch (llava_model.py builds the model from it)."""
from __future__ import annotations

from dataclasses import dataclass

from llmviz.models.sim import llava_vocab, shapes


@dataclass(frozen=True)
class LlavaTinyConfig:
    vision_layers: int = 2
    vision_d: int = 64
    vision_heads: int = 4
    vision_ff: int = 128
    image_size: int = shapes.IMAGE_SIZE
    patch_size: int = 4
    n_channels: int = 3
    vision_ln_eps: float = 1e-5
    feature_layer: int = -2       # LLaVA's vision_feature_layer: the hidden state before the last layer's
    n_layers: int = 2             # the language model's
    d_model: int = 64
    n_heads: int = 4
    d_ff: int = 128
    vocab_size: int = len(llava_vocab.WORDS)
    rms_eps: float = 1e-5         # Llama 2's, and the tower's LayerNorm ε
    rope_theta: float = 10000.0
    max_positions: int = 512

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def n_image_tokens(self) -> int:
        """Image tokens in the language model's sequence: the patches ([CLS] dropped)."""
        return self.grid ** 2

    @property
    def vision_config(self) -> dict:
        """config.json's vision_config (transformers' CLIPVisionConfig)."""
        return {"model_type": "clip_vision_model", "hidden_size": self.vision_d, "intermediate_size": self.vision_ff,
                "num_hidden_layers": self.vision_layers, "num_attention_heads": self.vision_heads,
                "num_channels": self.n_channels, "image_size": self.image_size, "patch_size": self.patch_size,
                "hidden_act": "gelu", "layer_norm_eps": self.vision_ln_eps, "attention_dropout": 0.0,
                "projection_dim": self.d_model}

    @property
    def text_config(self) -> dict:
        """config.json's text_config (transformers' LlamaConfig)."""
        return {"model_type": "llama", "vocab_size": self.vocab_size, "hidden_size": self.d_model,
                "intermediate_size": self.d_ff, "num_hidden_layers": self.n_layers,
                "num_attention_heads": self.n_heads, "num_key_value_heads": self.n_heads,
                "head_dim": self.d_model // self.n_heads, "hidden_act": "silu",
                "max_position_embeddings": self.max_positions, "rms_norm_eps": self.rms_eps,
                "rope_parameters": {"rope_type": "default", "rope_theta": self.rope_theta},
                "attention_bias": False, "attention_dropout": 0.0, "mlp_bias": False, "tie_word_embeddings": False,
                "pad_token_id": llava_vocab.PAD_ID, "bos_token_id": None, "eos_token_id": llava_vocab.EOS_ID}

    @property
    def image_token_id(self) -> int:
        return llava_vocab.IMAGE_ID
