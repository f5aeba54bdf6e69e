"""The preview server: build, serve out/ on 127.0.0.1, rebuild on every edit, reload the open page.

It reuses `pipeline.build_site` and adds nothing to out/: the live-reload script and the /_preview/
table exist only in its responses (preview.py). It serves nothing but regular files inside out/.
"""

from __future__ import annotations

import ipaddress
import json
import mimetypes
import sys
import threading
import traceback
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import click

from . import pipeline
from .errors import UsageProblem
from .fields import Record
from .load import read_site
from .preview import index_rows, inject_reload, render_index
from .watch import WATCHED, snapshot_sources, watch_sources
from .yamlsrc import load_yaml_file

LOOPBACK = "127.0.0.1"
RELOAD_PATH = "/_reload"
PREVIEW_PATH = "/_preview/"
HTML = "text/html; charset=utf-8"
HOST_FILES = (["_headers"], ["_redirects"])
ENCODED_SEPARATORS = ("%2e", "%2f", "%5c", "%00")  # no page URL needs them; traversal attempts do


@dataclass(frozen=True, slots=True)
class BuildState:
    """The latest build's outcome: how many good builds so far, and the error text if it failed."""

    generation: int
    error: str
    trailing_slash: bool


@dataclass(frozen=True, slots=True)
class Target:
    """Where a request path leads: a file under out/, a redirect, or an error status."""

    status: int
    file: Path | None = None
    location: str = ""


@dataclass(frozen=True, slots=True)
class Response:
    """One answer of the server."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    location: str = ""


def request_parts(path: str) -> list[str] | int:
    """Return a request path's decoded segments, or the status that refuses it."""
    if not path.startswith("/"):
        return 400
    if "\\" in path or any(code in path.lower() for code in ENCODED_SEPARATORS):
        return 403
    try:
        parts = urllib.parse.unquote(path, errors="strict").split("/")[1:]
    except UnicodeDecodeError:
        return 400
    if any(part in (".", "..") or "\\" in part or "\0" in part for part in parts):
        return 403
    if "" in parts[:-1] or any(part.startswith(".") for part in parts) or parts in HOST_FILES:
        return 404  # no page URL has an empty or hidden segment; hosts never serve their rule files
    return parts


def resolve_target(out: Path, path: str, trailing_slash: bool) -> Target:
    """Return the file inside out/ that a request path names, a redirect, or 400, 403 or 404."""
    parts = request_parts(path)
    if isinstance(parts, int):
        return Target(parts)
    root = out.resolve()
    base = root.joinpath(*parts)
    if not parts[-1]:
        candidates = [base / "index.html"]
    else:
        candidates = [base] if trailing_slash else [base, base.with_name(base.name + ".html")]
    for candidate in candidates:
        if candidate.is_file():
            return Target(200, candidate) if is_inside(root, candidate) else Target(403)
    if parts[-1] and (base / "index.html").is_file():
        return Target(301, location=path + "/")  # a folder asked for without its slash, as static hosts do
    return Target(404)


def is_inside(root: Path, file: Path) -> bool:
    """Return True when `file`, with every symlink followed, lies inside `root`."""
    try:
        return root in file.resolve(strict=True).parents
    except OSError:
        return False


def content_type(path: Path) -> str:
    """Return a file's Content-Type; text types say UTF-8."""
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"{kind}; charset=utf-8" if kind.startswith("text/") or kind.endswith("xml") else kind


def read_trailing_slash(root: Path) -> bool:
    """Return True when the site's pages end in '/' (read from data/site.yaml; a good build read it)."""
    raw, _ = load_yaml_file(root / "data" / "site.yaml", "data/site.yaml")
    return read_site(Record(raw, "data/site.yaml", "site.yaml", [], 1)).trailing_slash


class Preview:
    """What the server shows: the site's folders and the outcome of the latest build."""

    def __init__(self, root: Path, out: Path, echo: Callable[[str], None]) -> None:
        self.root = root
        self.out = out
        self.echo = echo
        self._lock = threading.Lock()
        self._state = BuildState(0, "", True)
        self._index: tuple[int, bytes] | None = None

    def state(self) -> BuildState:
        """Return the latest build's outcome."""
        with self._lock:
            return self._state

    def rebuild(self) -> BuildState:
        """Build into out/; success moves the generation on, failure keeps out/ and records why."""
        try:
            report = pipeline.build_site(self.root, self.out, record=False)
            trailing_slash = read_trailing_slash(self.root)
        except click.ClickException as error:  # bad input, or another build holds out/
            return self.fail(error.format_message())
        except Exception as error:  # a bug: say so loudly, keep serving the last good build
            traceback.print_exc()
            return self.fail(f"internal error (a bug in the generator, traceback in the terminal): {error!r}")
        with self._lock:
            self._state = BuildState(self._state.generation + 1, "", trailing_slash)
        self.echo(report.summary("Built") + f"; serving build {self._state.generation}")
        return self._state

    def fail(self, message: str) -> BuildState:
        """Record a failed build (out/ still holds the last good one) and print its problems."""
        with self._lock:
            self._state = BuildState(self._state.generation, message, self._state.trailing_slash)
        gone = "Still serving the last good build." if self._state.generation else "Nothing is built yet."
        self.echo(f"{message}\n{gone} Fix the problems above and save: the page reloads by itself.")
        return self._state

    def index_page(self) -> bytes:
        """Return the /_preview/ table for the latest good build (planned once per build)."""
        state = self.state()
        with self._lock:
            if self._index and self._index[0] == state.generation:
                return self._index[1]
        try:
            rows = index_rows(*pipeline.list_pages(self.root))
        except click.ClickException as error:
            return render_index((), error.format_message())
        page = render_index(rows, "")
        with self._lock:
            self._index = (state.generation, page)
        return page


