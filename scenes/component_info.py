"""What each block and group of a model's layout is, in the model's own terms: its role in a sentence,
its shape in model units ("49152 × 12288 (d_ff × d_model)", "96 heads × 128") and its parameter count.

Roles are data. BLOCK_ROLES and GROUP_ROLES are tables of rows (id pattern, text, axes or shape, and
the architecture feature the row needs); an id is matched with its numbers written "#"
("blocks.#.attn.head.#.wq"), and the first row whose pattern and feature fit wins. Texts name the
model's sizes as {fields} (`units`); a sentence or shape part whose field the model lacks is left out.

Parameters are a column over the layout's blocks, made in a few numpy operations from each block's
kind and true dimensions with models/params.py's own rules: a weight or bias is its rows × cols, an
expert its whole MLP, a component its own count, a tied unembedding nothing (W_E holds it), the
multi-token-prediction module nothing (it is reported apart, as params.py does). The few tensors
the layout draws no block for (MLA's latent norms, QK norms, Jamba's inner norms, RWKV-6's GroupNorm
shift, a patch embedding's bias and class token, a conv stem's later layers) are listed by `undrawn`
and counted in the group that holds them. A group's count is the sum of everything below it, so the
root's is the model's total (tests/test_structure_readability.py checks that, and each of
params.py's groups, for every registry model).
"""
from __future__ import annotations

import math
import re
import weakref
from dataclasses import dataclass

import numpy as np

from llmviz.models.params import (component_params, count_params, expert_params, human,
                                  linear_params, mtp_module_params, norm_params)
from llmviz.models.spec import (GATED_ACTIVATIONS, Architecture, EncoderComponent, ModelSpec,
                                ParameterComponent, ProjectorComponent)
from llmviz.scenes.layout_blocks import ACTIVATION_NAMES
from llmviz.scenes.layout_parts import (KIND_ACTIVATION, KIND_BIAS, KIND_COMPONENT, KIND_EXPERT,
                                        KIND_NORM_STAT, KIND_RESIDUAL, KIND_SCORES, KIND_TOKENS,
                                        KIND_WEIGHT)


@dataclass(frozen=True)
class Role:
    """One row of a role table: ids matching `pattern` (with `when` true of the model) are `text`.

    Blocks give `axes`, the unit name of each drawn dimension ("d_ff", "head_dim|qk_head_dim" tries
    each in turn, "t" the token axis, "keys" the positions attended to); groups give `shape`, parts
    of a shape line in {fields}."""
    pattern: str
    text: tuple[str, ...] | str
    axes: tuple[str, ...] = ()
    when: str = ""
    shape: tuple[str, ...] = ()


R = Role
_NORMS = "{ln0,blocks.#.ln1,blocks.#.ln2,blocks.#.ln_cross,ln_f}"
_HEADS = "blocks.#.{attn,cross_attn}.{head,kv_head}.#"
_MIX = "blocks.#.{time_mix,channel_mix}.mix_{k,v,r,g,w,x}"
_WIDEN = "{d_model} → {d_ff} → {d_model} (d_model → d_ff → d_model)"

