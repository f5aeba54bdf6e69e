"""The marketer's report: what was built, what search engines may index and why, what to write next.

It is built from the plan and its standing (no rendering), written as report.json and a
self-contained report.html into a folder outside `--out`, and rewritten only when its bytes change,
so it carries no build time.

"Most worth writing next" ranks the combinations that are not indexable by four parts, compared in
this order (data order is display order, not search volume, so it is never used):
  1. demand: how many OTHER payers already have a hand-written page for this procedure and denial
     type (someone judged it worth writing: proven demand), more first;
  2. payer_pages: how many hand-written pages this payer has, fewer first (the payer is under-served);
  3. plan_types: how many kinds of plan the payer sells, more first (more readers);
  4. the URL, so the order is the same on every machine.
"""

from __future__ import annotations

import filecmp
import heapq
import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .model import LAYERS, DenialType, Payer, Procedure, SiteData, Thresholds
from .pagemeta import page_description, page_title
from .plan import Exclusion, Plan, excluding_rule
from .report_html import report_html_chunks
from .standing import Standing

TOP = 25
LETTERS = {"exact": "E", "procedure": "P", "denial": "D", "data": "-"}
REASON_KINDS = ("few_distinctive_words", "too_similar", "both")
BUCKETS = tuple(f"{n / 10:.1f}-{(n + 1) / 10:.1f}" for n in range(10))
FILES = ("report.json", "report.html")
GRIDS_MARK = "\0grids"  # stands for the grids in the document, which are written one by one


@dataclass(frozen=True, slots=True)
class Cell:
    """One payer x procedure x denial combination in a grid."""

    payer: str
    procedure: str
    state: str  # indexable | noindex | excluded
    layer: str  # E, P, D, - (data only), or '' when excluded
    url: str
    note: str  # why noindex, or the excluding rule


@dataclass(frozen=True, slots=True)
class Grid:
    """One denial type's combinations: a row per procedure, a column per payer."""

    denial_type: str
    name: str
    payers: tuple[tuple[str, str], ...]  # (slug, name)
    procedures: tuple[tuple[str, str], ...]
    rows: tuple[tuple[Cell, ...], ...]


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A title or meta description shared by several indexable pages."""

    text: str
    urls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A noindex combination worth a hand-written page, with the parts of its rank."""

    url: str
    payer: str
    procedure: str
    denial_type: str
    layer: str
    demand: int
    demand_payers: tuple[str, ...]
    payer_pages: int
    plan_types: int
    reason: str


@dataclass(frozen=True, slots=True)
class Report:
    """Everything the report shows, as plain values."""

    site: str
    language: str
    thresholds: Thresholds
    pages: int
    hubs: int
    layers: tuple[tuple[str, int], ...]
    indexable: int
    noindex_reasons: tuple[tuple[str, int], ...]
    similarity: tuple[tuple[str, int], ...]  # bucket label -> pages whose nearest neighbour is that close
    grids: tuple[Grid, ...]
    exclusions: tuple[Exclusion, ...]
    duplicate_titles: tuple[Duplicate, ...]
    duplicate_descriptions: tuple[Duplicate, ...]
    redirects: tuple[tuple[str, str], ...]
    candidates: tuple[Candidate, ...]

    def warnings(self) -> list[str]:
        """Return one line per title or description shared by indexable pages, for the build to print."""
        shared = (("title", self.duplicate_titles), ("description", self.duplicate_descriptions))
        return [f"{len(d.urls)} indexable pages share the {kind} {d.text!r}: {', '.join(d.urls[:3])}"
                + (f" and {len(d.urls) - 3:,} more" if len(d.urls) > 3 else "")
                for kind, dups in shared for d in dups]


def build_report(data: SiteData, plan: Plan, standing: Standing,
                 redirects: Iterable[tuple[str, str]] = ()) -> Report:
    """Return the report of a planned site and its search standing."""
    indexable = standing.flags()
    layers = Counter(page.layer for page in plan.pages)
    titles, descriptions = find_duplicates(data, plan, indexable)
    return Report(
        site=data.site.name, language=data.site.language, thresholds=data.site.thresholds,
        pages=len(plan.pages), hubs=len(plan.hubs),
        layers=tuple((layer, layers[layer]) for layer in LAYERS),
        indexable=sum(indexable), noindex_reasons=count_reasons(plan, standing, indexable),
        similarity=similarity_buckets(standing, len(plan.pages)),
        grids=plan_grids(data, plan, standing), exclusions=plan.exclusions,
        duplicate_titles=titles, duplicate_descriptions=descriptions,
        redirects=tuple(sorted(redirects)), candidates=rank_candidates(data, plan, standing, indexable),
    )


