"""`out-changes.txt` beside out/: the URLs the last build added, changed and removed.

The build writes one line per file, `added|changed|removed<TAB>/url/` (write_changes);
`publish-s3` turns them into CloudFront invalidation paths and `indexnow` into submitted URLs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import click

KINDS = ("added", "changed", "removed")
HOST_FILES = ("/_headers", "/_redirects")  # read by Netlify and Cloudflare Pages, never served


@dataclass(frozen=True, slots=True)
class Change:
    """One line of the changes file: what happened to a URL."""

    kind: str
    url: str


def changes_path(out: Path) -> Path:
    """Return where the build writes the changes of `out`: beside it, `{name}-changes.txt`."""
    return out.parent / f"{out.name}-changes.txt"


def write_changes(out: Path, stale: set[str], known: Mapping[str, object], removed: list[str]) -> None:
    """Write beside out/ the URLs this build added, changed and removed (for IndexNow, CloudFront
    and logs): an empty list when it changed nothing, so no URL is sent twice. A path in `known`
    (the files out/ held before) changed; any other stale path was added."""
    lines = [f"{'changed' if path in known else 'added'}\t{url_of(path)}" for path in sorted(stale)]
    lines += [f"removed\t{url_of(path)}" for path in sorted(removed)]
    text = "".join(line + "\n" for line in lines)
    target = changes_path(out)
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


def url_of(path: str) -> str:
    """Return the site path a file under out/ is served at."""
    if path.endswith("index.html"):
        return "/" + path[: -len("index.html")]
    return "/" + (path[: -len(".html")] if path.endswith(".html") and path != "404.html" else path)


def read_changes(out: Path) -> tuple[Change, ...] | None:
    """Return the last build's changes, or None when there is no changes file (nothing to go by)."""
    path = changes_path(out)
    if not path.is_file():
        return None
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        kind, _, url = line.partition("\t")
        if not line.strip():
            continue
        if kind not in KINDS or not url.startswith("/"):
            raise click.ClickException(f"{path}:{number}: not a change line (added|changed|removed, a tab, a /url); "
                                       "build again to rewrite it")
        found.append(Change(kind, url))
    return tuple(found)


def is_page_url(url: str) -> bool:
    """Return True for the URL of a page (a folder URL or an extensionless one), not a file like robots.txt."""
    last = url.rstrip("/").rsplit("/", 1)[-1]
    return url not in HOST_FILES and not last.startswith("_") and (url.endswith("/") or "." not in last)
