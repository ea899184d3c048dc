"""Every string a user reads, per language: keys looked up in assets/lang/<code>/*.toml, English the fallback.

A language is a folder of TOML files; a file's name is the first part of its keys and its tables the
rest (``menu.toml``'s ``[file] open = "Open…"`` is ``menu.file.open``). Texts name their values as
Python format fields (``"{n} tokens"``), so translations may reorder them; a number passed to ``tr``
is written the language's way (``language.decimal`` and ``language.group``: Vietnamese "1.234,5").
A key a language lacks shows the English text, and is reported once on stderr, never raised.

In llmviz.common so that engine (overlay, profiler) and scenes share one lookup; the bundled folder is
found through importlib.resources, and any other root may be passed (tests, a user's language).
"""
from __future__ import annotations

import functools
import importlib.resources
import numbers
import re
import string
import sys
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .text import nesting_depth, one_line

FALLBACK = "en"
MAX_FILE_BYTES = 256 * 1024     # the largest interface file is a few kB; a chapter table a few tens
MAX_FILES = 64                  # files read per language
MAX_NESTING = 8                 # tables within tables: file.area.item is three
MAX_TEXT_CHARS = 8000
CODE_PATTERN = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")
KEY_PART = re.compile(r"[A-Za-z0-9_-]{1,64}")


class LanguageError(ValueError):
    """A language file that cannot be used: one line naming the file and, where there is one, the key."""

    def __init__(self, path, message: str, key: str | None = None):
        self.path, self.key = str(path), key
        super().__init__(f"{path}: " + (f"key '{one_line(key)}': " if key else "") + one_line(message))


def bundled_root() -> Path:
    """assets/lang: one folder per language code."""
    return Path(str(importlib.resources.files("llmviz.assets").joinpath("lang")))


def available(root: Path | None = None) -> tuple[str, ...]:
    """The language codes under ``root`` (folders with a language.toml), English first."""
    root = Path(root) if root is not None else bundled_root()
    try:
        codes = sorted(p.name for p in root.iterdir() if CODE_PATTERN.fullmatch(p.name) and (p / "language.toml").is_file())
    except OSError:
        return ()
    return tuple(sorted(codes, key=lambda code: code != FALLBACK))


