"""Stage 3: each part of a page, in order, built from data; escaping; template errors."""

from __future__ import annotations

import json
import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import PAYERS, parse, payer, run_cli, site_files
from denialpages.minify import close_tag_gaps
from denialpages.render import json_ld

SECTION_ORDER = ["rights", "requires", "angle", "next", "cta", "trust", "related"]


@pytest.fixture
def built(make_site, tmp_path):
    root = make_site()
    out = tmp_path / "out"
    result = run_cli("build", "--site", str(root), "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_landing_page_has_every_part_in_spec_order(built):
    doc = parse(built / "help/cigna/cimt/prior-authorization/index.html")
    assert doc.findtext(".//h1") == "CIMT denied for missing prior authorization by Cigna?"
    assert doc.cssselect("h1 + p.lede")[0].text_content() == "What to do about missing prior authorization."
    ids = [s.get("id") for s in doc.cssselect("article > section, article > nav")]
    assert ids == SECTION_ORDER
    angle = doc.get_element_by_id("angle")
    assert [h.text_content() for h in angle.cssselect("h3")][:4] == [
        "Why it was denied", "Appeal route", "Documents to gather", "Criteria mapping"]
    assert len(angle.cssselect("ol > li")) == 3
    assert len(angle.cssselect("table tr")) == 3


def test_appeal_rights_show_only_the_payers_plan_types_with_cited_deadlines(built):
    doc = parse(built / "help/humana/cimt/prior-authorization/index.html")
    ladders = [d.findtext(".//summary/h3") for d in doc.cssselect("#rights details")]
    assert ladders == ["Medicare Advantage", "Medicaid managed care"]
    for term in doc.cssselect("#rights dd"):
        link = term.cssselect("a.cite")
        assert link and link[0].get("href").startswith("https://") and link[0].text_content().strip()


def test_drug_pages_use_the_drug_ladder(built):
    ma = lambda d: next(x for x in d.cssselect("#rights details") if x.findtext(".//summary/h3") == "Medicare Advantage")
    drug = ma(parse(built / "help/humana/humira/prior-authorization/index.html"))
    surgery = ma(parse(built / "help/humana/lumbar-spinal-fusion/prior-authorization/index.html"))
    assert [h.text for h in drug.cssselect("h4")] != [h.text for h in surgery.cssselect("h4")]


def test_names_are_shown_exactly_as_written(built):
    text = parse(built / "help/cigna/cimt/step-therapy/index.html").text_content()
    assert "CIMT" in text and "Cimt" not in text


def test_no_prescribing_words_on_a_surgery_page(built):
    doc = parse(built / "help/cigna/lumbar-spinal-fusion/prior-authorization/index.html")
    words = doc.get_element_by_id("requires").text_content().lower()
    assert "label" not in words and "formulary" not in words


def test_checkout_links_on_a_page_carry_its_identity(built):
    doc = parse(built / "help/cigna/cimt/prior-authorization/index.html")
    hrefs = {a.get("href") for a in doc.cssselect("a.button")}
    assert hrefs == {"https://denialhelp.com/checkout?promo=SEO25&payer=cigna&procedure=cimt&denial=prior-authorization"}


def test_head_tags_and_json_ld(built):
    doc = parse(built / "help/cigna/cimt/prior-authorization/index.html")
    assert doc.get("lang") == "en-US"
    canonical = doc.cssselect("link[rel=canonical]")[0].get("href")
    assert canonical == "https://denialhelp.com/help/cigna/cimt/prior-authorization/"
    assert doc.cssselect("meta[property='og:url']")[0].get("content") == canonical
    assert doc.cssselect("meta[name=description]")[0].get("content") == "A hand-written page for CIMT at Cigna."
    graph = json.loads(doc.cssselect("script[type='application/ld+json']")[0].text)["@graph"]
    assert {n["@type"] for n in graph} == {"MedicalWebPage", "BreadcrumbList"}
    assert graph[0]["lastReviewed"] == "2026-11-20"
    crumbs = [i["item"] for i in graph[1]["itemListElement"]]
    visible = ["https://denialhelp.com" + a.get("href") for a in doc.cssselect("nav.crumbs a")]
    assert crumbs[:-1] == visible


def test_hostile_text_lands_as_text_everywhere(make_site, tmp_path):
    evil = 'Evil</script><script>alert(1)</script> & "quotes" <b>'
    root = make_site(site_files(**{"data/payers.yaml": [payer("evil", evil, ["employer"]), *PAYERS]}))
    out = tmp_path / "out"
    assert run_cli("build", "--site", str(root), "--out", str(out)).exit_code == 0
    doc = parse(out / "help/evil/cimt/prior-authorization/index.html")
    assert len(doc.cssselect("script")) == 1
    assert evil in doc.findtext(".//h1")
    assert evil in doc.cssselect("meta[property='og:title']")[0].get("content")
    graph = json.loads(doc.cssselect("script")[0].text)["@graph"]
    assert graph[1]["itemListElement"][1]["name"] == evil


def test_json_ld_cannot_close_its_script_element():
    assert "</" not in json_ld({"name": "</script><b>&"})
    assert json.loads(json_ld({"name": "</script>"})) == {"name": "</script>"}


def test_undefined_variable_names_the_template_and_line(make_site, tmp_path):
    root = make_site()
    page = root / "templates" / "page.html"
    page.write_text(page.read_text().replace("{{ wording.lede }}", "{{ wording.leed }}"))
    result = run_cli("build", "--site", str(root), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    line = next(n for n, text in enumerate(page.read_text().splitlines(), 1) if "wording.leed" in text)
    assert f"templates/page.html:{line}: while rendering /help/" in result.output
    assert "Traceback" not in result.output


def test_template_that_does_not_parse(make_site, tmp_path):
    root = make_site()
    (root / "templates" / "hub.html").write_text("{% extends 'base.html' %}\n{% block main %}\n{% for %}\n")
    result = run_cli("build", "--site", str(root), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "templates/hub.html:3: template does not parse" in result.output


def test_every_small_site_page_is_htmlmins_fixed_point(built):
    from denialpages.minify import minify

    for file in built.rglob("*.html"):
        text = file.read_text(encoding="utf-8")
        assert minify(text) == text, file


def test_a_content_link_to_a_page_that_does_not_exist_fails_the_build(make_site, tmp_path):
    from conftest import CONTENT

    broken = CONTENT.replace("Ask for a retro review.", "See [Humana's page](/help/humana/cimt/no-such-denial/).")
    root = make_site(site_files(**{"content/cigna/cimt/prior-authorization.md": broken}))
    result = run_cli("build", "--site", str(root), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert ("content/cigna/cimt/prior-authorization.md:1: /help/cigna/cimt/prior-authorization/ links to "
            "/help/humana/cimt/no-such-denial/, which this build does not write") in result.output
    good = CONTENT.replace("Ask for a retro review.", "See [Humana's page](/help/humana/cimt/step-therapy/).")
    root = make_site(site_files(**{"content/cigna/cimt/prior-authorization.md": good}), name="good")
    assert run_cli("build", "--site", str(root), "--out", str(tmp_path / "out")).exit_code == 0


def test_a_billing_denial_lists_no_clinical_records(make_site, tmp_path):
    from conftest import DENIALS, denial  # noqa: PLC0415

    billing = denial("coding-error", "Coding error", "a coding or billing error", external_review="no",
                     documents=["The itemized bill"])
    root = make_site(site_files(**{"data/denial_types.yaml": [*DENIALS, billing]}))
    out = tmp_path / "out"
    assert run_cli("build", "--site", str(root), "--out", str(out)).exit_code == 0

    def documents(url: str) -> list[str]:
        angle = parse(out / url / "index.html").get_element_by_id("angle")
        return [li.text_content() for li in angle.cssselect("ol > li")]

    assert documents("help/humana/humira/coding-error") == ["The itemized bill"]
    assert documents("help/humana/humira/prior-authorization") == ["The denial notice", "Notes on Humira"]


def test_a_policy_resource_shows_only_for_its_categories_or_procedures(make_site, tmp_path):
    vendor = {"name": "Vendor guidelines", "where": "Imaging and spine.", "url": "https://vendor.example.com/",
              "categories": ["test"], "procedures": ["lumbar-spinal-fusion"]}
    cigna = payer("cigna", "Cigna", ["employer", "marketplace"])
    cigna["policy_resources"] = [*cigna["policy_resources"], vendor]
    root = make_site(site_files(**{"data/payers.yaml": [cigna, *PAYERS[1:]]}))
    out = tmp_path / "out"
    assert run_cli("build", "--site", str(root), "--out", str(out)).exit_code == 0

    def resources(url: str) -> list[str]:
        return [a.text_content() for a in parse(out / url / "index.html").cssselect("#requires ul.resources a")]

    assert "Vendor guidelines" in resources("help/cigna/lumbar-spinal-fusion/prior-authorization")
    assert "Vendor guidelines" in resources("help/cigna/tumor-genomic-profiling/prior-authorization")
    assert "Vendor guidelines" not in resources("help/cigna/humira/prior-authorization")
    assert "Vendor guidelines" not in resources("help/cigna/cimt/prior-authorization")


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.sampled_from(["<", ">", "\n", " ", "\t", "\r", "\u2028", "\xa0", "a", "p", "/"]), max_size=40))
def test_closing_tag_gaps_matches_the_pattern_it_replaces(html):
    assert close_tag_gaps(html) == re.sub(r">[ \t]*\n\s*<", "><", html)


MARKDOWN_PIECES = ["word", "Cigna", "  ", " ", "\t", "\n", "\n\n", "\u00a0", "\u2028", "&", "&amp;", "&#39;", '"', "'",
                   "<", ">", "*", "**", "_", "`", "- ", "1. ", "> ", "# ", "## ", "| a | b |\n|---|---|\n| 1 | 2 |\n",
                   "[link](/help/x/)", "[q](https://example.com/?a=1&b=2 \"t\")", "<https://example.com>", "\\",
                   "  \n", "    code", "***", "é", "😀"]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(MARKDOWN_PIECES), max_size=30))
