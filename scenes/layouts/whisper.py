"""The encoder-decoder family (Whisper): the audio encoder (log-mel input, its convolutions, the
sinusoidal positions it holds as a buffer, its layers, its final norm) left of the text decoder,
whose cross-attention reads its keys and values from the encoder's output (links["memory"])."""
from __future__ import annotations

import math

from llmviz.models.spec import EncoderComponent, ModelSpec

from ..layout_blocks import (Dims, as_architecture, embedding_section, linear, make_dims, output_section,
                             stem_section)
from ..layout_parts import (KIND_ACTIVATION, KIND_BUFFER, KIND_TOKENS, KIND_WEIGHT, Part, block, grouped,
                            hstack, titled, vstack)
from .registry import FamilyLayout, StackPart, register
from .stack import stack_part
from .vit import final_norm


def conv_stem(d: Dims) -> Part:
    """Log-mel frames → conv1 → GELU → conv2 (stride 2) → GELU, plus the positions (a fixed
    sinusoidal buffer, or a learned table)."""
    arch, c, t = d.arch, d.c, d.tok.n
    src = arch.input
    strides = list(src.strides)
    frames = t * math.prod(strides)
    rows = [block("features", KIND_TOKENS, (frames, src.in_channels), "log-mel spectrogram")]
    n_in = src.in_channels
    for k, stride in enumerate(strides):
        name = f"embed.conv{k + 1}"
        length = t * math.prod(strides[k + 1:])
        rows.append(linear(f"{name}.weight", (c, n_in * src.kernel),
                           f"conv{k + 1} (kernel {src.kernel}, stride {stride})", name, (length, c),
                           f"conv{k + 1} out", f"{name}.bias" if src.bias else None, "b",
                           after=(block(f"{name}_act", KIND_ACTIVATION, (length, c), "GELU"),)))
        n_in = c
    if arch.pos_encoding == "sinusoidal":
        pos = block("embed.pos", KIND_BUFFER, (d.tok, c), "sinusoidal positions (buffer, not learned)")
    elif arch.pos_encoding == "learned":
        pos = block("embed.pos.weight", KIND_WEIGHT, (arch.context_length, c), "W_P position embedding")
    else:
        pos = None
    inputs = hstack([vstack(rows, align="left")] + ([pos] if pos is not None else []), align="bottom")
    return stem_section(d, inputs, "conv features + positions" if pos is not None else "conv features",
                        "Audio input")


def encoder_output(d: Dims) -> Part | None:
    if not d.arch.final_norm:
        return None
    return grouped(titled(final_norm(d), "Encoder output", frac=0.05), "output", "Encoder output")


def audio_encoder(spec: ModelSpec, comp: EncoderComponent, output=encoder_output) -> tuple[StackPart, Dims]:
    arch = as_architecture(comp)
    d = make_dims(arch, arch.context_length)
    part, columns = stack_part(d, conv_stem(d), output(d), prefix=f"{comp.name}.", layer_word="Encoder",
                               spacing=spec.visual.layer_spacing)
    return StackPart(f"{comp.name}.", "Audio encoder", part, columns), d


def stack_output(d: Dims) -> str:
    """The id (inside its stack) of what a stack hands on: its final norm's output, else its last stream."""
    return "ln_f.out" if d.arch.final_norm else f"blocks.{d.arch.n_layers - 1}.resid2"


@register("encoder-decoder")
def lay_out(spec: ModelSpec, n_tokens: int) -> FamilyLayout:
    arch = spec.architecture
    enc = next(c for c in arch.components if isinstance(c, EncoderComponent))
    if enc.input.type == "patches":
        from .vit import vision_tower
        encoder, ed = vision_tower(spec, enc, encoder_output)
    else:
        encoder, ed = audio_encoder(spec, enc)
    d = make_dims(arch, n_tokens)
    part, columns = stack_part(d, embedding_section(d, with_components=False), output_section(d),
                               layer_word="Decoder", spacing=spec.visual.layer_spacing)
    decoder = StackPart("", "Text decoder", part, columns, main=True)
    return FamilyLayout([encoder, decoder], n_tokens, {"memory": encoder.prefix + stack_output(ed)})
