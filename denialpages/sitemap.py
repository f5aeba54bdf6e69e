"""Site-wide files: sitemap.xml, robots.txt and the favicon (pure: they return bytes)."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

from .model import Site
from .plan import Plan
from .render import RenderedPage, Renderer
from .standing import Standing


SITE_FILES = ("sitemap.xml", "robots.txt", "favicon.ico")


def sitemap_urls(site: Site, plan: Plan, standing: Standing) -> list[str]:
    """Return every indexable canonical URL: home, hubs, then indexable landing pages."""
    pages = [site.base_url + page.url for i, page in enumerate(plan.pages) if standing.is_indexable(i)]
    return [site.base_url + hub.url for hub in plan.hubs] + pages


def render_sitemap(urls: list[str]) -> bytes:
    """Return a sitemap.xml listing `urls`."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">']
    lines += [f"<url><loc>{escape(url)}</loc></url>" for url in urls]
    lines.append("</urlset>")
    return ("\n".join(lines) + "\n").encode("utf-8")


def render_robots(site: Site) -> bytes:
    """Return robots.txt: everything may be crawled; the sitemap is named."""
    return f"User-agent: *\nAllow: /\n\nSitemap: {site.base_url}/sitemap.xml\n".encode()


def site_files(root: Path, renderer: Renderer) -> list[RenderedPage]:
    """Return the files beside the pages: sitemap, robots.txt, favicon."""
    site, plan = renderer.data.site, renderer.plan
    favicon = (root / "templates" / "favicon.ico").read_bytes()
    return [
        RenderedPage("sitemap.xml", render_sitemap(sitemap_urls(site, plan, renderer.standing))),
        RenderedPage("robots.txt", render_robots(site)),
        RenderedPage("favicon.ico", favicon),
    ]
