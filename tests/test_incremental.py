"""Incremental and sharded builds: unchanged input writes nothing; shards add up to one build."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest
import yaml

import conftest
from conftest import run_cli, snapshot
from denialpages import content as content_module
from denialpages.cache import LIBRARIES, ContentCache, content_cache_path, library_versions, tree_digest
from denialpages.manifest import manifest_path
from denialpages.pipeline import Shard, build_site


def times(folder):
    return {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in folder.rglob("*")}


def test_rebuild_with_nothing_changed_writes_no_file(make_site, tmp_path):
    root, out = make_site(), tmp_path / "out"
    first = build_site(root, out)
    assert first.files == 16 + 10 + 1 + 5  # pages, hubs, 404, sitemap, robots, favicon, _headers, _redirects
    before = times(out)
    manifest = manifest_path(out).stat().st_mtime_ns
    again = build_site(root, out)
    assert again.files == 0
    assert times(out) == before
    assert manifest_path(out).stat().st_mtime_ns == manifest


def test_changing_one_content_file_rewrites_only_the_page_that_shows_it(make_site, tmp_path):
    root, out = make_site(), tmp_path / "out"
    build_site(root, out)
    before = snapshot(out)
    page = root / "content/cigna/cimt/prior-authorization.md"
    page.write_text(page.read_text().replace("in blocks", "in blocks of visits"))
    report = build_site(root, out)
    assert report.files == 1
    after = snapshot(out)
    changed = {path for path in after if after[path] != before.get(path)}
    assert changed == {"help/cigna/cimt/prior-authorization/index.html"}


def test_changing_one_procedure_rewrites_its_pages_only(make_site, tmp_path):
    root, out = make_site(), tmp_path / "out"
    build_site(root, out)
    procedures = yaml.safe_load((root / "data/procedures.yaml").read_text())
    procedures[0]["summary"] = "A changed summary."
    (root / "data/procedures.yaml").write_text(yaml.safe_dump(procedures, sort_keys=False))
    report = build_site(root, out)
    assert report.files == 2 * 2 + 1  # 2 payers x 2 denial types apply to a surgery, and its hub


def test_unchanged_files_keep_their_inode_and_time_after_a_partial_rebuild(make_site, tmp_path):
    root, out = make_site(), tmp_path / "out"
    build_site(root, out)
    keep = out / "help/humana/humira/step-therapy/index.html"
    before = (keep.stat().st_ino, keep.stat().st_mtime_ns)
    page = root / "content/cigna/cimt/prior-authorization.md"
    page.write_text(page.read_text() + "\n")
    build_site(root, out)
    assert (keep.stat().st_ino, keep.stat().st_mtime_ns) == before


@pytest.mark.parametrize("damage", [b"not a database at all", b""])
def test_corrupt_cache_falls_back_to_a_full_build_with_a_warning(make_site, tmp_path, damage):
    root, out = make_site(), tmp_path / "out"
    build_site(root, out)
    expected = snapshot(out)
    manifest_path(out).write_bytes(damage)
    result = run_cli("build", "--site", str(root), "--out", str(out))
    assert result.exit_code == 0, result.output
    if damage:
        assert "warning: the incremental cache" in result.output
    assert "wrote 32 files" in result.output
    assert snapshot(out) == expected


def test_a_file_changed_by_hand_in_out_is_rebuilt(make_site, tmp_path):
    root, out = make_site(), tmp_path / "out"
    build_site(root, out)
    expected = snapshot(out)
    (out / "index.html").write_text("tampered")
    (out / "help/cigna/cimt/prior-authorization/index.html").unlink()
    assert build_site(root, out).files == 2
    assert snapshot(out) == expected


def test_full_flag_ignores_the_cache(make_site, tmp_path):
    root, out = make_site(), tmp_path / "out"
    build_site(root, out)
    assert build_site(root, out, full=True).files == 32


def test_union_of_shards_is_byte_identical_to_one_build(make_site, tmp_path):
    root = make_site()
    build_site(root, tmp_path / "whole")
    merged = tmp_path / "merged"
    merged.mkdir()
    shard_outputs = []
    for index in (1, 2, 3):
        out = tmp_path / f"shard{index}"
        build_site(root, out, shard=Shard(index, 3))
        shard_outputs.append(snapshot(out))
        shutil.copytree(out, merged, dirs_exist_ok=True)
    site_wide = {"index.html", "404.html", "sitemap.xml", "robots.txt", "favicon.ico", "help/cigna/index.html"}
    for name in site_wide:
        assert len({s[name] for s in shard_outputs}) == 1, name
    assert snapshot(merged) == snapshot(tmp_path / "whole")
    pages = [{path for path in s if path.count("/") == 4} for s in shard_outputs]
    assert all(p for p in pages) and not (pages[0] & pages[1])


def test_parallel_build_matches_single_process_build(make_site, tmp_path):
    root = make_site()
    build_site(root, tmp_path / "one", jobs=1)
    build_site(root, tmp_path / "two", jobs=2)
    assert snapshot(tmp_path / "one") == snapshot(tmp_path / "two")


@pytest.mark.parametrize("shard", ["0/3", "4/3", "x", "1/0", "-1/2"])
def test_bad_shard_is_a_usage_error(make_site, shard):
    assert run_cli("build", "--site", str(make_site()), "--shard", shard).exit_code == 2


@pytest.mark.parametrize("jobs", ["0", "-1", "many"])
def test_bad_jobs_is_a_usage_error(make_site, jobs):
    assert run_cli("build", "--site", str(make_site()), "--jobs", jobs).exit_code == 2


def test_removed_page_disappears_from_out(make_site, tmp_path):
    root, out = make_site(), tmp_path / "out"
    build_site(root, out)
    assert (out / "help/humana/index.html").exists()
    payers = yaml.safe_load((root / "data/payers.yaml").read_text())
    (root / "data/payers.yaml").write_text(yaml.safe_dump(payers[:1], sort_keys=False))
    retired = [{"url": line.split("\t")[0], "reason": "payer dropped"}
               for line in (root / "ledger/urls.tsv").read_text().splitlines() if line.startswith("/help/humana/")]
    (root / "data/removed.yaml").write_text(yaml.safe_dump(retired))
    build_site(root, out)
    assert not (out / "help/humana").exists()
    assert os.listdir(out / "help") == ["cigna"]


def test_changed_urls_are_listed_beside_out(make_site, tmp_path):
    root, out = make_site(), tmp_path / "out"
    build_site(root, out)
    first = (tmp_path / "out-changes.txt").read_text().splitlines()
    assert "added\t/help/cigna/cimt/prior-authorization/" in first and "added\t/sitemap.xml" in first
    page = root / "content/cigna/cimt/prior-authorization.md"
    page.write_text(page.read_text().replace("in blocks", "in blocks of visits"))
    build_site(root, out)
    assert (tmp_path / "out-changes.txt").read_text() == "changed\t/help/cigna/cimt/prior-authorization/\n"
    build_site(root, out)  # nothing changed: nothing to announce again
    assert (tmp_path / "out-changes.txt").read_text() == ""


def counting_loads(monkeypatch):
    """Count the builds that read the site (the ones that did not find every input unchanged)."""
    import denialpages.pipeline as pipeline  # noqa: PLC0415

    calls = []
    real = pipeline.load_site

    def load(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "load_site", load)
    return calls


def test_a_build_whose_inputs_are_all_unchanged_reads_nothing_and_reports_the_last_build(make_site, tmp_path, monkeypatch):
    root, out = make_site(), tmp_path / "out"
    first = build_site(root, out)
    calls = counting_loads(monkeypatch)
    again = build_site(root, out)
    assert calls == []
    assert (again.pages, again.hubs, again.noindex, again.layers, again.exclusions, again.files) == (
        first.pages, first.hubs, first.noindex, first.layers, first.exclusions, 0)


def append(path, text: str) -> None:
    path.write_text(path.read_text() + text)


def add_policy(root) -> None:
    (root / "data/policies").mkdir()
    (root / "data/policies/x.yaml").write_text(
        "- {payer: cigna, procedure: cimt, policy: P, publisher: Cigna, url: 'https://a.example/p', "
        "checked: 2026-11-25, summary: S, sources: [{title: T, url: 'https://a.example/p'}]}\n")


EDITS = {
    "a content file": lambda root, out: append(root / "content/cigna/cimt/prior-authorization.md", "\nMore.\n"),
    "a template": lambda root, out: append(root / "templates/404.html", "\n"),
    "a new data file": lambda root, out: add_policy(root),
    "the URL ledger": lambda root, out: append(root / "ledger/urls.tsv", ""),
    "a file under out/": lambda root, out: (out / "robots.txt").write_text("User-agent: *\nDisallow: /\n"),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_any_changed_input_or_output_makes_the_build_read_the_site(make_site, tmp_path, monkeypatch, edit):
    root, out = make_site(), tmp_path / "out"
    build_site(root, out)
    EDITS[edit](root, out)
    if edit == "the URL ledger":  # an edit by hand: the build must read it, and may write it back
        ledger = root / "ledger/urls.tsv"
        ledger.write_text(ledger.read_text().replace("\t2026-", "\t2025-", 1))
    calls = counting_loads(monkeypatch)
    build_site(root, out)
    assert len(calls) == 1
    assert "Disallow: /\n" not in (out / "robots.txt").read_text()


def test_a_different_date_epoch_or_shard_makes_the_build_read_the_site(make_site, tmp_path, monkeypatch):
    root, out = make_site(), tmp_path / "out"
    build_site(root, out)
    calls = counting_loads(monkeypatch)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    build_site(root, out)
    build_site(root, out, shard=Shard(1, 2))
    assert len(calls) == 2


def test_an_edit_rewrites_only_its_page_when_the_next_build_hashes_strings_differently(make_site, tmp_path):
    """Each build is a new process with its own string hashing, so sets in records must not
    change a page's fingerprint from one build to the next."""
    payers = [payer | {"policy_resources": [{"name": "Imaging guidelines", "where": "its vendor's website",
                                             "url": "https://vendor.example.com/", "categories": ["imaging", "surgery", "drug", "therapy"],
                                             "procedures": ["cimt", "humira", "lumbar-spinal-fusion"]}]}
              for payer in yaml.safe_load(yaml.safe_dump(conftest.PAYERS, sort_keys=False))]
    root, out = make_site(conftest.site_files(**{"data/payers.yaml": payers})), tmp_path / "out"

    def build(seed: str) -> str:
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "build.py", "build", "--site", str(root), "--out", str(out), "--quiet"],
                              cwd=conftest.REPO, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    build("1")
    before = snapshot(out)
    page = root / "content/cigna/cimt/prior-authorization.md"
    page.write_text(page.read_text().replace("in blocks", "in blocks of visits"))
    build("2")
    after = snapshot(out)
    assert {path for path in after if after[path] != before.get(path)} == {"help/cigna/cimt/prior-authorization/index.html"}
    assert (out.parent / "out-changes.txt").read_text().split() == ["changed", "/help/cigna/cimt/prior-authorization/"]


