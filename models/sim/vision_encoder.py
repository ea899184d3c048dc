"""The pre-norm transformer encoder the small vision models share (vit-tiny; clip-tiny's image and text towers;
llava-tiny's image tower), computed in torch over transformers' own layer modules and recorded under the
layouts' tensor ids; its patch embedding; the ids it records; and its weights cut per head under those ids.

transformers names the same parts differently in ViT and in CLIP (`attention.o_proj` / `self_attn.out_proj`,
`layernorm_before` / `layer_norm1`): LayerNames says which is which, and every function here reads a layer
through it, so one computation and one id list serve all three models. It follows modeling_vit.py and
modeling_clip.py (eager attention): x + Attn(LN(x)), then x + MLP(LN(x)) with exact GELU; CLIP's text tower's
attention is causal. The tests of each model hold it to transformers' hidden states and logits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from operator import attrgetter

import torch
import torch.nn.functional as F

from llmviz.models.sim.nanogpt import NanoGPT

Ids = list[tuple[str, tuple[str, ...]]]

# LayerNorm recorded as nano-GPT's is (its mean and σ, then the output): these norms are nn.LayerNorm too
layer_norm = NanoGPT._layer_norm


@dataclass(frozen=True)
class LayerNames:
    """Where one encoder layer keeps its parts, as transformers names them (attribute paths, which are also
    the state dict's keys under the layer)."""
    q: str
    k: str
    v: str
    o: str
    ln1: str
    ln2: str
    fc1: str = "mlp.fc1"
    fc2: str = "mlp.fc2"

    def part(self, layer, name: str):
        return attrgetter(getattr(self, name))(layer)

    def ours(self) -> tuple[tuple[str, str], ...]:
        """(our id's part, transformers' module) for the parts that are not cut per head."""
        return (("attn.proj", self.o), ("ln1", self.ln1), ("ln2", self.ln2), ("mlp.fc", self.fc1),
                ("mlp.proj", self.fc2))


VIT_LAYER = LayerNames("attention.q_proj", "attention.k_proj", "attention.v_proj", "attention.o_proj",
                       "layernorm_before", "layernorm_after")
CLIP_LAYER = LayerNames("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
                        "layer_norm1", "layer_norm2")


def cut_patches(pixels: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) → (B, n_patches, C·patch²): row-major over the grid, each patch channel-major like the
    stride-`patch` conv's kernel (out, C, patch, patch) flattened."""
    b, c, h, w = pixels.shape
    grid = pixels.reshape(b, c, h // patch, patch, w // patch, patch)
    return grid.permute(0, 2, 4, 1, 3, 5).reshape(b, (h // patch) * (w // patch), c * patch * patch)


def check_pixels(pixels: torch.Tensor, channels: int, size: int) -> None:
    if pixels.dim() != 4 or tuple(pixels.shape[1:]) != (channels, size, size):
        raise ValueError(f"pixels must be (batch, {channels}, {size}, {size}), got {tuple(pixels.shape)}")


def embed_patches(pixels: torch.Tensor, patch: int, conv_weight: torch.Tensor, conv_bias, cls: torch.Tensor,
                  positions: torch.Tensor, record=None, prefix: str = "") -> torch.Tensor:
    """The patch conv as the matrix it is (its bias when it has one), [CLS] first, the learned positions
    added: (B, 1 + patches, width). `record` receives row 0's patches, embeddings, positions and sum."""
    patches = cut_patches(pixels, patch)
    embedded = F.linear(patches, conv_weight.reshape(conv_weight.shape[0], -1), conv_bias)
    x = torch.cat([cls.reshape(1, 1, -1).expand(pixels.shape[0], 1, -1), embedded], dim=1) + positions
    if record is not None:
        for name, value in (("patches", patches[0]), ("embed.patch", embedded[0]), ("embed.pos", positions),
                            ("embed.out", x[0])):
            record(prefix + name, value)
    return x


def attention(layer, names: LayerNames, h: torch.Tensor, n_heads: int, record=None, p: str = "",
              causal: bool = False) -> torch.Tensor:
    """Multi-head softmax(q·kᵀ/√d)·v of one layer, then its output projection; with `record`, row 0's q, k, v,
    scores (masked too, when causal), softmax and output per head, and the projection."""
    b, t, c = h.shape
    d = c // n_heads

    def heads(name):
        proj = names.part(layer, name)
        return F.linear(h, proj.weight, proj.bias).view(b, t, n_heads, d).transpose(1, 2)   # (B, H, T, d)
    q, k, v = heads("q"), heads("k"), heads("v")
    if record is None:
        # the same, fused, without the (B, H, T, T) matrices autograd would keep: a quarter of the time of a
        # training step (measured on vit-tiny: 0.08 s against 0.31 s a layer)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    else:
        scores = q @ k.transpose(-1, -2) / math.sqrt(d)
        masked = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf")) if causal else scores
        weights = masked.softmax(dim=-1)
        out = weights @ v
        named = [("q", q), ("k", k), ("v", v), ("scores", scores), *([("scores_masked", masked)] if causal else []),
                 ("softmax", weights), ("out", out)]
        for i in range(n_heads):
            for name, value in named:
                record(f"{p}.attn.head.{i}.{name}", value[0, i])
    o = names.part(layer, "o")
    proj = F.linear(out.transpose(1, 2).reshape(b, t, c), o.weight, o.bias)
    if record is not None:
        record(f"{p}.attn.proj", proj[0])
    return proj


def encoder(layers, names: LayerNames, x: torch.Tensor, n_heads: int, record=None, prefix: str = "",
            causal: bool = False, hidden: list | None = None) -> torch.Tensor:
    """x through `layers` (blocks `{prefix}blocks.{i}`); each layer's output is appended to `hidden` when
    given (transformers' hidden_states after the embeddings)."""
    for i, layer in enumerate(layers):
        p = f"{prefix}blocks.{i}"
        x = x + attention(layer, names, layer_norm(names.part(layer, "ln1"), x, record, f"{p}.ln1"), n_heads,
                          record, p, causal)
        if record is not None:
            record(f"{p}.resid1", x[0])
        h = layer_norm(names.part(layer, "ln2"), x, record, f"{p}.ln2")
        fc1, fc2 = names.part(layer, "fc1"), names.part(layer, "fc2")
        fc = F.linear(h, fc1.weight, fc1.bias)
        act = F.gelu(fc)
        proj = F.linear(act, fc2.weight, fc2.bias)
        x = x + proj
        if hidden is not None:
            hidden.append(x)
        if record is not None:
            for name, value in (("mlp.fc", fc), ("mlp.gelu", act), ("mlp.proj", proj), ("resid2", x)):
                record(f"{p}.{name}", value[0])
    return x


# ---- ids -------------------------------------------------------------------------------------

def ln_ids(prefix: str) -> Ids:
    return [(f"{prefix}.mean", ("t",)), (f"{prefix}.std", ("t",)), (f"{prefix}.out", ("t", "c"))]


def patch_ids(prefix: str = "", cls: bool = False) -> Ids:
    """What embed_patches records (and [CLS]'s own embedding, which vit-tiny's trace records beside them)."""
    return [(prefix + "patches", ("t", "p")), (prefix + "embed.patch", ("t", "c")),
            *([(prefix + "embed.cls", ("c",))] if cls else []), (prefix + "embed.pos", ("t", "c")),
            (prefix + "embed.out", ("t", "c"))]


def block_ids(prefix: str, n_layers: int, n_heads: int, causal: bool = False) -> Ids:
    """Every id `encoder` records, in data-flow order, with its axes."""
    ids = []
    for b in range(n_layers):
        p = f"{prefix}blocks.{b}"
        ids += ln_ids(f"{p}.ln1")
        for h in range(n_heads):
            a = f"{p}.attn.head.{h}"
            ids += [(f"{a}.{n}", ("t", "d")) for n in "qkv"]
            ids += [(f"{a}.scores", ("t", "t'")), *([(f"{a}.scores_masked", ("t", "t'"))] if causal else []),
                    (f"{a}.softmax", ("t", "t'")), (f"{a}.out", ("t", "d"))]
        ids += [(f"{p}.attn.proj", ("t", "c")), (f"{p}.resid1", ("t", "c")), *ln_ids(f"{p}.ln2"),
                (f"{p}.mlp.fc", ("t", "f")), (f"{p}.mlp.gelu", ("t", "f")), (f"{p}.mlp.proj", ("t", "c")),
                (f"{p}.resid2", ("t", "c"))]
    return ids


def block_weight_ids(prefix: str, n_layers: int, n_heads: int) -> Ids:
    """The encoder's parameters under the layout's ids; matrices (out, in) like torch.nn.Linear."""
    ids = []
    for b in range(n_layers):
        p = f"{prefix}blocks.{b}"
        ids += [(f"{p}.ln1.weight", ("c",)), (f"{p}.ln1.bias", ("c",))]
        for h in range(n_heads):
            a = f"{p}.attn.head.{h}"
            ids += [x for n in "qkv" for x in ((f"{a}.w{n}", ("d", "c")), (f"{a}.b{n}", ("d",)))]
        ids += [(f"{p}.attn.proj.weight", ("c", "c")), (f"{p}.attn.proj.bias", ("c",)),
                (f"{p}.ln2.weight", ("c",)), (f"{p}.ln2.bias", ("c",)),
                (f"{p}.mlp.fc.weight", ("f", "c")), (f"{p}.mlp.fc.bias", ("f",)),
                (f"{p}.mlp.proj.weight", ("c", "f")), (f"{p}.mlp.proj.bias", ("c",))]
    return ids


def block_weights(sd: dict, names: LayerNames, prefix: str, module: str, n_layers: int, n_heads: int,
                  width: int) -> dict:
    """The encoder's parameters from a state dict `sd` (layers at `{module}.{i}`) under block_weight_ids:
    q, k and v cut per head."""
    d = width // n_heads
    named = {}
    for b in range(n_layers):
        p, m = f"{prefix}blocks.{b}", f"{module}.{b}"
        for n in "qkv":
            w, bias = sd[f"{m}.{getattr(names, n)}.weight"], sd[f"{m}.{getattr(names, n)}.bias"]
            for h in range(n_heads):
                named[f"{p}.attn.head.{h}.w{n}"] = w[h * d:(h + 1) * d]
                named[f"{p}.attn.head.{h}.b{n}"] = bias[h * d:(h + 1) * d]
        for ours, theirs in names.ours():
            named[f"{p}.{ours}.weight"], named[f"{p}.{ours}.bias"] = sd[f"{m}.{theirs}.weight"], sd[f"{m}.{theirs}.bias"]
    return named
