"""The layout's families, one module each, behind a registry (registry.py): decoder (dense, MoE,
Mamba, RWKV and hybrid stacks), vit, clip, encoder-decoder (Whisper) and vision-language (LLaVA,
PaliGemma). The mixers a layer can hold (moe.py, mamba.py, rwkv.py; attention and MLP in
layout_blocks.py) are picked per layer by layers.py; stack.py lays one stack out whole.

Adding a family: its spec data, its rule and tensors in models/inventory.py (FAMILY_RULES, the
tensor declarations), and one module here with a function registered by `@register(name)`. Every
layout is checked against the inventory (scenes/layout.py, check_against_inventory).
"""
from . import clip, decoder, vit, vlm, whisper  # noqa: F401  (each registers its family)
from .registry import FAMILIES, FAMILY_RULES, FamilyLayout, StackPart, family_of, register

__all__ = ["FAMILIES", "FAMILY_RULES", "FamilyLayout", "StackPart", "family_of", "register"]
