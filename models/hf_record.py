"""A local Hugging Face model computed by transformers, with forward hooks recording what the layout shows under its ids.

`open_folder(DIR)` loads a folder (config.json and *.safetensors, never a pickle; local files only,
no remote code) and `record(model, token_ids)` runs one forward pass with hooks that keep each
recorded tensor under the layout's id (scenes/layout_blocks.py's scheme): the embedding, every
norm's output, each attention head's probabilities, the sub-blocks' outputs and the residual stream
after each, the MLP's inner activations, a mixture of experts' router logits, the final norm, the
logits and probabilities.

What is recorded per family is declared in HOOKS: a module path inside layer {i} and the ids its
output (or input) goes under. The residual stream after the mixer is the layer's input plus the
mixer's output, as the layout draws it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAX_PARAMETERS = 500_000_000   # traced on a CPU in under a minute at 32 tokens; larger ones are recorded elsewhere
MAX_TOKENS = 4096              # positions one recorded pass holds
MAX_RECORDED_BYTES = 2 << 30   # what one pass may keep (every head's T × T adds up first): checked before it runs
MAX_DOWNSAMPLING = 64          # attention maps pooled by more than this show nothing readable: refused instead
DEVICES = ("cpu", "cuda", "auto")
ALWAYS_KEPT = ("tokens", "logits", "probs")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")

# Where each family keeps its layers and the parts around them: (embedding, layers, final norm, head), and the id
# the token embedding's output goes under (GPT-2 adds positions after it: its embed.out is the first hidden state).
BACKBONES = {
    "decoder": ("model.embed_tokens", "model.layers", "model.norm", "lm_head"),
    "gpt2": ("transformer.wte", "transformer.h", "transformer.ln_f", "lm_head"),
    "mamba": ("backbone.embeddings", "backbone.layers", "backbone.norm_f", "lm_head"),
}
EMBEDDING_ID = {"decoder": "embed.out", "gpt2": "embed.tok", "mamba": "embed.out"}
# model_type -> backbone
FAMILIES = {"llama": "decoder", "mistral": "decoder", "qwen2": "decoder", "qwen3": "decoder", "mixtral": "decoder",
            "qwen2_moe": "decoder", "qwen3_moe": "decoder", "gemma": "decoder", "phi3": "decoder",
            "gpt2": "gpt2", "mamba": "mamba"}

# Per backbone, inside layer {i}: (module path, "output" or "input", layout id, which layers: "dense", "moe" or
# None for any). A path a layer lacks is skipped. A layer is a mixture of experts when it holds MOE_MARKERS.
HOOKS = {
    "decoder": (
        ("input_layernorm", "output", "ln1.out", None),
        ("post_attention_layernorm", "output", "ln2.out", None),
        ("self_attn.o_proj", "output", "attn.proj", None),
        ("mlp.gate_proj", "output", "mlp.gate", "dense"),
        ("mlp.up_proj", "output", "mlp.up", "dense"),
        ("mlp.act_fn", "output", "mlp.act", "dense"),
        ("mlp.down_proj", "input", "mlp.gated", "dense"),
        ("mlp", "output", "mlp.down", "dense"),
        ("mlp.gate", "output", "moe.router", "moe"),              # Mixtral's and Qwen-MoE's router logits
        ("mlp", "output", "moe.out", "moe"),
        ("block_sparse_moe.gate", "output", "moe.router", "moe"),  # older Mixtral checkpoints' module names
        ("block_sparse_moe", "output", "moe.out", "moe"),
    ),
    "gpt2": (
        ("ln_1", "output", "ln1.out", None),
        ("ln_2", "output", "ln2.out", None),
        ("attn.c_proj", "output", "attn.proj", None),
        ("mlp.c_fc", "output", "mlp.fc", None),
        ("mlp.act", "output", "mlp.gelu", None),
        ("mlp.c_proj", "output", "mlp.proj", None),
    ),
    "mamba": (
        ("norm", "output", "ln1.out", None),
        ("mixer", "output", "mamba.out", None),
    ),
}
MOE_MARKERS = ("mlp.experts", "block_sparse_moe")
# The sub-block whose output, added to the layer's input, is the stream after the mixer (resid1).
MIXER_OUTPUT = {"decoder": "attn.proj", "gpt2": "attn.proj", "mamba": "mamba.out"}
# The id a layer's output (transformers' hidden_states[i + 1]) goes under.
LAYER_OUTPUT = {"decoder": "resid2", "gpt2": "resid2", "mamba": "resid1"}


class RecordError(ValueError):
    """A folder, a model or an input that cannot be recorded: the message is one line."""


@dataclass
class OpenedModel:
    model: object
    config: dict
    folder: Path
    family: str
    tokenizer: object = None
    parameters: int = 0
    device: str = "cpu"
    # What the last recording pooled to fit MAX_RECORDED_BYTES: id pattern -> how (the trace file's "downsampled").
    downsampled: dict = field(default_factory=dict)


def _module(root, path: str):
    for part in path.split("."):
        root = getattr(root, part, None)
        if root is None:
            return None
    return root


def check_folder(folder: str | os.PathLike) -> Path:
    """The folder, if it holds a config.json and safetensors weights; RecordError (one line) otherwise. A folder
    with only pickled weights is refused without opening them."""
    path = Path(folder)
    if not path.is_dir():
        raise RecordError(f"{path}: not a folder (a model folder holds config.json and *.safetensors)")
    if not (path / "config.json").is_file():
        raise RecordError(f"{path}: no config.json")
    names = [p.name for p in path.iterdir() if p.is_file()]
    if not any(n.endswith(".safetensors") for n in names):
        pickled = sorted(n for n in names if n.endswith(PICKLE_SUFFIXES))
        if pickled:
            raise RecordError(f"{path}: only pickled weights ({', '.join(pickled[:3])}); llmviz never unpickles a file, "
                              "since loading one can run any code: convert it to safetensors first")
        raise RecordError(f"{path}: no *.safetensors weights")
    return path


def load_options(device: str) -> dict:
    """from_pretrained's placement for `device`: the CPU; one CUDA device; or accelerate's device_map="auto", which
    shards a model too big for one GPU across all of them (and the CPU)."""
    if device not in DEVICES:
        raise RecordError(f"device {device!r}: give one of {', '.join(DEVICES)}")
    if device == "cpu":
        return {}
    import torch

    if not torch.cuda.is_available():
        if device == "cuda":
            raise RecordError("device cuda: no CUDA device here (use cpu, or auto to take a GPU when there is one)")
        return {}
    try:
        import accelerate  # noqa: F401  (transformers needs it for a device_map)
    except ImportError:
        return {"device_map": "cuda"}   # without accelerate, one GPU: the model must fit on it
    return {"device_map": "auto"}


def open_folder(folder: str | os.PathLike, progress=None, device: str = "cpu") -> OpenedModel:
    """Load a local model folder with transformers (eager attention, float32, local files only), on the CPU or,
    with `device` cuda/auto, on the GPUs (load_options)."""
    import json

    from llmviz.models.hf_config import read_config

    path = check_folder(folder)
    config, _ = read_config(path)              # bounded and validated before transformers sees it
    model_type = config.get("model_type")
    family = FAMILIES.get(model_type)
    if family is None:
        raise RecordError(f"{path}: model_type {model_type!r} is not one llmviz records "
                          f"(supported: {', '.join(sorted(FAMILIES))})")
    report = progress or (lambda stage, fraction: None)
    placement = load_options(device)
    report("reading the weights", 0.1)
    import torch
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(path), local_files_only=True, use_safetensors=True, trust_remote_code=False,
            attn_implementation="eager", torch_dtype=torch.float32, **placement)
    except Exception as err:  # transformers' own message, on one line
        raise RecordError(f"{path}: transformers could not load it: {' '.join(str(err).split())[:300]}") from None
    model.eval()
    parameters = sum(p.numel() for p in model.parameters())
    on_gpu = bool(placement)
    if parameters > MAX_PARAMETERS and not on_gpu:
        raise RecordError(f"{path}: {parameters:,} parameters, more than the {MAX_PARAMETERS:,} a CPU traces in a "
                          "minute here: record it where the weights run (llmviz trace … --out run.llmtrace) and open "
                          "the trace")
    tokenizer = None
    if any((path / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json",
                                                 "tokenizer.model")):
        report("reading the tokenizer", 0.5)
        try:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
        except Exception as err:
            raise RecordError(f"{path}: its tokenizer could not be read: {' '.join(str(err).split())[:200]}") from None
    json.dumps(config)                         # a config that cannot be stored in a trace file fails here
    return OpenedModel(model, config, path, family, tokenizer, parameters, "cuda" if on_gpu else "cpu")


def token_ids(opened: OpenedModel, text: str | None = None, ids: list[int] | None = None) -> list[int]:
    """The input as token ids: the folder's tokenizer on `text`, or `ids` given directly (checked against the
    vocabulary)."""
    vocab = int(opened.config.get("vocab_size") or 0)
    if ids is None:
        if text is None:
            raise RecordError("give an input text or token ids")
        if opened.tokenizer is None:
            raise RecordError(f"{opened.folder}: no tokenizer files; give token ids instead (--ids 5,17,99)")
        ids = list(opened.tokenizer(text, add_special_tokens=False)["input_ids"])
    if not ids:
        raise RecordError("the input has no tokens")
    if len(ids) > MAX_TOKENS:
        raise RecordError(f"{len(ids):,} tokens; one recorded pass holds at most {MAX_TOKENS:,}")
    bad = [i for i in ids if not (0 <= int(i) < vocab)]
    if bad:
        raise RecordError(f"token id {bad[0]} is outside the vocabulary (0..{vocab - 1})")
    return [int(i) for i in ids]


def recorded_bytes(config: dict, n_tokens: int, attention: bool = True, pooling: int = 1) -> int:
    """An upper bound on what `record` keeps for `n_tokens` tokens, from the config alone: each layer's streams and
    MLP activations, every head's attention (T × T, or ⌈T / pooling⌉² when pooled), the logits and probabilities;
    float32."""
    def size(*names, default=0):
        return next((int(config[n]) for n in names if isinstance(config.get(n), int)), default)

    width = size("hidden_size", "n_embd", "d_model")
    layers = size("num_hidden_layers", "n_layer")
    heads = size("num_attention_heads", "n_head")
    inner = max(size("intermediate_size", "n_inner", default=4 * width), 2 * width)
    streams = layers * n_tokens * (8 * width + 4 * inner)
    pooled = -(-n_tokens // pooling)
    maps = layers * heads * pooled * pooled if attention else 0
    return 4 * (streams + maps + 2 * n_tokens * size("vocab_size"))


def attention_pooling(config: dict, n_tokens: int, attention: bool = True) -> int:
    """How many cells on a side each recorded attention cell averages so that the pass fits MAX_RECORDED_BYTES:
    1 (every cell) when it fits as it is; RecordError when even the streams do not fit, or the maps would be
    pooled past MAX_DOWNSAMPLING."""
    pooling = 1
    while recorded_bytes(config, n_tokens, attention, pooling) > MAX_RECORDED_BYTES:
        if pooling >= MAX_DOWNSAMPLING or not attention:
            need = recorded_bytes(config, n_tokens, attention, pooling)
            raise RecordError(f"recording {n_tokens:,} tokens would keep about {need / (1 << 30):.1f} GiB (at most "
                              f"{MAX_RECORDED_BYTES / (1 << 30):.0f}) even with the attention maps pooled "
                              f"{pooling}x{pooling}: give a shorter input, or leave the attention maps out "
                              "(--tensors 'blocks.*.resid*')")
        pooling *= 2
    return pooling


POOLED_MAPS = "blocks.*.attn.head.*.softmax"   # what attention_pooling pools: the trace file's "downsampled" key


def pooling_note(pooling: int) -> str:
    """How a trace file's header says a tensor was pooled (read back by pooling_of)."""
    return f"mean of {pooling}x{pooling} cells"


