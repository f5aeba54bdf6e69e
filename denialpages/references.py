"""Cross-record checks of stage 1: every slug unique, every name points at something real."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from .errors import Location, Problem
from .model import DenialType, Payer, Policy, Procedure, SiteData, Step


def check_references(data: SiteData) -> list[Problem]:
    """Return a Problem for each duplicate slug and each reference to a missing record."""
    procedures = {p.slug for p in data.procedures}
    problems = [
        *_duplicates("payer", data.payers),
        *_duplicates("procedure", data.procedures),
        *_duplicates("denial type", data.denial_types),
        *_plan_type_facts(data),
    ]
    for payer in data.payers:
        problems += _payer_refs(payer, data)
    for record in (*data.payers, *data.denial_types):
        for rule in record.rules:
            for slug in sorted(rule.procedures - procedures):
                problems.append(Problem(rule.origin, f"{rule.owner}: {rule.kind}: no procedure '{slug}'"))
    for denial in data.denial_types:
        for wording in (denial.wording, *dict(denial.by_category).values()):
            problems += _missing_facts(f"denial type '{denial.slug}'", (*wording.facts, *wording.letter_facts),
                                       denial.origin, data)
    return problems


def _duplicates(label: str, records: Iterable[Payer | Procedure | DenialType]) -> list[Problem]:
    seen: dict[str, list[Location]] = defaultdict(list)
    for record in records:
        for slug in (record.slug, *record.previous_slugs):
            seen[slug].append(record.origin)
    problems = []
    for slug, origins in seen.items():
        if len(origins) > 1:
            where = ", ".join(str(o) for o in origins)
            for origin in origins:
                problems.append(Problem(origin, f"{label} slug '{slug}' is used {len(origins)} times ({where})"))
    return problems


def _payer_refs(payer: Payer, data: SiteData) -> list[Problem]:
    problems = []
    if not payer.plan_types:
        return problems
    for plan_type in payer.plan_types:
        if plan_type not in data.plan_types:
            problems.append(
                Problem(payer.origin, f"payer '{payer.slug}': plan type '{plan_type}' has no ladder in data/facts.yaml")
            )
    slugs = {p.slug for p in data.procedures}
    for resource in payer.policy_resources:
        for slug in sorted(resource.procedures - slugs):
            problems.append(Problem(payer.origin, f"payer '{payer.slug}': policy_resources: '{resource.name}': "
                                                  f"no procedure '{slug}'"))
    for plan_type, _ in payer.plan_notes:
        if plan_type not in payer.plan_types:
            problems.append(
                Problem(payer.origin, f"payer '{payer.slug}': plan_notes: '{plan_type}' is not in its plan_types")
            )
    return problems


def _plan_type_facts(data: SiteData) -> list[Problem]:
    problems = []
    for plan_type in data.plan_types.values():
        label = f"plan type '{plan_type.slug}'"
        problems += _missing_facts(label, plan_type.notes, plan_type.origin, data)
        for step in (*plan_type.steps, *plan_type.drug_steps):
            problems += _missing_facts(f"{label}: step '{step.title}'", _step_facts(step), step.origin, data)
    return problems


def _step_facts(step: Step) -> tuple[str, ...]:
    return tuple(f for f in (step.file_within, *step.decided_within, step.expedited) if f)


def _missing_facts(label: str, ids: Iterable[str], origin: Location, data: SiteData) -> list[Problem]:
    return [
        Problem(origin, f"{label}: no fact '{fact_id}' in data/facts.yaml")
        for fact_id in ids
        if fact_id not in data.facts
    ]


def check_policies(policies: Iterable[Policy], data: SiteData) -> list[Problem]:
    """Return a Problem for each policy naming a missing payer or procedure, a plan type the payer
    does not sell, or a payer and procedure already described by another policy record."""
    payers = {p.slug: p for p in data.payers}
    procedures = {p.slug for p in data.procedures}
    problems = []
    first: dict[tuple[str, str], Policy] = {}
    for policy in policies:
        label = f"policy '{policy.payer} x {policy.procedure}'"
        payer = payers.get(policy.payer)
        if payer is None:
            problems.append(Problem(policy.origin, f"{label}: no payer '{policy.payer}'"))
        if policy.procedure not in procedures:
            problems.append(Problem(policy.origin, f"{label}: no procedure '{policy.procedure}'"))
        for plan_type in policy.plan_types:
            if payer is not None and plan_type not in payer.plan_types:
                problems.append(Problem(policy.origin, f"{label}: plan type '{plan_type}' is not one "
                                                       f"{payer.name} sells ({', '.join(payer.plan_types)})"))
        earlier = first.setdefault((policy.payer, policy.procedure), policy)
        if earlier is not policy:
            problems.append(Problem(policy.origin, f"{label} is already described at {earlier.origin}"))
    return problems
