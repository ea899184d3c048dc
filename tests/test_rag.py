"""Retrieval (issue 20): the chunk rule, our embeddings against sentence-transformers' encode, the FAISS
search against brute force, the store on disk (saved, loaded, refused when damaged or from another
embedding model), the shipped demo store, and `llmviz rag index|ask`'s one-line errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

from llmviz.models.rag import demo, documents, embedding, facts, store
from llmviz.scenes.cli.main import main


# ---- the chunk rule ------------------------------------------------------------------------

def test_chunks_keep_within_size_cover_every_paragraph_and_start_at_headings():
    text = ("# Title\n\nshort one.\n\nshort two.\n\n## Section\n" + "alpha beta gamma " * 60 + "\n\nlast words.\n")
    spans = documents.chunk_text(text, markdown=True, size=200, overlap=40)
    assert all(b - a <= 200 for a, b in spans)
    # every non-blank character is in some chunk (independent check over the text)
    covered = np.zeros(len(text), bool)
    for a, b in spans:
        covered[a:b] = True
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())
    # the two short paragraphs after the title are packed with it; the heading opens a new chunk
    assert text[spans[0][0]:spans[0][1]] == "# Title\n\nshort one.\n\nshort two."
    assert text[spans[1][0]:].startswith("## Section")
    # the long paragraph's windows overlap by about `overlap` characters, cut between words
    windows = [s for s in spans if "alpha" in text[s[0]:s[1]]]
    assert len(windows) >= 4
    for (a0, b0), (a1, b1) in zip(windows, windows[1:]):
        assert 30 <= b0 - a1 <= 40
        assert text[a1 - 1].isspace()


def test_the_facts_card_is_one_chunk_each():
    people = facts.store_people()
    spans = documents.chunk_text(facts.facts_markdown(people), markdown=True)
    texts = [facts.facts_markdown(people)[a:b] for a, b in spans]
    assert [t for t in texts if t.startswith("## ")] == [p.card() for p in people]


def test_bad_chunk_rules_and_documents_are_one_line(tmp_path):
    with pytest.raises(ValueError, match="--overlap"):
        documents.check_rule(100, 60)
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4 not really")
    with pytest.raises(documents.DocumentError, match="not a readable PDF"):
        documents.chunk_file(bad)
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9")
    with pytest.raises(documents.DocumentError, match="not UTF-8"):
        documents.chunk_file(tmp_path / "latin.txt")


def test_pdf_pages_are_read_through_pypdf(tmp_path):
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter()
    writer.add_blank_page(200, 200)
    path = tmp_path / "blank.pdf"
    with open(path, "wb") as f:
        writer.write(f)
    assert documents.chunk_file(path) == []        # a page without text gives no chunk, and no error


# ---- embeddings and search -----------------------------------------------------------------

def test_our_embeddings_equal_sentence_transformers_encode():
    st = pytest.importorskip("sentence_transformers")
    texts = ["Where does Idrissa live?", facts.store_people()[0].card(), "word " * 400, "x"]
    reference = st.SentenceTransformer(str(embedding.model_folder()), device="cpu").encode(texts)
    np.testing.assert_allclose(embedding.encode(texts), reference, atol=1e-5)


def _random_store(n: int, kind: str, seed: int = 0) -> store.Store:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, embedding.DIMENSION)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    chunks = [documents.Chunk(f"chunk {i}", "random.txt", None, i, i + 1) for i in range(n)]
    return store.Store(chunks, v, kind, {})


def test_flat_search_equals_brute_force_and_faiss_knn():
    import faiss

    st = _random_store(500, "flat")
    q = st.vectors[:7] + 0.3 * np.random.default_rng(1).standard_normal((7, embedding.DIMENSION)).astype(np.float32)
    scores, ids = st.search_vectors(q, 5)
    brute = q.astype(np.float64) @ st.vectors.T.astype(np.float64)
    np.testing.assert_array_equal(ids, np.argsort(-brute, axis=1, kind="stable")[:, :5])
    np.testing.assert_allclose(scores, np.take_along_axis(brute, ids, 1), atol=1e-5)
    d, i = faiss.knn(q, st.vectors, 5, metric=faiss.METRIC_INNER_PRODUCT)
    np.testing.assert_array_equal(ids, i)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_indexes_find_the_brute_force_neighbours(kind):
    st = _random_store(2000, kind)
    q = st.vectors[::100]
    _, ids = st.search_vectors(q, 1)
    assert np.array_equal(ids[:, 0], np.arange(0, 2000, 100))     # each vector's own nearest is itself


def test_auto_picks_flat_up_to_the_limit_then_hnsw():
    assert store.chosen_type("auto", store.FLAT_LIMIT) == "flat"
    assert store.chosen_type("auto", store.FLAT_LIMIT + 1) == "hnsw"


# ---- the store on disk ---------------------------------------------------------------------

def test_store_round_trip_and_refusals(tmp_path):
    st = _random_store(50, "flat")
    folder = store.save(st, tmp_path / "s")
    back = store.load(folder)
    np.testing.assert_array_equal(back.vectors, st.vectors)
    assert back.chunks == st.chunks
    np.testing.assert_array_equal(back.search_vectors(st.vectors[:3], 4)[1], st.search_vectors(st.vectors[:3], 4)[1])
    manifest = json.loads((folder / "store.json").read_text())
    assert store.read_manifest(folder) == manifest                    # what the scene reads before loading
    (folder / "store.json").write_text(json.dumps({**manifest, "embedding_model": "someone/else"}))
    with pytest.raises(store.StoreError, match="another|embedding model 'someone/else'"):
        store.load(folder)
    (folder / "store.json").write_text(json.dumps(manifest))
    (folder / "chunks.json").write_text("[]")
    with pytest.raises(store.StoreError, match="does not match store.json"):
        store.load(folder)
    with pytest.raises(store.StoreError, match="not a folder"):
        store.load(tmp_path / "missing")


def test_shipped_facts_file_is_what_facts_generates():
    shipped = demo.demo_path().parent / demo.FACTS_FILE
    assert shipped.read_text() == facts.facts_markdown()


def test_demo_store_holds_the_facts_cards_and_the_project_docs():
    st = store.load(demo.demo_path())
    facts_file = demo.demo_path().parent / demo.FACTS_FILE
    ours = [c for c in st.chunks if c.file == demo.FACTS_FILE]
    assert ours == documents.chunk_file(facts_file, name=demo.FACTS_FILE)      # chunked again from the file
    assert {c.file for c in st.chunks} == {demo.FACTS_FILE, *demo.PROJECT_DOCS}
    assert st.index_type == "flat" and st.chunk_rule == {"chunk": documents.DEFAULT_CHUNK,
                                                         "overlap": documents.DEFAULT_OVERLAP}
    # the docs' chunks are not compared with today's files: the docs change more often than the store is rebuilt


def test_demo_store_puts_the_answer_card_first_for_every_store_question():
    st = store.load(demo.demo_path())
    questions = facts.store_questions()
    card = {c.text.split("\n", 1)[0][3:]: i for i, c in enumerate(st.chunks) if c.text.startswith("## ")}
    _, ids = st.search_vectors(embedding.encode([q.text for q in questions]), 3)
    in_top3 = np.mean([card[q.person.name] in row for q, row in zip(questions, ids)])
    assert in_top3 >= 0.95


# ---- the command line ----------------------------------------------------------------------

def test_rag_index_writes_a_store_and_bad_input_is_one_line(tmp_path, capsys):
    doc = tmp_path / "notes.md"
    doc.write_text("# Notes\n\nThe heron lives by the river.\n\n# Other\n\nNothing here.\n")
    assert main(["rag", "index", str(doc), "--out", str(tmp_path / "store")]) == 0
    assert "2 chunks from 1 document(s)" in capsys.readouterr().out
    assert store.load(tmp_path / "store").chunks[0].text.startswith("# Notes")
    (tmp_path / "empty.txt").write_text("  \n\n")
    for argv, message in [
        ([str(tmp_path / "nothing.txt")], "cannot read"),
        ([str(tmp_path / "empty.txt")], "no text"),
    ]:
        assert main(["rag", "index", *argv, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err and "Traceback" not in err


def test_rag_ask_on_a_damaged_store_is_one_line(tmp_path, capsys):
    store.save(_random_store(5, "flat"), tmp_path / "s")
    manifest = json.loads((tmp_path / "s" / "store.json").read_text())
    (tmp_path / "s" / "store.json").write_text(json.dumps({**manifest, "embedding_model": "other/model",
                                                           "dimension": 768}))
    assert main(["rag", "ask", "--index", str(tmp_path / "s"), "--question", "where?"]) == 2
    err = capsys.readouterr().err.strip()
    assert "embedding model 'other/model'" in err and "\n" not in err
