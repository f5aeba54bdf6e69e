"""The build, stage by stage: load -> plan -> render -> write. Reads top to bottom."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .cache import ContentCache, content_cache_path
from .changes import write_changes
from .errors import InputError
from .ledger import Ledger, update_ledger, write_ledger
from .load import load_site
from .manifest import (
    digest,
    file_state,
    fingerprints,
    inputs_digest,
    read_manifest,
    read_meta,
    still_valid,
    tree_digest,
    update_manifest,
    write_meta,
)
from .model import SiteData
from .parallel import release_free_memory, render_pages
from .plan import Exclusion, PagePlan, Plan, plan_site, stable_rank, url_clashes
from .render import RenderedPage, Renderer
from .report import build_report, write_report
from .sitemap import site_files
from .standing import Standing, assess
from .write import link_unchanged, output_lock, recover, staging_dir, swap_in, write_pages


@dataclass(frozen=True, slots=True)
class BuildReport:
    """What a build or check did, for the summary line."""

    pages: int
    hubs: int
    files: int
    exclusions: tuple[Exclusion, ...]
    layers: dict[str, int]
    seconds: float
    in_shard: int = 0
    warning: str | None = None
    noindex: int = 0
    duplicates: tuple[str, ...] = ()

    def to_json(self) -> str:
        """Return what a later build that finds nothing changed reports again (not time or files written)."""
        values = dataclasses.asdict(self)
        del values["seconds"], values["files"], values["warning"]
        return json.dumps(values)

    @classmethod
    def from_json(cls, text: str) -> BuildReport:
        """Return the report saved by to_json, for a build that wrote nothing."""
        values = json.loads(text)
        values["exclusions"] = tuple(Exclusion(**e) for e in values["exclusions"])
        values["duplicates"] = tuple(values["duplicates"])
        return cls(files=0, seconds=0.0, **values)

    def summary(self, verb: str) -> str:
        """Return the one-line summary a command ends with."""
        excluded = sum(e.count for e in self.exclusions)
        layers = ", ".join(f"{n:,} {layer}" for layer, n in self.layers.items())
        wrote = f"; wrote {self.files:,} files" if verb == "Built" else ""
        return (f"{verb} {self.pages:,} pages ({self.noindex:,} noindex) and {self.hubs:,} hubs ({layers}; {excluded:,} combinations "
                f"excluded by {len(self.exclusions)} rules{wrote}) in {self.seconds:.2f} s")


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
    standing = assess_or_fail(data, plan)
    ledger = ledger_or_fail(root, data, plan)
    renderer = Renderer(root, data, plan, standing)
    sizes = render_pages(renderer, None, range(len(plan.pages)), jobs, lambda count: None)
    files = len(sizes) + sum(1 for _ in site_wide_files(renderer, root, ledger))
    duplicates = tuple(build_report(data, plan, standing, ledger.redirects).warnings())
    return BuildReport(len(plan.pages), len(plan.hubs), files, plan.exclusions, count_layers(plan),
                       time.perf_counter() - started, noindex=count_noindex(standing), duplicates=duplicates)


@dataclass(frozen=True, slots=True)
class Shard:
    """Which slice of the landing pages a build renders: number `index` of `count` (1-based)."""

    index: int = 1
    count: int = 1

    def holds(self, page: PagePlan) -> bool:
        """Return True when this shard renders `page` (by a stable hash of its URL)."""
        return self.count == 1 or stable_rank(page.url) % self.count == self.index - 1


def build_site(root: Path, out: Path, jobs: int = 1, shard: Shard = Shard(), full: bool = False,
               progress: Callable[[int, int], None] | None = None, record: bool = True) -> BuildReport:
    """Build the site at `root` into `out`; only what changed is rendered, then swapped in whole.

    `record=False` (a preview) leaves the URL ledger as it was, so drafts move no lastmod.
    """
    started = time.perf_counter()
    inputs = inputs_digest(root, f"shard {shard.index}/{shard.count}", f"record {record}",
                           os.environ.get("SOURCE_DATE_EPOCH", ""))
    if not full:
        with output_lock(out):
            last = unchanged_build(out, with_ledger(root, inputs))
            if last is not None:
                write_changes(out, set(), {}, [])
                return dataclasses.replace(last, files=0, seconds=time.perf_counter() - started)
    data = load_site(root, jobs, ContentCache(content_cache_path(out), fresh=full))
    plan = plan_site(data)
    standing = assess_or_fail(data, plan)
    ledger = ledger_or_fail(root, data, plan)
    findings = build_report(data, plan, standing, ledger.redirects)
    renderer = Renderer(root, data, plan, standing)
    prints = fingerprints(root, data, plan, standing)
    site_wide = {f.path: f for f in site_wide_files(renderer, root, ledger)}
    with output_lock(out):
        recover(out)
        known, warning = ({}, None) if full else read_manifest(out)
        wanted = {p.path: prints.page(i, p) for i, p in enumerate(plan.pages) if shard.holds(p)}
        wanted |= {path: digest(f.body.hex()) for path, f in site_wide.items()}
        stale = {path for path, print_ in wanted.items() if not still_valid(out, known, path, print_)}
        removed = [path for path in known if path not in wanted]
        written = 0
        if stale or removed or not out.is_dir():
            indices = [i for i, p in enumerate(plan.pages) if p.path in stale and shard.holds(p)]
            staging = out.parent / f".{out.name}.staging-{os.getpid()}"
            try:
                staging_dir(out)
                link_unchanged(out, staging, wanted.keys() - stale)
                render_pages(renderer, staging, indices, jobs, progress_counter(len(indices), progress))
                write_pages(staging, (f for path, f in site_wide.items() if path in stale))
                swap_in(staging, out)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            entries = [file_state(out, path, wanted[path]) for path in sorted(stale)]
            update_manifest(out, entries, removed, replace_all=not known)
            written = len(stale)
        write_changes(out, stale, known, removed)
        if record:
            write_ledger(root, ledger)
        write_report(report_dir(out), findings)  # rewrites nothing when unchanged
        report = BuildReport(len(plan.pages), len(plan.hubs), written, plan.exclusions, count_layers(plan),
                             time.perf_counter() - started, sum(shard.holds(p) for p in plan.pages), warning,
                             count_noindex(standing), tuple(findings.warnings()))
        write_meta(out, {"inputs": with_ledger(root, inputs), "report": report.to_json()})
    return report


def with_ledger(root: Path, inputs: str) -> str:
    """Return the digest of a build's inputs with the URL ledger as it is now (a build rewrites
    the ledger, so the next build must compare against the ledger this one left)."""
    return digest(inputs, tree_digest(root / "ledger", "*"))


def unchanged_build(out: Path, inputs: str) -> BuildReport | None:
    """Return the last build's report when its inputs were these and out/ still holds exactly
    what it wrote (every file's fingerprint, size, time and inode); else None."""
    meta = read_meta(out)
    if meta.get("inputs") != inputs or not (report_dir(out) / "report.json").is_file():
        return None
    known, warning = read_manifest(out)
    if warning or not known or not all(still_valid(out, known, path, entry[0]) for path, entry in known.items()):
        return None
    return BuildReport.from_json(meta["report"])


def report_dir(out: Path) -> Path:
    """Return the folder of the marketer's report: beside out/, never published."""
    return out.parent / f"{out.name}-report"


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


def assess_or_fail(data: SiteData, plan: Plan) -> Standing:
    """Return the search standing of every page; clashing URLs or a near-copied page stop the build."""
    clashes = url_clashes(data, plan)
    if clashes:
        raise InputError(clashes)
    standing = assess(data, plan)
    release_free_memory()  # the signatures and band groups are gone; forked workers need not count them
    if standing.problems:
        raise InputError(list(standing.problems))
    return standing


def site_wide_files(renderer: Renderer, root: Path, ledger: Ledger) -> Iterator[RenderedPage]:
    """Yield every file that is not a landing page: hubs, 404, sitemaps, robots.txt, redirects."""
    for hub in renderer.plan.hubs:
        yield renderer.render_hub(hub)
    yield renderer.render_not_found()
    yield from site_files(root, renderer, ledger)


def list_pages(root: Path) -> tuple[Plan, Standing]:
    """Return the plan and its search standing (stages 1-2 only)."""
    data = load_site(root)
    plan = plan_site(data)
    return plan, assess_or_fail(data, plan)
