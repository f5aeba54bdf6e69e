"""Incremental builds: what each output file was built from, kept in SQLite beside out/.

A file's fingerprint hashes everything it shows: the site-wide inputs (templates, settings,
facts, every record's name and URL, the generator's own code) and, for a landing page, its
payer, procedure, denial type and content file. The manifest maps each file under out/ to the
fingerprint and size it was written with. It is checked, never trusted: a manifest that does not
open, has the wrong shape, or names files that are missing or of another size counts for
nothing, and those files are built again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .cache import code_digest, digest, tree_digest
from .errors import Location

if TYPE_CHECKING:
    from .model import SiteData
    from .plan import PagePlan, Plan
    from .standing import Standing

SCHEMA = ("CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, "
          "size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL)")
META_SCHEMA = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


def record_digest(record: object) -> str:
    """Return a hash of a frozen record's values, ignoring where in its file it was read."""
    if dataclasses.is_dataclass(record) and hasattr(record, "origin"):
        record = dataclasses.replace(record, origin=Location(""))  # type: ignore[type-var]
    return digest(repr(canonical(record)))


def canonical(value: object) -> object:
    """Return `value` with every set sorted: a set's order, and so its repr, changes from one
    process to the next with Python's string hashing."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, *(canonical(getattr(value, f.name)) for f in dataclasses.fields(value)))
    if isinstance(value, (set, frozenset)):
        return ("set", *sorted(repr(canonical(item)) for item in value))
    if isinstance(value, (tuple, list)):
        return tuple(canonical(item) for item in value)
    if isinstance(value, dict):
        return ("dict", *sorted((repr(canonical(k)), canonical(v)) for k, v in value.items()))
    return value


@dataclass(frozen=True, slots=True)
class Fingerprints:
    """How to fingerprint each output file of one build."""

    site_wide: str
    records: dict[str, str]
    contents: dict[tuple[str, ...], str]
    standing: Standing
    indexable: str  # a hash of which pages are indexable: hubs and sitemaps list them

    def page(self, index: int, page: PagePlan) -> str:
        """Return a landing page's fingerprint (its own indexability included)."""
        content = self.contents.get(page.content_key, "") if page.content_key else ""
        return digest(self.site_wide, str(self.standing.is_indexable(index)), self.records["payer:" + page.payer],
                      self.records["procedure:" + page.procedure],
                      self.records["denial:" + page.denial_type], content,
                      self.records.get(f"policy:{page.payer}:{page.procedure}", ""))

    def hub(self, kind: str, slug: str) -> str:
        """Return a hub's fingerprint: the site-wide inputs and the record it is about."""
        record = {"payer": "payer:", "procedure": "procedure:", "denial_type": "denial:"}.get(kind)
        site_wide = digest(self.site_wide, self.indexable)
        return digest(site_wide, self.records[record + slug]) if record else site_wide


def inputs_digest(root: Path, *settings: str) -> str:
    """Return a hash of what a build reads besides its URL ledger (the site's data, content and
    templates, the generator's code, the versions of the libraries that shape its output) and the
    build's own `settings`. With the ledger's digest, while it stays the same, so does every byte
    the build would write."""
    trees = [tree_digest(root / folder, "*") for folder in ("data", "content", "templates")]
    return digest(*trees, code_digest(), *settings)


def read_meta(out: Path) -> dict[str, str]:
    """Return what the last build into `out` remembered about itself (empty when unreadable)."""
    path = manifest_path(out)
    if not path.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return dict(db.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.Error:
        return {}


def write_meta(out: Path, values: dict[str, str]) -> None:
    """Remember `values` about this build beside `out`, writing only when they differ."""
    if read_meta(out) == values:
        return
    db = sqlite3.connect(manifest_path(out))
    try:
        with db:
            db.execute(SCHEMA)
            db.execute(META_SCHEMA)
            db.execute("DELETE FROM meta")
            db.executemany("INSERT INTO meta VALUES (?, ?)", values.items())
    finally:
        db.close()


def manifest_path(out: Path) -> Path:
    """Return where the manifest of `out` lives: beside it, never inside (v2: with times and inodes)."""
    return out.parent / f".{out.name}.manifest.sqlite"


FileState = tuple[str, int, int, int]  # fingerprint, size, mtime_ns, inode


def read_manifest(out: Path) -> tuple[dict[str, FileState], str | None]:
    """Return {path: (fingerprint, size, mtime_ns, inode)} of what out/ holds, or a warning."""
    path = manifest_path(out)
    if not path.exists() or not out.is_dir():
        return {}, None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            if db.execute("PRAGMA quick_check").fetchone() != ("ok",):
                raise sqlite3.DatabaseError("quick_check failed")
            rows = db.execute("SELECT path, fingerprint, size, mtime_ns, inode FROM files").fetchall()
    except sqlite3.Error as error:
        return {}, f"the incremental cache {path} is unreadable ({error}); building everything"
    return {str(p): (str(f), int(s), int(m), int(i)) for p, f, s, m, i in rows}, None


def file_state(out: Path, path: str, fingerprint: str) -> tuple[str, str, int, int, int]:
    """Return the manifest row of a file just written under out/."""
    stat = (out / path).stat()
    return (path, fingerprint, stat.st_size, stat.st_mtime_ns, stat.st_ino)


def still_valid(out: Path, known: dict[str, FileState], path: str, fingerprint: str) -> bool:
    """Return True when out/ holds `path` as this build would write it: same inputs, same file.

    Size, modification time and inode are all compared, so a hand edit is noticed; hard links
    made by a partial rebuild keep all three.
    """
    entry = known.get(path)
    if entry is None or entry[0] != fingerprint:
        return False
    try:
        stat = os.stat(f"{out}/{path}")  # not pathlib: every file of out/ is checked before each build
    except OSError:
        return False
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino) == entry[1:]


def update_manifest(out: Path, written: Iterable[tuple[str, str, int, int, int]], removed: Iterable[str],
                    replace_all: bool) -> None:
    """Record what out/ now holds: upsert the files written, drop the ones removed, in one transaction."""
    path = manifest_path(out)
    if replace_all:
        path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    try:
        with db:
            db.execute(SCHEMA)
            db.executemany("DELETE FROM files WHERE path = ?", ((p,) for p in removed))
            db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)", written)
    finally:
        db.close()


def fingerprints(root: Path, data: SiteData, plan: Plan, standing: Standing) -> Fingerprints:
    """Return the fingerprints of one build's inputs."""
    site_wide = digest(
        tree_digest(root / "templates", "*"),
        code_digest(),
        record_digest(data.site),
        *(record_digest(f) for f in sorted(data.facts.values(), key=lambda f: f.id)),
        *(record_digest(p) for p in data.plan_types.values()),
        *(f"{p.slug}={p.name}" for p in (*data.payers, *data.procedures, *data.denial_types)),
        *(page.url for page in plan.pages),
    )
    records = {f"payer:{p.slug}": record_digest(p) for p in data.payers}
    records |= {f"procedure:{p.slug}": record_digest(p) for p in data.procedures}
    records |= {f"denial:{d.slug}": record_digest(d) for d in data.denial_types}
    records |= {f"policy:{payer}:{procedure}": record_digest(p) for (payer, procedure), p in data.policies.items()}
    contents = {key: content.digest for key, content in data.content.items()}
    indexable = hashlib.blake2b(standing.flags(), digest_size=16).hexdigest()
    return Fingerprints(site_wide, records, contents, standing, indexable)
