"""Frozen records that flow through the pipeline: loaded data, the plan, rendered pages."""

from __future__ import annotations

import datetime as dt
import marshal
import zlib
from dataclasses import dataclass, field

from .errors import Location

CATEGORIES = ("surgery", "drug", "therapy", "test", "imaging", "device")
PLAN_TYPES = ("employer", "marketplace", "medicare-advantage", "medicaid")
LAYERS = ("exact", "procedure", "denial", "data")


@dataclass(frozen=True, slots=True)
class Source:
    """A document a page cites: its title and address."""

    title: str
    url: str


@dataclass(frozen=True, slots=True)
class Price:
    """The letter's prices, in whole currency units."""

    list: float
    first_letter: float
    currency: str


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Search-standing limits (SPEC §7)."""

    similarity_max: float = 0.5
    distinctive_words_min: int = 150
    shared_block_share: float = 0.05
    distinctive_pages_max: int = 10


@dataclass(frozen=True, slots=True)
class Site:
    """Site-wide settings from data/site.yaml."""

    name: str
    language: str
    base_url: str
    checkout_url: str
    price: Price
    promo_code: str
    url_pattern: str
    reviewed: dt.date
    reviewer: str
    thresholds: Thresholds
    origin: Location
    indexnow_key: str = ""  # optional; the build publishes it as out/{key}.txt

    @property
    def trailing_slash(self) -> bool:
        """True when pages live at `.../slug/` (index.html), False for `.../slug` (slug.html)."""
        return self.url_pattern.endswith("/")


@dataclass(frozen=True, slots=True)
class Fact:
    """One cited statement of law: what it says, the rule, and the rule's official text."""

    id: str
    says: str
    cite: str
    url: str
    reviewed: dt.date
    origin: Location


@dataclass(frozen=True, slots=True)
class Step:
    """One rung of an appeal ladder; deadline fields hold fact ids."""

    title: str
    who_decides: str
    file_within: str | None
    decided_within: tuple[str, ...]
    expedited: str | None
    origin: Location


@dataclass(frozen=True, slots=True)
class PlanType:
    """A kind of plan and its appeal ladder (a separate one for drugs where the law differs)."""

    slug: str
    name: str
    who: str
    notes: tuple[str, ...]
    steps: tuple[Step, ...]
    drug_steps: tuple[Step, ...]
    origin: Location


@dataclass(frozen=True, slots=True)
class Rule:
    """Which procedures a payer or denial type applies to (only) or never applies to (exclude)."""

    owner: str
    kind: str  # "only" | "exclude"
    categories: frozenset[str]
    procedures: frozenset[str]
    reason: str
    origin: Location

    def matches(self, procedure: Procedure) -> bool:
        """Return True when the rule names this procedure or its category."""
        return procedure.slug in self.procedures or procedure.category in self.categories

    def describe(self) -> str:
        """Return the rule in words, for the build summary and the report."""
        named = sorted(self.categories) + sorted(self.procedures)
        return f"{self.owner} {self.kind}: {', '.join(named)}"


@dataclass(frozen=True, slots=True)
class Event:
    """A dated change in what a payer sells."""

    date: dt.date
    event: str


@dataclass(frozen=True, slots=True)
class Resource:
    """Where a payer publishes its coverage criteria."""

    name: str
    where: str
    url: str
    categories: frozenset[str]  # with procedures empty too: shown for every procedure
    procedures: frozenset[str] = frozenset()

    def applies_to(self, procedure: Procedure) -> bool:
        """Return True when this resource is worth showing for a procedure (by category or by slug)."""
        if not self.categories and not self.procedures:
            return True
        return procedure.category in self.categories or procedure.slug in self.procedures


@dataclass(frozen=True, slots=True)
class Payer:
    """An insurer and the lines of business it sells today."""

    slug: str
    name: str
    legal_name: str
    plan_types: tuple[str, ...]
    about: str
    history: tuple[Event, ...]
    policy_resources: tuple[Resource, ...]
    plan_notes: tuple[tuple[str, str], ...]
    sources: tuple[Source, ...]
    rules: tuple[Rule, ...]
    previous_slugs: tuple[str, ...]
    origin: Location


