"""vit-tiny: a small vision transformer that is exactly transformers' ViTForImageClassification, its config,
its shipped weights and how they are read.

Shape: 64 × 64 RGB pixels in 4 × 4 patches (a 16 × 16 grid + [CLS] = 257 tokens), 2 pre-norm encoder layers,
hidden 64, 4 heads of 16, MLP 128 with exact GELU, LayerNorm eps 1e-12 (ViT's), no pooler, a linear classifier
on the [CLS] token over shapes.SHAPES. The weights file is the model's state dict under transformers' tensor
names, so `llmviz export-hf` copies it as it is; vit_trace.py recomputes it number by number.
"""
from __future__ import annotations

from dataclasses import dataclass

from llmviz.models.sim import shapes
from llmviz.models.sim.text_model_files import TextModelFiles, config_from

MODEL_ID = "vit-tiny"


class PatchGrid:
    """The patch grid of a config with `image_size` and `patch_size` (vit-tiny's, clip-tiny's vision tower)."""

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def n_tokens(self) -> int:
        """The patches and [CLS]."""
        return self.grid ** 2 + 1


@dataclass(frozen=True)
class VitTinyConfig(PatchGrid):
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    d_ff: int = 128
    image_size: int = shapes.IMAGE_SIZE
    patch_size: int = 4
    n_channels: int = 3
    n_classes: int = len(shapes.SHAPES)
    ln_eps: float = 1e-12

    @property
    def id2label(self) -> dict[str, str]:
        """config.json's label names (string keys, as transformers writes them)."""
        return {str(i): name for i, name in enumerate(shapes.SHAPES)}

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(shapes.SHAPES)}


# Bounds for a config read from a weights file, checked before anything is built from it. The class list
# fixes the classifier's size.
CONFIG_FIELDS = {"n_layers": (int, 1, 12), "d_model": (int, 1, 1024), "n_heads": (int, 1, 64),
                 "d_ff": (int, 1, 4096), "image_size": (int, 8, 512), "patch_size": (int, 1, 64),
                 "n_channels": (int, 3, 3), "n_classes": (int, len(shapes.SHAPES), len(shapes.SHAPES)),
                 "ln_eps": (float, 1e-14, 1e-1)}


def checked_config(config: dict | VitTinyConfig | None = None) -> VitTinyConfig:
    """Our config from a dict (defaults where a field is missing); heads divide the width, patches the image."""
    return config_from(VitTinyConfig, config, lambda c: [
        (c.d_model % c.n_heads != 0, f"n_heads {c.n_heads} does not divide d_model {c.d_model}"),
        (c.image_size % c.patch_size != 0, f"patch_size {c.patch_size} does not divide image_size {c.image_size}")])


def vit_config(config: dict | VitTinyConfig | None = None):
    """transformers.ViTConfig for our config."""
    from transformers import ViTConfig

    c = checked_config(config)
    return ViTConfig(
        hidden_size=c.d_model, num_hidden_layers=c.n_layers, num_attention_heads=c.n_heads, intermediate_size=c.d_ff,
        hidden_act="gelu", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, layer_norm_eps=c.ln_eps,
        image_size=c.image_size, patch_size=c.patch_size, num_channels=c.n_channels, qkv_bias=True,
        num_labels=c.n_classes, id2label={int(k): v for k, v in c.id2label.items()}, label2id=c.label2id,
        # eager attention: the softmax the trace records is the one transformers computes
        attn_implementation="eager")


def our_config(model) -> VitTinyConfig:
    """Our config read back from a built ViTForImageClassification (what the weights file stores)."""
    hf = model.config
    return VitTinyConfig(n_layers=hf.num_hidden_layers, d_model=hf.hidden_size, n_heads=hf.num_attention_heads,
                         d_ff=hf.intermediate_size, image_size=hf.image_size, patch_size=hf.patch_size,
                         n_channels=hf.num_channels, n_classes=hf.num_labels, ln_eps=float(hf.layer_norm_eps))


def state_shapes(config: dict | VitTinyConfig | None = None) -> dict[str, tuple[int, ...]]:
    """The weights file's tensors and shapes, under transformers' (5.x) names."""
    c = checked_config(config)
    e = "vit.embeddings"
    shapes_ = {f"{e}.cls_token": (1, 1, c.d_model), f"{e}.position_embeddings": (1, c.n_tokens, c.d_model),
               f"{e}.patch_embeddings.projection.weight": (c.d_model, c.n_channels, c.patch_size, c.patch_size),
               f"{e}.patch_embeddings.projection.bias": (c.d_model,)}
    for i in range(c.n_layers):
        p = f"vit.layers.{i}"
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            shapes_.update({f"{p}.attention.{proj}.weight": (c.d_model, c.d_model),
                            f"{p}.attention.{proj}.bias": (c.d_model,)})
        for norm in ("layernorm_before", "layernorm_after"):
            shapes_.update({f"{p}.{norm}.weight": (c.d_model,), f"{p}.{norm}.bias": (c.d_model,)})
        shapes_.update({f"{p}.mlp.fc1.weight": (c.d_ff, c.d_model), f"{p}.mlp.fc1.bias": (c.d_ff,),
                        f"{p}.mlp.fc2.weight": (c.d_model, c.d_ff), f"{p}.mlp.fc2.bias": (c.d_model,)})
    shapes_.update({"vit.layernorm.weight": (c.d_model,), "vit.layernorm.bias": (c.d_model,),
                    "classifier.weight": (c.n_classes, c.d_model), "classifier.bias": (c.n_classes,)})
    return shapes_


def build_model(config: dict | VitTinyConfig | None = None):
    """A fresh ViTForImageClassification (transformers' init, from torch's global generator), float32, eval."""
    from transformers import ViTForImageClassification

    return ViTForImageClassification(vit_config(config)).float().eval()


def preprocessor_config(model=None) -> dict:
    """preprocessor_config.json for ViTImageProcessor: resize (bilinear) to the model's size, scale to [0, 1],
    normalise with mean = std = 0.5 (vit_image.preprocess does exactly this)."""
    from llmviz.models.sim import vit_image

    size = (model.cfg if model is not None else VitTinyConfig()).image_size
    return vit_image.processor_config(size)


# ---- weights on disk ---------------------------------------------------------------------

FILES = TextModelFiles(MODEL_ID, CONFIG_FIELDS, checked_config, our_config, state_shapes, build_model)
state_tensors, safetensors_bytes, save_safetensors = FILES.state_tensors, FILES.safetensors_bytes, FILES.save
shipped_weights_path, load_weights, load_vit = FILES.shipped_weights_path, FILES.load_weights, FILES.load_model
