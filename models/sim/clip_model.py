"""clip-tiny: a small CLIP that is exactly transformers' CLIPModel, its config, its shipped weights and how
they are read.

Vision tower: 64 × 64 RGB pixels in 4 × 4 patches (a 16 × 16 grid + [CLS] = 257 tokens), a bias-free patch
conv, CLIP's pre-LayerNorm (ln_pre), 2 pre-norm layers of width 64 with 4 heads of 16, MLP 128 with exact
GELU, the post-LayerNorm on [CLS]. Text tower: clip_vocab's 24 words, 8 positions, 2 causal layers of the
same width, the final LayerNorm, pooled at <end>. Both projected bias-free into a 32-wide shared space;
the score is cos(image, text) · e^logit_scale. The weights file is the state dict under transformers'
names, so `llmviz export-hf` copies it as it is; clip_trace.py recomputes it number by number.
"""
from __future__ import annotations

from dataclasses import dataclass

from llmviz.models.sim import clip_vocab, shapes
from llmviz.models.sim.text_model_files import TextModelFiles, config_from
from llmviz.models.sim.vit_model import PatchGrid

MODEL_ID = "clip-tiny"
LOGIT_SCALE_INIT = 2.6592   # ln(1/0.07), CLIP's initial temperature
LOGIT_SCALE_MAX = 4.6052    # ln 100: CLIP clamps the learned scale here


@dataclass(frozen=True)
class ClipTinyConfig(PatchGrid):
    vision_layers: int = 2
    vision_width: int = 64
    vision_heads: int = 4
    vision_ff: int = 128
    image_size: int = shapes.IMAGE_SIZE
    patch_size: int = 4
    text_layers: int = 2
    text_width: int = 64
    text_heads: int = 4
    text_ff: int = 128
    vocab_size: int = len(clip_vocab.VOCAB)
    context: int = clip_vocab.CONTEXT
    projection_dim: int = 32
    ln_eps: float = 1e-5

    # what `llmviz train`'s banner reads of the text models' configs
    @property
    def n_layers(self) -> int:
        return self.vision_layers

    @property
    def d_model(self) -> int:
        return self.vision_width


# Bounds for a config read from a weights file, checked before anything is built from it. The vocabulary
# is clip_vocab's, so its size is fixed.
CONFIG_FIELDS = {"vision_layers": (int, 1, 12), "vision_width": (int, 1, 1024), "vision_heads": (int, 1, 64),
                 "vision_ff": (int, 1, 4096), "image_size": (int, 8, 512), "patch_size": (int, 1, 64),
                 "text_layers": (int, 1, 12), "text_width": (int, 1, 1024), "text_heads": (int, 1, 64),
                 "text_ff": (int, 1, 4096), "vocab_size": (int, len(clip_vocab.VOCAB), len(clip_vocab.VOCAB)),
                 "context": (int, 3, 77), "projection_dim": (int, 1, 1024), "ln_eps": (float, 1e-14, 1e-1)}


def checked_config(config: dict | ClipTinyConfig | None = None) -> ClipTinyConfig:
    """Our config from a dict (defaults where a field is missing); heads divide widths, patches the image."""
    return config_from(ClipTinyConfig, config, lambda c: [
        (c.vision_width % c.vision_heads != 0, f"vision_heads {c.vision_heads} does not divide vision_width"),
        (c.text_width % c.text_heads != 0, f"text_heads {c.text_heads} does not divide text_width"),
        (c.image_size % c.patch_size != 0, f"patch_size {c.patch_size} does not divide image_size {c.image_size}")])


def clip_config(config: dict | ClipTinyConfig | None = None):
    """transformers.CLIPConfig for our config (eager attention: the softmax the trace records is transformers')."""
    from transformers import CLIPConfig

    c = checked_config(config)
    text = dict(vocab_size=c.vocab_size, hidden_size=c.text_width, intermediate_size=c.text_ff,
                projection_dim=c.projection_dim, num_hidden_layers=c.text_layers, num_attention_heads=c.text_heads,
                max_position_embeddings=c.context, hidden_act="gelu", layer_norm_eps=c.ln_eps, attention_dropout=0.0,
                pad_token_id=clip_vocab.PAD_ID, bos_token_id=clip_vocab.START_ID, eos_token_id=clip_vocab.END_ID)
    vision = dict(hidden_size=c.vision_width, intermediate_size=c.vision_ff, projection_dim=c.projection_dim,
                  num_hidden_layers=c.vision_layers, num_attention_heads=c.vision_heads, num_channels=3,
                  image_size=c.image_size, patch_size=c.patch_size, hidden_act="gelu", layer_norm_eps=c.ln_eps,
                  attention_dropout=0.0)
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=c.projection_dim,
                      logit_scale_init_value=LOGIT_SCALE_INIT, attn_implementation="eager")


def our_config(model) -> ClipTinyConfig:
    """Our config read back from a built CLIPModel (what the weights file stores)."""
    t, v = model.config.text_config, model.config.vision_config
    return ClipTinyConfig(vision_layers=v.num_hidden_layers, vision_width=v.hidden_size,
                          vision_heads=v.num_attention_heads, vision_ff=v.intermediate_size, image_size=v.image_size,
                          patch_size=v.patch_size, text_layers=t.num_hidden_layers, text_width=t.hidden_size,
                          text_heads=t.num_attention_heads, text_ff=t.intermediate_size, vocab_size=t.vocab_size,
                          context=t.max_position_embeddings, projection_dim=model.config.projection_dim,
                          ln_eps=float(t.layer_norm_eps))


