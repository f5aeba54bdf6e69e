"""The marketer's report: counts agree with `list`, every combination is in a grid, duplicates and
the pages worth writing next are found, the HTML stands alone, and unchanged files are never rewritten."""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from pathlib import Path

import lxml.html
import pytest
from conftest import PAYERS, payer, run_cli, site_files
from test_standing import page_md, prose

from denialpages.load import load_site
from denialpages.pipeline import list_pages
from denialpages.report import Report, build_report, render_report_json, report_document, write_report
from denialpages.report_html import render_report_html

SHARED = "The one description two pages share."
CIMT = "/help/cigna/cimt/prior-authorization/"
HUMIRA = "/help/humana/humira/step-therapy/"
SECTIONS = ("thresholds", "layers", "standing", "similarity", "grids", "exclusions", "duplicates",
            "redirects", "next")


def written(body: str, description: str | None = None, title: str | None = None) -> str:
    """Return a hand-written page with optional front matter."""
    fields = (("title", title), ("description", description))
    meta = "".join(f"{key}: {value}\n" for key, value in fields if value)
    return (f"---\n{meta}---\n" if meta else "") + page_md(body)


def report_files(**extra: object) -> dict[str, object]:
    """Return a small site with two long hand-written pages (the only indexable ones) plus `extra`."""
    return site_files(**{"content/cigna/cimt/prior-authorization.md": written(prose(1)),
                         "content/humana/humira/step-therapy.md": written(prose(2)), **extra})


def report_of(root: Path, redirects: tuple[tuple[str, str], ...] = ()) -> Report:
    """Return the report of the site at `root`, built as the pipeline's stages hand it over."""
    plan, standing = list_pages(root)
    return build_report(load_site(root), plan, standing, redirects)


@pytest.fixture
def site(make_site) -> Path:
    return make_site(report_files())


def test_json_written_a_grid_at_a_time_is_the_whole_document_dumped_at_once(site):
    report = report_of(site)
    whole = json.dumps(report_document(report), indent=1, ensure_ascii=False) + "\n"
    assert len(report.grids) > 1
    assert render_report_json(report).decode() == whole
    no_grids = dataclasses.replace(report, grids=())
    assert render_report_json(no_grids).decode() == json.dumps(report_document(no_grids), indent=1) + "\n"


def test_json_counts_match_the_list_command(site):
    document = json.loads(render_report_json(report_of(site)))
    listed = run_cli("list", "--site", str(site))
    assert listed.exit_code == 0, listed.output
    rows = [line.split("\t") for line in listed.output.splitlines()[1:]]
    assert document["pages"] == len(rows) == 16
    assert document["layers"] == {"exact": 2, "procedure": 0, "denial": 0, "data": 14}
    assert document["layers"] == {layer: Counter(r[4] for r in rows)[layer] for layer in document["layers"]}
    assert document["indexable"] == sum(r[5] == "yes" for r in rows) == 2
    assert document["noindex"] == sum(r[5] == "no" for r in rows) == 14
    assert sum(document["noindex_reasons"].values()) == 14
    assert document["noindex_reasons"]["few_distinctive_words"] + document["noindex_reasons"]["both"] == sum(
        "distinctive words" in r[6] for r in rows)
    assert sum(document["similarity"].values()) == 16 and len(document["similarity"]) == 10
    assert document["thresholds"] == {"similarity_max": 0.5, "distinctive_words_min": 150,
                                      "shared_block_share": 0.05, "distinctive_pages_max": 10}
    assert document["hubs"] == 1 + 2 + 4 + 3


