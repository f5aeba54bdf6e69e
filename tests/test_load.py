"""Stage 1: every bad input is reported at its file and line, all problems in one run."""

from __future__ import annotations

import re

import pytest

from conftest import DENIALS, PAYERS, PROCEDURES, SITE, denial, payer, procedure, run_cli, site_files
from denialpages.errors import InputError
from denialpages.load import load_site


def problems_of(root) -> list[str]:
    with pytest.raises(InputError) as raised:
        load_site(root)
    return [str(p) for p in raised.value.problems]


def test_valid_site_loads_every_record(make_site):
    data = load_site(make_site())
    assert [p.slug for p in data.payers] == ["cigna", "humana"]
    assert data.procedures[1].name == "CIMT"
    assert ("exact", "cigna", "cimt", "prior-authorization") in data.content


def test_yaml_that_does_not_parse_names_file_and_line(make_site):
    root = make_site(site_files(**{"data/payers.yaml": "- slug: cigna\n  name: [unclosed\n"}))
    found = problems_of(root)
    assert any(re.match(r"data/payers\.yaml:\d+: not valid YAML", p) for p in found), found


def test_missing_field_wrong_type_and_unknown_field_all_reported(make_site):
    bad = [dict(PAYERS[0]), dict(PAYERS[1])]
    del bad[0]["about"]
    bad[1]["plan_types"] = "medicaid"
    bad[1]["plan_type"] = ["medicaid"]
    found = problems_of(make_site(site_files(**{"data/payers.yaml": bad})))
    assert "data/payers.yaml:1: payer 'cigna': the required field 'about' is missing" in found
    assert any("payer 'humana': plan_types: must be a list, not text" in p for p in found)
    assert any("plan_type: is not a known field; did you mean 'plan_types'?" in p for p in found)
    lines = [int(p.split(":")[1]) for p in found]
    assert lines == sorted(lines)


def test_null_and_empty_values_are_refused(make_site):
    bad = [payer("cigna", "Cigna", [], about=None)]
    found = problems_of(make_site(site_files(**{"data/payers.yaml": bad})))
    assert any("about: must not be empty" in p for p in found)
    assert any("plan_types: must not be an empty list" in p for p in found)


def test_empty_list_file_is_an_error(make_site):
    found = problems_of(make_site(site_files(**{"data/procedures.yaml": []})))
    assert any(p.startswith("data/procedures.yaml:1: must be a non-empty list") for p in found)


def test_duplicate_slugs_name_every_record(make_site):
    twice = [*PROCEDURES, procedure("cimt", "CIMT again", "therapy")]
    found = problems_of(make_site(site_files(**{"data/procedures.yaml": twice})))
    dupes = [p for p in found if "procedure slug 'cimt' is used 2 times" in p]
    assert len(dupes) == 2


@pytest.mark.parametrize("slug", ["Cigna", "../etc", "a_b", "a--b", "-a"])
def test_slugs_outside_the_pattern_are_refused(make_site, slug):
    found = problems_of(make_site(site_files(**{"data/payers.yaml": [payer(slug, "X", ["employer"])]})))
    assert any("must use only a-z, 0-9 and single hyphens" in p for p in found), found


def test_unknown_plan_type_names_the_allowed_ones(make_site):
    found = problems_of(make_site(site_files(**{"data/payers.yaml": [payer("x", "X", ["hmo"])]})))
    assert any("plan_types: 'hmo' is not one of employer, marketplace, medicare-advantage, medicaid" in p
               for p in found)


def test_rule_naming_a_missing_procedure_is_an_error(make_site):
    denials = [*DENIALS[:2], denial("non-formulary", "N", "n", only={"procedures": ["humria"]})]
    found = problems_of(make_site(site_files(**{"data/denial_types.yaml": denials})))
    assert any("only: no procedure 'humria'" in p for p in found)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("base_url", "http://denialhelp.com", "must be an absolute https:// address"),
        ("checkout_url", "javascript:alert(1)", "must be an absolute https:// address"),
        ("promo_code", "SEO 25&x", "may use only letters, digits"),
        ("price", {"list": -1, "first_letter": 30, "currency": "USD"}, "list: must be at least 0"),
        ("price", {"list": "forty", "first_letter": 30, "currency": "USD"}, "list: must be a number, not text"),
        ("url_pattern", "/help/{payer}/{procedure}/", "must start with '/' and hold"),
    ],
)
def test_site_settings_that_would_publish_something_wrong(make_site, field, value, message):
    found = problems_of(make_site(site_files(**{"data/site.yaml": {**SITE, field: value}})))
    assert any(p.startswith("data/site.yaml:") and message in p for p in found), found


def test_object_constructing_tags_are_refused(make_site):
    evil = "- slug: x\n  name: !!python/object/apply:os.system ['true']\n"
    found = problems_of(make_site(site_files(**{"data/payers.yaml": evil})))
    assert any(p.startswith("data/payers.yaml:2:") and "tag" in p for p in found), found


