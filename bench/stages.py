"""Where a full build spends its time and memory, by stage: a sampling profiler kept in bench/.

Usage: python bench/stages.py SITE OUT [--code DIR] [--jobs J] [--depth 2] [--cprofile] [--rebuild]
       python bench/stages.py --imports [--code DIR]

Runs `denialpages.pipeline.build_site(SITE, OUT, jobs=J, full=True)` in this process (OUT is
emptied first). A thread samples every 10 ms: the main thread's stack (which function called by
build_site is running, and what it calls, down to --depth levels), this process's resident
memory, and every 0.5 s that of this process and all its workers (summed, as bench/run.py
measures it). It prints, per stage, the wall time, the largest summed memory seen during it, and
this process's own largest and last memory in it. Nothing in the package is changed or instrumented.

--rebuild: build incrementally into the OUT left by an earlier build (full=False), to see where
a no-change or one-edit rebuild spends its time.
--live S: print the call path below build_site every S seconds while it runs.
--cprofile: profile the same build with cProfile instead (use --jobs 1 so the work is in this
process) and print the 30 functions with the most time of their own.
--imports: `python -X importtime` of the command line's start-up, the 12 costliest imports.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import PAGE_SIZE, REPO, tree_rss  # noqa: E402  (the same process-tree memory sampler)

INTERVAL = 0.01
TREE_EVERY = 0.5


def own_rss() -> int:
    """Return this process's resident bytes."""
    with open("/proc/self/statm", "rb") as handle:
        return int(handle.read().split()[1]) * PAGE_SIZE


def stage_of(frame: object, depth: int) -> str | None:
    """Return 'stage > callee > ...' below build_site on a stack, or None outside it."""
    names = []
    while frame is not None:
        names.append(f"{frame.f_code.co_name}")  # type: ignore[attr-defined]
        frame = frame.f_back  # type: ignore[attr-defined]
    names.reverse()
    if "build_site" not in names:
        return None
    below = names[names.index("build_site") + 1 :]
    return " > ".join(below[:depth]) if below else "build_site (own code)"


class Sampler:
    """Samples the main thread's stage and the memory of this process and its workers until stopped.

    Each interval between two samples is charged to the stage seen at its end: while the main
    thread computes, this thread gets the GIL late and samples are sparse, so counting samples
    would undercount busy stages. The process tree (a scan of /proc) is read every TREE_EVERY s.
    """

    def __init__(self, depth: int, live: float = 0.0) -> None:
        self.depth = depth
        self.live = live
        self.last_live = time.perf_counter()
        self.seconds: dict[str, float] = defaultdict(float)
        self.tree_peak: dict[str, int] = defaultdict(int)
        self.own_peak: dict[str, int] = defaultdict(int)
        self.own_last: dict[str, int] = {}
        self.order: list[str] = []
        self.stop = threading.Event()
        self.main = threading.main_thread().ident
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        """Take a sample every INTERVAL seconds (or as soon as the GIL allows)."""
        import os

        last = last_tree = time.perf_counter()
        while not self.stop.wait(INTERVAL):
            frame = sys._current_frames().get(self.main)  # noqa: SLF001
            now = time.perf_counter()
            stage = stage_of(frame, self.depth) if frame is not None else None
            if self.live and frame is not None and now - self.last_live >= self.live:
                self.last_live = now
                print(f"[live] {stage_of(frame, 12)}", file=sys.stderr, flush=True)
            if stage is None:
                last = now
                continue
            if stage not in self.seconds:
                self.order.append(stage)
            self.seconds[stage] += now - last
            last = now
            own = own_rss()
            self.own_last[stage] = own
            self.own_peak[stage] = max(self.own_peak[stage], own)
            if now - last_tree >= TREE_EVERY:
                last_tree = now
                self.tree_peak[stage] = max(self.tree_peak[stage], tree_rss(os.getpid())[0])

    def report(self, total: float) -> str:
        """Return the table of stages in the order first seen."""
        lines = [f"{'stage (below build_site)':<64} {'s':>8} {'share':>6} {'tree peak MB':>12} "
                 f"{'main peak MB':>12} {'main MB at end':>14}"]
        for stage in self.order:
            seconds = self.seconds[stage]
            tree = max(self.tree_peak[stage], self.own_peak[stage])
            lines.append(f"{stage[:64]:<64} {seconds:8.2f} {100 * seconds / total:5.1f}% {tree / 2**20:12.0f} "
                         f"{self.own_peak[stage] / 2**20:12.0f} {self.own_last[stage] / 2**20:14.0f}")
        return "\n".join(lines)


def profile_build(site: Path, out: Path, jobs: int, depth: int, use_cprofile: bool, rebuild: bool,
                  live: float = 0.0) -> None:
    """Build `site` into `out` (emptied first unless `rebuild`) and print where time and memory went."""
    from denialpages import pipeline

    if not rebuild:
        shutil.rmtree(out, ignore_errors=True)
        for leftover in out.parent.glob(f".{out.name}.*"):
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink()
    started = time.perf_counter()
    if use_cprofile:
        profiler = cProfile.Profile()
        profiler.runcall(pipeline.build_site, site, out, jobs=jobs, full=not rebuild)
        print(f"build_site under cProfile: {time.perf_counter() - started:.1f} s")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return
    sampler = Sampler(depth, live)
    sampler.thread.start()
    report = pipeline.build_site(site, out, jobs=jobs, full=not rebuild)
    total = time.perf_counter() - started
    sampler.stop.set()
    sampler.thread.join()
    print(report.summary("Built"))
    print(f"build_site: {total:.1f} s wall in this process (jobs={jobs})")
    print(sampler.report(total))


def import_times(code: Path) -> None:
    """Print the start-up import cost of the command line (python -X importtime)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import denialpages.cli"],
                          cwd=code, capture_output=True, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            rows.append((int(match.group(2)), len(match.group(3)), match.group(4)))
    top = [r for r in rows if r[1] == 1]
    print(f"imports of denialpages.cli: {sum(r[0] for r in top) / 1e6:.3f} s in total (top-level imports)")
    for cumulative, _, name in sorted(rows, reverse=True)[:12]:
        print(f"  {cumulative / 1e6:7.3f} s  {name}")
    began = time.perf_counter()
    subprocess.run([sys.executable, "build.py", "--help"], cwd=code, capture_output=True, check=True)
    print(f"`python build.py --help` wall time: {time.perf_counter() - began:.3f} s")


def main() -> None:
    """Parse the command line and profile."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path, nargs="?")
    parser.add_argument("out", type=Path, nargs="?")
    parser.add_argument("--code", type=Path, default=REPO, help="folder holding denialpages/ (default: this repo)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--depth", type=int, default=2, help="levels of calls below build_site to tell apart")
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--imports", action="store_true")
    parser.add_argument("--rebuild", action="store_true", help="incremental build into an existing OUT")
    parser.add_argument("--live", type=float, default=0.0, help="print the current call path every LIVE seconds")
    args = parser.parse_args()
    sys.path.insert(0, str(args.code.resolve()))
    if args.imports:
        import_times(args.code.resolve())
        return
    if not args.site or not args.out:
        parser.error("SITE and OUT are required unless --imports")
    profile_build(args.site.resolve(), args.out.resolve(), args.jobs, args.depth, args.cprofile, args.rebuild, args.live)


if __name__ == "__main__":
    main()
