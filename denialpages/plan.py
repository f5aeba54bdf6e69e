"""Stage 2: which pages exist, where they live, which content they show, what they link to."""

from __future__ import annotations

import bisect
import hashlib
import urllib.parse
import zlib
from array import array
from collections import Counter, defaultdict
from dataclasses import dataclass

from .errors import Location, Problem
from .model import DenialType, Payer, Procedure, Rule, Site, SiteData


@dataclass(frozen=True, slots=True)
class Link:
    """An internal link: the site path and the words to show."""

    url: str
    text: str


@dataclass(frozen=True, slots=True)
class PagePlan:
    """One landing page: its combination, address and content layer."""

    payer: str
    procedure: str
    denial_type: str
    url: str
    path: str
    layer: str
    content_key: tuple[str, ...] | None

    @property
    def key(self) -> tuple[str, str, str]:
        """Return (payer, procedure, denial type)."""
        return (self.payer, self.procedure, self.denial_type)


@dataclass(frozen=True, slots=True)
class HubPlan:
    """A page that lists others: home, or a hub per payer, procedure or denial type."""

    kind: str  # home | payer | procedure | denial_type
    slug: str
    url: str
    path: str


@dataclass(frozen=True, slots=True)
class Exclusion:
    """How many combinations one applicability rule removed."""

    rule: str
    reason: str
    count: int


@dataclass(frozen=True, slots=True)
class Plan:
    """Every page to build (stage 2's output)."""

    pages: tuple[PagePlan, ...]
    hubs: tuple[HubPlan, ...]
    exclusions: tuple[Exclusion, ...]


HUB_PATTERNS = {
    "payer": "/help/{slug}/",
    "procedure": "/procedures/{slug}/",
    "denial_type": "/denials/{slug}/",
}


def plan_site(data: SiteData) -> Plan:
    """Return the Plan: every applicable combination and every hub, in a stable order."""
    pages = []
    excluded: Counter[Rule] = Counter()
    for payer in data.payers:
        for procedure in data.procedures:
            for denial in data.denial_types:
                rule = excluding_rule(payer, procedure, denial)
                if rule is not None:
                    excluded[rule] += 1
                    continue
                pages.append(plan_page(data, payer, procedure, denial))
    exclusions = tuple(
        Exclusion(rule.describe(), rule.reason, count)
        for rule, count in sorted(excluded.items(), key=lambda item: item[0].describe())
    )
    return Plan(tuple(pages), plan_hubs(data), exclusions)


def url_clashes(data: SiteData, plan: Plan) -> list[Problem]:
    """Return a Problem at every record that shares an output file with another page.

    With each placeholder a whole path segment (the default pattern), slugs cannot make two
    pages meet, so only other patterns are checked (the check holds every path in memory).
    """
    segments = data.site.url_pattern.strip("/").split("/")
    if all(s in ("{payer}", "{procedure}", "{denial_type}") or "{" not in s for s in segments) and len(
            [s for s in segments if s.startswith("{")]) == 3:
        return []
    owners: dict[str, list[tuple[tuple[str, ...], str]]] = defaultdict(list)
    for page in plan.pages:
        owners[page.path].append((page.key, page.url))
    for hub in plan.hubs:
        owners[hub.path].append(((hub.kind, hub.slug), hub.url))
    for fixed in ("404.html", "sitemap.xml", "robots.txt", "favicon.ico"):
        owners[fixed].append((("site",), "/" + fixed))
    records = {("payer", p.slug): p.origin for p in data.payers}
    records |= {("procedure", p.slug): p.origin for p in data.procedures}
    problems = []
    for path, keys in owners.items():
        if len(keys) > 1:
            urls = ", ".join(url for _, url in keys)
            for key, _ in keys:
                for origin in _origins(key, records, data):
                    problems.append(Problem(origin, f"{len(keys)} pages would be written to {path} ({urls}); "
                                            "change a slug or the url_pattern"))
    return problems


def _origins(key: tuple[str, ...], records: dict[tuple[str, str], Location], data: SiteData) -> list[Location]:
    if len(key) == 3:
        return [records["payer", key[0]], records["procedure", key[1]]]
    if key[0] in ("payer", "procedure"):
        return [records[key[0], key[1]]]
    return [data.site.origin]


def excluding_rule(payer: Payer, procedure: Procedure, denial: DenialType) -> Rule | None:
    """Return the first rule that removes this combination, or None when it applies."""
    for rule in (*payer.rules, *denial.rules):
        if (rule.kind == "only") != rule.matches(procedure):
            return rule
    return None


def plan_page(data: SiteData, payer: Payer, procedure: Procedure, denial: DenialType) -> PagePlan:
    """Return one page's plan, its content resolved from the most specific layer."""
    url = data.site.url_pattern.format(payer=payer.slug, procedure=procedure.slug, denial_type=denial.slug)
    content_key = resolve_content(data, payer.slug, procedure.slug, denial.slug)
    return PagePlan(
        payer=payer.slug,
        procedure=procedure.slug,
        denial_type=denial.slug,
        url=url,
        path=output_path(url),
        layer=content_key[0] if content_key else "data",
        content_key=content_key,
    )


def resolve_content(data: SiteData, payer: str, procedure: str, denial: str) -> tuple[str, ...] | None:
    """Return the key of the most specific content file for a combination, if any."""
    for key in (("exact", payer, procedure, denial), ("procedure", procedure, denial), ("denial", denial)):
        if key in data.content:
            return key
    return None


def output_path(url: str) -> str:
    """Return the file under out/ that a site path is served from."""
    if url.endswith("/"):
        return url.lstrip("/") + "index.html"
    return url.lstrip("/") + ".html"