BLOCK_ROLES: tuple[Role, ...] = (
    # ---- the input and the embedding
    R("tokens", "The input: one token id per position; each picks its row of the token embedding.", ("t",)),
    R("patches", "The input image cut into {positions} patches of {patch_size}×{patch_size} pixels, "
                 "each flattened to {patch_dim} numbers.", ("t", "patch_dim")),
    R("features", "The input features, one row per frame.", ("t", "*")),
    R("embed.tok.weight", "Token embedding W_E: one learned row of d_model numbers per vocabulary entry; "
                          "a token's vector is its row.", ("vocab", "d_model")),
    R("embed.tok", "Each input token's row of W_E.", ("t", "d_model")),
    R("embed.patch.weight", "Patch embedding: projects each flattened patch to a d_model vector (a conv2d "
                            "whose stride is the patch size).", ("d_model", "patch_dim")),
    R("embed.patch", "Each patch's embedding.", ("t", "d_model")),
    R("embed.conv.weight", "Convolutional stem: turns each window of input frames into a d_model vector.",
      ("d_model", "*")),
    R("embed.conv", "Each frame's embedding from the convolutional stem.", ("t", "d_model")),
    R("embed.pos.weight", "Learned position embedding W_P: one row per position, added to the token's "
                          "vector.", ("positions|context", "d_model")),
    R("embed.pos", "The position vectors added to the tokens: rows of W_P, or fixed sinusoids.", ("t", "d_model")),
    R("embed.out", "The start of the residual stream: {embedded}; every layer reads this stream and adds its "
                   "output to it.", ("t", "d_model")),
    # ---- norms
    R(f"{_NORMS}.weight", "The norm's learned scale γ: one per channel, multiplied in after normalising.",
      ("d_model",)),
    R(f"{_NORMS}.bias", "The norm's learned shift β: one per channel, added after the scale.", ("d_model",)),
    R(f"{_NORMS}.mean", "Each token's mean over its d_model channels; LayerNorm subtracts it.", ("t",)),
    R(f"{_NORMS}.std", "Each token's standard deviation over its channels; LayerNorm divides by it.", ("t",)),
    R(f"{_NORMS}.rms", "Each token's root mean square over its channels; RMSNorm divides by it.", ("t",)),
    R("ln_f.out", "The final norm's output: the vector the unembedding reads.", ("t", "d_model")),
    R(f"{_NORMS}.out", "Each token normalised ({norm}), then scaled per channel: what the next sub-block "
                       "reads.", ("t", "d_model")),
    # ---- attention: multi-head latent attention (DeepSeek)
    R("blocks.#.attn.q_latent.weight", "Query down-projection W_qa: compresses each token to a "
                                       "{q_lora_rank}-wide latent (then RMS-normalised) from which every "
                                       "head's query is made.", ("q_lora_rank", "d_model")),
    R("blocks.#.attn.q_latent", "Each token's query latent.", ("t", "q_lora_rank")),
    R("blocks.#.attn.kv_latent.weight", "Key-value down-projection W_kva: compresses each token to the "
                                        "{kv_lora_rank}-wide latent that is cached instead of every head's "
                                        "keys and values.", ("kv_lora_rank", "d_model")),
    R("blocks.#.attn.kv_latent", "Each token's KV latent: with the RoPE key, all the cache keeps of it.",
      ("t", "kv_lora_rank")),
    R("blocks.#.attn.k_rope.weight", "Shared rotary key projection: one {qk_rope_head_dim}-wide key per token, "
                                     "rotated by RoPE and shared by every head.", ("qk_rope_head_dim", "d_model")),
    R("blocks.#.attn.k_rope", "The shared rotary keys, after RoPE.", ("t", "qk_rope_head_dim")),
    R("blocks.#.attn.head.#.wq", ("Query up-projection of one head: {qk_nope_head_dim} plain channels and "
                                  "{qk_rope_head_dim} rotated by RoPE.",
                                  "It reads the {q_lora_rank}-wide query latent."),
      ("qk_head_dim", "q_lora_rank|d_model"), when="mla"),
    R("blocks.#.attn.head.#.wk", "Key up-projection of one head: from the shared KV latent to this head's "
                                 "plain key channels (the rotated part is the shared RoPE key).",
      ("qk_nope_head_dim", "kv_lora_rank"), when="mla"),
    R("blocks.#.attn.head.#.wv", "Value up-projection of one head: from the shared KV latent to this head's "
                                 "values.", ("v_head_dim", "kv_lora_rank"), when="mla"),
    # ---- attention: heads and K/V groups
    R("blocks.#.cross_attn.head.#.wq", "Query projection of one cross-attention head: what each token asks "
                                       "of the encoder's output.", ("head_dim", "d_model")),
    R("blocks.#.cross_attn.head.#.wk", "Key projection of one cross-attention head, applied to the encoder's "
                                       "{memory} output positions.", ("head_dim", "d_model")),
    R("blocks.#.cross_attn.head.#.wv", "Value projection of one cross-attention head, applied to the "
                                       "encoder's output.", ("head_dim", "d_model")),
    R("blocks.#.attn.head.#.wq", "Query projection of one head: maps each token's d_model vector to the "
                                 "query it looks with.", ("head_dim", "d_model")),
    R("blocks.#.attn.kv_head.#.wk", "Key projection of one K/V group, shared by {group_size} query heads "
                                    "(grouped-query attention).", ("head_dim", "d_model")),
    R("blocks.#.attn.kv_head.#.wv", "Value projection of one K/V group, shared by {group_size} query heads.",
      ("head_dim", "d_model")),
    R("blocks.#.attn.head.#.wk", "Key projection of one head: maps each token to the key queries are matched "
                                 "against.", ("head_dim", "d_model")),
    R("blocks.#.attn.head.#.wv", "Value projection of one head: maps each token to the value a head passes "
                                 "on when it attends to it.", ("head_dim", "d_model")),
    R(f"{_HEADS}.bq", "Bias added to the head's queries.", ("head_dim",)),
    R(f"{_HEADS}.bk", "Bias added to the keys.", ("head_dim",)),
    R(f"{_HEADS}.bv", "Bias added to the values.", ("head_dim",)),
    R(f"{_HEADS}.q", "The head's queries: one vector per token.", ("t", "head_dim|qk_head_dim")),
    R(f"{_HEADS}.k", "The keys: one vector per position, matched against every query.",
      ("keys", "head_dim|qk_head_dim")),
    R(f"{_HEADS}.v", "The values: one vector per position; what a head reads when it attends there.",
      ("keys", "head_dim|v_head_dim")),
    R(f"{_HEADS}.q_rope", "The queries rotated by RoPE: each pair of channels turned by an angle that grows "
                          "with the position, so scores depend on relative position.", ("t", "head_dim")),
    R(f"{_HEADS}.k_rope", "The keys rotated by RoPE, like the queries.", ("t", "head_dim")),
    R(f"{_HEADS}.scores", "Attention scores: each query's dot product with every key, divided by the square "
                          "root of the key width.", ("t", "keys")),
    R(f"{_HEADS}.scores_masked", "The scores with the causal mask: no token may look at a later one (−∞ "
                                 "above the diagonal).", ("t", "keys")),
    R(f"{_HEADS}.softmax", "Attention weights: each row of scores through softmax, summing to 1: how much "
                           "each token reads from each position.", ("t", "keys")),
    R(f"{_HEADS}.out", "The head's output: its attention weights times the values.",
      ("t", "head_dim|v_head_dim")),
    R("blocks.#.{attn,cross_attn}.proj.weight", "Output projection W_o: mixes the {n_heads} heads' "
                                                "concatenated outputs back into d_model channels.",
      ("d_model", "q_width|v_width")),
    R("blocks.#.{attn,cross_attn}.proj.bias", "Bias of the output projection.", ("d_model",)),
    R("blocks.#.{attn,cross_attn}.proj", "Attention's output for each token, added to the residual stream.",
      ("t", "d_model")),
    # ---- MLP
    R("blocks.#.mlp.fc.weight", "First MLP layer W_fc: widens each token from d_model to d_ff channels.",
      ("d_ff", "d_model")),
    R("blocks.#.mlp.fc.bias", "Bias of the first MLP layer.", ("d_ff",)),
    R("blocks.#.mlp.fc", "Each token widened to d_ff channels, before the {act}.", ("t", "d_ff")),
    R("blocks.#.mlp.gate.weight", "Gate projection W_gate: its {act} output multiplies the up projection, "
                                  "channel by channel.", ("d_ff", "d_model")),
    R("blocks.#.mlp.up.weight", "Up projection W_up: widens each token to d_ff channels, to be gated.",
      ("d_ff", "d_model")),
    R("blocks.#.mlp.down.weight", "Down projection W_down: brings the gated d_ff channels back to d_model.",
      ("d_model", "d_ff")),
    R("blocks.#.mlp.proj.weight", "Second MLP layer W_proj: brings the d_ff hidden channels back to d_model.",
      ("d_model", "d_ff")),
    R("blocks.#.mlp.{gate,up}.bias", "Bias of this projection.", ("d_ff",)),
    R("blocks.#.mlp.{down,proj}.bias", "Bias of the MLP's output projection.", ("d_model",)),
    R("blocks.#.mlp.gate", "The gate projection's output.", ("t", "d_ff")),
    R("blocks.#.mlp.act", "{act}(gate): how far each hidden channel is let through.", ("t", "d_ff"), when="gated"),
    R("blocks.#.mlp.{gelu,act}", "The hidden channels after the {act} non-linearity.", ("t", "d_ff")),
    R("blocks.#.mlp.up", "The up projection's output.", ("t", "d_ff")),
    R("blocks.#.mlp.gated", "{act}(gate) · up: the gated hidden channels.", ("t", "d_ff")),
    R("blocks.#.mlp.{down,proj}", "The MLP's output for each token, added to the residual stream.",
      ("t", "d_model")),
    # ---- mixture of experts
    R("blocks.#.moe.router.weight", "Router W_router: scores each token against each of the {n_experts} "
                                    "experts.", ("n_experts", "d_model")),
    R("blocks.#.moe.router.bias", "Per-expert balancing bias: added to the scores only to choose the experts, "
                                  "so the load evens out without an auxiliary loss.", ("n_experts",)),
    R("blocks.#.moe.router", "Router scores: each token's affinity for each expert.", ("t", "n_experts")),
    R("blocks.#.moe.gates", "Gate weights: the top-{top_k} experts each token is sent to, and how much each "
                            "one's output counts.", ("t", "n_experts")),
    R("blocks.#.moe.expert.#", "One routed expert: a {expert_kind} of its own ({expert_matrices} matrices); "
                               "the router sends each token to {top_k} of the {n_experts}.",
      ("expert_d_ff", "d_model")),
    R("blocks.#.moe.shared.#", "A shared expert: a {expert_kind} every token passes through, beside its "
                               "routed experts.", ("shared_d_ff|expert_d_ff", "d_model")),
    R("blocks.#.moe.out", "The mixture's output: the chosen experts' outputs weighted by their gates{shared_plus}, "
                          "added to the residual stream.", ("t", "d_model")),
    # ---- the residual stream
    R("blocks.#.{resid1,resid2,resid_cross}", "The residual stream after this sub-block: its output added to "
                                              "what came in.", ("t", "d_model")),
    # ---- Mamba and Mamba-2
    R("blocks.#.mamba.x.weight", "Input projection (the x half of in_proj): widens each token to the d_inner "
                                 "channels the scan runs over.", ("d_inner", "d_model")),
    R("blocks.#.mamba.z.weight", "Gate projection (the z half of in_proj): d_inner channels that gate the "
                                 "scan's output through SiLU.", ("d_inner", "d_model")),
    R("blocks.#.mamba.xBC.weight", "Projection to x, B and C (part of in_proj): the scan's input and each "
                                   "token's input and output matrices ({d_state} state channels each).",
      ("xbc_width", "d_model")),
    R("blocks.#.mamba.{x,z}.bias", "Bias of this projection.", ("d_inner",)),
    R("blocks.#.mamba.xBC.bias", "Bias of this projection.", ("xbc_width",)),
    R("blocks.#.mamba.conv.weight", "Depthwise causal convolution over the last {d_conv} tokens, one filter "
                                    "per channel.", ("d_inner|xbc_width", "d_conv")),
    R("blocks.#.mamba.conv.bias", "Bias of the convolution.", ("d_inner|xbc_width",)),
    R("blocks.#.mamba.dt_low.weight", "Low-rank step-size projection (part of x_proj): each token's "
                                      "{dt_rank}-wide code for Δ.", ("dt_rank", "d_inner")),
    R("blocks.#.mamba.B.weight", "Input-matrix projection (part of x_proj): how much each token writes into "
                                 "each of the {d_state} state channels.", ("d_state", "d_inner")),
    R("blocks.#.mamba.C.weight", "Output-matrix projection (part of x_proj): how each token reads the "
                                 "{d_state} state channels.", ("d_state", "d_inner")),
    R("blocks.#.mamba.dt.weight", "Step-size projection (part of in_proj): one Δ per head.",
      ("ssm_heads", "d_model"), when="mamba2"),
    R("blocks.#.mamba.dt.weight", "Step-size projection dt_proj: expands the low-rank code to one Δ per "
                                  "channel (then softplus).", ("d_inner", "dt_rank")),
    R("blocks.#.mamba.{dt.bias,dt_bias}", "Bias of the step sizes, before the softplus.",
      ("d_inner|ssm_heads",)),
    R("blocks.#.mamba.A_log", "A per head, stored as log(−A): each head's decay rate.", ("ssm_heads",),
      when="mamba2"),
    R("blocks.#.mamba.A_log", "The state matrix A, stored as log(−A): how fast each channel's state decays, "
                              "per state channel.", ("d_inner", "d_state")),
    R("blocks.#.mamba.D", "Skip connection D: how much of the input passes straight to the output.",
      ("d_inner|ssm_heads",)),
    R("blocks.#.mamba.norm.weight", "Scale of the gated RMSNorm after the scan.", ("d_inner",)),
    R("blocks.#.mamba.{x,z,xBC}", "This projection's output for each token.", ("t", "d_inner|xbc_width")),
    R("blocks.#.mamba.conv", "The convolution's output.", ("t", "d_inner|xbc_width")),
    R("blocks.#.mamba.conv_act", "SiLU of the convolution's output: what the scan reads.",
      ("t", "d_inner|xbc_width")),
    R("blocks.#.mamba.dt_low", "Each token's low-rank step-size code.", ("t", "dt_rank")),
    R("blocks.#.mamba.{B,C}", "Each token's own input (B) or output (C) matrix: what makes the scan "
                              "selective.", ("t", "d_state")),
    R("blocks.#.mamba.dt", "Step sizes Δ (after softplus): how far each token moves the state on.",
      ("t", "d_inner|ssm_heads")),
    R("blocks.#.mamba.y", "The selective scan's output: each token's read-out of the state after it.",
      ("t", "d_inner")),
    R("blocks.#.mamba.gated", "y · SiLU(z): the scan's output, gated.", ("t", "d_inner")),
    R("blocks.#.mamba.norm", "The scan's output gated by SiLU(z) and RMS-normalised.", ("t", "d_inner")),
    R("blocks.#.mamba.out.weight", "Output projection out_proj: brings the d_inner channels back to d_model.",
      ("d_model", "d_inner")),
    R("blocks.#.mamba.out.bias", "Bias of the output projection.", ("d_model",)),
    R("blocks.#.mamba.out", "The mixer's output for each token, added to the residual stream.",
      ("t", "d_model")),
    # ---- RWKV time mixing and channel mixing
    R(_MIX, "Token-shift mix: per channel, how much of the previous token is blended into this one before a "
            "projection (k key, v value, r receptance, g gate, w decay, x the data-dependent mixes).",
      ("d_model",)),
    R("blocks.#.time_mix.mix_lora_a", "Data-dependent token shift (RWKV-6), first half: a low-rank projection "
                                      "that makes the five mixes depend on the token.", ("d_model", "mix_lora5")),
    R("blocks.#.time_mix.mix_lora_b", "Data-dependent token shift (RWKV-6), second half.",
      ("mix_lora5", "d_model")),
    R("blocks.#.time_mix.decay_lora_a", "Data-dependent decay (RWKV-6), first half: a low-rank projection that "
                                        "makes each channel's decay depend on the token.",
      ("d_model", "decay_lora")),
    R("blocks.#.time_mix.decay_lora_b", "Data-dependent decay (RWKV-6), second half.", ("decay_lora", "d_model")),
    R("blocks.#.time_mix.receptance.weight", "Receptance projection: how much of the recurrence's output each "
                                             "channel lets through (after a sigmoid).", ("d_model", "d_model")),
    R("blocks.#.time_mix.key.weight", "Key projection: what each token writes into the WKV state.",
      ("d_model", "d_model")),
    R("blocks.#.time_mix.value.weight", "Value projection: the values the WKV state accumulates.",
      ("d_model", "d_model")),
    R("blocks.#.time_mix.gate.weight", "Gate projection (RWKV-6): a SiLU gate on the time mix's output.",
      ("d_model", "d_model")),
    R("blocks.#.time_mix.decay", "Per-channel decay w: how fast the WKV state forgets.", ("d_model",)),
    R("blocks.#.time_mix.bonus", "Bonus u (time_first): the extra weight of the current token in the WKV sum.",
      ("d_model",)),
    R("blocks.#.time_mix.wkv", "The WKV recurrence: for each token, a decaying average of the past values, "
                               "weighted by their keys.", ("t", "d_model")),
    R("blocks.#.time_mix.ln_x.weight", "Scale of the per-head GroupNorm on the WKV output.", ("d_model",)),
    R("blocks.#.time_mix.ln_x", "The WKV output normalised per head.", ("t", "d_model")),
    R("blocks.#.time_mix.out.weight", "Output projection of the time mix.", ("d_model", "d_model")),
    R("blocks.#.{time_mix,channel_mix}.out", "This mixer's output for each token, added to the residual stream.",
      ("t", "d_model")),
    R("blocks.#.channel_mix.key.weight", "Key projection: widens each token to d_ff channels (then squared "
                                         "ReLU).", ("d_ff", "d_model")),
    R("blocks.#.channel_mix.value.weight", "Value projection: brings the d_ff channels back to d_model.",
      ("d_model", "d_ff")),
    R("blocks.#.channel_mix.receptance.weight", "Receptance: a sigmoid gate on the channel mix's output.",
      ("d_model", "d_model")),
    R("blocks.#.channel_mix.act", "ReLU² of the keys.", ("t", "d_ff")),
    R("blocks.#.channel_mix.key", "The keys, d_ff wide.", ("t", "d_ff")),
    R("blocks.#.{time_mix,channel_mix}.{receptance,key,value,gate}", "This projection's output for each token.",
      ("t", "d_model")),
    # ---- the output
    R("lm_head.weight", "Unembedding W_U, tied: the token embedding W_E used again; each vocabulary entry's "
                        "score is its row's dot product with the final vector.", ("vocab", "d_model"), when="tied"),
    R("lm_head.weight", "Unembedding W_U: scores every vocabulary entry against each token's final vector.",
      ("vocab", "d_model")),
    R("logits", "Logits: each token's score for every vocabulary entry, as the next token.", ("t", "vocab")),
    R("probs", "Probabilities: the logits through softmax; the next token is drawn from them.", ("t", "vocab")),
    R("proj.weight", "Final projection to the {output_dim}-wide output embedding.", ("output_dim", "d_model")),
    R("proj", "Each token's output embedding.", ("t", "output_dim")),
    R("mtp.#", "Multi-token prediction module: predicts the token after next from the last layer's output (one "
               "MoE block, three norms, a 2·d_model → d_model projection); it shares the embedding and the "
               "output head."),
)

