"""The shipped demo store (assets/rag/demo-store): the generated facts about invented people
(assets/rag/invented-people.md, facts.facts_markdown) and two of the project's own docs (PROJECT_DOCS),
chunked by the default rule, flat index. `write_demo(root)` rebuilds it from a checkout, also as
`python -m llmviz.models.rag.demo [ROOT]` (run it after the docs change: the store keeps the text it was
built from). tests/test_rag.py checks that the shipped facts file is what facts.py generates and that the
store holds exactly its cards and chunks of each doc."""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from llmviz.models.rag import documents, facts, store

FACTS_FILE = "invented-people.md"
PROJECT_DOCS = ("README.md", "BENCHMARKS.md")   # relative to the repository root


def demo_folder():
    """The shipped store's folder as an importlib.resources Traversable."""
    return files("llmviz.assets").joinpath("rag", "demo-store")


def demo_path() -> Path:
    return Path(str(demo_folder()))


def write_demo(root, progress=None) -> Path:
    """Writes the facts file and the store under ROOT/assets/rag from ROOT's docs; returns the store folder."""
    from llmviz.common.atomic import write_atomic

    root = Path(root)
    rag = root / "assets" / "rag"
    rag.mkdir(parents=True, exist_ok=True)
    write_atomic(rag / FACTS_FILE, facts.facts_markdown())
    chunks = documents.chunk_file(rag / FACTS_FILE, name=FACTS_FILE)
    for doc in PROJECT_DOCS:
        chunks += documents.chunk_file(root / doc, name=doc)
    rule = {"chunk": documents.DEFAULT_CHUNK, "overlap": documents.DEFAULT_OVERLAP}
    return store.save(store.build(chunks, "flat", rule, progress), rag / "demo-store")


def main(argv=None) -> int:
    import sys

    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else Path(__file__).resolve().parents[2]

    def progress(done: int, total: int) -> None:
        print(f"\rdemo store: embedding chunks {done}/{total}", end="\n" if done == total else "", file=sys.stderr)

    folder = write_demo(root, progress)
    print(f"wrote {folder}: {store.load(folder).vectors.shape[0]} chunks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
