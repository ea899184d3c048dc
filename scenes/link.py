"""llmviz:// links: a view (scene, camera, chapter and step, input text) as one line of plain text, and back.

A link is ``llmviz://v1/?scene=gpt-2-small&camera=preset:first%20block&chapter=2&step=3``: a version,
then a query string whose values are percent-encoded UTF-8, so it survives a chat or a course page.
Only the syntax is checked here (length first, before any decoding; the version; known fields, each
once; numbers and sizes); what the values mean (does the scene exist, is the camera well formed) is
checked by the command that opens the view, with the very checks its flags get.

Room to grow: a later version adds fields (an imported spec inline as ``spec=`` compressed base64,
sampling settings, a compare set) under ``v2``; a v1 reader refuses them by name rather than
dropping them silently.
"""
from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, fields

SCHEME = "llmviz://"
VERSION = "v1"
MAX_LINK_CHARS = 8192  # checked before decoding: a paste of a whole file is refused, not parsed
MAX_SCENE_CHARS = 200
MAX_TEXT_CHARS = 2000  # more than any shipped live model's context
MAX_NUMBER = 999       # chapters and steps


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


FIELDS = tuple(f.name for f in fields(LinkView))
_NUMBERS = ("chapter", "step")


def make_link(view: LinkView) -> str:
    """The link text of ``view``: its set fields in a fixed order, percent-encoded (',' and ':' kept: cameras stay readable)."""
    parse_fields(view)
    pairs = [(name, str(getattr(view, name))) for name in FIELDS if getattr(view, name) is not None]
    query = "&".join(f"{name}={urllib.parse.quote(value, safe=',:')}" for name, value in pairs)
    return f"{SCHEME}{VERSION}/?{query}"


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
    if version != VERSION:
        raise LinkError(f"link version {_short(version)} is not one this llmviz reads ({VERSION}); "
                        f"a newer llmviz may open it")
    if not query.startswith("?"):
        raise LinkError(f"the link has no view after {SCHEME}{VERSION}/ (it goes on '?scene=NAME')")
    try:
        pairs = urllib.parse.parse_qsl(query[1:], keep_blank_values=True, strict_parsing=True,
                                       errors="strict", max_num_fields=len(FIELDS))
    except UnicodeDecodeError:
        raise LinkError("the link's percent-encoded bytes are not UTF-8 text") from None
    except ValueError as err:  # a field without '=', or more fields than a v1 link has
        reason = "more fields than a v1 link has" if "Max number" in str(err) else "a field without '=' in it"
        raise LinkError(f"the link is malformed: {reason}") from None
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in FIELDS:
            raise LinkError(f"the link has a field {_short(name)} that a {VERSION} link does not have "
                            f"({', '.join(FIELDS)})")
        if name in values:
            raise LinkError(f"the link gives {name} twice")
        values[name] = value
    if "scene" not in values:
        raise LinkError("the link names no scene (scene=NAME)")
    view = LinkView(**{name: _field(name, value) for name, value in values.items()})
    parse_fields(view)
    return view


def _field(name: str, value: str):
    if name in _NUMBERS:
        if not value.isascii() or not value.isdigit() or len(value) > len(str(MAX_NUMBER)):
            raise LinkError(f"the link's {name} {_short(value)} is not a number from 1 to {MAX_NUMBER}")
        return int(value)
    return value


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
