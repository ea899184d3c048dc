"""The retrieval store: chunks, their embeddings and a FAISS index over them, saved to a folder and loaded
back checked, and searched by a question's embedding.

Vectors are unit length (embedding.py), so the inner product is the cosine similarity, the score shown.
Index types: "flat" (IndexFlatIP, exact) for stores up to FLAT_LIMIT chunks, "hnsw" (IndexHNSWFlat, M 32,
efSearch 128, inner product) above it, or "ivf" (IndexIVFFlat, about 4 sqrt(n) lists, 8 probed) when asked.
The folder holds store.json (format, embedding model, dimension, count, index type, chunk rule, and the
sha256 of the three other files), chunks.json, vectors.npy and index.faiss, each written through the one
atomic write, store.json last, so a half-written or mixed folder is refused on loading. A store made with
another embedding model is refused by name.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmviz.models.rag import embedding
from llmviz.models.rag.documents import Chunk

FORMAT = "llmviz-rag-store-1"
FLAT_LIMIT = 5000
INDEX_TYPES = ("auto", "flat", "hnsw", "ivf")
HNSW_M, HNSW_EF_SEARCH, HNSW_EF_CONSTRUCTION = 32, 128, 80
IVF_PROBE = 8
MAX_MANIFEST_BYTES = 1 << 20
MAX_CHUNKS = 2_000_000
MAX_FILE_BYTES = 4 << 30
FILES = ("chunks.json", "vectors.npy", "index.faiss")


class StoreError(ValueError):
    """A store folder that cannot be used: one line naming the folder and what is wrong."""


def chosen_type(requested: str, n: int) -> str:
    if requested not in INDEX_TYPES:
        raise ValueError(f"index type must be one of {', '.join(INDEX_TYPES)}, got {requested!r}")
    if requested == "auto":
        return "flat" if n <= FLAT_LIMIT else "hnsw"
    return requested


def build_index(vectors: np.ndarray, kind: str):
    """A FAISS index of `kind` (flat, hnsw, ivf) over unit `vectors` (n, d), inner product."""
    import faiss

    n, d = vectors.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    elif kind == "ivf":
        lists = max(1, min(n // 39, int(4 * math.sqrt(n))))   # FAISS wants ~39 training points per list
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, lists, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = min(IVF_PROBE, lists)
    else:
        raise ValueError(f"unknown index type {kind!r}")
    index.add(vectors)
    return index


@dataclass
class Hit:
    rank: int
    chunk: int                      # index into Store.chunks
    score: float                    # cosine similarity


@dataclass
class Store:
    chunks: list[Chunk]
    vectors: np.ndarray             # (n, 384) float32, unit rows
    index_type: str
    chunk_rule: dict
    index: object = None

    def __post_init__(self):
        if self.index is None:
            self.index = build_index(self.vectors, self.index_type)

    def with_index(self, kind: str) -> "Store":
        """The same chunks and vectors under another index type (built here, not saved)."""
        return Store(self.chunks, self.vectors, chosen_type(kind, len(self.chunks)), self.chunk_rule)

    def search_vectors(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (q, k): FAISS's search; ids of -1 where fewer than k were found."""
        k = max(1, min(k, len(self.chunks)))
        if self.index_type == "hnsw":
            self.index.hnsw.efSearch = max(HNSW_EF_SEARCH, k)
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)

    def search_query(self, query: np.ndarray, k: int) -> list[Hit]:
        """The k best chunks for one embedded question (384,), best first."""
        scores, ids = self.search_vectors(query[None, :], k)
        return [Hit(r, int(i), float(s)) for r, (s, i) in enumerate(zip(scores[0], ids[0])) if i >= 0]

    def search(self, question: str, k: int) -> tuple[np.ndarray, list[Hit]]:
        """(the question's embedding, its k best chunks, best first)."""
        query = embedding.encode([question])[0]
        return query, self.search_query(query, k)


