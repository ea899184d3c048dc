"""Chapter text: numbers templated from the live trace and weights, and block references the UI lights on hover.

Two kinds of markup, both checked when a chapter loads and filled in when a step is shown:

  {value blocks.0.ln1.mean[3]}    one number, formatted like every number on screen (format_number)
  {term blocks.0.ln1.mean[3]}     the same, in parentheses when negative, for after an operator: "x − (−0.3)"
  {mean blocks.0.ln1.out[2,:]}    a reduction over a selection: mean, std, min, max, sum
  {argmax probs[-1,:]}            an index;  {letter probs[-1,:]} the letter of the argmax (or of a token)
  {vector embed.out[0,:4]}        a short list of numbers;  {shape embed.out} "6×48"
  {letters record.output[:]}      token indices as their letters, one per value ("ABBBCC")
  {text rag.answer}  {text rag.hit.file[0]}
                                  a name or words as they are (a string value: the retrieval scene's answer)
  {input}  {tokens}               the input letters, the token indices of the whole sequence
  [[blocks.0.attn.head.1.q|Q of head 1]]   a reference: shows "Q of head 1", hovering lights that block
  {layers} {d_model} {heads} {d_ff} {experts} {param_count} {active_params}
                                  read from the model spec (models.params for the counts), not the trace:
                                  the only templates a step shown on another model's scene may use
A step shown on a scene of its own (the retrieval scene, scenes/chapters/showable.py) reads only that scene's
values, with no block references, {input} or spec templates: it has no blocks, tokens or spec.

Selectors are integers (negative from the end), ``:`` and ``a:b``, one per axis; nothing is
evaluated, so a chapter file cannot run code. ``{{`` and ``}}`` are literal braces.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from llmviz.models.sim.sort_task import ALPHABET
from llmviz.scenes.dataflow import format_number

_MARKUP = re.compile(r"\{\{|\}\}|\[\[([^\]|]+)(?:\|([^\]]*))?\]\]|\{([^{}]*)\}")
_EXPRESSION = re.compile(r"^\s*(\w+)(?:\s+([A-Za-z_][\w.]*)(?:\[([^\]]*)\])?)?\s*$")
_SELECTOR = re.compile(r"^\s*(?:(-?\d+)|(-?\d*)\s*:\s*(-?\d*))\s*$")
REDUCTIONS = {"mean": np.mean, "std": np.std, "min": np.min, "max": np.max, "sum": np.sum}
SELECTING = set(REDUCTIONS) | {"value", "term", "argmax", "letter", "letters", "vector", "text"}
WORDS = {"input", "tokens"}
SPEC_WORDS = ("layers", "d_model", "heads", "d_ff", "experts", "top_k", "param_count", "active_params")
ALPHABET_KEY = "#alphabet"  # a values entry naming the model's symbols (the MoE's 96 characters)
VECTOR_LIMIT = 6  # a {vector} shows at most this many numbers, then "…"


class TemplateError(ValueError):
    """A malformed or unknown template; ``fragment`` is the text to point at in the file."""

    def __init__(self, message: str, fragment: str):
        super().__init__(message)
        self.fragment = fragment


@dataclass(frozen=True)
class Reference:
    """A span of the rendered text that names a block: hovering it lights ``target`` (tensor or group id)."""
    start: int
    end: int
    target: str


@dataclass(frozen=True)
class RenderedText:
    text: str
    references: tuple

    @property
    def targets(self) -> list[str]:
        return [r.target for r in self.references]


@dataclass(frozen=True)
class _Expression:
    func: str
    tensor: str | None
    selection: tuple | None  # per axis: int or slice


def _parse_selection(text: str, fragment: str) -> tuple:
    out = []
    for part in text.split(","):
        m = _SELECTOR.match(part)
        if not m:
            raise TemplateError(f"bad selector {part.strip()!r} in {fragment} (use integers, ':' or 'a:b')", fragment)
        if m.group(1) is not None:
            out.append(int(m.group(1)))
        else:
            out.append(slice(int(m.group(2)) if m.group(2) else None, int(m.group(3)) if m.group(3) else None))
    return tuple(out)


def _parse_expression(body: str) -> _Expression:
    fragment = "{" + body + "}"
    m = _EXPRESSION.match(body)
    if not m:
        raise TemplateError(f"cannot read template {fragment}", fragment)
    func, tensor, selection = m.groups()
    if func in WORDS or func in SPEC_WORDS:
        if tensor:
            raise TemplateError(f"{{{func}}} takes no tensor: {fragment}", fragment)
        return _Expression(func, None, None)
    if func == "shape":
        if not tensor or selection is not None:
            raise TemplateError(f"{{shape ID}} takes a tensor id and no selector: {fragment}", fragment)
        return _Expression(func, tensor, None)
    if func not in SELECTING:
        known = ", ".join(sorted(SELECTING | WORDS | set(SPEC_WORDS) | {"shape"}))
        raise TemplateError(f"unknown template function {func!r} in {fragment} (known: {known})", fragment)
    if not tensor:
        raise TemplateError(f"{fragment} needs a tensor id, e.g. {{{func} embed.out[0,:]}}", fragment)
    sel = _parse_selection(selection, fragment) if selection is not None else None
    if func in ("value", "term") and (sel is None or any(isinstance(s, slice) for s in sel)):
        raise TemplateError(f"{{{func} ...}} needs one index per axis (no ':'): {fragment}", fragment)
    return _Expression(func, tensor, sel)


def check_template(text: str, known_ids=None, live: str | None = None, own_scene: str | None = None) -> list[str]:
    """Validate every template and reference; returns the ids mentioned. TemplateError on the first problem.

    ``live``: None where the step's live values are available; else the step's scene id, whose model
    has no trace here, so only the spec templates ({layers}, {param_count}, ...) are allowed.
    ``own_scene``: a scene of its own the step shows (``known_ids`` its values): only templates reading them.
    """
    ids = []
    for m in _MARKUP.finditer(text):
        if m.group(0) in ("{{", "}}"):
            continue
        if m.group(1) is not None:
            target, fragment = m.group(1).strip(), m.group(0)
            if own_scene is not None:
                raise TemplateError(f"block reference {fragment}: scene {own_scene!r} has no blocks to light", fragment)
        else:
            expr = _parse_expression(m.group(3))
            target, fragment = expr.tensor, m.group(0)
            if own_scene is not None and expr.tensor is None:
                raise TemplateError(f"{fragment} reads a model's tokens or spec, which scene {own_scene!r} does not "
                                    f"have; its values are read as {{value ID[i]}}, {{text ID}}, ...", fragment)
            if live is not None and expr.func not in SPEC_WORDS:
                raise TemplateError(f"{fragment} reads live values, which a step shown on scene {live!r} does not "
                                    f"have; use {', '.join('{' + w + '}' for w in SPEC_WORDS)}", fragment)
            target = target if expr.func not in SPEC_WORDS else None
        if target is not None:
            if known_ids is not None and target not in known_ids:
                what = "block reference" if m.group(1) is not None else "template"
                raise TemplateError(f"{what} {fragment}: no tensor or group {target!r} in the model", fragment)
            ids.append(target)
    stray = re.sub(r"\{\{|\}\}", "", _MARKUP.sub("", text))
    for ch in "{}":
        if ch in stray:
            raise TemplateError(f"unmatched {ch!r} in the text (write {ch * 2} for a literal brace)", ch)
    return ids


def _letters(tokens, alphabet=ALPHABET) -> str:
    shown = (alphabet[int(t)] if 0 <= int(t) < len(alphabet) else "?" for t in np.ravel(tokens))
    return "".join("↵" if ch == "\n" else ch for ch in shown)


def spec_value(func: str, spec) -> str:
    """A spec template's text: sizes with thousands separators, parameter counts as models.params.human."""
    from llmviz.models.params import count_params, human

    if spec is None:
        raise TemplateError(f"{{{func}}} needs the model spec", func)
    arch = spec.architecture
    from llmviz.common.i18n import num_text

    if func in ("param_count", "active_params"):
        count = count_params(spec)
        return num_text(human(count.total if func == "param_count" else count.active))
    number = {"layers": arch.n_layers, "d_model": arch.d_model, "heads": arch.n_heads,
              "d_ff": arch.d_ff if arch.d_ff is not None else (arch.moe.expert_d_ff if arch.moe else None),
              "experts": arch.moe.n_experts if arch.moe else 1, "top_k": arch.moe.top_k if arch.moe else 1}[func]
    return "-" if number is None else num_text(f"{int(number):,}")


