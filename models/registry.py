"""The model registry: built-in specs shipped as package data, plus the user's own spec files.

Built-ins live in llmviz.models.specs (one JSON file per model, shown in the order of
index.json). User specs live in <config dir>/specs, where `add_user_spec` copies a file after
validating it. The config dir is $LLMVIZ_CONFIG_DIR, else $XDG_CONFIG_HOME/llmviz, else
~/.config/llmviz. Only stdlib and spec.py are imported: listing models must stay fast.
"""
from __future__ import annotations

import difflib
import functools
import json
import os
import stat
import tomllib
from importlib import resources
from pathlib import Path

from llmviz.common.text import nesting_depth

from .spec import ModelSpec, SpecError, parse_spec

SPEC_SUFFIXES = (".json", ".toml")
MAX_SPEC_BYTES = 1 << 20  # the largest shipped spec is under 10 KB
MAX_NESTING = 32          # objects and lists inside one another; a spec needs 5
_BUILTIN_PACKAGE = __package__ + ".specs"
_INDEX = "index.json"


class UnknownModelError(LookupError):
    """A model id that is neither a built-in nor a user spec; carries the closest names."""

    def __init__(self, model_id: str, suggestions: list[str]):
        self.model_id, self.suggestions = model_id, suggestions
        super().__init__(str(self))

    def __str__(self) -> str:
        hint = f"; did you mean: {', '.join(self.suggestions)}?" if self.suggestions else ""
        return f"unknown model {self.model_id!r}{hint}"


