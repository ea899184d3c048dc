"""A small character-level GPT whose MLPs are mixture-of-experts layers (variants moe-4 and moe-8),
routed by `routing.moe_forward` so training, tracing and the reference tests share one code path.

Shape: 2 pre-LayerNorm blocks, d_model 64, 4 heads, learned positions, context 64, the
moe_corpus alphabet (96 symbols). Each block's feed-forward part is a Mixtral-style MoE: softmax
router without bias, top-2 renormalised, SwiGLU experts of width 128 without biases.
moe-4 has 4 experts per layer, moe-8 has 8. The attention half is the nano-GPT's, with its ids.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path

import torch
from torch import nn

from llmviz.models.sim import moe_corpus, routing
from llmviz.models.sim.nanogpt import (NanoGPT, _Attention, attention_sublayer, build_gpt_trunk, checked_config,
                                       embed, init_gpt2, safetensors_bytes, unembed)
from llmviz.models.sim.trace import ActivationTrace

VARIANTS = {"moe-4": 4, "moe-8": 8}   # variant name → experts per layer
MOE_AXES = {"e": "expert", "k": "routing slot (best first)"}  # beyond tensor_ids.AXES


@dataclass(frozen=True)
class MoEGPTConfig:
    n_experts: int = 4
    top_k: int = 2
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    expert_d_ff: int = 128
    vocab_size: int = len(moe_corpus.ALPHABET)
    context_length: int = 64
    ln_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


def variant_config(name: str) -> MoEGPTConfig:
    if name not in VARIANTS:
        raise ValueError(f"unknown MoE variant {name!r}; known: {', '.join(VARIANTS)}")
    return MoEGPTConfig(n_experts=VARIANTS[name])


class _Expert(nn.Module):
    """One SwiGLU expert; `gate`, `up`, `down` as in Mixtral's w1, w3, w2."""

    def __init__(self, cfg: MoEGPTConfig):
        super().__init__()
        self.gate = nn.Linear(cfg.d_model, cfg.expert_d_ff, bias=False)
        self.up = nn.Linear(cfg.d_model, cfg.expert_d_ff, bias=False)
        self.down = nn.Linear(cfg.expert_d_ff, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return routing.swiglu(x, self.gate.weight, self.up.weight, self.down.weight)


class _MoE(nn.Module):
    def __init__(self, cfg: MoEGPTConfig):
        super().__init__()
        self.router = nn.Linear(cfg.d_model, cfg.n_experts, bias=False)
        self.expert = nn.ModuleList(_Expert(cfg) for _ in range(cfg.n_experts))


class _Block(nn.Module):
    def __init__(self, cfg: MoEGPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.attn = _Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.moe = _MoE(cfg)


class MoEGPT(nn.Module):
    """Parameter names follow the layout ids: blocks.0.moe.router.weight, blocks.0.moe.expert.3.up.weight, ...
    `attention_kernel`: as NanoGPT's (a trace's attention computed in torch's place)."""

    attention_kernel = None

    def __init__(self, cfg: MoEGPTConfig = MoEGPTConfig()):
        super().__init__()
        build_gpt_trunk(self, cfg, _Block)
        # The residual outputs here are attention's projection and each expert's down matrix.
        init_gpt2(self, cfg.n_layers, residual_outputs=("proj.weight", "down.weight"))

    def forward(self, idx: torch.Tensor, record=None) -> tuple[torch.Tensor, list[routing.RoutingRecord]]:
        """idx (B, T) → (logits (B, T, vocab), one RoutingRecord per layer over all B·T tokens).

        `record(id, tensor)`, when given, receives batch row 0's intermediates under the layout ids.
        """
        cfg = self.cfg
        T = idx.shape[1]
        x = embed(self, idx, record)
        records = []
        for i, blk in enumerate(self.blocks):
            p = f"blocks.{i}"
            x = attention_sublayer(cfg, blk, x, record, p, self.attention_kernel if record is not None else None)
            h = NanoGPT._layer_norm(blk.ln2, x, record, f"{p}.ln2")
            m, rec = routing.moe_forward(h, blk.moe.router.weight, list(blk.moe.expert), "softmax_topk",
                                         k=cfg.top_k, record_contributions=record is not None)
            records.append(rec)
            x = x + m
            if record is not None:
                self._record_moe(record, p, rec, T, m)
                record(f"{p}.resid2", x[0])
        return unembed(self, x, record), records

    def _record_moe(self, record, p: str, rec: routing.RoutingRecord, T: int, out: torch.Tensor) -> None:
        # batch row 0 is the first T of the flattened B·T tokens
        record(f"{p}.moe.router", rec.logits[:T])
        record(f"{p}.moe.probs", rec.probs[:T])
        record(f"{p}.moe.topk", rec.topk[:T])
        # the gates as the layout draws them, (t, expert): the gate weight where chosen, else 0
        dense = torch.zeros_like(rec.probs[:T]).scatter_(1, rec.topk[:T], rec.gates[:T])
        record(f"{p}.moe.gates", dense)
        for e in range(self.cfg.n_experts):
            # ".out", not the expert's own id: that one names its block, which shows W_gate
            record(f"{p}.moe.expert.{e}.out", rec.contributions[:T, e])
        record(f"{p}.moe.out", out[0])

    def trace_ids(self) -> list[tuple[str, tuple[str, ...]]]:
        """Every id `trace` records, in data-flow order, with its axes."""
        cfg = self.cfg
        ln = lambda pre: [(f"{pre}.mean", ("t",)), (f"{pre}.std", ("t",)), (f"{pre}.out", ("t", "c"))]  # noqa: E731
        ids = [("tokens", ("t",)), ("embed.tok", ("t", "c")), ("embed.pos", ("t", "c")), ("embed.out", ("t", "c"))]
        for i in range(cfg.n_layers):
            p = f"blocks.{i}"
            ids += ln(f"{p}.ln1")
            for h in range(cfg.n_heads):
                hp = f"{p}.attn.head.{h}"
                ids += [(f"{hp}.q", ("t", "d")), (f"{hp}.k", ("t", "d")), (f"{hp}.v", ("t", "d")),
                        (f"{hp}.scores", ("t", "t'")), (f"{hp}.scores_masked", ("t", "t'")),
                        (f"{hp}.softmax", ("t", "t'")), (f"{hp}.out", ("t", "d"))]
            ids += [(f"{p}.attn.proj", ("t", "c")), (f"{p}.resid1", ("t", "c"))] + ln(f"{p}.ln2")
            ids += [(f"{p}.moe.router", ("t", "e")), (f"{p}.moe.probs", ("t", "e")),
                    (f"{p}.moe.topk", ("t", "k")), (f"{p}.moe.gates", ("t", "e"))]
            ids += [(f"{p}.moe.expert.{e}.out", ("t", "c")) for e in range(cfg.n_experts)]
            ids += [(f"{p}.moe.out", ("t", "c")), (f"{p}.resid2", ("t", "c"))]
        return ids + ln("ln_f") + [("logits", ("t", "v")), ("probs", ("t", "v"))]

    @torch.inference_mode()
    def trace(self, tokens) -> ActivationTrace:
        """One sequence's intermediates: per MoE layer the router logits, probabilities, top-k,
        gates (t, expert) and each expert's gate-weighted contribution (t, c) as blocks.i.moe.expert.e.out,
        zero where unrouted."""
        idx = torch.as_tensor(list(tokens), dtype=torch.long).view(1, -1)
        got: dict[str, torch.Tensor] = {}
        self.forward(idx, record=got.__setitem__)
        ids = self.trace_ids()
        if set(got) != {i for i, _ in ids}:
            raise RuntimeError(f"trace ids differ from trace_ids: {sorted(set(got) ^ {i for i, _ in ids})}")
        return ActivationTrace([(i, got[i].contiguous().numpy().copy(), axes) for i, axes in ids])

    @torch.no_grad()
    def weights(self) -> dict[str, "numpy.ndarray"]:
        """Parameters as numpy under the layout's ids: attention split per head, each expert's
        W_gate (d_ff, c) under the expert's id, the shape the layout gives an expert block, its
        W_up and W_down beside it (.up.weight, .down.weight: no block, read by the hover's
        recomputation), and the attention biases as the spec's (n_layers, 4·d_model)
        "attention biases" component (qkv then proj)."""
        cfg, H, D = self.cfg, self.cfg.n_heads, self.cfg.head_dim
        sd = {k: v.detach() for k, v in self.state_dict().items()}
        named = {name: sd[name] for name in ("embed.tok.weight", "embed.pos.weight", "ln_f.weight",
                                             "ln_f.bias", "lm_head.weight")}
        biases = []
        for i in range(cfg.n_layers):
            p = f"blocks.{i}"
            w = sd[f"{p}.attn.qkv.weight"].view(3, H, D, cfg.d_model)
            b = sd[f"{p}.attn.qkv.bias"].view(3, H, D)
            for h in range(H):
                for j, letter in enumerate("qkv"):
                    named[f"{p}.attn.head.{h}.w{letter}"] = w[j, h]
                    named[f"{p}.attn.head.{h}.b{letter}"] = b[j, h]
            for name in ("ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias", "attn.proj.weight",
                         "attn.proj.bias", "moe.router.weight"):
                named[f"{p}.{name}"] = sd[f"{p}.{name}"]
            for e in range(cfg.n_experts):
                named[f"{p}.moe.expert.{e}"] = sd[f"{p}.moe.expert.{e}.gate.weight"]
                for name in ("up.weight", "down.weight"):
                    named[f"{p}.moe.expert.{e}.{name}"] = sd[f"{p}.moe.expert.{e}.{name}"]
            biases.append(torch.cat([sd[f"{p}.attn.qkv.bias"], sd[f"{p}.attn.proj.bias"]]))
        named["components.attention biases"] = torch.stack(biases)
        return {k: v.contiguous().numpy().copy() for k, v in named.items()}


# ---- weights on disk ---------------------------------------------------------------------

def shipped_weights_path(variant: str):
    """The bundled weights of a variant as an importlib.resources Traversable."""
    return files("llmviz.assets").joinpath("weights", f"{variant}.safetensors")


CONFIG_FIELDS = {"n_experts": (int, 1, 64), "top_k": (int, 1, 64), "n_layers": (int, 1, 12),
                 "d_model": (int, 1, 1024), "n_heads": (int, 1, 64), "expert_d_ff": (int, 1, 4096),
                 "vocab_size": (int, len(moe_corpus.ALPHABET), len(moe_corpus.ALPHABET)),
                 "context_length": (int, 1, 4096), "ln_eps": (float, 1e-12, 1e-1)}


def save_safetensors(model: MoEGPT, variant: str, path, extra_metadata: dict | None = None) -> None:
    from llmviz.common.atomic import write_atomic

    # one sorted-JSON metadata key, so identical trainings write identical bytes (as nanogpt does)
    info = {"model": variant, "config": asdict(model.cfg), **(extra_metadata or {})}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, safetensors_bytes(model, info))


def _config(config: dict) -> MoEGPTConfig:
    cfg = checked_config(MoEGPTConfig, config)
    if cfg.top_k > cfg.n_experts:
        raise ValueError(f"top_k {cfg.top_k} exceeds n_experts {cfg.n_experts}")
    return cfg


def load_moe(variant: str, path=None) -> MoEGPT:
    """A trained MoE model: the shipped weights of `variant`, or a safetensors file from training;
    checked like nano-GPT's (weights_file.py) before the model is built."""
    from llmviz.models.sim.weights_file import load_checked

    source = shipped_weights_path(variant) if path is None else Path(path)
    name = f"shipped weights {variant}.safetensors" if path is None else str(path)
    return load_checked(source, lambda c: MoEGPT(_config(c)), CONFIG_FIELDS, name)