def _number(x) -> str:
    """One number as on screen (format_number), in the chosen language's marks (Vietnamese: "0,25")."""
    from llmviz.common.i18n import num_text

    return num_text(format_number(x))


def _list(items: list[str]) -> str:
    """A short list; "; " between items where the decimal mark is a comma ("[0,1; 0,2]")."""
    return "[" + ("; " if _number(0.5) != "0.5" else ", ").join(items) + "]"


def evaluate(expr: _Expression, values, spec=None) -> str:
    if expr.func in SPEC_WORDS:
        return spec_value(expr.func, spec)
    alphabet = values.get(ALPHABET_KEY, ALPHABET) if hasattr(values, "get") else ALPHABET
    if expr.func == "input":
        return _letters(values["tokens"], alphabet)
    if expr.func == "tokens":
        return _list([str(int(t)) for t in np.ravel(values["tokens"])])
    try:
        array = np.asarray(values[expr.tensor])
    except KeyError:
        raise TemplateError(f"no values for {expr.tensor!r} yet", expr.tensor) from None
    if array.dtype.kind in "USO" and expr.func not in ("text", "shape"):
        raise TemplateError(f"{expr.tensor} holds words, not numbers: read it with {{text {expr.tensor}}}", expr.tensor)
    if expr.func == "text":
        return _words(expr, array)
    if expr.func == "shape":
        return "×".join(str(n) for n in array.shape)
    array = _selected(expr, array)
    picked = np.asarray(array, np.float64)
    if picked.size == 0:
        raise TemplateError(f"the selection of {expr.tensor} is empty", expr.tensor)
    if expr.func == "value":
        return _number(picked)
    if expr.func == "term":
        text = _number(picked)
        return f"({text})" if text.startswith("−") else text
    if expr.func in REDUCTIONS:
        return _number(REDUCTIONS[expr.func](picked))
    if expr.func == "argmax":
        return str(int(np.argmax(picked)))
    if expr.func == "letters":
        return _letters(np.rint(picked).astype(np.int64), alphabet)
    if expr.func == "letter":
        return _letters(picked if picked.ndim == 0 else np.argmax(picked), alphabet)
    flat = picked.ravel()
    return _list([_number(v) for v in flat[:VECTOR_LIMIT]] + (["…"] if flat.size > VECTOR_LIMIT else []))


