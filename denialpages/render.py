"""Stage 3: turn each planned page into minified HTML (pure: nothing is written here)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import traceback
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import jinja2
from markupsafe import Markup, escape

from . import pagemeta as meta
from .errors import InputError, Location, Problem
from .minify import finish
from .model import Content, Fact, SiteData
from .plan import (
    HUB_PATTERNS,
    HubPlan,
    Link,
    PageIndex,
    PagePlan,
    Plan,
    CheckoutLinks,
    hub_url,
    output_path,
    related_links,
)
from .standing import Standing

FRAGMENT_BYTES = 8 << 20  # the shared blocks one process keeps: at 50,000 pages they weigh about 30 MB
GOOD_LINKS_KEPT = 65_536  # links already found to resolve (most pages link the same hubs and neighbours)
INTERNAL_LINK = re.compile(r'href="(/[^"]*)"')


@dataclass(frozen=True, slots=True)
class RenderedPage:
    """One finished file: where it goes under out/ and its bytes."""

    path: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Style:
    """The inlined stylesheet and the CSP hash that allows it."""

    css: str
    csp_hash: str

    @property
    def policy(self) -> str:
        """Return the Content-Security-Policy every page carries (meta tag and _headers)."""
        # connect-src 'self' lets crawlers' audit tools fetch /robots.txt; no script can run anyway
        return (f"default-src 'none'; connect-src 'self'; style-src '{self.csp_hash}'; img-src 'self'; "
                "base-uri 'none'; form-action 'none'")


class HubLinks(NamedTuple):
    """Each kind of hub's URL for a slug, as templates call it: `hubs.payer(slug)`."""

    payer: Callable[[str], str]
    procedure: Callable[[str], str]
    denial_type: Callable[[str], str]


class LinkedPage(NamedTuple):
    """A page another page links to: its address and the names its link text is made of."""

    url: str
    procedure: str
    payer: str
    denial: str


class LinkGroup(NamedTuple):
    """A hub's group of links, under a heading that links to the group's own hub."""

    name: str
    url: str
    links: list[Link]


class Fragments:
    """Finished fragments by key, each standing in a page's template output as a marker, so
    that finishing a page (closing tag gaps, requoting attributes) and encoding it cost what its
    own part weighs, not the 40 KB its fragments add.

    A marker begins with '<' when its fragment does and ends with '>' when it does, so the gaps
    on either side close exactly as they would around the fragment itself; a fragment that
    begins or ends with white space is inserted as it is. Control characters never reach a
    template (the loader refuses them), so no text can pass for a marker. The least recently
    used fragments are dropped, between pages, once they weigh more than `budget` bytes.
    """

    def __init__(self, budget: int = FRAGMENT_BYTES) -> None:
        self.budget = budget
        self.markers: OrderedDict[tuple[str, ...], tuple[Markup, int, int]] = OrderedDict()
        self.bodies: dict[int, bytes] = {}
        self.weight = 0
        self.next_number = 0

    def get(self, key: tuple[str, ...]) -> Markup | None:
        """Return the marker of a cached fragment, or None."""
        found = self.markers.get(key)
        if found is None:
            return None
        self.markers.move_to_end(key)
        return found[0]

    def add(self, key: tuple[str, ...], text: str) -> Markup:
        """Keep a finished fragment under `key` and return the marker that stands for it."""
        if not text or text[0].isspace() or text[-1].isspace():
            marker, number = Markup(text), -1
        else:
            number = self.next_number
            self.next_number += 1
            self.bodies[number] = text.encode("utf-8")
            head = "<" if text[0] == "<" else "\x02"
            tail = ">" if text[-1] == ">" else "\x02"
            marker = Markup(f"{head}\x01{number}\x01{tail}")
        self.markers[key] = (marker, number, len(text))
        self.weight += len(text)
        return marker

    def assemble(self, html: str) -> bytes:
        """Return finished output, encoded, with every marker replaced by its fragment."""
        pieces = html.split("\x01")
        if len(pieces) == 1:
            return html.encode("utf-8")
        bodies = self.bodies
        out = [pieces[0][:-1].encode("utf-8")]
        last = len(pieces) - 2
        for at in range(1, len(pieces), 2):
            out.append(bodies[int(pieces[at])])
            text = pieces[at + 1]
            out.append((text[1:] if at == last else text[1:-1]).encode("utf-8"))
        return b"".join(out)

    def trim(self) -> None:
        """Drop the least recently used fragments past the budget (only between pages: a page's
        markers must stay valid while it is assembled)."""
        while self.weight > self.budget and self.markers:
            _, number, weight = self.markers.popitem(last=False)[1]
            self.bodies.pop(number, None)
            self.weight -= weight