def test_markdown_minifies_as_htmlmin_would(pieces):
    from denialpages.content import SAFE_OPTIONS, _plain_quotes, _to_html
    from denialpages.minify import minify, minify_markup

    html = _plain_quotes(_to_html("".join(pieces), SAFE_OPTIONS))
    assert minify_markup(html) == minify(html)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from([*MARKDOWN_PIECES, "<b>raw</b>", "[x](javascript:alert(1))"]), max_size=30))
def test_markdown_renders_as_cmarkgfm_does(pieces):
    import cmarkgfm

    from denialpages.cmark import markdown_to_html
    from denialpages.content import SAFE_OPTIONS, UNSAFE_OPTIONS

    text = "".join(pieces)
    for options in (SAFE_OPTIONS, UNSAFE_OPTIONS):
        assert markdown_to_html(text, options, ("table",)) == cmarkgfm.markdown_to_html_with_extensions(
            text, options, ["table"])


def test_markdown_rendering_gives_its_memory_back():
    """cmarkgfm's own wrapper keeps each document tree and HTML string: 3,000 renderings of this
    text grow the process by about 370 MB. Ours must not grow it by 10 MB."""
    from denialpages.cmark import markdown_to_html

    text = "## Appeal route\n\n" + "Ask for the *policy* [by number](/help/x/) and a **date**.\n\n" * 40
    text += "| a | b |\n|---|---|\n" + "| 1 | 2 |\n" * 20

    def resident() -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    markdown_to_html(text, 0, ("table",))
    before = resident()
    for _ in range(3000):
        markdown_to_html(text, 0, ("table",))
    assert resident() - before < 10_000_000


def test_unknown_markdown_extension_is_refused():
    from denialpages.cmark import markdown_to_html

    with pytest.raises(ValueError, match="footnotes-typo"):
        markdown_to_html("text", 0, ("footnotes-typo",))


def test_pages_assembled_from_markers_equal_pages_finished_whole(monkeypatch):
    """Fragments stand in a page as markers while it is minified; every bundled page must come
    out exactly as if each fragment had been pasted in and the whole page minified."""
    from markupsafe import Markup

    from conftest import REPO
    from denialpages.load import load_site
    from denialpages.plan import plan_site
    from denialpages.render import Renderer
    from denialpages.standing import assess

    data = load_site(REPO)
    plan = plan_site(data)
    standing = assess(data, plan)
    assembled = Renderer(REPO, data, plan, standing)
    whole = Renderer(REPO, data, plan, standing)
    monkeypatch.setattr(whole.fragments, "add", lambda key, text: Markup(text))  # each pasted in as it is
    for index in range(len(plan.pages)):
        assert assembled.render_page(index) == whole.render_page(index), plan.pages[index].url
    for hub in plan.hubs:
        assert assembled.render_hub(hub) == whole.render_hub(hub), hub.url