def test_grid_has_one_cell_per_planned_or_excluded_combination(site):
    report = report_of(site)
    plan, _ = list_pages(site)
    pages = {p.key: p for p in plan.pages}
    cells = [(grid.denial_type, cell) for grid in report.grids for row in grid.rows for cell in row]
    assert len(cells) == 2 * 4 * 3
    assert all(len(grid.rows) == 4 and all(len(row) == 2 for row in grid.rows) for grid in report.grids)
    planned = [(d, c) for d, c in cells if c.state != "excluded"]
    assert sorted(c.url for _, c in planned) == sorted(p.url for p in plan.pages)
    assert all(pages[(c.payer, c.procedure, d)].url == c.url for d, c in planned)
    assert sum(c.state == "excluded" for _, c in cells) == sum(e.count for e in report.exclusions) == 8
    states = {(c.payer, c.procedure, d): (c.state, c.layer) for d, c in cells}
    assert states[("cigna", "cimt", "prior-authorization")] == ("indexable", "E")
    assert states[("humana", "cimt", "prior-authorization")] == ("noindex", "-")
    step = next(grid for grid in report.grids if grid.denial_type == "step-therapy")
    test_row = step.rows[[slug for slug, _ in step.procedures].index("tumor-genomic-profiling")]
    assert {(c.state, c.layer) for c in test_row} == {("excluded", "")}
    assert "Tests have no step to fail." in test_row[0].note


def test_duplicate_descriptions_and_titles_among_indexable_pages_are_reported(make_site):
    root = make_site(report_files(**{
        "content/cigna/cimt/prior-authorization.md": written(prose(1), SHARED, "One title"),
        "content/humana/humira/step-therapy.md": written(prose(2), SHARED, "One title"),
        "content/cigna/humira/step-therapy.md": written("Too short to be indexable.", SHARED, "One title"),
    }))
    report = report_of(root)
    assert [(d.text, d.urls) for d in report.duplicate_descriptions] == [(SHARED, (CIMT, HUMIRA))]
    assert [(d.text, d.urls) for d in report.duplicate_titles] == [("One title", (CIMT, HUMIRA))]
    assert report.warnings() == [f"2 indexable pages share the title 'One title': {CIMT}, {HUMIRA}",
                                 f"2 indexable pages share the description {SHARED!r}: {CIMT}, {HUMIRA}"]
    section = lxml.html.fromstring(render_report_html(report)).get_element_by_id("duplicates")
    assert [li.text_content() for li in section.cssselect("li li")] == [CIMT, HUMIRA, CIMT, HUMIRA]


def test_pages_with_their_own_titles_and_descriptions_have_no_duplicates(site):
    report = report_of(site)
    assert report.duplicate_titles == report.duplicate_descriptions == ()
    assert report.warnings() == []


def test_top_candidates_are_noindex_and_ranked_by_proven_demand(site):
    report = report_of(site)
    plan, standing = list_pages(site)
    noindex = {p.url for i, p in enumerate(plan.pages) if not standing.is_indexable(i)}
    assert {c.url for c in report.candidates} == noindex and len(noindex) == 14  # fewer than 25: all of them
    first, second = report.candidates[:2]
    assert (first.url, first.demand, first.demand_payers, first.payer_pages, first.plan_types) == (
        "/help/cigna/humira/step-therapy/", 1, ("humana",), 1, 2)
    assert (second.url, second.demand, second.demand_payers) == (
        "/help/humana/cimt/prior-authorization/", 1, ("cigna",))
    keys = [(-c.demand, c.payer_pages, -c.plan_types, c.url) for c in report.candidates]
    assert keys == sorted(keys)
    rows = lxml.html.fromstring(render_report_html(report)).get_element_by_id("next").cssselect("tbody tr")
    assert [r.cssselect("td")[1].text_content() for r in rows] == [c.url for c in report.candidates]
    assert rows[0].cssselect("td")[-1].text_content() == "python build.py new cigna humira step-therapy"


def test_payers_with_fewer_pages_then_more_plan_types_come_first_and_the_list_stops_at_25(make_site):
    payers = [*PAYERS, payer("aetna", "Aetna", ["employer"]),
              payer("molina", "Molina", ["employer", "marketplace", "medicaid"])]
    root = make_site(report_files(**{"data/payers.yaml": payers}))
    report = report_of(root)
    plan, standing = list_pages(root)
    noindex = {p.url for i, p in enumerate(plan.pages) if not standing.is_indexable(i)}
    assert len(noindex) == 30 and len(report.candidates) == 25
    assert {c.url for c in report.candidates} < noindex
    assert [c.url for c in report.candidates[:6]] == [
        "/help/molina/cimt/prior-authorization/", "/help/molina/humira/step-therapy/",
        "/help/aetna/cimt/prior-authorization/", "/help/aetna/humira/step-therapy/",
        "/help/cigna/humira/step-therapy/", "/help/humana/cimt/prior-authorization/"]
    assert [(c.demand, c.payer_pages, c.plan_types) for c in report.candidates[:6]] == [
        (1, 0, 3), (1, 0, 3), (1, 0, 1), (1, 0, 1), (1, 1, 2), (1, 1, 2)]
    assert report.candidates[6].demand == 0