class Renderer:
    """Holds what every page shares for one build: the templates, lookups and the style."""

    def __init__(self, root: Path, data: SiteData, plan: Plan, standing: Standing) -> None:
        self.root = root
        self.data = data
        self.plan = plan
        self.standing = standing
        self.env = make_environment(root)
        self.index = PageIndex(plan, data)
        self.members = hub_members(plan)
        self.fixed_targets = {"/", "/404.html", "/favicon.ico", "/sitemap.xml", *(hub.url for hub in plan.hubs)}
        self.page_url = re.compile(re.escape(data.site.url_pattern).replace(
            r"\{payer\}", "(?P<payer>[a-z0-9-]+)").replace(
            r"\{procedure\}", "(?P<procedure>[a-z0-9-]+)").replace(
            r"\{denial_type\}", "(?P<denial>[a-z0-9-]+)"))
        self.style = load_style(root)
        self.price_line = meta.price_line(data.site)
        self.checkout = CheckoutLinks(data.site)
        self.fragments = Fragments()
        self.good_links: set[str] = set()
        self.payers = {p.slug: p for p in data.payers}
        self.hub_links = HubLinks(*(partial(hub_url, data.site, kind) for kind in HubLinks._fields))
        self.procedures = {p.slug: p for p in data.procedures}
        self.denials = {d.slug: d for d in data.denial_types}

    def fragment(self, template: str, key: tuple[str, ...], url: str, context: Callable[[], dict[str, Any]],
                 origin: Location | None = None) -> Markup:
        """Return a block many pages share, rendered, minified and link-checked once per build
        (per worker) for its key, as a marker that Markers.assemble replaces with it.

        `context` makes the template's values (called only when the block is not cached yet);
        `url` names a page showing it, for messages; `origin` is the file its links come from
        (default: the template).
        """
        cache_key = (template, *key)
        found = self.fragments.get(cache_key)
        if found is None:
            text = finish(self.render_text(template, context(), "/".join(key)))
            self.check_links(text, url, origin or Location(f"templates/{template}"))
            found = self.fragments.add(cache_key, text)
        return found

    def verbatim(self, key: str, text: str) -> Markup:
        """Return a marker for text every page carries as it is (the stylesheet), finished once."""
        cache_key = ("", key)
        found = self.fragments.get(cache_key)
        if found is None:
            found = self.fragments.add(cache_key, finish(text))
        return found

    def common(self, url: str) -> dict[str, Any]:
        """Return the values every template sees."""
        site = self.data.site
        return {
            "head": self.fragment("_head.html", (), url, lambda: {"csp": self.style.policy}),
            "style_css": self.verbatim("style", self.style.css),
            "footer": self.fragment("_footer.html", (), url, lambda: {
                "payers": self.data.payers, "denial_types": self.data.denial_types,
                "hubs": self.hub_links, "site": site}),
            "site": site,
            "canonical": site.base_url + url,
            "style": self.style,
            "hubs": self.hub_links,
            "payers": self.data.payers,
            "procedures": self.data.procedures,
            "denial_types": self.data.denial_types,
            "robots": "index,follow",
            "csp": self.style.policy,
            "og_type": "article",
            "price_line": self.price_line,
        }

    def page_context(self, index: int) -> dict[str, Any]:
        """Return a landing page's template values."""
        page = self.plan.pages[index]
        site = self.data.site
        payer = self.payers[page.payer]
        procedure = self.procedures[page.procedure]
        denial = self.denials[page.denial_type]
        content = self.data.content.get(page.content_key) if page.content_key else None
        title = meta.page_title(payer, procedure, denial, content)
        description = meta.page_description(payer, procedure, denial, content)
        crumbs = [
            meta.crumb("Home", "/"),
            meta.crumb(payer.name, self.hub_links.payer(payer.slug)),
            meta.crumb(f"{procedure.name}: {denial.name}", page.url),
        ]
        reviewed = (content.reviewed if content else None) or site.reviewed
        reviewer = (content.reviewer if content else None) or site.reviewer
        ld = meta.web_page_ld(site, page.url, title, description, crumbs, reviewed, reviewer, "MedicalWebPage")
        return {
            **self.common(page.url),
            "fragments": self.page_fragments(page, content),
            "robots": "index,follow" if self.standing.is_indexable(index) else "noindex,follow",
            "title": title,
            "description": description,
            "crumbs": crumbs,
            "ld": json_ld(ld),
            "page": page,
            "payer": payer,
            "procedure": procedure,
            "denial": denial,
            "wording": denial.wording_for(procedure.category),
            "checkout": self.checkout.link(page),
            "related": [self.describe(other) for other in related_links(self.index, page)],
            "reviewed": reviewed,
            "reviewed_text": meta.long_date(reviewed),
            "reviewer": reviewer,
        }

    def page_fragments(self, page: PagePlan, content: Content | None) -> SimpleNamespace:
        """Return the blocks of a landing page that other pages share, each keyed by what it shows."""
        data, url = self.data, page.url
        payer = self.payers[page.payer]
        procedure = self.procedures[page.procedure]
        denial = self.denials[page.denial_type]
        wording = denial.wording_for(procedure.category)
        policy = data.policies.get((payer.slug, procedure.slug))
        plan_types = [data.plan_types[slug] for slug in payer.plan_types]
        is_drug = str(procedure.category == "drug")
        wording_key = (denial.slug, procedure.category if procedure.category in dict(denial.by_category) else "*")
        sources_key = (*(content.key if content else ()), payer.slug, procedure.slug)
        return SimpleNamespace(**{
            "rights": self.fragment("_rights.html", (payer.slug, is_drug), url, lambda: {
                "payer": payer, "plan_types": plan_types, "is_drug": is_drug == "True",
                "plan_notes": dict(payer.plan_notes), "facts": data.facts}),
            "requires": self.fragment("_requires.html", (payer.slug, procedure.slug), url, lambda: {
                "payer": payer, "procedure": procedure, "policy": policy,
                "policy_plan_types": [data.plan_types[slug].name for slug in policy.plan_types] if policy else [],
                "policy_checked": meta.long_date(policy.checked) if policy else ""}),
            "angle": self.fragment("_content.html", content.key, url, lambda: {"content": content}, content.origin)
            if content else self.fragment("_angle_data.html", (procedure.slug, denial.slug), url, lambda: {
                "procedure": procedure, "wording": wording,
                "angle_facts": [data.facts[f] for f in wording.facts],
                "documents": list(denial.documents_for(procedure))}),
            "angle_tail": self.fragment("_angle_tail.html", (denial.slug,), url, lambda: {
                "denial": denial, "external_review_line": meta.EXTERNAL_REVIEW[denial.external_review]}),
            "next": self.fragment("_next.html", (payer.slug, procedure.slug), url, lambda: {
                "payer": payer, "procedure": procedure}),
            "outline": self.fragment("_outline.html", (procedure.slug, denial.slug), url, lambda: {
                "procedure": procedure, "wording": wording, "documents": list(denial.documents_for(procedure)),
                "outline_cites": list(dict.fromkeys(data.facts[f].cite for f in wording.letter_cites()))[:3]}),
            "sources": self.fragment("_sources.html", sources_key, url, lambda: {
                "sources": list(dict.fromkeys((*(content.sources if content else ()),
                                               *(policy.sources if policy else ()), *payer.sources)))},
                content.origin if content else None),
            "cited": self.fragment("_cited.html", (payer.slug, is_drug, *wording_key), url, lambda: {
                "cited": cited_facts(data, plan_types, wording.facts, procedure.category)}),
        })

    def describe(self, page: PagePlan) -> LinkedPage:
        """Return a linked page's address and the names its link text is made of."""
        return LinkedPage(page.url, self.procedures[page.procedure].name, self.payers[page.payer].name,
                          self.denials[page.denial_type].name)

    def hub_context(self, hub: HubPlan) -> dict[str, Any]:
        """Return a hub page's template values."""
        site = self.data.site
        heading, intro, featured, groups = self.hub_contents(hub)
        crumbs = [meta.crumb("Home", "/"), meta.crumb(heading, hub.url)]
        description = intro if len(intro) <= 160 else intro[:157].rsplit(" ", 1)[0] + "…"
        title = f"{heading} | {site.name}"
        return {
            **self.common(hub.url),
            "title": title,
            "description": description,
            "crumbs": crumbs,
            "ld": json_ld(meta.web_page_ld(site, hub.url, title, description, crumbs, kind="CollectionPage")),
            "heading": heading,
            "intro": intro,
            "featured": featured,
            "groups": groups,
        }

    def hub_contents(self, hub: HubPlan) -> tuple[str, str, list[LinkedPage], list[LinkGroup]]:
        """Return a hub's heading, introduction and groups of links."""
        site = self.data.site
        indices = self.members[hub.kind][hub.slug]
        pages = [self.plan.pages[i] for i in indices]
        if hub.kind == "payer":
            payer = self.payers[hub.slug]
            intro = f"{payer.about} Pick the treatment and the reason on your denial notice."
            group_by, name_of = "procedure", lambda s: self.procedures[s].name
            text_of = lambda p: self.denials[p.denial_type].name  # noqa: E731
            heading = f"{payer.name} denials"
        elif hub.kind == "procedure":
            procedure = self.procedures[hub.slug]
            intro = f"{procedure.summary} Pick your insurer and the reason on your denial notice."
            group_by, name_of = "payer", lambda s: self.payers[s].name
            text_of = lambda p: self.denials[p.denial_type].name  # noqa: E731
            heading = f"{procedure.name} denials"
        else:
            denial = self.denials[hub.slug]
            intro = f"{denial.wording.lede} Pick your insurer and the treatment that was denied."
            group_by, name_of = "payer", lambda s: self.payers[s].name
            text_of = lambda p: self.procedures[p.procedure].name  # noqa: E731
            heading = f"{denial.name} denials"
        featured = [self.describe(self.plan.pages[i]) for i in indices if self.standing.is_indexable(i)]
        groups: dict[str, list[Link]] = {}
        for page in pages:
            groups.setdefault(getattr(page, group_by), []).append(Link(page.url, text_of(page)))
        return heading, intro, featured, [
            LinkGroup(name_of(slug), hub_url(site, group_by, slug), links)
            for slug, links in groups.items()
        ]

    def home_context(self) -> dict[str, Any]:
        """Return the home page's template values."""
        site = self.data.site
        title = f"{site.name}: how to appeal a denied health insurance claim"
        description = ("Appeal steps and deadlines by plan type, what each insurer looks for, and the "
                       "records that answer a denial, for each insurer, treatment and denial reason.")
        crumbs = [meta.crumb("Home", "/")]
        ld = meta.web_page_ld(site, "/", title, description, crumbs)
        ld["@graph"].append({"@type": "Organization", "name": site.name, "url": site.base_url + "/"})
        return {**self.common("/"), "title": title, "description": description, "ld": json_ld(ld),
                "og_type": "website"}

    def render_text(self, template: str, context: dict[str, Any], url: str) -> str:
        """Return one template's output, or raise InputError naming the template line."""
        try:
            return self.env.get_template(template).render(context)
        except jinja2.TemplateSyntaxError as error:
            raise InputError([template_syntax_problem(error)]) from None
        except jinja2.TemplateError as error:
            raise InputError([template_runtime_problem(error, url)]) from None

    def render(self, template: str, context: dict[str, Any], url: str, origin: Location | None = None) -> bytes:
        """Return one page, minified, its own links checked (those of its fragments were, once)."""
        text = finish(self.render_text(template, context, url))
        if origin is not None:
            self.check_links(text, url, origin)
        return self.fragments.assemble(text)

    def render_page(self, index: int) -> RenderedPage:
        """Return the landing page at `index` of the plan, rendered; raise InputError if a link leads nowhere."""
        self.fragments.trim()
        page = self.plan.pages[index]
        body = self.render("page.html", self.page_context(index), page.url, Location("templates/page.html"))
        return RenderedPage(page.path, body)

    def render_hub(self, hub: HubPlan) -> RenderedPage:
        """Return home or a hub page, rendered."""
        if hub.kind == "home":
            return RenderedPage(hub.path, self.render("home.html", self.home_context(), hub.url))
        return RenderedPage(hub.path, self.render("hub.html", self.hub_context(hub), hub.url))

    def render_not_found(self) -> RenderedPage:
        """Return the 404 page."""
        title = f"Page not found | {self.data.site.name}"
        description = "This address has no page. Start from your insurer or the reason on your denial notice."
        ld = meta.web_page_ld(self.data.site, "/404.html", title, description, [meta.crumb("Home", "/")])
        context = {**self.common("/404.html"), "title": title, "description": description,
                   "ld": json_ld(ld), "robots": "noindex,follow"}
        return RenderedPage("404.html", self.render("404.html", context, "/404.html"))

    def resolves(self, href: str) -> bool:
        """Return True when a site-relative link points at a page or file this build writes."""
        path = href.split("#", 1)[0].split("?", 1)[0]
        if path in self.fixed_targets:
            return True
        found = self.page_url.fullmatch(path)
        return bool(found and self.index.get(found["payer"], found["procedure"], found["denial"]))

    def check_links(self, html: str, url: str, origin: Location) -> None:
        """Raise InputError naming `origin` for each internal link in `html` (shown at `url`) that leads nowhere."""
        good = self.good_links
        if len(good) > GOOD_LINKS_KEPT:
            good.clear()
        problems = []
        for href in INTERNAL_LINK.findall(html):
            if href in good:
                continue
            if self.resolves(href):
                good.add(href)
            else:
                problems.append(Problem(origin, f"{url} links to {href}, which this build does not write"))
        if problems:
            raise InputError(problems)

    def render_redirect(self, old: str, target: str) -> RenderedPage:
        """Return the page left at an old URL: it sends readers and crawlers to the new one."""
        context = {"site": self.data.site, "style": self.style, "csp": self.style.policy, "target": target}
        return RenderedPage(output_path(old), self.render("redirect.html", context, old))

    def render_all(self) -> Iterator[RenderedPage]:
        """Yield every page of the plan, then the hubs, then the 404 page."""
        for index in range(len(self.plan.pages)):
            yield self.render_page(index)
        for hub in self.plan.hubs:
            yield self.render_hub(hub)
        yield self.render_not_found()


