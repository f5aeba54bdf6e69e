"""Stage 3 and 5 for landing pages, over several processes.

Workers are forked from the main process after loading, planning and assessing, so they
inherit the Renderer (data, plan, templates) without pickling it. Each worker renders slices of
pages and writes them straight into the staging folder, returning only what the manifest
records of each file, so the main process never holds page bodies.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import signal
from array import array
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import NamedTuple, TypeVar

import click

from .errors import InputError
from .render import Renderer

T = TypeVar("T")
R = TypeVar("R")
SLICE = 256
PR_SET_PDEATHSIG = 1
# Set in each worker by _start_worker (inherited through fork); the main process never sets it.
_worker: tuple[Renderer, Path | None] | None = None
_inherited: Callable[[], object] | None = None  # call_forked's function, for the process it forks


def _start_worker(renderer: Renderer, staging: Path | None) -> None:
    global _worker  # noqa: PLW0603 (one renderer per worker process, see the module docstring)
    _start_helper()
    _worker = (renderer, staging)


def die_with_parent() -> None:
    """Ask Linux to kill this worker if the main process dies (SIGKILL leaves no cleanup)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: a dead pool's workers exit when their queue closes


def fork_map(function: Callable[[T], R], items: Sequence[T], jobs: int) -> list[R]:
    """Return [function(item) for item in items], computed by `jobs` forked processes."""
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_helper) as pool:
        try:
            return list(pool.map(function, items))
        except BrokenProcessPool:
            raise WorkerDied("a worker process died (killed, or out of memory)") from None


def call_forked(function: Callable[[], R]) -> R:
    """Return function(), computed in one forked process that inherits everything this one holds,
    so that the heap it fragments goes away with it (only the result comes back, pickled)."""
    global _inherited  # noqa: PLW0603 (read by the forked process, see _call_inherited)
    _inherited = function
    try:
        return fork_map(_call_inherited, [None], 1)[0]  # type: ignore[return-value]
    finally:
        _inherited = None


def _call_inherited(_: None) -> object:
    assert _inherited is not None
    return _inherited()


def _start_helper() -> None:
    """Prepare a forked worker: Ctrl-C is the main process's to handle; die with it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()


def _render_slice(indices: Sequence[int]) -> list[WrittenPage]:
    assert _worker is not None
    renderer, staging = _worker
    return write_slice(renderer, staging, indices)


class WrittenPage(NamedTuple):
    """A landing page as written: what the manifest records of its file (size, time and inode
    are 0 when nothing was written)."""

    index: int
    size: int
    mtime_ns: int
    inode: int


class WrittenPages:
    """Landing pages as written, held as four arrays (32 bytes a page, not an object of 200)."""

    __slots__ = ("index", "size", "mtime_ns", "inode")

    def __init__(self) -> None:
        self.index, self.size, self.mtime_ns, self.inode = array("q"), array("q"), array("q"), array("q")

    def extend(self, pages: Iterable[WrittenPage]) -> None:
        """Add pages as written."""
        for page in pages:
            self.index.append(page.index)
            self.size.append(page.size)
            self.mtime_ns.append(page.mtime_ns)
            self.inode.append(page.inode)

    def __iter__(self) -> Iterator[WrittenPage]:
        return map(WrittenPage, self.index, self.size, self.mtime_ns, self.inode)

    def __len__(self) -> int:
        return len(self.index)


def write_slice(renderer: Renderer, staging: Path | None, indices: Sequence[int]) -> list[WrittenPage]:
    """Render the pages at `indices` and write them under `staging` (None: check only)."""
    written = []
    made: set[Path] = set()
    for index in indices:
        page = renderer.render_page(index)
        if staging is None:
            written.append(WrittenPage(index, len(page.body), 0, 0))
            continue
        target = staging / page.path
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        stat = write_file(target, page.body)
        written.append(WrittenPage(index, stat.st_size, stat.st_mtime_ns, stat.st_ino))
    return written


def write_file(target: Path, body: bytes) -> os.stat_result:
    """Write `body` to a new file at `target`; return the file's state once written (moving the
    staging folder into place keeps size, time and inode)."""
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        view = memoryview(body)
        while view:
            view = view[os.write(descriptor, view):]
        return os.fstat(descriptor)
    finally:
        os.close(descriptor)


def slices(indices: Sequence[int], size: int = SLICE) -> Iterator[Sequence[int]]:
    """Yield consecutive runs of `indices` (neighbours share payer and procedure fragments)."""
    for start in range(0, len(indices), size):
        yield indices[start : start + size]


def render_pages(renderer: Renderer, staging: Path | None, indices: Sequence[int], jobs: int,
                 progress: Callable[[int], None], meanwhile: Generator[None, None, T]) -> tuple[WrittenPages, T]:
    """Render the pages at `indices` into `staging` with `jobs` processes; return them as written
    and what `meanwhile` returns.

    The main process is one of the `jobs`. Once the `jobs - 1` forked workers have slices queued,
    it runs the steps of `meanwhile` (the serial work that the pages do not wait for), one step
    between top-ups, then renders whatever slices are left. Workers are forked before that work,
    so they neither wait for it nor inherit what it makes.
    """
    pages = WrittenPages()
    queue = deque(slices(indices))

    def take(done: list[WrittenPage]) -> None:
        pages.extend(done)
        progress(len(done))

    if jobs <= 1 or len(queue) <= 1:
        result = run_steps(meanwhile)
        while queue:
            take(write_slice(renderer, staging, queue.popleft()))
        return pages, result
    release_free_memory()
    gc.freeze()  # keep the collector from touching (and so copying) inherited objects
    context = multiprocessing.get_context("fork")
    pool = ProcessPoolExecutor(jobs - 1, mp_context=context, initializer=_start_worker, initargs=(renderer, staging))
    pending: set[Future[list[WrittenPage]]] = set()
    steps: Generator[None, None, T] | None = meanwhile
    try:
        while queue or pending or steps:
            for future in [f for f in pending if f.done()]:
                pending.remove(future)
                take(future.result())
            while queue and len(pending) < 2 * (jobs - 1):
                pending.add(pool.submit(_render_slice, queue.popleft()))
            if steps:
                try:
                    next(steps)
                except StopIteration as finished:
                    steps, result = None, finished.value
            elif queue:
                take(write_slice(renderer, staging, queue.pop()))
            elif pending:
                wait(pending, return_when=FIRST_COMPLETED)
    except BrokenProcessPool:
        raise WorkerDied("a worker process died while rendering pages (killed, or out of memory); "
                         "the previous output folder was left as it was") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # no worker may write once staging is gone
        gc.unfreeze()
    return pages, result


def run_steps(steps: Generator[None, None, T]) -> T:
    """Run a generator of steps to its end; return its value."""
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            return finished.value


def release_free_memory() -> None:
    """Collect garbage and hand freed heap back to the system (glibc keeps it otherwise), so a
    stage's temporary data is not counted again in every process forked after it."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: freed memory stays with the process


class WorkerDied(click.ClickException):
    """A rendering worker ended without finishing its pages (exit code 1)."""
