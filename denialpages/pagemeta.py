"""What a page says about itself: title, description, breadcrumbs, JSON-LD, price wording."""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from .model import Content, DenialType, Payer, Price, Procedure, Site

CURRENCY_SIGNS = {"USD": "$"}
EXTERNAL_REVIEW = {
    "yes": "usually available for this kind of denial once internal appeals are done, because it turns on medical judgment; an independent reviewer decides, not the plan.",
    "usually-no": "usually not available for this kind of denial unless the plan's decision rests on medical judgment; ask the plan whether it does.",
    "no": "not the route for this kind of denial; it is fixed through the plan's internal appeal or a corrected claim.",
}


def money(amount: float, currency: str) -> str:
    """Return an amount as a reader writes it: $30, $29.50, 30 EUR."""
    text = f"{amount:,.0f}" if float(amount).is_integer() else f"{amount:,.2f}"
    sign = CURRENCY_SIGNS.get(currency)
    return f"{sign}{text}" if sign else f"{text} {currency}"


def price_line(site: Site) -> str:
    """Return the offer in one line, e.g. '$30 for your first letter with code SEO25 ($40 after)'."""
    price: Price = site.price
    first = money(price.first_letter, price.currency)
    full = money(price.list, price.currency)
    return f"{first} for your first letter with code {site.promo_code}; {full} for each letter after that."


def long_date(day: dt.date) -> str:
    """Return a date as 'November 24, 2026'."""
    return f"{day.strftime('%B')} {day.day}, {day.year}"


def page_title(payer: Payer, procedure: Procedure, denial: DenialType, content: Content | None) -> str:
    """Return a landing page's <title>."""
    if content and content.title:
        return content.title
    return f"{procedure.name} denied by {payer.name} for {denial.phrase}: how to appeal"


def page_description(payer: Payer, procedure: Procedure, denial: DenialType, content: Content | None) -> str:
    """Return a landing page's meta description."""
    if content and content.description:
        return content.description
    return (f"{payer.name} denied {procedure.name} for {denial.phrase}? Your appeal steps and deadlines "
            f"by plan type, the criteria reviewers check, and the records to gather.")


class Crumb(NamedTuple):
    """One breadcrumb: the words shown and the site path."""

    name: str
    url: str


def crumb(name: str, url: str) -> Crumb:
    """Return one breadcrumb."""
    return Crumb(name, url)


def web_page_ld(site: Site, url: str, title: str, description: str, crumbs: list[Crumb],
                reviewed: dt.date | None = None, reviewer: str | None = None,
                kind: str = "WebPage") -> dict[str, Any]:
    """Return the JSON-LD graph of a page: the page itself and its breadcrumbs."""
    page: dict[str, Any] = {
        "@type": kind,
        "@id": site.base_url + url,
        "url": site.base_url + url,
        "name": title,
        "description": description,
        "inLanguage": site.language,
        "isPartOf": {"@type": "WebSite", "name": site.name, "url": site.base_url + "/"},
    }
    if reviewed:
        page["lastReviewed"] = reviewed.isoformat()
    if reviewer:
        page["reviewedBy"] = {"@type": "Organization", "name": reviewer}
    trail = {
        "@type": "BreadcrumbList",
        "itemListElement": [
            {"@type": "ListItem", "position": n, "name": c.name, "item": site.base_url + c.url}
            for n, c in enumerate(crumbs, start=1)
        ],
    }
    return {"@context": "https://schema.org", "@graph": [page, trail]}