def hub_members(plan: Plan) -> dict[str, dict[str, array]]:
    """Return, per hub kind and slug, the indices of the pages that hub lists."""
    members: dict[str, dict[str, array]] = {kind: {} for kind in HUB_PATTERNS}
    for index, page in enumerate(plan.pages):
        for kind, slug in (("payer", page.payer), ("procedure", page.procedure), ("denial_type", page.denial_type)):
            members[kind].setdefault(slug, array("I")).append(index)
    return members


class MinifiedTemplates(jinja2.FileSystemLoader):
    """Loads templates with the white space between tags turned into Jinja comments.

    The comments drop the white space from the output but keep every line break in the source,
    so error messages still name the template's real line.

    With every text field on one line (fields.py) and Markdown minified once per file
    (content.py), rendered pages come out as htmlmin would leave them, without running it
    on every page; tests check that htmlmin leaves sample pages unchanged.
    """

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        """Return a template's source with the white space htmlmin would drop already gone."""
        source, filename, uptodate = super().get_source(environment, template)
        return BETWEEN_TAGS.sub(lambda gap: "{#" + gap.group(0) + "#}", source), filename, uptodate


BETWEEN_TAGS = re.compile(r"(?:(?<=>)|(?<=%\}))[ \t]*\n\s*(?=<|\{%|\{#)|(?<=%\})\s+(?=\{%)")