@dataclass(frozen=True, slots=True)
class Policy:
    """What one payer publishes for one procedure: a named policy, where it is, and what it asks."""

    payer: str
    procedure: str
    policy: str
    number: str
    publisher: str
    url: str
    checked: dt.date
    plan_types: tuple[str, ...]  # empty: the source does not say which of the payer's plan types
    summary: str
    sources: tuple[Source, ...]
    origin: Location


@dataclass(frozen=True, slots=True)
class Criterion:
    """What payers commonly require for a procedure, and the record that proves it."""

    criterion: str
    evidence: str


@dataclass(frozen=True, slots=True)
class Procedure:
    """A treatment, drug, test or device that gets denied."""

    slug: str
    name: str
    long_name: str
    category: str
    summary: str
    ordered_by: str
    criteria: tuple[Criterion, ...]
    documents: tuple[str, ...]
    previous_slugs: tuple[str, ...]
    origin: Location


@dataclass(frozen=True, slots=True)
class Wording:
    """The category-dependent text of a denial type."""

    lede: str
    why: str
    angle: str
    documents: tuple[str, ...]
    facts: tuple[str, ...]
    letter_facts: tuple[str, ...] = ()  # the rules the appeal letter invokes; empty: all of `facts`

    def letter_cites(self) -> tuple[str, ...]:
        """Return the ids of the facts an appeal letter for this wording would rely on."""
        return self.letter_facts or self.facts


@dataclass(frozen=True, slots=True)
class DenialType:
    """A reason a claim is denied, and how an appeal answers it."""

    slug: str
    name: str
    phrase: str
    wording: Wording
    by_category: tuple[tuple[str, Wording], ...]
    mistakes: tuple[str, ...]
    expedited: str
    external_review: str
    rules: tuple[Rule, ...]
    previous_slugs: tuple[str, ...]
    origin: Location

    @property
    def name_in_text(self) -> str:
        """Return the name as it reads inside a sentence: lower-cased, unless it holds capitals
        after its first letter (an acronym or a proper name stays as written)."""
        return self.name.lower() if self.name[1:].islower() else self.name

    def wording_for(self, category: str) -> Wording:
        """Return the wording for a procedure category, or the general wording."""
        return dict(self.by_category).get(category, self.wording)

    @property
    def needs_clinical_records(self) -> bool:
        """Return False for a billing matter (one no external reviewer hears): records do not answer it."""
        return self.external_review != "no"

    def documents_for(self, procedure: Procedure) -> tuple[str, ...]:
        """Return what to gather: this reason's documents, then the procedure's clinical records if they help."""
        own = self.wording_for(procedure.category).documents
        clinical = procedure.documents if self.needs_clinical_records else ()
        return tuple(dict.fromkeys((*own, *clinical)))


@dataclass(frozen=True, slots=True)
class Content:
    """A hand-written Markdown file, rendered, with its front matter."""

    layer: str
    key: tuple[str, ...]
    title: str | None
    description: str | None
    reviewed: dt.date | None
    reviewer: str | None
    sources: tuple[Source, ...]
    packed_sections: bytes  # pack_sections of the (heading, minified HTML) pairs
    digest: str
    origin: Location

    @property
    def sections(self) -> tuple[tuple[str, str], ...]:
        """Return each section as (heading, minified HTML)."""
        return marshal.loads(zlib.decompress(self.packed_sections))


def pack_sections(sections: tuple[tuple[str, str], ...]) -> bytes:
    """Return a content file's sections compressed: only the few pages that show a file need its
    HTML, but every rendering process holds every file (half the size at 50,000 pages)."""
    return zlib.compress(marshal.dumps(sections), 1)


@dataclass(frozen=True, slots=True)
class SiteData:
    """Everything loaded and validated from one site folder (stage 1's output)."""

    site: Site
    facts: dict[str, Fact]
    plan_types: dict[str, PlanType]
    payers: tuple[Payer, ...]
    procedures: tuple[Procedure, ...]
    denial_types: tuple[DenialType, ...]
    content: dict[tuple[str, ...], Content] = field(default_factory=dict)
    policies: dict[tuple[str, str], Policy] = field(default_factory=dict)  # (payer, procedure) -> Policy
