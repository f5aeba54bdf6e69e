"""Rendered content files, kept between builds in SQLite beside out/.

Rendering a content file's Markdown is most of what loading a site costs. A file is rendered
again only when its bytes, its place in content/, the generator's code or a library that shapes
the HTML changed: each entry is keyed by a hash of all four. The cache is a convenience, never
trusted for correctness: one that cannot be read or written is ignored, and entries no build
asked for are dropped, so it holds what the site's content is now.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import pickle
import re
import sqlite3
import sys
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Content

PACKAGE = Path(__file__).resolve().parent
LIBRARIES = ("jinja2", "markupsafe", "cmarkgfm", "htmlmin", "pyyaml", "numpy")  # their versions shape the output
SCHEMA = "CREATE TABLE IF NOT EXISTS content (key TEXT PRIMARY KEY, value BLOB NOT NULL)"


def digest(*parts: str) -> str:
    """Return a short, stable hash of some strings."""
    return hashlib.blake2b("\0".join(parts).encode(), digest_size=16).hexdigest()


def tree_digest(folder: Path, pattern: str) -> str:
    """Return a hash of every file matching `pattern` under `folder`, names and bytes."""
    hasher = hashlib.blake2b(digest_size=16)
    for name in sorted(matching_files(str(folder), pattern)):
        with open(os.path.join(folder, name), "rb") as file:
            hasher.update(name.encode() + b"\0" + file.read() + b"\0")
    return hasher.hexdigest()


def matching_files(folder: str, pattern: str) -> Iterator[str]:
    """Yield the path, relative to `folder` and with '/' between parts, of every file under it
    whose name matches `pattern` (strings and scandir: hashed before every build, so it counts)."""
    stack = [""]
    while stack:
        relative = stack.pop()
        try:
            entries = os.scandir(os.path.join(folder, relative))
        except (FileNotFoundError, NotADirectoryError):
            continue
        with entries:
            for entry in entries:
                name = f"{relative}/{entry.name}" if relative else entry.name
                if entry.is_dir():
                    stack.append(name)
                elif entry.is_file() and fnmatch.fnmatchcase(entry.name, pattern):
                    yield name


@cache
def code_digest() -> str:
    """Return a hash of the generator's code and the versions of the libraries that shape its output."""
    return digest(tree_digest(PACKAGE, "*.py"), *library_versions())


def library_versions() -> list[str]:
    """Return 'name=version' for each of LIBRARIES, read from the names of the installed
    distributions' metadata folders: importlib.metadata costs 50 ms a build to say the same."""
    found: dict[str, str] = {}
    for folder in sys.path:
        try:
            names = os.listdir(folder or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info") and "-" in name:
                project, version = name[: -len(".dist-info")].split("-", 1)
                found.setdefault(re.sub(r"[-_.]+", "_", project).lower(), version)
    return [f"{name}={found.get(name, 'missing')}" for name in LIBRARIES]


class ContentCache:
    """Rendered content files by a hash of what they were rendered from."""

    def __init__(self, path: Path, fresh: bool = False) -> None:
        self.path = path
        self.stored = 0  # entries the cache held when read
        self.rewrite = fresh  # set when the file is not read (a full build) or cannot be

    @staticmethod
    def key(path: str, layer_key: tuple[str, ...], source: bytes) -> str:
        """Return the cache key of a content file at `path`, shown as `layer_key`, with these bytes."""
        return digest(code_digest(), path, "/".join(layer_key), hashlib.blake2b(source, digest_size=16).hexdigest())

    def read(self, keys: Iterable[str]) -> dict[str, Content]:
        """Return the cached content of each of `keys` found (nothing when the cache is unreadable)."""
        wanted = list(keys)
        if self.rewrite or not self.path.is_file():
            return {}
        found: dict[str, Content] = {}
        try:
            with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True) as db:
                self.stored = db.execute("SELECT count(*) FROM content").fetchone()[0]
                for start in range(0, len(wanted), 500):
                    batch = wanted[start : start + 500]
                    rows = db.execute(f"SELECT key, value FROM content WHERE key IN ({','.join('?' * len(batch))})", batch)
                    found.update((key, pickle.loads(value)) for key, value in rows)
        except (sqlite3.Error, pickle.UnpicklingError, EOFError, AttributeError, TypeError):
            self.rewrite = True
            return {}
        return found

    def keep(self, entries: dict[str, Content], added: Iterable[str]) -> None:
        """Store the entries named in `added` and drop every entry not in `entries`."""
        added = list(entries) if self.rewrite else [key for key in added if key in entries]
        if not added and self.stored == len(entries):
            return  # nothing new and nothing stale: the file is left as it was
        try:
            if self.rewrite:
                self.path.unlink(missing_ok=True)
            db = sqlite3.connect(self.path)
            try:
                with db:
                    db.execute(SCHEMA)
                    db.execute("CREATE TEMP TABLE used (key TEXT PRIMARY KEY)")
                    db.executemany("INSERT INTO used VALUES (?)", ((key,) for key in entries))
                    db.execute("DELETE FROM content WHERE key NOT IN (SELECT key FROM used)")
                    db.executemany("INSERT OR REPLACE INTO content VALUES (?, ?)",
                                   ((key, pickle.dumps(entries[key], pickle.HIGHEST_PROTOCOL)) for key in added))
            finally:
                db.close()
        except sqlite3.Error:
            pass  # a cache that cannot be written only costs the next build time


def content_cache_path(out: Path) -> Path:
    """Return where the rendered-content cache of `out` lives: beside it, never inside."""
    return out.parent / f".{out.name}.content-cache.sqlite"
