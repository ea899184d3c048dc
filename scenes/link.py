"""llmviz:// links: a view (scene, camera, chapter and step, input text, sampling, compare set, an imported
spec) as one line of plain text, and back.

A link is ``llmviz://v1/?scene=gpt-2-small&camera=preset:first%20block&chapter=2&step=3``: a version,
then a query string whose values are percent-encoded UTF-8, so it survives a chat or a course page.
Only the syntax is checked here (length first, before any decoding; the version; known fields, each
once; numbers and sizes); what the values mean (does the scene exist, is the camera well formed) is
checked by the command that opens the view, with the very checks its flags get.

Version 2 adds the sampling settings (``temperature``, ``seed``), a compare set (``compare=A,B``) and a
model of the user's own carried inline (``spec=``: its spec file, zlib-compressed, URL-safe base64,
decompressed to at most the registry's spec bound). A link is written as v1 when it holds only v1
fields, so older readers open it; a v1 link with a v2 field is refused by name.
"""
from __future__ import annotations

import base64
import binascii
import math
import urllib.parse
import zlib
from dataclasses import dataclass, fields

SCHEME = "llmviz://"
VERSION = "v2"         # what this llmviz writes when a link needs it, and the newest it reads
VERSIONS = ("v1", "v2")
MAX_LINK_CHARS = 16384  # checked before decoding: a paste of a whole file is refused, not parsed
MAX_SCENE_CHARS = 200
MAX_TEXT_CHARS = 2000  # more than any shipped live model's context
MAX_NUMBER = 999       # chapters and steps
MAX_TEMPERATURE = 10.0
MAX_SEED = 2 ** 63 - 1  # as llmviz generate --seed
MAX_COMPARE = 4         # models side by side
MAX_SPEC_CHARS = 12000  # the encoded spec; a shipped spec compresses to under 2,000
MAX_SPEC_BYTES = 1 << 20  # decompressed (models/registry.py's bound on a spec file)


class LinkError(ValueError):
    """A link that cannot be read: one line saying why."""


@dataclass(frozen=True)
class LinkView:
    """The view a link holds; None where the link leaves the default."""

    scene: str
    camera: str | None = None
    chapter: int | None = None
    step: int | None = None
    text: str | None = None
    temperature: float | None = None  # a live generator's sampling: 0 greedy
    seed: int | None = None           # its sampler's seed
    compare: tuple[str, ...] | None = None  # 2 to 4 model ids side by side (then ``scene`` is the first)
    spec: str | None = None           # an imported model's spec file text (JSON or TOML), when not a built-in
    spec_name: str | None = None      # that file's name (its suffix says how to read it)


FIELDS = tuple(f.name for f in fields(LinkView))
V1_FIELDS = ("scene", "camera", "chapter", "step", "text")
_NUMBERS = ("chapter", "step")


def _text_of(name: str, value) -> str:
    if name == "compare":
        return ",".join(value)
    if name == "spec":
        return base64.urlsafe_b64encode(zlib.compress(value.encode("utf-8"), 9)).decode("ascii").rstrip("=")
    if name == "temperature":
        return repr(float(value))  # the shortest text that reads back as the same float
    return str(value)


def make_link(view: LinkView) -> str:
    """The link text of ``view``: its set fields in a fixed order, percent-encoded (',' and ':' kept: cameras stay
    readable); v1 when it holds only v1 fields."""
    parse_fields(view)
    pairs = [(name, _text_of(name, getattr(view, name))) for name in FIELDS if getattr(view, name) is not None]
    query = "&".join(f"{name}={urllib.parse.quote(value, safe=',:')}" for name, value in pairs)
    version = "v1" if all(name in V1_FIELDS for name, _ in pairs) else VERSION
    link = f"{SCHEME}{version}/?{query}"
    if len(link) > MAX_LINK_CHARS:
        raise LinkError(f"the link would be {len(link):,} characters; an llmviz link is at most {MAX_LINK_CHARS:,}")
    return link


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def parse_link(text) -> LinkView:
    """The view of a link; LinkError (one line) for anything else."""
    if not isinstance(text, str):
        raise LinkError("a link is text")
    if len(text) > MAX_LINK_CHARS:
        raise LinkError(f"the link is {len(text):,} characters long; an llmviz link is at most {MAX_LINK_CHARS:,}")
    text = text.strip()
    if not text.lower().startswith(SCHEME):
        raise LinkError(f"{_short(text)} is not an llmviz link: it starts with {SCHEME}")
    rest = text[len(SCHEME):]
    version, slash, query = rest.partition("/")
    if version not in VERSIONS:
        raise LinkError(f"link version {_short(version)} is not one this llmviz reads ({', '.join(VERSIONS)}); "
                        f"a newer llmviz may open it")
    known = V1_FIELDS if version == "v1" else FIELDS
    if not query.startswith("?"):
        raise LinkError(f"the link has no view after {SCHEME}{VERSION}/ (it goes on '?scene=NAME')")
    try:
        pairs = urllib.parse.parse_qsl(query[1:], keep_blank_values=True, strict_parsing=True,
                                       errors="strict", max_num_fields=len(known))
    except UnicodeDecodeError:
        raise LinkError("the link's percent-encoded bytes are not UTF-8 text") from None
    except ValueError as err:  # a field without '=', or more fields than a v1 link has
        reason = f"more fields than a {version} link has" if "Max number" in str(err) else "a field without '=' in it"
        raise LinkError(f"the link is malformed: {reason}") from None
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in known:
            raise LinkError(f"the link has a field {_short(name)} that a {version} link does not have "
                            f"({', '.join(known)})")
        if name in values:
            raise LinkError(f"the link gives {name} twice")
        values[name] = value
    if "scene" not in values:
        raise LinkError("the link names no scene (scene=NAME)")
    view = LinkView(**{name: field_value(name, value) for name, value in values.items()})
    parse_fields(view)
    return view


