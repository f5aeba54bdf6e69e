"""Issue 5, bad input end to end: each kind through the command line, out/ untouched, no traceback.

test_load.py checks the wording of most of these problems at the loader; here every kind goes
through `build` onto a folder that already holds a good site, and the whole contract is asserted:
exit code, a `path:line:` message (just `path:` where the problem is the whole file), no
traceback, and the previous out/ byte for byte.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import (
    DENIALS,
    PAYERS,
    PROCEDURES,
    SITE,
    denial,
    parse,
    payer,
    procedure,
    run_cli,
    site_files,
    snapshot,
)

WHOLE_PAGE = (
    "## Why it was denied\na\n## Appeal route\nb\n## Documents to gather\n1. c\n## Criteria mapping\nd\n"
)


def bomb(levels: int = 9) -> str:
    """Return a "billion laughs" YAML document: 10**levels values once aliases are expanded."""
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in range(1, levels):
        prev, name = chr(ord("a") + level - 1), chr(ord("a") + level)
        text += f"{name}: &{name} [{', '.join(['*' + prev] * 10)}]\n"
    return text


def without(record: dict[str, object], key: str) -> dict[str, object]:
    """Return a copy of `record` lacking `key`."""
    return {k: v for k, v in record.items() if k != key}


# (case, files that replace the small site's, a regex one output line must match)
BAD_INPUTS = [
    (
        "yaml-does-not-parse",
        {"data/payers.yaml": "- slug: cigna\n  name: [unclosed\n"},
        r"data/payers\.yaml:\d+: not valid YAML",
    ),
    (
        "missing-required-field",
        {"data/payers.yaml": [without(PAYERS[0], "about"), PAYERS[1]]},
        r"data/payers\.yaml:1: payer 'cigna': the required field 'about' is missing",
    ),
    (
        "wrong-type",
        {"data/payers.yaml": [PAYERS[0], {**PAYERS[1], "plan_types": "medicaid"}]},
        r"data/payers\.yaml:\d+: payer 'humana': plan_types: must be a list, not text",
    ),
    (
        "null-field",
        {"data/procedures.yaml": [{**PROCEDURES[0], "summary": None}, *PROCEDURES[1:]]},
        r"data/procedures\.yaml:\d+: procedure 'lumbar-spinal-fusion': summary: must not be empty",
    ),
    (
        "unknown-field-names-nearest",
        {"data/denial_types.yaml": [{**DENIALS[0], "phrse": "x"}, *DENIALS[1:]]},
        r"data/denial_types\.yaml:\d+: denial type 'prior-authorization': phrse: is not a known field; "
        r"did you mean 'phrase'\?",
    ),
    ("empty-list-file", {"data/procedures.yaml": []}, r"data/procedures\.yaml:1: must be a non-empty list"),
    (
        "empty-list-field",
        {"data/procedures.yaml": [{**PROCEDURES[0], "documents": []}, *PROCEDURES[1:]]},
        r"data/procedures\.yaml:\d+: procedure 'lumbar-spinal-fusion': documents: must not be an empty list",
    ),
    (
        "duplicate-slug",
        {"data/procedures.yaml": [*PROCEDURES, procedure("cimt", "CIMT again", "therapy")]},
        r"data/procedures\.yaml:\d+: procedure slug 'cimt' is used 2 times \(data/procedures\.yaml:\d+, "
        r"data/procedures\.yaml:\d+\)",
    ),
    (
        "previous-slug-is-another-records-url",
        {"data/payers.yaml": [{**PAYERS[0], "previous_slugs": ["humana"]}, PAYERS[1]]},
        r"data/payers\.yaml:\d+: payer slug 'humana' is used 2 times "
        r"\(data/payers\.yaml:1, data/payers\.yaml:\d+\)",
    ),
    (
        "slug-not-in-pattern",
        {"data/payers.yaml": [payer("Cigna", "Cigna", ["employer"])]},
        r"data/payers\.yaml:\d+: payer 'Cigna': slug: 'Cigna' must use only a-z",
    ),
    (
        "slug-leaves-out",
        {"data/denial_types.yaml": [denial("../../../etc", "X", "x")]},
        r"data/denial_types\.yaml:\d+: denial type '\.\./\.\./\.\./etc': slug: .* must use only a-z",
    ),
    (
        "duplicate-key",
        {"data/payers.yaml": "- slug: cigna\n  name: Cigna\n  name: Aetna\n"},
        r"data/payers\.yaml:3: the key 'name' appears twice",
    ),
    (
        "object-tag",
        {"data/procedures.yaml": "- slug: x\n  name: !!python/object/apply:os.system ['true']\n"},
        r"data/procedures\.yaml:2: the tag .* is not allowed",
    ),
    (
        "alias-bomb",
        {"data/denial_types.yaml": bomb()},
        r"data/denial_types\.yaml:\d+: .*after expanding aliases",
    ),
    (
        "merge-key",
        {"data/payers.yaml": "- &c {slug: cigna}\n- <<: *c\n  name: X\n"},
        r"data/payers\.yaml:2: merge keys",
    ),
    (
        "nested-too-deeply",
        {"data/payers.yaml": "- " + "[" * 2000 + "]" * 2000 + "\n"},
        r"data/payers\.yaml:1: .*nested too deeply",
    ),
    (
        "file-too-large",
        {"data/procedures.yaml": "# " + "x" * (9 * 2**20) + "\n"},
        r"data/procedures\.yaml: larger than 8 MB",
    ),
    (
        "base-url-http",
        {"data/site.yaml": {**SITE, "base_url": "http://denialhelp.com"}},
        r"data/site\.yaml:\d+: .*base_url: .*must be an absolute https:// address",
    ),
    (
        "base-url-relative",
        {"data/site.yaml": {**SITE, "base_url": "www.denialhelp.com"}},
        r"data/site\.yaml:\d+: .*base_url: .*must be an absolute https:// address",
    ),
    (
        "checkout-javascript",
        {"data/site.yaml": {**SITE, "checkout_url": "javascript:alert(document.cookie)"}},
        r"data/site\.yaml:\d+: .*checkout_url: .*must be an absolute https:// address",
    ),
    (
        "checkout-data-url",
        {"data/site.yaml": {**SITE, "checkout_url": "data:text/html,<script>alert(1)</script>"}},
        r"data/site\.yaml:\d+: .*checkout_url: .*must be an absolute https:// address",
    ),
    (
        "price-negative",
        {"data/site.yaml": {**SITE, "price": {"list": 40, "first_letter": -5, "currency": "USD"}}},
        r"data/site\.yaml:\d+: .*first_letter: must be at least 0",
    ),
    (
        "price-not-a-number",
        {
            "data/site.yaml": "name: D\nbase_url: https://d.com\ncheckout_url: https://d.com/c\n"
            "price: {list: .nan, first_letter: 30, currency: USD}\n"
            "promo_code: SEO25\nreviewed: 2026-01-01\nreviewer: R\n"
        },
        r"data/site\.yaml:4: .*list: must be a number",
    ),
    (
        "promo-with-ampersand",
        {"data/site.yaml": {**SITE, "promo_code": "SEO25&payer=evil"}},
        r"data/site\.yaml:\d+: .*promo_code: .*may use only letters, digits",
    ),
    (
        "promo-non-ascii",
        {"data/site.yaml": {**SITE, "promo_code": "SEÖ25"}},
        r"data/site\.yaml:\d+: .*promo_code: .*may use only letters, digits",
    ),
    (
        "content-not-utf8",
        {"content/cigna/cimt/step-therapy.md": b"## Why it was denied\nCaf\xe9\n"},
        r"content/cigna/cimt/step-therapy\.md:2: not UTF-8",
    ),
    (
        "front-matter-does-not-parse",
        {"content/cigna/cimt/step-therapy.md": "---\ndescription: [x\n---\n" + WHOLE_PAGE},
        r"content/cigna/cimt/step-therapy\.md:\d+: .*not valid YAML",
    ),
    (
        "front-matter-unknown-key",
        {"content/cigna/cimt/step-therapy.md": "---\ndescripton: x\n---\n" + WHOLE_PAGE},
        r"content/cigna/cimt/step-therapy\.md:2: front matter: descripton: is not a known field; "
        r"did you mean 'description'\?",
    ),
    (
        "content-names-missing-payer",
        {"content/cigan/cimt/step-therapy.md": WHOLE_PAGE},
        r"content/cigan/cimt/step-therapy\.md: no payer 'cigan'.*did you mean 'cigna'",
    ),
    (
        "content-names-missing-denial-type",
        {"content/_denial/step-therapie.md": WHOLE_PAGE},
        r"content/_denial/step-therapie\.md: no denial type 'step-therapie'.*did you mean 'step-therapy'",
    ),
    (
        "content-raw-html",
        {"content/_procedure/cimt/step-therapy.md": WHOLE_PAGE + "<script>alert(1)</script>\n"},
        r"content/_procedure/cimt/step-therapy\.md:9: raw HTML is not allowed",
    ),
    (
        "content-javascript-link",
        {"content/_denial/step-therapy.md": WHOLE_PAGE.replace("b\n", "[b](javascript:x)\n")},
        r"content/_denial/step-therapy\.md:\d+: .*javascript:x.*is not allowed",
    ),
]


@pytest.fixture
def published(make_site, tmp_path):
    """Return (out, its snapshot): the small site already built, as CI last published it."""
    out = tmp_path / "pub" / "out"
    result = run_cli("build", "--site", str(make_site(name="good")), "--out", str(out))
    assert result.exit_code == 0, result.output
    return out, snapshot(out)


def assert_refused(result, before, out, pattern: str, code: int = 1) -> None:
    """Assert the build failed cleanly: the exit code, a matching line, no traceback, out/ untouched."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert any(re.match(pattern, line) for line in result.output.splitlines()), result.output
    assert snapshot(out) == before
    assert [
        p.name for p in out.parent.iterdir() if p.is_dir() and p.name not in ("out", "out-report")
    ] == []  # no temporary folder (the marketer's report lives beside out/ on purpose)