# What a component outside the language stack does, by its declared role.
COMPONENT_ROLES = {
    "vision-encoder": "The vision tower: an encoder that turns the image into vectors the model reads.",
    "audio-encoder": "The audio encoder: turns the sound into the vectors the model attends to.",
    "text-encoder": "The text encoder.",
    "projector": "The projector: an MLP that maps the encoder's vectors into the model's width.",
    "head": "A learned tensor outside every layer.",
}

GROUP_ROLES: tuple[Role, ...] = (
    R("model", "The whole model: the embedding, {n_layers} layers, then the output.",
      shape=("{n_layers} layers", "d_model {d_model}", "{n_heads} heads × {head_dim}",
             "{n_experts} experts, top-{top_k}", "vocabulary {vocab}", "context {context}")),
    R("embed", "Embedding: turns the input into the first vectors of the residual stream, d_model wide.",
      shape=("vocabulary {vocab} × d_model {d_model}", "{learned_positions} positions × d_model {d_model}",
             "{n_patches} patch positions × d_model {d_model}")),
    R("components", "The parts outside the language stack (encoders, projectors, free tensors), each drawn "
                    "as one block."),
    R("output", "Output: the final norm and the unembedding, which turns each token's last vector into "
                "scores over the vocabulary.", shape=("d_model {d_model} → vocabulary {vocab}",
                                                      "d_model {d_model} → {output_dim}")),
    R("blocks.#", "Layer {layer}: {mixer_text}{ffn_text}; {each} a norm of the residual stream and adds "
                  "its output back.", shape=("d_model {d_model}",)),
    R("blocks.#.attn", ("Multi-head latent attention: keys and values come from a {kv_lora_rank}-wide latent "
                        "per token, which is all the cache keeps (with one shared RoPE key).",
                        "Queries come from a {q_lora_rank}-wide latent."),
      when="mla", shape=("{n_heads} heads", "q·k {qk_head_dim} ({qk_nope_head_dim} + {qk_rope_head_dim} RoPE)",
                         "v {v_head_dim}", "KV latent {kv_lora_rank}", "Q latent {q_lora_rank}")),
    R("blocks.#.attn", "Grouped-query self-attention: {n_heads} query heads share {n_kv_heads} key/value "
                       "heads, {group_size} to a group.", when="gqa",
      shape=("{n_heads} query heads × {head_dim}", "{n_kv_heads} K/V heads × {head_dim}")),
    R("blocks.#.attn", "Self-attention: each head lets every token read from {seen}, weighted by how well its "
                       "query matches their keys.", shape=("{n_heads} heads × {head_dim}", "d_model {d_model}")),
    R("blocks.#.cross_attn", "Cross-attention: queries from this stack's tokens, keys and values from the "
                             "encoder's {memory} output positions.", shape=("{n_heads} heads × {head_dim}",)),
    R("blocks.#.attn.heads", "The bank of heads; their outputs are concatenated and projected by W_o.",
      when="mla", shape=("{n_heads} heads", "q·k {qk_head_dim}", "v {v_head_dim}")),
    R("blocks.#.attn.heads", "The bank of heads in their K/V groups; their outputs are concatenated and "
                             "projected by W_o.", when="gqa",
      shape=("{n_heads} query heads × {head_dim}", "{n_kv_heads} K/V heads")),
    R("blocks.#.{attn,cross_attn}.heads", "The bank of heads; their outputs are concatenated and projected by "
                                          "W_o.", shape=("{n_heads} heads × {head_dim}",)),
    R("blocks.#.attn.head.#", "Attention head {index} of {n_heads}: its own query, and keys and values "
                              "up-projected from the shared latent.", when="mla",
      shape=("Q, K: t × {qk_head_dim} (tokens × qk_nope+rope_head_dim)",
             "V: t × {v_head_dim} (tokens × v_head_dim)")),
    R("blocks.#.attn.head.#", "Query head {index}: its own queries and attention pattern; keys and values from "
                              "its K/V group.", when="gqa", shape=("Q: t × {head_dim} (tokens × head_dim)",)),
    R("blocks.#.{attn,cross_attn}.head.#", "Attention head {index} of {n_heads}: its own queries, keys, values "
                                           "and attention pattern.",
      shape=("Q, K, V: t × {head_dim} each (tokens × head_dim)",)),
    R("blocks.#.attn.kv_head.#", "K/V group {index}: one key and one value projection shared by {group_size} "
                                 "query heads.",
      shape=("K, V: t × {head_dim} each (tokens × head_dim)", "{group_size} query heads")),
    R("blocks.#.mlp", "MLP, gated: each token widened to d_ff by two projections, {act} of one gating the "
                      "other, then brought back to d_model.", when="gated", shape=(_WIDEN,)),
    R("blocks.#.mlp", "MLP: each token widened to d_ff channels, passed through {act}, and brought back to "
                      "d_model.", shape=(_WIDEN,)),
    R("blocks.#.moe", "Mixture of experts: a router sends each token to {top_k} of {n_experts} expert MLPs and "
                      "mixes their outputs by its gate weights{shared_text}.",
      shape=("{n_experts} experts × {expert_d_ff} (expert_d_ff)", "top-{top_k}",
             "{n_shared} shared × {shared_d_ff}")),
    R("blocks.#.moe.experts", "The {n_experts} routed experts: each a {expert_kind} of its own; only {top_k} "
                              "run for any one token.",
      shape=("{n_experts} experts × {expert_matrices} matrices of {d_model} × {expert_d_ff} "
             "(d_model × expert_d_ff)",)),
    R("blocks.#.moe.shared", "Shared experts: every token passes through them, beside its routed ones.",
      shape=("{n_shared} shared × {expert_matrices} matrices of {d_model} × {shared_d_ff} "
             "(d_model × shared_d_ff)",)),
    R("blocks.#.mamba", "Mamba-2 (state-space duality): a recurrence with one scalar decay per head, whose "
                        "step size and input and output matrices depend on the token.", when="mamba2",
      shape=("{ssm_heads} heads × {ssm_head_dim}", "d_state {d_state}", "d_inner {d_inner}")),
    R("blocks.#.mamba", "Mamba (selective state space): a per-channel recurrence whose step size and input and "
                        "output matrices depend on the token; linear in the sequence length, with a fixed-size "
                        "state.", shape=("d_inner {d_inner}", "d_state {d_state}", "conv {d_conv}",
                                         "dt_rank {dt_rank}")),
    R("blocks.#.time_mix", "RWKV time mixing: a linear recurrence (WKV) over the tokens, each channel decaying "
                           "at its own rate; the part of RWKV that acts like an RNN.", shape=("d_model {d_model}",)),
    R("blocks.#.channel_mix", "RWKV channel mixing: a squared-ReLU MLP on the token-shifted input, gated by a "
                              "receptance.", shape=(_WIDEN,)),
)