@pytest.fixture()
def rendered_files(monkeypatch):
    """Record the path of every content file whose Markdown a build renders."""
    rendered: list[str] = []
    real = content_module.read_content

    def read(file, path, *args):
        rendered.append(path)
        return real(file, path, *args)

    monkeypatch.setattr(content_module, "read_content", read)
    return rendered


def second_content_file(root) -> None:
    (root / "content/cigna/humira").mkdir(parents=True, exist_ok=True)
    (root / "content/cigna/humira/step-therapy.md").write_text(
        "---\nreviewed: 2026-11-24\n---\n## Why it was denied\n\nThe plan wanted a cheaper biosimilar tried first.\n\n"
        "## Appeal route\n\nAsk for a step-therapy exception and send the pharmacy history.\n\n"
        "## Documents to gather\n\n1. Pharmacy fill records\n\n"
        "## Criteria mapping\n\n| Criterion | Record |\n|---|---|\n| Biosimilar tried | Fill dates |\n")


def test_a_rebuild_renders_only_the_content_files_that_changed(make_site, tmp_path, rendered_files):
    root, out = make_site(), tmp_path / "out"
    second_content_file(root)
    build_site(root, out)
    assert sorted(rendered_files) == ["content/cigna/cimt/prior-authorization.md", "content/cigna/humira/step-therapy.md"]
    rendered_files.clear()
    page = root / "content/cigna/cimt/prior-authorization.md"
    page.write_text(page.read_text().replace("in blocks", "in blocks of visits"))
    build_site(root, out)
    assert rendered_files == ["content/cigna/cimt/prior-authorization.md"]
    build_site(root, tmp_path / "fresh" / "out")
    assert snapshot(out) == snapshot(tmp_path / "fresh" / "out")


