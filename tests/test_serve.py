"""The preview server on a real socket: files only from out/, rebuilds on edits, errors in the page."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import lxml.html
import pytest
import yaml
from conftest import PAYERS, REPO, SITE, payer, require_tool, run_cli, site_files
from playwright.sync_api import sync_playwright

from denialpages import pipeline
from denialpages.hosting import parse_policy, read_csp
from denialpages.serve import PreviewServer, is_loopback

SECRET = "top-secret-outside-out"
CHROME_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
WAIT_SECONDS = 30


class Served:
    """A running preview server and what it printed."""

    def __init__(self, root: Path, out: Path) -> None:
        self.root, self.out, self.printed = root, out, []
        self.server = PreviewServer(root, out, port=0, echo=self.printed.append)
        self.port = self.server.httpd.server_address[1]

    def get(self, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        """Send `path` exactly as written (no client-side normalising) and return the answer."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def reload_state(self) -> dict:
        return json.loads(self.get("/_reload")[2])

    def wait_for(self, condition: Callable[[dict], bool]) -> dict:
        """Poll /_reload until `condition` holds; fail after WAIT_SECONDS."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            state = self.reload_state()
            if condition(state):
                return state
            time.sleep(0.1)
        raise AssertionError(f"timed out; last /_reload: {state}; printed: {self.printed}")


@pytest.fixture
def serve(make_site, tmp_path) -> Iterator[Callable[..., Served]]:
    """Start preview servers on free ports of 127.0.0.1; stop them after the test."""
    started: list[Served] = []

    def start(files: dict | None = None) -> Served:
        root = make_site(files, name=f"site{len(started)}")
        served = Served(root, tmp_path / f"out{len(started)}")
        served.server.start()
        started.append(served)
        return served

    yield start
    for served in started:
        served.server.close()


def sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def edit_yaml(root: Path, name: str, value: object) -> None:
    (root / "data" / name).write_text(yaml.safe_dump(value, sort_keys=False), encoding="utf-8")


def test_pages_come_from_out_with_the_reload_script_added_only_in_the_response(serve):
    served = serve()
    status, headers, body = served.get("/help/cigna/cimt/prior-authorization/")
    on_disk = (served.out / "help/cigna/cimt/prior-authorization/index.html").read_bytes()
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert b"data-generation" not in on_disk and b"data-generation=\"1\"" in body
    doc = lxml.html.fromstring(body)
    [injected] = doc.cssselect("script[data-generation]")
    assert injected.getparent().tag == "body" and injected.getnext() is None
    served_policy = parse_policy(read_csp(body.decode()))
    disk_policy = parse_policy(read_csp(on_disk.decode()))
    assert disk_policy["default-src"] == ["'none'"] and "script-src" not in disk_policy
    assert served_policy["script-src"] == [sha256_source(injected.text)]
    assert served_policy["connect-src"] == ["'self'"]
    assert {k: v for k, v in served_policy.items() if k != "script-src"} == disk_policy
    assert body.replace(injected_bytes(body), b"").replace(
        read_csp(body.decode()).encode(), read_csp(on_disk.decode()).encode()) == on_disk


def injected_bytes(body: bytes) -> bytes:
    start = body.index(b"<script data-generation")
    return body[start: body.index(b"</script>", start) + len(b"</script>")]


def test_folders_redirects_and_other_files(serve):
    served = serve()
    assert served.get("/")[0] == 200
    status, headers, _ = served.get("/help/cigna")
    assert status == 301 and headers["Location"] == "/help/cigna/"
    status, headers, body = served.get("/favicon.ico")
    assert status == 200 and body == (served.out / "favicon.ico").read_bytes()
    assert "html" not in headers["Content-Type"]
    status, headers, body = served.get("/sitemap.xml")
    assert status == 200 and body == (served.out / "sitemap.xml").read_bytes()
    status, headers, body = served.get("/help/cigna/", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 1000
    for name in ("_headers", "_redirects"):  # as on Netlify and Cloudflare Pages: rules, never content
        (served.out / name).write_text("/*\n  X-Test: 1\n")
        assert served.get(f"/{name}")[0] == 404


def test_a_missing_page_gets_the_404_page_with_status_404(serve):
    served = serve()
    not_found_title = lxml.html.fromstring((served.out / "404.html").read_bytes()).findtext(".//title")
    for path in ("/no/such/page/", "/help/cigna/cimt/nothing", "/404", "/help/cigna/index"):
        status, _, body = served.get(path)
        assert status == 404, path
        assert lxml.html.fromstring(body).findtext(".//title") == not_found_title


TRAVERSALS = [
    "/../secret.txt", "/help/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt",
    "/help/%2e%2e/%2e%2e/secret.txt", "/..%2fsecret.txt", "/%2e%2e%2fsecret.txt", "/..\\secret.txt",
    "/%5c..%5csecret.txt", "/help/..%5c..%5csecret.txt", "//secret.txt", "/.%2e/secret.txt",
    "/%252e%252e/secret.txt", "/secret.txt%00.html", "/%c0%ae%c0%ae/secret.txt", "/linked-file",
    "/linked-folder/secret.txt", "/linked-folder/", "/help/../../etc/passwd", "http://127.0.0.1/../secret.txt",
    "/./../secret.txt", "/help/./../../secret.txt",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_no_request_reaches_a_file_outside_out(serve, path):
    served = serve()
    outside = served.out.parent / "secret.txt"
    outside.write_text(SECRET)
    (served.out / "linked-file").symlink_to(outside)
    (served.out / "linked-folder").symlink_to(served.out.parent, target_is_directory=True)
    assert (served.out / "../secret.txt").read_text() == SECRET  # the file is really there to leak
    assert (served.out / "linked-folder/secret.txt").read_text() == SECRET
    status, _, body = served.get(path)
    assert status in (400, 403, 404), (path, status)
    assert SECRET.encode() not in body and b"root:" not in body


def test_a_slashless_site_serves_page_html_at_the_bare_url(serve):
    site = {**SITE, "url_pattern": "/help/{payer}/{procedure}/{denial_type}"}
    served = serve(site_files(**{"data/site.yaml": site}))
    status, _, body = served.get("/help/cigna/cimt/prior-authorization")
    assert status == 200
    on_disk = (served.out / "help/cigna/cimt/prior-authorization.html").read_bytes()
    assert body.replace(injected_bytes(body), b"").startswith(on_disk[:200])
    assert served.get("/help/cigna")[0] == 200
    assert served.get("/help/cigna/cimt/prior-authorization/")[0] == 404


def test_an_edit_rebuilds_and_the_page_changes(serve):
    served = serve()
    assert served.reload_state() == {"generation": 1, "error": ""}
    assert b"Cigna Healthcare" not in served.get("/help/cigna/")[2]
    edit_yaml(served.root, "payers.yaml", [payer("cigna", "Cigna Healthcare", ["employer"]), *PAYERS[1:]])
    assert served.wait_for(lambda s: s["generation"] == 2)["error"] == ""
    status, _, body = served.get("/help/cigna/")
    assert status == 200 and b"Cigna Healthcare" in body and b'data-generation="2"' in body


def test_a_broken_edit_keeps_the_last_good_build_and_reports_path_line(serve):
    served = serve()
    page = "/help/cigna/cimt/prior-authorization/"
    good = served.get(page)[2]
    (served.root / "data" / "procedures.yaml").write_text("- slug: cimt\n  name: [unclosed\n")
    state = served.wait_for(lambda s: s["error"] != "")
    assert state["generation"] == 1
    assert "data/procedures.yaml:3: not valid YAML" in state["error"]
    assert any("data/procedures.yaml:3:" in line for line in served.printed)  # and in the terminal
    assert served.get(page) == (200, served.get(page)[1], good)
    edit_yaml(served.root, "procedures.yaml", site_files()["data/procedures.yaml"])
    assert served.wait_for(lambda s: s["generation"] == 2)["error"] == ""


def test_the_preview_index_lists_every_planned_page(serve):
    served = serve()
    assert served.get("/_preview")[1]["Location"] == "/_preview/"
    status, _, body = served.get("/_preview/")
    assert status == 200
    doc = lxml.html.fromstring(body)
    plan, standing = pipeline.list_pages(served.root)
    rows = [[td.text_content() for td in tr.cssselect("td")] for tr in doc.cssselect("tbody tr")]
    expected = [[p.url, p.payer, p.procedure, p.denial_type, p.layer,
                 "yes" if standing.is_indexable(i) else "no", standing.reason(i, plan)]
                for i, p in enumerate(plan.pages)]
    assert rows == expected and len(rows) == 16
    assert all((row[5] == "no") == bool(row[6]) for row in rows)  # every "no" says why
    assert [a.get("href") for a in doc.cssselect("tbody a")] == [p.url for p in plan.pages]
    heads = [th.text_content() for th in doc.cssselect("thead th")]
    assert heads == ["Page", "Payer", "Procedure", "Denial type", "Content layer", "Indexable", "Why not"]
    policy = parse_policy(read_csp(body.decode()))
    assert {sha256_source(s.text) for s in doc.cssselect("script")} == set(policy["script-src"])
    assert {sha256_source(s.text) for s in doc.cssselect("style")} == set(policy["style-src"])
    assert doc.get_element_by_id("filter").tag == "input"
    assert not (served.out / "_preview").exists()


def test_loopback_addresses():
    assert is_loopback("127.0.0.1") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.com")


def test_another_host_warns_and_a_port_that_cannot_be_bound_is_a_usage_error(make_site):
    root = make_site()
    result = run_cli("serve", "--site", str(root), "--host", "192.0.2.1", "--port", "0")  # TEST-NET: not ours
    assert result.exit_code == 2, result.output
    assert "reachable from other machines" in result.output
    assert "cannot listen on 192.0.2.1:0" in result.output and "Traceback" not in result.output
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        result = run_cli("serve", "--site", str(root), "--port", port)
    assert result.exit_code == 2 and f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "reachable from other machines" not in result.output


def test_ctrl_c_stops_the_server_cleanly(make_site, tmp_path):
    root = make_site()
    command = [sys.executable, str(REPO / "build.py"), "serve", "--site", str(root),
               "--out", str(tmp_path / "out"), "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        while not any(line.startswith("Serving ") for line in lines):
            lines.append(process.stdout.readline())
            assert lines[-1], f"the server ended early: {lines}"
        url = re.search(r"http://127\.0\.0\.1:\d+", lines[-1]).group(0)
        assert urllib.request.urlopen(url + "/", timeout=10).status == 200
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=WAIT_SECONDS)
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert "Stopped." in output and "Traceback" not in output


@pytest.fixture
def chromium() -> str:
    """Return Debian's chromium; fail under CI and skip elsewhere when it is missing."""
    return require_tool("chromium", "apt-get install chromium")