def read_file(path: Path) -> dict[str, str]:
    """One language file's texts by full key (its name first); bounded before TOML sees it."""
    path = Path(path)
    if not KEY_PART.fullmatch(path.stem):
        raise LanguageError(path, "a language file's name must be letters, digits, '_' or '-' (it starts its keys)")
    try:
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            raise LanguageError(path, f"not a regular file of at most {MAX_FILE_BYTES:,} bytes")
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise LanguageError(path, f"cannot read ({exc.strerror or exc})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise LanguageError(path, f"more than {MAX_FILE_BYTES:,} bytes")
    try:
        text = raw.decode("utf-8")
        if nesting_depth(text) > MAX_NESTING:
            raise LanguageError(path, f"tables nest more than {MAX_NESTING} deep")
        data = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise LanguageError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise LanguageError(path, f"invalid TOML: {exc}") from None
    except RecursionError:
        raise LanguageError(path, "tables nest too deeply") from None
    texts: dict[str, str] = {}
    _flatten(path, path.stem, data, texts, 1)
    return texts


def _flatten(path: Path, prefix: str, table: dict, out: dict[str, str], depth: int) -> None:
    for name, value in table.items():
        key = f"{prefix}.{name}"
        if not KEY_PART.fullmatch(name):
            raise LanguageError(path, "a key's parts are letters, digits, '_' or '-'", key)
        if isinstance(value, dict):
            if depth >= MAX_NESTING:  # dotted keys ([a.b.c]) nest without brackets
                raise LanguageError(path, f"tables nest more than {MAX_NESTING} deep", key)
            _flatten(path, key, value, out, depth + 1)
        elif not isinstance(value, str):
            raise LanguageError(path, f"must be a text (a quoted string), got {type(value).__name__}", key)
        elif len(value) > MAX_TEXT_CHARS:
            raise LanguageError(path, f"{len(value):,} characters; a text may have at most {MAX_TEXT_CHARS:,}", key)
        else:
            try:
                placeholders(value)
            except ValueError as exc:
                raise LanguageError(path, f"bad placeholder ({exc}); write a literal brace as {{{{ or }}}}", key) from None
            out[key] = value


def placeholders(text: str) -> frozenset[str]:
    """The named fields a text uses ("{n:,} tokens" -> {"n"}); raises ValueError on a malformed one."""
    names = set()
    for _, name, spec, conversion in string.Formatter().parse(text):
        if name is not None:
            if not name.isidentifier():
                raise ValueError(f"'{{{name}}}' is not a name" if name else "'{}' has no name")
            if conversion not in (None, "r", "s", "a"):
                raise ValueError(f"'!{conversion}' is not a conversion (!r, !s or !a)")
            names.add(name)
            if spec and "{" in spec:
                raise ValueError("nested fields are not allowed")
    return frozenset(names)


@dataclass(frozen=True)
class Language:
    """One language's texts and its way of writing numbers."""

    code: str
    texts: dict[str, str]
    folder: str = ""

    @property
    def name(self) -> str:
        """The language's own name ("Tiếng Việt"), for the menu."""
        return self.texts.get("language.name", self.code)

    @property
    def decimal(self) -> str:
        return self.texts.get("language.decimal", ".")

    @property
    def group(self) -> str:
        return self.texts.get("language.group", ",")


def load(code: str, root: Path | None = None) -> Language:
    """Language ``code``'s folder under ``root`` (the bundled assets/lang by default), read once per process:
    reading and parsing a language's files takes tens of ms, which a menu drawn every frame must not pay."""
    return _load(code, str(Path(root) if root is not None else bundled_root()))


def language_name(code: str, root: Path | None = None) -> str:
    """A language's own name ("Tiếng Việt") from its language.toml alone (the menu lists them all)."""
    return _name(code, str(Path(root) if root is not None else bundled_root()))


@functools.lru_cache(maxsize=64)
def _name(code: str, root: str) -> str:
    if not CODE_PATTERN.fullmatch(code or ""):
        return code
    try:
        return read_file(Path(root) / code / "language.toml").get("language.name", code)
    except LanguageError:
        return code


@functools.lru_cache(maxsize=16)
def _load(code: str, root: str) -> Language:
    root = Path(root)
    if not CODE_PATTERN.fullmatch(code or ""):
        raise LanguageError(root, f"'{one_line(code)[:40]}' is not a language code (such as en, vi)")
    folder = root / code
    files = sorted(folder.glob("*.toml")) if folder.is_dir() else []
    if not files:
        known = ", ".join(available(root)) or "none"
        raise LanguageError(folder, f"no such language (known: {known})")
    if len(files) > MAX_FILES:
        raise LanguageError(folder, f"{len(files)} files; a language may have at most {MAX_FILES}")
    texts: dict[str, str] = {}
    for path in files:
        texts.update(read_file(path))
    for key in ("language.decimal", "language.group"):
        if key in texts and len(texts[key]) != 1:
            raise LanguageError(folder / "language.toml", "must be one character", key)
    return Language(code, texts, str(folder))


class _Localised:
    """str.format for one language, numbers written with its decimal and grouping marks. Each text is parsed once
    (a frame fills dozens: string.Formatter, parsing each time, took 19 µs for a text of three numbers, this 11;
    a text without fields costs about 1)."""

    _CONVERSIONS = {None: None, "r": repr, "s": str, "a": ascii}

    def __init__(self, language: Language):
        self.marks = str.maketrans({".": language.decimal, ",": language.group})
        self._parsed: dict[str, tuple] = {}

    def format_field(self, value, format_spec: str) -> str:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return format(value, format_spec).translate(self.marks)
        return format(value, format_spec)

    def fill(self, text: str, values: dict) -> str:
        """``text`` with its named fields filled from ``values`` (KeyError for one not given)."""
        pieces = self._parsed.get(text)
        if pieces is None:
            pieces = self._parsed[text] = tuple((literal, name, spec or "", self._CONVERSIONS[conversion])
                                                for literal, name, spec, conversion in string.Formatter().parse(text))
        if len(pieces) == 1 and pieces[0][1] is None:
            return pieces[0][0]
        out = []
        for literal, name, spec, convert in pieces:
            out.append(literal)
            if name is not None:
                value = values[name]
                out.append(self.format_field(convert(value) if convert else value, spec))
        return "".join(out)


@dataclass
class Translator:
    """The chosen language over the English fallback; thread-safe for lookups (the frame and workers read it)."""

    language: Language
    fallback: Language
    reported: set = field(default_factory=set)
    report_stream: object = None   # where a missing key is reported once (stderr by default)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        self._formatters = {id(self.language): _Localised(self.language), id(self.fallback): _Localised(self.fallback)}

    @property
    def code(self) -> str:
        return self.language.code

    def has(self, key: str) -> bool:
        return key in self.language.texts or key in self.fallback.texts

    def tr(self, key: str, **values) -> str:
        """The text of ``key`` in the chosen language with ``values`` filled in; English where it lacks
        the key or its text cannot be filled; the key itself where English lacks it too."""
        unfilled = None
        for language in (self.language, self.fallback):
            text = language.texts.get(key)
            if text is None:
                self._report(key, f"no {self.language.name} text for '{key}'; showing "
                             + ("English" if language is self.language and key in self.fallback.texts else "the key"))
                continue
            try:
                return self._formatters[id(language)].fill(text, values)
            except (KeyError, IndexError, ValueError, TypeError) as exc:
                unfilled = unfilled or text
                self._report(key + "#format" + language.code,
                             f"the {language.name} text of '{key}' cannot be filled in ({exc!r})")
        return unfilled or key

    def sentence(self, english: str) -> str:
        """A text the code holds as data, in English (the components' roles), in the chosen language where its
        sentences files give it; English otherwise (``llmviz chapters --check-lang`` lists those)."""
        if self.language is self.fallback:
            return english
        return sentences(self.language.code, self.language.folder).get(english, english)

    def number(self, value, spec: str = "") -> str:
        """A number written the chosen language's way: number(1234.5, ",.1f") -> "1.234,5" in Vietnamese."""
        return self._formatters[id(self.language)].format_field(value, spec)

    def _report(self, what: str, message: str) -> None:
        with self._lock:
            if what in self.reported:
                return
            self.reported.add(what)
        print(f"llmviz: {message}", file=self.report_stream or sys.stderr)


SENTENCES = "sentences"   # a language's folder of texts keyed by their English, as gettext keys by msgid
MAX_SENTENCES = 4000


def read_sentences(path: Path) -> dict[str, str]:
    """One sentences file: [[sentence]] tables of ``en`` (the English as the code writes it) and ``text`` (this
    language's), with the same placeholders; bounded before TOML sees it, errors naming the file and the entry."""
    path = Path(path)
    try:
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            raise LanguageError(path, f"not a regular file of at most {MAX_FILE_BYTES:,} bytes")
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
        data = tomllib.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise LanguageError(path, f"cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise LanguageError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise LanguageError(path, f"invalid TOML: {exc}") from None
    entries = data.get("sentence", [])
    if set(data) - {"sentence"} or not isinstance(entries, list) or len(entries) > MAX_SENTENCES:
        raise LanguageError(path, f"expected only [[sentence]] tables (at most {MAX_SENTENCES:,})")
    out = {}
    for k, entry in enumerate(entries, 1):
        where = f"sentence {k}"
        if not isinstance(entry, dict) or set(entry) != {"en", "text"} or not all(
                isinstance(v, str) and len(v) <= MAX_TEXT_CHARS for v in entry.values()):
            raise LanguageError(path, "needs en and text, both texts (and nothing else)", where)
        try:
            same = placeholders(entry["en"]) == placeholders(entry["text"])
        except ValueError as exc:
            raise LanguageError(path, f"bad placeholder ({exc})", where) from None
        if not same:
            raise LanguageError(path, f"fills {sorted(placeholders(entry['text']))}, its English "
                                f"{sorted(placeholders(entry['en']))}", where)
        out[entry["en"]] = entry["text"]
    return out


@functools.lru_cache(maxsize=16)
def sentences(code: str, folder: str) -> dict[str, str]:
    """English -> this language for every sentences file of the language in ``folder`` (read once)."""
    files = sorted((Path(folder) / SENTENCES).glob("*.toml"))[:MAX_FILES]
    out: dict[str, str] = {}
    for path in files:
        out.update(read_sentences(path))
    return out


def check_sentences(code: str, english: list[str], root: Path | None = None) -> list[str]:
    """One line per text of ``english`` (what the code holds as data) that language ``code`` does not translate."""
    if code == FALLBACK:
        return []
    have = sentences(code, load(code, root).folder)
    return [f"{code}: no translation of the sentence \"{one_line(text)[:80]}\" (English shown)"
            for text in dict.fromkeys(english) if text not in have]


def sentence(english: str) -> str:
    """``english``, a text the code holds as data, in the chosen language where it is translated."""
    return translator().sentence(english)


_current: Translator | None = None
_lock = threading.Lock()


def translator() -> Translator:
    """The process's translator, English until set_language chooses another."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                english = load(FALLBACK)
                _current = Translator(english, english)
    return _current


def set_language(code: str, root: Path | None = None) -> None:
    """Make ``code`` the language of every later tr(); raises LanguageError for an unknown or bad one.
    English (bundled) is read only when a text is first looked up: a command that shows none never pays for it."""
    global _current
    if code == FALLBACK and root is None:
        with _lock:
            _current = None
        return
    fallback = load(FALLBACK, root)
    chosen = fallback if code == FALLBACK else load(code, root)
    with _lock:
        _current = Translator(chosen, fallback)


def language() -> str:
    """The chosen language's code."""
    return translator().code


def tr(key: str, **values) -> str:
    """The interface text of ``key`` in the chosen language: tr("status.tokens", n=5)."""
    return translator().tr(key, **values)


def num(value, spec: str = "") -> str:
    """A number in the chosen language's notation: num(0.25, ".3f") -> "0,250" in Vietnamese."""
    return translator().number(value, spec)


def num_text(text: str) -> str:
    """A number someone already wrote the English way ("1,234.5", "3.2e-05") in the chosen language's marks."""
    return str(text).translate(translator()._formatters[id(translator().language)].marks)


@dataclass(frozen=True)
class Check:
    """What a language lacks against English: missing keys, keys English has not, placeholder mismatches."""

    code: str
    missing: tuple[str, ...]
    extra: tuple[str, ...]
    mismatched: tuple[tuple[str, frozenset, frozenset], ...]   # (key, English's fields, this language's)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.mismatched)

    def lines(self) -> list[str]:
        out = [f"{self.code}: missing '{key}' (English shown)" for key in self.missing]
        out += [f"{self.code}: '{key}' is not an English key (never shown)" for key in self.extra]
        out += [f"{self.code}: '{key}' fills {{{', '.join(sorted(theirs)) or 'nothing'}}}, English fills "
                f"{{{', '.join(sorted(ours)) or 'nothing'}}}" for key, ours, theirs in self.mismatched]
        return out


def compare(english: dict[str, str], other: dict[str, str], code: str) -> Check:
    """Check ``other``'s texts against ``english``'s: the same keys, each filling the same named values."""
    missing = tuple(sorted(set(english) - set(other)))
    extra = tuple(sorted(set(other) - set(english)))
    mismatched = tuple((key, placeholders(english[key]), placeholders(other[key]))
                       for key in sorted(set(english) & set(other))
                       if placeholders(english[key]) != placeholders(other[key]))
    return Check(code, missing, extra, mismatched)


def check(code: str, root: Path | None = None) -> Check:
    """Compare language ``code``'s interface files with English's."""
    return compare(load(FALLBACK, root).texts, load(code, root).texts, code)
