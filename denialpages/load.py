"""Stage 1: read data/*.yaml and content/ into SiteData, or every Problem found."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from . import references
from .cache import ContentCache
from .content import load_content
from .errors import InputError, Location, Problem
from .fields import Record, shown
from .model import (
    CATEGORIES,
    PLAN_TYPES,
    Criterion,
    DenialType,
    Event,
    Fact,
    Payer,
    PlanType,
    Policy,
    Price,
    Procedure,
    Resource,
    Rule,
    Site,
    SiteData,
    Source,
    Step,
    Thresholds,
    Wording,
)
from .yamlsrc import YamlList, load_yaml_file

T = TypeVar("T")
INDEXNOW_KEY = re.compile(r"[A-Za-z0-9-]{8,128}")
PROMO_SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def load_site(root: Path, jobs: int = 1, cache: ContentCache | None = None) -> SiteData:
    """Return the validated SiteData of the site folder `root`, or raise InputError.

    `jobs` processes render the content files when there are many; `cache` holds those
    rendered by an earlier build.
    """
    problems: list[Problem] = []
    site = _read_one(root, "data/site.yaml", read_site, problems)
    facts, plan_types = _read_facts(root, problems)
    payers = _read_list(root, "data/payers.yaml", "payer", read_payer, problems)
    procedures = _read_list(root, "data/procedures.yaml", "procedure", read_procedure, problems)
    denials = _read_list(root, "data/denial_types.yaml", "denial type", read_denial_type, problems)
    if site is None:
        raise InputError(problems)
    policies = tuple(policy for path in sorted((root / "data/policies").glob("*.yaml"))
                     for policy in _read_list(root, path.relative_to(root).as_posix(), "policy", read_policy, problems))
    data = SiteData(site, facts, plan_types, payers, procedures, denials)
    problems += references.check_references(data)
    problems += references.check_policies(policies, data)
    content, content_problems = load_content(root, data, jobs, cache)
    problems += content_problems
    if problems:
        raise InputError(problems)
    by_pair = {(p.payer, p.procedure): p for p in policies}
    return SiteData(site, facts, plan_types, payers, procedures, denials, content, by_pair)


def _read_one(
    root: Path, path: str, read: Callable[[Record], T], problems: list[Problem]
) -> T | None:
    raw, found = load_yaml_file(root / path, path) if (root / path).is_file() else (None, [])
    if not (root / path).is_file():
        found = [Problem(Location(path), "missing: every site needs this file")]
    problems += found
    if found:
        return None
    record = Record(raw, path, path.rsplit("/", 1)[-1], problems, 1)
    value = read(record)
    record.finish()
    return value


def _read_list(
    root: Path, path: str, label: str, read: Callable[[Record], T], problems: list[Problem]
) -> tuple[T, ...]:
    if not (root / path).is_file():
        problems.append(Problem(Location(path), "missing: every site needs this file"))
        return ()
    raw, found = load_yaml_file(root / path, path)
    problems += found
    if found:
        return ()
    if not isinstance(raw, YamlList) or not raw:
        problems.append(Problem(Location(path, 1), f"must be a non-empty list of {label} records"))
        return ()
    out = []
    for item, line in zip(raw, raw.lines, strict=True):
        slug = item.get("slug") if isinstance(item, dict) else None
        record = Record(item, path, f"{label} '{shown(slug)}'" if slug else label, problems, line)
        out.append(read(record))
        record.finish()
    return tuple(out)


def _read_facts(root: Path, problems: list[Problem]) -> tuple[dict[str, Fact], dict[str, PlanType]]:
    def read(record: Record) -> tuple[tuple[Fact, ...], tuple[PlanType, ...]]:
        return record.records("facts", read_fact), record.records("plan_types", read_plan_type)

    found = _read_one(root, "data/facts.yaml", read, problems)
    facts, plan_types = found or ((), ())
    return {f.id: f for f in facts}, {p.slug: p for p in plan_types}


def read_site(r: Record) -> Site:
    """Return the Site settings from data/site.yaml."""
    price = r.mapping("price")
    thresholds = r.mapping("quality")
    promo = r.text("promo_code")
    if promo and not set(promo) <= PROMO_SAFE:
        r.fail("promo_code", f"'{promo}' may use only letters, digits and - _ . ~ (it travels in a URL)")
    site = Site(
        name=r.text("name"),
        language=r.text("language", required=False, default="en-US"),
        base_url=r.https_url("base_url").rstrip("/"),
        checkout_url=r.https_url("checkout_url"),
        price=read_price(price) if price else Price(0, 0, "USD"),
        promo_code=promo,
        url_pattern=read_url_pattern(r),
        reviewed=r.date("reviewed") or dt.date(2000, 1, 1),
        reviewer=r.text("reviewer"),
        thresholds=read_thresholds(thresholds) if thresholds else Thresholds(),
        origin=r.origin,
        indexnow_key=read_indexnow_key(r),
    )
    if price is None:
        r.fail(None, "the required field 'price' is missing")
    return site


def read_indexnow_key(r: Record) -> str:
    """Return the optional IndexNow key ('' when absent): 8 to 128 letters, digits and hyphens."""
    key = r.text("indexnow_key", required=False)
    if key and not INDEXNOW_KEY.fullmatch(key):
        r.fail("indexnow_key", f"'{shown(key)}' must be 8 to 128 characters, each a letter, a digit or '-' "
               "(the IndexNow protocol's keys; the build publishes it as {key}.txt)")
        return ""
    return key


def read_url_pattern(r: Record) -> str:
    """Return the page URL pattern; it must name all three slugs and start with '/'."""
    pattern = r.text("url_pattern", required=False, default="/help/{payer}/{procedure}/{denial_type}/")
    names = ("{payer}", "{procedure}", "{denial_type}")
    if not pattern.startswith("/") or not all(pattern.count(n) == 1 for n in names):
        r.fail("url_pattern", "must start with '/' and hold {payer}, {procedure} and {denial_type} once each")
    elif ".." in pattern or "//" in pattern or pattern.endswith(".html"):
        r.fail("url_pattern", "must not contain '..' or '//' or end in .html")
    return pattern


def read_price(r: Record) -> Price:
    """Return the letter's prices."""
    price = Price(r.number("list"), r.number("first_letter"), r.text("currency"))
    r.finish()
    if price.first_letter > price.list:
        r.fail("first_letter", "must not be more than the list price")
    return price


