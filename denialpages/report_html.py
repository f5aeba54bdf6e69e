"""The marketer's report as one self-contained HTML page: inline style, no script, no external request."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .report import Candidate, Grid, Report

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;color:#1b1b1b;max-width:75rem;margin:0 auto;padding:1rem 1.5rem}
h2{margin-top:2.2rem;border-bottom:2px solid #ddd}nav a{margin-right:.8rem}
table{border-collapse:collapse;margin:.5rem 0 1.2rem}caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{border:1px solid #c8c8c8;padding:.2rem .5rem;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}.bar{display:inline-block;height:.8em;background:#3f6fa8}
.scroll{overflow-x:auto}
.grid td{text-align:center;font-family:ui-monospace,monospace;min-width:1.4rem;padding:.1rem}
.grid thead th{writing-mode:vertical-rl;transform:rotate(180deg);font-weight:500;white-space:nowrap}
.indexable{background:#a9dfa9}.noindex{background:#d4d4d4;color:#333}.excluded{background:#fff}
.legend span{display:inline-block;border:1px solid #c8c8c8;padding:0 .5rem;margin-right:.5rem}
"""
SECTIONS = (("thresholds", "Thresholds in force"), ("layers", "Pages by content layer"),
            ("standing", "Indexable or not, and why"), ("similarity", "Nearest-neighbour similarity"),
            ("grids", "Payer x procedure grids"), ("exclusions", "Excluded combinations"),
            ("duplicates", "Duplicate titles and descriptions"), ("redirects", "Redirects"),
            ("next", "The 25 combinations most worth writing next"))
LAYER_WORDS = {"exact": "E: hand-written for this payer, procedure and denial type",
               "procedure": "P: hand-written for the procedure and denial type, every payer",
               "denial": "D: hand-written for the denial type", "data": "-: from the data only"}


def escape(value: object) -> str:
    """Return any value as HTML text, quotes included."""
    return html.escape(str(value), quote=True)