KIND_ROLES = {  # the fallback by kind, for an id no row names
    KIND_ACTIVATION: "An intermediate value the forward pass computes.",
    KIND_RESIDUAL: "The residual stream.",
    KIND_WEIGHT: "A learned weight.",
    KIND_BIAS: "A learned bias.",
    KIND_NORM_STAT: "A per-token statistic of a norm.",
    KIND_SCORES: "Scores or weights over positions or experts.",
    KIND_TOKENS: "The input.",
    KIND_EXPERT: "An expert.",
    KIND_COMPONENT: "A component outside the language stack.",
}

# How a unit is written in a shape line, where its field name is not what the model's papers call it.
UNIT_NAMES = {"q_width": "n_heads·head_dim", "kv_width": "n_kv_heads·head_dim", "v_width": "n_heads·v_head_dim",
              "qk_head_dim": "qk_nope+rope_head_dim", "xbc_width": "d_inner+2·d_state", "mix_lora5": "5·mix_lora",
              "patch_dim": "channels·patch²", "memory": "encoder positions"}
_LEARNED = (KIND_WEIGHT, KIND_BIAS)
_NUMBER = re.compile(r"(?<=\.)\d+(?=\.|$)")


def pattern_of(ident: str) -> str:
    """"blocks.3.attn.head.5.wq" -> "blocks.#.attn.head.#.wq": the id as the role tables key it."""
    return _NUMBER.sub("#", ident)


