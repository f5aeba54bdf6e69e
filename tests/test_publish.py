"""Publishing: `publish-s3` (the aws commands, dry and run through a fake aws) and `indexnow`."""

from __future__ import annotations

import fnmatch
import http.server
import itertools
import json
import os
import shlex
import sys
import threading
from pathlib import Path

import pytest
import yaml

from conftest import PAYERS, PROCEDURES, SITE, payer, run_cli, site_files
from denialpages.changes import Change
from denialpages.hosting import LONG_CACHE, TEXT_CACHE
from denialpages.publish_s3 import MAX_INVALIDATION_PATHS, PAGE_CACHE, invalidation_paths

KEY = "3f6c1e0b-9d2a-4c57-8e41-denialhelp"
HTML, XML, TEXT = "text/html; charset=utf-8", "application/xml", "text/plain; charset=utf-8"
EXPECTED = {".html": (HTML, PAGE_CACHE), ".xml": (XML, TEXT_CACHE), ".txt": (TEXT, TEXT_CACHE),
            ".ico": ("image/x-icon", LONG_CACHE)}


def keyed_site(**overrides: object) -> dict[str, object]:
    """Return the small site's files with an IndexNow key in data/site.yaml."""
    return site_files(**{"data/site.yaml": {**SITE, "indexnow_key": KEY}, **overrides})


def build(root: Path, out: Path) -> None:
    result = run_cli("build", "--site", str(root), "--out", str(out))
    assert result.exit_code == 0, result.output


def aws_commands(output: str) -> list[list[str]]:
    """Return the aws commands a dry run printed, split as a shell would."""
    return [shlex.split(line) for line in output.splitlines() if line.startswith("aws ")]


def value(argv: list[str], flag: str) -> str | None:
    """Return the value after `flag` in a command, or None."""
    return argv[argv.index(flag) + 1] if flag in argv else None


def selects(argv: list[str], rel: str) -> bool:
    """Return True when an `aws s3 sync` command's filters let `rel` through (the last match wins)."""
    chosen = True
    for flag, pattern in itertools.pairwise(argv):
        if flag in ("--exclude", "--include") and fnmatch.fnmatchcase(rel, pattern):
            chosen = flag == "--include"
    return chosen


def sync_into(bucket: dict[str, tuple[str | None, str | None]], out: Path, argv: list[str]) -> None:
    """Apply one `aws s3 sync` to a bucket held as {key: (content type, cache control)}, as aws would."""
    local = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    for key in [k for k in bucket if selects(argv, k) and k not in local and "--delete" in argv]:
        del bucket[key]
    for rel in sorted(local):
        if selects(argv, rel):
            bucket[rel] = (value(argv, "--content-type"), value(argv, "--cache-control"))


def publish_dry(root: Path, out: Path, *extra: str) -> list[list[str]]:
    result = run_cli("publish-s3", "--site", str(root), "--out", str(out), "--bucket", "denialhelp-site",
                     "--dry-run", *extra)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("Would publish")
    return aws_commands(result.output)


def test_every_file_is_uploaded_by_exactly_one_pass_with_its_type_and_cache(make_site, tmp_path):
    root = make_site(keyed_site())
    out = tmp_path / "out"
    build(root, out)
    commands = publish_dry(root, out, "--prefix", "/www/")
    syncs = [c for c in commands if c[:3] == ["aws", "s3", "sync"]]
    assert syncs == commands  # no distribution: no invalidation
    assert all(c[3] == str(out) and c[4] == "s3://denialhelp-site/www" and "--delete" in c for c in syncs)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert f"{KEY}.txt" in files and "_headers" in files and "_redirects" in files
    for rel in files:
        passes = [c for c in syncs if selects(c, rel)]
        if rel in ("_headers", "_redirects"):
            assert passes == [], rel
            continue
        assert len(passes) == 1, rel
        wanted = EXPECTED[Path(rel).suffix]
        assert (value(passes[0], "--content-type"), value(passes[0], "--cache-control")) == wanted, rel
    page_cache = dict(part.strip().partition("=")[::2] for part in PAGE_CACHE.split(","))
    assert page_cache["max-age"] == "0" and "must-revalidate" in page_cache and int(page_cache["s-maxage"]) <= 3600
    order = [value(c, "--include") for c in syncs]
    assert order.index("*.html") < order.index("*.xml")  # pages exist before a sitemap lists them