def read_thresholds(r: Record) -> Thresholds:
    """Return the search-standing thresholds."""
    found = Thresholds(
        similarity_max=r.number("similarity_max"),
        distinctive_words_min=int(r.number("distinctive_words_min")),
        shared_block_share=r.number("shared_block_share"),
        distinctive_pages_max=int(r.number("distinctive_pages_max", minimum=1)),
    )
    r.finish()
    return found


def read_fact(r: Record) -> Fact:
    """Return one cited fact."""
    return Fact(r.text("id"), r.text("says"), r.text("cite"), r.https_url("url"), r.date("reviewed"), r.origin)


def read_step(r: Record) -> Step:
    """Return one rung of an appeal ladder."""
    return Step(
        title=r.text("title"),
        who_decides=r.text("who_decides"),
        file_within=r.optional_text("file_within"),
        decided_within=r.texts("decided_within", required=False),
        expedited=r.optional_text("expedited"),
        origin=r.origin,
    )


def read_plan_type(r: Record) -> PlanType:
    """Return a plan type and its appeal ladder."""
    return PlanType(
        slug=r.choice("slug", PLAN_TYPES),
        name=r.text("name"),
        who=r.text("who"),
        notes=r.texts("notes", required=False),
        steps=r.records("steps", read_step),
        drug_steps=r.records("drug_steps", read_step, required=False),
        origin=r.origin,
    )


def read_source(r: Record) -> Source:
    """Return a cited document."""
    return Source(r.text("title"), r.https_url("url"))


def read_rule(owner: str, kind: str, r: Record | None) -> tuple[Rule, ...]:
    """Return an applicability rule (`only` or `exclude`), or nothing when absent."""
    if r is None:
        return ()
    categories = frozenset(r.texts("categories", required=False))
    for bad in sorted(categories - set(CATEGORIES)):
        r.fail("categories", f"'{bad}' is not one of {', '.join(CATEGORIES)}")
    rule = Rule(owner, kind, categories, frozenset(r.texts("procedures", required=False)),
                r.text("reason", required=False), r.origin)
    r.finish()
    if not rule.categories and not rule.procedures:
        r.fail(None, "names no categories and no procedures")
    return (rule,)


