"""What changed on disk: a snapshot of the site's sources, polled (stdlib only, no OS notifications)."""

from __future__ import annotations

import stat
import threading
from collections.abc import Callable
from pathlib import Path

WATCHED = ("data", "content", "templates")
POLL_SECONDS = 0.5


def snapshot_sources(root: Path) -> dict[str, tuple[int, int]]:
    """Return (mtime in ns, size) of every file under data/, content/ and templates/, by relative path."""
    seen: dict[str, tuple[int, int]] = {}
    for folder in WATCHED:
        for file in sorted((root / folder).rglob("*")):
            try:
                info = file.stat()
            except OSError:  # removed while we looked: the next poll sees it gone
                continue
            if stat.S_ISREG(info.st_mode):
                seen[file.relative_to(root).as_posix()] = (info.st_mtime_ns, info.st_size)
    return seen


def watch_sources(root: Path, on_change: Callable[[], object], stop: threading.Event,
                  seen: dict[str, tuple[int, int]], interval: float = POLL_SECONDS) -> None:
    """Call `on_change` after each poll that finds the sources changed since `seen`, until `stop` is set.

    A change made while `on_change` runs is caught by the next poll: `seen` was taken before it.
    """
    while not stop.wait(interval):
        now = snapshot_sources(root)
        if now != seen:
            seen = now
            on_change()
