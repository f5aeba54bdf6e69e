"""Stage 2b, search standing: how much of each page is its own, and whether it may be indexed.

Method (SPEC §7). A page's main content is made of blocks, each from one source: the denial
type's wording for a category, the procedure's record, the payer's record, a content file. A
block's *use* is the number of pages showing it. The page's own text is its blocks used on at
most `shared_block_share` of all pages (or on at most `distinctive_pages_max` pages, on a small
site) (the appeal ladders, call to action and trust block are on every page and never count);
its distinctive words are those in own blocks used on at most `distinctive_pages_max` pages.
Names swapped into template sentences are never counted: template text is not a block.

Similarity is the Jaccard index of word 5-shingles of the own text. Pages with the same own
blocks have the same own text (similarity 1.0), so each distinct set of own blocks is sketched
once, with arrays rather than a Python loop per shingle: words are hashed (CRC-32), each
5-shingle's hash mixes its five word hashes, shingles are spread over 128 bins and the smallest
hash in each bin is the signature (one-permutation MinHash, empty bins filled by rotation). A
text's signature is the bin-wise minimum of its blocks' signatures. Candidates for the nearest
text come from banding (LSH): in each of 42 bands of 3 bins, signatures are sorted by the band
and the next one, and neighbours in that order that agree on the band are compared, so the
cost grows with the number of distinct texts, not their square. Jaccard is estimated as the
share of equal bins.
"""

from __future__ import annotations

import html
import re
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING

from .errors import Problem
from .model import SiteData
from .plan import PagePlan, Plan

if TYPE_CHECKING:
    import numpy as np

