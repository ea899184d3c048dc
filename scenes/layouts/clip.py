"""The CLIP family: the vision tower and the text tower side by side, each pooled (the [CLS] token,
the end-of-text token) and projected into the shared embedding space, where the two embeddings'
cosine similarity, scaled by e^logit_scale, is the score."""
from __future__ import annotations

from llmviz.models.spec import EncoderComponent, ModelSpec, ParameterComponent

from ..layout_blocks import Dims, embedding_section, linear, make_dims
from ..layout_parts import KIND_ACTIVATION, KIND_SCORES, KIND_WEIGHT, Part, block, grouped, hstack, titled, vstack
from .registry import FamilyLayout, StackPart, register
from .stack import stack_part
from .vit import final_norm, vision_tower


def pooled_projection(d: Dims, pooled: str, embedding: str) -> Part:
    """Final norm, the one token a tower is read at, and its projection into the shared space."""
    rows = [final_norm(d) if d.arch.final_norm else None, block("pool", KIND_ACTIVATION, (d.c,), pooled)]
    if d.arch.output_dim is not None:
        rows.append(linear("proj.weight", (d.arch.output_dim, d.c), "W_proj", "proj", (d.arch.output_dim,),
                           embedding))
    return grouped(titled(vstack(rows, align="left"), "Pooled output", frac=0.05), "output", "Pooled output")


def contrast_part(width: int, scale: ParameterComponent | None) -> Part:
    """The shared embedding space: both embeddings normalised, their similarity times e^s."""
    row = [block("contrast.image", KIND_ACTIVATION, (width,), "image embedding / ‖·‖"),
           block("contrast.text", KIND_ACTIVATION, (width,), "text embedding / ‖·‖")]
    tail = []
    if scale is not None:
        tail.append(block(scale.name, KIND_WEIGHT, (1,), "logit scale s"))
    tail.append(block("contrast.logits", KIND_SCORES, (1,), "cos(image, text) · e^s"))
    body = vstack([vstack(row, align="left"), hstack(tail, align="top")], align="left")
    return grouped(titled(body, "Shared embedding space", frac=0.08), "contrast", "Shared embedding space")


@register("clip")
def lay_out(spec: ModelSpec, n_tokens: int) -> FamilyLayout:
    arch = spec.architecture
    vision = next(c for c in arch.components if isinstance(c, EncoderComponent))
    scale = next((c for c in arch.components if isinstance(c, ParameterComponent)), None)
    tower, _ = vision_tower(spec, vision, lambda vd: pooled_projection(vd, "[CLS] token", "image embedding"))
    d = make_dims(arch, n_tokens)
    part, columns = stack_part(d, embedding_section(d, with_components=False),
                               pooled_projection(d, "end-of-text token", "text embedding"),
                               layer_word="Text", spacing=spec.visual.layer_spacing)
    text = StackPart("", "Text tower", part, columns, main=True)
    width = arch.output_dim or arch.d_model
    head = StackPart("contrast.", "Shared embedding space", contrast_part(width, scale))
    return FamilyLayout([tower, text, head], n_tokens,
                        {"image": f"{vision.name}.proj" if vision.output_dim else f"{vision.name}.pool",
                         "text": "proj" if arch.output_dim else "pool"})