def answer(preview: Preview, target: str) -> Response:
    """Return the response to one GET: /_reload, /_preview/, or a file from out/."""
    path = target.split("?", 1)[0].split("#", 1)[0]
    state = preview.state()
    if path == RELOAD_PATH:
        body = json.dumps({"generation": state.generation, "error": state.error}).encode()
        return Response(200, body, "application/json")
    if path == PREVIEW_PATH.rstrip("/"):
        return Response(301, b"", location=PREVIEW_PATH)
    if path == PREVIEW_PATH:
        return Response(200, inject_reload(preview.index_page(), state.generation), HTML)
    return answer_file(preview, path, state)


def answer_file(preview: Preview, path: str, state: BuildState) -> Response:
    """Return a file from out/ (HTML with the reload script), a redirect, or an error page."""
    found = resolve_target(preview.out, path, state.trailing_slash)
    if found.status == 301:
        return Response(301, b"", location=found.location)
    if found.status == 404 or found.file is None:
        return not_found(preview, state) if found.status == 404 else refused(found.status)
    try:
        body = found.file.read_bytes()
    except OSError:  # out/ was swapped between the look and the read
        return not_found(preview, state)
    kind = content_type(found.file)
    return Response(200, inject_reload(body, state.generation) if kind == HTML else body, kind)


def refused(status: int) -> Response:
    """Return a plain-text refusal of a request for something outside out/ or malformed."""
    return Response(status, f"{status}: this server serves only the files inside out/\n".encode())


def not_found(preview: Preview, state: BuildState) -> Response:
    """Return out/404.html with status 404 (or a bare page when there is no good build yet)."""
    page = preview.out.resolve() / "404.html"
    try:
        body = page.read_bytes() if is_inside(preview.out.resolve(), page) else b""
    except OSError:
        body = b""
    body = body or b"<!doctype html><title>Not found</title><body><h1>No page here yet</h1></body>"
    return Response(404, inject_reload(body, state.generation), HTML)


class QuietServer(ThreadingHTTPServer):
    """A threading HTTP server that does not print a traceback when a browser hangs up early."""

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def make_handler(preview: Preview) -> type[BaseHTTPRequestHandler]:
    """Return a request handler class bound to one Preview."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "denialpages-preview"

        def do_GET(self) -> None:
            self.send(answer(preview, self.path), with_body=True)

        def do_HEAD(self) -> None:
            self.send(answer(preview, self.path), with_body=False)

        def send(self, response: Response, with_body: bool) -> None:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            if response.location:
                self.send_header("Location", response.location)
            self.end_headers()
            if with_body:
                self.wfile.write(response.body)

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            if not self.path.startswith(RELOAD_PATH):
                sys.stderr.write(f"{self.command} {self.path} {code}\n")

    return Handler


class PreviewServer:
    """The HTTP server and the source watcher around one Preview; binds when made."""

    def __init__(self, root: Path, out: Path, host: str = LOOPBACK, port: int = 8000,
                 echo: Callable[[str], None] = click.echo) -> None:
        self.root = root
        self.preview = Preview(root, out, echo)
        self.stopping = threading.Event()
        self.httpd = QuietServer((host, port), make_handler(self.preview))
        self.threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        """Return the server's base URL, with the port it bound."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Build once, then serve and watch in background threads."""
        seen = snapshot_sources(self.root)  # taken first: an edit during this build is not missed
        self.preview.rebuild()
        self.threads = [
            threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True),
            threading.Thread(target=watch_sources, daemon=True,
                             args=(self.root, self.preview.rebuild, self.stopping, seen)),
        ]
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        """Stop watching and serving, and release the port."""
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        for thread in self.threads:
            thread.join()


def is_loopback(host: str) -> bool:
    """Return True when `host` is a loopback address (only this machine can connect)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_site(root: Path, out: Path, host: str, port: int) -> None:
    """Serve the site until Ctrl-C; a port that cannot be bound is a usage error."""
    if not is_loopback(host):
        click.echo(f"Warning: --host {host} makes this preview reachable from other machines on the "
                   f"network; use it only on a network you trust.", err=True)
    try:
        server = PreviewServer(root, out, host, port)
    except OSError as error:
        raise UsageProblem(f"cannot listen on {host}:{port}: {error.strerror}; try another --port") from None
    server.start()
    click.echo(f"Serving {out} at {server.url}/ (all pages: {server.url}{PREVIEW_PATH}); "
               f"watching {', '.join(f'{name}/' for name in WATCHED)} for changes. Ctrl-C stops.")
    try:
        server.stopping.wait()
    except KeyboardInterrupt:
        click.echo("Stopped.")
    finally:
        server.close()
