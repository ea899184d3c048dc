"""Documents for the retrieval store: plain text, Markdown and PDF files read with their size bounded, and
cut into chunks by one documented rule, each chunk keeping its file, page and character position.

The rule (`chunk_text`): a text is a sequence of paragraphs (runs of lines between blank lines). In
Markdown a paragraph that starts with '#' (a heading) begins a new section; a PDF's page is a section.
Within a section, paragraphs are packed into one chunk while the chunk (from its first paragraph's
first character to its last's last) stays within `size` characters; a paragraph longer than `size` is
cut into windows of at most `size` characters, each window starting `overlap` characters before the
previous one ended, cuts falling on whitespace when there is any in the window's second half. Chunks
never cross a section, so a heading always opens its chunk.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

MAX_FILE_BYTES = 64 << 20          # a document larger than this is refused before it is read
MAX_PDF_PAGES = 2000
DEFAULT_CHUNK, DEFAULT_OVERLAP = 400, 80
TEXT_SUFFIXES = {".txt": "text", ".md": "markdown", ".markdown": "markdown"}
SUFFIXES = (*TEXT_SUFFIXES, ".pdf")
_PARAGRAPH = re.compile(r"\S(?:[^\n]|\n(?![ \t]*\n))*")


class DocumentError(ValueError):
    """A document that cannot be read: its message is one line naming the file."""


@dataclass(frozen=True)
class Chunk:
    text: str
    file: str                      # as given on the command line
    page: int | None               # 1-based, for a PDF
    start: int                     # character offset in the file's text (in the page's, for a PDF)
    end: int

    def to_json(self) -> dict:
        return asdict(self)

    def where(self) -> str:
        page = f" page {self.page}" if self.page is not None else ""
        return f"{self.file}{page} chars {self.start}-{self.end}"


def check_rule(size: int, overlap: int) -> None:
    if not 50 <= size <= 20_000:
        raise ValueError(f"--chunk must be 50..20000 characters, got {size}")
    if not 0 <= overlap < size // 2:
        raise ValueError(f"--overlap must be 0..{size // 2 - 1} (under half the chunk), got {overlap}")


def _windows(text: str, start: int, end: int, size: int, overlap: int):
    while end - start > size:
        cut = start + size
        space = text.rfind(" ", start + size // 2, cut + 1)
        newline = text.rfind("\n", start + size // 2, cut + 1)
        cut = max(space, newline) if max(space, newline) > 0 else cut
        yield start, cut
        start = cut - overlap
        while start < cut and not text[start].isspace() and overlap and not text[start - 1].isspace():
            start += 1         # begin the overlap on a word
        while start < end and text[start].isspace():
            start += 1
    yield start, end


def chunk_text(text: str, markdown: bool, size: int = DEFAULT_CHUNK,
               overlap: int = DEFAULT_OVERLAP) -> list[tuple[int, int]]:
    """[start, end) character spans of the chunks of `text` by the module's rule."""
    check_rule(size, overlap)
    spans: list[tuple[int, int]] = []
    current: list[int] | None = None
    for m in _PARAGRAPH.finditer(text):
        a, b = m.start(), len(m.group().rstrip()) + m.start()
        heading = markdown and text[a] == "#"
        if current is not None and not heading and b - current[0] <= size:
            current[1] = b
            continue
        if current is not None:
            spans.append(tuple(current))
            current = None
        if b - a <= size:
            current = [a, b]
        else:
            spans.extend(_windows(text, a, b, size, overlap))
    if current is not None:
        spans.append(tuple(current))
    return spans


def read_pages(path: Path, shown: str) -> list[str]:
    """The file's text: one entry per PDF page, or the whole text file as one."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DocumentError(f"{shown}: cannot read ({exc.strerror or exc})") from None
    if not path.is_file():
        raise DocumentError(f"{shown}: not a file")
    if size > MAX_FILE_BYTES:
        raise DocumentError(f"{shown}: {size:,} bytes, over the {MAX_FILE_BYTES >> 20} MiB a document may have")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DocumentError(f"{shown}: not a document this store reads ({', '.join(SUFFIXES)})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"{shown}: cannot read ({exc.strerror or exc})") from None
    if suffix != ".pdf":
        try:
            return [data.decode("utf-8")]
        except UnicodeDecodeError as exc:
            raise DocumentError(f"{shown}: not UTF-8 text (byte {exc.start})") from None
    import io
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if len(reader.pages) > MAX_PDF_PAGES:
            raise DocumentError(f"{shown}: {len(reader.pages)} pages, over the {MAX_PDF_PAGES} a PDF may have")
        return [page.extract_text() or "" for page in reader.pages]
    except DocumentError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise DocumentError(f"{shown}: not a readable PDF ({type(exc).__name__})") from None


def chunk_file(path, size: int = DEFAULT_CHUNK, overlap: int = DEFAULT_OVERLAP, name: str | None = None) -> list[Chunk]:
    """The file's chunks (an empty list for a file with no text)."""
    path = Path(path)
    shown = name or str(path)
    pages = read_pages(path, shown)
    pdf = path.suffix.lower() == ".pdf"
    markdown = TEXT_SUFFIXES.get(path.suffix.lower()) == "markdown"
    chunks = []
    for number, text in enumerate(pages, start=1):
        for a, b in chunk_text(text, markdown, size, overlap):
            chunks.append(Chunk(text[a:b], shown, number if pdf else None, a, b))
    return chunks


def expand_paths(paths: list[str]) -> list[Path]:
    """The documents named: files as given, folders walked for the readable suffixes (sorted)."""
    found: list[Path] = []
    for given in paths:
        p = Path(given)
        if p.is_dir():
            found += sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in SUFFIXES)
        else:
            found.append(p)
    return found