def _compile(pattern: str) -> re.Pattern:
    """A table pattern as a regex: "{a,b}" is a choice, "#" a number's place, everything else literal."""
    out = []
    for ch in pattern:
        out.append({"{": "(?:", "}": ")", ",": "|"}.get(ch) or re.escape(ch))
    return re.compile("".join(out))


_BLOCK_TABLE = [(_compile(r.pattern), r) for r in BLOCK_ROLES]
_GROUP_TABLE = [(_compile(r.pattern), r) for r in GROUP_ROLES]


def _find(table, ident: str, features: set[str]) -> Role | None:
    key = pattern_of(ident)
    for regex, role in table:
        if (not role.when or role.when in features) and regex.fullmatch(key):
            return role
    return None


# ---------------------------------------------------------------------- units and features

def units(arch: Architecture) -> dict[str, int]:
    """The architecture's sizes by name ("d_model": 12288, "d_ff": 49152, ...): what shapes are written in."""
    u: dict[str, int] = {}

    def put(name: str, value) -> None:
        if value:
            u[name] = int(value)

    put("d_model", arch.d_model)
    put("n_layers", arch.n_layers)
    put("d_ff", arch.d_ff)
    if arch.n_heads:
        put("n_heads", arch.n_heads)
        if arch.mla is None:  # MLA heads have no single width: see qk_head_dim and v_head_dim
            hd, kv = arch.head_width, arch.kv_heads
            put("head_dim", hd)
            put("n_kv_heads", kv)
            put("group_size", arch.n_heads // kv)
            put("q_width", arch.n_heads * hd)
            put("kv_width", kv * hd)
    if arch.vocab_size:
        pad = arch.vocab_pad_multiple
        put("vocab", math.ceil(arch.vocab_size / pad) * pad)
    put("context", arch.context_length)
    put("positions", arch.input.n_positions() or arch.context_length)
    if arch.pos_encoding == "learned" and arch.input.type != "patches":
        put("learned_positions", arch.context_length)
    if arch.input.type == "patches":
        put("patch_size", arch.input.patch_size)
        put("n_patches", arch.input.n_positions())
        put("patch_dim", arch.input.channels * arch.input.patch_size ** 2)
    put("output_dim", arch.output_dim)
    if arch.moe is not None:
        moe = arch.moe
        put("n_experts", moe.n_experts)
        put("top_k", moe.top_k)
        put("expert_d_ff", moe.expert_d_ff)
        put("n_shared", moe.n_shared_experts)
        if moe.n_shared_experts:
            put("shared_d_ff", moe.shared_expert_d_ff or moe.expert_d_ff)
        put("expert_matrices", 3 if arch.activation in GATED_ACTIVATIONS else 2)
    if arch.mla is not None:
        mla = arch.mla
        put("q_lora_rank", mla.q_lora_rank)
        put("kv_lora_rank", mla.kv_lora_rank)
        put("qk_nope_head_dim", mla.qk_nope_head_dim)
        put("qk_rope_head_dim", mla.qk_rope_head_dim)
        put("qk_head_dim", mla.qk_nope_head_dim + mla.qk_rope_head_dim)
        put("v_head_dim", mla.v_head_dim)
        put("v_width", arch.n_heads * mla.v_head_dim)
    if arch.ssm is not None:
        ssm = arch.ssm
        inner = ssm.expand * arch.d_model
        put("d_inner", inner)
        put("d_state", ssm.d_state)
        put("d_conv", ssm.d_conv)
        put("dt_rank", ssm.dt_rank)
        if ssm.head_dim:
            put("ssm_head_dim", ssm.head_dim)
            put("ssm_heads", inner // ssm.head_dim)
            put("xbc_width", inner + 2 * ssm.n_groups * ssm.d_state)
    if arch.rwkv is not None:
        put("mix_lora5", 5 * arch.rwkv.mix_lora_dim if arch.rwkv.mix_lora_dim else None)
        put("decay_lora", arch.rwkv.decay_lora_dim)
    for component in arch.components:  # what cross-attention reads: the encoder's output length
        if isinstance(component, EncoderComponent):
            put("memory", component.input.n_positions() or component.context_length)
            break
    return u


def _words(arch: Architecture) -> dict[str, str]:
    """The names the texts use besides sizes."""
    gated = arch.activation in GATED_ACTIVATIONS
    act = ACTIVATION_NAMES.get(arch.activation or "gelu", "the activation")
    shared = arch.moe is not None and arch.moe.n_shared_experts
    positional = arch.pos_encoding in ("learned", "sinusoidal")
    return {"act": act, "norm": "LayerNorm" if arch.norm == "layernorm" else "RMSNorm",
            "embedded": "each token's embedding plus its position" if positional else "each token's embedding",
            "expert_kind": f"{act}-gated MLP" if gated else f"{act} MLP",
            "seen": "the tokens before it" if arch.causal else "every token",
            "shared_plus": " plus the shared experts'" if shared else "",
            "shared_text": f", beside {arch.moe.n_shared_experts} shared expert"
                           f"{'s' if shared and shared > 1 else ''} every token uses" if shared else ""}


def _features(arch: Architecture) -> set[str]:
    f = {arch.norm, arch.unembedding}
    if arch.mla is not None:
        f.add("mla")
    elif arch.n_heads and arch.kv_heads < arch.n_heads:
        f.add("gqa")
    if arch.activation in GATED_ACTIVATIONS:
        f.add("gated")
    f.update(arch.layer_mixers()[:1] if arch.hybrid is None else arch.hybrid.period)
    return f


_MIXER_TEXT = {"attention": "self-attention, where tokens read from each other",
               "mamba": "a Mamba selective state-space scan", "mamba2": "a Mamba-2 state-space scan",
               "rwkv4": "RWKV time mixing, then channel mixing", "rwkv6": "RWKV-6 time mixing, then channel mixing"}


def _layer_words(arch: Architecture, layer: int) -> tuple[dict, set]:
    """A layer's own fields and features: its mixer, and whether its feed-forward part is a mixture."""
    mixer = arch.layer_mixers()[layer]
    if mixer.startswith("rwkv"):
        ffn = ""
    elif arch.is_moe_layer(layer):
        ffn = f", then a mixture of {arch.moe.n_experts} experts"
    elif arch.has_ffn(layer):
        ffn = ", then an MLP"
    else:
        ffn = ""
    features = {mixer}
    mixer_text = _MIXER_TEXT.get(mixer, mixer)
    if mixer == "attention" and arch.cross_attention:
        mixer_text += ", cross-attention to the encoder's output"
    several = bool(ffn) or mixer.startswith("rwkv") or arch.cross_attention
    return {"layer": layer, "mixer_text": mixer_text, "ffn_text": ffn,
            "each": "each reads" if several else "it reads"}, features


def _fill(templates, fields: dict) -> list[str]:
    """Each template with its fields filled in; one that names a field the model lacks is left out."""
    out = []
    for template in ((templates,) if isinstance(templates, str) else templates):
        try:
            out.append(template.format_map(fields))
        except (KeyError, IndexError, ValueError):
            continue
    return out


# ---------------------------------------------------------------------- parameters

@dataclass(frozen=True)
class Undrawn:
    """A learned tensor the layout has no block for, counted in the group that holds it."""
    group_id: str     # "blocks.3.attn"
    category: str     # its group in models/params.py's count ("attention", "embedding", ...)
    what: str         # "q_norm γ"
    count: int


def undrawn(arch: Architecture) -> list[Undrawn]:
    """The learned tensors of `arch` that scenes/layout_blocks.py draws no block for, layer by layer."""
    out: list[Undrawn] = []
    source, d = arch.input, arch.d_model
    if source.type == "patches":
        if source.bias:
            out.append(Undrawn("embed", "embedding", "patch embedding bias", d))
        if source.cls_token:
            out.append(Undrawn("embed", "embedding", "class token", d))
    elif source.type == "conv1d":
        # The layout draws the first convolution's weight; its bias and the later convolutions are not drawn.
        later, n_in = 0, source.in_channels
        for k, _ in enumerate(source.strides):
            later += linear_params(n_in * source.kernel, d, source.bias) if k else (d if source.bias else 0)
            n_in = d
        out.append(Undrawn("embed", "embedding", "convolution biases and later convolutions", later))
    for i, mixer in enumerate(arch.layer_mixers()):
        if mixer == "attention" and arch.mla is not None:
            if arch.mla.q_lora_rank is not None:
                out.append(Undrawn(f"blocks.{i}.attn", "attention", "q_norm γ (of the query latent)",
                                   norm_params(arch, arch.mla.q_lora_rank)))
            out.append(Undrawn(f"blocks.{i}.attn", "attention", "kv_norm γ (of the KV latent)",
                               norm_params(arch, arch.mla.kv_lora_rank)))
        elif mixer == "attention" and arch.qk_norm:
            for scope, category in (("attn", "attention"),) + ((("cross_attn", "cross_attention"),)
                                                               if arch.cross_attention else ()):
                out.append(Undrawn(f"blocks.{i}.{scope}", category, "q_norm and k_norm γ (per-head QK norms)",
                                   2 * norm_params(arch, arch.head_width)))
        elif mixer == "mamba" and arch.ssm.inner_norms:
            out.append(Undrawn(f"blocks.{i}.mamba", "ssm", "RMSNorm γ of Δ, B and C",
                               arch.ssm.dt_rank + 2 * arch.ssm.d_state))
        elif mixer == "rwkv6":
            out.append(Undrawn(f"blocks.{i}.time_mix", "time_mix", "GroupNorm shift β (ln_x.bias)", d))
    return out


def block_params(layout, arch: Architecture) -> np.ndarray:
    """Parameters each block holds, counted in the model's total (int64 per layout row)."""
    kind = np.asarray(layout.kind)
    rows, cols = np.asarray(layout.rows, np.int64), np.asarray(layout.cols, np.int64)
    out = np.where(np.isin(kind, _LEARNED), rows * cols, 0).astype(np.int64)
    experts = kind == KIND_EXPERT
    out[experts] = expert_params(arch, rows[experts])        # an expert block is (its d_ff) × d_model
    components = {f"components.{c.name}": c for c in arch.components}
    for row in np.flatnonzero(kind == KIND_COMPONENT):
        component = components.get(layout.ids[row])
        out[row] = component_params(component) if component is not None else 0  # mtp.k: reported apart
    if arch.unembedding == "tied":
        try:
            out[layout.index("lm_head.weight")] = 0                           # W_E holds these numbers
        except KeyError:
            pass
    return out


def _depth(parent: np.ndarray) -> np.ndarray:
    """Each group's depth below the root, in one vectorised pass per level."""
    depth = np.zeros(len(parent), np.int64)
    up = parent.copy()
    while (up >= 0).any():
        depth += up >= 0
        up = np.where(up >= 0, parent[np.maximum(up, 0)], -1)
    return depth


# ---------------------------------------------------------------------- descriptions

@dataclass(frozen=True)
class Description:
    """What the tooltip and the details panel say about one block or group."""
    role: str           # what it does, in a sentence or two
    shape: str          # in model units: "49152 × 12288 (d_ff × d_model)", "96 heads × 128"
    params: int         # parameters counted in the model's total (0 for activations, a tied matrix, MTP)
    params_text: str    # "603,979,776 parameters (604.0M)", "activation: 49,152 values per token, not parameters"


def _count_text(n: int) -> str:
    return f"{n:,} parameter{'' if n == 1 else 's'}" + (f" ({human(n)})" if n >= 10_000 else "")


class LayoutInfo:
    """Roles, model-unit shapes and parameter counts of one layout's blocks and groups (`info_for` makes one)."""

    def __init__(self, layout, spec: ModelSpec):
        self.layout, self.spec = layout, spec
        arch = self.arch = spec.architecture
        self.units = units(arch)
        self.fields = {**self.units, **_words(arch)}
        self.features = _features(arch)
        self.block_params = block_params(layout, arch)
        self.undrawn = undrawn(arch)
        count = count_params(spec)
        self.total, self.excluded = count.total, dict(count.excluded)
        # Group sums: each block into its group, each undrawn tensor into its group, then up the tree
        # one level at a time (deepest first), vectorised.
        parent = np.asarray(layout.group_parent, np.int64)
        n_groups = len(parent)
        own = np.zeros(n_groups, np.int64)
        group = np.asarray(layout.group, np.int64)
        inside = group >= 0
        np.add.at(own, group[inside], self.block_params[inside])
        self.undrawn_at: dict[int, list[Undrawn]] = {}
        for item in self.undrawn:
            g = self._group_or_root(item.group_id)
            own[g] += item.count
            self.undrawn_at.setdefault(g, []).append(item)
        total = own.copy()
        depth = _depth(parent)
        for level in range(int(depth.max()) if n_groups else 0, 0, -1):
            at = np.flatnonzero(depth == level)
            np.add.at(total, parent[at], total[at])
        self.group_params = total

    def _group_or_root(self, group_id: str) -> int:
        """The group's index, else its nearest existing ancestor ("blocks.3.attn" -> "blocks.3"), else the root."""
        while group_id:
            try:
                return self.layout.group_index(group_id)
            except KeyError:
                group_id = group_id.rpartition(".")[0]
        return 0

    # ------------------------------------------------------------------ blocks
    def _layer_context(self, ident: str) -> tuple[dict, set]:
        numbers = [int(n) for n in _NUMBER.findall(ident)]
        fields, features = dict(self.fields), set(self.features)
        if ident.startswith("blocks.") and numbers and numbers[0] < self.arch.n_layers:
            words, layer_features = _layer_words(self.arch, numbers[0])
            fields.update(words)
            features |= layer_features
        if numbers:
            fields["index"] = numbers[-1]
        return fields, features

    def block(self, row: int) -> Description:
        layout = self.layout
        ident, kind = layout.ids[row], int(layout.kind[row])
        fields, features = self._layer_context(ident)
        if kind == KIND_COMPONENT:
            return self._component(row, ident)
        role = _find(_BLOCK_TABLE, ident, features)
        text = " ".join(_fill(role.text, fields)) if role is not None else KIND_ROLES.get(kind, "")
        dims = _label_dims(layout.label[row], int(layout.rows[row]), int(layout.cols[row]))
        names = [self._axis_name(d, role.axes[k] if role is not None and k < len(role.axes) else "")
                 for k, d in enumerate(dims)]
        shape = _shape_text(dims, names)
        params = int(self.block_params[row])
        if kind == KIND_EXPERT:
            matrices = self.units.get("expert_matrices", 2)
            r, c = int(layout.rows[row]), int(layout.cols[row])
            shape = f"{matrices} matrices of {shape}" + (": gate, up and down" if matrices == 3 else ": up and down")
            bias = " + biases" if self.arch.bias else ""
            return Description(text, shape, params, f"{_count_text(params)}: {matrices} × {c:,} × {r:,}{bias}")
        if kind in _LEARNED:
            if params == 0 and ident == "lm_head.weight":
                tied = int(layout.rows[row]) * int(layout.cols[row])
                return Description(text, shape, 0, f"no parameters of its own: tied to W_E, whose "
                                                   f"{tied:,} are counted once, in the embedding")
            return Description(text, shape, params, _count_text(params))
        # Activations, scores, the residual stream, norm statistics, the input: computed, not learned.
        what = {KIND_TOKENS: "input", KIND_SCORES: "computed scores",
                KIND_NORM_STAT: "per-token statistic", KIND_RESIDUAL: "residual stream"}.get(kind, "activation")
        drawn = f"drawn for t = {layout.n_tokens} tokens"
        if not dims or dims[0] != "t":
            return Description(text, shape, 0, f"{what}, not parameters")
        rest = list(zip(dims[1:], names[1:]))
        if not rest:
            values = "one token id per position" if kind == KIND_TOKENS else "one value per token"
        elif any(d == "t" for d, _ in rest):
            values = "one value per token and key position"
        else:
            width = math.prod(int(d) for d, _ in rest)
            unit = f" ({' × '.join(n or d for d, n in rest)})" if any(n for _, n in rest) else ""
            values = f"{width:,} value{'s' if width != 1 else ''} per token{unit}"
        return Description(text, shape, 0, f"{what}, not parameters: {values}; {drawn}")

    def _axis_name(self, dim: str, candidates: str) -> str:
        options = candidates.split("|") if candidates else []
        if dim == "t":
            return "key positions" if "keys" in options else "tokens"
        value = int(dim) if dim.isdigit() else None
        for name in options:
            if name == "keys" and value is not None and value == self.units.get("memory"):
                return UNIT_NAMES["memory"]
            if self.units.get(name) == value:
                return UNIT_NAMES.get(name, name)
        return ""

    def _component(self, row: int, ident: str) -> Description:
        arch = self.arch
        if ident.startswith("mtp."):
            apart = mtp_module_params(arch)
            text = " ".join(_fill(_find(_BLOCK_TABLE, ident, self.features).text, self.fields))
            return Description(text, f"d_model {arch.d_model}", 0,
                               f"{_count_text(apart)}, reported apart: not in the {human(self.total)} total")
        component = next((c for c in arch.components if f"components.{c.name}" == ident), None)
        if component is None:
            return Description(KIND_ROLES[KIND_COMPONENT], "", 0, "")
        text = COMPONENT_ROLES.get(component.role, KIND_ROLES[KIND_COMPONENT])
        if isinstance(component, EncoderComponent):
            positions = component.input.n_positions() or component.context_length
            shape = f"{component.n_layers} layers × d_model {component.d_model}" + \
                (f", {component.n_heads} heads" if component.n_heads else "") + \
                (f", {positions} positions" if positions else "")
            text += " Drawn as one block: its layers are not laid out."
        elif isinstance(component, ProjectorComponent):
            shape = " → ".join(str(x) for x in component.dims)
        elif isinstance(component, ParameterComponent):
            shape = " × ".join(str(x) for x in component.shape) or "a scalar"
        else:
            shape = ""
        return Description(text, shape, int(self.block_params[row]), _count_text(int(self.block_params[row])))

    # ------------------------------------------------------------------ groups
    def group(self, g: int) -> Description:
        layout = self.layout
        ident = layout.group_ids[g]
        fields, features = self._layer_context(ident)
        role = _find(_GROUP_TABLE, ident, features)
        text = " ".join(_fill(role.text, fields)) if role is not None else ""
        shape = ", ".join(_fill(role.shape, fields)) if role is not None else ""
        params = int(self.group_params[g])
        params_text = _count_text(params)
        undrawn_here = [u for k, items in self.undrawn_at.items() if self._is_below(k, g) for u in items]
        if undrawn_here:
            extra = sum(u.count for u in undrawn_here)
            kinds = sorted({u.what for u in undrawn_here})
            params_text += f", {extra:,} of them in tensors drawn without a block ({'; '.join(kinds)})"
        if self.arch.unembedding == "tied" and ident == "output" and "lm_head.weight" in self._ids_below(g):
            params_text += "; W_U is W_E (tied), counted once, in the embedding"
        if g == 0 and self.excluded:
            params_text += "; " + ", ".join(f"{human(v)} more in the {k.upper()} module, reported apart"
                                            for k, v in self.excluded.items())
        return Description(text, shape, params, params_text)

    def _ids_below(self, g: int) -> set[str]:
        """Ids of the blocks directly in group g (enough for the output group's W_U)."""
        return {self.layout.ids[r] for r in np.flatnonzero(np.asarray(self.layout.group) == g)}

    def _is_below(self, k: int, g: int) -> bool:
        parent = self.layout.group_parent
        while k >= 0:
            if k == g:
                return True
            k = int(parent[k])
        return False


def _label_dims(label: str, rows: int, cols: int) -> list[str]:
    """The block's dimensions as its caption states them ("Q  t×16" -> ["t", "16"]); else its rows and cols."""
    tail = label.rpartition("  ")[2]
    parts = tail.split("×")
    if tail and all(p == "t" or p.isdigit() for p in parts):
        return parts
    if rows == 1:
        return [str(cols)]
    return [str(rows), str(cols)]


def _shape_text(dims: list[str], names: list[str]) -> str:
    """["49152", "12288"], ["d_ff", "d_model"] -> "49152 × 12288 (d_ff × d_model)"."""
    numbers = " × ".join(dims)
    if not any(names):
        return numbers
    return f"{numbers} ({' × '.join(n or d for d, n in zip(dims, names))})"


_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def info_for(layout, spec: ModelSpec | None = None) -> LayoutInfo | None:
    """The layout's LayoutInfo, made once (a few numpy passes; ~0.1 s on GPT-3). Without `spec`, the
    registry's spec of layout.spec_id; None when there is none (a layout of an unregistered spec)."""
    info = _CACHE.get(layout)
    if info is not None and (spec is None or info.spec is spec):
        return info
    if spec is None:
        from llmviz.models.registry import load_registry

        registry = load_registry()
        if layout.spec_id not in registry:
            return None
        spec = registry.get(layout.spec_id)
    info = LayoutInfo(layout, spec)
    _CACHE[layout] = info
    return info


__all__ = ["BLOCK_ROLES", "GROUP_ROLES", "COMPONENT_ROLES", "KIND_ROLES", "UNIT_NAMES", "Role", "Description",
           "LayoutInfo", "Undrawn", "info_for", "units", "undrawn", "block_params", "pattern_of"]