def read_payer(r: Record) -> Payer:
    """Return one payer."""
    slug = r.slug()
    notes = r.mapping("plan_notes")
    plan_notes = tuple((k, notes.text(k)) for k in notes.raw) if notes else ()
    if notes:
        for key in notes.raw:
            if key not in PLAN_TYPES:
                notes.fail(key, f"is not one of {', '.join(PLAN_TYPES)}")
    plan_types = r.texts("plan_types")
    for bad in [p for p in plan_types if p not in PLAN_TYPES]:
        r.fail("plan_types", f"'{bad}' is not one of {', '.join(PLAN_TYPES)}")
    return Payer(
        slug=slug,
        name=r.text("name"),
        legal_name=r.text("legal_name", required=False),
        plan_types=plan_types,
        about=r.text("about"),
        history=r.records("history", lambda h: Event(h.date("date"), h.text("event")), required=False),
        policy_resources=r.records("policy_resources", read_resource),
        plan_notes=plan_notes,
        sources=r.records("sources", read_source, required=False),
        rules=read_rule(f"payer '{slug}'", "only", r.mapping("only"))
        + read_rule(f"payer '{slug}'", "exclude", r.mapping("exclude")),
        previous_slugs=r.texts("previous_slugs", required=False),
        origin=r.origin,
    )


def read_resource(r: Record) -> Resource:
    """Return where a payer publishes criteria, optionally only for some categories."""
    categories = frozenset(r.texts("categories", required=False))
    for bad in sorted(categories - set(CATEGORIES)):
        r.fail("categories", f"'{bad}' is not one of {', '.join(CATEGORIES)}")
    return Resource(r.text("name"), r.text("where"), r.https_url("url"), categories,
                    frozenset(r.texts("procedures", required=False)))


def read_procedure(r: Record) -> Procedure:
    """Return one procedure."""
    return Procedure(
        slug=r.slug(),
        name=r.text("name"),
        long_name=r.text("long_name"),
        category=r.choice("category", CATEGORIES),
        summary=r.text("summary"),
        ordered_by=r.text("ordered_by"),
        criteria=r.records("criteria", lambda c: Criterion(c.text("criterion"), c.text("evidence"))),
        documents=r.texts("documents"),
        previous_slugs=r.texts("previous_slugs", required=False),
        origin=r.origin,
    )


def read_policy(r: Record) -> Policy:
    """Return what one payer publishes for one procedure (a record of data/policies/*.yaml)."""
    return Policy(
        payer=r.text("payer"),
        procedure=r.text("procedure"),
        policy=r.text("policy"),
        number=r.text("number", required=False),
        publisher=r.text("publisher"),
        url=r.https_url("url"),
        checked=r.date("checked") or dt.date(2000, 1, 1),
        plan_types=r.texts("plan_types", required=False),
        summary=r.text("summary", paragraphs=True),
        sources=r.records("sources", read_source),
        origin=r.origin,
    )


def read_wording(r: Record, base: Wording | None = None) -> Wording:
    """Return a denial type's wording; in a by_category override, absent fields keep `base`."""
    required = base is None
    fallback = base or Wording("", "", "", (), ())
    facts = r.texts("facts", required=False)
    return Wording(
        lede=r.text("lede", required) or fallback.lede,
        why=r.text("why", required) or fallback.why,
        angle=r.text("angle", required) or fallback.angle,
        documents=r.texts("documents", required) or fallback.documents,
        facts=facts or fallback.facts,
        letter_facts=r.texts("letter_facts", required=False) or (() if facts else fallback.letter_facts),
    )


def read_denial_type(r: Record) -> DenialType:
    """Return one denial type."""
    slug = r.slug()
    wording = read_wording(r)
    overrides = r.mapping("by_category")
    by_category: list[tuple[str, Wording]] = []
    for category in overrides.raw if overrides else ():
        if category not in CATEGORIES:
            overrides.fail(category, f"is not one of {', '.join(CATEGORIES)}")  # type: ignore[union-attr]
        sub = overrides.mapping(category)  # type: ignore[union-attr]
        if sub:
            by_category.append((category, read_wording(sub, wording)))
            sub.finish()
    return DenialType(
        slug=slug,
        name=r.text("name"),
        phrase=r.text("phrase"),
        wording=wording,
        by_category=tuple(by_category),
        mistakes=r.texts("mistakes"),
        expedited=r.text("expedited"),
        external_review=r.choice("external_review", ("yes", "usually-no", "no")),
        rules=read_rule(f"denial type '{slug}'", "only", r.mapping("only"))
        + read_rule(f"denial type '{slug}'", "exclude", r.mapping("exclude")),
        previous_slugs=r.texts("previous_slugs", required=False),
        origin=r.origin,
    )

