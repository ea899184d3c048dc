"""`llmviz rag index PATH... --out DIR` and `llmviz rag ask [--index DIR] --question "..."`: a retrieval store
of real embeddings (all-MiniLM-L6-v2 from its offline package) in a real FAISS index, and a small reader
trained here (rag-llama) that answers from the retrieved chunks only, headless.

`ask` prints the retrieved chunks (file, position, score), the answer with each token's probability, and
each passage's share of the answer's attention; without --index it asks the shipped demo store. `eval`
prints the reader's exact and "I don't know." rates on the store's held-out questions (reader_eval.py). Bad
input (an unreadable file, no text, a store from another embedding model, a damaged store) is one line and
exit code 2.
"""
from __future__ import annotations

import json
import sys

from llmviz.scenes.cli.common import parse_int, shown

TOP_K_MAX = 8


def add_parser(subparsers) -> None:
    from llmviz.models.rag import documents, store

    p = subparsers.add_parser("rag", help="retrieval: index documents, ask a question over them (no display needed)",
                              description="Retrieval-augmented answers with real parts: documents chunked, embedded "
                                          "with all-MiniLM-L6-v2, searched with FAISS, read by a small model "
                                          "trained here.")
    sub = p.add_subparsers(dest="rag_command", metavar="{index,ask,eval,train}")
    sub.required = True
    i = sub.add_parser("index", help="chunk and embed documents into a store folder",
                       description="Chunks .txt, .md and .pdf files (a folder is searched for them): paragraphs "
                                   "packed up to --chunk characters, a heading or a PDF page starts a chunk, a longer "
                                   "paragraph cut into windows overlapping by --overlap characters.")
    i.add_argument("paths", nargs="+", metavar="PATH", help="documents or folders")
    i.add_argument("--out", required=True, help="the store folder to write")
    i.add_argument("--chunk", default=str(documents.DEFAULT_CHUNK), help="characters per chunk at most (default 400)")
    i.add_argument("--overlap", default=str(documents.DEFAULT_OVERLAP),
                   help="characters a cut paragraph's windows share (default 80)")
    i.add_argument("--index-type", default="auto", choices=store.INDEX_TYPES,
                   help=f"FAISS index: auto is flat up to {store.FLAT_LIMIT} chunks, HNSW above")
    i.add_argument("--threads", default="1",
                   help="torch threads for the embedding model (default 1: on a busy machine two threads spend "
                        "three times the CPU for the same chunks)")
    i.set_defaults(func=run_index)
    a = sub.add_parser("ask", help="answer a question from a store",
                       description="Retrieves the top-k chunks for the question and lets rag-llama answer from them "
                                   "(it says 'I don't know.' when they do not hold the answer).")
    a.add_argument("--index", default=None, help="a store folder (default: the shipped demo store)")
    a.add_argument("--question", required=True)
    a.add_argument("--top-k", default="3", help=f"chunks retrieved, 1..{TOP_K_MAX} (default 3)")
    a.add_argument("--off", default="", help="comma-separated ranks (1 = best) of retrieved chunks to leave out")
    a.add_argument("--json", action="store_true", help="print the result as JSON")
    a.set_defaults(func=run_ask)
    e = sub.add_parser("eval", help="the reader's exact and 'I don't know.' rates on the store's held-out questions",
                       description="Asks the questions about the demo store's invented people (facts the reader "
                                   "never saw in training) with the top-k retrieved chunks, then again with the "
                                   "answer's card switched off; prints how often the answer is exact and how often "
                                   "it is 'I don't know.' without the card.")
    e.add_argument("--index", default=None,
                   help="a store folder holding the demo facts (default: the shipped demo store)")
    e.add_argument("--weights", default=None, help="a reader .safetensors file (default: the shipped weights)")
    e.add_argument("--top-k", default="3", help=f"chunks retrieved, 1..{TOP_K_MAX} (default 3)")
    e.add_argument("--questions", default=None,
                   help="how many of the store's questions, spread evenly (default all)")
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.set_defaults(func=run_eval)
    t = sub.add_parser("train", help="train the reader rag-llama again from its seed (the shipped weights' recipe)")
    t.add_argument("--out", required=True, help="the .safetensors file to write")
    t.add_argument("--steps", default=None,
                   help="optimizer steps of one phase (default: the shipped weights' recipe, train_reader.PHASES)")
    t.add_argument("--seed", default="0", help="the seed (default 0, the shipped weights')")
    t.set_defaults(func=run_train)


