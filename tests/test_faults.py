"""Issue 5, faults: a build killed, starved or refused part-way leaves the published out/ whole.

Every test here runs the real command line in a child process (`python build.py build ...`) on a
site of 600 pages, built first into out/ as CI last published it, then hurts a second build of a
changed site part-way through. Kill points are measured in progress, not time: the test polls
the staging folder beside out/ and signals the build once it exists and once it holds a third and
two thirds of the files, so the tests stay meaningful however fast the build becomes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml
from conftest import REPO, SITE, denial, payer, procedure, run_cli, snapshot

from denialpages.manifest import manifest_path

PAYERS, PROCEDURES, DENIALS = 20, 10, 3
CATEGORIES = ("surgery", "drug", "therapy", "test", "imaging", "device")
PLAN_TYPES = ("employer", "marketplace", "medicare-advantage", "medicaid")
TIMEOUT = 120


def big_site(site_name: str = "DenialHelp") -> dict[str, object]:
    """Return the files of a 600-page site; `site_name` shows on every page, so changing it rebuilds all."""
    return {
        "data/site.yaml": {**SITE, "name": site_name},
        "data/payers.yaml": [
            payer(f"payer-{i}", f"Payer {i}", list(PLAN_TYPES[: 1 + i % 4])) for i in range(PAYERS)
        ],
        "data/procedures.yaml": [
            procedure(f"proc-{i}", f"Procedure {i}", CATEGORIES[i % 6]) for i in range(PROCEDURES)
        ],
        "data/denial_types.yaml": [
            denial(f"denial-{i}", f"Denial {i}", f"reason {i}") for i in range(DENIALS)
        ],
    }


def start(root: Path, out: Path, *flags: str, preexec=None) -> subprocess.Popen[str]:
    """Start `build.py build` in its own process group, as CI or a terminal would."""
    return subprocess.Popen(
        [sys.executable, "build.py", "build", "--site", str(root), "--out", str(out), *flags],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=preexec,  # noqa: PLW1509 (sets a limit or drops a capability; the tests start no threads)
    )


@contextlib.contextmanager
def running(root: Path, out: Path, *flags: str, preexec=None) -> Iterator[subprocess.Popen[str]]:
    """Run a build for the duration; if the test ends first, kill everything it started."""
    proc = start(root, out, *flags, preexec=preexec)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            kill_group(proc.pid)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def run_build(root: Path, out: Path, *flags: str, preexec=None) -> tuple[int, str, str]:
    """Run a build to its end; return (exit code, stdout, stderr)."""
    with running(root, out, *flags, preexec=preexec) as proc:
        return finish(proc)


def finish(proc: subprocess.Popen[str], timeout: float = TIMEOUT) -> tuple[int, str, str]:
    """Wait for a build; return (exit code, stdout, stderr). A build that hangs fails the test."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"the build hung for {timeout} s\n{stdout}\n{stderr}")
    return proc.returncode, stdout, stderr


def group_alive(pgid: int) -> list[int]:
    """Return the processes (other than zombies) still in process group `pgid`."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def kill_group(pgid: int) -> None:
    """Make sure nothing this test started is left running."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def count_files(folder: Path) -> int:
    """Return how many files are under `folder` now (0 if it vanished)."""
    return sum(len(files) for _, _, files in os.walk(folder))


