"""The vision-language family (LLaVA, PaliGemma; Gemini-like sketches): the encoders laid out whole,
the projector (its linear layers and activation), and the text decoder whose sequence starts with
the image tokens (a prefix, T = image tokens + text tokens). A prefix-LM (PaliGemma) lets the image
and the text prompt attend to each other both ways and only the rest causally; its masked scores
say so."""
from __future__ import annotations

import dataclasses

from llmviz.models.spec import EncoderComponent, ModelSpec, ProjectorComponent

from ..layout_blocks import Dims, linear, make_dims, output_section, projector_part, stem_section
from ..layout_parts import (KIND_ACTIVATION, KIND_TOKENS, KIND_WEIGHT, Axis, Part, block, grouped, hstack,
                            titled, vstack)
from .registry import FamilyLayout, StackPart, register
from .stack import stack_part
from .vit import final_norm, n_patches, vision_tower
from .whisper import audio_encoder


def tower_output(d: Dims, prefix_fusion: bool = True) -> Part:
    """What a tower hands the decoder: its normed tokens ([CLS] dropped), projected if it projects."""
    arch = d.arch
    rows = [final_norm(d) if arch.final_norm else None]
    n = d.tok.n
    if arch.input.type == "patches" and arch.input.cls_token:
        n = n_patches(d)
        rows.append(block("image_features", KIND_ACTIVATION, (n, d.c), "patch features ([CLS] dropped)"))
    if arch.output_dim is not None:
        rows.append(linear("proj.weight", (arch.output_dim, d.c), "W_proj", "proj", (n, arch.output_dim),
                           "projected tokens"))
    rows = [r for r in rows if r is not None]
    if not rows:
        return None
    return grouped(titled(vstack(rows, align="left"), "Tower output", frac=0.05), "output", "Tower output")


def _handed_on(d: Dims) -> tuple[str, int]:
    """The id (inside its stack) of the tower output the decoder reads, and its token count."""
    arch = d.arch
    n = n_patches(d) if arch.input.type == "patches" else d.tok.n
    if arch.output_dim is not None:
        return "proj", n
    if arch.input.type == "patches" and arch.input.cls_token:
        return "image_features", n
    return ("ln_f.out" if arch.final_norm else f"blocks.{arch.n_layers - 1}.resid2"), n


def prefix_stem(d: Dims, n_text: int, prefixes: list[tuple[str, int]]) -> Part:
    """Text tokens through W_E, the encoders' tokens before them: the decoder's whole sequence."""
    c = d.c
    text = hstack([block("tokens", KIND_TOKENS, (Axis(n_text, str(n_text)),), "text tokens"),
                   block("embed.tok.weight", KIND_WEIGHT, (d.vocab, c), "W_E token embedding"),
                   block("embed.tok", KIND_ACTIVATION, (n_text, c), "text token embeddings")])
    blocks = [block(f"embed.{name}", KIND_ACTIVATION, (n, c), f"{name} tokens (prefix)") for name, n in prefixes]
    inputs = vstack(blocks + [text], align="right")
    names = ", ".join(name for name, _ in prefixes)
    return stem_section(d, inputs, f"{names} tokens, then text", "Embedding")


@register("vision-language")
def lay_out(spec: ModelSpec, n_tokens: int) -> FamilyLayout:
    arch = spec.architecture
    stacks, links, prefixes = [], {}, []
    for comp in arch.components:
        if not isinstance(comp, EncoderComponent):
            continue
        if comp.input.type == "patches":
            stack, ed = vision_tower(spec, comp, tower_output)
            kind = "image"
        else:
            stack, ed = audio_encoder(spec, comp, tower_output)
            kind = "audio"
        out, n = _handed_on(ed)
        if comp.feature_layer is not None:  # an earlier layer's output, before the final norm (LLaVA's -2)
            out = f"blocks.{comp.n_layers + comp.feature_layer}.resid2"
        stacks.append(stack)
        links[kind] = stack.prefix + out
        prefixes.append((kind, n))
    projector = next((c for c in arch.components if isinstance(c, ProjectorComponent)), None)
    if projector is not None and "image" in links:
        n_image = dict(prefixes)["image"]
        part, out = projector_part(projector, n_image)
        links["projector_in"], links["image"] = links["image"], out
        stacks.append(StackPart(f"{projector.name}.", "Projector", part))
    n_prefix = sum(n for _, n in prefixes)
    d = make_dims(arch, n_prefix + n_tokens)
    if arch.prefix_lm:
        prompt = max(1, n_tokens // 2)
        d = dataclasses.replace(d, bidirectional=n_prefix + prompt)
    part, columns = stack_part(d, prefix_stem(d, n_tokens, prefixes), output_section(d),
                               spacing=spec.visual.layer_spacing,
                               circular=spec.visual.expert_layout == "circular")
    stacks.append(StackPart("", "Text decoder", part, columns, main=True))
    return FamilyLayout(stacks, d.tok.n, links, bidirectional=d.bidirectional)
