"""Shared fixtures: a small site written from a dict, and the bundled catalogue built once."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import lxml.html
import pytest
import yaml
from click.testing import CliRunner, Result

from denialpages.cli import cli

REPO = Path(__file__).resolve().parent.parent

SITE = {
    "name": "DenialHelp",
    "language": "en-US",
    "base_url": "https://denialhelp.com",
    "checkout_url": "https://denialhelp.com/checkout",
    "price": {"list": 40, "first_letter": 30, "currency": "USD"},
    "promo_code": "SEO25",
    "url_pattern": "/help/{payer}/{procedure}/{denial_type}/",
    "reviewed": dt.date(2026, 11, 24),
    "reviewer": "DenialHelp editorial team",
}


def payer(slug: str, name: str, plan_types: list[str], **extra: object) -> dict[str, object]:
    """Return a payer record with every required field."""
    return {
        "slug": slug,
        "name": name,
        "plan_types": plan_types,
        "about": f"{name} sells health plans.",
        "policy_resources": [{"name": "Coverage policies", "where": "its website",
                              "url": f"https://{slug}.example.com/policies"}],
        **extra,
    }


def procedure(slug: str, name: str, category: str, **extra: object) -> dict[str, object]:
    """Return a procedure record with every required field."""
    return {
        "slug": slug,
        "name": name,
        "long_name": f"{name} (long form)",
        "category": category,
        "summary": f"{name} is a {category}.",
        "ordered_by": "a specialist",
        "criteria": [{"criterion": f"A confirmed diagnosis for {name}", "evidence": "Clinic notes"},
                     {"criterion": f"Earlier care tried before {name}", "evidence": "Therapy notes"}],
        "documents": [f"Notes on {name}", "The denial notice"],
        **extra,
    }


def denial(slug: str, name: str, phrase: str, **extra: object) -> dict[str, object]:
    """Return a denial-type record with every required field."""
    return {
        "slug": slug,
        "name": name,
        "phrase": phrase,
        "lede": f"What to do about {phrase}.",
        "why": f"Plans deny for {phrase} when records are missing.",
        "angle": f"Answer {phrase} with records.",
        "documents": ["The denial notice"],
        "mistakes": ["Missing the deadline"],
        "expedited": "When waiting could harm your health.",
        "external_review": "yes",
        **extra,
    }


PAYERS = [
    payer("cigna", "Cigna", ["employer", "marketplace"]),
    payer("humana", "Humana", ["medicare-advantage", "medicaid"]),
]
PROCEDURES = [
    procedure("lumbar-spinal-fusion", "Lumbar spinal fusion", "surgery"),
    procedure("cimt", "CIMT", "therapy"),
    procedure("humira", "Humira", "drug"),
    procedure("tumor-genomic-profiling", "Tumor genomic profiling", "test"),
]
DENIALS = [
    denial("prior-authorization", "Missing prior authorization", "missing prior authorization"),
    denial("step-therapy", "Step therapy", "failing step therapy",
           exclude={"categories": ["test"], "reason": "Tests have no step to fail."}),
    denial("non-formulary", "Not on the formulary", "not being on the formulary", only={"categories": ["drug"]}),
]
CONTENT = textwrap.dedent("""\
    ---
    description: A hand-written page for CIMT at Cigna.
    reviewed: 2026-11-20
    reviewer: Test reviewer
    sources:
      - {title: Cigna coverage policies, url: "https://static.cigna.com/policies"}
    ---
    ## Why it was denied
    Cigna reviews CIMT visits in blocks.

    ## Appeal route
    Ask for a retro review.

    ## Documents to gather
    1. The therapy plan
    2. The visit log
    3. The denial notice

    ## Criteria mapping
    | What the reviewer looks for | What shows it | Where to find it |
    |---|---|---|
    | Arm function | Motor scores | Therapy notes |
    | Prior stroke | Discharge summary | Hospital record |
    """)


def site_files(**overrides: object) -> dict[str, object]:
    """Return the small site's files: YAML as Python values, other files as text."""
    files: dict[str, object] = {
        "data/site.yaml": SITE,
        "data/payers.yaml": PAYERS,
        "data/procedures.yaml": PROCEDURES,
        "data/denial_types.yaml": DENIALS,
        "content/cigna/cimt/prior-authorization.md": CONTENT,
    }
    files.update(overrides)
    return files


@pytest.fixture
def make_site(tmp_path: Path) -> Callable[..., Path]:
    """Write a site (the repo's templates and facts plus `files`) into a temporary folder."""

    def make(files: dict[str, object] | None = None, name: str = "site") -> Path:
        root = tmp_path / name
        shutil.copytree(REPO / "templates", root / "templates")
        (root / "data").mkdir(parents=True)
        shutil.copy(REPO / "data" / "facts.yaml", root / "data" / "facts.yaml")
        for path, value in (site_files() if files is None else files).items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(value, bytes):
                target.write_bytes(value)
            elif isinstance(value, str):
                target.write_text(value, encoding="utf-8")
            else:
                target.write_text(yaml.safe_dump(value, sort_keys=False, allow_unicode=True), encoding="utf-8")
        return root

    return make


def require_tool(name: str, install: str) -> str:
    """Return a tool's path; a missing one fails the test under CI and skips it elsewhere."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; .ci/run must {install}")
        pytest.skip(f"{name} is not installed ({install})")
    return path


def run_cli(*args: str) -> Result:
    """Run the command line in-process, as a user would from a shell."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def parse(path: Path) -> lxml.html.HtmlElement:
    """Return a built page parsed as HTML."""
    return lxml.html.fromstring(path.read_bytes())


def snapshot(folder: Path) -> dict[str, bytes]:
    """Return every file under `folder` by relative path, with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def bundled_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the repository's own bundled catalogue once into a temporary folder."""
    out = tmp_path_factory.mktemp("bundled") / "out"
    result = run_cli("build", "--site", str(REPO), "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden/ from the current output")
