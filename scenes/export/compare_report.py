"""A comparison of models as a file to share: HTML (self-contained, pictures as data: URIs), Markdown, CSV, and the terminal's text.

Every format shows the same three things from one models/compare.Comparison: the cost table (each row
with its unit, its formula, and the largest ▲ / smallest ▼ value marked), the feature matrix, and the
list of differences. The HTML adds one picture per model at the same camera preset and the split-screen
picture (scenes/export/compare_pictures.py); it links to nothing, so it opens offline as it was written.
"""
from __future__ import annotations

import base64
import csv
import html
import io

from llmviz.models.compare import Comparison, Row
from llmviz.models.params import human

# ▲ and ▼, for the terminal, the page and Markdown only (the explorer's own fonts need not carry them)
LARGEST, SMALLEST = chr(0x25B2), chr(0x25BC)
ABSENT = "—"
REPORT_SUFFIXES = (".html", ".md", ".csv")


def _bytes(n: float) -> str:
    """1073741824 -> '1.00 GiB' (binary units, as memory is sold and shown)."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n):,} B"


def _flops(n: float) -> str:
    for unit, size in (("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6), ("kFLOP", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:,.0f} FLOP"


# How each unit is written for people (JSON and CSV keep the exact numbers).
_FORMATS = {"parameters": human, "bytes": _bytes, "FLOPs": _flops}


def shown_value(row: Row, model_id: str, marks: bool = True) -> str:
    value = row.values[model_id]
    if value is None:
        return ABSENT
    text = _FORMATS.get(row.unit, lambda v: f"{v:,}")(value)
    if marks and model_id in row.largest:
        text += f" {LARGEST}"
    elif marks and model_id in row.smallest:
        text += f" {SMALLEST}"
    return text


def _feature_value(value: str | None) -> str:
    return ABSENT if value is None else value


def _heading(c: Comparison) -> str:
    models = ", ".join(f"{c.names[m]} [{m}]" for m in c.models)
    return f"Comparing {models} at context N = {c.context:,}"


def _legend() -> str:
    return f"{LARGEST} largest, {SMALLEST} smallest in the row; {ABSENT} the model has none"


# ---------------------------------------------------------------- terminal text

def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]


def text_report(c: Comparison, formulas: bool = True) -> str:
    """The table, the features that differ, the differences and (with ``formulas``) each row's formula."""
    lines = [_heading(c), _legend(), ""]
    table = [["METRIC", "UNIT", *c.models]] + [[r.label, r.unit, *(shown_value(r, m) for m in c.models)]
                                                for r in c.rows]
    lines += _columns(table)
    lines += ["", "FEATURES"]
    lines += _columns([["FEATURE", *c.models]] + [[f.label + (" *" if f.differs else ""),
                                                  *(_feature_value(f.values[m]) for m in c.models)]
                                                 for f in c.features])
    lines.append("(* differs)")
    lines += ["", f"DIFFERENCES ({len(c.differences)})"]
    lines += [f"- {d.component} [{', '.join(d.models)}]: {d.what}" for d in c.differences] or ["- none"]
    if formulas:
        lines += ["", "FORMULAS"] + [f"- {r.label} ({r.unit}): {r.formula}" for r in c.rows]
    lines += [f"note: {n}" for n in c.notes]
    return "\n".join(lines)


# ---------------------------------------------------------------- Markdown

def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(map(_md_cell, header)) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(map(_md_cell, r)) + " |" for r in rows]


def markdown_report(c: Comparison) -> str:
    lines = [f"# {_heading(c)}", "", _legend(), "", "## What they cost", ""]
    lines += _md_table(["metric", "unit", *c.models, "formula"],
                       [[r.label, r.unit, *(shown_value(r, m) for m in c.models), r.formula] for r in c.rows])
    lines += ["", "## Features", ""]
    lines += _md_table(["feature", *c.models, "differs"],
                       [[f.label, *(_feature_value(f.values[m]) for m in c.models), "yes" if f.differs else ""]
                        for f in c.features])
    lines += ["", "## Differences", ""]
    lines += [f"- **{_md_cell(d.component)}** ({', '.join(d.models)}): {_md_cell(d.what)}" for d in c.differences]
    lines += [""] + [f"> {n}" for n in c.notes]
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------- CSV

