"""Benchmark the generator on the bundled catalogue grown to N pages, optionally beside Hugo.

Usage: .venv/bin/python bench/run.py N [N ...] [--vs-hugo] [--jobs J] [--repeat 2] [--timeout S]

For each N: grows the site once (cached in /tmp/denialpages-bench-N, regrown when the repo's
data, content, templates or bench/grow.py change), then measures, each as its own subprocess:

  full build     `python build.py build --site SITE --out OUT --full` from an empty OUT:
                 wall time of the whole command (start-up included), peak memory (the largest
                 SUM of resident memory over the process and all its descendants, sampled from
                 /proc every 40 ms), output size (bytes of every file under OUT)
  no-change      the same command without --full: time, and whether any file under OUT was
                 created, removed or touched (path, inode, mtime_ns and size before and after)
  one edit       a paragraph appended to one content file, then a rebuild: time, and which
                 files under OUT changed (the file is restored afterwards)
  disk floor     bench/floor.py: the same number of files with the same sizes in the same
                 layout (mkdir, open, write, close), timed the same way
  Hugo           with --vs-hugo: /work/shared/hugo-baseline/run.sh N under the same sampler
                 (its hugo_minify_s times the hugo command alone; a first, untimed call
                 installs hugo and writes the workload), interleaved with our full builds

Each measurement runs --repeat times (default 2) and the fastest run is reported, with the load
average at its end: other work on the machine can slow any single run. Results are printed as a
Markdown table and saved in /tmp/denialpages-bench-N/results.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
SNAPSHOT = ("build.py", "denialpages", "data", "content", "templates")  # the generator and the bundled site
HUGO_RUN = Path("/work/shared/hugo-baseline/run.sh")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
SAMPLE_SECONDS = 0.04  # one scan of /proc costs about 4 ms of this process's own CPU
EDIT = "\n\nBenchmark edit {n}: this paragraph was appended by bench/run.py and is removed afterwards.\n"


@dataclass
class Run:
    """One measured command: wall time, peak memory of its process tree, exit status, load."""

    seconds: float
    peak_bytes: int
    peak_processes: int
    returncode: int
    stdout: str
    stderr: str
    load_after: float
    extra: dict[str, object] = field(default_factory=dict)


def process_table() -> dict[int, tuple[int, int]]:
    """Return {pid: (parent pid, resident bytes)} of every process, from /proc/PID/stat."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            handle = os.open(f"/proc/{name}/stat", os.O_RDONLY)
            try:
                stat = os.read(handle, 1024)
            finally:
                os.close(handle)
        except OSError:
            continue  # it ended while we looked
        fields = stat[stat.rindex(b")") + 2 :].split(b" ", 22)
        table[int(name)] = (int(fields[1]), int(fields[21]) * PAGE_SIZE)
    return table


def tree_rss(root: int) -> tuple[int, int]:
    """Return (summed resident bytes, process count) of `root` and all its descendants."""
    table = process_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    total, count, todo = 0, 0, [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            total += table[pid][1]
            count += 1
        todo += children.get(pid, [])
    return total, count


def load_average() -> float:
    """Return the one-minute load average."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def measure(command: list[str], cwd: Path = REPO, timeout: float | None = None) -> Run:
    """Run `command`, sampling its process tree's memory; return the Run."""
    peak = [0, 0]
    done = threading.Event()
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)

    def sample() -> None:
        while not done.is_set():
            rss, count = tree_rss(process.pid)
            if rss > peak[0]:
                peak[:] = [rss, max(peak[1], count)]
            done.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # our own session: the build and its workers
        stdout, stderr = process.communicate()
        stderr += f"\n[bench] killed after {timeout} s"
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return Run(seconds, peak[0], peak[1], process.returncode, stdout, stderr, load_average())


def snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Return {relative path: (inode, mtime_ns, size)} of every file under `folder`."""
    found: dict[str, tuple[int, int, int]] = {}
    todo = [(folder, "")]
    while todo:
        path, prefix = todo.pop()
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    todo.append((Path(entry.path), prefix + entry.name + "/"))
                else:
                    stat = entry.stat(follow_symlinks=False)
                    found[prefix + entry.name] = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    return found


def changed_files(before: dict[str, tuple[int, int, int]], after: dict[str, tuple[int, int, int]]) -> list[str]:
    """Return the files created, removed or touched between two snapshots, sorted."""
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))


def tree_stamp(*paths: Path) -> str:
    """Return a hash of the path and bytes of every file in or under `paths` (what the grown site is made of)."""
    hasher = hashlib.blake2b(digest_size=16)
    for folder in paths:
        for file in [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file()):
            hasher.update(str(file).encode() + b"\0" + file.read_bytes())
    return hasher.hexdigest()


def snapshot_code(rev: str | None) -> tuple[Path, str]:
    """Return a private copy of the generator and bundled site (the work tree, or git `rev`) and its label.

    The builds run from this copy, so edits made to the repo during a run do not change what is
    measured halfway through.
    """
    root = Path("/tmp/denialpages-bench-code")
    if rev:
        commit = subprocess.run(["git", "rev-parse", rev], cwd=REPO, check=True, capture_output=True,
                                text=True).stdout.strip()
        label, dest = commit[:12], root / commit[:12]
        if not dest.is_dir():
            dest.mkdir(parents=True)
            archive = subprocess.run(["git", "archive", commit, *SNAPSHOT], cwd=REPO, check=True, capture_output=True)
            subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
        return dest, label
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True,
                          text=True).stdout.strip()
    stamp = tree_stamp(*(REPO / name for name in SNAPSHOT))[:12]
    dest = root / f"worktree-{stamp}"
    if not dest.is_dir():
        scratch = root / f".tmp-{os.getpid()}"
        shutil.rmtree(scratch, ignore_errors=True)
        for name in SNAPSHOT:
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, scratch / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                scratch.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, scratch / name)
        scratch.rename(dest)
    return dest, f"{head} + work tree {stamp}"


def ensure_site(n: int, work: Path, code: Path) -> int:
    """Grow the site for N into work/site unless the cached one is current; return its page count."""
    stamp = tree_stamp(code / "data", code / "content", code / "templates", code / "denialpages",
                       BENCH / "grow.py") + f"-{n}"
    stamp_file = work / "grow-stamp.json"
    if stamp_file.is_file():
        cached = json.loads(stamp_file.read_text())
        if cached["stamp"] == stamp and (work / "site").is_dir():
            return int(cached["pages"])
    work.mkdir(parents=True, exist_ok=True)
    stamp_file.unlink(missing_ok=True)
    print(f"[bench] growing the site to about {n:,} pages in {work / 'site'}", file=sys.stderr)
    done = subprocess.run([sys.executable, str(BENCH / "grow.py"), str(n), str(work / "site"), "--repo", str(code)],
                          cwd=code, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"[bench] bench/grow.py failed:\n{done.stdout}\n{done.stderr}")
    print(f"[bench] {done.stderr.strip()}", file=sys.stderr)
    pages = int(done.stdout.split()[-1])
    stamp_file.write_text(json.dumps({"stamp": stamp, "pages": pages}))
    return pages


def clear_output(work: Path) -> None:
    """Remove the output folder and everything the generator keeps beside it, then sync."""
    for path in (work / "out", *work.glob(".out.*")):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    os.sync()


def build_command(work: Path, jobs: int | None, full: bool) -> list[str]:
    """Return the build command line for the grown site (run in the code snapshot's folder)."""
    command = [sys.executable, "build.py", "build", "--site", str(work / "site"), "--out", str(work / "out")]
    return command + (["--jobs", str(jobs)] if jobs else []) + (["--full"] if full else [])


def checked(run: Run, what: str) -> Run:
    """Return `run`, or stop the benchmark when the command failed."""
    if run.returncode != 0:
        sys.exit(f"[bench] {what} failed (exit {run.returncode}):\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}")
    print(f"[bench] {what}: {run.seconds:.2f} s, peak {run.peak_bytes / 2**20:.0f} MB "
          f"({run.peak_processes} processes), load {run.load_after:.2f}", file=sys.stderr)
    return run


def hugo_run(n: int, timeout: float | None) -> Run:
    """Run the Hugo baseline for N pages under the sampler; parse what run.sh prints."""
    run = checked(measure(["bash", str(HUGO_RUN), str(n)], timeout=timeout), f"hugo {n}")
    found = dict(re.findall(r"(\w+)=(\S+)", run.stdout))
    run.extra = {"hugo_s": float(found["hugo_minify_s"]), "pages": int(found["pages"]),
                 "out_bytes": int(found["out_bytes"]), "version": found["hugo"]}
    return run


def full_builds(n: int, work: Path, args: argparse.Namespace) -> tuple[list[Run], list[Run]]:
    """Return our full builds and Hugo's (when asked), run alternately."""
    ours, hugo = [], []
    if args.vs_hugo:
        print("[bench] preparing Hugo (install if missing, write its workload; untimed)", file=sys.stderr)
        hugo_run(n, args.timeout)
    for attempt in range(args.repeat):
        clear_output(work)
        ours.append(checked(measure(build_command(work, args.jobs, True), args.code, args.timeout),
                            f"full build {n} #{attempt + 1}"))
        if args.vs_hugo:
            hugo.append(hugo_run(n, args.timeout))
    return ours, hugo


def rebuilds(n: int, work: Path, args: argparse.Namespace) -> tuple[list[Run], list[Run]]:
    """Return no-change rebuilds and one-edit rebuilds, each with the files it changed."""
    still, edited = [], []
    manifest = work / ".out.manifest.sqlite"
    for attempt in range(args.repeat):
        before, manifest_before = snapshot(work / "out"), manifest.stat().st_mtime_ns
        run = checked(measure(build_command(work, args.jobs, False), args.code, args.timeout),
                      f"no-change rebuild {n} #{attempt + 1}")
        changed = changed_files(before, snapshot(work / "out"))
        run.extra = {"changed": len(changed), "examples": changed[:5],
                     "manifest_touched": manifest.stat().st_mtime_ns != manifest_before}
        still.append(run)
    source = min((work / "site/content").rglob("*.md"))
    original = source.read_bytes()
    try:
        for attempt in range(args.repeat):
            before = snapshot(work / "out")
            source.write_bytes(original + EDIT.format(n=attempt + 1).encode())
            run = checked(measure(build_command(work, args.jobs, False), args.code, args.timeout),
                          f"one-edit rebuild {n} #{attempt + 1}")
            changed = changed_files(before, snapshot(work / "out"))
            run.extra = {"edited": source.relative_to(work / "site").as_posix(), "changed": len(changed),
                         "examples": changed[:10]}
            edited.append(run)
    finally:
        source.write_bytes(original)
    return still, edited


def floors(work: Path, args: argparse.Namespace) -> list[Run]:
    """Return disk-floor runs writing the same files (sizes and layout) as the last full build."""
    listing = work / "floor-list.tsv"
    files = snapshot(work / "out")
    listing.write_text("".join(f"{size}\t{path}\n" for path, (_, _, size) in sorted(files.items())))
    if shutil.disk_usage(work).free < 1.3 * sum(size for _, _, size in files.values()):
        clear_output(work)  # room for the floor's copy (at 1,000,000 pages the output is tens of GB)
    runs = []
    for attempt in range(args.repeat):
        shutil.rmtree(work / "floor", ignore_errors=True)
        os.sync()
        runs.append(checked(measure([sys.executable, str(BENCH / "floor.py"), str(listing), str(work / "floor")],
                                    timeout=args.timeout), f"disk floor #{attempt + 1}"))
    shutil.rmtree(work / "floor", ignore_errors=True)
    return runs


def fastest(runs: list[Run]) -> Run:
    """Return the fastest of some runs."""
    return min(runs, key=lambda run: run.seconds)


def bench_one(n: int, args: argparse.Namespace) -> dict[str, object]:
    """Measure everything for N pages; return the results (also saved as results.json)."""
    work = Path(f"/tmp/denialpages-bench-{n}")
    pages = ensure_site(n, work, args.code)
    ours, hugo = full_builds(n, work, args)
    output = sum(size for _, _, size in snapshot(work / "out").values())
    files = len(snapshot(work / "out"))
    still, edited = rebuilds(n, work, args)
    floor = floors(work, args)
    result = {
        "n": n, "pages": pages, "files": files, "output_bytes": output, "jobs": args.jobs,
        "nproc": os.cpu_count(), "code": args.label, "full": [asdict(r) for r in ours], "hugo": [asdict(r) for r in hugo],
        "no_change": [asdict(r) for r in still], "one_edit": [asdict(r) for r in edited],
        "floor": [asdict(r) for r in floor], "summary": ours[-1].stdout.strip().splitlines()[0],
    }
    (work / "results.json").write_text(json.dumps(result, indent=1))
    return result


def best(result: dict[str, object], key: str) -> dict[str, object]:
    """Return the fastest saved run of one measurement."""
    return min(result[key], key=lambda run: run["seconds"])  # type: ignore[arg-type, index]


def table(results: list[dict[str, object]]) -> str:
    """Return the results as a Markdown table (fastest run of each measurement)."""
    head = ("| N | pages | full build s | pages/s | peak MB (all processes) | output MB | no-change rebuild s "
            "(% of full; files changed) | one-edit rebuild s (files changed) | disk floor s | full / floor "
            "| load avg (full) |")
    hugo = any(r["hugo"] for r in results)
    if hugo:
        head += " Hugo --minify s | Hugo peak MB | ours / Hugo (time) | ours / Hugo (peak) |"
    lines = [head, "|" + "---:|" * head.count(" |")]
    for r in results:
        full, still, edit, floor = (best(r, k) for k in ("full", "no_change", "one_edit", "floor"))
        row = (f"| {r['n']:,} | {r['pages']:,} | {full['seconds']:.1f} | {r['pages'] / full['seconds']:,.0f} | "
               f"{full['peak_bytes'] / 2**20:,.0f} | {r['output_bytes'] / 10**6:,.0f} | {still['seconds']:.2f} "
               f"({100 * still['seconds'] / full['seconds']:.0f}%; {still['extra']['changed']}) | "
               f"{edit['seconds']:.2f} ({edit['extra']['changed']}) | {floor['seconds']:.1f} | "
               f"{full['seconds'] / floor['seconds']:.1f}x | {full['load_after']:.1f} |")
        if hugo and r["hugo"]:
            h = min(r["hugo"], key=lambda run: run["extra"]["hugo_s"])
            row += (f" {h['extra']['hugo_s']:.1f} | {h['peak_bytes'] / 2**20:,.0f} | "
                    f"{full['seconds'] / h['extra']['hugo_s']:.2f} | {full['peak_bytes'] / h['peak_bytes']:.2f} |")
        elif hugo:
            row += " | | | |"
        lines.append(row)
    return "\n".join(lines)


def main() -> None:
    """Measure every N given and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", type=int, nargs="+", metavar="N", help="about how many pages (a multiple of 10 with --vs-hugo)")
    parser.add_argument("--vs-hugo", action="store_true", help="also run the Hugo baseline for the same N")
    parser.add_argument("--jobs", type=int, help="passed to `build --jobs` (default: the generator's default)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each measurement; the fastest is reported")
    parser.add_argument("--timeout", type=float, help="seconds after which one command is killed")
    parser.add_argument("--rev", help="measure this git revision instead of the work tree (e.g. HEAD)")
    parser.add_argument("--table-only", action="store_true", help="print the table of saved results")
    args = parser.parse_args()
    if not args.table_only:
        args.code, args.label = snapshot_code(args.rev)
        print(f"[bench] measuring {args.label} (copied to {args.code})", file=sys.stderr)
    if args.vs_hugo and any(n % 10 for n in args.sizes):
        parser.error("with --vs-hugo every N must be a multiple of 10 (run.sh's workload needs it)")
    results = []
    for n in args.sizes:
        saved = Path(f"/tmp/denialpages-bench-{n}/results.json")
        results.append(json.loads(saved.read_text()) if args.table_only else bench_one(n, args))
        print(table(results[-1:]), file=sys.stderr)
    print(table(results))


if __name__ == "__main__":
    main()
