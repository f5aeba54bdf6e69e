"""The URL ledger: every URL ever published, when its content last changed, and where it went.

It lives in `ledger/urls.tsv` in the site folder and is committed with the site, so `lastmod`
is the same on every machine and after any number of builds: a page's date moves only when the
hash of what it shows changes (its payer, procedure and denial-type records, its content file,
the facts and prices; not templates or code). A URL that leaves the plan must be redirected
(`previous_slugs` on its record) or listed in `data/removed.yaml`; otherwise the build stops.
`SOURCE_DATE_EPOCH` sets the date a build records (reproducible builds); else today (UTC).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import Location, Problem
from .fields import Record
from .manifest import digest, record_digest
from .model import SiteData
from .plan import Plan, hub_url
from .yamlsrc import YamlList, load_yaml_file

LEDGER = "ledger/urls.tsv"
REMOVED = "data/removed.yaml"
HEADER = "url\tlastmod\tcontent_hash\tstatus\ttarget"


@dataclass(frozen=True, slots=True)
class Entry:
    """One URL ever published."""

    url: str
    lastmod: str
    content_hash: str
    status: str  # live | redirect | removed
    target: str


@dataclass(frozen=True, slots=True)
class Ledger:
    """The ledger after this build: every entry, and the redirects and removals to publish."""

    entries: dict[str, Entry]
    redirects: tuple[tuple[str, str], ...]
    removed: tuple[str, ...]

    def lastmod(self, url: str) -> str:
        """Return the date a live URL's content last changed."""
        return self.entries[url].lastmod


def build_date() -> str:
    """Return the date this build records: SOURCE_DATE_EPOCH's, or today's (UTC)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = dt.datetime.fromtimestamp(int(epoch), dt.UTC) if epoch and epoch.isdigit() else dt.datetime.now(dt.UTC)
    return moment.date().isoformat()


def content_hashes(data: SiteData, plan: Plan) -> list[str]:
    """Return, per page, a hash of what it shows (records, content, facts, prices)."""
    shared = digest(*(record_digest(f) for f in sorted(data.facts.values(), key=lambda f: f.id)),
                    repr(data.site.price), data.site.promo_code)
    records = {("payer", p.slug): record_digest(p) for p in data.payers}
    records |= {("procedure", p.slug): record_digest(p) for p in data.procedures}
    records |= {("denial", d.slug): record_digest(d) for d in data.denial_types}
    records |= {("policy", *pair): record_digest(p) for pair, p in data.policies.items()}
    return [
        digest(shared, records["payer", page.payer], records["procedure", page.procedure],
               records["denial", page.denial_type],
               data.content[page.content_key].digest if page.content_key else "",
               records.get(("policy", page.payer, page.procedure), ""))
        for page in plan.pages
    ]


def read_ledger(root: Path) -> tuple[dict[str, Entry], list[Problem]]:
    """Return the committed ledger's entries, or the problems that stop it being read."""
    path = root / LEDGER
    if not path.is_file():
        return {}, []
    entries, problems = {}, []
    repeated: dict[str, str] = {}  # dates and statuses recur on thousands of lines: keep one copy of each
    with path.open(encoding="utf-8", newline="") as lines:
        for number, line in enumerate(lines, start=1):
            read_ledger_line(line.rstrip("\r\n"), number, entries, repeated, problems)
    return entries, problems


def read_ledger_line(line: str, number: int, entries: dict[str, Entry], repeated: dict[str, str],
                     problems: list[Problem]) -> None:
    """Add one line of the ledger file to `entries`, or a Problem when it is not a ledger line."""
    if number == 1 and line == HEADER:
        return
    fields = line.split("\t")
    if len(fields) != 5 or fields[3] not in ("live", "redirect", "removed"):
        problems.append(Problem(Location(LEDGER, number), "not a ledger line (url, lastmod, hash, status, target)"))
        return
    url, lastmod, content_hash, status, target = fields
    entries[url] = Entry(url, repeated.setdefault(lastmod, lastmod), content_hash,
                         repeated.setdefault(status, status), target)


