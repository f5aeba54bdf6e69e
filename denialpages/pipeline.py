"""The build, stage by stage: load -> plan -> render -> write. Reads top to bottom."""

from __future__ import annotations

import itertools
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .load import load_site
from .model import SiteData
from .standing import Standing, assess
from .manifest import Fingerprints, fingerprints, read_manifest, still_valid, update_manifest
from .parallel import render_pages
from .plan import Exclusion, PagePlan, Plan, plan_site, stable_rank
from .render import RenderedPage, Renderer
from .sitemap import SITE_FILES, site_files
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


def check_site(root: Path) -> BuildReport:
    """Load, plan and render every page in memory; write nothing. Raises InputError."""
    started = time.perf_counter()
    data = load_site(root)
    plan = plan_site(data)
    standing = assess_or_fail(data, plan)
    renderer = Renderer(root, data, plan, standing)
    files = sum(1 for _ in itertools.chain(renderer.render_all(), site_files(root, renderer)))
    return BuildReport(len(plan.pages), len(plan.hubs), files, plan.exclusions, count_layers(plan),
                       time.perf_counter() - started, noindex=count_noindex(standing))


@dataclass(frozen=True, slots=True)
class Shard:
    """Which slice of the landing pages a build renders: number `index` of `count` (1-based)."""

    index: int = 1
    count: int = 1

    def holds(self, page: PagePlan) -> bool:
        """Return True when this shard renders `page` (by a stable hash of its URL)."""
        return self.count == 1 or stable_rank(page.url) % self.count == self.index - 1


def build_site(root: Path, out: Path, jobs: int = 1, shard: Shard = Shard(), full: bool = False,
               progress: Callable[[int, int], None] | None = None) -> BuildReport:
    """Build the site at `root` into `out`; only what changed is rendered, then swapped in whole."""
    started = time.perf_counter()
    data = load_site(root)
    plan = plan_site(data)
    standing = assess_or_fail(data, plan)
    renderer = Renderer(root, data, plan, standing)
    prints = fingerprints(root, data, plan, standing)
    with output_lock(out):
        recover(out)
        known, warning = ({}, None) if full else read_manifest(out)
        pages = [(i, p.path, prints.page(i, p)) for i, p in enumerate(plan.pages) if shard.holds(p)]
        others = site_wide_prints(plan, prints)
        stale = [i for i, path, print_ in pages if not still_valid(out, known, path, print_)]
        stale_others = [path for path, print_ in others if not still_valid(out, known, path, print_)]
        planned = {path for _, path, _ in pages} | {path for path, _ in others}
        removed = [path for path in known if path not in planned]
        written = 0
        if stale or stale_others or removed or not out.is_dir():
            staging = staging_dir(out)
            try:
                link_unchanged(out, staging, planned - {plan.pages[i].path for i in stale} - set(stale_others))
                tick = progress or (lambda done, total: None)
                total, done = len(stale), 0

                def advance(count: int) -> None:
                    nonlocal done
                    done += count
                    tick(done, total)

                sizes = render_pages(renderer, staging, stale, jobs, advance)
                extra = write_pages(staging, (f for f in site_wide_files(renderer, root) if f.path in stale_others))
                swap_in(staging, out)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            entries = [(plan.pages[i].path, prints.page(i, plan.pages[i]), size) for i, size in sizes.items()]
            entries += [(path, print_, (out / path).stat().st_size) for path, print_ in others if path in stale_others]
            update_manifest(out, entries, removed, replace_all=not known)
            written = len(sizes) + extra
    return BuildReport(len(plan.pages), len(plan.hubs), written, plan.exclusions, count_layers(plan),
                       time.perf_counter() - started, len(pages), warning, count_noindex(standing))


def count_noindex(standing: Standing) -> int:
    """Return how many landing pages are kept out of search indexes."""
    return standing.flags().count(0)


def assess_or_fail(data: SiteData, plan: Plan) -> Standing:
    """Return the search standing of every page; a near-copied hand-written page stops the build."""
    standing = assess(data, plan)
    if standing.problems:
        raise InputError(list(standing.problems))
    return standing


def site_wide_prints(plan: Plan, prints: Fingerprints) -> list[tuple[str, str]]:
    """Return (path, fingerprint) of every file that is not a landing page."""
    found = [(hub.path, prints.hub(hub.kind, hub.slug)) for hub in plan.hubs]
    return found + [(path, prints.hub("site", "")) for path in ("404.html", *SITE_FILES)]


def site_wide_files(renderer: Renderer, root: Path) -> Iterator[RenderedPage]:
    """Yield every file that is not a landing page: hubs, 404, sitemap, robots.txt, favicon."""
    for hub in renderer.plan.hubs:
        yield renderer.render_hub(hub)
    yield renderer.render_not_found()
    yield from site_files(root, renderer)


def list_pages(root: Path) -> tuple[Plan, Standing]:
    """Return the plan and its search standing (stages 1-2 only)."""
    data = load_site(root)
    plan = plan_site(data)
    return plan, assess_or_fail(data, plan)
