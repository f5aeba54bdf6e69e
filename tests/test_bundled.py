"""The bundled catalogue, built end to end: every page parses and has every part; no SPEC §6 defect."""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import lxml.html
import pytest
import yaml

from conftest import REPO, parse
from denialpages.load import load_site
from denialpages.plan import plan_site

pytestmark = pytest.mark.slow
SECTION_ORDER = ["rights", "requires", "angle", "next", "cta", "trust", "related"]
PRESCRIBING_WORDS = re.compile(r"formulary|prescribing (?:label|information)|drug label|FDA label", re.IGNORECASE)
UNSUPPORTED = re.compile(
    r"dramatically|courts have (?:found|held|ruled)|accelerated timeline|guaranteed? (?:approval|to win|you)|you will win",
    re.IGNORECASE,
)


@pytest.fixture(scope="module")
def plan():
    return plan_site(load_site(REPO))


@pytest.fixture(scope="module")
def pages(bundled_out, plan):
    return {page.url: parse(bundled_out / page.path) for page in plan.pages}


def data(name):
    return yaml.safe_load((REPO / "data" / name).read_text())


def test_catalogue_is_as_large_as_promised(plan):
    payers, procedures = data("payers.yaml"), data("procedures.yaml")
    assert len(payers) >= 10 and len(procedures) >= 25 and len(data("denial_types.yaml")) >= 8
    assert {p["category"] for p in procedures} >= {"surgery", "drug", "therapy", "test", "imaging", "device"}
    assert len(plan.pages) >= 1000
    exact = {p.key for p in plan.pages if p.layer == "exact"}
    required = {("cigna", s, "prior-authorization") for s in ("regenerative-injection", "cimt", "tumor-genomic-profiling")}
    required |= {("cigna", s, "step-therapy") for s in ("regenerative-injection", "lumbar-spinal-fusion")}
    assert required <= exact
    assert len(exact - required) >= 15 and len({k[0] for k in exact - required}) >= 5


def test_page_count_is_planned_combinations_plus_hubs(bundled_out, plan):
    html = sorted(p.relative_to(bundled_out).as_posix() for p in bundled_out.rglob("*.html"))
    expected = sorted([p.path for p in plan.pages] + [h.path for h in plan.hubs] + ["404.html"])
    assert html == expected
    assert {"sitemap.xml", "robots.txt", "favicon.ico"} <= {p.name for p in bundled_out.iterdir()}


def test_every_landing_page_has_every_part_in_order(pages, plan):
    for page in plan.pages:
        doc = pages[page.url]
        assert [s.get("id") for s in doc.cssselect("article > section, article > nav")] == SECTION_ORDER, page.url
        assert doc.findtext(".//h1").endswith("?") and doc.cssselect("p.lede")[0].text_content().strip()
        assert doc.cssselect("#rights details"), page.url
        angle = doc.get_element_by_id("angle")
        assert angle.cssselect("ol > li") and angle.cssselect("table tr td"), page.url
        assert len(doc.cssselect("#related a")) >= 6, page.url
        assert doc.cssselect("#trust time[datetime]") and doc.cssselect("#trust .sources a[href^='https://']")


def prose_of(doc: lxml.html.HtmlElement) -> str:
    """Return a page's own wording: its text without quoted titles (<cite>, the cited documents)."""
    doc = copy.deepcopy(doc)
    for quoted in doc.cssselect("cite, #trust .sources"):
        quoted.drop_tree()
    return doc.text_content()


def test_names_are_never_recased(pages, plan):
    names = [p["name"] for f in ("payers.yaml", "procedures.yaml") for p in data(f)]
    wrong = {n: re.compile(rf"\b{re.escape(n)}\b", re.IGNORECASE) for n in names}
    for url, doc in pages.items():
        text = prose_of(doc)
        for name, pattern in wrong.items():
            for found in pattern.findall(text):
                # sentence case may lower a first letter ("lumbar spine MRI"); nothing else changes
                assert found[1:] == name[1:] or found == name.lower(), (url, found, name)


def test_no_category_blind_wording_on_non_drug_pages(pages, plan):
    categories = {p["slug"]: p["category"] for p in data("procedures.yaml")}
    for page in plan.pages:
        if categories[page.procedure] == "drug":
            continue
        doc = pages[page.url]
        for resources in doc.cssselect("#requires ul.resources"):
            resources.drop_tree()  # the payer's own library names may mention its drug lists
        text = (doc.get_element_by_id("requires").text_content() + doc.get_element_by_id("angle").text_content()).lower()
        assert not PRESCRIBING_WORDS.search(text), (page.url, PRESCRIBING_WORDS.search(text))


def test_no_plan_type_the_payer_does_not_sell(pages, plan):
    ladders = {p["slug"]: p["name"] for p in data("facts.yaml")["plan_types"]}
    sells = {p["slug"]: {ladders[t] for t in p["plan_types"]} for p in data("payers.yaml")}
    for page in plan.pages:
        shown = {h.text_content() for h in pages[page.url].cssselect("#rights summary h3")}
        assert shown == sells[page.payer], page.url
    cigna = next(p for p in plan.pages if p.payer == "cigna")
    assert "Medicare Advantage" not in {h.text_content() for h in pages[cigna.url].cssselect("#rights summary h3")}


