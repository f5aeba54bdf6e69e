"""What only the preview server shows: the live-reload script and the /_preview/ table (pure: bytes).

The built pages carry a strict meta Content-Security-Policy (`default-src 'none'`, no script at
all). The server's copy of each HTML response gets one inline script before </body>, allowed by
its sha256 hash: `script-src '<hash>'` and `connect-src 'self'` (it polls /_reload) are added to
that response's meta policy only. out/ is never touched, and every other script stays blocked.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .hosting import CONTENT_ATTRIBUTE, CSP_META, extend_policy, read_csp
from .plan import Plan
from .standing import Standing

# Polls /_reload: a new generation reloads the page; an error shows a fixed overlay until fixed.
RELOAD_SCRIPT = (
    '(function(){var me=document.currentScript,seen=me.getAttribute("data-generation"),box=null;'
    'function show(t){if(!box){box=document.createElement("pre");box.setAttribute("role","alert");'
    'box.id="preview-build-error";var s=box.style;s.position="fixed";s.left="0";s.right="0";s.top="0";'
    's.maxHeight="60vh";s.overflow="auto";s.margin="0";s.padding="1rem";s.background="#7a1010";'
    's.color="#fff";s.font="14px/1.45 ui-monospace,monospace";s.whiteSpace="pre-wrap";s.zIndex="2147483647";'
    'document.body.appendChild(box);}box.textContent="Build failed; this is the last good build.\\n\\n"+t;}'
    "function hide(){if(box){box.remove();box=null;}}"
    'function poll(){fetch("/_reload",{cache:"no-store"}).then(function(r){return r.json();}).then('
    "function(s){if(String(s.generation)!==seen){location.reload();return;}"
    "if(s.error){show(s.error);}else{hide();}setTimeout(poll,500);},function(){setTimeout(poll,1000);});}"
    "poll();})();"
)
# Hides the table rows whose cells (all but "Why not") do not contain every word typed in the box.
FILTER_SCRIPT = (
    '(function(){var box=document.getElementById("filter"),count=document.getElementById("count"),'
    'rows=document.querySelectorAll("tbody tr"),texts=[];'
    "for(var i=0;i<rows.length;i++){var c=rows[i].cells,t=[];"
    'for(var j=0;j<c.length-1;j++){t.push(c[j].textContent);}texts.push(t.join(" ").toLowerCase());}'
    'box.addEventListener("input",function(){'
    "var words=box.value.toLowerCase().split(/\\s+/).filter(Boolean),shown=0;"
    "for(var i=0;i<rows.length;i++){var keep=words.every(function(w){return texts[i].indexOf(w)>=0;});"
    "rows[i].hidden=!keep;if(keep){shown++;}}"
    'count.textContent=shown+" of "+rows.length+" pages";});})();'
)
INDEX_STYLE = (
    "body{font:15px/1.4 system-ui,sans-serif;margin:1rem;color:#1d2733}table{border-collapse:collapse;"
    "width:100%}th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #d5dbe3}"
    "th{position:sticky;top:0;background:#f3f6fa}input{font:inherit;padding:.4rem;width:min(40rem,100%)}"
    ".no{color:#8a1c1c;font-weight:600}"
)
COLUMNS = ("Page", "Payer", "Procedure", "Denial type", "Content layer", "Indexable", "Why not")


def source_hash(text: str) -> str:
    """Return the CSP source that allows an inline script or style with exactly this text."""
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


def allow_reload(page: str) -> str:
    """Return the page with each meta CSP widened to allow the reload script and its polling."""
    additions = {"script-src": (source_hash(RELOAD_SCRIPT),), "connect-src": ("'self'",)}

    def widen(tag: re.Match[str]) -> str:
        policy = extend_policy(read_csp(tag.group(0)), additions)
        escaped = policy.replace("&", "&amp;").replace('"', "&quot;")
        return CONTENT_ATTRIBUTE.sub(lambda m: f'{m.group(1)}"{escaped}"', tag.group(0), count=1)

    return CSP_META.sub(widen, page)


def inject_reload(page: bytes, generation: int) -> bytes:
    """Return an HTML page with the live-reload script before </body>, its CSP allowing it."""
    text = page.decode("utf-8", errors="replace")
    tag = f'<script data-generation="{generation}">{RELOAD_SCRIPT}</script>'
    end = text.lower().rfind("</body>")
    text = text + tag if end < 0 else text[:end] + tag + text[end:]
    return allow_reload(text).encode("utf-8")


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One planned page as the /_preview/ table shows it."""

    url: str
    payer: str
    procedure: str
    denial_type: str
    layer: str
    is_indexable: bool
    noindex_reason: str


def index_rows(plan: Plan, standing: Standing) -> list[IndexRow]:
    """Return a row per planned page, with its indexability and why not."""
    return [IndexRow(page.url, page.payer, page.procedure, page.denial_type, page.layer,
                     standing.is_indexable(index), standing.reason(index, plan))
            for index, page in enumerate(plan.pages)]


def index_row(row: IndexRow) -> str:
    """Return one table row: the page's link and its combination, layer and indexability."""
    cells = (row.payer, row.procedure, row.denial_type, row.layer)
    return (f'<tr><td><a href="{html.escape(row.url)}">{html.escape(row.url)}</a></td>'
            + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells)
            + ("<td>yes</td>" if row.is_indexable else '<td class="no">no</td>')
            + f"<td>{html.escape(row.noindex_reason)}</td></tr>")


def render_index(rows: Sequence[IndexRow], error: str) -> bytes:
    """Return the /_preview/ page: every planned page in a table, with a filter box."""
    counts = Counter(row.layer for row in rows)
    noindex = sum(1 for row in rows if not row.is_indexable)
    policy = (f"default-src 'none'; style-src {source_hash(INDEX_STYLE)}; "
              f"script-src {source_hash(FILTER_SCRIPT)}; base-uri 'none'; form-action 'none'")
    summary = ", ".join(f"{n:,} {layer}" for layer, n in sorted(counts.items()))
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">',
        f"<title>Preview: {len(rows):,} planned pages</title><style>{INDEX_STYLE}</style></head><body>",
        f"<h1>{len(rows):,} planned pages</h1>",
        f"<pre>{html.escape(error)}</pre>" if error else "",
        f"<p>Content layers: {html.escape(summary) or 'none'}. Not indexable: {noindex:,}.</p>",
        '<p><label for="filter">Filter by address, payer, procedure, denial type, layer or indexable '
        "(every word must match):</label><br>",
        '<input id="filter" type="search" placeholder="humana step-therapy exact" autofocus></p>',
        f'<p id="count" aria-live="polite">{len(rows):,} of {len(rows):,} pages</p>',
        "<table><thead><tr>" + "".join(f'<th scope="col">{c}</th>' for c in COLUMNS) + "</tr></thead><tbody>",
        *(index_row(row) for row in rows),
        f"</tbody></table><script>{FILTER_SCRIPT}</script></body></html>",
    ]
    return "".join(parts).encode("utf-8")
