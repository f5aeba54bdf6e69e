"""Stage 2b, search standing: how much of each page is its own, and whether it may be indexed.

Method (SPEC §7). A page's main content is made of blocks, each from one source: the denial
type's wording for a category, the procedure's record, the payer's record, a content file. A
block's *use* is the number of pages showing it. The page's own text is its blocks used on at
most `shared_block_share` of all pages (or on at most `distinctive_pages_max` pages, on a small site) (the appeal ladders, call to action and trust block are
on every page and never count); its distinctive words are those in own blocks used on at most
`distinctive_pages_max` pages. Names swapped into template sentences are never counted: template
text is not a block.

Similarity is the Jaccard index of word 5-shingles of the own text. Pages with the same own
blocks have the same own text (similarity 1.0), so each distinct set of own blocks is sketched
once: shingles are hashed to 64 bits (two CRC-32s), the 128 smallest hashes form a bottom-k
sketch, candidate pairs share at least 8 sketch values (an inverted index, so the cost grows with
the number of distinct texts, not their square), and Jaccard is estimated from the two sketches.
"""

from __future__ import annotations

import heapq
import html
import re
import zlib
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from .errors import Problem
from .model import SiteData
from .plan import PagePlan, Plan

SKETCH = 128
MIN_SHARED = 8
TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the standing stage found for one distinct own text."""

    similarity: float
    nearest: int  # index of a page with the most similar own text, or -1
    distinctive_words: int
    own_words: int


@dataclass(frozen=True, slots=True)
class Standing:
    """Indexability of every page (stage 2b's output), compact enough for a million pages."""

    composition: array  # page index -> index into verdicts
    verdicts: tuple[Verdict, ...]
    similarity_max: float
    distinctive_words_min: int
    problems: tuple[Problem, ...]

    def verdict(self, index: int) -> Verdict:
        """Return the verdict for page `index`."""
        return self.verdicts[self.composition[index]]

    def is_indexable(self, index: int) -> bool:
        """Return True when page `index` may be indexed."""
        verdict = self.verdict(index)
        return verdict.similarity < self.similarity_max and verdict.distinctive_words >= self.distinctive_words_min

    def flags(self) -> bytes:
        """Return one byte per page, 1 when indexable (for fingerprints)."""
        return bytes(self.is_indexable(i) for i in range(len(self.composition)))

    def reason(self, index: int, plan: Plan) -> str:
        """Return why page `index` is not indexable ('' when it is)."""
        verdict = self.verdict(index)
        reasons = []
        if verdict.distinctive_words < self.distinctive_words_min:
            reasons.append(f"{verdict.distinctive_words} distinctive words (needs {self.distinctive_words_min})")
        if verdict.similarity >= self.similarity_max:
            reasons.append(f"{verdict.similarity:.2f} similar to {plan.pages[verdict.nearest].url}")
        return "; ".join(reasons)


def text_of(html_fragment: str) -> str:
    """Return the words of an HTML fragment."""
    return " ".join(html.unescape(TAG.sub(" ", html_fragment)).split())


class Blocks:
    """Names and texts the blocks of each page's main content, mirroring templates/page.html."""

    def __init__(self, data: SiteData) -> None:
        self.data = data
        self.payers = {p.slug: p for p in data.payers}
        self.procedures = {p.slug: p for p in data.procedures}
        self.denials = {d.slug: d for d in data.denial_types}

    def of(self, page: PagePlan) -> list[tuple[str, str]]:
        """Return (source key, text) for each block of a page's main content, in page order."""
        payer = self.payers[page.payer]
        procedure = self.procedures[page.procedure]
        denial = self.denials[page.denial_type]
        wording_key = f"{denial.slug}:{procedure.category if procedure.category in dict(denial.by_category) else '*'}"
        wording = denial.wording_for(procedure.category)
        blocks = [
            (f"lede:{wording_key}", wording.lede),
            (f"payer:{payer.slug}", " ".join([n for _, n in payer.plan_notes]
                                             + [f"{r.name} {r.where}" for r in payer.policy_resources])),
            (f"procedure:{procedure.slug}", " ".join(
                [procedure.summary, procedure.ordered_by, *(c.criterion for c in procedure.criteria)])),
        ]
        content = self.data.content.get(page.content_key) if page.content_key else None
        if content:
            blocks.append(("content:" + "/".join(content.key), " ".join(text_of(h) for _, h in content.sections)))
        else:
            blocks += [
                (f"wording:{wording_key}", " ".join(
                    [wording.why, wording.angle, *(self.data.facts[f].says for f in wording.facts)])),
                (f"documents:{wording_key}", " ".join(wording.documents)),
                (f"evidence:{procedure.slug}", " ".join(
                    [*procedure.documents, *(c.evidence for c in procedure.criteria)])),
            ]
        blocks.append((f"denial:{denial.slug}", " ".join([*denial.mistakes, denial.expedited])))
        return blocks


def shingle_hashes(text: str) -> set[int]:
    """Return 64-bit hashes of the word 5-shingles of `text` (lower-cased, punctuation kept)."""
    words = text.lower().split()
    found = set()
    for start in range(max(1, len(words) - 4)):
        shingle = " ".join(words[start : start + 5]).encode()
        found.add(zlib.crc32(shingle) << 32 | zlib.crc32(shingle, 0x9E3779B9))
    return found


def sketch(hashes: set[int]) -> tuple[int, ...]:
    """Return the bottom-k sketch of a set of shingle hashes, sorted."""
    return tuple(sorted(heapq.nsmallest(SKETCH, hashes)))


def estimate_jaccard(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Return the bottom-k estimate of the Jaccard index of the sets behind two sketches."""
    if not a or not b:
        return 0.0
    union = heapq.nsmallest(SKETCH, set(a) | set(b))
    both = set(a) & set(b)
    return sum(1 for h in union if h in both) / len(union)


def nearest_neighbours(sketches: list[tuple[int, ...]]) -> list[tuple[float, int]]:
    """Return, for each sketch, the highest estimated Jaccard to another one and which one."""
    postings: dict[int, list[int]] = defaultdict(list)
    for index, values in enumerate(sketches):
        for value in values:
            postings[value].append(index)
    best = [(0.0, -1)] * len(sketches)
    for index, values in enumerate(sketches):
        shared: Counter[int] = Counter()
        for value in values:
            shared.update(other for other in postings[value] if other != index)
        for other, count in shared.items():
            if count >= MIN_SHARED:
                score = estimate_jaccard(values, sketches[other])
                if score > best[index][0]:
                    best[index] = (score, other)
    return best


def assess(data: SiteData, plan: Plan) -> Standing:
    """Return the Standing of every page of the plan (the same from every shard)."""
    thresholds = data.site.thresholds
    blocks = Blocks(data)
    uses: Counter[str] = Counter(key for page in plan.pages for key, _ in blocks.of(page))
    # On a small site every block is on more than 5% of pages; one on few pages is never boilerplate.
    shared_above = max(thresholds.shared_block_share * len(plan.pages), thresholds.distinctive_pages_max)
    compositions: dict[tuple[str, ...], int] = {}
    composition = array("I")
    texts: dict[str, str] = {}
    first_page: list[int] = []
    for index, page in enumerate(plan.pages):
        own = []
        for key, text in blocks.of(page):
            if uses[key] <= shared_above:
                texts.setdefault(key, text)
                own.append(key)
        number = compositions.setdefault(tuple(own), len(compositions))
        if number == len(first_page):
            first_page.append(index)
        composition.append(number)
    verdicts = _verdicts(list(compositions), first_page, composition, texts, uses, thresholds.distinctive_pages_max)
    problems = near_copies(data, thresholds.similarity_max)
    return Standing(composition, tuple(verdicts), thresholds.similarity_max,
                    thresholds.distinctive_words_min, tuple(problems))


def _verdicts(owns: list[tuple[str, ...]], first_page: list[int], composition: array,
              texts: dict[str, str], uses: Counter[str], distinct_max: int) -> list[Verdict]:
    size = Counter(composition)
    sketches = [sketch(shingle_hashes(" ".join(texts[k] for k in own))) for own in owns]
    neighbours = nearest_neighbours(sketches)
    twins = {number: page for page, number in enumerate(composition) if size[number] > 1 and page != first_page[number]}
    verdicts = []
    for number, own in enumerate(owns):
        words = sum(len(texts[k].split()) for k in own if uses[k] <= distinct_max)
        own_words = sum(len(texts[k].split()) for k in own)
        if size[number] > 1:
            similarity, nearest = 1.0, twins[number]
        else:
            similarity, other = neighbours[number]
            nearest = first_page[other] if other >= 0 else -1
        verdicts.append(Verdict(similarity, nearest, words, own_words))
    return verdicts


def near_copies(data: SiteData, limit: float) -> list[Problem]:
    """Return a Problem for each hand-written file that is a near-copy of another."""
    files = sorted(data.content.values(), key=lambda c: c.origin.path)
    sketches = [sketch(shingle_hashes(" ".join(text_of(h) for _, h in c.sections))) for c in files]
    problems = []
    for index, (score, other) in enumerate(nearest_neighbours(sketches)):
        if other >= 0 and score >= limit:
            problems.append(Problem(files[index].origin, f"{score:.2f} similar to {files[other].origin.path}; "
                                    "a hand-written page must say something of its own"))
    return problems
