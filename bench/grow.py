"""Write a benchmark site: the bundled catalogue grown to about N landing pages.

Usage: python bench/grow.py N DIR   (prints the exact number of pages the generator plans)

The site folder gets templates/, data/site.yaml and data/facts.yaml copied from the repo, and
data/payers.yaml, data/procedures.yaml and data/denial_types.yaml grown from the bundled records:
the i-th payer is bundled payer i mod 11, numbered from its second copy on ("cigna-2", "Cigna 2");
procedures likewise; the denial types stay as bundled. A copy keeps every field of its original,
so it is valid and its applicability rules (by category) keep the same combinations; its prose
(about, plan notes, policy resources, summary, criteria, documents...) gets its names replaced and
REWORD of its other plain words swapped for random words of the bundled records, as a separately
written record would differ (with --verbatim-records the prose is copied unchanged: then
thousands of pages are near-identical, which is what the search-standing stage must flag). Payers and
procedures keep the bundled ratio (11 : 29); the number of procedures is then chosen to come
closest to N.

About 10% of pages (by a stable hash of the page's slugs, as the Hugo workload does) get a
hand-written content file: a bundled content file of the same denial type, preferably of the same
payer and procedure (else the same procedure category), copied with the source's payer and
procedure names replaced by the target's, so no two copies are byte-identical. These files are
benchmark inputs only, never published. Everything is deterministic: same N, same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import re
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent

CONTENT_SHARE = 10  # one page in CONTENT_SHARE gets a content file
COPIED = ("data/site.yaml", "data/facts.yaml")
PROSE_KEYS = {"about", "history", "event", "policy_resources", "where", "plan_notes", "summary", "ordered_by",
              "criteria", "criterion", "evidence", "documents"}
PLAN_TYPES = {"employer", "marketplace", "medicare-advantage", "medicaid"}  # keys of plan_notes
REWORD = 0.4  # share of a copied content file's plain words replaced by random words of the bundled content
PLAIN_WORD = re.compile(r"\b[A-Za-z]+(?:'[a-z]+)?\b")
NOT_PROSE = re.compile(r"\]\([^)]*\)|<[^>]*>|`[^`]*`|https?://\S+|mailto:\S+")  # link targets, code, URLs


@dataclass(frozen=True, slots=True)
class Bundled:
    """The bundled catalogue: raw records, which combinations apply, and its content files."""

    payers: list[dict[str, Any]]
    procedures: list[dict[str, Any]]
    denials: list[dict[str, Any]]
    applies: frozenset[tuple[str, str, str]]
    content: dict[tuple[str, str, str], str]


@dataclass(frozen=True, slots=True)
class Copy:
    """One grown record: which bundled record it copies and its copy number (1 = the original)."""

    base: int
    number: int

    def slug(self, records: list[dict[str, Any]]) -> str:
        """Return the copy's slug."""
        slug = records[self.base]["slug"]
        return slug if self.number == 1 else f"{slug}-{self.number}"

    def name(self, records: list[dict[str, Any]]) -> str:
        """Return the copy's display name."""
        name = records[self.base]["name"]
        return name if self.number == 1 else f"{name} {self.number}"


def read_bundled(repo: Path) -> Bundled:
    """Return the bundled records and the combinations the real planner makes of them."""
    from denialpages.load import load_site
    from denialpages.plan import plan_site

    raw = {name: yaml.safe_load((repo / "data" / f"{name}.yaml").read_text(encoding="utf-8"))
           for name in ("payers", "procedures", "denial_types")}
    plan = plan_site(load_site(repo))
    content = {}
    for file in sorted((repo / "content").glob("*/*/*.md")):
        payer, procedure, denial = file.relative_to(repo / "content").with_suffix("").parts
        if not payer.startswith("_"):
            content[(payer, procedure, denial)] = file.read_text(encoding="utf-8")
    return Bundled(raw["payers"], raw["procedures"], raw["denial_types"],
                   frozenset(p.key for p in plan.pages), content)


