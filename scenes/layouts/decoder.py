"""The decoder family: one stack of token embedding, layers (attention, MoE, Mamba, RWKV or a
hybrid of them, per layer) and output: GPT, Llama, Mixtral, DeepSeek, Mamba, RWKV, Jamba."""
from __future__ import annotations

from llmviz.models.spec import ModelSpec

from ..layout_blocks import embedding_section, make_dims, output_section
from .registry import FamilyLayout, StackPart, register
from .stack import stack_part


@register("decoder")
def lay_out(spec: ModelSpec, n_tokens: int) -> FamilyLayout:
    d = make_dims(spec.architecture, n_tokens)
    part, columns = stack_part(d, embedding_section(d), output_section(d),
                               spacing=spec.visual.layer_spacing,
                               circular=spec.visual.expert_layout == "circular")
    return FamilyLayout([StackPart("", spec.name, part, columns, main=True)], n_tokens)
