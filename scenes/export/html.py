"""A view as one self-contained web page: the SVG schematic inline, a tooltip per block, and the llmviz:// link that reopens it.

Nothing is fetched: the schematic's cell images are data: URIs already (svg.py), the style and the
few lines of script are inline, the font is the reader's sans-serif. Each drawn block's facts travel
in one JSON table keyed by tensor id (its label, role, shape in model units, parameter count from
scenes/component_info.py and, where the scene has a live model, the min / max / mean of the values
it shows); hovering a block shows them, and every block keeps its SVG <title> for readers without
script. The link is in a read-only field beside a Copy button, so it can be selected by hand too.
"""
from __future__ import annotations

import html
import json
import re
from collections import ChainMap

import numpy as np

STYLE = """
body{margin:0;background:#0f1115;color:#e6e8eb;font:14px/1.4 "DejaVu Sans",Verdana,sans-serif}
header{padding:10px 14px;background:#15181d;border-bottom:1px solid #2a2f37}
h1{font-size:16px;margin:0 0 4px}
.muted{color:#9ea6b3}
.link{display:flex;gap:6px;align-items:center;margin-top:6px}
.link input{flex:1;min-width:20em;background:#0f1115;color:#e6e8eb;border:1px solid #3a414c;padding:4px 6px;
font:13px monospace}
button{background:#24406b;color:#e6e8eb;border:1px solid #3d5f93;padding:4px 10px;cursor:pointer}
main svg{display:block;max-width:100%;height:auto}
g.block{cursor:help}
g.block:hover polygon{stroke:#ffd140;stroke-width:2}
#tip{position:fixed;pointer-events:none;background:#1b1f26;border:1px solid #3a414c;padding:6px 9px;
max-width:26em;font-size:13px;box-shadow:0 2px 8px #000a}
#tip b{display:block;margin-bottom:2px}
"""

SCRIPT = """
(function(){
  var blocks = JSON.parse(document.getElementById('blocks').textContent);
  var tip = document.getElementById('tip');
  function line(text, cls){ var d = document.createElement('div'); d.textContent = text;
    if (cls) d.className = cls; return d; }
  document.querySelector('main').addEventListener('mousemove', function(e){
    var g = e.target.closest && e.target.closest('g.block');
    var info = g && blocks[g.getAttribute('data-id')];
    if (!info){ tip.hidden = true; return; }
    tip.replaceChildren();
    var title = document.createElement('b'); title.textContent = info.name; tip.appendChild(title);
    tip.appendChild(line(info.id, 'muted'));
    if (info.shape) tip.appendChild(line('shape: ' + info.shape));
    tip.appendChild(line(info.params));
    if (info.values) tip.appendChild(line(info.values));
    if (info.role) tip.appendChild(line(info.role, 'muted'));
    tip.hidden = false;
    var x = Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 4);
    var y = Math.min(e.clientY + 14, window.innerHeight - tip.offsetHeight - 4);
    tip.style.left = x + 'px'; tip.style.top = y + 'px';
  });
  document.querySelector('main').addEventListener('mouseleave', function(){ tip.hidden = true; });
  document.getElementById('copy').addEventListener('click', function(){
    var field = document.getElementById('link'); field.select();
    var done = function(){ document.getElementById('copy').textContent = 'Copied'; };
    if (navigator.clipboard) navigator.clipboard.writeText(field.value).then(done, function(){});
    else { document.execCommand('copy'); done(); }
  });
})();
"""


def value_summary(values) -> str:
    """"min … max, mean …" of an array's finite values (and how many are masked or empty)."""
    a = np.asarray(values, np.float64).ravel()
    finite = a[np.isfinite(a)]
    parts = []
    if len(finite):
        parts.append(f"values {finite.min():.4g} … {finite.max():.4g}, mean {finite.mean():.4g} "
                     f"({len(finite):,} numbers)")
    masked, empty = int(np.isinf(a).sum()), int(np.isnan(a).sum())
    if masked:
        parts.append(f"{masked:,} masked (−∞)")
    if empty:
        parts.append(f"{empty:,} empty")
    return "; ".join(parts)


def live_values(scene):
    """The scene's live trace over its weights (tensor id -> array), or None for a scene without values."""
    session = getattr(scene.live, "session", None) if scene.live is not None else None
    trace = getattr(session, "trace", None)
    if trace is None:
        return None
    return ChainMap(dict(trace), dict(getattr(session, "weights", None) or {}))


def block_facts(scene, tensor_ids) -> dict:
    """tensor id -> what its tooltip says: name, id, role, shape, parameter count, values."""
    model = scene.model
    if model is None:
        return {}
    from llmviz.scenes.component_info import info_for

    layout = model.layout
    info = info_for(layout, model.spec)
    values = live_values(scene)
    facts = {}
    for tensor in dict.fromkeys(tensor_ids):
        row = layout.index(tensor)
        entry = {"id": tensor, "name": layout.label[row] or tensor}
        if info is not None:
            described = info.block(row)
            entry.update(role=described.role, shape=described.shape, params=described.params_text)
        else:
            entry.update(role="", shape=f"{int(layout.rows[row])} × {int(layout.cols[row])}", params="")
        if values is not None and tensor in values:
            entry["values"] = value_summary(values[tensor])
        facts[tensor] = entry
    return facts


def _json_for_script(data) -> str:
    """JSON safe inside <script>: no '</' can close the element early."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


def page(drawn, scene, link: str, title: str) -> str:
    """The HTML of a schematic (svg.Schematic) of ``scene``, with its blocks' tooltips and ``link``."""
    svg = re.sub(r"^<\?xml[^>]*\?>\s*", "", drawn.svg)
    facts = block_facts(scene, drawn.block_ids)
    status = getattr(scene, "status", "") or ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        f"<header><h1>{html.escape(title)}</h1>"
        f'<div class="muted">{html.escape(status)} · hover a block for its shape, parameters and values</div>'
        '<div class="link"><label for="link">Reopen in llmviz:</label>'
        f'<input id="link" readonly value="{html.escape(link)}" onfocus="this.select()">'
        '<button id="copy" type="button">Copy</button>'
        f'<span class="muted">llmviz open &quot;…&quot;</span></div></header>\n'
        f"<main>\n{svg}</main>\n"
        '<div id="tip" role="tooltip" hidden></div>\n'
        f'<script type="application/json" id="blocks">{_json_for_script(facts)}</script>\n'
        f"<script>{SCRIPT}</script>\n</body></html>\n")