def field_value(name: str, value: str, what: str | None = None):
    """A field's text as its value (numbers checked); LinkError naming it as ``what`` (default: the link's NAME)."""
    what = what or f"the link's {name}"
    if name in _NUMBERS:
        if not value.isascii() or not value.isdigit() or len(value) > len(str(MAX_NUMBER)):
            raise LinkError(f"{what} {_short(value)} is not a number from 1 to {MAX_NUMBER}")
        return int(value)
    if name == "seed":
        if not value.isascii() or not value.isdigit() or len(value) > len(str(MAX_SEED)) or int(value) > MAX_SEED:
            raise LinkError(f"{what} {_short(value)} is not a number from 0 to 2^63-1")
        return int(value)
    if name == "temperature":
        try:
            number = float(value) if len(value) <= 32 and value.isascii() else math.nan
        except ValueError:
            number = math.nan
        if not 0.0 <= number <= MAX_TEMPERATURE:  # NaN too
            raise LinkError(f"{what} {_short(value)} is not a number from 0 to {MAX_TEMPERATURE:g}")
        return number
    if name == "compare":
        return tuple(value.split(","))
    if name == "spec":
        return _spec_text(value)
    return value


def _spec_text(value: str) -> str:
    """The spec file text of a link's ``spec=``: bounded before decoding and while decompressing."""
    if len(value) > MAX_SPEC_CHARS:
        raise LinkError(f"the link's spec is {len(value):,} characters; at most {MAX_SPEC_CHARS:,}")
    try:
        packed = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        unpacker = zlib.decompressobj()
        data = unpacker.decompress(packed, MAX_SPEC_BYTES + 1)
        if len(data) > MAX_SPEC_BYTES or unpacker.unconsumed_tail:
            raise LinkError(f"the link's spec unpacks to more than {MAX_SPEC_BYTES:,} bytes")
        if not unpacker.eof:
            raise LinkError("the link's spec is cut short")
        return data.decode("utf-8")
    except (binascii.Error, ValueError, zlib.error) as err:
        if isinstance(err, LinkError):
            raise
        raise LinkError("the link's spec is not a compressed spec file (base64 of zlib)") from None


def parse_fields(view: LinkView) -> None:
    """LinkError unless every field is within its bounds (shared by making and reading a link)."""
    if not view.scene or len(view.scene) > MAX_SCENE_CHARS or not view.scene.isprintable():
        raise LinkError(f"the link's scene {_short(view.scene or '')} is not a scene name")
    if view.camera is not None and (not view.camera or len(view.camera) > MAX_SCENE_CHARS
                                    or not view.camera.isprintable()):
        raise LinkError(f"the link's camera {_short(view.camera)} is not a camera")
    for name in _NUMBERS:
        number = getattr(view, name)
        if number is not None and not 1 <= number <= MAX_NUMBER:
            raise LinkError(f"the link's {name} {number} is not a number from 1 to {MAX_NUMBER}")
    if view.step is not None and view.chapter is None:
        raise LinkError("the link gives a step without a chapter")
    if view.text is not None and len(view.text) > MAX_TEXT_CHARS:
        raise LinkError(f"the link's text is {len(view.text):,} characters; at most {MAX_TEXT_CHARS:,}")
    if view.temperature is not None and not 0.0 <= view.temperature <= MAX_TEMPERATURE:
        raise LinkError(f"the link's temperature {view.temperature} is not a number from 0 to {MAX_TEMPERATURE:g}")
    if view.seed is not None and not 0 <= view.seed <= MAX_SEED:
        raise LinkError(f"the link's seed {view.seed} is not a number from 0 to 2^63-1")
    if view.compare is not None:
        names = view.compare
        if not 2 <= len(names) <= MAX_COMPARE or any(not n or len(n) > MAX_SCENE_CHARS or not n.isprintable()
                                                      or "," in n for n in names):
            raise LinkError(f"the link's compare set is not 2 to {MAX_COMPARE} model ids")
    if (view.spec is None) != (view.spec_name is None):
        raise LinkError("the link's spec comes with its file name (spec_name=NAME.json or .toml)")
    if view.spec_name is not None and (len(view.spec_name) > MAX_SCENE_CHARS or "/" in view.spec_name
                                       or not view.spec_name.endswith((".json", ".toml"))):
        raise LinkError(f"the link's spec_name {_short(view.spec_name)} is not a NAME.json or NAME.toml")
    if view.spec is not None and len(view.spec) > MAX_SPEC_BYTES:
        raise LinkError(f"the link's spec is more than {MAX_SPEC_BYTES:,} bytes")