BINS = 128
ROWS, BANDS = 3, 42
VALUE_BITS = 24  # a bin holds the top 24 bits of a shingle hash; its low 7 bits chose the bin
EMPTY = 0xFFFF_FFFF  # a bin no shingle fell in
DISTANCE_STEP = 1 << VALUE_BITS  # added per bin skipped when densifying: a filled bin never equals a real one
SHINGLE = 5
CHUNK = 4096  # signatures handled at once: bounds the temporary arrays
SKETCH_SHINGLES = 1 << 20  # shingle hashes sketched at once, for the same reason
BORDERLINE = 0.12  # estimates this close to the similarity limit are replaced by the exact Jaccard
BUCKET_MATES, LIKELY = 64, 16  # near the limit: rows per band looked at, and how many get an exact Jaccard
TAG = re.compile(r"<[^>]+>")
# Odd 64-bit multipliers, one per word of a shingle, and a final mixer (splitmix64's).
WORD_WEIGHTS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD)
MIX = 0xBF58476D1CE4E5B9


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the standing stage found for one distinct own text."""

    similarity: float
    nearest: int  # index of a page with the most similar own text, or -1
    distinctive_words: int
    own_words: int


class Verdicts:
    """The Verdict of each distinct own text, held as four arrays (compact for a million pages)."""

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
    indexable: bytes = b""  # one byte per page, 1 when indexable; made from the rest when left empty

    def __post_init__(self) -> None:
        if not self.indexable and len(self.composition):
            verdicts = self.verdicts
            by_text = bytes(s < self.similarity_max and w >= self.distinctive_words_min
                            for s, w in zip(verdicts.similarity, verdicts.distinctive_words, strict=True))
            object.__setattr__(self, "indexable", bytes(by_text[number] for number in self.composition))

    def verdict(self, index: int) -> Verdict:
        """Return the verdict for page `index`."""
        return self.verdicts[self.composition[index]]

    def is_indexable(self, index: int) -> bool:
        """Return True when page `index` may be indexed."""
        return self.indexable[index] == 1

    def flags(self) -> bytes:
        """Return one byte per page, 1 when indexable (for fingerprints)."""
        return self.indexable

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
    """Numbers and texts the blocks of each page's main content, mirroring templates/page.html.

    A page's blocks come in three parts, each shared by many pages and so made once: its payer
    and procedure (the payer's record, the procedure's, a policy), its procedure and denial type
    (lede, wording, documents, evidence, the denial type's advice) and its content file.
    """

    def __init__(self, data: SiteData) -> None:
        self.data = data
        self.payers = {p.slug: p for p in data.payers}
        self.procedures = {p.slug: p for p in data.procedures}
        self.denials = {d.slug: d for d in data.denial_types}
        self.numbers: dict[str, int] = {}
        self.texts: list[str] = []  # a block's text, until its shingles and words are counted
        self.parts: dict[tuple[str, ...], tuple[int, ...]] = {}
        self.hashes: dict[int, np.ndarray] = {}
        self.word_counts: dict[int, int] = {}

    def shingles(self, number: int) -> np.ndarray:
        """Return the shingle hashes of block `number` (made once)."""
        self.measure(number)
        return self.hashes[number]

    def words(self, number: int) -> int:
        """Return how many words block `number` has."""
        self.measure(number)
        return self.word_counts[number]

    def measure(self, number: int) -> None:
        """Hash the shingles of block `number` and count its words, then let go of its text."""
        if number not in self.hashes:
            text = self.texts[number]
            self.hashes[number] = shingle_hashes(text)
            self.word_counts[number] = len(text.split())
            self.texts[number] = ""

    def of(self, page: PagePlan) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """Return the block numbers of a page's three parts."""
        content_key = page.content_key
        pair = self.parts.get((page.payer, page.procedure))
        if pair is None:
            pair = self.parts[page.payer, page.procedure] = self.payer_procedure(page.payer, page.procedure)
        angle_key = (page.procedure, page.denial_type, "content" if content_key else "data")
        angle = self.parts.get(angle_key)
        if angle is None:
            angle = self.parts[angle_key] = self.procedure_denial(page.procedure, page.denial_type, bool(content_key))
        return pair, angle, (self.content(content_key),) if content_key else ()

    def payer_procedure(self, payer_slug: str, procedure_slug: str) -> tuple[int, ...]:
        """Return the blocks of a payer and procedure pair: the payer, the procedure, the policy."""
        payer, procedure = self.payers[payer_slug], self.procedures[procedure_slug]
        numbers = [
            self.block(f"payer:{payer.slug}", lambda: " ".join(
                [n for _, n in payer.plan_notes] + [f"{r.name} {r.where}" for r in payer.policy_resources])),
            self.block(f"procedure:{procedure.slug}", lambda: " ".join(
                [procedure.summary, procedure.ordered_by, *(c.criterion for c in procedure.criteria)])),
        ]
        policy = self.data.policies.get((payer.slug, procedure.slug))
        if policy:
            numbers.append(self.block(f"policy:{payer.slug}:{procedure.slug}", lambda: f"{policy.policy} {policy.summary}"))
        return tuple(numbers)

    def procedure_denial(self, procedure_slug: str, denial_slug: str, has_content: bool) -> tuple[int, ...]:
        """Return the blocks a procedure and denial type give a page (fewer beside a content file)."""
        procedure, denial = self.procedures[procedure_slug], self.denials[denial_slug]
        category = procedure.category if procedure.category in dict(denial.by_category) else "*"
        wording_key = f"{denial.slug}:{category}"
        wording = denial.wording_for(procedure.category)
        clinical = denial.needs_clinical_records
        numbers = [self.block(f"lede:{wording_key}", lambda: wording.lede)]
        if not has_content:
            numbers += [
                self.block(f"wording:{wording_key}", lambda: " ".join(
                    [wording.why, wording.angle, *(self.data.facts[f].says for f in wording.facts)])),
                self.block(f"documents:{wording_key}", lambda: " ".join(wording.documents)),
                self.block(f"evidence:{procedure.slug}:{clinical}", lambda: " ".join(
                    [*(procedure.documents if clinical else ()), *(c.evidence for c in procedure.criteria)])),
            ]
        numbers.append(self.block(f"denial:{denial.slug}", lambda: " ".join([*denial.mistakes, denial.expedited])))
        return tuple(numbers)

    def content(self, key: tuple[str, ...]) -> int:
        """Return the block of a content file."""
        content = self.data.content[key]
        number = self.block("content:" + "/".join(content.key), lambda: " ".join(text_of(h) for _, h in content.sections))
        self.measure(number)  # content is most of the text: hold its shingles, not the words too
        return number

    def block(self, key: str, make: Callable[[], str]) -> int:
        """Return a block's number, making its text only the first time the key is seen."""
        number = self.numbers.get(key)
        if number is None:
            number = self.numbers[key] = len(self.texts)
            self.texts.append(make())
        return number


def shingle_hashes(text: str) -> np.ndarray:
    """Return 32-bit hashes of the word 5-shingles of `text` (lower-cased, punctuation kept)."""
    import numpy as np

    words = text.lower().encode().split()
    if not words:
        return np.zeros(0, dtype=np.uint32)
    hashes = np.fromiter(map(zlib.crc32, words), dtype=np.uint64, count=len(words))
    count = max(len(words) - SHINGLE + 1, 1)
    mixed = np.zeros(count, dtype=np.uint64)
    for offset, weight in enumerate(WORD_WEIGHTS[: len(words)]):
        mixed += (hashes[offset : offset + count] + np.uint64(offset + 1)) * np.uint64(weight)
    mixed ^= mixed >> np.uint64(31)
    mixed *= np.uint64(MIX)
    return (mixed >> np.uint64(32)).astype(np.uint32)


def sketches(texts: Sequence[str]) -> np.ndarray:
    """Return one MinHash signature per text (rows of BINS bins, EMPTY where no shingle fell)."""
    return sketch_shingles([shingle_hashes(text) for text in texts])


def sketch_shingles(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Return one MinHash signature per array of shingle hashes."""
    import numpy as np

    signatures = np.full((len(parts), BINS), EMPTY, dtype=np.uint32)
    start = 0
    while start < len(parts):  # a few blocks at a time: the temporaries take 24 bytes a shingle
        end, shingles = start, 0
        while end < len(parts) and (end == start or shingles + len(parts[end]) <= SKETCH_SHINGLES):
            shingles += len(parts[end])
            end += 1
        chunk = parts[start:end]
        owner = np.repeat(np.arange(len(chunk), dtype=np.int64), [len(p) for p in chunk])
        hashes = np.concatenate(chunk)
        np.minimum.at(signatures[start:end].reshape(-1), owner * BINS + (hashes & (BINS - 1)),
                      hashes >> np.uint32(32 - VALUE_BITS))
        start = end
    return signatures


def sketch(hashes: np.ndarray) -> np.ndarray:
    """Return the signature of one set of shingle hashes (one row)."""
    import numpy as np

    signature = np.full(BINS, EMPTY, dtype=np.uint32)
    np.minimum.at(signature, hashes & (BINS - 1), hashes >> np.uint32(32 - VALUE_BITS))
    return signature


def densify(signatures: np.ndarray) -> np.ndarray:
    """Return signatures with each empty bin filled from the next full one to its right.

    Rotation densification (Shrivastava and Li, 2014): both sides of a comparison fill the same
    way, so the share of equal bins stays an estimate of Jaccard. A row with no full bin stays empty.
    """
    import numpy as np

    full = signatures != EMPTY
    if full.all():
        return signatures
    doubled = np.concatenate([signatures, signatures], axis=1)
    position = np.where(np.concatenate([full, full], axis=1), np.arange(2 * BINS), 2 * BINS)
    source = np.minimum.accumulate(position[:, ::-1], axis=1)[:, ::-1][:, :BINS]
    alone = source >= 2 * BINS  # no full bin at all
    source = np.minimum(source, 2 * BINS - 1)
    filled = np.take_along_axis(doubled, source, axis=1) + ((source - np.arange(BINS)) * DISTANCE_STEP).astype(np.uint32)
    filled[alone] = EMPTY
    return filled


def estimate_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Return the estimated Jaccard index of the sets behind two dense signatures."""
    return float((a == b).sum()) / BINS


def nearest_neighbours(signatures: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return, per dense signature, the highest estimated Jaccard to another one and which one (-1: none).

    Equal signatures are paired at once. The others are banded: in each band, rows are sorted by
    the band's bins and then the next band's, and each row is compared with the rows beside it in
    that order that agree on the band. A pair at Jaccard 0.5 agrees on some band with probability
    0.996; near-identical rows agree on many bands and so meet in several orders.
    """
    import numpy as np

    count = len(signatures)
    best = np.zeros(count, dtype=np.int32)
    nearest = np.full(count, -1, dtype=np.int64)
    if count < 2:
        return best.astype(np.float32) / BINS, nearest
    rows = np.ascontiguousarray(signatures).view(np.dtype((np.void, 4 * BINS))).ravel()
    _, first, inverse, sizes = np.unique(rows, return_index=True, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    twinned = sizes[inverse] > 1
    _pair_twins(twinned, first, inverse, best, nearest)
    distinct = np.sort(first[signatures[first, 0] != EMPTY])  # one row per signature; no empty ones
    key, first_key = _band_key(signatures, distinct, 0), None
    for band in range(BANDS):
        next_key = _band_key(signatures, distinct, band + 1) if band + 1 < BANDS else first_key
        if band == 0:
            first_key = key
        order = np.lexsort((next_key, key))
        for step in (1, 2):
            left, right = order[:-step], order[step:]
            agree = key[left] == key[right]
            _compare(signatures, distinct[left[agree]], distinct[right[agree]], best, nearest)
        key = next_key
    return best.astype(np.float32) / BINS, nearest


def likely_nearest(signatures: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return pairs (query, other): for each query row, the LIKELY rows with the highest estimated
    Jaccard among every row that shares a band with it (up to BUCKET_MATES per band)."""
    import numpy as np

    rows = np.flatnonzero(signatures[:, 0] != EMPTY)
    if not queries.size or not rows.size:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    found_query, found_other = [], []
    for band in range(BANDS):
        key = _band_key(signatures, rows, band)
        order = np.argsort(key, kind="stable")
        ordered = key[order]
        wanted = _band_key(signatures, queries, band)
        low, high = np.searchsorted(ordered, wanted, "left"), np.searchsorted(ordered, wanted, "right")
        take = np.minimum(high - low, BUCKET_MATES)
        starts = np.repeat(low, take)
        steps = np.arange(take.sum()) - np.repeat(np.cumsum(take) - take, take)
        found_query.append(np.repeat(queries, take))
        found_other.append(rows[order[starts + steps]])
    query, other = np.concatenate(found_query), np.concatenate(found_other)
    pairs = np.unique(query[query != other] * len(signatures) + other[query != other])
    query, other = pairs // len(signatures), pairs % len(signatures)
    scores = np.concatenate([(signatures[query[i : i + CHUNK]] == signatures[other[i : i + CHUNK]]).sum(axis=1)
                             for i in range(0, len(query), CHUNK)] or [np.zeros(0, np.int64)])
    order = np.lexsort((-scores, query))
    query, other = query[order], other[order]
    rank = np.arange(len(query)) - np.searchsorted(query, query, "left")
    return query[rank < LIKELY], other[rank < LIKELY]


def _pair_twins(twinned: np.ndarray, first: np.ndarray, inverse: np.ndarray, best: np.ndarray,
                nearest: np.ndarray) -> None:
    """Give each row whose signature another row shares similarity 1.0 to one such row."""
    import numpy as np

    rows = np.flatnonzero(twinned)
    partner = first[inverse[rows]]
    second = {}
    for row, head in zip(rows.tolist(), partner.tolist(), strict=True):
        if row != head:
            second.setdefault(head, row)
    partner = np.array([second[row] if row == head else head for row, head in zip(rows.tolist(), partner.tolist())],
                       dtype=np.int64)
    best[rows] = BINS
    nearest[rows] = partner


def _band_key(signatures: np.ndarray, rows: np.ndarray, band: int) -> np.ndarray:
    """Return one 64-bit key per row of `rows` for the ROWS bins of a band (equal bins, equal keys)."""
    import numpy as np

    part = signatures[rows, band * ROWS : (band + 1) * ROWS].astype(np.uint64)
    return (part[:, 0] << np.uint64(32) | part[:, 1]) ^ (part[:, 2] * np.uint64(WORD_WEIGHTS[0]))


def _compare(signatures: np.ndarray, left: np.ndarray, right: np.ndarray, best: np.ndarray,
             nearest: np.ndarray) -> None:
    """Score each pair (left[i], right[i]) and keep, for both rows, the best seen so far."""
    for start in range(0, len(left), CHUNK):
        a, b = left[start : start + CHUNK], right[start : start + CHUNK]
        scores = (signatures[a] == signatures[b]).sum(axis=1, dtype="int32")
        for mine, other in ((a, b), (b, a)):
            better = scores > best[mine]
            best[mine[better]] = scores[better]
            nearest[mine[better]] = other[better]


def assess(data: SiteData, plan: Plan) -> Standing:
    """Return the Standing of every page of the plan (the same from every shard)."""
    thresholds = data.site.thresholds
    blocks = Blocks(data)
    parts = [blocks.of(page) for page in plan.pages]
    part_uses = Counter(chain.from_iterable(parts))
    uses = [0] * len(blocks.texts)
    for part, pages in part_uses.items():
        for number in part:
            uses[number] += pages
    # On a small site every block is on more than 5% of pages; one on few pages is never boilerplate.
    shared_above = max(thresholds.shared_block_share * len(plan.pages), thresholds.distinctive_pages_max)
    own_part = {part: tuple(n for n in part if uses[n] <= shared_above) for part in part_uses}
    compositions: dict[tuple[int, ...], int] = {}
    composition = array("I")
    first_page = array("I")
    for index, (pair, angle, content) in enumerate(parts):
        own = own_part[pair] + own_part[angle] + own_part[content] if content else own_part[pair] + own_part[angle]
        number = compositions.setdefault(own, len(compositions))
        if number == len(first_page):
            first_page.append(index)
        composition.append(number)
    del parts
    verdicts = _verdicts(list(compositions), first_page, composition, blocks, uses,
                         thresholds.distinctive_pages_max, thresholds.similarity_max)
    problems = near_copies(data, blocks, thresholds.similarity_max)
    return Standing(composition, verdicts, thresholds.similarity_max,
                    thresholds.distinctive_words_min, tuple(problems))


def _verdicts(owns: list[tuple[int, ...]], first_page: array, composition: array, blocks: Blocks,
              uses: list[int], distinct_max: int, limit: float) -> Verdicts:
    """Return the verdict of each own text; near the similarity limit, on its exact Jaccard."""
    import numpy as np

    used = sorted({n for own in owns for n in own})
    row_of = {n: row for row, n in enumerate(used)}
    shingles = [blocks.shingles(n) for n in used]
    words = {n: blocks.words(n) for n in used}
    signatures = own_signatures(owns, row_of, sketch_shingles(shingles))
    similarity, nearest = nearest_neighbours(signatures)
    size = np.bincount(np.frombuffer(composition, dtype=np.uint32), minlength=len(owns))
    exact = ExactJaccard(owns, row_of, shingles)
    borderline = np.flatnonzero((np.abs(similarity - limit) < BORDERLINE) & (nearest >= 0) & (size == 1))
    if borderline.size:
        similarity[borderline] = 0.0
    for number, other in zip(*(a.tolist() for a in likely_nearest(signatures, borderline)), strict=True):
        score = exact(number, other)
        if score > similarity[number]:
            similarity[number], nearest[number] = score, other
    twins = {number: page for page, number in enumerate(composition)
             if size[number] > 1 and page != first_page[number]}
    verdicts = Verdicts()
    for number, own in enumerate(owns):
        distinctive = sum(words[n] for n in own if uses[n] <= distinct_max)
        own_words = sum(words[n] for n in own)
        if size[number] > 1:
            verdicts.append(Verdict(1.0, twins[number], distinctive, own_words))
        else:
            other = int(nearest[number])
            verdicts.append(Verdict(float(similarity[number]), first_page[other] if other >= 0 else -1,
                                    distinctive, own_words))
    return verdicts


class ExactJaccard:
    """The exact Jaccard index of two own texts, from their blocks' shingle hashes."""

    def __init__(self, owns: list[tuple[int, ...]], row_of: dict[int, int], shingles: list[np.ndarray]) -> None:
        self.owns, self.row_of, self.shingles = owns, row_of, shingles
        self.sets: dict[int, np.ndarray] = {}

    def __call__(self, a: int, b: int) -> float:
        import numpy as np

        left, right = self.shingle_set(a), self.shingle_set(b)
        shared = len(np.intersect1d(left, right, assume_unique=True))
        union = len(left) + len(right) - shared
        return shared / union if union else 1.0

    def shingle_set(self, number: int) -> np.ndarray:
        """Return the sorted, distinct shingle hashes of own text `number`."""
        import numpy as np

        found = self.sets.get(number)
        if found is None:
            parts = [self.shingles[self.row_of[n]] for n in self.owns[number]]
            found = self.sets[number] = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.uint32)
        return found


def own_signatures(owns: list[tuple[int, ...]], row_of: dict[int, int], block_signatures: np.ndarray) -> np.ndarray:
    """Return the dense signature of each own text: the bin-wise minimum of its blocks' signatures."""
    import numpy as np

    result = np.full((len(owns), BINS), EMPTY, dtype=np.uint32)
    for start in range(0, len(owns), CHUNK):
        chunk = owns[start : start + CHUNK]
        filled = [i for i, own in enumerate(chunk) if own]
        if filled:
            members = np.fromiter((row_of[n] for i in filled for n in chunk[i]), dtype=np.int64)
            offsets = np.cumsum([0] + [len(chunk[i]) for i in filled[:-1]])
            merged = np.minimum.reduceat(block_signatures[members], offsets, axis=0)
            result[start + np.array(filled)] = densify(merged)
    return result


def near_copies(data: SiteData, blocks: Blocks, limit: float) -> list[Problem]:
    """Return a Problem for each hand-written file that is a near-copy of another."""
    files = sorted(data.content.values(), key=lambda c: c.origin.path)
    if len(files) < 2:
        return []
    signatures = densify(sketch_shingles([blocks.shingles(blocks.content(c.key)) for c in files]))
    similarity, nearest = nearest_neighbours(signatures)
    return [Problem(files[index].origin, f"{score:.2f} similar to {files[other].origin.path}; "
                    "a hand-written page must say something of its own")
            for index, (score, other) in enumerate(zip(similarity.tolist(), nearest.tolist()))
            if other >= 0 and score >= limit]
