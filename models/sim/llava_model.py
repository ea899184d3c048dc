"""llava-tiny: a small vision-language model that is exactly transformers' LlavaForConditionalGeneration, its
config, its shipped weights, and the files beside them in an exported folder (tokenizer, processor).

Shape: a CLIP vision tower on 64 × 64 pictures in 4 × 4 patches (16 × 16 + [CLS] = 257 tokens; pre-LayerNorm,
2 layers, hidden 64, 4 heads, MLP 128 with exact GELU); LLaVA takes the last layer's hidden states with [CLS]
dropped (vision_feature_layer -2 as LLaVA-1.5's, strategy "default"): 256 image tokens, through the two-layer GELU
projector (64 → 64 → 64) into the embedding space of a Llama (2 layers, hidden 64, 4 heads, SwiGLU 128,
RMSNorm ε 1e-5, RoPE) whose 32-word vocabulary is llava_vocab.WORDS. The weights file is the state dict under
transformers' names; llava_trace.py recomputes the model number by number.
"""
from __future__ import annotations

from llmviz.models.sim import llava_vocab
from llmviz.models.sim.llava_config import LlavaTinyConfig
from llmviz.models.sim.text_model_files import TextModelFiles, config_from

MODEL_ID = "llava-tiny"


# LLaVA's fields as llava-tiny builds it (config.json's top level beside the two configs).
LLAVA_CONSTANTS = {"projector_hidden_act": "gelu", "vision_feature_select_strategy": "default",
                   "multimodal_projector_bias": True, "tie_word_embeddings": False}

# Bounds for a config read from a weights file, checked before anything is built from it; the vocabulary
# is llava_vocab's.
CONFIG_FIELDS = {"vision_layers": (int, 1, 12), "vision_d": (int, 1, 1024), "vision_heads": (int, 1, 64),
                 "vision_ff": (int, 1, 4096), "image_size": (int, 8, 512), "patch_size": (int, 1, 64),
                 "n_channels": (int, 3, 3), "vision_ln_eps": (float, 1e-14, 1e-1), "feature_layer": (int, -12, -1), "n_layers": (int, 1, 12),
                 "d_model": (int, 1, 1024), "n_heads": (int, 1, 64), "d_ff": (int, 1, 4096),
                 "vocab_size": (int, len(llava_vocab.WORDS), len(llava_vocab.WORDS)),
                 "rms_eps": (float, 1e-12, 1e-1), "rope_theta": (float, 1.0, 1e9), "max_positions": (int, 16, 65536)}


