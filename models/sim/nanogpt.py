"""The nano-GPT that sorts letters: a GPT-2-style decoder small enough to show every number.

Shape (the browser LLM Visualization's sort model): 3 pre-LayerNorm blocks, d_model 48,
3 heads of 16, GELU with GPT-2's tanh approximation ("gelu_new"), MLP 4x, biases wherever
GPT-2 has them, learned positional embeddings, context 11, vocabulary A/B/C. The unembedding
is a separate `lm_head` matrix without bias (untied, as in llm-viz's checkpoint), not the
token embedding reused.

One forward function serves training (batched, nothing recorded) and the simulation
(`trace`: one sequence, every intermediate recorded under the layout's tensor ids), so
the numbers on screen are by construction the numbers the model computes.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from llmviz.models.sim import sort_task
from llmviz.models.sim.sampling import Sampler, next_token_distribution
from llmviz.models.sim.tensor_ids import activation_ids, weight_ids
from llmviz.models.sim.trace import ActivationTrace

SHIPPED_WEIGHTS = ("weights", "nano-gpt.safetensors")  # under the llmviz.assets package


@dataclass(frozen=True)
class NanoGPTConfig:
    n_layers: int = 3
    d_model: int = 48
    n_heads: int = 3
    vocab_size: int = len(sort_task.ALPHABET)
    context_length: int = sort_task.CONTEXT_LENGTH
    ln_eps: float = 1e-5  # GPT-2's layer_norm_epsilon

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


class _Attention(nn.Module):
    def __init__(self, cfg: NanoGPTConfig):
        super().__init__()
        # One fused matrix, output laid out [q heads | k heads | v heads] like GPT-2's c_attn.
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.register_buffer("causal", torch.ones(cfg.context_length, cfg.context_length).triu(1).bool(),
                             persistent=False)


class _MLP(nn.Module):
    def __init__(self, cfg: NanoGPTConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, 4 * cfg.d_model)
        self.proj = nn.Linear(4 * cfg.d_model, cfg.d_model)


class _Block(nn.Module):
    def __init__(self, cfg: NanoGPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.attn = _Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.mlp = _MLP(cfg)


class NanoGPT(nn.Module):
    """Parameter names (state_dict) follow the layout ids: embed.tok.weight, blocks.0.attn.qkv.weight, ...

    `attention_kernel`, when set, computes a trace's attention in place of torch (see attention_sublayer)."""

    attention_kernel = None

    def __init__(self, cfg: NanoGPTConfig = NanoGPTConfig()):
        super().__init__()
        build_gpt_trunk(self, cfg, _Block)
        init_gpt2(self, cfg.n_layers, residual_outputs=("proj.weight",))

    # ---- the one forward pass -------------------------------------------------------------

    def forward(self, idx: torch.Tensor, record=None) -> torch.Tensor:
        """idx (B, T) token ids -> logits (B, T, vocab).

        `record(id, tensor)`, when given, receives every intermediate of batch row 0 under
        its tensor id; left out, nothing extra is computed.
        """
        x = embed(self, idx, record)
        for i, blk in enumerate(self.blocks):
            p = f"blocks.{i}"
            x = attention_sublayer(self.cfg, blk, x, record, p, self.attention_kernel if record is not None else None)
            h = self._layer_norm(blk.ln2, x, record, f"{p}.ln2")
            fc = blk.mlp.fc(h)
            g = F.gelu(fc, approximate="tanh")  # GPT-2's "gelu_new"
            m = blk.mlp.proj(g)
            if record is not None:
                record(f"{p}.mlp.fc", fc[0])
                record(f"{p}.mlp.gelu", g[0])
                record(f"{p}.mlp.proj", m[0])
            x = x + m
            if record is not None:
                record(f"{p}.resid2", x[0])
        return unembed(self, x, record)

    @staticmethod
    def _layer_norm(ln: nn.LayerNorm, x, record, prefix: str):
        out = ln(x)
        if record is not None:
            # The statistics LayerNorm uses internally (biased variance), shown on screen.
            x0 = x[0]
            record(f"{prefix}.mean", x0.mean(-1))
            record(f"{prefix}.std", torch.sqrt(x0.var(-1, unbiased=False) + ln.eps))
            record(f"{prefix}.out", out[0])
        return out

    # ---- simulation views ----------------------------------------------------------------

    @torch.inference_mode()
    def trace(self, tokens) -> ActivationTrace:
        """Runs one sequence (1..context_length token ids) and records every intermediate."""
        idx = torch.as_tensor(list(tokens), dtype=torch.long).view(1, -1)
        got: dict[str, torch.Tensor] = {}
        self.forward(idx, record=got.__setitem__)
        ids = activation_ids(self.cfg.n_layers, self.cfg.n_heads)
        if set(got) != {i for i, _ in ids}:
            raise RuntimeError(f"trace ids differ from tensor_ids: {sorted(set(got) ^ {i for i, _ in ids})}")
        return ActivationTrace([(i, got[i].contiguous().numpy().copy(), axes) for i, axes in ids])

    @torch.inference_mode()
    def weights(self) -> ActivationTrace:
        """Every parameter as numpy under the layout's weight ids, attention split per head."""
        cfg, H, D = self.cfg, self.cfg.n_heads, self.cfg.head_dim
        sd = {k: v.detach() for k, v in self.state_dict().items()}
        named = {"embed.tok.weight": sd["embed.tok.weight"], "embed.pos.weight": sd["embed.pos.weight"],
                 "ln_f.weight": sd["ln_f.weight"], "ln_f.bias": sd["ln_f.bias"],
                 "lm_head.weight": sd["lm_head.weight"]}
        for i in range(cfg.n_layers):
            p = f"blocks.{i}"
            w = sd[f"{p}.attn.qkv.weight"].view(3, H, D, cfg.d_model)
            b = sd[f"{p}.attn.qkv.bias"].view(3, H, D)
            for h in range(H):
                for j, letter in enumerate("qkv"):
                    named[f"{p}.attn.head.{h}.w{letter}"] = w[j, h]
                    named[f"{p}.attn.head.{h}.b{letter}"] = b[j, h]
            for name in ("ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias", "attn.proj.weight",
                         "attn.proj.bias", "mlp.fc.weight", "mlp.fc.bias", "mlp.proj.weight", "mlp.proj.bias"):
                named[f"{p}.{name}"] = sd[f"{p}.{name}"]
        return ActivationTrace([(i, named[i].contiguous().numpy().copy(), axes)
                                for i, axes in weight_ids(cfg.n_layers, cfg.n_heads)])

    # ---- decoding ------------------------------------------------------------------------

    @torch.inference_mode()
    def sort_greedy(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, 6) input letters -> (B, 6) generated letters, argmax at each step, batched."""
        seq = inputs
        for _ in range(sort_task.INPUT_LENGTH):
            nxt = self.forward(seq)[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], dim=1)
        return seq[:, inputs.shape[1]:]

    @torch.inference_mode()
    def generate(self, tokens, steps: int, temperature: float = 0.0, seed: int = 0) -> list[dict]:
        """Continues one sequence; per step the chosen token and the distribution it came from.

        Temperature 0 is greedy (argmax; `probs` is then the plain softmax of the logits);
        above 0, the token is sampled from softmax(logits / temperature) by sampling.Sampler(seed),
        the window's sampler too, and `probs` is that tempered distribution.
        """
        sampler = Sampler(seed)
        seq = list(tokens)
        out = []
        for _ in range(steps):
            logits = self.forward(torch.tensor([seq[-self.cfg.context_length:]]))[0, -1]
            probs = next_token_distribution(logits.numpy(), temperature)
            choice = sampler.pick(probs, temperature)
            seq.append(choice)
            out.append({"token": choice, "probs": probs.tolist()})
        return out


# ---- the GPT parts the small MoE shares (models/sim/moe_model.py) ------------------------

def build_gpt_trunk(model: nn.Module, cfg, block_cls) -> None:
    """Token and position embeddings, the blocks, the final norm and an untied, bias-free unembedding."""
    model.cfg = cfg
    model.embed = nn.ModuleDict({"tok": nn.Embedding(cfg.vocab_size, cfg.d_model),
                                 "pos": nn.Embedding(cfg.context_length, cfg.d_model)})
    model.blocks = nn.ModuleList(block_cls(cfg) for _ in range(cfg.n_layers))
    model.ln_f = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
    model.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)


def init_gpt2(model: nn.Module, n_layers: int, residual_outputs: tuple[str, ...]) -> None:
    """GPT-2's initialisation: N(0, 0.02) everywhere, the matrices writing into the residual stream
    (names ending in ``residual_outputs``) scaled down by sqrt(2 · n_layers) so its variance does
    not grow with depth; biases 0, LayerNorm gains 1."""
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            nn.init.zeros_(p)
        elif ".ln" in name or name.startswith("ln_f"):
            nn.init.ones_(p)
        elif name.endswith(residual_outputs):
            nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * n_layers))
        else:
            nn.init.normal_(p, 0.0, 0.02)

def embed(model, idx: torch.Tensor, record) -> torch.Tensor:
    """X = E_token[idx] + E_pos[t], recording tokens and both embeddings for batch row 0."""
    T = idx.shape[1]
    # Bad input is refused here, where training, tracing and generation all pass, with one line
    # saying what is wrong (an empty sequence would otherwise give empty arrays and a torch warning).
    if T == 0:
        raise ValueError("empty input: at least one token is needed")
    if T > model.cfg.context_length:
        raise ValueError(f"{T} tokens exceed the context of {model.cfg.context_length}")
    if int(idx.min()) < 0 or int(idx.max()) >= model.cfg.vocab_size:
        raise ValueError(f"token ids must lie in 0..{model.cfg.vocab_size - 1}, got {idx.min()}..{idx.max()}")
    tok = model.embed["tok"](idx)
    pos = model.embed["pos"].weight[:T]
    x = tok + pos
    if record is not None:
        record("tokens", idx[0])
        record("embed.tok", tok[0])
        record("embed.pos", pos)
        record("embed.out", x[0])
    return x


def attention_sublayer(cfg, blk, x: torch.Tensor, record, p: str, kernel=None) -> torch.Tensor:
    """X + Attention(LN_1(X)) for one block (pre-LayerNorm, causal, fused qkv), recording every head.

    `kernel(q, k, v, scale)`, when given, computes the causal softmax(q·kᵀ·scale) and its product with v in torch's
    place: float32 arrays (N, Tq, d) and (N, Tk, d) in, key j allowed for query i when j <= i + Tk - Tq;
    (probabilities (N, Tq, Tk), output (N, Tq, d)) out (the scene passes the WGSL compute kernel when the wgpu
    backend draws; this module knows nothing of it)."""
    B, T, _ = x.shape
    H, D = cfg.n_heads, cfg.head_dim
    h = NanoGPT._layer_norm(blk.ln1, x, record, f"{p}.ln1")
    q, k, v = blk.attn.qkv(h).view(B, T, 3, H, D).permute(2, 0, 3, 1, 4)  # each (B, H, T, D)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(D)
    masked = scores.masked_fill(blk.attn.causal[:T, :T], float("-inf"))
    if kernel is None:
        att = torch.softmax(masked, dim=-1)
        heads = att @ v
    else:
        att, heads = outside_attention(kernel, q, k, v, 1.0 / math.sqrt(D))
    a = blk.attn.proj(heads.transpose(1, 2).reshape(B, T, cfg.d_model))
    x = x + a
    if record is not None:
        for hh in range(H):
            hp = f"{p}.attn.head.{hh}"
            for name, t in (("q", q), ("k", k), ("v", v), ("scores", scores),
                            ("scores_masked", masked), ("softmax", att), ("out", heads)):
                record(f"{hp}.{name}", t[0, hh])
        record(f"{p}.attn.proj", a[0])
        record(f"{p}.resid1", x[0])
    return x


def outside_attention(kernel, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float):
    """(probabilities (B, H, Tq, Tk), output (B, H, Tq, d)) of causal attention of q (B, H, Tq, d) over k, v
    (B, H, Tk, d) by `kernel` (attention_sublayer's)."""
    B, H, Tq, D = q.shape
    Tk = k.shape[2]
    flat = (t.reshape(B * H, -1, D).float().contiguous().numpy() for t in (q, k, v))
    probs, out = kernel(*flat, float(scale))
    as_tensor = lambda a, *shape: torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(q.dtype).view(*shape)  # noqa: E731
    return as_tensor(probs, B, H, Tq, Tk), as_tensor(out, B, H, Tq, D)


def unembed(model, x: torch.Tensor, record) -> torch.Tensor:
    """logits = LN_f(X) · W_unembedᵀ, recording the final norm, logits and probabilities."""
    h = NanoGPT._layer_norm(model.ln_f, x, record, "ln_f")
    logits = model.lm_head(h)
    if record is not None:
        record("logits", logits[0])
        record("probs", torch.softmax(logits[0], dim=-1))
    return logits


# ---- weights on disk ---------------------------------------------------------------------

# Bounds for a config read from a weights file, checked before the model is built: the sort task fixes
# the vocabulary and context; the rest stays small enough to show every number.
CONFIG_FIELDS = {"n_layers": (int, 1, 12), "d_model": (int, 1, 1024), "n_heads": (int, 1, 64),
                 "vocab_size": (int, len(sort_task.ALPHABET), len(sort_task.ALPHABET)),
                 "context_length": (int, sort_task.CONTEXT_LENGTH, sort_task.CONTEXT_LENGTH),
                 "ln_eps": (float, 1e-12, 1e-1)}


def safetensors_bytes(model: nn.Module, info: dict) -> bytes:
    """The file's bytes; one metadata key holding sorted JSON, because safetensors writes several keys
    in hash order, which would make two identical trainings produce different file bytes."""
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in model.state_dict().items()},
                metadata={"llmviz": json.dumps(info, sort_keys=True)})