def rename_and_retire(root: Path, out: Path) -> list[str]:
    """Rename humana (old URLs redirect), retire the procedure tumor-genomic-profiling; return retired URLs."""
    renamed = [PAYERS[0], payer("humana-health", "Humana", ["medicare-advantage", "medicaid"], previous_slugs=["humana"])]
    (root / "data/payers.yaml").write_text(yaml.safe_dump(renamed, sort_keys=False))
    (root / "data/procedures.yaml").write_text(yaml.safe_dump(PROCEDURES[:3], sort_keys=False))
    refused = run_cli("build", "--site", str(root), "--out", str(out))
    assert refused.exit_code == 1
    gone = [line.split(": ", 1)[1].split(" ", 1)[0] for line in refused.output.splitlines() if "would disappear" in line]
    assert gone and all("tumor-genomic-profiling" in url for url in gone)
    (root / "data/removed.yaml").write_text(yaml.safe_dump([{"url": u, "reason": "retired"} for u in gone]))
    build(root, out)
    return gone


def test_retired_pages_leave_the_bucket_and_redirect_pages_stay_pages(make_site, tmp_path):
    root = make_site(keyed_site())
    out = tmp_path / "out"
    build(root, out)
    bucket: dict[str, tuple[str | None, str | None]] = {}
    for argv in publish_dry(root, out):
        sync_into(bucket, out, argv)
    gone = rename_and_retire(root, out)
    commands = publish_dry(root, out, "--distribution", "E2QWRUHAPOMQZL", "--website-redirect")
    for argv in commands:
        if argv[:3] == ["aws", "s3", "sync"]:
            sync_into(bucket, out, argv)
    for url in gone:
        assert f"{url.strip('/')}/index.html" not in bucket
        assert not (out / url.strip("/") / "index.html").exists()
    old = "help/humana/cimt/prior-authorization/index.html"
    assert bucket[old] == (HTML, PAGE_CACHE)
    assert "_headers" not in bucket and "_redirects" not in bucket
    assert set(bucket) == {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {"_headers", "_redirects"}
    copies = {value(c, "--website-redirect"): c for c in commands if c[:3] == ["aws", "s3", "cp"]}
    assert copies["/help/humana-health/cimt/prior-authorization/"][3:5] == [str(out / old), f"s3://denialhelp-site/{old}"]
    assert value(copies["/help/humana-health/"], "--content-type") == HTML
    invalidation = commands[-1]
    assert invalidation[:5] == ["aws", "cloudfront", "create-invalidation", "--distribution-id", "E2QWRUHAPOMQZL"]
    paths = invalidation[6:]
    assert set(gone) <= set(paths)
    assert "/help/humana/cimt/prior-authorization/" in paths and "/help/humana-health/cimt/prior-authorization/" in paths
    assert "/_headers" not in paths and "/_redirects" not in paths
    assert len(paths) == len(set(paths)) and all(p.startswith("/") for p in paths)


def test_invalidation_names_paths_up_to_the_limit_then_everything():
    many = tuple(Change("changed", f"/help/p/{n}/") for n in range(MAX_INVALIDATION_PATHS + 1))
    assert invalidation_paths(many[:MAX_INVALIDATION_PATHS]) == [c.url for c in many[:MAX_INVALIDATION_PATHS]]
    assert invalidation_paths(many) == ["/*"]
    assert invalidation_paths(None) == ["/*"]
    assert invalidation_paths(()) == []


def test_without_a_changes_file_everything_is_invalidated(make_site, tmp_path):
    root = make_site(keyed_site())
    out = tmp_path / "out"
    build(root, out)
    (tmp_path / "out-changes.txt").unlink()
    result = run_cli("publish-s3", "--site", str(root), "--out", str(out), "--bucket", "denialhelp-site",
                     "--distribution", "E2QWRUHAPOMQZL", "--dry-run")
    assert result.exit_code == 0, result.output
    assert aws_commands(result.output)[-1][5:] == ["--paths", "/*"]
    assert "no out-changes.txt" in result.output


FAKE_AWS = """#!{python}
import json, os, sys
with open(os.environ["FAKE_AWS_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
sys.exit(int(os.environ.get("FAKE_AWS_FAIL_" + sys.argv[1], "0")))
"""


@pytest.fixture
def fake_aws(tmp_path, monkeypatch) -> Path:
    """Put an `aws` first on PATH that records its arguments (one JSON list a line) and exits 0."""
    folder = tmp_path / "fakebin"
    folder.mkdir()
    script = folder / "aws"
    script.write_text(FAKE_AWS.format(python=sys.executable))
    script.chmod(0o755)
    log = tmp_path / "aws.log"
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_AWS_LOG", str(log))
    return log


def recorded(log: Path) -> list[list[str]]:
    return [["aws", *json.loads(line)] for line in log.read_text().splitlines()] if log.exists() else []


def test_a_real_run_runs_the_printed_commands_in_order(make_site, tmp_path, fake_aws):
    root = make_site(keyed_site())
    out = tmp_path / "out"
    build(root, out)
    args = ("--site", str(root), "--out", str(out), "--bucket", "denialhelp-site", "--distribution", "E2QWRUHAPOMQZL")
    planned = aws_commands(run_cli("publish-s3", *args, "--dry-run").output)
    assert not fake_aws.exists()  # a dry run runs nothing
    result = run_cli("publish-s3", *args)
    assert result.exit_code == 0, result.output
    assert recorded(fake_aws) == planned
    assert planned[-1][1] == "cloudfront"
    assert result.output.splitlines()[-1].startswith(f"Published {out} to s3://denialhelp-site with {len(planned)} aws")


def test_a_failing_aws_stops_the_publish_with_exit_1(make_site, tmp_path, fake_aws, monkeypatch):
    root = make_site(keyed_site())
    out = tmp_path / "out"
    build(root, out)
    monkeypatch.setenv("FAKE_AWS_FAIL_s3", "255")
    result = run_cli("publish-s3", "--site", str(root), "--out", str(out), "--bucket", "denialhelp-site",
                     "--distribution", "E2QWRUHAPOMQZL")
    assert result.exit_code == 1
    assert len(recorded(fake_aws)) == 1  # nothing after the failure, no invalidation
    assert "`aws s3 sync` (command 1 of 7) failed with exit code 255; the 6 later commands did not run" in result.output
    assert "Traceback" not in result.output


def test_without_aws_on_path_the_publish_says_so(make_site, tmp_path, monkeypatch):
    root = make_site(keyed_site())
    out = tmp_path / "out"
    build(root, out)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = run_cli("publish-s3", "--site", str(root), "--out", str(out), "--bucket", "denialhelp-site")
    assert result.exit_code == 1
    assert "the `aws` command line is not on PATH" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (("--bucket", "Bad_Bucket"), "is not an S3 bucket name"),
    (("--bucket", "ok-bucket", "--prefix", "a/../b"), "--prefix 'a/../b' must be"),
    (("--bucket", "ok-bucket", "--distribution", "e2 x"), "is not a CloudFront distribution ID"),
])
def test_bad_publish_options_are_usage_errors(make_site, tmp_path, args, message):
    root = make_site(keyed_site())
    result = run_cli("publish-s3", "--site", str(root), "--out", str(tmp_path / "out"), *args, "--dry-run")
    assert result.exit_code == 2
    assert message in result.output