def reason_kind(standing: Standing, index: int) -> str:
    """Return why a noindex page is kept out: few distinctive words, too similar, or both."""
    verdict = standing.verdict(index)
    few = verdict.distinctive_words < standing.distinctive_words_min
    similar = verdict.similarity >= standing.similarity_max
    return "both" if few and similar else "too_similar" if similar else "few_distinctive_words"


def count_reasons(plan: Plan, standing: Standing, indexable: bytes) -> tuple[tuple[str, int], ...]:
    """Return how many noindex pages fall under each reason kind."""
    kinds = Counter(reason_kind(standing, i) for i in range(len(plan.pages)) if not indexable[i])
    return tuple((kind, kinds[kind]) for kind in REASON_KINDS)


def similarity_buckets(standing: Standing, pages: int) -> tuple[tuple[str, int], ...]:
    """Return how many pages have their nearest neighbour in each tenth of similarity."""
    counts = Counter(min(int(standing.verdict(i).similarity * 10), 9) for i in range(pages))
    return tuple((label, counts[n]) for n, label in enumerate(BUCKETS))


def plan_grids(data: SiteData, plan: Plan, standing: Standing) -> tuple[Grid, ...]:
    """Return one payer x procedure grid per denial type, every combination in it."""
    index = {page.key: i for i, page in enumerate(plan.pages)}

    def cell(payer: Payer, procedure: Procedure, denial: DenialType) -> Cell:
        number = index.get((payer.slug, procedure.slug, denial.slug))
        if number is None:
            return excluded_cell(payer, procedure, denial)
        page = plan.pages[number]
        if standing.is_indexable(number):
            return Cell(payer.slug, procedure.slug, "indexable", LETTERS[page.layer], page.url, "indexable")
        return Cell(payer.slug, procedure.slug, "noindex", LETTERS[page.layer], page.url,
                    standing.reason(number, plan))

    payers = tuple((p.slug, p.name) for p in data.payers)
    procedures = tuple((p.slug, p.name) for p in data.procedures)
    return tuple(
        Grid(denial.slug, denial.name, payers, procedures,
             tuple(tuple(cell(payer, procedure, denial) for payer in data.payers)
                   for procedure in data.procedures))
        for denial in data.denial_types)


def excluded_cell(payer: Payer, procedure: Procedure, denial: DenialType) -> Cell:
    """Return the cell of a combination no page exists for, naming the rule that removed it."""
    rule = excluding_rule(payer, procedure, denial)
    if rule is None:  # never: a combination leaves the plan only through a rule
        return Cell(payer.slug, procedure.slug, "excluded", "", "", "excluded")
    note = f"excluded by {rule.describe()}" + (f": {rule.reason}" if rule.reason else "")
    return Cell(payer.slug, procedure.slug, "excluded", "", "", note)


def find_duplicates(data: SiteData, plan: Plan, indexable: bytes) -> tuple[tuple[Duplicate, ...], ...]:
    """Return the titles, then the meta descriptions, that several indexable pages share."""
    payers = {p.slug: p for p in data.payers}
    procedures = {p.slug: p for p in data.procedures}
    denials = {d.slug: d for d in data.denial_types}
    titles: dict[str, list[str]] = defaultdict(list)
    descriptions: dict[str, list[str]] = defaultdict(list)
    for number, page in enumerate(plan.pages):
        if indexable[number]:
            records = (payers[page.payer], procedures[page.procedure], denials[page.denial_type],
                       data.content.get(page.content_key) if page.content_key else None)
            titles[page_title(*records)].append(page.url)
            descriptions[page_description(*records)].append(page.url)
    return tuple(tuple(Duplicate(text, tuple(sorted(urls))) for text, urls in sorted(found.items())
                       if len(urls) > 1) for found in (titles, descriptions))


def rank_candidates(data: SiteData, plan: Plan, standing: Standing,
                    indexable: bytes) -> tuple[Candidate, ...]:
    """Return the noindex combinations most worth writing next, best first (see the module docstring)."""
    written: dict[tuple[str, str], set[str]] = defaultdict(set)
    for page in plan.pages:
        if page.layer == "exact":
            written[(page.procedure, page.denial_type)].add(page.payer)
    per_payer = Counter(page.payer for page in plan.pages if page.layer == "exact")
    plan_types = {p.slug: len(p.plan_types) for p in data.payers}

    def rank(number: int) -> tuple[int, int, int, str]:
        page = plan.pages[number]
        demand = len(written[(page.procedure, page.denial_type)] - {page.payer})
        return (-demand, per_payer[page.payer], -plan_types[page.payer], page.url)

    def candidate(number: int) -> Candidate:
        page = plan.pages[number]
        others = tuple(sorted(written[(page.procedure, page.denial_type)] - {page.payer}))
        return Candidate(page.url, page.payer, page.procedure, page.denial_type, page.layer, len(others),
                         others, per_payer[page.payer], plan_types[page.payer], standing.reason(number, plan))

    best = heapq.nsmallest(TOP, (n for n in range(len(plan.pages)) if not indexable[n]), key=rank)
    return tuple(candidate(number) for number in best)