def checked_config(config: dict | LlavaTinyConfig | None = None) -> LlavaTinyConfig:
    """Our config from a dict (defaults where a field is missing); heads divide the widths, patches the image,
    and the sequence fits the positions."""
    return config_from(LlavaTinyConfig, config, lambda c: [
        (c.vision_d % c.vision_heads != 0, f"vision_heads {c.vision_heads} does not divide vision_d {c.vision_d}"),
        (c.d_model % c.n_heads != 0, f"n_heads {c.n_heads} does not divide d_model {c.d_model}"),
        ((c.d_model // c.n_heads) % 2 != 0, "the language model's head width must be even (RoPE)"),
        (-c.feature_layer > c.vision_layers + 1, f"feature_layer {c.feature_layer} is before the tower's embeddings"),
        (c.image_size % c.patch_size != 0, f"patch_size {c.patch_size} does not divide image_size {c.image_size}"),
        (c.n_image_tokens + llava_vocab.TEXT_TOKENS > c.max_positions,
         f"max_positions {c.max_positions} is shorter than {c.n_image_tokens} image tokens and the text")])


def config_dict(config: dict | LlavaTinyConfig | None = None) -> dict:
    """config.json's LLaVA fields for our config (what LlavaConfig(**it) builds)."""
    c = checked_config(config)
    return {"vision_config": c.vision_config, "text_config": c.text_config, "image_token_id": c.image_token_id,
            "image_seq_length": c.n_image_tokens, "vision_feature_layer": c.feature_layer, **LLAVA_CONSTANTS}


def llava_config(config: dict | LlavaTinyConfig | None = None, attention: str = "eager"):
    """transformers.LlavaConfig for our config (eager attention: the softmax the trace records is the one
    transformers computes)."""
    from transformers import LlavaConfig

    hf = LlavaConfig(**config_dict(config))
    hf._attn_implementation = attention
    for sub in (hf.vision_config, hf.text_config):
        sub._attn_implementation = attention
    return hf


def our_config(model) -> LlavaTinyConfig:
    """Our config read back from a built LlavaForConditionalGeneration (what the weights file stores)."""
    v, t = model.config.vision_config, model.config.text_config
    return LlavaTinyConfig(
        vision_layers=v.num_hidden_layers, vision_d=v.hidden_size, vision_heads=v.num_attention_heads,
        vision_ff=v.intermediate_size, image_size=v.image_size, patch_size=v.patch_size, n_channels=v.num_channels,
        vision_ln_eps=float(v.layer_norm_eps), feature_layer=int(model.config.vision_feature_layer), n_layers=t.num_hidden_layers, d_model=t.hidden_size,
        n_heads=t.num_attention_heads, d_ff=t.intermediate_size, vocab_size=t.vocab_size,
        rms_eps=float(t.rms_norm_eps), rope_theta=float(t.rope_parameters["rope_theta"]),
        max_positions=t.max_position_embeddings)


def state_shapes(config: dict | LlavaTinyConfig | None = None) -> dict[str, tuple[int, ...]]:
    """The weights file's tensors and shapes, under transformers' (5.x) names."""
    c = checked_config(config)
    vd, d = c.vision_d, c.d_model
    e, v = "model.vision_tower.embeddings", "model.vision_tower"
    out = {f"{e}.class_embedding": (vd,), f"{e}.patch_embedding.weight": (vd, c.n_channels, c.patch_size, c.patch_size),
           f"{e}.position_embedding.weight": (c.n_image_tokens + 1, vd),
           f"{v}.pre_layrnorm.weight": (vd,), f"{v}.pre_layrnorm.bias": (vd,)}
    for i in range(c.vision_layers):
        p = f"{v}.encoder.layers.{i}"
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            out.update({f"{p}.self_attn.{proj}.weight": (vd, vd), f"{p}.self_attn.{proj}.bias": (vd,)})
        for norm in ("layer_norm1", "layer_norm2"):
            out.update({f"{p}.{norm}.weight": (vd,), f"{p}.{norm}.bias": (vd,)})
        out.update({f"{p}.mlp.fc1.weight": (c.vision_ff, vd), f"{p}.mlp.fc1.bias": (c.vision_ff,),
                    f"{p}.mlp.fc2.weight": (vd, c.vision_ff), f"{p}.mlp.fc2.bias": (vd,)})
    out.update({f"{v}.post_layernorm.weight": (vd,), f"{v}.post_layernorm.bias": (vd,)})
    m = "model.multi_modal_projector"
    out.update({f"{m}.linear_1.weight": (d, vd), f"{m}.linear_1.bias": (d,),
                f"{m}.linear_2.weight": (d, d), f"{m}.linear_2.bias": (d,)})
    lm = "model.language_model"
    out[f"{lm}.embed_tokens.weight"] = (c.vocab_size, d)
    for i in range(c.n_layers):
        p = f"{lm}.layers.{i}"
        out.update({f"{p}.self_attn.{n}.weight": (d, d) for n in ("q_proj", "k_proj", "v_proj", "o_proj")})
        out.update({f"{p}.mlp.gate_proj.weight": (c.d_ff, d), f"{p}.mlp.up_proj.weight": (c.d_ff, d),
                    f"{p}.mlp.down_proj.weight": (d, c.d_ff), f"{p}.input_layernorm.weight": (d,),
                    f"{p}.post_attention_layernorm.weight": (d,)})
    out.update({f"{lm}.norm.weight": (d,), "lm_head.weight": (c.vocab_size, d)})
    return out


def build_model(config: dict | LlavaTinyConfig | None = None, attention: str = "eager"):
    """A fresh LlavaForConditionalGeneration (transformers' init, from torch's global generator), float32, eval."""
    from transformers import LlavaForConditionalGeneration

    return LlavaForConditionalGeneration(llava_config(config, attention)).float().eval()


# ---- weights on disk ---------------------------------------------------------------------

FILES = TextModelFiles(MODEL_ID, CONFIG_FIELDS, checked_config, our_config, state_shapes, build_model)
state_tensors, safetensors_bytes = FILES.state_tensors, FILES.safetensors_bytes
shipped_weights_path, load_weights, load_llava = FILES.shipped_weights_path, FILES.load_weights, FILES.load_model


def save_safetensors(model, path, extra_metadata: dict | None = None) -> None:
    """The weights file, with the vocabulary beside the config in its metadata."""
    FILES.save(model, path, {"vocab": list(llava_vocab.WORDS), **(extra_metadata or {})})


# ---- the exported folder's other files (models/export_hf.py writes them beside config.json) ----------

def tokenizer_object():
    """The word-level tokenizer (tokenizers): WORDS, lower-cased, split on spaces and punctuation, the special
    tokens matched whole before that (so <image> is one token)."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel

    tok = Tokenizer(WordLevel(dict(llava_vocab.WORD_ID), unk_token=llava_vocab.UNK))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(list(llava_vocab.SPECIAL))
    return tok


def tokenizer_json(model=None) -> dict:
    import json

    return json.loads(tokenizer_object().to_str())


def tokenizer_config(model=None) -> dict:
    """tokenizer_config.json: PreTrainedTokenizerFast over tokenizer.json, its special tokens named."""
    return {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": (model.cfg if model else
                                                                               LlavaTinyConfig()).max_positions,
            "pad_token": llava_vocab.PAD, "unk_token": llava_vocab.UNK, "eos_token": llava_vocab.EOS,
            "extra_special_tokens": {"image_token": llava_vocab.IMAGE}, "processor_class": "LlavaProcessor",
            "clean_up_tokenization_spaces": False}


def preprocessor_config(model=None) -> dict:
    """preprocessor_config.json: ViTImageProcessor's resize (bilinear) to 64, scale, normalise with 0.5
    (vit_image.preprocess does exactly this; clip-tiny's tower, which llava-tiny's starts from, is re-expressed for it
    in train_llava.clip_to_llava)."""
    from llmviz.models.sim import vit_image

    return vit_image.processor_config((model.cfg if model is not None else LlavaTinyConfig()).image_size)


def processor_config(model=None) -> dict:
    """processor_config.json: LlavaProcessor expands the prompt's <image> into 16 × 16 + 1 - 1 tokens."""
    c = model.cfg if model is not None else LlavaTinyConfig()
    return {"processor_class": "LlavaProcessor", "patch_size": c.patch_size, "num_additional_image_tokens": 1,
            "vision_feature_select_strategy": "default", "image_token": llava_vocab.IMAGE}


def generation_config(model=None) -> dict:
    """generation_config.json: greedy answers that stop at </s>."""
    return {"eos_token_id": llava_vocab.EOS_ID, "pad_token_id": llava_vocab.PAD_ID, "do_sample": False,
            "max_new_tokens": llava_vocab.MAX_ANSWER_TOKENS}
