"""Reading user text files safely: one-line messages and a nesting check done before any parser recurses.

Shared by the spec, chapter and bindings readers (models, scenes and engine), hence in llmviz.common.
"""
from __future__ import annotations


def one_line(text: object) -> str:
    """Text for a one-line message: newlines and other control characters shown escaped."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in str(text))


def nesting_depth(text: str) -> int:
    """How deeply brackets nest outside quoted strings (JSON and TOML alike), found without
    recursion, so a file of a million '[' is refused before a parser recurses into it."""
    depth = deepest = 0
    quote, escaped = None, False
    for ch in text:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':
                escaped = True
            elif ch == quote or ch == "\n":
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
    return deepest