@pytest.mark.parametrize(
    ("files", "pattern"), [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS]
)
def test_bad_input_is_refused_at_its_line_and_out_is_untouched(make_site, published, files, pattern):
    out, before = published
    root = make_site(site_files(**files), name="bad")
    result = run_cli("build", "--site", str(root), "--out", str(out))
    assert_refused(result, before, out, pattern)


def test_every_problem_of_every_file_in_one_run(make_site, published):
    out, before = published
    files = {name: files for case in BAD_INPUTS[:3] for name, files in case[1].items()}
    files["data/site.yaml"] = {**SITE, "checkout_url": "javascript:alert(1)"}
    files["content/cigan/cimt/step-therapy.md"] = WHOLE_PAGE
    result = run_cli("build", "--site", str(make_site(site_files(**files), name="bad")), "--out", str(out))
    assert_refused(result, before, out, r"data/site\.yaml:\d+: .*checkout_url")
    where = [
        line.split(": ", 1)[0] for line in result.output.splitlines() if re.match(r"(data|content)/", line)
    ]
    assert {w.split(":")[0] for w in where} == {
        "content/cigan/cimt/step-therapy.md",
        "data/payers.yaml",
        "data/site.yaml",
    }
    keys = [(w.split(":")[0], int(w.split(":")[1]) if ":" in w else 0) for w in where]
    assert keys == sorted(keys)


