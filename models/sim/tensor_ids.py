"""The tensor id scheme shared by the dense-transformer simulation and the scene layout.

A trace (activations) and a weight map both key their arrays by these ids, so binding
simulation output to the layout's boxes is a dictionary lookup. Both lists are ordered
the way data flows through the model, which is also the order a walkthrough visits them.
Each entry is (id, axes); the axis names are explained in AXES.
"""
from __future__ import annotations

AXES = {
    "t": "token position (the query position in attention)",
    "t'": "key position in attention",
    "c": "model channel (d_model)",
    "d": "channel within one attention head (head_dim)",
    "hd": "concatenated head channels (head * head_dim), the input of attn.proj",
    "f": "MLP hidden channel (4 * d_model)",
    "v": "vocabulary entry",
    "p": "position slot of the context window",
}

TensorId = tuple[str, tuple[str, ...]]


def _layer_norm(prefix: str) -> list[TensorId]:
    return [(f"{prefix}.mean", ("t",)), (f"{prefix}.std", ("t",)), (f"{prefix}.out", ("t", "c"))]


def head_activation_ids(block: int, head: int) -> list[TensorId]:
    """The per-head attention intermediates of one block, in computation order."""
    p = f"blocks.{block}.attn.head.{head}"
    return [(f"{p}.q", ("t", "d")), (f"{p}.k", ("t", "d")), (f"{p}.v", ("t", "d")),
            (f"{p}.scores", ("t", "t'")),          # q k^T / sqrt(d), before the causal mask
            (f"{p}.scores_masked", ("t", "t'")),   # -inf where t' > t
            (f"{p}.softmax", ("t", "t'")),
            (f"{p}.out", ("t", "d"))]


def block_activation_ids(block: int, n_heads: int) -> list[TensorId]:
    p = f"blocks.{block}"
    ids = _layer_norm(f"{p}.ln1")
    for h in range(n_heads):
        ids += head_activation_ids(block, h)
    ids += [(f"{p}.attn.proj", ("t", "c")), (f"{p}.resid1", ("t", "c"))]
    ids += _layer_norm(f"{p}.ln2")
    ids += [(f"{p}.mlp.fc", ("t", "f")), (f"{p}.mlp.gelu", ("t", "f")),
            (f"{p}.mlp.proj", ("t", "c")), (f"{p}.resid2", ("t", "c"))]
    return ids


def activation_ids(n_layers: int, n_heads: int) -> list[TensorId]:
    """Every intermediate a traced forward pass records, in order."""
    ids: list[TensorId] = [("tokens", ("t",)), ("embed.tok", ("t", "c")),
                           ("embed.pos", ("t", "c")), ("embed.out", ("t", "c"))]
    for i in range(n_layers):
        ids += block_activation_ids(i, n_heads)
    ids += _layer_norm("ln_f")
    ids += [("logits", ("t", "v")), ("probs", ("t", "v"))]
    return ids


def weight_ids(n_layers: int, n_heads: int) -> list[TensorId]:
    """Every parameter, split per head where the layout draws heads apart.

    Matrices are stored (out, in) like torch.nn.Linear: q[t, j] = sum_c x[t, c] * wq[j, c] + bq[j].
    """
    ids: list[TensorId] = [("embed.tok.weight", ("v", "c")), ("embed.pos.weight", ("p", "c"))]
    for i in range(n_layers):
        p = f"blocks.{i}"
        ids += [(f"{p}.ln1.weight", ("c",)), (f"{p}.ln1.bias", ("c",))]
        for h in range(n_heads):
            hp = f"{p}.attn.head.{h}"
            ids += [(f"{hp}.wq", ("d", "c")), (f"{hp}.bq", ("d",)),
                    (f"{hp}.wk", ("d", "c")), (f"{hp}.bk", ("d",)),
                    (f"{hp}.wv", ("d", "c")), (f"{hp}.bv", ("d",))]
        ids += [(f"{p}.attn.proj.weight", ("c", "hd")), (f"{p}.attn.proj.bias", ("c",)),
                (f"{p}.ln2.weight", ("c",)), (f"{p}.ln2.bias", ("c",)),
                (f"{p}.mlp.fc.weight", ("f", "c")), (f"{p}.mlp.fc.bias", ("f",)),
                (f"{p}.mlp.proj.weight", ("c", "f")), (f"{p}.mlp.proj.bias", ("c",))]
    ids += [("ln_f.weight", ("c",)), ("ln_f.bias", ("c",)), ("lm_head.weight", ("v", "c"))]
    return ids
