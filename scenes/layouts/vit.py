"""The vision transformer family (ViT-B/16) and the image stem every vision tower shares.

The stem cuts the image into (image / patch)² patches, projects each with W_patch (the conv2d whose
stride is the patch size, drawn as the matrix it is: d_model × channels·patch²), puts the learned
[CLS] token first and adds the learned position table: 196 + 1 = 197 tokens for 224 px / 16. The
head takes the [CLS] token's vector after the final norm to the classifier.
"""
from __future__ import annotations

# The classifier's size depends on the label set, which the spec leaves out of the count; the layout
# draws ImageNet-1k's (the set ViT-B/16 is evaluated on) and says it is not in the total.
from llmviz.models.inventory import IMAGENET_CLASSES
from llmviz.models.spec import EncoderComponent, ModelSpec, ParameterComponent, ProjectorComponent

from ..layout_blocks import (Dims, as_architecture, center_on, linear, make_dims, norm_part,
                             projector_part, stem_section)
from ..layout_parts import (KIND_ACTIVATION, KIND_SCORES, KIND_TOKENS, KIND_WEIGHT, Part, block,
                            grouped, hstack, titled, vstack)
from .registry import FamilyLayout, StackPart, register
from .stack import stack_part



def n_patches(d: Dims) -> int:
    src = d.arch.input
    return (src.image_size // src.patch_size) ** 2


def patch_stem(d: Dims, title: str = "Patch embedding") -> Part:
    """Patches → W_patch (+ bias) → patch embeddings, the [CLS] token and W_P beside them."""
    arch, c = d.arch, d.c
    src = arch.input
    p, width, n = src.patch_size, src.channels * src.patch_size ** 2, n_patches(d)
    row = [block("patches", KIND_TOKENS, (n, width), f"patches {p}×{p}×{src.channels}"),
           linear("embed.patch.weight", (c, width), f"W_patch (conv {p}×{p}, stride {p})", "embed.patch",
                  (n, c), "patch embeddings", "embed.patch.bias" if src.bias else None, "b_patch")]
    extra = []
    if src.cls_token:
        extra.append(block("embed.cls", KIND_WEIGHT, (c,), "[CLS] token"))
    inputs = hstack(row + ([vstack(extra, align="left")] if extra else []), align="top")
    if arch.pos_encoding == "learned":
        positions = hstack([block("embed.pos", KIND_ACTIVATION, (d.tok, c), "position embedding"),
                            block("embed.pos.weight", KIND_WEIGHT, (src.n_positions(), c), "W_P position embedding")])
        inputs = vstack([inputs, positions], align="right")
    text = ("[CLS] + patches + positions" if src.cls_token else "patches + positions") \
        if arch.pos_encoding == "learned" else "patch embeddings"
    return stem_section(d, inputs, text, title)


def final_norm(d: Dims) -> Part:
    return center_on(norm_part("ln_f", d, "final LayerNorm" if d.arch.norm == "layernorm" else "final RMSNorm"),
                     "ln_f.out")


def classifier_head(d: Dims, components=()) -> Part:
    """Final norm, the [CLS] token's vector, the spec's heads on it (a pooler, a classifier of its own
    label set), and the class probabilities; without a classifier of its own, ImageNet-1k's, drawn
    and said to be outside the count."""
    rows = [final_norm(d) if d.arch.final_norm else None,
            block("pool", KIND_ACTIVATION, (d.c,), "[CLS] token's vector")]
    heads = [c for c in components if isinstance(c, ProjectorComponent)]
    rows += [projector_part(p, 1)[0] for p in heads]
    rows += [block(c.name, KIND_WEIGHT, tuple(c.shape) or (1,), c.name) for c in components
             if isinstance(c, ParameterComponent)]
    own = next((p for p in heads if p.name == "classifier"), None)
    if own is None:
        rows.append(linear("classifier.weight", (IMAGENET_CLASSES, d.c),
                           f"classifier W ({IMAGENET_CLASSES} ImageNet classes)", "classifier",
                           (IMAGENET_CLASSES,), "class logits", "classifier.bias", "b"))
    classes = own.dims[-1] if own is not None else IMAGENET_CLASSES
    rows.append(block("probs", KIND_SCORES, (classes,), "class probabilities"))
    return grouped(titled(vstack([r for r in rows if r is not None], align="left"), "Classifier head", frac=0.05),
                   "output", "Classifier head")


def vision_tower(spec: ModelSpec, comp: EncoderComponent, output) -> tuple[StackPart, Dims]:
    """A vision encoder component laid out whole under "{name}.": patch stem, layers, `output(d)`."""
    arch = as_architecture(comp)
    d = make_dims(arch, arch.input.n_positions())
    part, columns = stack_part(d, patch_stem(d), output(d), prefix=f"{comp.name}.", layer_word="Vision",
                               spacing=spec.visual.layer_spacing)
    return StackPart(f"{comp.name}.", "Vision tower", part, columns), d


@register("vit")
def lay_out(spec: ModelSpec, n_tokens: int) -> FamilyLayout:
    """The image decides the tokens: T is the patch count (+ [CLS]), whatever n_tokens asks."""
    arch = spec.architecture
    t = arch.input.n_positions()
    d = make_dims(arch, t)
    part, columns = stack_part(d, patch_stem(d), classifier_head(d, arch.components),
                               spacing=spec.visual.layer_spacing)
    return FamilyLayout([StackPart("", spec.name, part, columns, main=True)], t)
