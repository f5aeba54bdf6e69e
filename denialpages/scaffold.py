"""`new`: a hand-written content file for one combination, pre-filled from the data.

The file passes `check` as written: front matter the loader accepts (the site's review date and
reviewer, never today's date, so the same data always scaffolds the same file), the four
headings in order, a real numbered list and a real table. Each section opens with one italic
TODO line saying what to write; data text is escaped so it stays text in Markdown.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click
import yaml

from .content import SECTIONS
from .errors import InputError, Location, Problem
from .load import load_site
from .model import DenialType, Payer, Procedure, SiteData
from .plan import excluding_rule, plan_site

MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|#])")
PREVIEW_BASE = "http://127.0.0.1:8000"  # `serve`'s default address
TABLE_HEAD = ("What the reviewer looks for", "What shows it", "Where to find it")


@dataclass(frozen=True, slots=True)
class Scaffold:
    """A written content file: its site-relative path, its page's public and local preview URLs."""

    path: str
    url: str
    preview_url: str


def markdown_text(text: str) -> str:
    """Return data text escaped so Markdown shows it as written (and the raw-HTML check passes)."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split())).replace("<", "&lt;")


def find_record(records: Sequence[Payer | Procedure | DenialType], slug: str, label: str, path: str,
                problems: list[Problem]) -> Payer | Procedure | DenialType | None:
    """Return the record with `slug`, or None after adding a problem naming the nearest slug."""
    found = next((record for record in records if record.slug == slug), None)
    if found is None:
        near = difflib.get_close_matches(slug, [record.slug for record in records], n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        problems.append(Problem(Location(path), f"no {label} '{slug}'{hint}"))
    return found


def find_combination(data: SiteData, payer: str, procedure: str, denial: str
                     ) -> tuple[Payer, Procedure, DenialType]:
    """Return the three records of a combination that has a page, or raise InputError."""
    problems: list[Problem] = []
    records = (
        find_record(data.payers, payer, "payer", "data/payers.yaml", problems),
        find_record(data.procedures, procedure, "procedure", "data/procedures.yaml", problems),
        find_record(data.denial_types, denial, "denial type", "data/denial_types.yaml", problems),
    )
    if problems:
        raise InputError(problems)
    found_payer, found_procedure, found_denial = records
    assert isinstance(found_payer, Payer) and isinstance(found_procedure, Procedure)
    assert isinstance(found_denial, DenialType)
    rule = excluding_rule(found_payer, found_procedure, found_denial)
    if rule is not None:
        message = f"{payer} x {procedure} x {denial} has no page: {rule.describe()} excludes it"
        raise InputError([Problem(rule.origin, message + ", so no page would show this file")])
    return found_payer, found_procedure, found_denial


def front_matter(data: SiteData, payer: Payer, procedure: Procedure, denial: DenialType) -> str:
    """Return the YAML front matter: a draft description, the review fields and the payer's sources."""
    description = (f"{payer.name} denied {procedure.name} for {denial.phrase}? What {payer.name} looks for, "
                   f"the appeal route and the records that answer it.")
    resources = [r for r in payer.policy_resources if r.applies_to(procedure)]
    fields = {
        "description": description,
        "reviewed": data.site.reviewed,
        "reviewer": data.site.reviewer,
        "sources": [{"title": r.name, "url": r.url} for r in resources or payer.policy_resources],
    }
    return str(yaml.safe_dump(fields, sort_keys=False, allow_unicode=True, width=10_000))


def scaffold_text(data: SiteData, payer: Payer, procedure: Procedure, denial: DenialType) -> str:
    """Return the whole content file for one combination."""
    who, what = markdown_text(payer.name), markdown_text(procedure.name)
    phrase = markdown_text(denial.phrase)
    documents = denial.documents_for(procedure)
    prompts = (
        f"TODO: say why {who} denies {what} for {phrase}: the policy it applies and what its notice cites.",
        f"TODO: say how to appeal this at {who}, step by step, without deadlines (the page shows them).",
        f"TODO: order these as the reviewer needs them, cut what does not apply, add what {who} asks for.",
        "TODO: check each row against the payer's policy and fill in where each record is found.",
    )
    rows = [f"| {markdown_text(c.criterion)} | {markdown_text(c.evidence)} | TODO |"
            for c in procedure.criteria]
    bodies: tuple[list[str], ...] = (
        [],
        [],
        [f"{number}. {markdown_text(document)}" for number, document in enumerate(documents, start=1)],
        ["| " + " | ".join(TABLE_HEAD) + " |", "|---|---|---|", *rows],
    )
    lines = ["---", front_matter(data, payer, procedure, denial).rstrip("\n"), "---"]
    for heading, prompt, body in zip(SECTIONS, prompts, bodies, strict=True):
        lines += ["", f"## {heading}", "", f"*{prompt}*"]
        lines += ["", *body] if body else []
    return "\n".join(lines) + "\n"


def write_scaffold(root: Path, payer: str, procedure: str, denial: str, force: bool) -> Scaffold:
    """Write content/PAYER/PROCEDURE/DENIAL.md for a combination; refuse to overwrite unless forced."""
    data = load_site(root)
    records = find_combination(data, payer, procedure, denial)
    path = f"content/{payer}/{procedure}/{denial}.md"
    target = root / path
    if target.exists() and not force:
        raise click.ClickException(f"{path} already exists; pass --force to replace it")
    page = next(p for p in plan_site(data).pages if p.key == (payer, procedure, denial))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(scaffold_text(data, *records), encoding="utf-8")
    return Scaffold(path, data.site.base_url + page.url, PREVIEW_BASE + page.url)
