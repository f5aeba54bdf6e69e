"""Stage 5: write a finished site beside out/, then swap it in; out/ is never half-written.

Layout beside `out/` (all in its parent folder, so renames stay on one file system):
  .out.lock          held (flock) by the one build allowed to run on this out/
  .out.staging-PID   the site being written
  .out.old-PID       the previous out/ for the instant between the two renames
A build that was killed leaves at most these; the next one (holding the lock) tidies them,
restoring `.out.old-*` when it finds no out/.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError, Location, LockHeld, Problem

if TYPE_CHECKING:
    from .render import RenderedPage


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold the lock for `out` for the duration; raise LockHeld if another build has it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    lock_path = out.parent / f".{out.name}.lock"
    with lock_path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(f"another build is writing {out} (lock: {lock_path}); wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def recover(out: Path) -> None:
    """Tidy what a killed build left beside `out`; call only while holding the lock."""
    old = sorted(out.parent.glob(f".{out.name}.old-*"))
    if not out.exists() and old:
        old[-1].rename(out)
        old = old[:-1]
    for leftover in (*old, *out.parent.glob(f".{out.name}.staging-*")):
        shutil.rmtree(leftover, ignore_errors=True)


def staging_dir(out: Path) -> Path:
    """Return a fresh, empty staging folder beside `out`."""
    staging = out.parent / f".{out.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    return staging


def write_pages(staging: Path, pages: Iterable[RenderedPage]) -> int:
    """Write every page under `staging`, refusing to write one path twice; return the count."""
    written: set[str] = set()
    made: set[Path] = set()
    for page in pages:
        if page.path in written:
            raise_duplicate(page.path)
        written.add(page.path)
        target = staging / page.path
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        target.write_bytes(page.body)
    return len(written)


def raise_duplicate(path: str) -> None:
    """Stop the build: two pages would be written to one file."""
    raise InputError([Problem(Location("data"), f"two pages would be written to {path}")])


def link_unchanged(out: Path, staging: Path, paths: Iterable[str]) -> None:
    """Hard-link files that need no rebuild from `out` into `staging` (links keep their times)."""
    made: set[Path] = set()
    for path in paths:
        target = staging / path
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        os.link(out / path, target)


def swap_in(staging: Path, out: Path) -> None:
    """Make `staging` the new `out`, keeping the previous one until the new one is in place."""
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
        staging.rename(out)
        discard(old)
    else:
        staging.rename(out)


def discard(folder: Path) -> None:
    """Delete a replaced out/ in the background: the build need not wait for it.

    If the deletion is cut short, the next build's recover() finishes it (out/ exists then).
    """
    try:  # a shell that starts rm in the background and exits at once: nothing left to reap
        shell = os.posix_spawnp("sh", ["sh", "-c", 'rm -rf -- "$1" >/dev/null 2>&1 &', "sh", str(folder)],
                                os.environ)
        os.waitpid(shell, 0)
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