def build(chunks: list[Chunk], index_type: str = "auto", chunk_rule: dict | None = None, progress=None) -> Store:
    if not chunks:
        raise StoreError("no text to index: the documents hold no chunks")
    vectors = embedding.encode([c.text for c in chunks], progress)
    return Store(chunks, vectors, chosen_type(index_type, len(chunks)), dict(chunk_rule or {}))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save(store: Store, folder) -> Path:
    """Writes the store's four files into `folder` (made if missing), each atomically, store.json last."""
    import faiss

    from llmviz.common.atomic import write_atomic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(store.vectors, dtype=np.float32), allow_pickle=False)
    blobs = {"chunks.json": json.dumps([c.to_json() for c in store.chunks], ensure_ascii=False).encode("utf-8"),
             "vectors.npy": buf.getvalue(),
             "index.faiss": faiss.serialize_index(store.index).tobytes()}
    for name, data in blobs.items():
        write_atomic(folder / name, data)
    manifest = {"format": FORMAT, "embedding_model": embedding.MODEL_NAME, "dimension": embedding.DIMENSION,
                "chunks": len(store.chunks), "index_type": store.index_type, "chunk_rule": store.chunk_rule,
                "sha256": {name: _sha(data) for name, data in blobs.items()}}
    write_atomic(folder / "store.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return folder


def _read(path: Path, limit: int, shown: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > limit:
            raise StoreError(f"{shown}: {path.name} is {size:,} bytes, over the {limit:,} allowed")
        return path.read_bytes()
    except FileNotFoundError:
        raise StoreError(f"{shown}: no {path.name} (not a store made by llmviz rag index)") from None
    except OSError as exc:
        raise StoreError(f"{shown}: cannot read {path.name} ({exc.strerror or exc})") from None


def read_manifest(folder) -> dict:
    """`folder`'s store.json (bounded, its format checked), without reading the other files."""
    folder = Path(folder)
    shown = str(folder)
    if not folder.is_dir():
        raise StoreError(f"{shown}: not a folder (a store is the folder llmviz rag index --out wrote)")
    try:
        manifest = json.loads(_read(folder / "store.json", MAX_MANIFEST_BYTES, shown))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise StoreError(f"{shown}: store.json is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise StoreError(f"{shown}: store.json is not an llmviz store (format {FORMAT} expected)")
    return manifest


def load(folder) -> Store:
    """The store in `folder`, every file checked against store.json before it is used."""
    import faiss

    folder = Path(folder)
    shown = str(folder)
    manifest = read_manifest(folder)
    model = manifest.get("embedding_model")
    if model != embedding.MODEL_NAME or manifest.get("dimension") != embedding.DIMENSION:
        raise StoreError(f"{shown}: made with the embedding model {model!r} ({manifest.get('dimension')} dimensions); "
                         f"this llmviz embeds with {embedding.MODEL_NAME} ({embedding.DIMENSION}): index it again")
    n, kind, sums = manifest.get("chunks"), manifest.get("index_type"), manifest.get("sha256")
    if not isinstance(n, int) or not 1 <= n <= MAX_CHUNKS:
        raise StoreError(f"{shown}: store.json's chunks must be 1..{MAX_CHUNKS}, got {n!r}")
    if kind not in INDEX_TYPES[1:] or not isinstance(sums, dict):
        raise StoreError(f"{shown}: store.json's index_type or sha256 is missing or unknown")
    blobs = {}
    for name in FILES:
        data = _read(folder / name, MAX_FILE_BYTES, shown)
        if _sha(data) != sums.get(name):
            raise StoreError(f"{shown}: {name} does not match store.json (changed or half written): index it again")
        blobs[name] = data
    try:
        raw = json.loads(blobs["chunks.json"])
        chunks = [Chunk(str(c["text"]), str(c["file"]), None if c["page"] is None else int(c["page"]),
                        int(c["start"]), int(c["end"])) for c in raw]
        vectors = np.load(io.BytesIO(blobs["vectors.npy"]), allow_pickle=False)
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{shown}: chunks.json or vectors.npy is malformed ({type(exc).__name__})") from None
    if len(chunks) != n or vectors.shape != (n, embedding.DIMENSION) or vectors.dtype != np.float32:
        raise StoreError(f"{shown}: {len(chunks)} chunks and vectors {vectors.shape} do not match store.json's {n}")
    index = faiss.deserialize_index(np.frombuffer(blobs["index.faiss"], dtype=np.uint8))
    if index.ntotal != n or index.d != embedding.DIMENSION:
        raise StoreError(f"{shown}: index.faiss holds {index.ntotal} vectors of {index.d}, not {n} of "
                         f"{embedding.DIMENSION}")
    if kind == "ivf":
        faiss.extract_index_ivf(index).nprobe = min(IVF_PROBE, faiss.extract_index_ivf(index).nlist)
    return Store(chunks, vectors, kind, dict(manifest.get("chunk_rule") or {}), index)