def test_every_deadline_is_the_same_cited_fact_on_every_page(pages, plan):
    categories = {p["slug"]: p["category"] for p in data("procedures.yaml")}
    ladders: dict[tuple[str, bool], str] = {}
    for page in plan.pages:
        doc = pages[page.url]
        assert not UNSUPPORTED.search(doc.text_content()), page.url
        for ladder in doc.cssselect("#rights details"):
            for term in ladder.cssselect(".term"):
                cite = term.cssselect("a.cite")
                assert cite and cite[0].get("href", "").startswith("https://") and cite[0].text_content(), page.url
            key = (ladder.findtext(".//summary/h3"), categories[page.procedure] == "drug")
            steps = ladder.cssselect("ol.steps")[0].text_content()
            assert ladders.setdefault(key, steps) == steps, (page.url, key)
        for label in doc.xpath("//*[normalize-space(text())='Cite:']"):
            pytest.fail(f"{page.url}: bare citation label {lxml.html.tostring(label)!r}")


def test_markdown_lists_and_tables_stay_lists_and_tables(pages, plan):
    for page in plan.pages:
        if page.layer != "exact":
            continue
        prose = pages[page.url].cssselect("#angle .prose")
        assert len(prose) == 4, page.url
        assert prose[2].cssselect("ol > li") and prose[3].cssselect("table thead th"), page.url


def test_sitemap_and_robots(bundled_out, plan):
    tree = ET.parse(bundled_out / "sitemap.xml")
    locs = [e.text for e in tree.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
    indexable = {"https://denialhelp.com" + page.url for page in plan.pages
                 if parse(bundled_out / page.path).cssselect("meta[name=robots]")[0].get("content") == "index,follow"}
    assert len(locs) == len(set(locs)) == len(plan.hubs) + len(indexable)
    assert indexable <= set(locs) and len(indexable) >= 40
    assert all(loc.startswith("https://denialhelp.com/") for loc in locs)
    assert "Sitemap: https://denialhelp.com/sitemap.xml" in (bundled_out / "robots.txt").read_text()


def test_every_internal_link_resolves(bundled_out):
    missing = []
    for file in bundled_out.rglob("*.html"):
        for element, attribute, link, _ in parse(file).iterlinks():
            if attribute != "href" or not link.startswith("/"):
                continue
            target = bundled_out / link.lstrip("/")
            if not (target / "index.html" if link.endswith("/") else target).is_file():
                missing.append((file.relative_to(bundled_out).as_posix(), link))
    assert missing == []


def test_pages_are_minified_and_self_contained(bundled_out, pages):
    sample = bundled_out / "help/cigna/cimt/prior-authorization/index.html"
    text = sample.read_text()
    assert "\n\n" not in text and "<!--" not in text
    for url, doc in pages.items():
        for element, attribute, link, _ in doc.iterlinks():
            if element.tag in ("link", "script", "img") and attribute in ("href", "src"):
                assert link.startswith("/") or element.get("rel") == "canonical", (url, link)


def test_pages_are_what_htmlmin_makes_of_them(bundled_out, plan):
    """Pages are not run through htmlmin one by one; they must still be its fixed point."""
    from denialpages.minify import minify

    sample = [page.path for page in plan.pages[::25]] + [hub.path for hub in plan.hubs] + ["404.html"]
    for path in sample:
        text = (bundled_out / path).read_text(encoding="utf-8")
        assert minify(text) == text, path


def test_every_page_is_reachable_from_home_and_indexable_ones_within_three_clicks(bundled_out, plan):
    from collections import deque

    def links(url):
        path = bundled_out / (url.lstrip("/") + "index.html" if url.endswith("/") else url.lstrip("/"))
        return {link for _, attr, link, _ in parse(path).iterlinks() if attr == "href" and link.startswith("/")
                and not link.endswith((".ico", ".xml", ".txt"))}

    depth = {"/": 0}
    queue = deque(["/"])
    while queue:
        url = queue.popleft()
        for target in links(url):
            if target not in depth:
                depth[target] = depth[url] + 1
                queue.append(target)
    missing = [page.url for page in plan.pages if page.url not in depth]
    assert missing == []
    robots = {page.url: parse(bundled_out / page.path).cssselect("meta[name=robots]")[0].get("content")
              for page in plan.pages}
    assert all(depth[url] <= 3 for url, value in robots.items() if value.startswith("index"))


def test_a_letter_never_invokes_a_step_therapy_law_for_anything_but_a_drug(pages, plan):
    categories = {p["slug"]: p["category"] for p in data("procedures.yaml")}
    for page in plan.pages:
        rights = pages[page.url].cssselect("#cta .outline > li")[-1].text_content()
        assert rights.startswith("Your rights for your plan type"), page.url
        if categories[page.procedure] != "drug":
            assert "step-therapy law" not in rights.lower(), (page.url, rights)
