"""python tools/serve_out.py OUT: serve a built site on 127.0.0.1 at a free port, as a static host would.

Prints the base URL on the first line of stdout, then serves until killed. A path with no file gets
OUT/404.html with status 404, as Netlify, Cloudflare Pages and GitHub Pages answer.
"""

from __future__ import annotations

import functools
import http.server
import sys
from pathlib import Path
from typing import Any


class StaticHost(http.server.SimpleHTTPRequestHandler):
    """The standard library's file server, quiet, with the site's own not-found page."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer a missing file with the site's 404.html (status 404); anything else as usual."""
        page = Path(self.directory) / "404.html"
        if code != 404 or not page.is_file():
            super().send_error(code, message, explain)
            return
        body = page.read_bytes()
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Log nothing: the caller reports what matters."""


def main(argv: list[str]) -> int:
    """Serve the folder in argv[1]; return only on error."""
    if len(argv) != 2 or not Path(argv[1]).is_dir():
        print(__doc__, file=sys.stderr)
        return 64
    handler = functools.partial(StaticHost, directory=str(Path(argv[1]).resolve()))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
