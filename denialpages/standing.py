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
once: shingles are hashed to 32 bits (CRC-32) and spread over 128 bins, the smallest hash in
each bin is the signature (one-permutation MinHash), signatures are banded (LSH) to find
candidates, each is compared with its MAX_CANDIDATES best candidates at most, so the cost grows with the
number of distinct texts, not their square, and Jaccard is estimated as the share of equal bins.
"""

from __future__ import annotations

import hashlib
import html
import operator
import re
import zlib
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate

from .errors import Problem
from .model import SiteData
from .plan import PagePlan, Plan

BINS = 128
ROWS, BANDS = 3, 42
EMPTY = 0xFFFF_FFFF  # a bin no shingle fell in; real values are 25 bits (a CRC-32 less its 7 bin bits)
DISTANCE_STEP = 1 << 25  # added per bin skipped when densifying: a filled bin never equals a real one
MAX_CANDIDATES = 16
TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the standing stage found for one distinct own text."""

    similarity: float
    nearest: int  # index of a page with the most similar own text, or -1
    distinctive_words: int
    own_words: int


class Verdicts:
    """The Verdict of each distinct own text, held as four arrays: a Verdict object per text
    would pin, here and there, the memory the stage's temporary data is given back from."""

    __slots__ = ("similarity", "nearest", "distinctive_words", "own_words")

    def __init__(self) -> None:
        self.similarity = array("f")  # k/128 and 1.0 are exact in single precision
        self.nearest = array("i")
        self.distinctive_words = array("I")
        self.own_words = array("I")

    def append(self, verdict: Verdict) -> None:
        """Add the verdict of the next own text."""
        self.similarity.append(verdict.similarity)
        self.nearest.append(verdict.nearest)
        self.distinctive_words.append(verdict.distinctive_words)
        self.own_words.append(verdict.own_words)

    def __getitem__(self, number: int) -> Verdict:
        return Verdict(self.similarity[number], self.nearest[number], self.distinctive_words[number],
                       self.own_words[number])

    def __len__(self) -> int:
        return len(self.similarity)


@dataclass(frozen=True, slots=True)
class Standing:
    """Indexability of every page (stage 2b's output), compact enough for a million pages."""

    composition: array  # page index -> index into verdicts
    verdicts: Verdicts
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
        self.texts: dict[str, str] = {}  # a block's text, made once however many pages show it

    def of(self, page: PagePlan) -> list[tuple[str, str]]:
        """Return (source key, text) for each block of a page's main content, in page order."""
        payer = self.payers[page.payer]
        procedure = self.procedures[page.procedure]
        denial = self.denials[page.denial_type]
        wording_key = f"{denial.slug}:{procedure.category if procedure.category in dict(denial.by_category) else '*'}"
        wording = denial.wording_for(procedure.category)
        clinical = denial.needs_clinical_records
        block = self.block
        blocks = [
            block(f"lede:{wording_key}", lambda: wording.lede),
            block(f"payer:{payer.slug}", lambda: " ".join([n for _, n in payer.plan_notes]
                                                          + [f"{r.name} {r.where}" for r in payer.policy_resources])),
            block(f"procedure:{procedure.slug}", lambda: " ".join(
                [procedure.summary, procedure.ordered_by, *(c.criterion for c in procedure.criteria)])),
        ]
        policy = self.data.policies.get((payer.slug, procedure.slug))
        if policy:
            blocks.append(block(f"policy:{payer.slug}:{procedure.slug}", lambda: f"{policy.policy} {policy.summary}"))
        content = self.data.content.get(page.content_key) if page.content_key else None
        if content:
            blocks.append(block("content:" + "/".join(content.key),
                                lambda: " ".join(text_of(h) for _, h in content.sections)))
        else:
            blocks += [
                block(f"wording:{wording_key}", lambda: " ".join(
                    [wording.why, wording.angle, *(self.data.facts[f].says for f in wording.facts)])),
                block(f"documents:{wording_key}", lambda: " ".join(wording.documents)),
                block(f"evidence:{procedure.slug}:{clinical}", lambda: " ".join(
                    [*(procedure.documents if clinical else ()), *(c.evidence for c in procedure.criteria)])),
            ]
        blocks.append(block(f"denial:{denial.slug}", lambda: " ".join([*denial.mistakes, denial.expedited])))
        return blocks

    def block(self, key: str, make: Callable[[], str]) -> tuple[str, str]:
        """Return (key, text), making the text only the first time the key is seen."""
        text = self.texts.get(key)
        if text is None:
            text = self.texts[key] = make()
        return key, text


def shingle_hashes(text: str) -> set[int]:
    """Return 32-bit hashes (CRC-32) of the word 5-shingles of `text` (lower-cased, punctuation kept)."""
    words = text.lower().encode().split()
    if len(words) <= 5:
        return {zlib.crc32(b" ".join(words))} if words else set()
    joined = b" ".join(words)
    starts = list(accumulate((len(word) + 1 for word in words), initial=0))  # word i is joined[starts[i]:starts[i+1]-1]
    crc32 = zlib.crc32
    return {crc32(joined[start:end - 1]) for start, end in zip(starts, starts[5:])}


