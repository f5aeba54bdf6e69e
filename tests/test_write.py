"""Stage 5: out/ is replaced whole or not at all; one build at a time; leftovers are tidied."""

from __future__ import annotations

import fcntl
import os

from conftest import run_cli, snapshot
from denialpages.write import recover


def build(root, out):
    return run_cli("build", "--site", str(root), "--out", str(out))


def test_failed_build_leaves_previous_out_byte_for_byte(make_site, tmp_path):
    root = make_site()
    out = tmp_path / "out"
    assert build(root, out).exit_code == 0
    before = snapshot(out)
    (root / "data" / "payers.yaml").write_text("- slug: [\n")
    result = build(root, out)
    assert result.exit_code == 1
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".out.content-cache.sqlite", ".out.lock", ".out.manifest.sqlite", "out", "out-changes.txt", "out-report", "site"]


def test_render_failure_midway_leaves_previous_out_and_no_staging(make_site, tmp_path):
    root = make_site()
    out = tmp_path / "out"
    assert build(root, out).exit_code == 0
    before = snapshot(out)
    (root / "templates" / "404.html").write_text("{% extends 'base.html' %}{% block main %}{{ nope }}{% endblock %}")
    assert build(root, out).exit_code == 1
    assert snapshot(out) == before
    assert not list(tmp_path.glob(".out.staging-*"))


def test_two_builds_are_byte_identical(make_site, tmp_path):
    root = make_site()
    assert build(root, tmp_path / "a").exit_code == 0
    assert build(root, tmp_path / "b").exit_code == 0
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")


def test_second_build_on_a_locked_out_exits_3(make_site, tmp_path):
    root = make_site()
    out = tmp_path / "out"
    with (tmp_path / ".out.lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = build(root, out)
    assert result.exit_code == 3
    assert "another build is writing" in result.output
    assert not out.exists()
    assert build(root, out).exit_code == 0  # released: a crashed holder's flock goes with its process


def test_recover_restores_out_from_a_build_killed_between_renames(tmp_path):
    out = tmp_path / "out"
    old = tmp_path / f".out.old-{os.getpid() + 1}"
    old.mkdir()
    (old / "index.html").write_text("previous")
    (tmp_path / ".out.staging-123").mkdir()
    recover(out)
    assert (out / "index.html").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]