def copies(count: int, bases: int) -> list[Copy]:
    """Return `count` copies cycling through `bases` records, numbered from the second round."""
    return [Copy(i % bases, i // bases + 1) for i in range(count)]


def pages_per_pair(bundled: Bundled) -> list[list[int]]:
    """Return, per bundled payer and procedure, how many denial types apply."""
    counts = defaultdict(int)
    for payer, procedure, _ in bundled.applies:
        counts[(payer, procedure)] += 1
    return [[counts[(p["slug"], q["slug"])] for q in bundled.procedures] for p in bundled.payers]


def count_pages(per_pair: list[list[int]], payers: int, procedures: int) -> int:
    """Return the pages planned for the first `payers` payers and `procedures` procedures."""
    rows, cols = len(per_pair), len(per_pair[0])
    payer_copies = [payers // rows + (1 if b < payers % rows else 0) for b in range(rows)]
    procedure_copies = [procedures // cols + (1 if c < procedures % cols else 0) for c in range(cols)]
    return sum(payer_copies[b] * procedure_copies[c] * per_pair[b][c]
               for b in range(rows) for c in range(cols))


def closest_procedures(per_pair: list[list[int]], payers: int, target: int) -> tuple[int, int]:
    """Return (distance to `target`, procedure count) of the best procedure count for `payers`."""
    low, high = 1, 1
    while count_pages(per_pair, payers, high) < target:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if count_pages(per_pair, payers, middle) < target else (low, middle)
    return min((abs(count_pages(per_pair, payers, q) - target), q) for q in (low, high))


def choose_sizes(per_pair: list[list[int]], target: int) -> tuple[int, int]:
    """Return (payers, procedures): near the bundled ratio, with a page count closest to `target`."""
    total = count_pages(per_pair, len(per_pair), len(per_pair[0]))
    ideal = max(1, round(len(per_pair) * math.sqrt(target / total)))
    spread = max(1, ideal // 10)  # up to 10% more or fewer payers than the bundled ratio gives
    best = min((*closest_procedures(per_pair, p, target), abs(p - ideal), p)
               for p in range(max(1, ideal - spread), ideal + spread + 1))
    return best[3], best[1]


def grown_record(record: dict[str, Any], copy: Copy, extra_keys: tuple[str, ...],
                 vocabulary: list[str] | None) -> dict[str, Any]:
    """Return a copy of a bundled record with a numbered slug and name (and `extra_keys`).

    With a vocabulary, the copy's prose is reworded (names replaced, REWORD of the other words
    swapped), as a separately written record's would differ; without one it is kept verbatim.
    """
    if copy.number == 1:
        return dict(record)
    grown = dict(record, slug=f"{record['slug']}-{copy.number}", name=f"{record['name']} {copy.number}")
    for key in extra_keys:
        if key in record:
            grown[key] = f"{record[key]} {copy.number}"
    if "previous_slugs" in record:
        grown["previous_slugs"] = [f"{slug}-{copy.number}" for slug in record["previous_slugs"]]
    if vocabulary is None:
        return grown
    rng = random.Random(stable_number(grown["slug"]))
    pairs = [(record["name"], grown["name"])]
    return {key: reworded_prose(value, vocabulary, rng, pairs) if key in PROSE_KEYS else value
            for key, value in grown.items()}


def reworded_prose(value: Any, vocabulary: list[str], rng: random.Random, pairs: list[tuple[str, str]]) -> Any:
    """Return a prose field (text, or lists and mappings of texts) renamed and reworded."""
    if isinstance(value, str):
        keep = frozenset(w for _, new in pairs for w in PLAIN_WORD.findall(new))  # the names stay readable
        return outside_urls(renamed(value, pairs),
                            lambda part: PLAIN_WORD.sub(lambda m: _swap(m, vocabulary, rng, keep), part))
    if isinstance(value, list):
        return [reworded_prose(item, vocabulary, rng, pairs) for item in value]
    if isinstance(value, dict):
        return {k: reworded_prose(v, vocabulary, rng, pairs) if k in PROSE_KEYS or k in PLAN_TYPES else v
                for k, v in value.items()}
    return value


def record_vocabulary(records: list[dict[str, Any]]) -> list[str]:
    """Return every plain lower-case word of the records' prose fields, with repeats."""
    words: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, str):
            words.extend(w for w in PLAIN_WORD.findall(value) if w.islower())
        elif isinstance(value, list):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key in PROSE_KEYS or key in PLAN_TYPES:
                    collect(item)

    for record in records:
        collect({k: v for k, v in record.items() if k in PROSE_KEYS})
    return words


def grown_rules(record: dict[str, Any], procedure_slugs: dict[str, list[str]]) -> dict[str, Any]:
    """Return a record whose only/exclude rules name every copy of the procedures they name."""
    record = dict(record)
    for kind in ("only", "exclude"):
        rule = record.get(kind)
        if not rule or "procedures" not in rule:
            continue
        rule = dict(rule, procedures=[s for base in rule["procedures"] for s in procedure_slugs.get(base, [])])
        if not rule["procedures"]:
            del rule["procedures"]
        record[kind] = rule if rule.get("procedures") or rule.get("categories") else None
        if record[kind] is None:
            del record[kind]
    return record


class _PlainDumper(yaml.SafeDumper):
    """Writes shared values out in full: a marketer's file has no anchors or aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def write_yaml(path: Path, records: list[dict[str, Any]]) -> None:
    """Write a list of records as YAML, keys in their bundled order."""
    text = yaml.dump(records, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True, width=100)
    path.write_text("# Benchmark input written by bench/grow.py: never published.\n" + text, encoding="utf-8")


def stable_number(*parts: str) -> int:
    """Return a hash of some strings that is the same on every machine and run."""
    return int.from_bytes(hashlib.blake2b("/".join(parts).encode(), digest_size=8).digest(), "big")


def pick_source(bundled: Bundled, base_payer: str, procedure: dict[str, Any], denial: str,
                categories: dict[str, str]) -> tuple[str, str, str]:
    """Return the bundled content file to copy to a combination (same denial type if any)."""
    exact = (base_payer, procedure["slug"], denial)
    if exact in bundled.content:
        return exact
    same_denial = [k for k in bundled.content if k[2] == denial]
    same_category = [k for k in same_denial if categories[k[1]] == procedure["category"]]
    candidates = same_category or same_denial or sorted(bundled.content)
    return candidates[stable_number(base_payer, procedure["slug"], denial) % len(candidates)]


def renamed(text: str, pairs: list[tuple[str, str]]) -> str:
    """Return `text` with each whole-word name (any case) replaced by its new name, URLs untouched."""
    def rename(part: str) -> str:
        for old, new in pairs:
            if old != new:
                part = re.sub(rf"(?<!\w){re.escape(old)}(?!\w)", new, part, flags=re.IGNORECASE)
        return part

    return outside_urls(text, rename)


def outside_urls(line: str, change: Callable[[str], str]) -> str:
    """Return `line` with `change` applied to its prose only (not link targets, code or URLs)."""
    kept = NOT_PROSE.findall(line)
    prose = [change(part) for part in NOT_PROSE.split(line)]
    return "".join(p + k for p, k in zip(prose, [*kept, ""], strict=True))


def reworded(text: str, vocabulary: list[str], rng: random.Random, keep: frozenset[str] = frozenset()) -> str:
    """Return a content file with about REWORD of the plain words of its body swapped at random.

    Headings, front matter and Markdown syntax stay; each copy so shares almost no word
    5-shingle with any other, as separately written pages would (the build refuses near-copies).
    """
    front, _, body = text.partition("\n---\n") if text.startswith("---\n") else ("", "", text)
    lines = []
    for line in body.split("\n"):
        if not line.startswith("#"):
            line = outside_urls(line, lambda part: PLAIN_WORD.sub(lambda m: _swap(m, vocabulary, rng, keep), part))
        lines.append(line)
    return (front + "\n---\n" if front else "") + "\n".join(lines)


def _swap(match: re.Match[str], vocabulary: list[str], rng: random.Random, keep: frozenset[str] = frozenset()) -> str:
    word = match.group(0)
    if word in keep or rng.random() >= REWORD:
        return word
    new = rng.choice(vocabulary)
    return new.capitalize() if word[0].isupper() else new


def content_vocabulary(bundled: Bundled) -> list[str]:
    """Return every plain lower-case word of the bundled content bodies, with repeats (by frequency)."""
    words = []
    for text in bundled.content.values():
        words += [w for w in PLAIN_WORD.findall(text.rpartition("\n---\n")[2]) if w.islower()]
    return words


def write_content(site: Path, bundled: Bundled, payers: list[Copy], procedures: list[Copy]) -> int:
    """Write a content file for about one page in CONTENT_SHARE; return how many."""
    names = {p["slug"]: p["name"] for p in (*bundled.payers, *bundled.procedures)}
    categories = {p["slug"]: p["category"] for p in bundled.procedures}
    vocabulary = content_vocabulary(bundled)
    written = 0
    for payer in payers:
        payer_slug, payer_name = payer.slug(bundled.payers), payer.name(bundled.payers)
        base_payer = bundled.payers[payer.base]["slug"]
        for procedure in procedures:
            base = bundled.procedures[procedure.base]
            procedure_slug = procedure.slug(bundled.procedures)
            for denial in (d["slug"] for d in bundled.denials):
                if (base_payer, base["slug"], denial) not in bundled.applies:
                    continue
                number = stable_number(payer_slug, procedure_slug, denial)
                if number % CONTENT_SHARE:
                    continue
                source = pick_source(bundled, base_payer, base, denial, categories)
                pairs = [(names[source[0]], payer_name), (names[source[1]], procedure.name(bundled.procedures))]
                text = renamed(bundled.content[source], pairs)
                keep = frozenset(w for _, new in pairs for w in PLAIN_WORD.findall(new))
                target = site / "content" / payer_slug / procedure_slug / f"{denial}.md"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(reworded(text, vocabulary, random.Random(number), keep), encoding="utf-8")
                written += 1
    return written


def grow_site(target: int, site: Path, repo: Path = REPO, verbatim: bool = False) -> dict[str, int]:
    """Write the grown site into `site` (replacing it); return its sizes."""
    bundled = read_bundled(repo)
    words = None if verbatim else record_vocabulary([*bundled.payers, *bundled.procedures])
    payer_count, procedure_count = choose_sizes(pages_per_pair(bundled), target)
    payers = copies(payer_count, len(bundled.payers))
    procedures = copies(procedure_count, len(bundled.procedures))
    procedure_slugs: dict[str, list[str]] = defaultdict(list)
    for copy in procedures:
        procedure_slugs[bundled.procedures[copy.base]["slug"]].append(copy.slug(bundled.procedures))
    if site.exists():
        shutil.rmtree(site)
    (site / "data").mkdir(parents=True)
    (site / "content").mkdir()
    shutil.copytree(repo / "templates", site / "templates")
    for name in COPIED:
        shutil.copy2(repo / name, site / name)
    write_yaml(site / "data/payers.yaml", [
        grown_rules(grown_record(bundled.payers[c.base], c, ("legal_name",), words), procedure_slugs)
        for c in payers])
    write_yaml(site / "data/procedures.yaml", [
        grown_record(bundled.procedures[c.base], c, ("long_name",), words) for c in procedures])
    write_yaml(site / "data/denial_types.yaml", [grown_rules(d, procedure_slugs) for d in bundled.denials])
    contents = write_content(site, bundled, payers, procedures)
    return {"payers": payer_count, "procedures": procedure_count,
            "denial_types": len(bundled.denials), "content_files": contents,
            "expected_pages": count_pages(pages_per_pair(bundled), payer_count, procedure_count)}


def planned_pages(site: Path) -> int:
    """Return how many landing pages the generator plans for `site` (its own load and plan).

    Content files decide a page's layer, never whether it exists, so the count is taken on the
    site's data and templates alone: loading 100,000 content files would take many minutes.
    """
    from denialpages.load import load_site
    from denialpages.plan import plan_site

    with tempfile.TemporaryDirectory() as scratch:
        for name in ("data", "templates"):
            (Path(scratch) / name).symlink_to(site / name)
        return len(plan_site(load_site(Path(scratch))).pages)


def main() -> None:
    """Grow the site and print its sizes and its exact page count."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", type=int, help="about how many landing pages")
    parser.add_argument("site", type=Path, help="site folder to write (replaced)")
    parser.add_argument("--verbatim-records", action="store_true",
                        help="copy payer and procedure prose verbatim (only names change) instead of rewording it")
    parser.add_argument("--repo", type=Path, default=REPO,
                        help="where the bundled data/, content/, templates/ and denialpages/ are (default: this repo)")
    args = parser.parse_args()
    sys.path.insert(0, str(args.repo.resolve()))  # the generator whose planner counts the pages
    started = time.perf_counter()
    sizes = grow_site(args.pages, args.site.resolve(), args.repo.resolve(), args.verbatim_records)
    written = time.perf_counter()
    pages = planned_pages(args.site.resolve())
    checked = time.perf_counter()
    if pages != sizes["expected_pages"]:
        sys.exit(f"grow.py expected {sizes['expected_pages']:,} pages but the generator plans {pages:,}")
    print(" ".join(f"{k}={v}" for k, v in sizes.items() if k != "expected_pages"),
          f"write_s={written - started:.1f} load_plan_s={checked - written:.1f}", file=sys.stderr)
    print(pages)


if __name__ == "__main__":
    main()