def _layer_shapes(prefix: str, n_layers: int, width: int, ff: int) -> dict[str, tuple[int, ...]]:
    out = {}
    for i in range(n_layers):
        p = f"{prefix}.encoder.layers.{i}"
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            out.update({f"{p}.self_attn.{proj}.weight": (width, width), f"{p}.self_attn.{proj}.bias": (width,)})
        for norm in ("layer_norm1", "layer_norm2"):
            out.update({f"{p}.{norm}.weight": (width,), f"{p}.{norm}.bias": (width,)})
        out.update({f"{p}.mlp.fc1.weight": (ff, width), f"{p}.mlp.fc1.bias": (ff,),
                    f"{p}.mlp.fc2.weight": (width, ff), f"{p}.mlp.fc2.bias": (width,)})
    return out


def state_shapes(config: dict | ClipTinyConfig | None = None) -> dict[str, tuple[int, ...]]:
    """The weights file's tensors and shapes, under transformers' (5.x) names."""
    c = checked_config(config)
    v, t, w = "vision_model", "text_model", c.vision_width
    out = {f"{v}.embeddings.class_embedding": (w,), f"{v}.embeddings.patch_embedding.weight": (w, 3, c.patch_size,
                                                                                              c.patch_size),
           f"{v}.embeddings.position_embedding.weight": (c.n_tokens, w),
           f"{v}.pre_layrnorm.weight": (w,), f"{v}.pre_layrnorm.bias": (w,),
           **_layer_shapes(v, c.vision_layers, w, c.vision_ff),
           f"{v}.post_layernorm.weight": (w,), f"{v}.post_layernorm.bias": (w,),
           f"{t}.embeddings.token_embedding.weight": (c.vocab_size, c.text_width),
           f"{t}.embeddings.position_embedding.weight": (c.context, c.text_width),
           **_layer_shapes(t, c.text_layers, c.text_width, c.text_ff),
           f"{t}.final_layer_norm.weight": (c.text_width,), f"{t}.final_layer_norm.bias": (c.text_width,),
           "visual_projection.weight": (c.projection_dim, w), "text_projection.weight": (c.projection_dim, c.text_width),
           "logit_scale": ()}
    return out


def build_model(config: dict | ClipTinyConfig | None = None):
    """A fresh CLIPModel (transformers' init, from torch's global generator), float32, eval."""
    from transformers import CLIPModel

    return CLIPModel(clip_config(config)).float().eval()


def preprocessor_config(model=None) -> dict:
    """preprocessor_config.json for CLIPImageProcessor (clip_image.preprocess does exactly this)."""
    from llmviz.models.sim import clip_image

    size = (model.cfg if model is not None else ClipTinyConfig()).image_size
    return clip_image.processor_config(size)


# ---- weights on disk ---------------------------------------------------------------------

FILES = TextModelFiles(MODEL_ID, CONFIG_FIELDS, checked_config, our_config, state_shapes, build_model)
state_tensors, safetensors_bytes = FILES.state_tensors, FILES.safetensors_bytes
shipped_weights_path, load_weights, load_clip = FILES.shipped_weights_path, FILES.load_weights, FILES.load_model


def save_safetensors(model, path, extra_metadata: dict | None = None) -> None:
    """The weights file, with the word-level vocabulary beside the config in its metadata."""
    FILES.save(model, path, {**(extra_metadata or {}), "vocab": list(clip_vocab.VOCAB)})


def hf_config_json(spec, model) -> dict:
    """config.json for `llmviz export-hf clip-tiny`: CLIPConfig's fields for the loaded weights' config,
    after checking the spec describes the same model (ExportError naming the first field that differs)."""
    from llmviz.models.export_hf import ExportError
    from llmviz.models.spec import EncoderComponent

    c, arch = model.cfg, spec.architecture
    vision = next(x for x in arch.components if isinstance(x, EncoderComponent))
    pairs = [("n_layers", arch.n_layers, c.text_layers), ("d_model", arch.d_model, c.text_width),
             ("n_heads", arch.n_heads, c.text_heads), ("d_ff", arch.d_ff, c.text_ff),
             ("vocab_size", arch.vocab_size, c.vocab_size), ("context_length", arch.context_length, c.context),
             ("output_dim", arch.output_dim, c.projection_dim), ("vision.n_layers", vision.n_layers, c.vision_layers),
             ("vision.d_model", vision.d_model, c.vision_width), ("vision.n_heads", vision.n_heads, c.vision_heads),
             ("vision.d_ff", vision.d_ff, c.vision_ff), ("vision.input.image_size", vision.input.image_size,
                                                         c.image_size),
             ("vision.input.patch_size", vision.input.patch_size, c.patch_size),
             ("vision.output_dim", vision.output_dim, c.projection_dim)]
    for name, said, built in pairs:
        if said != built:
            raise ExportError(f"cannot export {spec.id}: the spec says {name} = {said}, its weights {built}")
    if c.text_layers != c.vision_layers:
        raise ExportError(f"cannot export {spec.id}: the export's tensor table needs as many text as vision layers")
    config = clip_config(c).to_dict()
    config["architectures"] = ["CLIPModel"]
    config.pop("transformers_version", None)   # the same file whatever transformers writes it
    return config