@pytest.mark.browser
def test_in_chromium_the_page_shows_the_error_overlay_then_reloads_itself(serve, chromium):
    served = serve()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROME_ARGS)
        page = browser.new_page()
        console: list[str] = []
        page.on("console", lambda m: m.type in ("error", "warning") and console.append(m.text))
        page.goto(f"http://127.0.0.1:{served.port}/help/cigna/")
        assert page.locator("h1").inner_text() == "Cigna denials"
        (served.root / "data" / "payers.yaml").write_text("- slug: cigna\n  name: [oops\n", encoding="utf-8")
        overlay = page.locator("#preview-build-error")
        overlay.wait_for(state="visible", timeout=WAIT_SECONDS * 1000)
        assert "data/payers.yaml:3: not valid YAML" in overlay.inner_text()
        assert overlay.evaluate("e => getComputedStyle(e).position") == "fixed"
        edit_yaml(served.root, "payers.yaml", [payer("cigna", "Cigna Healthcare", ["employer"]), *PAYERS[1:]])
        page.locator("h1", has_text="Cigna Healthcare denials").wait_for(timeout=WAIT_SECONDS * 1000)
        assert overlay.count() == 0
        page.goto(f"http://127.0.0.1:{served.port}/_preview/")
        page.fill("#filter", "humana step")
        visible = page.locator("tbody tr:visible")
        assert visible.count() == 3 and all("humana" in t and "step" in t for t in visible.all_inner_texts())
        assert page.locator("#count").inner_text() == "3 of 16 pages"
        browser.close()
    assert console == []  # no CSP violation: the injected scripts ran under the pages' own policy
