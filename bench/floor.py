"""The disk floor: write files of the given sizes in the given layout, rendering nothing.

Usage: python bench/floor.py LIST DEST   (LIST: one "size<TAB>relative path" a line)

Per file: mkdir of its folder (once per folder), open, write, close: what any generator must
do at least to produce the same output. DEST must not exist.
"""

from __future__ import annotations

import sys
from pathlib import Path


def write_floor(listing: Path, dest: Path) -> int:
    """Write every listed file under `dest` (bytes of the listed size); return how many."""
    entries = [line.split("\t", 1) for line in listing.read_text(encoding="utf-8").splitlines()]
    block = b"x" * max((int(size) for size, _ in entries), default=0)
    made: set[Path] = set()
    dest.mkdir(parents=True)
    for size, path in entries:
        target = dest / path
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        with open(target, "wb") as handle:
            handle.write(memoryview(block)[: int(size)])
    return len(entries)


if __name__ == "__main__":
    print(write_floor(Path(sys.argv[1]), Path(sys.argv[2])))