def sketch(hashes: set[int]) -> array:
    """Return a one-permutation MinHash signature: the smallest hash in each of BINS bins."""
    mins = [EMPTY] * BINS
    for value in hashes:
        slot, rest = value & (BINS - 1), value >> 7
        if rest < mins[slot]:
            mins[slot] = rest
    return array("I", mins)


def merge(signatures: list[array]) -> array:
    """Return the signature of the union of the sets behind `signatures` (bin-wise minimum)."""
    return array("I", map(min, *signatures)) if len(signatures) > 1 else signatures[0]


def densify(signature: array) -> array:
    """Return the signature with each empty bin filled from the next full one to its right.

    Rotation densification (Shrivastava and Li, 2014): both sides of a comparison fill the same
    way, so the share of equal bins stays an estimate of Jaccard, and no bin is left empty.
    """
    if EMPTY not in signature:
        return signature
    full = [i for i, v in enumerate(signature) if v != EMPTY]
    if not full:
        return signature
    filled = array("I", signature)
    for slot in range(BINS):
        if filled[slot] == EMPTY:
            source = next((i for i in full if i > slot), full[0] + BINS)
            filled[slot] = signature[source % BINS] + (source - slot) * DISTANCE_STEP
    return filled


def estimate_jaccard(a: array, b: array) -> float:
    """Return the estimated Jaccard index of the sets behind two dense signatures."""
    return sum(map(operator.eq, a, b)) / BINS


def nearest_neighbours(sketches: list[array]) -> list[tuple[float, int]]:
    """Return, for each signature, the highest estimated Jaccard to another one and which one.

    Identical signatures are paired at once; the rest are banded (BANDS bands of ROWS bins: a pair
    at Jaccard 0.5 shares a band with probability 0.996) and each signature is compared with at
    most MAX_CANDIDATES others, those sharing the most bands first.
    """
    best = [(0.0, -1)] * len(sketches)
    first_with: dict[bytes, int] = {}
    for index, values in enumerate(sketches):
        twin = first_with.setdefault(hashlib.blake2b(values, digest_size=16).digest(), index)
        if twin != index:
            best[index], best[twin] = (1.0, twin), (1.0, index)
    distinct = list(first_with.values())
    del first_with
    bands = [_band_groups(sketches, distinct, band) for band in range(BANDS)]
    for index in distinct:
        shared: Counter[int] = Counter()
        for group_of, groups in bands:
            group = group_of[index]
            if group:
                shared.update(groups[group])
        del shared[index]
        for other, _ in shared.most_common(MAX_CANDIDATES):
            score = estimate_jaccard(sketches[index], sketches[other])
            if score > best[index][0]:
                best[index] = (score, other)
    return best


def _band_groups(sketches: list[array], distinct: list[int], band: int) -> tuple[array, list[array]]:
    """Return, for one band, each signature's group number (0: alone) and each group's members.

    Kept as arrays rather than one dictionary of band values for all bands, which at 50,000
    pages held more memory than the rest of the build together."""
    by_rows: dict[bytes, array] = defaultdict(lambda: array("I"))
    low, high = band * ROWS, (band + 1) * ROWS
    for index in distinct:
        rows = sketches[index][low:high]
        if EMPTY not in rows:
            by_rows[rows.tobytes()].append(index)
    group_of = array("I", bytes(4 * len(sketches)))
    groups = [array("I")]
    for members in by_rows.values():
        if len(members) > 1:
            for index in members:
                group_of[index] = len(groups)
            groups.append(members)
    return group_of, groups


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
    return Standing(composition, verdicts, thresholds.similarity_max,
                    thresholds.distinctive_words_min, tuple(problems))


def _verdicts(owns: list[tuple[str, ...]], first_page: list[int], composition: array,
              texts: dict[str, str], uses: Counter[str], distinct_max: int) -> Verdicts:
    size = Counter(composition)
    block_sketches = {key: sketch(shingle_hashes(text)) for key, text in texts.items()}
    sketches = [densify(merge([block_sketches[k] for k in own])) if own else densify(sketch(set()))
                for own in owns]
    neighbours = nearest_neighbours(sketches)
    twins = {number: page for page, number in enumerate(composition) if size[number] > 1 and page != first_page[number]}
    verdicts = Verdicts()
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
    sketches = [densify(sketch(shingle_hashes(" ".join(text_of(h) for _, h in c.sections)))) for c in files]
    problems = []
    for index, (score, other) in enumerate(nearest_neighbours(sketches)):
        if other >= 0 and score >= limit:
            problems.append(Problem(files[index].origin, f"{score:.2f} similar to {files[other].origin.path}; "
                                    "a hand-written page must say something of its own"))
    return problems
