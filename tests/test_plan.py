"""Stage 2: which combinations exist, their URLs, content layers and checkout links."""

from __future__ import annotations

import dataclasses
import urllib.parse

from conftest import SITE, site_files
from denialpages.load import load_site
from denialpages.plan import PageIndex, checkout_link, output_path, plan_site, related_links


def test_exclusion_rules_remove_combinations_and_are_counted(make_site):
    plan = plan_site(load_site(make_site()))
    keys = {page.key for page in plan.pages}
    assert ("cigna", "humira", "non-formulary") in keys
    assert ("cigna", "cimt", "non-formulary") not in keys
    assert ("cigna", "tumor-genomic-profiling", "step-therapy") not in keys
    counts = {e.rule: e.count for e in plan.exclusions}
    # 2 payers x 3 non-drug procedures; 2 payers x 1 test
    assert counts == {"denial type 'non-formulary' only: drug": 6, "denial type 'step-therapy' exclude: test": 2}
    assert len(plan.pages) == 2 * 4 * 3 - 8


def test_url_pattern_with_and_without_trailing_slash(make_site):
    assert output_path("/help/a/b/c/") == "help/a/b/c/index.html"
    assert output_path("/help/a/b/c") == "help/a/b/c.html"
    root = make_site(site_files(**{"data/site.yaml": {**SITE, "url_pattern": "/help/{payer}/{procedure}/{denial_type}"}}))
    plan = plan_site(load_site(root))
    page = next(p for p in plan.pages if p.key == ("cigna", "cimt", "prior-authorization"))
    assert (page.url, page.path) == ("/help/cigna/cimt/prior-authorization", "help/cigna/cimt/prior-authorization.html")
    assert {h.url for h in plan.hubs if h.kind == "payer"} == {"/help/cigna", "/help/humana"}


def test_content_resolves_from_the_most_specific_layer(make_site):
    files = site_files(**{
        "content/_procedure/cimt/step-therapy.md": "## Why it was denied\na\n## Appeal route\nb\n"
                                                    "## Documents to gather\n1. c\n## Criteria mapping\nd\n",
        "content/_denial/step-therapy.md": "## Why it was denied\na\n## Appeal route\nb\n"
                                          "## Documents to gather\n1. c\n## Criteria mapping\nd\n",
    })
    plan = plan_site(load_site(make_site(files)))
    layer = {p.key: p.layer for p in plan.pages}
    assert layer[("cigna", "cimt", "prior-authorization")] == "exact"
    assert layer[("humana", "cimt", "step-therapy")] == "procedure"
    assert layer[("humana", "humira", "step-therapy")] == "denial"
    assert layer[("humana", "humira", "prior-authorization")] == "data"


def test_checkout_on_own_host_carries_promo_and_identity_without_utm(make_site):
    data = load_site(make_site())
    page = plan_site(data).pages[0]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(checkout_link(data.site, page)).query))
    assert query == {"promo": "SEO25", "payer": page.payer, "procedure": page.procedure, "denial": page.denial_type}


def test_checkout_on_another_host_adds_utm_and_keeps_its_own_query(make_site):
    data = load_site(make_site())
    site = dataclasses.replace(data.site, checkout_url="https://pay.example.net/start?lang=en")
    page = plan_site(data).pages[0]
    link = urllib.parse.urlsplit(checkout_link(site, page))
    query = dict(urllib.parse.parse_qsl(link.query))
    assert link.hostname == "pay.example.net"
    assert query["lang"] == "en" and query["promo"] == "SEO25"
    assert query["utm_source"] == "denialhelp.com" and query["utm_campaign"] == page.denial_type


def test_related_links_share_two_dimensions_and_exclude_the_page(make_site):
    data = load_site(make_site())
    plan = plan_site(data)
    page = next(p for p in plan.pages if p.key == ("cigna", "lumbar-spinal-fusion", "prior-authorization"))
    related = related_links(PageIndex(plan, data), page)
    assert page not in related
    for other in related:
        shared = sum(a == b for a, b in zip(other.key, page.key, strict=True))
        assert shared == 2
    assert ("humana", "lumbar-spinal-fusion", "prior-authorization") in {r.key for r in related}


def test_checkout_link_keeps_the_checkout_urls_fragment_after_the_query(make_site):
    data = load_site(make_site())
    site = dataclasses.replace(data.site, checkout_url=data.site.base_url + "/checkout?step=1#letter")
    page = plan_site(data).pages[0]
    link = urllib.parse.urlsplit(checkout_link(site, page))
    assert link.fragment == "letter"
    assert urllib.parse.parse_qsl(link.query) == [("step", "1"), ("promo", "SEO25"), ("payer", page.payer),
                                                  ("procedure", page.procedure), ("denial", page.denial_type)]
