"""Site-wide files: sitemaps, robots.txt, favicon, redirect pages, _headers and _redirects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

from .hosting import hosting_files
from .indexnow import key_file_name
from .ledger import Ledger
from .model import Site
from .render import RenderedPage, Renderer

NAMESPACE = "http://www.sitemaps.org/schemas/sitemap/0.9"
MAX_URLS = 50_000  # the sitemap protocol's limit per file
MAX_BYTES = 50 * 1024 * 1024
GONE = 410


def sitemap_groups(renderer: Renderer, ledger: Ledger) -> dict[str, list[tuple[str, str]]]:
    """Return the indexable (URL, lastmod) pairs grouped by child sitemap: 'site', then each payer."""
    site, plan, standing = renderer.data.site, renderer.plan, renderer.standing
    groups: dict[str, list[tuple[str, str]]] = {"site": [(site.base_url + hub.url, "") for hub in plan.hubs]}
    for index, page in enumerate(plan.pages):
        if standing.is_indexable(index):
            groups.setdefault(page.payer, []).append((site.base_url + page.url, ledger.lastmod(page.url)))
    return groups


def render_urlset(urls: list[tuple[str, str]]) -> bytes:
    """Return a <urlset> sitemap of (URL, lastmod) pairs."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f'<urlset xmlns="{NAMESPACE}">']
    for url, lastmod in urls:
        when = f"<lastmod>{lastmod}</lastmod>" if lastmod else ""
        lines.append(f"<url><loc>{escape(url)}</loc>{when}</url>")
    lines.append("</urlset>")
    return ("\n".join(lines) + "\n").encode("utf-8")


def render_index(site: Site, children: list[str]) -> bytes:
    """Return a <sitemapindex> naming child sitemaps by their paths under out/."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f'<sitemapindex xmlns="{NAMESPACE}">']
    lines += [f"<sitemap><loc>{escape(site.base_url + '/' + child)}</loc></sitemap>" for child in children]
    lines.append("</sitemapindex>")
    return ("\n".join(lines) + "\n").encode("utf-8")


def sitemaps(site: Site, groups: dict[str, list[tuple[str, str]]], max_urls: int = MAX_URLS) -> list[RenderedPage]:
    """Return sitemap.xml alone, or, past the protocol's limits, an index of one child per payer."""
    every = [pair for urls in groups.values() for pair in urls]
    single = render_urlset(every)
    if len(every) <= max_urls and len(single) <= MAX_BYTES:
        return [RenderedPage("sitemap.xml", single)]
    children = []
    for name, urls in groups.items():
        for part, start in enumerate(range(0, len(urls), max_urls), start=1):
            path = f"sitemaps/{name}.xml" if start == 0 else f"sitemaps/{name}-{part}.xml"
            children.append(RenderedPage(path, render_urlset(urls[start : start + max_urls])))
    return [RenderedPage("sitemap.xml", render_index(site, [c.path for c in children])), *children]


def render_robots(site: Site) -> bytes:
    """Return robots.txt: everything may be crawled; the sitemap is named."""
    return f"User-agent: *\nAllow: /\n\nSitemap: {site.base_url}/sitemap.xml\n".encode()


def site_files(root: Path, renderer: Renderer, ledger: Ledger) -> Iterator[RenderedPage]:
    """Yield the files beside the pages: sitemaps, robots.txt, favicon, redirects, host rules."""
    site = renderer.data.site
    yield from sitemaps(site, sitemap_groups(renderer, ledger))
    yield RenderedPage("robots.txt", render_robots(site))
    yield RenderedPage("favicon.ico", (root / "templates" / "favicon.ico").read_bytes())
    yield from key_files(site)
    for old, target in ledger.redirects:
        yield renderer.render_redirect(old, target)
    rules = [(old, target, 301) for old, target in ledger.redirects]
    rules += [(url, "/404.html", GONE) for url in ledger.removed]
    html_urls = (page.url for page in (*renderer.plan.pages, *renderer.plan.hubs))  # cache rules by folder
    yield from hosting_files(renderer.style.policy, html_urls, rules)


def key_files(site: Site) -> list[RenderedPage]:
    """Return IndexNow's key file for out/ (its whole content is the key), or nothing without a key."""
    return [RenderedPage(key_file_name(site.indexnow_key), site.indexnow_key.encode("ascii"))] if site.indexnow_key else []
