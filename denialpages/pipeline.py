"""The build, stage by stage: load -> plan -> render -> write. Reads top to bottom."""

from __future__ import annotations

import itertools
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .load import load_site
from .plan import Exclusion, Plan, plan_site
from .render import Renderer
from .sitemap import site_files
from .write import output_lock, recover, staging_dir, swap_in, write_pages


@dataclass(frozen=True, slots=True)
class BuildReport:
    """What a build or check did, for the summary line."""

    pages: int
    hubs: int
    files: int
    exclusions: tuple[Exclusion, ...]
    layers: dict[str, int]
    seconds: float

    def summary(self, verb: str) -> str:
        """Return the one-line summary a command ends with."""
        excluded = sum(e.count for e in self.exclusions)
        layers = ", ".join(f"{n:,} {layer}" for layer, n in self.layers.items())
        return (f"{verb} {self.pages:,} pages and {self.hubs:,} hubs ({layers}; {excluded:,} combinations "
                f"excluded by {len(self.exclusions)} rules) in {self.seconds:.2f} s")


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
    renderer = Renderer(root, data, plan)
    files = sum(1 for _ in itertools.chain(renderer.render_all(), site_files(root, data.site, plan)))
    return BuildReport(len(plan.pages), len(plan.hubs), files, plan.exclusions, count_layers(plan),
                       time.perf_counter() - started)


def build_site(root: Path, out: Path) -> BuildReport:
    """Build the site at `root` into `out`, swapping it in only when every file is written."""
    started = time.perf_counter()
    data = load_site(root)
    plan = plan_site(data)
    renderer = Renderer(root, data, plan)
    with output_lock(out):
        recover(out)
        staging = staging_dir(out)
        try:
            files = write_pages(staging, itertools.chain(renderer.render_all(), site_files(root, data.site, plan)))
            swap_in(staging, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return BuildReport(len(plan.pages), len(plan.hubs), files, plan.exclusions, count_layers(plan),
                       time.perf_counter() - started)


def list_pages(root: Path) -> tuple[Plan, dict[str, str]]:
    """Return the plan and, per page URL, the content layer (stages 1-2 only)."""
    plan = plan_site(load_site(root))
    return plan, {page.url: page.layer for page in plan.pages}