def test_the_content_cache_is_rewritten_only_when_content_changes(make_site, tmp_path):
    root, out = make_site(), tmp_path / "out"
    build_site(root, out)
    cache = content_cache_path(out)
    written = cache.stat().st_mtime_ns
    (root / "data/site.yaml").write_text((root / "data/site.yaml").read_text().replace("DenialHelp", "Denial Help"))
    build_site(root, out)
    assert cache.stat().st_mtime_ns == written
    (root / "content/cigna/cimt/prior-authorization.md").unlink()
    build_site(root, out)
    assert cache.stat().st_mtime_ns != written
    assert ContentCache(cache).read([]) == {} and sqlite3.connect(cache).execute("SELECT count(*) FROM content").fetchone() == (0,)


@pytest.mark.parametrize("damage", [b"not a database", b"SQLite format 3\x00" + bytes(200)])
def test_a_damaged_content_cache_is_ignored_and_rebuilt(make_site, tmp_path, rendered_files, damage):
    root, out = make_site(), tmp_path / "out"
    build_site(root, out)
    expected = snapshot(out)
    content_cache_path(out).write_bytes(damage)
    shutil.rmtree(out)
    rendered_files.clear()
    build_site(root, out)
    assert rendered_files == ["content/cigna/cimt/prior-authorization.md"]
    assert snapshot(out) == expected
    rendered_files.clear()
    shutil.rmtree(out)
    build_site(root, out)
    assert rendered_files == []


