"""Search standing: own text, distinctive words, similarity, noindex, sitemap and hubs agree."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from collections import Counter

from conftest import REPO, SITE, parse, run_cli, site_files
from denialpages.load import load_site
from denialpages.plan import plan_site
from denialpages.standing import Blocks, assess, estimate_jaccard, shingle_hashes, sketch

WORDS = ("appeal claim record plan letter doctor therapy visit note review policy criteria notice date "
         "member denial evidence chart request file form reason step care clinic report result test").split()


def prose(seed: int, words: int = 220) -> str:
    """Return test-only filler text, different for each seed (never used on a published page)."""
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) + str(rng.randint(0, 99)) for _ in range(words))


def page_md(body: str) -> str:
    return (f"## Why it was denied\n{body}\n## Appeal route\nAsk.\n"
            "## Documents to gather\n1. A\n2. B\n## Criteria mapping\n| a | b |\n|---|---|\n| c | d |\n")


def long_site(**extra: str):
    return site_files(**{"content/cigna/cimt/prior-authorization.md": page_md(prose(1)),
                         "content/humana/humira/step-therapy.md": page_md(prose(2)), **extra})


def test_only_pages_with_enough_distinctive_text_are_indexable(make_site):
    data = load_site(make_site(long_site()))
    plan = plan_site(data)
    standing = assess(data, plan)
    indexable = {plan.pages[i].key for i in range(len(plan.pages)) if standing.is_indexable(i)}
    assert indexable == {("cigna", "cimt", "prior-authorization"), ("humana", "humira", "step-therapy")}
    data_page = next(i for i, p in enumerate(plan.pages) if p.key == ("humana", "cimt", "prior-authorization"))
    assert "distinctive words (needs 150)" in standing.reason(data_page, plan)


def test_noindex_pages_carry_the_meta_and_stay_out_of_sitemap_and_featured_lists(make_site, tmp_path):
    out = tmp_path / "out"
    assert run_cli("build", "--site", str(make_site(long_site())), "--out", str(out)).exit_code == 0
    robots = lambda path: parse(out / path).cssselect("meta[name=robots]")[0].get("content")  # noqa: E731
    assert robots("help/cigna/cimt/prior-authorization/index.html") == "index,follow"
    assert robots("help/cigna/cimt/step-therapy/index.html") == "noindex,follow"
    locs = {e.text for e in ET.parse(out / "sitemap.xml").iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")}
    assert "https://denialhelp.com/help/cigna/cimt/prior-authorization/" in locs
    assert "https://denialhelp.com/help/cigna/cimt/step-therapy/" not in locs
    featured = [a.get("href") for a in parse(out / "help/cigna/index.html").cssselect("#featured + ul a")]
    assert featured == ["/help/cigna/cimt/prior-authorization/"]
    every = [a.get("href") for a in parse(out / "help/cigna/index.html").cssselect("article a")]
    assert "/help/cigna/cimt/step-therapy/" in every  # still linked, so never an orphan


def test_near_copy_of_a_hand_written_page_fails_check_naming_both(make_site):
    copy = page_md(prose(1) + " one small change")
    root = make_site(long_site(**{"content/cigna/humira/step-therapy.md": copy}))
    result = run_cli("check", "--site", str(root))
    assert result.exit_code == 1
    assert "content/cigna/humira/step-therapy.md:1: " in result.output
    assert "similar to content/cigna/cimt/prior-authorization.md" in result.output


def test_stricter_thresholds_in_site_yaml_apply(make_site):
    strict = {**SITE, "quality": {"similarity_max": 0.5, "distinctive_words_min": 300,
                                  "shared_block_share": 0.05, "distinctive_pages_max": 10}}
    data = load_site(make_site(long_site(**{"data/site.yaml": strict})))
    plan = plan_site(data)
    standing = assess(data, plan)
    assert not any(standing.is_indexable(i) for i in range(len(plan.pages)))


def test_bottom_k_estimate_tracks_true_jaccard():
    a, b = prose(7, 600).split(), prose(8, 600).split()
    mixed = " ".join(a[:400] + b[:200])
    sa, sb = shingle_hashes(" ".join(a)), shingle_hashes(mixed)
    true = len(set(sa.tolist()) & set(sb.tolist())) / len(set(sa.tolist()) | set(sb.tolist()))
    assert abs(estimate_jaccard(sketch(sa), sketch(sb)) - true) < 0.12
    assert estimate_jaccard(sketch(sa), sketch(sa)) == 1.0
    assert estimate_jaccard(sketch(sa), sketch(shingle_hashes(prose(9, 600)))) < 0.05


def test_sharded_builds_agree_on_indexability(make_site, tmp_path):
    root = make_site(long_site())
    for shard in ("1/2", "2/2"):
        assert run_cli("build", "--site", str(root), "--out", str(tmp_path / shard[0]), "--shard", shard).exit_code == 0
    assert (tmp_path / "1/sitemap.xml").read_bytes() == (tmp_path / "2/sitemap.xml").read_bytes()


def test_similarity_verdicts_match_exact_jaccard_on_the_bundled_site():
    """MinHash and banding only propose neighbours; whether each page of the bundled catalogue is
    under the similarity limit must agree with the exact Jaccard to its nearest page, all pairs tried."""
    data = load_site(REPO)
    plan = plan_site(data)
    standing = assess(data, plan)
    blocks = Blocks(data)
    parts = [[n for part in blocks.of(page) for n in part] for page in plan.pages]
    uses = Counter(n for numbers in parts for n in numbers)
    limits = data.site.thresholds
    shared_above = max(limits.shared_block_share * len(plan.pages), limits.distinctive_pages_max)
    pages_of: dict[frozenset[int], list[int]] = {}
    for index, numbers in enumerate(parts):
        pages_of.setdefault(frozenset(n for n in numbers if uses[n] <= shared_above), []).append(index)
    texts = list(pages_of)
    shingles = [set().union(*(set(blocks.shingles(n).tolist()) for n in own)) for own in texts]
    for number, own in enumerate(texts):
        if len(pages_of[own]) > 1:
            nearest = 1.0
        else:
            nearest = max((len(shingles[number] & other) / len(shingles[number] | other)
                           for i, other in enumerate(shingles) if i != number and other), default=0.0)
        for index in pages_of[own]:
            found = standing.verdict(index).similarity
            assert (found < limits.similarity_max) == (nearest < limits.similarity_max), (plan.pages[index].url, found, nearest)
    assert len(texts) > 500  # the catalogue really has that many distinct own texts to tell apart
