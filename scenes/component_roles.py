"""The role tables: what each block and group of a model's layout does, its axes and shape, as data.

Rows are tried in order and the first whose pattern and feature fit wins (scenes/component_info.py
reads them). A pattern is an id with its numbers written "#"; "{a,b}" is a choice. Texts and shape
parts name the model's sizes as {fields} (component_info.units: d_model, d_ff, head_dim, ...) and a
few words (act, norm, expert_kind, ...); a sentence or shape part naming a field the model lacks is
left out. Axes name each drawn dimension of a block: a unit ("d_ff"), alternatives tried in turn
("head_dim|qk_head_dim"), "t" the token axis, "keys" the positions attended to.
"""
from __future__ import annotations

from dataclasses import dataclass

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
    R("patches", "The input image cut into {n_patches} patches of {patch_size}×{patch_size} pixels, "
                 "each flattened to {patch_dim} numbers.", ("n_patches", "patch_dim")),
    R("features", ("The input: a log-mel spectrogram, {n_mels} mel bands per frame, {frames} frames.",),
      ("frames", "n_mels")),
    R("embed.patch.bias", "Bias of the patch embedding, added to every patch's vector.", ("d_model",)),
    R("embed.cls", "The learned [CLS] token: one d_model vector put before the patches; after the last layer "
                   "its vector stands for the whole image.", ("d_model",)),
    R("embed.conv{1,2,3}.weight", "A 1-D convolution over time (kernel {kernel}), drawn as the matrix it is: each "
                            "output frame is this matrix times a window of {kernel} input frames.",
      ("d_model", "conv1_in|conv_in")),
    R("embed.conv{1,2,3}.bias", "Bias of the convolution.", ("d_model",)),
    R("embed.conv{1,2,3}", "The convolution's output, one d_model vector per frame.", ("frames|positions", "d_model")),
    R("embed.conv{1,2,3}_act", "The convolution's output through GELU.", ("frames|positions", "d_model")),
    R("embed.{image,audio}", "The encoder's tokens (through the projector, if there is one), placed before the "
                             "text tokens: the decoder reads them as a prefix.", ("", "d_model")),
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
    R(f"{_HEADS}.scores_masked", "The scores with the prefix-LM mask: the image tokens and the text prompt "
                                 "see each other both ways; only the rest is causal.", ("t", "keys"),
      when="prefix_lm"),
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
    R("blocks.#.moe.router.bias", "Per-expert balancing bias, a buffer: added to the scores only to choose the "
                                  "experts, and moved by the load-balancing rule rather than learned, so the load "
                                  "evens out without an auxiliary loss.", ("n_experts",)),
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
    R("blocks.#.mamba.dA.#", "The decay exp(Δ·A) at this token: how much of each state entry survives the step "
                             "(near 1 keeps it, near 0 forgets it), per channel and state.", ("d_inner", "d_state")),
    R("blocks.#.mamba.dBx.#", "What this token writes into the state: Δ·B·x, per channel and state.",
      ("d_inner", "d_state")),
    R("blocks.#.mamba.h.#", "The state after this token, h = exp(ΔA)·h_prev + ΔB·x: a fixed-size memory of "
                            "everything so far, d_inner × d_state whatever the length.", ("d_inner", "d_state")),
    R("blocks.#.mamba.h_init", "The state the scan's first column starts from: zeros for a text read from its "
                               "start, or what the characters before the window left in a longer stream.",
      ("d_inner", "d_state")),
    R("blocks.#.mamba.alpha", "Mamba's hidden attention (Ali, Zimerman & Wolf 2024): how much token t' feeds "
                              "token t's output through the scan, C_t·(Π exp(ΔA))·ΔB_t', averaged over the "
                              "channels; zero for later tokens.", ("t", "t")),
    R("blocks.#.mamba.ssd.#", "Mamba-2's scan as one matrix per head (state-space duality, Dao & Gu 2024): "
                              "M[t,t'] = C_t·B_t' · the decays between them · Δ_t', so y = M·x + D·x, the same sum "
                              "as the recurrence. transformers computes it in chunks: each chunk's diagonal block as "
                              "a matrix product, the state (h at a chunk's end) between them. Zero for later tokens.",
      ("t", "t")),
    R("blocks.#.mamba.gated", "y · SiLU(z): the scan's output, gated.", ("t", "d_inner")),
    R("blocks.#.mamba.norm", "The scan's output gated by SiLU(z) and RMS-normalised.", ("t", "d_inner")),
    R("blocks.#.mamba.out.weight", "Output projection out_proj: brings the d_inner channels back to d_model.",
      ("d_model", "d_inner")),
    R("blocks.#.mamba.out.bias", "Bias of the output projection.", ("d_model",)),
    R("blocks.#.mamba.out", "The mixer's output for each token, added to the residual stream.",
      ("t", "d_model")),
    # ---- RWKV time mixing and channel mixing
    R("blocks.#.time_mix.alpha", "RWKV-4's hidden attention: WKV at token t is a weighted mean of the values of "
                                 "tokens t' ≤ t, weight ∝ e^(k_t' − (t−1−t')·w), e^(u + k_t) for t itself; averaged "
                                 "over the channels. Rows sum to 1 from the text's start; in a longer stream the "
                                 "state carried in takes the rest.", ("t", "t")),
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
    R("blocks.#.{time_mix,channel_mix}.shift", "Token shift: each row holds the previous token's input (zeros "
                                              "before the first), which the mixes blend with this token's.",
      ("t", "d_model")),
    R("blocks.#.time_mix.num", "The recurrence's numerator after each token: the past values weighted by e^key, "
                               "decayed by exp(−exp(decay)) at every step; a fixed-size state per channel.",
      ("t", "d_model")),
    R("blocks.#.time_mix.den", "The recurrence's denominator after each token: the same decayed sum of e^key "
                               "alone; WKV divides the numerator by it (with the bonus for the current token).",
      ("t", "d_model")),
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
    R("pool", "The one token the head reads: the [CLS] token's vector (an image tower) or the end-of-text "
              "token's (a text tower).", ("d_model",)),
    R("image_features", "The image's patch tokens after the tower, [CLS] dropped: what the decoder's prefix is "
                        "made of.", ("n_patches", "d_model")),
    R("classifier.weight", "Classifier head: one row per class ({n_classes} ImageNet classes drawn). Its size "
                           "depends on the label set, so it is not in the model's parameter count.",
      ("n_classes", "d_model")),
    R("classifier.bias", "Bias of the classifier, one per class (not in the count, like the classifier).",
      ("n_classes",)),
    R("classifier", "Class logits: the [CLS] token's score for every class.", ("n_classes",)),
    R("contrast.image", "The image embedding divided by its length: a point in the shared embedding space.",
      ("output_dim",)),
    R("contrast.text", "The text embedding divided by its length: a point in the same space.", ("output_dim",)),
    R("contrast.logits", "The score: the cosine similarity of the image and text embeddings times e^s, s the "
                         "learned logit scale."),
    R("logit_scale", "Logit scale s: one learned scalar; e^s sharpens the similarities (an inverse "
                     "temperature)."),
    R("projector.fc{1,2,3,4}.weight", "A projector layer: maps each image token to the next width (the last one to the "
                              "decoder's d_model)."),
    R("projector.fc{1,2,3,4}.bias", "Bias of this projector layer."),
    R("projector.fc{1,2,3,4}", "Each image token after this projector layer."),
    R("projector.act{1,2,3}", "The projector's activation between its layers."),
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
      shape=("vocabulary {vocab} × d_model {d_model}", "{n_patches} patches of {patch_dim}",
             "{learned_positions} positions × d_model {d_model}")),
    R("components", "The parts outside the language stack (encoders, projectors, free tensors), each drawn "
                    "as one block."),
    R("output", "Classifier head: the final norm, the [CLS] token's vector and the classifier over the classes.",
      when="vit"),
    R("output", "Pooled output: the final norm, the one token the tower is read at, and its projection into the "
                "shared embedding space.", when="clip", shape=("d_model {d_model} → {output_dim}",)),
    R("output", "The encoder's output: its final norm, which the decoder reads (its cross-attention keys and "
                "values, or its prefix tokens).", when="encoder", shape=("d_model {d_model}",)),
    R("contrast", "The shared embedding space: both towers' embeddings, normalised, and their similarity scaled "
                  "by the learned logit scale."),
    R("projector", "The projector: an MLP that maps the vision tower's tokens into the decoder's width; they "
                   "enter the decoder as a prefix."),
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
    R("blocks.#.mamba.scan", "The selective scan over time, one column per token: the decay exp(ΔA), the "
                             "input ΔB·x and the state h they make: h_t = exp(ΔA_t)·h_(t−1) + ΔB_t·x_t.",
      shape=("d_inner {d_inner} × d_state {d_state} per token",)),
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