def read_removed(root: Path) -> tuple[dict[str, str], list[Problem]]:
    """Return the URLs the marketer retired on purpose (data/removed.yaml), with reasons."""
    if not (root / REMOVED).is_file():
        return {}, []
    raw, problems = load_yaml_file(root / REMOVED, REMOVED)
    if problems or raw is None:
        return {}, problems
    if not isinstance(raw, YamlList):
        return {}, [Problem(Location(REMOVED, 1), "must be a list of {url, reason}")]
    removed = {}
    for item, line in zip(raw, raw.lines, strict=True):
        record = Record(item, REMOVED, "removed URL", problems, line)
        removed[record.text("url")] = record.text("reason")
        record.finish()
    return removed, problems


def moved_urls(data: SiteData, plan: Plan) -> dict[str, str]:
    """Return {old URL: new URL} for every page and hub whose record lists previous slugs."""
    payers = {p.slug: (p.slug, *p.previous_slugs) for p in data.payers}
    procedures = {p.slug: (p.slug, *p.previous_slugs) for p in data.procedures}
    denials = {d.slug: (d.slug, *d.previous_slugs) for d in data.denial_types}
    moved: dict[str, str] = {}
    for page in plan.pages:
        names = itertools.product(payers[page.payer], procedures[page.procedure], denials[page.denial_type])
        for payer, procedure, denial in names:
            old = data.site.url_pattern.format(payer=payer, procedure=procedure, denial_type=denial)
            if old != page.url:
                moved[old] = page.url
    for kind, table in (("payer", payers), ("procedure", procedures), ("denial_type", denials)):
        for slug, names_of in table.items():
            for old in names_of[1:]:
                moved[hub_url(data.site, kind, old)] = hub_url(data.site, kind, slug)
    return moved


def update_ledger(root: Path, data: SiteData, plan: Plan) -> tuple[Ledger, list[Problem]]:
    """Return the ledger after this build, and a Problem for each URL that would vanish."""
    known, problems = read_ledger(root)
    removed_on_purpose, found = read_removed(root)
    problems += found
    today = build_date()
    entries: dict[str, Entry] = {}
    for page, content_hash in zip(plan.pages, content_hashes(data, plan), strict=True):
        old = known.get(page.url)
        same = old is not None and old.status == "live" and old.content_hash == content_hash
        entries[page.url] = old if same and old else Entry(page.url, today, content_hash, "live", "")
    moved = moved_urls(data, plan)
    for url, target in moved.items():
        if url not in entries:
            entries[url] = Entry(url, today, "", "redirect", target)
    for url, old in known.items():
        if url in entries:
            continue
        if url in removed_on_purpose:
            entries[url] = Entry(url, old.lastmod, old.content_hash, "removed", "")
        else:
            problems.append(Problem(Location(LEDGER), f"{url} was published and would disappear: add its old slug to "
                                    f"previous_slugs to redirect it, or list it in {REMOVED} to retire it"))
    redirects = tuple(sorted((e.url, e.target) for e in entries.values() if e.status == "redirect"))
    gone = tuple(sorted(e.url for e in entries.values() if e.status == "removed"))
    return Ledger(entries, redirects, gone), problems


def write_ledger(root: Path, ledger: Ledger) -> None:
    """Save the ledger into the site folder when it changed (commit it with the site)."""
    text = ledger_text(ledger)
    path = root / LEDGER
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = path.with_name(path.name + ".new")
    fresh.write_text(text, encoding="utf-8")
    fresh.replace(path)


def ledger_text(ledger: Ledger) -> str:
    """Return the ledger file's text: a header, then a line per URL in URL order."""
    lines = ("\t".join((e.url, e.lastmod, e.content_hash, e.status, e.target))
             for e in sorted(ledger.entries.values(), key=lambda e: e.url))
    return "\n".join([HEADER, *lines]) + "\n"