def _fail(command: str, message: str) -> int:
    print(f"llmviz rag {command}: error: {message}", file=sys.stderr)
    return 2


def _int(text, flag: str, low: int, high: int, command: str) -> int:
    from llmviz.scenes.cli.main import CliError

    try:
        return parse_int(text, flag, low, high)
    except ValueError as exc:
        raise CliError(f"llmviz rag {command}: {exc}") from None


def run_index(args) -> int:
    from pathlib import Path

    from llmviz.models.rag import documents, store
    from llmviz.scenes.cli.common import Progress
    from llmviz.scenes.cli.main import CliError

    import os

    import torch

    size = _int(args.chunk, "--chunk", 50, 20_000, "index")
    torch.set_num_threads(_int(args.threads, "--threads", 1, os.cpu_count() or 1, "index"))
    overlap = _int(args.overlap, "--overlap", 0, 10_000, "index")
    try:
        documents.check_rule(size, overlap)
    except ValueError as exc:
        raise CliError(f"llmviz rag index: {exc}") from None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return _fail("index", f"--out {shown(args.out)} is a file, not a folder")
    paths = documents.expand_paths(args.paths)
    chunks = []
    reading = Progress("llmviz rag index: reading")
    for n, path in enumerate(paths, start=1):
        try:
            chunks += documents.chunk_file(path, size, overlap)
        except documents.DocumentError as exc:
            return _fail("index", str(exc))
        reading(n, len(paths))
    if not chunks:
        return _fail("index", f"no text in {len(paths)} document(s): the store would be empty")
    try:
        built = store.build(chunks, args.index_type, {"chunk": size, "overlap": overlap},
                            Progress("llmviz rag index: embedding chunks"))
        folder = store.save(built, out)
    except OSError as exc:
        return _fail("index", f"--out {shown(args.out)}: cannot write ({exc.strerror or exc})")
    print(f"{len(chunks)} chunks from {len(paths)} document(s) -> {folder} ({built.index_type} index, "
          f"chunks of at most {size} characters, overlap {overlap})")
    return 0


def _ranks(text: str, k: int) -> set[int]:
    from llmviz.scenes.cli.main import CliError

    ranks = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        ranks.add(_int(part, "--off", 1, k, "ask"))
    if text and not ranks:
        raise CliError(f"llmviz rag ask: --off {shown(text)} names no rank")
    return ranks


def ask(folder, question: str, top_k: int, off: set[int] = frozenset()) -> dict:
    """The result `run_ask` prints (tests call it)."""
    import torch

    from llmviz.models.rag import reader, reader_model, store

    torch.set_num_threads(1)
    st = store.load(folder)
    _, hits = st.search(question, top_k)
    kept = [h for h in hits if h.rank + 1 not in off]
    model = reader_model.load_reader()
    result = reader.answer(model, [st.chunks[h.chunk].text for h in kept], question)
    shares = result.passage_shares()
    retrieved = []
    for h in hits:
        c = st.chunks[h.chunk]
        slot = next((j for j, k in enumerate(kept) if k is h), None)
        retrieved.append({"rank": h.rank + 1, "file": c.file, "page": c.page, "start": c.start, "end": c.end,
                          "score": h.score, "used": slot is not None,
                          "attention_share": None if slot is None else shares[slot],
                          "cut": None if slot is None else result.prompt.cut[slot], "text": c.text})
    return {"store": str(folder), "index_type": st.index_type, "chunks_in_store": len(st.chunks),
            "reader": reader_model.MODEL_ID, "about": reader_model.WHAT_IT_IS, "question": question,
            "retrieved": retrieved, "answer": result.text, "knows": result.knows,
            "tokens": [{"token": t.word, "probability": t.probability, "passage_shares": t.passage_shares,
                        "question_share": t.question_share} for t in result.tokens]}