COLLISIONS = {
    # "a" + "b-c" and "a-b" + "c" both spell /help/a-b-c/prior-authorization/
    "two-pages-one-url": (
        "/help/{payer}-{procedure}/{denial_type}/",
        ["a", "a-b"],
        ["b-c", "c"],
        "/help/a-b-c/prior-authorization/",
    ),
    # "in" + "de" + "x" is /index, whose file is the home page's index.html
    "page-over-the-home-page": ("/{payer}{procedure}{denial_type}", ["in"], ["de"], "/index"),
}


@pytest.mark.parametrize("command", ["check", "build"])
@pytest.mark.parametrize("case", COLLISIONS, ids=list(COLLISIONS))
def test_two_records_making_one_url_are_refused_with_every_origin(make_site, published, case, command):
    out, before = published
    pattern, payers, procedures, url = COLLISIONS[case]
    files = site_files(
        **{
            "data/site.yaml": {**SITE, "url_pattern": pattern},
            "data/payers.yaml": [payer(slug, slug.upper(), ["employer"]) for slug in payers],
            "data/procedures.yaml": [procedure(slug, slug.upper(), "surgery") for slug in procedures],
            "data/denial_types.yaml": [denial("prior-authorization", "P", "p"), denial("x", "X", "x")],
        }
    )
    del files["content/cigna/cimt/prior-authorization.md"]  # it names records this site does not have
    args = ["--out", str(out)] if command == "build" else []
    result = run_cli(command, "--site", str(make_site(files, name="bad")), *args)
    assert_refused(result, before, out, rf"data/(payers|procedures|site)\.yaml:\d+: .*{re.escape(url)}")
    clashing = [
        line for line in result.output.splitlines() if url in line and re.match(r"data/.*:\d+: ", line)
    ]
    assert len(clashing) >= 2, result.output  # every record that makes the URL is named, at its line


