"""A tiny random-weight Llama for the inference-server tests: a transformers folder and a GGUF of the same weights.

The tokenizer is a byte-level BPE trained here on a few ASCII sentences (printable ASCII and the
newline only, so every token is whole UTF-8 text), saved as tokenizer.json with a chat template.
The GGUF is written with the `gguf` package the way llama.cpp's converter writes a Llama: the same
metadata keys, q_proj/k_proj permuted from transformers' rotate-half order to llama.cpp's
interleaved one, every tensor float32. Seeded: the same files on every run.
"""
from __future__ import annotations

import json
from pathlib import Path

CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant:{% endif %}")
CORPUS = ["the model streams one token at a time, and each token has a probability.",
          "a server sends events; the client reads them as they arrive and keeps what came.",
          "entropy over the top alternatives says how sure the model was at that step.",
          "hello world: tiny models trained here are small, random and honest about it.",
          "".join(chr(c) for c in range(32, 127)) + "\n"]
SPECIALS = ["<s>", "</s>"]
CONFIG = dict(vocab_size=0, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-5, rope_theta=10000.0,
              tie_word_embeddings=False, bos_token_id=0, eos_token_id=1, initializer_range=0.25)
SEED = 18


def write_tokenizer(folder: Path):
    """tokenizer.json (+ tokenizer_config.json) in ``folder``; returns the tokenizers.Tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=SPECIALS, show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
        "chat_template": CHAT_TEMPLATE, "model_max_length": CONFIG["max_position_embeddings"]}))
    return tok


def write_hf_folder(folder: Path):
    """A transformers folder (config.json, model.safetensors, tokenizer); returns the model."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    tok = write_tokenizer(folder)
    torch.manual_seed(SEED)
    config = LlamaConfig(**dict(CONFIG, vocab_size=tok.get_vocab_size()))
    model = LlamaForCausalLM(config).eval()
    model.generation_config.do_sample = False
    model.save_pretrained(folder, safe_serialization=True)
    return model


def _permute(w, n_head: int):
    """transformers' rotate-half rows of q_proj / k_proj into llama.cpp's interleaved pairs (its converter's permute)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(folder: Path, path: Path) -> Path:
    """The GGUF of the folder's model and tokenizer at ``path``."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    config = json.loads((folder / "config.json").read_text())
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    weights = {k: v.astype(np.float32) for k, v in load_file(folder / "model.safetensors").items()}
    vocab = sorted(tokenizer["model"]["vocab"].items(), key=lambda kv: kv[1])
    assert [i for _, i in vocab] == list(range(len(vocab)))
    merges = [" ".join(m) if isinstance(m, list) else m for m in tokenizer["model"]["merges"]]
    n_head, n_kv = config["num_attention_heads"], config["num_key_value_heads"]
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("llmviz tiny random llama")
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(config["hidden_size"])
    w.add_block_count(config["num_hidden_layers"])
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_layer_norm_rms_eps(config["rms_norm_eps"])
    w.add_rope_freq_base(config.get("rope_theta") or config.get("rope_parameters", {}).get("rope_theta", 10000.0))
    w.add_rope_dimension_count(config["hidden_size"] // n_head)
    w.add_vocab_size(len(vocab))
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list([t for t, _ in vocab])
    w.add_token_types([gguf.TokenType.CONTROL if t in SPECIALS else gguf.TokenType.NORMAL for t, _ in vocab])
    w.add_token_merges(merges)
    w.add_bos_token_id(config["bos_token_id"])
    w.add_eos_token_id(config["eos_token_id"])
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    per_layer = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
                 "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
                 "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for name, value in weights.items():
        if name in names:
            w.add_tensor(names[name], value)
            continue
        _, _, layer, rest = name.split(".", 3)
        part = rest.rsplit(".", 1)[0]
        if part == "self_attn.q_proj":
            value = _permute(value, n_head)
        elif part == "self_attn.k_proj":
            value = _permute(value, n_kv)
        w.add_tensor(f"blk.{layer}.{per_layer[part]}.weight", np.ascontiguousarray(value))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
