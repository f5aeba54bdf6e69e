"""python tools/lighthouse_gate.py LIGHTHOUSE.json: print each page's scores; exit 1 below a threshold.

LIGHTHOUSE.json is what tools/lighthouse_batch.mjs writes; the thresholds and the excused audits live in
tools/lighthouse-thresholds.json. Performance is judged on the median of the runs, the other categories
on every run (they are deterministic, so a failure in any run is a real failure).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

THRESHOLDS = Path(__file__).with_name("lighthouse-thresholds.json")
NOT_FOUND_PAGE = "404"


def is_excused(audit: dict, page: str, run: dict, excused: dict) -> bool:
    """Return whether a failing audit is one the thresholds file excuses, under its condition."""
    when = excused.get(audit["id"], {}).get("when")
    if when == "noindex":
        return bool(audit["items"]) and all(
            item.startswith('<meta name="robots"') and "noindex" in item for item in audit["items"])
    if when == "not-found":
        return page == NOT_FOUND_PAGE and run["status"] == 404
    if when == "not-found-document":
        return page == NOT_FOUND_PAGE and run["status"] == 404 and bool(audit["items"]) and all(
            "status of 404" in item and item.endswith(run["url"]) for item in audit["items"])
    return False


def run_problems(page: str, run: dict, limits: dict) -> tuple[list[str], list[str]]:
    """Return one run's unexcused failures (beside performance) and the audits excused in it."""
    if run["runtimeError"]:
        return [f"{page}: Lighthouse runtime error {run['runtimeError']}"], []
    problems, excused = [], []
    for category, least in limits["minimum"].items():
        score = run["scores"].get(category)
        if category == "performance" or (score is not None and score >= least):
            continue
        failing = [a for a in run["failing"] if a["category"] == category]
        kept = [a for a in failing if not is_excused(a, page, run, limits["excused"])]
        excused += [f"{category}/{a['id']}" for a in failing if a not in kept]
        if kept or not failing:
            why = "; ".join(f"{a['id']} ({a['title']}: {a.get('explanation') or ', '.join(a['items'][:3])})"
                            for a in kept)
            problems.append(f"{page}: {category} {score} < {least}: {why or 'no failing audit reported'}")
    return problems, excused


def median_metrics(runs: list[dict]) -> str:
    """Return the median first and largest contentful paint, blocking time and layout shift of the runs."""
    names = {"first-contentful-paint": "FCP", "largest-contentful-paint": "LCP",
             "total-blocking-time": "TBT", "cumulative-layout-shift": "CLS"}
    parts = []
    for metric, short in names.items():
        values = [r.get("metrics", {}).get(metric) for r in runs]
        if values and None not in values:
            value = statistics.median(values)
            parts.append(f"{short} {value:.3f}" if short == "CLS" else f"{short} {value:.0f} ms")
    return ", ".join(parts)


def page_problems(page: str, result: dict, limits: dict) -> tuple[list[str], str]:
    """Return a page's problems over all its runs and its one-line score summary."""
    runs, problems, excused = result["runs"], [], set()
    for run in runs:
        found, waived = run_problems(page, run, limits)
        problems += [p for p in found if p not in problems]
        excused.update(waived)
    perf = [r["scores"].get("performance") for r in runs if not r["runtimeError"]]
    perf_median = statistics.median(perf) if perf and None not in perf else None
    least = limits["minimum"].get("performance")
    if least is not None and (perf_median is None or perf_median < least):
        problems.append(f"{page}: performance median {perf_median} of {perf} < {least}")
    worst = {c: min((r["scores"].get(c) or 0) for r in runs) for c in limits["minimum"] if c != "performance"}
    summary = (f"{page:14} performance {perf_median} (runs {perf}; {median_metrics(runs)}) "
               + " ".join(f"{c} {s}" for c, s in worst.items())
               + (f"  excused: {', '.join(sorted(excused))}" if excused else ""))
    return problems, summary


def main(argv: list[str]) -> int:
    """Check the batch output against the thresholds; return the exit code."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 64
    limits = json.loads(THRESHOLDS.read_text(encoding="utf-8"))
    results = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    problems = []
    for page, result in results.items():
        found, summary = page_problems(page, result, limits)
        print(summary)
        problems += found
    print("\n".join(problems) or f"lighthouse gate: all {len(results)} pages pass")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