def pooling_of(note: str) -> int | None:
    """The pooling a header's note names (pooling_note's words), or None for words it does not write."""
    import re

    match = re.fullmatch(r"mean of (\d{1,4})x\1 cells", str(note))
    return int(match.group(1)) if match else None


def pooled_maps(maps, pooling: int):
    """(heads, T, T) attention maps as the means of pooling × pooling cells, (heads, ⌈T/p⌉, ⌈T/p⌉); the last block
    row and column average the cells they have (not padding)."""
    import torch.nn.functional as F

    return F.avg_pool2d(maps[None], pooling, ceil_mode=True)[0]


def _input_device(model):
    """Where the token ids go in: the embedding's device (the first GPU of a sharded model)."""
    return model.get_input_embeddings().weight.device


def record(opened: OpenedModel, ids: list[int], wanted=None) -> dict[str, np.ndarray]:
    """One forward pass over `ids`, every declared tensor under its layout id (float32 numpy, batch row 0).
    `wanted(id)`, when given, picks the ids kept (ALWAYS_KEPT always are): the attention maps, the bulk of a long
    pass, are not even computed when no head's is wanted."""
    import torch

    model, family = opened.model, opened.family
    wanted = wanted or (lambda tensor_id: True)
    attention = family != "mamba" and wanted("blocks.0.attn.head.0.softmax")
    pooling = attention_pooling(opened.config, len(ids), attention)
    opened.downsampled = {POOLED_MAPS: pooling_note(pooling)} if pooling > 1 else {}
    embed_path, layers_path, norm_path, _ = BACKBONES[family]
    layers = _module(model, layers_path)
    recorded: dict[str, np.ndarray] = {}
    handles = []

    def keep(name: str, which: str):
        def hook(module, args, output):
            value = args[0] if which == "input" else (output[0] if isinstance(output, tuple) else output)
            # (batch, T, …) or, for a router over the flattened batch, (batch · T, experts): the one sequence
            row = value[0] if value.dim() >= 3 else value
            if name not in recorded:           # a module reached twice (shared experts) keeps its first
                recorded[name] = row.detach().float().cpu().numpy().copy()
        return hook

    for i, layer in enumerate(layers):
        # the layer's own output (transformers reports the last one after the final norm, so it is hooked here)
        handles.append(layer.register_forward_hook(keep(f"blocks.{i}.{LAYER_OUTPUT[family]}", "output")))
        kind = "moe" if any(_module(layer, marker) is not None for marker in MOE_MARKERS) else "dense"
        for path, which, suffix, only in HOOKS[family]:
            module = _module(layer, path)
            if module is not None and only in (None, kind):
                handles.append(module.register_forward_hook(keep(f"blocks.{i}.{suffix}", which)))
    handles.append(_module(model, embed_path).register_forward_hook(keep(EMBEDDING_ID[family], "output")))
    final_norm = _module(model, norm_path)
    if final_norm is not None:
        handles.append(final_norm.register_forward_hook(keep("ln_f.out", "output")))
    try:
        with torch.inference_mode():
            kwargs = {"output_hidden_states": family == "gpt2"}
            if attention:
                kwargs["output_attentions"] = True
            out = model(torch.tensor([ids], device=_input_device(model)), use_cache=False, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    recorded["tokens"] = np.asarray(ids, np.int64)
    if "embed.out" not in recorded:           # GPT-2: token and position embeddings summed
        recorded["embed.out"] = out.hidden_states[0][0].float().cpu().numpy().copy()
    for i in range(len(layers)):
        mixer = recorded.get(f"blocks.{i}.{MIXER_OUTPUT[family]}")
        if LAYER_OUTPUT[family] == "resid2" and mixer is not None:
            before = recorded["embed.out"] if i == 0 else recorded[f"blocks.{i - 1}.resid2"]
            recorded[f"blocks.{i}.resid1"] = before + mixer
    for i, maps in enumerate(getattr(out, "attentions", None) or ()):
        heads = maps[0].float()
        if pooling > 1:   # on the device that computed them, before they reach the CPU
            heads = pooled_maps(heads, pooling)
        for h, probs in enumerate(heads.cpu().numpy()):
            if wanted(f"blocks.{i}.attn.head.{h}.softmax"):
                recorded[f"blocks.{i}.attn.head.{h}.softmax"] = probs.copy()
    logits = out.logits[0].float().cpu().numpy()
    recorded["logits"] = logits.copy()
    shifted = logits - logits.max(axis=-1, keepdims=True)
    recorded["probs"] = (np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)).astype(np.float32)
    return {k: v for k, v in recorded.items() if k in ALWAYS_KEPT or wanted(k)}