def report_document(report: Report, grids: bool = True) -> dict[str, Any]:
    """Return the report as JSON-ready values, counts as objects keyed by name (the grids as
    GRIDS_MARK unless `grids`)."""
    return {
        "site": report.site,
        "thresholds": asdict(report.thresholds),
        "pages": report.pages,
        "hubs": report.hubs,
        "layers": dict(report.layers),
        "indexable": report.indexable,
        "noindex": report.pages - report.indexable,
        "noindex_reasons": dict(report.noindex_reasons),
        "similarity": dict(report.similarity),
        "grids": [grid_document(grid) for grid in report.grids] if grids else GRIDS_MARK,
        "exclusions": [asdict(e) for e in report.exclusions],
        "duplicate_titles": [asdict(d) for d in report.duplicate_titles],
        "duplicate_descriptions": [asdict(d) for d in report.duplicate_descriptions],
        "redirects": [{"from": old, "to": new} for old, new in report.redirects],
        "candidates": [asdict(c) for c in report.candidates],
    }


def grid_document(grid: Grid) -> dict[str, Any]:
    """Return one grid as JSON-ready values: rows follow `procedures`, cells follow `payers`."""
    return {"denial_type": grid.denial_type, "name": grid.name,
            "payers": [slug for slug, _ in grid.payers], "procedures": [slug for slug, _ in grid.procedures],
            "rows": [[{"state": c.state, "layer": c.layer, "url": c.url, "note": c.note} for c in row]
                     for row in grid.rows]}


def render_report_json(report: Report) -> bytes:
    """Return report.json's bytes (stable: the same report gives the same bytes)."""
    return "".join(report_json_chunks(report)).encode()


def report_json_chunks(report: Report) -> Iterator[str]:
    """Yield report.json a grid at a time; together, the text of json.dumps(report_document(report), indent=1)."""
    head, tail = to_json(report_document(report, grids=False)).split(to_json(GRIDS_MARK))
    yield head + "["
    for number, grid in enumerate(report.grids):  # a grid is an item of a list two levels deep
        yield ("," if number else "") + "\n  " + to_json(grid_document(grid)).replace("\n", "\n  ")
    yield ("\n ]" if report.grids else "]") + tail + "\n"


def to_json(value: object) -> str:
    """Return the report's JSON form of a value: one space of indent a level, text as it is."""
    return json.dumps(value, indent=1, ensure_ascii=False)


def write_report(folder: Path, report: Report) -> tuple[str, ...]:
    """Write report.json and report.html into `folder` where their bytes changed; return the names written."""
    try:
        stage_report(folder, report)
        return commit_report(folder)
    finally:
        discard_staged_report(folder)


def stage_report(folder: Path, report: Report) -> None:
    """Write report.json and report.html into `folder` as temporaries, piece by piece, so that the
    whole text is never held; commit_report puts them in place."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, chunks in zip(FILES, (report_json_chunks(report), report_html_chunks(report)), strict=True):
        with staged_file(folder, name).open("w", encoding="utf-8", newline="") as handle:
            handle.writelines(chunks)


def commit_report(folder: Path) -> tuple[str, ...]:
    """Put the staged report files in place where their bytes changed; return the names written."""
    written = []
    for name in FILES:
        target, staged = folder / name, staged_file(folder, name)
        if target.is_file() and filecmp.cmp(target, staged, shallow=False):
            staged.unlink()
            continue
        staged.replace(target)  # readers see the old file or the new one, never half of one
        written.append(name)
    return tuple(written)


def discard_staged_report(folder: Path, pid: str | None = None) -> None:
    """Delete report files staged by this process and not committed (the build stopped), or with
    `pid="*"` those of any process (a killed build's, found by the next one holding the lock)."""
    for name in FILES:
        for staged in folder.glob(staged_file(folder, name, pid).name):
            staged.unlink(missing_ok=True)


def staged_file(folder: Path, name: str, pid: str | None = None) -> Path:
    """Return where a process (this one unless `pid`) stages one report file."""
    return folder / f".{name}.{pid or os.getpid()}.tmp"