def _selected(expr: _Expression, array: np.ndarray) -> np.ndarray:
    """The template's selection of `array` (all of it without one); one axis index each, in range."""
    if expr.selection is None:
        return array
    if len(expr.selection) != array.ndim:
        raise TemplateError(f"{expr.tensor} has {array.ndim} axes, the template selects {len(expr.selection)}",
                            expr.tensor)
    try:
        return array[expr.selection]
    except IndexError:
        raise TemplateError(f"index out of range for {expr.tensor} of shape {array.shape}", expr.tensor) from None


def _words(expr: _Expression, array: np.ndarray) -> str:
    """{text ID}: the selected items as they are (numbers as on screen), ", " between them."""
    array = _selected(expr, array)
    items = [_number(v) if isinstance(v, (int, float, np.number)) else str(v) for v in np.ravel(array).tolist()]
    if not items:
        raise TemplateError(f"the selection of {expr.tensor} is empty", expr.tensor)
    return ", ".join(items[:VECTOR_LIMIT] + (["…"] if len(items) > VECTOR_LIMIT else []))


def render_text(text: str, values, spec=None) -> RenderedText:
    """Fill in the templates from ``values`` (tensor id -> array; None on another model's scene) and
    ``spec`` (the step's model spec), and resolve references to spans."""
    out: list[str] = []
    refs = []
    length = 0
    last = 0
    for m in _MARKUP.finditer(text):
        piece = text[last:m.start()]
        out.append(piece)
        length += len(piece)
        last = m.end()
        if m.group(0) in ("{{", "}}"):
            piece = m.group(0)[0]
        elif m.group(1) is not None:
            target = m.group(1).strip()
            piece = (m.group(2) if m.group(2) is not None else target).strip()
            refs.append(Reference(length, length + len(piece), target))
        else:
            piece = evaluate(_parse_expression(m.group(3)), values, spec)
        out.append(piece)
        length += len(piece)
    out.append(text[last:])
    return RenderedText("".join(out), tuple(refs))
