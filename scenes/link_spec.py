"""A link's inline spec: a model of the user's own travels inside its llmviz:// link, and is added on opening.

``spec_of(scene)`` gives the spec file (text, name) a link carries for a scene that is a user's model
(one added with `llmviz models --add` or imported from a config; built-ins need none). ``install(view)``
adds a link's spec to the user's models the way `llmviz models --add` does (validated by the registry,
never shadowing a built-in or another user model's id), unless the very same file is there already,
so the scene it names opens on a machine that has never seen the model.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from llmviz.scenes.link import LinkError, LinkView

MAX_SPEC_FILE_BYTES = 1 << 20  # as models/registry.py reads a spec file


def spec_of(scene: str) -> tuple[str | None, str | None]:
    """(spec file text, file name) of a user's model named ``scene``; (None, None) for anything else."""
    from llmviz.models.registry import UnknownModelError, load_registry

    try:
        spec = load_registry().get(scene)
    except (UnknownModelError, ValueError):
        return None, None
    origin = spec.origin or ""
    if not origin or origin.startswith("built-in:"):
        return None, None
    path = Path(origin)
    try:
        if path.stat().st_size > MAX_SPEC_FILE_BYTES:
            return None, None
        return path.read_text(encoding="utf-8"), path.name
    except (OSError, UnicodeDecodeError):
        return None, None


def install(view: LinkView) -> str | None:
    """Add the link's spec to the user's models unless the same file is there; returns what was done (one line)
    or None. LinkError (one line) when the registry refuses it."""
    if view.spec is None:
        return None
    from llmviz.models.registry import add_user_spec, read_spec_text
    from llmviz.common.atomic import write_atomic
    from llmviz.models.spec import SpecError

    try:
        spec = read_spec_text(view.spec, view.spec_name)
    except SpecError as err:
        raise LinkError(f"the link's spec: {err}") from None
    text, _ = spec_of(spec.id)
    if text == view.spec:
        return None
    with tempfile.TemporaryDirectory(prefix="llmviz-link-") as folder:
        source = Path(folder) / view.spec_name
        write_atomic(source, view.spec)  # a private scratch copy for add_user_spec to validate
        try:
            spec, target = add_user_spec(source)
        except (SpecError, OSError) as err:
            raise LinkError(f"the link's spec cannot be added: {err}") from None
    return f"added the link's model {spec.id!r} to your models ({target})"
