"""Stage 3 and 5 for landing pages, over several processes.

Workers are forked from the main process after loading and planning, so they inherit the
Renderer (data, plan, templates) without pickling it. Each worker renders slices of pages and
writes them straight into the staging folder, returning only (page index, size) pairs, so the
main process never holds page bodies.
"""

from __future__ import annotations

import gc
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from .errors import InputError
from .render import Renderer

SLICE = 256
# Set in each worker by _start_worker (inherited through fork); the main process never sets it.
_worker: tuple[Renderer, Path | None] | None = None


def _start_worker(renderer: Renderer, staging: Path | None) -> None:
    global _worker  # noqa: PLW0603 (one renderer per worker process, see the module docstring)
    _worker = (renderer, staging)


def _render_slice(indices: Sequence[int]) -> list[tuple[int, int]]:
    assert _worker is not None
    renderer, staging = _worker
    return write_slice(renderer, staging, indices)


def write_slice(renderer: Renderer, staging: Path | None, indices: Sequence[int]) -> list[tuple[int, int]]:
    """Render the pages at `indices` and write them under `staging` (None: check only); return sizes."""
    written = []
    made: set[Path] = set()
    for index in indices:
        page = renderer.render_page(index)
        broken = renderer.broken_links(index, page.body)
        if broken:
            raise InputError(broken)
        written.append((index, len(page.body)))
        if staging is None:
            continue
        target = staging / page.path
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        target.write_bytes(page.body)
    return written


def slices(indices: Sequence[int], size: int = SLICE) -> Iterator[Sequence[int]]:
    """Yield consecutive runs of `indices` (neighbours share payer and procedure fragments)."""
    for start in range(0, len(indices), size):
        yield indices[start : start + size]


def render_pages(renderer: Renderer, staging: Path | None, indices: Sequence[int], jobs: int,
                 progress: Callable[[int], None]) -> dict[int, int]:
    """Render the pages at `indices` into `staging` with `jobs` processes; return their sizes."""
    sizes: dict[int, int] = {}
    if jobs <= 1 or len(indices) <= SLICE:
        for chunk in slices(indices):
            sizes.update(write_slice(renderer, staging, chunk))
            progress(len(chunk))
        return sizes
    gc.collect()
    gc.freeze()  # keep the collector from touching (and so copying) inherited objects
    context = multiprocessing.get_context("fork")
    try:
        with context.Pool(jobs, initializer=_start_worker, initargs=(renderer, staging)) as pool:
            for done in pool.imap_unordered(_render_slice, slices(indices)):
                sizes.update(done)
                progress(len(done))
    finally:
        gc.unfreeze()
    return sizes
