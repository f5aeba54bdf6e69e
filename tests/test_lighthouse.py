"""Lighthouse scores: the gate's rules on hand-made results, then tools/lighthouse.sh on the bundled site."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

GATE = REPO / "tools" / "lighthouse_gate.py"
THRESHOLDS = json.loads((REPO / "tools" / "lighthouse-thresholds.json").read_text(encoding="utf-8"))
NOINDEX = '<meta name="robots" content="noindex,follow" />'
PERFECT = {"performance": 1, "accessibility": 1, "best-practices": 1, "seo": 1}


def run(scores: dict | None = None, failing: list[dict] | None = None, status: int = 200,
        url: str = "http://127.0.0.1:1/") -> dict:
    """Return one Lighthouse run as tools/lighthouse_batch.mjs records it."""
    return {"url": url, "scores": {**PERFECT, **(scores or {})}, "failing": failing or [], "status": status,
            "runtimeError": None, "warnings": [], "metrics": {}, "ms": 1}


def audit(category: str, audit_id: str, *items: str) -> dict:
    """Return one failing audit as the batch records it."""
    return {"category": category, "id": audit_id, "score": 0, "title": audit_id, "displayValue": None,
            "explanation": None, "items": list(items)}


def gate(tmp_path: Path, pages: dict[str, list[dict]]) -> subprocess.CompletedProcess[str]:
    """Run the gate on a results file holding `pages` (name -> runs)."""
    results = tmp_path / "lighthouse.json"
    data = {name: {"url": runs[0]["url"], "runs": runs} for name, runs in pages.items()}
    results.write_text(json.dumps(data))
    command = [sys.executable, str(GATE), str(results)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_thresholds_are_the_spec_floors():
    assert THRESHOLDS["minimum"] == {"performance": 0.95, "accessibility": 1, "best-practices": 1, "seo": 1}
    assert THRESHOLDS["runs"] == 3


def test_gate_passes_perfect_pages_and_fails_any_missed_audit(tmp_path):
    assert gate(tmp_path, {"home": [run()] * 3}).returncode == 0
    missed = run({"seo": 0.92}, [audit("seo", "robots-txt")])
    result = gate(tmp_path, {"home": [run(), missed, run()]})
    assert result.returncode == 1 and "home: seo 0.92 < 1: robots-txt" in result.stdout


def test_gate_judges_performance_on_the_median_of_the_runs(tmp_path):
    assert gate(tmp_path, {"hub": [run({"performance": p}) for p in (0.8, 0.96, 1)]}).returncode == 0
    result = gate(tmp_path, {"hub": [run({"performance": p}) for p in (0.94, 0.9, 1)]})
    assert result.returncode == 1 and "hub: performance median 0.94" in result.stdout


def test_gate_excuses_noindex_only_when_the_page_itself_says_it(tmp_path):
    own = run({"seo": 0.6}, [audit("seo", "is-crawlable", NOINDEX)])
    assert gate(tmp_path, {"hub": [own]}).returncode == 0
    robots_txt = run({"seo": 0.6}, [audit("seo", "is-crawlable", "http://127.0.0.1:1/robots.txt")])
    assert gate(tmp_path, {"hub": [robots_txt]}).returncode == 1


def test_gate_excuses_a_404_status_only_on_the_not_found_page(tmp_path):
    url = "http://127.0.0.1:1/no-such-page/"
    logged = f"network Failed to load resource: the server responded with a status of 404 (Not Found) {url}"
    console = audit("best-practices", "errors-in-console", logged)
    not_found = run({"seo": 0.5, "best-practices": 0.96}, status=404, url=url, failing=[
        audit("seo", "http-status-code"), audit("seo", "is-crawlable", NOINDEX), console])
    assert gate(tmp_path, {"404": [not_found]}).returncode == 0
    assert gate(tmp_path, {"hub": [not_found]}).returncode == 1
    other_error = {**console, "items": [*console["items"], "javascript TypeError: x is undefined"]}
    other = {**not_found, "failing": [*not_found["failing"][:2], other_error]}
    assert gate(tmp_path, {"404": [other]}).returncode == 1


@pytest.mark.slow
@pytest.mark.lighthouse
def test_lighthouse_scores_every_page_type_at_the_thresholds(bundled_out, tmp_path):
    needs = {"chromium": shutil.which("chromium") or os.environ.get("CHROME_PATH"),
             "node": shutil.which("node"),
             "node_modules/lighthouse (npm ci)": (REPO / "node_modules" / "lighthouse").is_dir()}
    missing = [what for what, ok in needs.items() if not ok]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"missing under CI: {', '.join(missing)}")
        pytest.skip(f"missing: {', '.join(missing)}")
    result = subprocess.run(["sh", str(REPO / "tools" / "lighthouse.sh"), str(bundled_out), str(tmp_path)],
                            capture_output=True, text=True, check=False, timeout=1200,
                            env={**os.environ, "PYTHON": sys.executable})
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    results = json.loads((tmp_path / "lighthouse.json").read_text())
    assert sorted(results) == ["404", "fallback", "hand-written", "home", "hub"]
    assert all(len(page["runs"]) == THRESHOLDS["runs"] for page in results.values())
    assert results["404"]["runs"][0]["status"] == 404 and results["home"]["runs"][0]["status"] == 200