def html_table(caption: str, headers: tuple[str, ...], rows: list[tuple[object, ...]]) -> str:
    """Return a table of plain values; numbers are right-aligned."""
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(map(table_cell, row)) + "</tr>" for row in rows)
    return (f"<table><caption>{escape(caption)}</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def table_cell(value: object) -> str:
    """Return one table cell: a count right-aligned with thousands separators, anything else as text."""
    if isinstance(value, int):
        return f'<td class="n">{value:,}</td>'
    return f"<td>{escape(value)}</td>"


def render_report_html(report: Report) -> bytes:
    """Return report.html's bytes: one self-contained page, no script and no external request."""
    return "".join(report_html_chunks(report)).encode()


def report_html_chunks(report: Report) -> Iterator[str]:
    """Yield report.html in pieces (a grid row at most), so that it can be written as it is made."""
    nav = "".join(f'<a href="#{key}">{escape(title)}</a>' for key, title in SECTIONS)
    yield (f'<!doctype html><html lang="{escape(report.language)}"><head><meta charset="utf-8">'
           '<meta name="viewport" content="width=device-width,initial-scale=1">'
           f"<title>Search standing report: {escape(report.site)}</title><style>{STYLE}</style></head>"
           f"<body><header><h1>Search standing report: {escape(report.site)}</h1><p>{glance(report)}</p>"
           f"<nav>{nav}</nav></header><main>")
    bodies = (thresholds_html, layers_html, standing_html, similarity_html, grids_html, exclusions_html,
              duplicates_html, redirects_html, candidates_html)
    for (key, title), body in zip(SECTIONS, bodies, strict=True):
        yield f'<section id="{key}"><h2>{escape(title)}</h2>'
        chunks = body(report)
        yield from (chunks,) if isinstance(chunks, str) else chunks
        yield "</section>"
    yield "</main></body></html>\n"


def glance(report: Report) -> str:
    """Return the report's findings in one sentence."""
    noindex = report.pages - report.indexable
    return escape(f"{report.pages:,} landing pages: {report.indexable:,} indexable, {noindex:,} noindex. "
                  f"Among indexable pages, duplicate titles: {len(report.duplicate_titles):,}; "
                  f"duplicate descriptions: {len(report.duplicate_descriptions):,}. "
                  f"Redirects: {len(report.redirects):,}.")


def thresholds_html(report: Report) -> str:
    """Return the thresholds in force, from data/site.yaml."""
    t = report.thresholds
    rows: list[tuple[object, ...]] = [
        ("similarity_max", str(t.similarity_max),
         "a page at least this similar to its nearest neighbour is noindex"),
        ("distinctive_words_min", t.distinctive_words_min,
         "a page with fewer distinctive words than this is noindex"),
        ("shared_block_share", str(t.shared_block_share),
         "a block on more than this share of pages is not the page's own text"),
        ("distinctive_pages_max", t.distinctive_pages_max,
         "words are distinctive only in blocks used on at most this many pages"),
    ]
    return html_table("From data/site.yaml (SPEC §7 defaults: 0.5, 150, 0.05, 10)",
                      ("setting", "value", "meaning"), rows)


def layers_html(report: Report) -> str:
    """Return the landing pages per content layer."""
    rows: list[tuple[object, ...]] = [(LAYER_WORDS[layer], count) for layer, count in report.layers]
    return html_table(f"{report.pages:,} landing pages and {report.hubs:,} hubs", ("layer", "pages"),
                      [*rows, ("all landing pages", report.pages)])


def standing_html(report: Report) -> str:
    """Return indexable and noindex counts, noindex split by reason."""
    t = report.thresholds
    words = {"few_distinctive_words": f"noindex: fewer than {t.distinctive_words_min} distinctive words",
             "too_similar": f"noindex: {t.similarity_max} or more similar to another page",
             "both": "noindex: both"}
    rows: list[tuple[object, ...]] = [("indexable", report.indexable)]
    rows += [(words[kind], count) for kind, count in report.noindex_reasons]
    return html_table(f"{report.pages - report.indexable:,} of {report.pages:,} pages are noindex",
                      ("standing", "pages"), rows)


def similarity_html(report: Report) -> str:
    """Return the distribution of each page's similarity to its nearest neighbour."""
    most = max((count for _, count in report.similarity), default=0) or 1
    rows = "".join(f'<tr><td>{escape(label)}</td><td class="n">{count:,}</td><td><span class="bar" '
                   f'style="width:{round(12 * count / most, 2)}rem"></span></td></tr>'
                   for label, count in report.similarity)
    head = "".join(f'<th scope="col">{h}</th>' for h in ("similarity", "pages", "share"))
    return ("<table><caption>Pages by similarity of their own text to the nearest other page "
            f"(1.0: the same own text as another page)</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def grids_html(report: Report) -> Iterator[str]:
    """Yield one grid per denial type: rows procedures, columns payers, each cell coloured by standing."""
    yield ('<p class="legend"><span class="indexable">indexable</span><span class="noindex">noindex</span>'
           '<span class="excluded">excluded (blank)</span> Letters: E exact, P procedure, D denial, '
           "- data only. Hover a cell for its page and reason.</p>")
    for grid in report.grids:
        yield from grid_html(grid)


def grid_html(grid: Grid) -> Iterator[str]:
    """Yield one denial type's grid as a table, a row at a time."""
    head = "".join(f'<th scope="col" title="{escape(slug)}">{escape(name)}</th>'
                   for slug, name in grid.payers)
    caption = f"{escape(grid.name)} ({escape(grid.denial_type)})"
    yield (f'<div class="scroll"><table class="grid"><caption>{caption}</caption>'
           f"<thead><tr><td></td>{head}</tr></thead><tbody>")
    for (slug, name), cells in zip(grid.procedures, grid.rows, strict=True):
        yield (f'<tr><th scope="row" title="{escape(slug)}">{escape(name)}</th>'
               + "".join(f'<td class="{c.state}" title="{escape(" ".join(filter(None, (c.url, c.note))))}">'
                         f"{escape(c.layer)}</td>" for c in cells) + "</tr>")
    yield "</tbody></table></div>"


def exclusions_html(report: Report) -> str:
    """Return the applicability rules and how many combinations each removed."""
    if not report.exclusions:
        return "<p>No combination is excluded.</p>"
    return html_table("Combinations no page is built for", ("rule", "reason", "combinations"),
                      [(e.rule, e.reason, e.count) for e in report.exclusions])


def duplicates_html(report: Report) -> str:
    """Return titles and descriptions shared by indexable pages, each with its pages."""
    parts = []
    kinds = (("title", report.duplicate_titles), ("meta description", report.duplicate_descriptions))
    for kind, found in kinds:
        items = "".join(f"<li><q>{escape(d.text)}</q> on {len(d.urls)} pages<ul>"
                        + "".join(f"<li>{escape(url)}</li>" for url in d.urls) + "</ul></li>" for d in found)
        none = f"<p>Every indexable page has its own {kind}.</p>"
        parts.append(f"<h3>Duplicate {kind}s</h3>" + (f"<ul>{items}</ul>" if found else none))
    return "".join(parts)


def redirects_html(report: Report) -> str:
    """Return the old URLs that now redirect, and where to."""
    if not report.redirects:
        return "<p>No redirects.</p>"
    return html_table("Old addresses and where they now go", ("old URL", "new URL"), list(report.redirects))


def candidates_html(report: Report) -> str:
    """Return the ranked noindex combinations, the parts of each rank, and the command to start each."""
    intro = ("<p>Ranked by demand (how many other payers have a hand-written page for this procedure and "
             "denial type), then fewest hand-written pages at the payer, then most plan types, then URL.</p>")
    rows: list[tuple[object, ...]] = [
        (f"{n}.", c.url, c.demand, ", ".join(c.demand_payers), c.payer_pages, c.plan_types, c.reason,
         next_step(c)) for n, c in enumerate(report.candidates, start=1)]
    return intro + html_table("Noindex combinations to write next", (
        "rank", "page", "demand", "written at", "payer's hand-written pages", "plan types", "why noindex now",
        "next step"), rows)


def next_step(candidate: Candidate) -> str:
    """Return what to do about a candidate: scaffold its page, or expand the one it has."""
    if candidate.layer == "exact":
        return f"expand content/{candidate.payer}/{candidate.procedure}/{candidate.denial_type}.md"
    return f"python build.py new {candidate.payer} {candidate.procedure} {candidate.denial_type}"