def save_safetensors(model: NanoGPT, path, extra_metadata: dict | None = None) -> None:
    from llmviz.common.atomic import write_atomic

    info = {"model": "nano-gpt", "config": asdict(model.cfg), **(extra_metadata or {})}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, safetensors_bytes(model, info))


def checked_config(cls, config: dict):
    """A config dataclass from checked metadata; heads must divide the width."""
    cfg = cls(**config)
    if cfg.d_model % cfg.n_heads:
        raise ValueError(f"n_heads {cfg.n_heads} does not divide d_model {cfg.d_model}")
    return cfg


def shipped_weights_path():
    """The bundled weights as an importlib.resources Traversable (works from a wheel too)."""
    return files("llmviz.assets").joinpath(*SHIPPED_WEIGHTS)


def load_nanogpt(path=None) -> NanoGPT:
    """The trained sort model: the shipped weights, or a safetensors file from `train`; a file that
    does not fit the model raises WeightsError naming it and the tensor."""
    from llmviz.models.sim.weights_file import load_checked

    source = shipped_weights_path() if path is None else Path(path)
    name = f"shipped weights {SHIPPED_WEIGHTS[1]}" if path is None else str(path)
    return load_checked(source, lambda c: NanoGPT(checked_config(NanoGPTConfig, c)), CONFIG_FIELDS, name)