def config_dir() -> Path:
    if os.environ.get("LLMVIZ_CONFIG_DIR"):
        return Path(os.environ["LLMVIZ_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "llmviz"


def user_specs_dir() -> Path:
    return config_dir() / "specs"


def read_spec_text(text: str, name: str, origin: str = "") -> ModelSpec:
    """Parse JSON or TOML text (chosen by the file name's suffix) into a validated ModelSpec."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(name, None, f"{len(text):,} characters; a spec file may have at most {MAX_SPEC_BYTES:,}")
    if nesting_depth(text) > MAX_NESTING:
        raise SpecError(name, None, f"nests lists and objects more than {MAX_NESTING} deep")
    try:
        if name.endswith(".toml"):
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SpecError(name, None, f"not valid JSON (line {error.lineno}, column "
                        f"{error.colno}: {error.msg})") from None
    except tomllib.TOMLDecodeError as error:
        raise SpecError(name, None, f"not valid TOML ({error})") from None
    except (ValueError, RecursionError) as error:  # e.g. an integer of more than 4300 digits
        raise SpecError(name, None, f"cannot be read ({str(error).splitlines()[0][:80]})") from None
    return parse_spec(data, file=name, origin=origin)


def read_spec_bytes(path: str | os.PathLike) -> bytes:
    """A spec file's bytes; a FIFO, a device or a file over MAX_SPEC_BYTES is refused before reading."""
    path = Path(path)
    if path.suffix not in SPEC_SUFFIXES:
        raise SpecError(path.name, None, "a spec file must end in .json or .toml")
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise SpecError(path.name, None, "not a regular file")
        if info.st_size > MAX_SPEC_BYTES:
            raise SpecError(path.name, None, f"{info.st_size:,} bytes; a spec file may have at most "
                            f"{MAX_SPEC_BYTES:,}")
        with open(path, "rb") as f:
            data = f.read(MAX_SPEC_BYTES + 1)
    except OSError as error:
        raise SpecError(path.name, None, f"cannot read the file ({error.strerror or error})") from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(path.name, None, f"more than {MAX_SPEC_BYTES:,} bytes")
    return data


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpecError(name, None, f"not UTF-8 text (byte {error.start})") from None


def load_spec_file(path: str | os.PathLike) -> ModelSpec:
    path = Path(path)
    text = _decode(read_spec_bytes(path), path.name)
    return read_spec_text(text, path.name, origin=str(path))


@functools.cache
def builtin_specs() -> tuple[ModelSpec, ...]:
    """Every built-in spec, in display order; read once per process."""
    folder = resources.files(_BUILTIN_PACKAGE)
    order = json.loads(folder.joinpath(_INDEX).read_text(encoding="utf-8"))["order"]
    return tuple(read_spec_text(folder.joinpath(f"{model_id}.json").read_text(encoding="utf-8"),
                                f"{model_id}.json", origin=f"built-in:{model_id}")
                 for model_id in order)


def builtin_spec_files() -> list[str]:
    """Names of the spec files shipped in the package (index.json excluded)."""
    folder = resources.files(_BUILTIN_PACKAGE)
    return sorted(item.name for item in folder.iterdir()
                  if item.name.endswith(".json") and item.name != _INDEX)


class Registry:
    """Specs by id (and alias); `problems` holds the user files that failed to load."""

    def __init__(self, specs: list[ModelSpec], problems: list[SpecError] | None = None):
        self.problems = list(problems or [])
        self._specs: dict[str, ModelSpec] = {}
        self._names: dict[str, str] = {}        # lower-cased id or alias -> id
        for spec in specs:
            taken = [key for key in (spec.id, *spec.aliases) if key.lower() in self._names]
            if taken:
                owner = self._names[taken[0].lower()]
                self.problems.append(SpecError(spec.origin or spec.id, "id",
                                               f"{taken[0]!r} is already used by {owner}"))
                continue
            self._specs[spec.id] = spec
            for key in (spec.id, *spec.aliases):
                self._names[key.lower()] = spec.id

    def __iter__(self):
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, model_id: str) -> bool:
        return model_id.lower() in self._names

    def ids(self) -> list[str]:
        return list(self._specs)

    def get(self, model_id: str) -> ModelSpec:
        key = self._names.get(model_id.lower())
        if key is None:
            raise UnknownModelError(model_id, self.suggest(model_id))
        return self._specs[key]

    def suggest(self, query: str, limit: int = 5) -> list[str]:
        """Ids whose id, alias or name contains the query, then those close to it; punctuation
        and case are ignored, so 'gpt2' finds gpt-2-small."""
        wanted = _squash(query)
        keys = {_squash(key): key_id for key, key_id in self._names.items()}
        keys.update({_squash(s.name): s.id for s in self})
        found = [key_id for key, key_id in keys.items() if wanted and wanted in key]
        found += [keys[k] for k in difflib.get_close_matches(wanted, list(keys), n=limit,
                                                               cutoff=0.6)]
        return list(dict.fromkeys(found))[:limit]


def _squash(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def user_spec_paths(folder: Path | None = None) -> list[Path]:
    folder = folder or user_specs_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in SPEC_SUFFIXES and p.is_file())


def load_registry(include_user: bool = True, user_dir: Path | None = None) -> Registry:
    """Built-ins, then the user's specs; a broken user file is reported, never fatal."""
    specs, problems = list(builtin_specs()), []
    if include_user:
        for path in user_spec_paths(user_dir):
            try:
                specs.append(load_spec_file(path))
            except SpecError as error:
                problems.append(error)
    return Registry(specs, problems)


def add_user_spec(path: str | os.PathLike, user_dir: Path | None = None) -> tuple[ModelSpec, Path]:
    """Validate a spec file and write it to the user's spec folder as <id>.<suffix>.

    A file with the same id replaces the old one, atomically (llmviz.common.atomic: a failed write
    leaves the old file); re-adding the stored file itself is a no-op. An id or alias that another
    spec (built-in or user) uses as its id or alias is refused, so nothing is shadowed.
    """
    from llmviz.common.atomic import write_atomic

    source = Path(path)
    data = read_spec_bytes(source)
    spec = read_spec_text(_decode(data, source.name), source.name, origin=str(source))
    folder = user_dir or user_specs_dir()
    builtins = Registry(list(builtin_specs()))
    others = [s for s in load_registry(user_dir=folder) if s.id != spec.id or s.id in builtins]
    owners = {key.lower(): other for other in others for key in (other.id, *other.aliases)}
    for key in (spec.id, *spec.aliases):
        other = owners.get(key.lower())
        if other is not None:
            what = "a built-in model" if other.id in builtins else f"used by {other.origin or other.id}"
            raise SpecError(source.name, "id" if key == spec.id else "aliases",
                            f"{key!r} is {what}" + (f" ({other.id})" if other.id != key else "")
                            + "; choose another id")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{spec.id}{source.suffix}"
    write_atomic(target, data)
    for old in user_spec_paths(folder):          # one file per id, whatever its suffix
        if old.stem == spec.id and old.resolve() != target.resolve():
            old.unlink()
    return spec, target