def run_ask(args) -> int:
    from llmviz.models.rag import demo, store

    top_k = _int(args.top_k, "--top-k", 1, TOP_K_MAX, "ask")
    off = _ranks(args.off, top_k)
    if not args.question.strip():
        return _fail("ask", "--question is empty")
    folder = args.index if args.index is not None else demo.demo_path()
    try:
        result = ask(folder, args.question, top_k, off)
    except store.StoreError as exc:
        return _fail("ask", f"--index {exc}")
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['store']}: {result['chunks_in_store']} chunks, {result['index_type']} index; "
          f"question {shown(args.question, 80)}")
    for r in result["retrieved"]:
        page = f" page {r['page']}" if r["page"] is not None else ""
        share = f"attention {100 * r['attention_share']:5.1f}%" if r["used"] else "switched off"
        first = r["text"].splitlines()[0] if r["text"] else ""
        print(f"  #{r['rank']} {r['score']:.3f}  {r['file']}{page} chars {r['start']}-{r['end']}  {share}  "
              f"{shown(first, 50)}")
    print(f"answer ({result['reader']}, {result['about']}): {result['answer']}")
    for t in result["tokens"]:
        per = " ".join(f"#{i + 1} {100 * s:4.1f}%" for i, s in enumerate(t["passage_shares"]))
        print(f"  {t['token']:<14} {100 * t['probability']:6.2f}%   attention: {per}  question "
              f"{100 * t['question_share']:4.1f}%")
    return 0


def run_eval(args) -> int:
    import torch

    from llmviz.models.rag import demo, reader_eval, reader_model, store
    from llmviz.scenes.cli.main import CliError

    top_k = _int(args.top_k, "--top-k", 1, TOP_K_MAX, "eval")
    count = None if args.questions is None else _int(args.questions, "--questions", 1, 100_000, "eval")
    folder = args.index if args.index is not None else demo.demo_path()
    torch.set_num_threads(1)
    try:
        st = store.load(folder)
    except store.StoreError as exc:
        return _fail("eval", f"--index {exc}")
    try:
        model = reader_model.load_reader(args.weights)
    except ValueError as exc:
        raise CliError(f"llmviz rag eval: --weights {exc}") from None
    result = reader_eval.score(model, st, reader_eval.held_out_questions(count), top_k)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0
    rates = result.rates()
    print(f"{result.questions} held-out questions, top {top_k} of {len(st.chunks)} chunks: the answer's card retrieved "
          f"for {result.retrieved} ({100 * rates['retrieved']:.1f}%)")
    print(f"  exact answer: {result.exact}/{result.retrieved} ({100 * rates['exact']:.1f}%)   'I don't know.' with "
          f"the card off: {result.unknown}/{result.retrieved} ({100 * rates['unknown_when_off']:.1f}%)")
    print("  exact per relation: " + ", ".join(f"{k} {e}/{n}" for k, (e, n) in result.per_relation.items()))
    for m in result.misses[:8]:
        print(f"  miss{' (card off)' if m.card_off else ''}: {shown(m.question, 50)} expected "
              f"{shown(m.expected, 40)} got {shown(m.got, 40)}")
    return 0


def run_train(args) -> int:
    from llmviz.models.rag import reader_model, train_reader
    from llmviz.scenes.cli.common import check_output_path

    seed = _int(args.seed, "--seed", 0, 2**31 - 1, "train")
    out = check_output_path(args.out, "--out", (".safetensors",))
    log = lambda line: print(line, file=sys.stderr, flush=True)   # noqa: E731
    if args.steps is None:
        steps = sum(p[0] for p in train_reader.PHASES)
        print(f"training {reader_model.MODEL_ID} ({reader_model.WHAT_IT_IS}) as shipped: phases "
              f"{train_reader.PHASES} of {train_reader.BATCH_SIZE} generated prompts, seed {seed}, one torch thread",
              file=sys.stderr)
        result = train_reader.train_shipped(seed, log)
    else:
        steps = _int(args.steps, "--steps", 1, 1_000_000, "train")
        result = train_reader.train(seed, steps, log)
    reader_model.save_safetensors(result.model, out, {"steps": steps, "seed": seed})
    print(f"wrote {out}: answer loss {result.final_loss:.4f} after {steps} steps in {result.seconds:.0f} s")
    return 0