def test_a_full_build_ignores_the_content_cache_and_writes_it_afresh(make_site, tmp_path, rendered_files):
    root, out = make_site(), tmp_path / "out"
    build_site(root, out)
    rendered_files.clear()
    build_site(root, out, full=True)
    assert rendered_files == ["content/cigna/cimt/prior-authorization.md"]
    rendered_files.clear()
    shutil.rmtree(out)
    build_site(root, out)
    assert rendered_files == []


def test_library_versions_read_from_folder_names_agree_with_importlib_metadata():
    assert library_versions() == [f"{name}={importlib.metadata.version(name)}" for name in LIBRARIES]


def test_input_hash_sees_nested_and_hidden_files_and_skips_what_the_pattern_excludes(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "deep.md").write_text("one")
    (tmp_path / ".hidden.py").write_text("two")
    first = tree_digest(tmp_path, "*")
    (tmp_path / "a" / "b" / "deep.md").write_text("one!")
    assert tree_digest(tmp_path, "*") != first
    python_only = tree_digest(tmp_path, "*.py")
    (tmp_path / "a" / "b" / "deep.md").write_text("three")
    assert tree_digest(tmp_path, "*.py") == python_only
    (tmp_path / ".hidden.py").write_text("four")
    assert tree_digest(tmp_path, "*.py") != python_only
