"""The build, stage by stage: load -> plan -> render -> write. Reads top to bottom."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import NamedTuple, TypeVar

from .cache import ContentCache, content_cache_path
from .changes import write_changes
from .errors import InputError
from .lastbuild import BuildReport, report_dir, reusable_build, with_ledger
from .ledger import Ledger, update_ledger, write_ledger
from .load import load_site
from .manifest import (
    Fingerprints,
    digest,
    file_state,
    fingerprints,
    read_manifest,
    still_valid,
    update_manifest,
    write_meta,
)
from .model import SiteData
from .parallel import call_forked, release_free_memory, render_pages
from .plan import Plan, Shard, plan_site, url_clashes
from .render import RenderedPage, Renderer
from .report import build_report, commit_report, discard_staged_report, stage_report
from .sitemap import site_files
from .standing import Standing, assess
from .write import link_unchanged, output_lock, raise_duplicate, recover, staging_dir, swap_in, write_pages

__all__ = ["BuildReport", "Shard", "build_site", "check_site", "list_pages", "report_dir"]

T = TypeVar("T")

def count_layers(plan: Plan) -> dict[str, int]:
    """Return how many pages take their angle from each content layer."""
    counts = {layer: 0 for layer in ("exact", "procedure", "denial", "data")}
    for page in plan.pages:
        counts[page.layer] += 1
    return counts


def check_site(root: Path, jobs: int = 1) -> BuildReport:
    """Load, plan and render every page in memory, links checked; write nothing. Raises InputError."""
    started = time.perf_counter()
    data = load_site(root, jobs)
    plan = plan_site(data)
    standing = assess_or_fail(data, plan, jobs)
    renderer = Renderer(root, data, plan, standing)
    others: list[str] = []
    pages, site = render_pages(renderer, None, range(len(plan.pages)), jobs, lambda count: None,
                               site_wide_steps(root, renderer, lambda file: others.append(file.path)))
    return BuildReport(len(plan.pages), len(plan.hubs), len(pages) + len(others), plan.exclusions,
                       count_layers(plan), time.perf_counter() - started, noindex=count_noindex(standing),
                       duplicates=site.warnings)


def build_site(root: Path, out: Path, jobs: int = 1, shard: Shard = Shard(), full: bool = False,
               progress: Callable[[int, int], None] | None = None, record: bool = True,
               inputs: str | None = None) -> BuildReport:
    """Build the site at `root` into `out`; only what changed is rendered, then swapped in whole.

    `record=False` (a preview) leaves the URL ledger as it was, so drafts move no lastmod.
    `inputs`: the digest of this build's inputs, when the caller already found that they changed.
    """
    started = time.perf_counter()
    if inputs is None:
        last, inputs = reusable_build(root, out, shard, record, full, started)
        if last is not None:
            return last
    data = load_site(root, jobs, ContentCache(content_cache_path(out), fresh=full))
    plan = plan_site(data)
    standing = assess_or_fail(data, plan, jobs)
    renderer = Renderer(root, data, plan, standing)
    prints = fingerprints(root, data, plan, standing)
    staging = out.parent / f".{out.name}.staging-{os.getpid()}"
    with output_lock(out):
        recover(out)
        discard_staged_report(report_dir(out), pid="*")
        known, warning = ({}, None) if full else read_manifest(out)
        wanted: dict[str, str] = {}
        if known:
            wanted = page_fingerprints(prints, plan, shard)
            indices = [i for i, p in enumerate(plan.pages)
                       if p.path in wanted and not still_valid(out, known, p.path, wanted[p.path])]
        else:  # every page is written: its fingerprint can wait until the workers are busy
            indices = [i for i, p in enumerate(plan.pages) if shard.holds(p)]
        stale = {plan.pages[i].path for i in indices}
        others: set[str] = set()

        def place(file: RenderedPage) -> None:  # a file besides the landing pages, staged once made
            if file.path in others:
                raise_duplicate(file.path)
            others.add(file.path)
            wanted[file.path] = digest(file.body.hex())
            if not still_valid(out, known, file.path, wanted[file.path]):
                stale.add(file.path)
                write_pages(staging, [file])

        try:
            staging_dir(out)
            steps = site_wide_steps(root, renderer, place, report_dir(out))
            if not known:
                steps = then(steps, lambda: wanted.update(page_fingerprints(prints, plan, shard)))
            written, site = render_pages(renderer, staging if indices else None, indices, jobs,
                                         progress_counter(len(indices), progress), steps)
            removed = [path for path in known if path not in wanted]
            if stale or removed or not out.is_dir():
                link_unchanged(out, staging, wanted.keys() - stale)
                swap_in(staging, out)
                paths = [plan.pages[page.index].path for page in written]
                entries = [(path, wanted[path], page.size, page.mtime_ns, page.inode)
                           for path, page in zip(paths, written, strict=True)]
                entries += [file_state(out, path, wanted[path]) for path in others if path in stale]
                update_manifest(out, entries, removed, replace_all=not known)
            if record:
                write_ledger(root, site.ledger)
            commit_report(report_dir(out))  # rewrites nothing when unchanged
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            discard_staged_report(report_dir(out))
        write_changes(out, stale, known, removed)
        report = BuildReport(len(plan.pages), len(plan.hubs), len(stale), plan.exclusions, count_layers(plan),
                             time.perf_counter() - started, sum(shard.holds(p) for p in plan.pages), warning,
                             count_noindex(standing), site.warnings)
        write_meta(out, {"inputs": with_ledger(root, inputs), "report": report.to_json()})
    return report


def page_fingerprints(prints: Fingerprints, plan: Plan, shard: Shard) -> dict[str, str]:
    """Return {output path: fingerprint} of the landing pages in `shard`."""
    return {p.path: prints.page(i, p) for i, p in enumerate(plan.pages) if shard.holds(p)}


def then(steps: Generator[None, None, T], step: Callable[[], object]) -> Generator[None, None, T]:
    """Return `steps` with one more step at the end."""
    result = yield from steps
    yield
    step()
    return result


def progress_counter(total: int, report: Callable[[int, int], None] | None) -> Callable[[int], None]:
    """Return a callback that adds up pages done and passes (done, total) to `report`."""
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if report:
            report(done, total)

    return advance


def ledger_or_fail(root: Path, data: SiteData, plan: Plan) -> Ledger:
    """Return the URL ledger after this build; a URL that would vanish unannounced stops it."""
    ledger, problems = update_ledger(root, data, plan)
    if problems:
        raise InputError(problems)
    return ledger


def count_noindex(standing: Standing) -> int:
    """Return how many landing pages are kept out of search indexes."""
    return standing.flags().count(0)


def assess_or_fail(data: SiteData, plan: Plan, jobs: int = 1) -> Standing:
    """Return the search standing of every page; clashing URLs or a near-copied page stop the build.

    With `jobs` > 1 it is worked out in a forked process: its hundred megabytes of signatures and
    band groups at 50,000 pages leave a fragmented heap that every rendering worker would count.
    """
    clashes = url_clashes(data, plan)
    if clashes:
        raise InputError(clashes)
    standing = call_forked(lambda: assess(data, plan)) if jobs > 1 else assess(data, plan)
    release_free_memory()
    if standing.problems:
        raise InputError(list(standing.problems))
    return standing


class SiteWide(NamedTuple):
    """What a build keeps of the work besides its landing pages, once the files are placed."""

    ledger: Ledger
    warnings: tuple[str, ...]  # titles or descriptions that several indexable pages share


def site_wide_steps(root: Path, renderer: Renderer, place: Callable[[RenderedPage], None],
                    report_folder: Path | None = None) -> Generator[None, None, SiteWide]:
    """Make the URL ledger, the marketer's report (staged into `report_folder`, if any) and every
    file that is not a landing page (hubs, 404, sitemaps, robots.txt, redirects), each handed to
    `place` as it is made, pausing between steps so that rendering goes on."""
    data, plan, standing = renderer.data, renderer.plan, renderer.standing
    ledger = ledger_or_fail(root, data, plan)
    yield
    findings = build_report(data, plan, standing, ledger.redirects)
    yield
    if report_folder is not None:
        stage_report(report_folder, findings)
        yield
    warnings = tuple(findings.warnings())
    del findings
    for hub in plan.hubs:
        place(renderer.render_hub(hub))
        yield
    for file in (renderer.render_not_found(), *site_files(root, renderer, ledger)):
        place(file)
    return SiteWide(ledger, warnings)


def list_pages(root: Path) -> tuple[Plan, Standing]:
    """Return the plan and its search standing (stages 1-2 only)."""
    data = load_site(root)
    plan = plan_site(data)
    return plan, assess_or_fail(data, plan)