def wait_for_staging(proc: subprocess.Popen[str], parent: Path, at_least: int) -> None:
    """Return once a staging folder beside out/ holds `at_least` files; fail if the build ends first."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            code, stdout, stderr = finish(proc)
            pytest.fail(
                f"the build ended (exit {code}) before holding {at_least} staged files; "
                f"make big_site() larger\n{stdout}\n{stderr}"
            )
        staging = list(parent.glob(".out.staging-*"))
        if staging and count_files(staging[0]) >= at_least:
            return
        time.sleep(0.001)
    pytest.fail("no staging folder appeared beside out/")


def strays(parent: Path, grace: float = 10) -> list[str]:
    """Return what a build left beside out/ that is not out/, its report, lock or manifest, and any
    file in the report folder besides the report.

    A replaced out/ may be deleted in the background after the build exits, so allow `grace`
    seconds for it to go.
    """
    deadline = time.monotonic() + grace
    while True:
        found = sorted(
            p.name
            for p in parent.iterdir()
            if p.name not in ("out", "out-report") and (p.is_dir() or re.match(r"\.out\.(staging|old)-", p.name))
        )
        report = parent / "out-report"
        found += sorted(f"out-report/{p.name}" for p in report.glob("*") if p.name not in ("report.json", "report.html"))
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.fixture(scope="module")
def changed_reference(tmp_path_factory) -> dict[str, bytes]:
    """Return the snapshot of the changed site built normally: what out/ holds after a good rebuild."""
    base = tmp_path_factory.mktemp("reference")
    root = write_site(base / "site", big_site("DenialHelp 2"))
    result = run_cli("build", "--site", str(root), "--out", str(base / "out"), "--jobs", "1")
    assert result.exit_code == 0, result.output
    return snapshot(base / "out")


def write_site(root: Path, files: dict[str, object]) -> Path:
    """Write a site like conftest's make_site, for module-scoped fixtures."""
    shutil.copytree(REPO / "templates", root / "templates")
    (root / "data").mkdir(parents=True)
    shutil.copy(REPO / "data" / "facts.yaml", root / "data" / "facts.yaml")
    for path, value in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(yaml.safe_dump(value, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return root


class Published(NamedTuple):
    """out/ as CI last published it, and the changed site the next build is made from."""

    root: Path
    out: Path
    before: dict[str, bytes]

    @property
    def files(self) -> int:
        """Return how many files a whole build writes."""
        return len(self.before)


@pytest.fixture(scope="module")
def first_build(tmp_path_factory) -> Path:
    """Return a folder holding out/ (and its lock and cache) built once from the first site."""
    base = tmp_path_factory.mktemp("first")
    root = write_site(base / "site", big_site())
    result = run_cli("build", "--site", str(root), "--out", str(base / "pub" / "out"), "--jobs", "1")
    assert result.exit_code == 0, result.output
    return base / "pub"


@pytest.fixture
def published(first_build, make_site, tmp_path) -> Published:
    """Return a copy of the first build's out/ (as CI last published it) and the changed site."""
    shutil.copytree(first_build, tmp_path / "pub")
    out = tmp_path / "pub" / "out"
    return Published(make_site(big_site("DenialHelp 2"), name="changed"), out, snapshot(out))


def assert_rebuilds_cleanly(root: Path, out: Path, reference: dict[str, bytes]) -> None:
    """Assert the next ordinary build succeeds at once, leaves only out/, and out/ is the whole new site."""
    code, stdout, stderr = run_build(root, out, "--jobs", "2")
    assert code == 0, stdout + stderr
    assert strays(out.parent) == []
    assert snapshot(out) == reference


KILL_POINTS = {"staging-created": 0, "a-third-written": 1 / 3, "two-thirds-written": 2 / 3}


KILLS = [(sig, point, "2") for sig in (signal.SIGKILL, signal.SIGINT) for point in KILL_POINTS]
KILLS += [(sig, "a-third-written", "1") for sig in (signal.SIGKILL, signal.SIGINT)]


@pytest.mark.parametrize(
    ("sig", "point", "jobs"), KILLS, ids=[f"{sig.name}-{point}-jobs{jobs}" for sig, point, jobs in KILLS]
)
def test_killed_build_leaves_previous_out_exactly(published, changed_reference, sig, point, jobs):
    root, out, before = published
    with running(root, out, "--jobs", jobs) as proc:
        wait_for_staging(proc, out.parent, int(KILL_POINTS[point] * published.files))
        os.killpg(proc.pid, sig)  # the whole group, as CI cancelling a job (SIGKILL) or Ctrl-C (SIGINT) does
        code, stdout, stderr = finish(proc)
    assert "Built" not in stdout, "the build finished before the signal; the kill point was missed"
    assert snapshot(out) == before
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
    else:  # an interrupted build tidies up after itself and says so plainly
        assert code in (1, 130), stdout + stderr
        assert "Traceback" not in stderr, stderr
        assert strays(out.parent) == []
    assert_rebuilds_cleanly(root, out, changed_reference)  # also: the killed build's lock is not held


def test_killing_only_the_main_process_leaves_no_worker_behind(published, changed_reference):
    """The OOM killer or `kill -9 PID` takes the main process alone; its workers must not outlive it."""
    root, out, before = published
    with running(root, out, "--jobs", "2") as proc:
        wait_for_staging(proc, out.parent, published.files // 3)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=TIMEOUT)  # not communicate(): orphaned workers would hold its pipes open
        deadline = time.monotonic() + 5
        while group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        orphans = group_alive(proc.pid)
        kill_group(proc.pid)
    assert orphans == [], (
        "worker processes outlived the killed build (they hold its lock and write into staging)"
    )
    assert snapshot(out) == before
    assert_rebuilds_cleanly(root, out, changed_reference)


def workers_of(pid: int) -> list[int]:
    """Return the live children of `pid` forked from it (same command line): its worker processes."""
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                same = (entry / "cmdline").read_bytes() == cmdline
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z" and same:
                found.append(int(entry.name))
    return found


def test_a_worker_killed_mid_build_fails_the_build_cleanly(published, changed_reference):
    root, out, before = published
    with running(root, out, "--jobs", "2") as proc:
        wait_for_staging(proc, out.parent, published.files // 4)
        workers = workers_of(proc.pid)
        assert workers, "a --jobs 2 build of 600 pages runs worker processes"
        os.kill(workers[0], signal.SIGKILL)
        code, stdout, stderr = finish(proc, timeout=60)  # fails if the build waits forever for the lost work
    assert code not in (0, 2), stdout + stderr
    assert "worker" in stderr.lower(), stderr
    assert snapshot(out) == before
    assert strays(out.parent) == []
    assert_rebuilds_cleanly(root, out, changed_reference)


def file_size_limit() -> None:
    """In the child: let no file grow past 16 KiB, so page writes fail as on a full disk (EFBIG)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_full_disk_is_a_clear_error_and_out_is_untouched(published, changed_reference, jobs):
    root, out, before = published
    code, stdout, stderr = run_build(root, out, "--jobs", jobs, preexec=file_size_limit)
    assert code == 1, stdout + stderr
    assert "Traceback" not in stderr, stderr
    assert os.strerror(27) in stderr, stderr  # EFBIG: "File too large"
    assert str(out.parent) in stderr, stderr  # and where
    assert snapshot(out) == before
    assert strays(out.parent) == []
    assert_rebuilds_cleanly(root, out, changed_reference)


def without_root_override() -> None:
    """In the child: drop the capabilities that let root ignore permission bits.

    Root passes every permission check through CAP_DAC_OVERRIDE (write) and CAP_DAC_READ_SEARCH,
    so `chmod 555` does not stop a root build, and tests often run as root in CI containers.
    Dropping both from the bounding set before exec leaves the child uid 0, able to read the
    venv and the site, but bound by the folder's mode like any other user. A non-root run
    needs nothing: the mode already binds it.
    """
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_read_only_target_is_a_clear_error_and_out_is_untouched(published):
    root, out, before = published
    out.parent.chmod(0o555)
    try:
        probe = subprocess.run(
            [sys.executable, "-c", f"open({str(out.parent / 'probe')!r}, 'w')"],
            preexec_fn=without_root_override,
            capture_output=True,
            text=True,
            check=False,
        )
        assert "PermissionError" in probe.stderr, (
            "the read-only folder must bind the child (see without_root_override)"
        )
        code, stdout, stderr = run_build(root, out, "--jobs", "2", preexec=without_root_override)
    finally:
        out.parent.chmod(0o755)
    assert code == 1, stdout + stderr
    assert "Traceback" not in stderr, stderr
    assert os.strerror(13) in stderr, stderr  # "Permission denied"
    assert str(out.parent) in stderr, stderr  # and where
    assert snapshot(out) == before
    assert strays(out.parent) == []


BOOM = (
    '{% if payer.slug == "payer-15" and procedure.slug == "proc-7" %}{{ payer.no_such_field }}{% endif %}\n'
)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_template_failing_for_one_page_in_a_worker_fails_cleanly(published, jobs):
    """One page (payer-15, well after the first slice) breaks its template; the error comes home."""
    root, out, before = published
    page = root / "templates" / "page.html"
    lines = page.read_text().splitlines(keepends=True)
    at = next(n for n, line in enumerate(lines) if "{% block main %}" in line) + 1
    page.write_text("".join(lines[:at]) + BOOM + "".join(lines[at:]))
    code, stdout, stderr = run_build(root, out, "--jobs", jobs)
    assert code == 1, stdout + stderr
    assert "Traceback" not in stderr, stderr
    assert re.search(
        rf"^templates/page\.html:{at + 1}: while rendering /help/payer-15/proc-7/denial-\d/: .*no_such_field",
        stderr,
        re.MULTILINE,
    ), stderr
    assert snapshot(out) == before
    assert strays(out.parent) == []


def test_two_builds_at_once_do_not_interleave(published, changed_reference):
    root, out, _ = published
    for _ in range(3):  # --full: every round rewrites every page, so the two builds really overlap
        with (
            running(root, out, "--jobs", "2", "--full") as one,
            running(root, out, "--jobs", "2", "--full") as two,
        ):
            results = [finish(one), finish(two)]
        codes = sorted(code for code, _, _ in results)
        assert codes in ([0, 0], [0, 3]), results
        for code, _, stderr in results:
            assert "Traceback" not in stderr, stderr
            if code == 3:
                assert f"another build is writing {out}" in stderr, stderr
        assert snapshot(out) == changed_reference
        assert strays(out.parent) == []


def test_truncated_cache_falls_back_to_a_full_build_with_a_warning(make_site, tmp_path):
    root, out = make_site(), tmp_path / "out"
    assert run_cli("build", "--site", str(root), "--out", str(out), "--jobs", "1").exit_code == 0
    expected = snapshot(out)
    manifest = manifest_path(out)
    manifest.write_bytes(manifest.read_bytes()[: manifest.stat().st_size // 2])
    page = out / "help/cigna/cimt/prior-authorization/index.html"
    page.write_bytes(page.read_bytes().replace(b"CIMT", b"XXXX"))  # only a full build puts this right
    result = run_cli("build", "--site", str(root), "--out", str(out), "--jobs", "1")
    assert result.exit_code == 0, result.output
    assert "warning: the incremental cache" in result.output
    assert snapshot(out) == expected


def test_a_page_edited_by_hand_in_place_is_rebuilt(make_site, tmp_path):
    """The cache is checked, never trusted: an edit that keeps the file's size is still seen."""
    root, out = make_site(), tmp_path / "out"
    assert run_cli("build", "--site", str(root), "--out", str(out), "--jobs", "1").exit_code == 0
    expected = snapshot(out)
    page = out / "help/cigna/cimt/prior-authorization/index.html"
    page.write_bytes(page.read_bytes().replace(b"CIMT", b"XXXX"))
    result = run_cli("build", "--site", str(root), "--out", str(out), "--jobs", "1")
    assert result.exit_code == 0, result.output
    assert snapshot(out) == expected