def csv_report(c: Comparison) -> str:
    """One table: the metrics (exact numbers), then the features, then the differences (a model's cell: 'yes'
    where the difference concerns it)."""
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    out.writerow(["section", "key", "label", "unit", *c.models, "largest", "smallest", "formula"])
    for r in c.rows:
        out.writerow(["metric", r.key, r.label, r.unit, *("" if r.values[m] is None else r.values[m] for m in c.models),
                      " ".join(r.largest), " ".join(r.smallest), r.formula])
    for f in c.features:
        out.writerow(["feature", f.key, f.label, "", *(f.values[m] or "" for m in c.models), "", "",
                      "differs" if f.differs else ""])
    for d in c.differences:
        out.writerow(["difference", d.source, d.component, "", *("yes" if m in d.models else "" for m in c.models),
                      "", "", d.what])
    return buffer.getvalue()


# ---------------------------------------------------------------- HTML

_STYLE = """
body { font-family: system-ui, sans-serif; background: #111318; color: #e6e6e6; margin: 2em; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #333844; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #1c1f27; }
td.num { text-align: right; white-space: nowrap; }
td.largest { color: #ffb454; } td.smallest { color: #7fd1ff; }
tr.differs td:first-child { border-left: 3px solid #ffb454; }
td.formula, p.note { color: #9aa3b2; font-size: 0.9em; }
figure { display: inline-block; margin: 0.5em; } img { max-width: 100%; border: 1px solid #333844; }
figcaption { color: #9aa3b2; }
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def html_report(c: Comparison, pictures: dict[str, bytes] | None = None, split: bytes | None = None,
                camera: str = "", picture_note: str = "") -> str:
    """The whole report as one HTML page. ``pictures``: model id -> PNG bytes; ``split``: the side-by-side PNG."""
    pictures = pictures or {}
    head = "".join(f"<th>{_e(m)}<br><small>{_e(c.names[m])}</small></th>" for m in c.models)
    cost = []
    for r in c.rows:
        cells = []
        for m in c.models:
            mark = " largest" if m in r.largest else " smallest" if m in r.smallest else ""
            cells.append(f'<td class="num{mark}">{_e(shown_value(r, m))}</td>')
        cost.append(f"<tr><td>{_e(r.label)}</td><td>{_e(r.unit)}</td>{''.join(cells)}"
                    f'<td class="formula">{_e(r.formula)}</td></tr>')
    features = [f'<tr class="{"differs" if f.differs else ""}"><td>{_e(f.label)}</td>'
                + "".join(f"<td>{_e(_feature_value(f.values[m]))}</td>" for m in c.models) + "</tr>"
                for f in c.features]
    differences = [f"<li><b>{_e(d.component)}</b> ({_e(', '.join(d.models))}): {_e(d.what)}</li>"
                   for d in c.differences] or ["<li>none</li>"]
    figures = []
    if split is not None:
        figures.append(f'<figure><img alt="{_e(", ".join(c.models))} side by side" src="{data_uri(split)}">'
                       f"<figcaption>side by side, camera {_e(camera)}</figcaption></figure><br>")
    figures += [f'<figure><img alt="{_e(m)}" src="{data_uri(pictures[m])}"><figcaption>{_e(c.names[m])}'
                f" [{_e(m)}]</figcaption></figure>" for m in c.models if m in pictures]
    notes = [f'<p class="note">{_e(n)}</p>' for n in c.notes + ([picture_note] if picture_note else [])]
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(_heading(c))}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(_heading(c))}</h1>", f"<p>{_e(_legend())}</p>",
        *figures, *notes,
        "<h2>What they cost</h2>", f"<table><tr><th>metric</th><th>unit</th>{head}<th>formula</th></tr>",
        *cost, "</table>",
        "<h2>Features</h2>", f"<table><tr><th>feature</th>{head}</tr>", *features, "</table>",
        "<p class=\"note\">rows marked at the left differ between the models</p>",
        f"<h2>Differences ({len(c.differences)})</h2>", "<ul>", *differences, "</ul>",
        "</body></html>", ""])