def test_publishing_an_unbuilt_folder_is_refused(make_site, tmp_path):
    root = make_site(keyed_site())
    result = run_cli("publish-s3", "--site", str(root), "--out", str(tmp_path / "out"), "--bucket", "b-site", "--dry-run")
    assert result.exit_code == 1
    assert "holds no built site; run `python build.py build` first" in result.output


# IndexNow


class Recorder(http.server.BaseHTTPRequestHandler):
    """Stands in for the IndexNow endpoint: records each POST's path, headers and JSON body."""

    received: list[tuple[str, str, dict[str, object]]]
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], json.loads(body)))
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint(monkeypatch):
    """Serve a recording IndexNow endpoint on 127.0.0.1; yield (URL, handler class)."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    handler = type("Handler", (Recorder,), {"received": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/indexnow", handler
    server.shutdown()
    server.server_close()


def test_the_key_file_is_the_key_and_absent_without_a_key(make_site, tmp_path):
    root = make_site(keyed_site())
    build(root, tmp_path / "out")
    assert (tmp_path / "out" / f"{KEY}.txt").read_bytes() == KEY.encode("ascii")
    plain = make_site(site_files(), name="plain")
    build(plain, tmp_path / "plain-out")
    assert [p.name for p in (tmp_path / "plain-out").glob("*.txt")] == ["robots.txt"]


def test_indexnow_posts_every_changed_page_as_absolute_urls(make_site, tmp_path, endpoint):
    url, handler = endpoint
    root = make_site(keyed_site())
    out = tmp_path / "out"
    build(root, out)
    gone = rename_and_retire(root, out)
    changes = [line.split("\t") for line in (tmp_path / "out-changes.txt").read_text().splitlines()]
    result = run_cli("indexnow", "--site", str(root), "--out", str(out), "--endpoint", url)
    assert result.exit_code == 0, result.output
    [(path, content_type, body)] = handler.received
    assert path == "/indexnow" and content_type == "application/json; charset=utf-8"
    assert body["host"] == "denialhelp.com" and body["key"] == KEY
    assert body["keyLocation"] == f"https://denialhelp.com/{KEY}.txt"
    urls = body["urlList"]
    assert isinstance(urls, list) and len(urls) == len(set(urls))
    assert all(u.startswith("https://denialhelp.com/") for u in urls)
    assert {"https://denialhelp.com" + u for u in gone} <= set(urls)  # removed: engines re-crawl and see 404
    assert "https://denialhelp.com/help/humana/cimt/prior-authorization/" in urls  # now a redirect
    assert "https://denialhelp.com/help/humana-health/cimt/prior-authorization/" in urls  # added
    pages = {"https://denialhelp.com" + u for kind, u in changes if u.endswith("/")}
    assert set(urls) == pages  # no sitemap, robots.txt, _headers, key file
    assert result.output.splitlines()[-1].startswith(f"Submitted {len(urls):,} URLs in 1 requests to {url}")


def test_indexnow_sends_at_most_10000_urls_a_request(make_site, tmp_path, endpoint):
    url, handler = endpoint
    root = make_site(keyed_site())
    out = tmp_path / "out"
    build(root, out)
    many = [f"/help/cigna/p{n}/d/" for n in range(10_001)] + ["/sitemap.xml"]
    (tmp_path / "out-changes.txt").write_text("".join(f"changed\t{u}\n" for u in many))
    result = run_cli("indexnow", "--site", str(root), "--out", str(out), "--endpoint", url)
    assert result.exit_code == 0, result.output
    sizes = [len(body["urlList"]) for _, _, body in handler.received]  # type: ignore[arg-type]
    assert sizes == [10_000, 1]
    assert handler.received[1][2]["urlList"] == ["https://denialhelp.com/help/cigna/p10000/d/"]


def test_indexnow_dry_run_prints_the_bodies_and_sends_nothing(make_site, tmp_path, endpoint):
    url, handler = endpoint
    root = make_site(keyed_site())
    build(root, tmp_path / "out")
    result = run_cli("indexnow", "--site", str(root), "--out", str(tmp_path / "out"), "--endpoint", url, "--dry-run")
    assert result.exit_code == 0, result.output
    assert handler.received == []
    body = json.loads(result.output[: result.output.rindex("}") + 1])
    assert body["key"] == KEY and "https://denialhelp.com/" in body["urlList"]


def test_indexnow_without_a_key_is_a_clear_error(make_site, tmp_path, endpoint):
    url, handler = endpoint
    root = make_site(site_files())
    build(root, tmp_path / "out")
    result = run_cli("indexnow", "--site", str(root), "--out", str(tmp_path / "out"), "--endpoint", url)
    assert result.exit_code == 1
    assert "data/site.yaml has no indexnow_key" in result.output
    assert handler.received == []


def test_a_refusing_endpoint_exits_1_saying_why(make_site, tmp_path, endpoint):
    url, handler = endpoint
    handler.status = 403
    root = make_site(keyed_site())
    build(root, tmp_path / "out")
    result = run_cli("indexnow", "--site", str(root), "--out", str(tmp_path / "out"), "--endpoint", url)
    assert result.exit_code == 1
    assert f"{url} answered 403" in result.output and "the key was not found at keyLocation" in result.output
    assert "Traceback" not in result.output


def test_a_damaged_changes_file_is_named_with_its_line(make_site, tmp_path):
    root = make_site(keyed_site())
    build(root, tmp_path / "out")
    (tmp_path / "out-changes.txt").write_text("changed\t/help/\nrenamed /x/\n")
    result = run_cli("indexnow", "--site", str(root), "--out", str(tmp_path / "out"), "--dry-run")
    assert result.exit_code == 1
    assert f"{tmp_path / 'out-changes.txt'}:2: not a change line" in result.output


def test_pages_written_as_name_html_get_a_warning(make_site, tmp_path):
    site = {**SITE, "url_pattern": "/help/{payer}/{procedure}/{denial_type}"}
    root = make_site(site_files(**{"data/site.yaml": site}))
    build(root, tmp_path / "out")
    result = run_cli("publish-s3", "--site", str(root), "--out", str(tmp_path / "out"), "--bucket", "b-site", "--dry-run")
    assert result.exit_code == 0
    assert "warning: pages are NAME.html files" in result.output
