"""The pieces every stack shares (norms, linear rows, attention, MLP, the token embedding and the
output) as Parts whose block ids are the tensor ids the simulation trace uses; the other mixers
(MoE, Mamba, RWKV) and the families' own stems live in scenes/layouts/, one module each.

Dense GPT-style models get exactly the ids of models/sim/tensor_ids.py. Other families add
ids in the same style, relative to "blocks.{i}" inside a layer:

    RMSNorm           ln1.rms, ln1.out, ln1.weight               (no mean/std, no bias)
    RoPE              attn.head.{h}.q_rope, ...k_rope             (no embed.pos / embed.tok;
                                                                   the embedding is embed.out)
    GQA / MQA         attn.kv_head.{g}.wk / .k / .wv / .v (/ .k_rope, .bk, .bv); query heads keep
                      attn.head.{h}.wq / .q / .scores / .scores_masked / .softmax / .out
    MLA (DeepSeek)    attn.q_latent(.weight), attn.kv_latent(.weight), attn.k_rope(.weight);
                      per head wq (from the q latent), wk / wv (from the kv latent), q, k, v, ...
    gated MLP         mlp.gate(.weight), mlp.act = act(gate), mlp.up(.weight),
                      mlp.gated = act(gate)·up, mlp.down(.weight)
    other activations mlp.act instead of mlp.gelu
    MoE               ln2.*, moe.router(.weight/.bias), moe.gates, moe.expert.{e},
                      moe.shared.{s}, moe.out
    Mamba             mamba.x / z / conv / conv_act / dt_low / B / C / dt / y / gated / out
                      (+ .weight/.bias), mamba.A_log, mamba.D; Mamba-2: mamba.z / xBC / dt /
                      conv / conv_act / y / norm / out, A_log, D
    RWKV              time_mix.* (key, value, receptance, wkv, out, decay, bonus, mixes),
                      channel_mix.* (key, act, value, receptance, out)
    cross-attention   ln_cross.*, cross_attn.head.{h}.*, cross_attn.proj, resid_cross
    outside layers    patches / embed.patch(.weight) for image input, ln0.* (RWKV),
                      components.{name}, mtp.{k}, proj(.weight) (a final projection)

Residual stream blocks: resid1 after the sequence mixer, resid_cross after cross-attention,
resid2 after the feed-forward part.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from llmviz.models.attention_mask import mask_caption
from llmviz.models.spec import (GATED_ACTIVATIONS, Architecture, EncoderComponent,
                                ParameterComponent, ProjectorComponent, Stack)

from .layout_parts import (ATTACHED_GAP, KIND_ACTIVATION, KIND_BIAS, KIND_COMPONENT, KIND_EXPERT,
                           KIND_NORM_STAT, KIND_RESIDUAL, KIND_SCORES, KIND_TOKENS, KIND_WEIGHT,
                           Axis, Part, arrange, block, display_length, gap_for, grid_columns,
                           grid_offsets, grouped, hstack, merge, ring_offsets, shift, side_label,
                           tile, title_room, titled, vstack)

BANK_ASPECT = 2.0          # head banks about twice as wide as tall
ACTIVATION_NAMES = {"gelu": "GELU", "gelu_tanh": "GELU (tanh)", "quick_gelu": "QuickGELU", "relu": "ReLU", "relu2": "ReLU²",
                    "silu": "SiLU", "swiglu": "SiLU", "geglu": "GELU"}


@dataclass(frozen=True)
class Dims:
    """What every piece needs: the architecture, the token axis and derived sizes."""
    arch: Architecture
    tok: Axis                  # the token axis, labelled "t"
    vocab: int | None          # embedding rows, padded like the checkpoint
    memory: int                # positions cross-attention reads (the encoder's output length)
    bidirectional: int = 0     # a prefix-LM's first positions, which attend to each other both ways

    @property
    def c(self) -> int:
        return self.arch.d_model

    @property
    def mask(self) -> str:
        return mask_caption(self.tok.n, self.bidirectional)


def as_architecture(stack: Stack) -> Architecture:
    """An encoder component (a Stack) as a plain attention Architecture, so every piece reads one type."""
    if isinstance(stack, Architecture):
        return stack
    return Architecture(**{f.name: getattr(stack, f.name) for f in dataclasses.fields(Stack)})


def make_dims(arch: Architecture, n_tokens: int) -> Dims:
    vocab = None
    if arch.vocab_size is not None:
        pad = arch.vocab_pad_multiple
        vocab = math.ceil(arch.vocab_size / pad) * pad
    memory = n_tokens
    for component in arch.components:
        if isinstance(component, EncoderComponent):
            memory = component.input.n_positions() or component.context_length or n_tokens
            break
    return Dims(arch, Axis(n_tokens, "t"), vocab, memory)


def center_on(part: Part, block_id: str) -> Part:
    """The part shifted so that one of its blocks is centred on x = 0 (the residual stream)."""
    return shift(part, -part.center[part.find(block_id), 0], 0.0)


def linear(w_id: str, w_shape, w_name: str, out_id: str, out_shape, out_name: str,
           bias_id: str | None = None, bias_name: str = "b", after: tuple[Part, ...] = (),
           out_kind: int = KIND_ACTIVATION, bias_kind: int = KIND_BIAS) -> Part:
    """A weight and, right of it, its output (with the bias over it and what follows below).
    ``bias_kind`` KIND_BUFFER: a bias that is not learned by gradients (DeepSeek-V3's router)."""
    weight = block(w_id, KIND_WEIGHT, w_shape, w_name)
    out = block(out_id, out_kind, out_shape, out_name)
    if bias_id is not None:
        out = vstack([block(bias_id, bias_kind, (w_shape[0],), bias_name), out],
                     gap=ATTACHED_GAP, align="left")
    if after:
        out = vstack([out, *after], align="left")
    return hstack([weight, out])


def norm_part(prefix: str, d: Dims, name: str) -> Part:
    """A norm's per-token statistics left of its output, its learned scale (and shift) above."""
    if d.arch.norm == "layernorm":
        stats = [block(f"{prefix}.mean", KIND_NORM_STAT, (d.tok,), "mean"),
                 block(f"{prefix}.std", KIND_NORM_STAT, (d.tok,), "std")]
        params = [block(f"{prefix}.weight", KIND_WEIGHT, (d.c,), "γ"),
                  block(f"{prefix}.bias", KIND_BIAS, (d.c,), "β")]
    else:
        stats = [block(f"{prefix}.rms", KIND_NORM_STAT, (d.tok,), "rms")]
        params = [block(f"{prefix}.weight", KIND_WEIGHT, (d.c,), "γ")]
    out = vstack([*params, block(f"{prefix}.out", KIND_ACTIVATION, (d.tok, d.c), name)],
                 gap=ATTACHED_GAP, align="left")
    return hstack([hstack(stats, gap=ATTACHED_GAP, align="bottom"), out], align="bottom")


# ---------------------------------------------------------------- attention

@dataclass(frozen=True)
class HeadShape:
    """The matrices of one head: weight shapes (out, in) and output widths."""
    wq: tuple[int, int]
    wk: tuple[int, int]
    wv: tuple[int, int]
    qk: int                    # width of q and k
    v: int                     # width of v and of the head's output
    keys: int | Axis           # key positions (t, or the encoder's length for cross-attention)
    bias_q: bool
    bias_k: bool
    bias_v: bool
    rope: bool                 # separate rotated q and k blocks
    causal: bool
    mask: str = "causal mask"


def kv_rows(prefix: str, s: HeadShape) -> list[Part]:
    """The key and value projections of one head (or one K/V group): weight, bias, output."""
    def name(suffix: str) -> str:
        return f"{prefix}.{suffix}" if prefix else suffix

    k_row = linear(name("wk"), s.wk, "W_k", name("k"), (s.keys, s.qk), "K",
                   name("bk") if s.bias_k else None, "b_k")
    if s.rope:
        k_row = hstack([k_row, block(name("k_rope"), KIND_ACTIVATION, (s.keys, s.qk), "RoPE(K)")])
    v_row = linear(name("wv"), s.wv, "W_v", name("v"), (s.keys, s.v), "V",
                   name("bv") if s.bias_v else None, "b_v")
    return [k_row, v_row]


def head_part(s: HeadShape, tok: Axis, own_kv: bool) -> Part:
    """One head: its projections in rows, then scores, masked scores, softmax and output."""
    q_row = linear("wq", s.wq, "W_q", "q", (tok, s.qk), "Q", "bq" if s.bias_q else None, "b_q")
    if s.rope:
        q_row = hstack([q_row, block("q_rope", KIND_ACTIVATION, (tok, s.qk), "RoPE(Q)")])
    rows = [q_row] + (kv_rows("", s) if own_kv else [])
    pattern = [block("scores", KIND_SCORES, (tok, s.keys), "scores")]
    if s.causal:
        pattern.append(block("scores_masked", KIND_SCORES, (tok, s.keys), s.mask))
    pattern += [block("softmax", KIND_SCORES, (tok, s.keys), "softmax"),
                block("out", KIND_ACTIVATION, (tok, s.v), "head out")]
    return vstack(rows + [hstack(pattern, align="top")], align="left")


COMPACT_TITLE_HEADS = 16  # above this many heads, each tile is titled by its number only


def _head_grid(head: Part, heads: range, scope: str, room_text: str) -> Part:
    """Query heads in a grid, each its own group titled "head h"."""
    room = title_room(head, room_text)
    cell_w, cell_h = head.width, head.height + room
    gap = gap_for([cell_w, cell_h])
    ncols = grid_columns(len(heads), cell_w + gap, cell_h + gap, BANK_ASPECT)
    offsets = grid_offsets(len(heads), cell_w, cell_h, ncols, gap)
    names = [f"head {h}" for h in heads]
    # In a big grid the tiles are narrower than "head 95" at a legible size: the number alone titles them.
    titles = names if len(heads) <= COMPACT_TITLE_HEADS else [str(h) for h in heads]
    return tile(head, offsets, [f"{scope}.head.{h}" for h in heads], group_labels=names,
                titles=titles, title_h=room / 2)


def head_bank(d: Dims, s: HeadShape, scope: str, n_heads: int, n_kv: int) -> Part:
    """All heads of one attention: a grid of heads, or for GQA/MQA a grid of K/V groups,
    each holding its keys and values and a grid of the query heads that share them."""
    if n_kv == n_heads:
        bank = _head_grid(head_part(s, d.tok, own_kv=True), range(n_heads), scope,
                          f"head {n_heads - 1}")
        return grouped(bank, f"{scope}.heads", f"{n_heads} heads")
    q_head = head_part(s, d.tok, own_kv=False)
    per_group = n_heads // n_kv
    groups = []
    for g in range(n_kv):
        heads = _head_grid(q_head, range(g * per_group, (g + 1) * per_group), scope,
                           f"head {n_heads - 1}")
        prefix = f"{scope}.kv_head.{g}"
        body = vstack([hstack(kv_rows(prefix, s), align="top"), heads], align="left")
        title = f"K/V head {g}: queries {g * per_group}-{(g + 1) * per_group - 1}"
        groups.append(grouped(titled(body, title, frac=0.04), prefix, f"K/V group {g}"))
    gap = gap_for([groups[0].width, groups[0].height])
    ncols = grid_columns(n_kv, groups[0].width + gap, groups[0].height + gap, BANK_ASPECT)
    return grouped(arrange(groups, ncols, gap), f"{scope}.heads",
                   f"{n_heads} query heads, {n_kv} K/V heads")


def attention_band(d: Dims, cross: bool = False) -> tuple[Part, str]:
    """Norm, (latents,) head bank and output projection of one attention, and its output id."""
    arch, c, tok = d.arch, d.c, d.tok
    scope, norm, title = ("cross_attn", "ln_cross", "Cross-attention") if cross else \
        ("attn", "ln1", "Self-attention")
    n_heads = arch.n_heads
    n_kv = n_heads if cross else arch.kv_heads
    key_bias = arch.bias if arch.key_bias is None else arch.key_bias
    parts = [norm_part(norm, d, "LayerNorm" if arch.norm == "layernorm" else "RMSNorm")]
    mla = None if cross else arch.mla
    if mla is not None:
        title = "Multi-head latent attention"
        qk = mla.qk_nope_head_dim + mla.qk_rope_head_dim
        latents = []
        q_in = c
        if mla.q_lora_rank is not None:
            q_in = mla.q_lora_rank
            latents.append(linear(f"{scope}.q_latent.weight", (q_in, c), "W_qa",
                                  f"{scope}.q_latent", (tok, q_in), "Q latent"))
        latents.append(linear(f"{scope}.kv_latent.weight", (mla.kv_lora_rank, c), "W_kva",
                              f"{scope}.kv_latent", (tok, mla.kv_lora_rank), "KV latent"))
        latents.append(linear(f"{scope}.k_rope.weight", (mla.qk_rope_head_dim, c), "W_kr",
                              f"{scope}.k_rope", (tok, mla.qk_rope_head_dim), "RoPE(K), shared"))
        parts.append(hstack(latents, align="top"))
        shape = HeadShape(wq=(qk, q_in), wk=(mla.qk_nope_head_dim, mla.kv_lora_rank),
                          wv=(mla.v_head_dim, mla.kv_lora_rank), qk=qk, v=mla.v_head_dim,
                          keys=tok, bias_q=False, bias_k=False, bias_v=False, rope=False,
                          causal=arch.causal, mask=d.mask)
    else:
        hd = arch.head_width
        shape = HeadShape(wq=(hd, c), wk=(hd, c), wv=(hd, c), qk=hd, v=hd,
                          keys=d.memory if cross else tok, bias_q=arch.bias, bias_k=key_bias,
                          bias_v=arch.bias, rope=arch.pos_encoding == "rope" and not cross,
                          causal=arch.causal and not cross, mask=d.mask)
    parts.append(head_bank(d, shape, scope, n_heads, n_kv))
    parts.append(linear(f"{scope}.proj.weight", (c, n_heads * shape.v), "W_o", f"{scope}.proj",
                        (tok, c), "attention out", f"{scope}.proj.bias" if arch.bias else None))
    band = vstack(parts, align="right")
    return grouped(titled(band, title, frac=0.03), scope, title), f"{scope}.proj"


# ---------------------------------------------------------------- feed-forward

def mlp_band(d: Dims) -> tuple[Part, str]:
    arch, c, tok, f = d.arch, d.c, d.tok, d.arch.d_ff
    bias = arch.bias
    act = ACTIVATION_NAMES.get(arch.activation or "gelu", "act")
    norm = norm_part("ln2", d, "LayerNorm" if arch.norm == "layernorm" else "RMSNorm")
    if arch.activation in GATED_ACTIVATIONS:
        rows = [linear("mlp.gate.weight", (f, c), "W_gate", "mlp.gate", (tok, f), "gate",
                       "mlp.gate.bias" if bias else None,
                       after=(block("mlp.act", KIND_ACTIVATION, (tok, f), f"{act}(gate)"),)),
                linear("mlp.up.weight", (f, c), "W_up", "mlp.up", (tok, f), "up",
                       "mlp.up.bias" if bias else None,
                       after=(block("mlp.gated", KIND_ACTIVATION, (tok, f), f"{act}(gate)·up"),)),
                linear("mlp.down.weight", (c, f), "W_down", "mlp.down", (tok, c), "MLP out",
                       "mlp.down.bias" if bias else None)]
        out = "mlp.down"
    else:
        act_id = "mlp.gelu" if arch.activation in (None, "gelu", "gelu_tanh") else "mlp.act"
        rows = [linear("mlp.fc.weight", (f, c), "W_fc", "mlp.fc", (tok, f), "fc",
                       "mlp.fc.bias" if bias else None,
                       after=(block(act_id, KIND_ACTIVATION, (tok, f), act),)),
                linear("mlp.proj.weight", (c, f), "W_proj", "mlp.proj", (tok, c), "MLP out",
                       "mlp.proj.bias" if bias else None)]
        out = "mlp.proj"
    band = vstack([norm, *rows], align="left")
    return grouped(titled(band, "MLP", frac=0.05), "mlp", "MLP"), out


# ---------------------------------------------------------------- projectors

def projector_part(p: ProjectorComponent, n: int) -> tuple[Part, str]:
    """Linear(dims[0] → dims[1]), activation, Linear(...) ... over the n image tokens."""
    rows, dims = [], p.dims
    act = ACTIVATION_NAMES.get(p.activation or "", "activation")
    for k, (a, b) in enumerate(zip(dims, dims[1:])):
        name = f"{p.name}.fc{k + 1}"
        after = (block(f"{p.name}.act{k + 1}", KIND_ACTIVATION, (n, b), act),) if k < len(dims) - 2 else ()
        rows.append(linear(f"{name}.weight", (b, a), f"W{k + 1}", name, (n, b), f"fc{k + 1} out",
                           f"{name}.bias" if p.bias else None, "b", after=after))
    title = "Projector: " + " → ".join(str(x) for x in dims)
    return grouped(titled(vstack(rows, align="left"), title, frac=0.05), p.name, title), \
        f"{p.name}.fc{len(dims) - 1}"


# ---------------------------------------------------------------- embedding and output

def stream_start(d: Dims, text: str) -> Part:
    """The residual stream's first block ("C = 48" over it, "T = 11" beside it), and a stack's
    pre-norm (ln0) right of it, centred on the stream (x = 0)."""
    arch, c, tok = d.arch, d.c, d.tok
    half = display_length(c) / 2
    side_gap = gap_for([2 * half])
    out = block("embed.out", KIND_RESIDUAL, (tok, c), text)
    # "C = 48" and "T = 11": sized by the stream's width, but no taller than about two of
    # its blocks, so "T" stays beside the rows it counts.
    label_h = min(0.15 * display_length(c), 2.0 * (tok.n + 1))
    out = side_label(titled(out, f"C = {c}", height=label_h), f"T = {tok.n}", 0, label_h)
    if arch.pre_norm or arch.mixer.startswith("rwkv"):
        ln0 = norm_part("ln0", d, "LayerNorm" if arch.norm == "layernorm" else "RMSNorm")
        out = merge([out, shift(ln0, half + side_gap - ln0.lo[0], out.center[0, 1] - ln0.center[-1, 1])])
    return center_on(out, "embed.out")


def stem_section(d: Dims, inputs: Part, text: str, title: str) -> Part:
    """A stack's stem: its inputs (left of the stream, ending at its edge) above the stream's
    first block, grouped as "embed"."""
    half = display_length(d.c) / 2
    placed = shift(inputs, -half - inputs.hi[0], -inputs.hi[1])
    section = vstack([placed, stream_start(d, text)], align="keep")
    return grouped(titled(section, title, frac=0.05), "embed", title)


def embedding_section(d: Dims, with_components: bool = True) -> Part:
    """Tokens, token (and position) embedding around the residual stream's first block
    (image and audio stems: scenes/layouts/vit.py and whisper.py)."""
    arch, c, tok = d.arch, d.c, d.tok
    source = arch.input
    positional = arch.pos_encoding in ("learned", "sinusoidal")
    left = [block("tokens", KIND_TOKENS, (tok,), "tokens"),
            block("embed.tok.weight", KIND_WEIGHT, (d.vocab, c), "W_E token embedding")]
    sum_id = "embed.tok"
    half = display_length(c) / 2
    side_gap = gap_for([2 * half])
    rows = []
    if positional:
        left.append(block(sum_id, KIND_ACTIVATION, (tok, c), "token embedding"))
        right = [block("embed.pos", KIND_ACTIVATION, (tok, c), "position embedding")]
        if arch.pos_encoding == "learned":
            positions = source.n_positions() or arch.context_length or tok.n
            right.append(block("embed.pos.weight", KIND_WEIGHT, (positions, c), "W_P position embedding"))
        left_row, right_row = hstack(left), hstack(right)
        rows.append(merge([shift(left_row, -side_gap / 2 - left_row.hi[0], -left_row.hi[1]),
                           shift(right_row, side_gap / 2 - right_row.lo[0], -right_row.hi[1])]))
    else:
        left_row = hstack(left)
        rows.append(shift(left_row, -half - left_row.hi[0], -left_row.hi[1]))
    rows.append(stream_start(d, "tokens + positions" if positional else "embedding"))
    section = vstack(rows, align="keep")
    if arch.components and with_components:
        comps = components_part(d)
        section = merge([section, shift(comps, section.lo[0] - gap_for([comps.width]) - comps.hi[0],
                                        section.hi[1] - comps.hi[1])])
    return grouped(titled(section, "Embedding", frac=0.05), "embed", "Embedding")


def components_part(d: Dims) -> Part:
    """Each component outside the language stack (vision tower, projector...) as one block."""
    parts = []
    for comp in d.arch.components:
        if isinstance(comp, EncoderComponent):
            positions = comp.input.n_positions() or comp.context_length or d.tok.n
            shape, text = (positions, comp.d_model), f"{comp.name} encoder, {comp.n_layers} layers"
        elif isinstance(comp, ProjectorComponent):
            shape = (comp.dims[-1], comp.dims[0])
            text = f"{comp.name}: " + "→".join(str(x) for x in comp.dims)
        elif isinstance(comp, ParameterComponent):
            dims = comp.shape or (1,)
            shape = (dims[0], math.prod(dims[1:])) if len(dims) > 1 else (1, dims[0])
            text = comp.name
        else:
            raise TypeError(f"unknown component {comp!r}")
        parts.append(titled(block(f"components.{comp.name}", KIND_COMPONENT, shape, text),
                            text, frac=0.08))
    return grouped(titled(vstack(parts, align="right"), "Components", frac=0.08), "components",
                   "Components")


def output_section(d: Dims) -> Part | None:
    """Final norm, unembedding, logits and probabilities below the residual stream."""
    arch, c, tok = d.arch, d.c, d.tok
    rows = []
    if arch.final_norm:
        norm = norm_part("ln_f", d, "final LayerNorm" if arch.norm == "layernorm" else "final RMSNorm")
        rows.append(center_on(norm, "ln_f.out"))
    if arch.unembedding != "none" and d.vocab is not None:
        tied = " (tied to W_E)" if arch.unembedding == "tied" else ""
        rows.append(block("lm_head.weight", KIND_WEIGHT, (d.vocab, c), f"W_U unembedding{tied}"))
        rows.append(block("logits", KIND_ACTIVATION, (tok, d.vocab), "logits"))
        rows.append(block("probs", KIND_SCORES, (tok, d.vocab), "probabilities"))
    elif arch.output_dim is not None:
        rows.append(center_on(linear("proj.weight", (arch.output_dim, c), "W_proj", "proj",
                                     (tok, arch.output_dim), "output embedding"), "proj"))
    for k in range(arch.mtp_modules):
        rows.append(block(f"mtp.{k}", KIND_COMPONENT, (c, 2 * c), f"MTP module {k}"))
    if not rows:
        return None
    return grouped(titled(vstack(rows, align="keep"), "Output", frac=0.05), "output", "Output")