def test_html_stands_alone_escapes_names_and_has_every_section(make_site):
    odd = [payer("cigna", 'Cigna <b>"Care"</b> & Co', ["employer"]), *PAYERS[1:]]
    report = report_of(make_site(report_files(**{"data/payers.yaml": odd})), (("/help/old/", "/help/new/"),))
    body = render_report_html(report)
    page = lxml.html.fromstring(body)
    assert [page.get_element_by_id(key).cssselect("h2")[0].text_content() for key in SECTIONS] == [
        "Thresholds in force", "Pages by content layer", "Indexable or not, and why",
        "Nearest-neighbour similarity", "Payer x procedure grids", "Excluded combinations",
        "Duplicate titles and descriptions", "Redirects",
        "The 25 combinations most worth writing next"]
    assert page.cssselect("head > style") and not page.cssselect("script, link, img, iframe, object, b")
    links = [e.get(a) for e in page.iter() for a in ("src", "href", "srcset") if e.get(a) is not None]
    assert links == [f"#{key}" for key in SECTIONS]  # only the table of contents
    assert b"url(" not in body and b"@import" not in body
    assert 'Cigna <b>"Care"</b> & Co' in [th.text_content() for th in page.cssselect("table.grid thead th")]
    cells = page.cssselect("table.grid tbody td")
    assert len(cells) == 2 * 4 * 3
    assert Counter(td.get("class") for td in cells) == {"indexable": 2, "noindex": 14, "excluded": 8}
    indexable = next(td for td in cells if td.get("class") == "indexable")
    assert (indexable.text_content(), indexable.get("title")) == ("E", f"{CIMT} indexable")
    redirects = page.get_element_by_id("redirects").cssselect("td")
    assert [td.text_content() for td in redirects] == ["/help/old/", "/help/new/"]
    assert "No redirects." in report_html_of(report_of(make_site(report_files(), name="plain")), "redirects")


def report_html_of(report: Report, section: str) -> str:
    """Return the text of one section of the report's HTML."""
    return lxml.html.fromstring(render_report_html(report)).get_element_by_id(section).text_content()


def test_write_report_rewrites_only_what_changed(site, tmp_path):
    folder = tmp_path / "out-report"
    report = report_of(site)
    assert write_report(folder, report) == ("report.json", "report.html")
    old = 1_000_000_000_000_000_000
    for name in ("report.json", "report.html"):
        os.utime(folder / name, ns=(old, old))
    assert write_report(folder, report) == ()
    assert [(folder / n).stat().st_mtime_ns for n in ("report.json", "report.html")] == [old, old]
    assert sorted(p.name for p in folder.iterdir()) == ["report.html", "report.json"]
    changed = report_of(site, (("/help/old/", "/help/new/"),))
    assert write_report(folder, changed) == ("report.json", "report.html")
    redirects = json.loads((folder / "report.json").read_bytes())["redirects"]
    assert redirects == [{"from": "/help/old/", "to": "/help/new/"}]
    assert (folder / "report.html").read_bytes() == render_report_html(changed)


def test_a_report_staged_by_a_killed_build_is_removed_by_the_next(site, tmp_path):
    out = tmp_path / "out"
    report = tmp_path / "out-report"
    report.mkdir()
    (report / ".report.json.99999.tmp").write_text("{half")  # SIGKILL leaves no chance to tidy
    (report / ".report.html.99999.tmp").write_text("<p>half")
    result = run_cli("build", "--site", str(site), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in report.iterdir()) == ["report.html", "report.json"]
    assert json.loads((report / "report.json").read_text())["pages"] == 16