def test_alias_bomb_is_bounded_and_names_the_file(make_site):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in range(1, 9):
        prev = chr(ord("a") + level - 1)
        name = chr(ord("a") + level)
        bomb += f"{name}: &{name} [{', '.join(['*' + prev] * 10)}]\n"
    found = problems_of(make_site(site_files(**{"data/site.yaml": bomb})))
    assert any(p.startswith("data/site.yaml:") and "after expanding aliases" in p for p in found), found


def test_content_problems_are_reported_with_lines(make_site):
    files = site_files(**{
        "content/cigna/cimtt/prior-authorization.md": "## Why it was denied\nx\n",
        "content/cigna/cimt/step-therapy.md": "---\ndescription: x\nsummary: y\n---\n## Why it was denied\n<b>x</b>\n",
        "content/humana/humira/step-therapy.md": b"## Why \xff\n",
        "content/_denial/step-therapy.md": "## Why it was denied\n[x](javascript:alert(1))\n## Appeal route\n"
                                          "## Documents to gather\n## Criteria mapping\n",
    })
    found = problems_of(make_site(files))
    assert any("content/cigna/cimtt/prior-authorization.md: no procedure 'cimtt'" in p
               and "did you mean 'cimt'" in p for p in found), found
    assert "content/cigna/cimt/step-therapy.md:3: front matter: summary: is not a known field; did you mean 'sources'?" in found or any(
        p.startswith("content/cigna/cimt/step-therapy.md:3: front matter: summary: is not a known field") for p in found)
    assert "content/cigna/cimt/step-therapy.md:6: raw HTML is not allowed in content; use Markdown" in found
    assert "content/humana/humira/step-therapy.md:1: not UTF-8 text; save the file as UTF-8" in found
    assert any("javascript:alert(1)" in p and "is not allowed" in p for p in found), found


def test_content_front_matter_that_does_not_parse(make_site):
    files = site_files(**{"content/cigna/cimt/step-therapy.md": "---\ndescription: [x\n---\n## Why it was denied\n"})
    found = problems_of(make_site(files))
    assert any(p.startswith("content/cigna/cimt/step-therapy.md:") and "not valid YAML" in p for p in found)


def test_content_read_by_several_processes_gives_the_same_site_and_the_same_problems(make_site, tmp_path, monkeypatch):
    import denialpages.content

    from conftest import snapshot  # noqa: PLC0415
    from test_standing import page_md, prose  # noqa: PLC0415

    monkeypatch.setattr(denialpages.content, "PARALLEL_FROM", 2)
    files = site_files(**{
        "content/humana/humira/step-therapy.md": page_md(prose(11)),
        "content/_procedure/cimt/step-therapy.md": page_md(prose(12)),
        "content/_denial/prior-authorization.md": page_md(prose(13)),
    })
    root = make_site(files)
    outputs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        result = run_cli("build", "--site", str(root), "--out", str(out), "--jobs", jobs)
        assert result.exit_code == 0, result.output
        outputs.append(snapshot(out))
    assert outputs[0] == outputs[1]
    (root / "content/_procedure/cimt/step-therapy.md").write_text(page_md(prose(12)) + "\n<div>raw</div>\n")
    (root / "content/humana/humira/step-therapy.md").write_text(page_md(prose(11)).replace("## Appeal route", "## Appeal"))
    reports = [run_cli("check", "--site", str(root), "--jobs", jobs).output for jobs in ("1", "2")]
    assert reports[0] == reports[1]
    assert "content/_procedure/cimt/step-therapy.md:" in reports[1]
    assert "content/humana/humira/step-therapy.md:" in reports[1]


@pytest.mark.parametrize("key", ["short12", "has space in-it", "under_score_key", "k" * 129, "ключключключ"])
def test_a_bad_indexnow_key_stops_the_build_at_its_line(make_site, tmp_path, key):
    root = make_site(site_files(**{"data/site.yaml": {**SITE, "indexnow_key": key}}))
    line = next(n for n, text in enumerate((root / "data/site.yaml").read_text().splitlines(), 1)
                if text.startswith("indexnow_key:"))
    result = run_cli("build", "--site", str(root), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert f"data/site.yaml:{line}: site.yaml: indexnow_key: '" in result.output
    assert "must be 8 to 128 characters, each a letter, a digit or '-'" in result.output
    assert not (tmp_path / "out").exists()


def test_an_indexnow_key_of_8_to_128_letters_digits_and_hyphens_loads(make_site):
    for key in ("abcd1234", "A-" * 64, 12345678):
        data = load_site(make_site(site_files(**{"data/site.yaml": {**SITE, "indexnow_key": key}}), name=f"k{key}"[:20]))
        assert data.site.indexnow_key == str(key)
    assert load_site(make_site(name="nokey")).site.indexnow_key == ""
