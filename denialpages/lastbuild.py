"""The unchanged-inputs check: when nothing a build reads has changed and out/ is intact, the
last build's report stands and nothing is loaded, rendered or written.

Apart from the pipeline so that such a build imports none of the loading and rendering code.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .changes import write_changes
from .manifest import digest, inputs_digest, read_manifest, read_meta, still_valid, tree_digest
from .plan import Exclusion, Shard
from .write import output_lock


@dataclass(frozen=True, slots=True)
class BuildReport:
    """What a build or check did, for the summary line."""

    pages: int
    hubs: int
    files: int
    exclusions: tuple[Exclusion, ...]
    layers: dict[str, int]
    seconds: float
    in_shard: int = 0
    warning: str | None = None
    noindex: int = 0
    duplicates: tuple[str, ...] = ()

    def to_json(self) -> str:
        """Return what a later build that finds nothing changed reports again (not time or files written)."""
        values = dataclasses.asdict(self)
        del values["seconds"], values["files"], values["warning"]
        return json.dumps(values)

    @classmethod
    def from_json(cls, text: str) -> BuildReport:
        """Return the report saved by to_json, for a build that wrote nothing."""
        values = json.loads(text)
        values["exclusions"] = tuple(Exclusion(**e) for e in values["exclusions"])
        values["duplicates"] = tuple(values["duplicates"])
        return cls(files=0, seconds=0.0, **values)

    def summary(self, verb: str) -> str:
        """Return the one-line summary a command ends with."""
        excluded = sum(e.count for e in self.exclusions)
        layers = ", ".join(f"{n:,} {layer}" for layer, n in self.layers.items())
        wrote = f"; wrote {self.files:,} files" if verb == "Built" else ""
        return (f"{verb} {self.pages:,} pages ({self.noindex:,} noindex) and {self.hubs:,} hubs ({layers}; {excluded:,} combinations "
                f"excluded by {len(self.exclusions)} rules{wrote}) in {self.seconds:.2f} s")


def reusable_build(root: Path, out: Path, shard: Shard, record: bool, full: bool,
                   started: float) -> tuple[BuildReport | None, str]:
    """Return the last build's report when it still stands (else None; always None when `full`),
    and the digest of what this build reads."""
    inputs = inputs_digest(root, f"shard {shard.index}/{shard.count}", f"record {record}",
                           os.environ.get("SOURCE_DATE_EPOCH", ""))
    return (None if full else reuse_last_build(root, out, inputs, started)), inputs


def reuse_last_build(root: Path, out: Path, inputs: str, started: float) -> BuildReport | None:
    """Return the last build's report, having written nothing but an empty changes list, when
    its inputs were these and out/ is as it left it; else None."""
    with output_lock(out):
        last = unchanged_build(out, with_ledger(root, inputs))
        if last is None:
            return None
        write_changes(out, set(), {}, [])
        return dataclasses.replace(last, files=0, seconds=time.perf_counter() - started)


def with_ledger(root: Path, inputs: str) -> str:
    """Return the digest of a build's inputs with the URL ledger as it is now (a build rewrites
    the ledger, so the next build must compare against the ledger this one left)."""
    return digest(inputs, tree_digest(root / "ledger", "*"))


def unchanged_build(out: Path, inputs: str) -> BuildReport | None:
    """Return the last build's report when its inputs were these and out/ still holds exactly
    what it wrote (every file's fingerprint, size, time and inode); else None."""
    meta = read_meta(out)
    if meta.get("inputs") != inputs or not (report_dir(out) / "report.json").is_file():
        return None
    known, warning = read_manifest(out)
    if warning or not known or not all(still_valid(out, known, path, entry[0]) for path, entry in known.items()):
        return None
    return BuildReport.from_json(meta["report"])


def report_dir(out: Path) -> Path:
    """Return the folder of the marketer's report: beside out/, never published."""
    return out.parent / f"{out.name}-report"