def make_environment(root: Path) -> jinja2.Environment:
    """Return the Jinja environment: the site's templates, strict undefined, autoescape on."""
    env = jinja2.Environment(
        loader=MinifiedTemplates(root / "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # one build, one set of templates: no stat() per render to check them
    )
    env.filters["cite"] = cite_title
    return env


def cite_title(text: str, title: str) -> Markup:
    """Return `text`, escaped, with each mention of a document's `title` marked as a <cite>."""
    escaped, quoted = escape(text), escape(title)
    return Markup(escaped.replace(quoted, Markup("<cite>") + quoted + Markup("</cite>")))


def load_style(root: Path) -> Style:
    """Return the site's stylesheet, whitespace-collapsed, with its CSP hash."""
    path = root / "templates" / "style.css"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError([Problem(Location("templates/style.css"), f"cannot be read: {error}")]) from None
    css = "".join(
        part if part.startswith(('"', "'")) else _squeeze_css(part)
        for part in re.split(r"(\"[^\"]*\"|'[^']*')", re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL))
    ).strip()
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    return Style(css, f"sha256-{digest}")


def _squeeze_css(css: str) -> str:
    """Return CSS outside strings with needless white space removed."""
    return re.sub(r"\s*([{}:;,>])\s*", r"\1", re.sub(r"\s+", " ", css)).replace(";}", "}")