def hub_url(site: Site, kind: str, slug: str) -> str:
    """Return a hub's site path, in the slash form of the page pattern."""
    url = HUB_PATTERNS[kind].format(slug=slug)
    return url if site.trailing_slash else url.rstrip("/")


def plan_hubs(data: SiteData) -> tuple[HubPlan, ...]:
    """Return home and one hub per payer, procedure and denial type."""
    hubs = [HubPlan("home", "", "/", "index.html")]
    groups = (("payer", data.payers), ("procedure", data.procedures), ("denial_type", data.denial_types))
    for kind, records in groups:
        for record in records:
            url = hub_url(data.site, kind, record.slug)
            hubs.append(HubPlan(kind, record.slug, url, output_path(url)))
    return tuple(hubs)


def checkout_link(site: Site, page: PagePlan) -> str:
    """Return the checkout URL carrying the promo code and the page's identity."""
    return CheckoutLinks(site).link(page)


class CheckoutLinks:
    """Builds each page's checkout URL: the promo code and the page's identity in the query.

    UTM tags only when the checkout is on another host: on the site's own host they would
    start a new analytics visit and lose the real source.
    """

    def __init__(self, site: Site) -> None:
        self.parts = urllib.parse.urlsplit(site.checkout_url)
        query = [*urllib.parse.parse_qsl(self.parts.query, keep_blank_values=True), ("promo", site.promo_code)]
        self.host = urllib.parse.urlsplit(site.base_url).hostname or ""
        self.tagged = self.parts.hostname != self.host
        self.before = urllib.parse.urlunsplit(self.parts._replace(query=urllib.parse.urlencode(query), fragment=""))
        self.after = f"#{self.parts.fragment}" if self.parts.fragment else ""

    def link(self, page: PagePlan) -> str:
        """Return the checkout URL for one page (slugs need no escaping in a query)."""
        query = f"&payer={page.payer}&procedure={page.procedure}&denial={page.denial_type}"
        if self.tagged:
            query += "&" + urllib.parse.urlencode([
                ("utm_source", self.host), ("utm_medium", "landing-page"), ("utm_campaign", page.denial_type),
                ("utm_content", f"{page.payer}/{page.procedure}")])
        return self.before + query + self.after


def stable_rank(*parts: str) -> int:
    """Return a hash that orders items the same way on every machine and run."""
    return int.from_bytes(hashlib.blake2b("\0".join(parts).encode(), digest_size=8).digest(), "big")


class PageIndex:
    """Finds a page by its combination, and the pages that share two of its three dimensions."""

    def __init__(self, plan: Plan, data: SiteData) -> None:
        self.plan = plan
        self.pages = {page.key: index for index, page in enumerate(plan.pages)}
        category = {p.slug: p.category for p in data.procedures}
        members: dict[tuple[str, ...], list[tuple[int, int]]] = defaultdict(list)
        for index, page in enumerate(plan.pages):
            keys = (("payers", page.procedure, page.denial_type), ("denials", page.payer, page.procedure),
                    ("procedures", page.payer, page.denial_type, category[page.procedure]))
            point = url_point(page.url)
            for key in keys:
                members[key].append((point, index))
        self.circles = {key: Circle(sorted(found)) for key, found in members.items()}
        self.category = category

    def get(self, payer: str, procedure: str, denial: str) -> PagePlan | None:
        """Return the page of a combination, or None when it was excluded."""
        index = self.pages.get((payer, procedure, denial))
        return None if index is None else self.plan.pages[index]

    def sharing_two(self, page: PagePlan) -> tuple[Circle, Circle, Circle]:
        """Return the pages of the same procedure and denial type (other payers), of the same
        payer and procedure (other denial types) and of the same payer, denial type and kind of
        procedure (other procedures), each group with the page itself."""
        circles = self.circles
        return (circles["payers", page.procedure, page.denial_type], circles["denials", page.payer, page.procedure],
                circles["procedures", page.payer, page.denial_type, self.category[page.procedure]])


def url_point(url: str) -> int:
    """Return where a page sits on the circle of its groups: a stable 32-bit hash of its URL."""
    return zlib.crc32(url.encode())


class Circle:
    """A group of pages ordered by url_point, read as a circle."""

    __slots__ = ("points", "indices")

    def __init__(self, members: list[tuple[int, int]]) -> None:
        self.points = array("I", (point for point, _ in members))
        self.indices = array("I", (index for _, index in members))

    def after(self, point: int, count: int, skip: int) -> list[int]:
        """Return the indices of up to `count` pages following `point` on the circle, without `skip`."""
        size = len(self.indices)
        start = bisect.bisect_right(self.points, point)
        found = []
        for step in range(size):
            index = self.indices[(start + step) % size]
            if index != skip:
                found.append(index)
                if len(found) == count:
                    break
        return found


def related_links(index: PageIndex, page: PagePlan, limit: int = 4) -> tuple[PagePlan, ...]:
    """Return pages that share two of this page's three dimensions, a few of each kind: in each
    group, the ones that follow it on a circle ordered by a stable hash of their URLs, so every
    page of a group is linked from as many others as it links to."""
    own, point = index.pages[page.key], url_point(page.url)
    pages = index.plan.pages
    return tuple(pages[i] for circle in index.sharing_two(page) for i in circle.after(point, limit, own))


@dataclass(frozen=True, slots=True)
class Shard:
    """Which slice of the landing pages a build renders: number `index` of `count` (1-based)."""

    index: int = 1
    count: int = 1

    def holds(self, page: PagePlan) -> bool:
        """Return True when this shard renders `page` (by a stable hash of its URL)."""
        return self.count == 1 or stable_rank(page.url) % self.count == self.index - 1