UNICODE = {
    "payer": "Société Générale Santé",  # accents, precomposed
    "procedure": "Reche\u0301rche 脊椎固定術 операция",  # a combining accent, CJK, Cyrillic
    "denial": "تأمين 🙅‍♀️ refusal",  # right-to-left script, an emoji ZWJ sequence
}


def test_unicode_names_build_and_display_exactly_as_written(make_site, tmp_path):
    files = site_files(
        **{
            "data/payers.yaml": [payer("sg", UNICODE["payer"], ["employer"])],
            "data/procedures.yaml": [procedure("rx", UNICODE["procedure"], "surgery")],
            "data/denial_types.yaml": [denial("dn", UNICODE["denial"], UNICODE["denial"])],
            "data/site.yaml": {**SITE, "name": "DenialHelp ✓ Ünïcode"},
        }
    )
    del files["content/cigna/cimt/prior-authorization.md"]
    out = tmp_path / "out"
    result = run_cli("build", "--site", str(make_site(files)), "--out", str(out))
    assert result.exit_code == 0, result.output
    doc = parse(out / "help/sg/rx/dn/index.html")
    assert (
        doc.findtext(".//h1")
        == f"{UNICODE['procedure']} denied for {UNICODE['denial']} by {UNICODE['payer']}?"
    )
    for name in UNICODE.values():  # byte for byte: no case change, no normalisation, no entity soup
        assert name in doc.findtext(".//title")
        assert name in doc.cssselect("meta[property='og:title']")[0].get("content")
        assert name.encode() in (out / "help/sg/rx/dn/index.html").read_bytes()
    assert "DenialHelp ✓ Ünïcode" in doc.findtext(".//title") or "DenialHelp ✓ Ünïcode" in doc.text_content()
    graph = json.loads(doc.cssselect("script[type='application/ld+json']")[0].text)["@graph"]
    assert UNICODE["payer"] in [item["name"] for item in graph[-1]["itemListElement"]]
    hub = parse(out / "help/sg/index.html")
    assert UNICODE["payer"] in hub.findtext(".//h1")
    assert UNICODE["procedure"] in hub.text_content()


@pytest.mark.parametrize(
    "flags",
    [
        ["--jobs", "0"],
        ["--jobs", "-1"],
        ["--jobs", "x"],
        ["--shard", "5/3"],
        ["--shard", "0/3"],
        ["--shard", "x"],
        ["--shard", "1/0"],
        ["--shard", "3"],
    ],
    ids=" ".join,
)
def test_jobs_and_shard_out_of_range_are_usage_errors(make_site, published, flags):
    out, before = published
    result = run_cli("build", "--site", str(make_site(name="good2")), "--out", str(out), *flags)
    assert result.exit_code == 2, result.output
    assert "No such option" not in result.output  # the flag exists; its value is what is refused
    assert flags[0] in result.output and "Traceback" not in result.output
    assert snapshot(out) == before


@pytest.mark.parametrize("where", ["parent-is-a-file", "ancestor-of-site"])
def test_out_that_cannot_be_a_folder_of_its_own_is_a_usage_error(make_site, tmp_path, where):
    root = make_site()
    (tmp_path / "notes.txt").write_text("a file")
    target = tmp_path / "notes.txt" / "out" if where == "parent-is-a-file" else tmp_path
    before = snapshot(tmp_path)
    result = run_cli("build", "--site", str(root), "--out", str(target))
    assert result.exit_code == 2, result.output
    assert "--out" in result.output and "Traceback" not in result.output
    assert snapshot(tmp_path) == before
