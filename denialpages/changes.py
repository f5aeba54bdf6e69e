"""`out-changes.txt` beside out/: the URLs the last build added, changed and removed (read side).

The build writes one line per file, `added|changed|removed<TAB>/url/` (pipeline.write_changes);
`publish-s3` turns them into CloudFront invalidation paths and `indexnow` into submitted URLs.
"""

from __future__ import annotations

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
