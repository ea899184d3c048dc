"""Which language the interface speaks: --lang for one run, else the one chosen in View ▸ Language (remembered in the
config folder), else English. The texts themselves are llmviz.common.i18n's."""
from __future__ import annotations

import functools
import json
import sys

from llmviz.common import i18n

MAX_FILE_BYTES = 4096
FILE_NAME = "language.json"


def _file():
    from llmviz.models.registry import config_dir

    return config_dir() / FILE_NAME


def remembered_language() -> str | None:
    """The code last chosen in the menu, if it is still a language we have; None otherwise (never an error)."""
    try:
        path = _file()
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return None
        code = json.loads(path.read_text(encoding="utf-8")).get("language")
    except (OSError, ValueError, AttributeError):
        return None
    return code if isinstance(code, str) and code in i18n.available() else None


def remember_language(code: str) -> None:
    """Keep ``code`` for the next start (a failure to write costs only the memory of the choice)."""
    from llmviz.common.atomic import write_atomic

    try:
        path = _file()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({"language": code}) + "\n")
    except OSError:
        pass


def check_code(code: str, option: str = "--lang") -> str:
    """``code`` if it names a bundled language, else a LanguageError whose line names the option and the choices."""
    known = i18n.available()
    if code not in known:
        raise i18n.LanguageError(option, f"'{code[:40]}' is not a language here (choose from {', '.join(known)})")
    return code


def apply_language(explicit: str | None = None, remembered: bool = True) -> str:
    """Set the process's language: ``explicit`` (from --lang), else the remembered one (where ``remembered``: the
    window; headless commands write English unless told, so that scripts do not change with the menu), else English."""
    code = check_code(explicit) if explicit else ((remembered and remembered_language()) or i18n.FALLBACK)
    try:
        i18n.set_language(code)
    except i18n.LanguageError as err:
        if explicit:
            raise
        # the remembered language's files went bad since: the window still opens, in English, and says why
        print(f"llmviz: {err} (using English)", file=sys.stderr)
        i18n.set_language(i18n.FALLBACK)
        return i18n.FALLBACK
    return code


def choose_in_menu(code: str) -> None:
    """View ▸ Language: switch now (the panels read tr() each frame) and remember it."""
    i18n.set_language(check_code(code, "View ▸ Language"))
    remember_language(code)


@functools.lru_cache(maxsize=1)
def language_choices() -> tuple[tuple[str, str], ...]:
    """(code, the language's own name) of every bundled language, English first, for the menu (found once: the
    menu asks every frame it is open)."""
    return tuple((code, i18n.language_name(code)) for code in i18n.available())