def json_ld(value: object) -> str:
    """Return JSON safe inside a <script> element: no '<', '>' or '&' can end or break it."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def cited_facts(data: SiteData, plan_types: list[Any], extra: tuple[str, ...], category: str) -> list[Fact]:
    """Return every fact a page cites, in first-use order, for its sources list."""
    ids: list[str] = []
    for plan_type in plan_types:
        steps = plan_type.drug_steps if category == "drug" and plan_type.drug_steps else plan_type.steps
        for step in steps:
            ids += [f for f in (step.file_within, *step.decided_within, step.expedited) if f]
        ids += plan_type.notes
    ids += extra
    return [data.facts[fact_id] for fact_id in dict.fromkeys(ids)]


def template_syntax_problem(error: jinja2.TemplateSyntaxError) -> Problem:
    """Return a Problem at the template line that does not parse."""
    name = f"templates/{error.name}" if error.name else "templates"
    return Problem(Location(name, error.lineno or 0), f"template does not parse: {error.message}")


def template_runtime_problem(error: Exception, url: str) -> Problem:
    """Return a Problem at the innermost template line that failed, naming the page."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if "/templates/" in f.filename]
    if frames:
        frame = frames[-1]
        path = "templates/" + frame.filename.rsplit("/templates/", 1)[1]
        return Problem(Location(path, frame.lineno or 0), f"while rendering {url}: {error}")
    return Problem(Location("templates"), f"while rendering {url}: {error}")
