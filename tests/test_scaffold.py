"""`new`: a content file pre-filled from the data, that `check` accepts and the page shows as written."""

from __future__ import annotations

import yaml

from conftest import PROCEDURES, SITE, parse, procedure, run_cli, site_files

HEADINGS = ["## Why it was denied", "## Appeal route", "## Documents to gather", "## Criteria mapping"]


def front_and_body(text: str) -> tuple[dict, list[str]]:
    """Return a content file's front matter (parsed) and its body lines."""
    assert text.startswith("---\n")
    front, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(front), body.splitlines()


def test_new_writes_a_prefilled_file_that_passes_check_and_builds(make_site, tmp_path):
    root = make_site()
    result = run_cli("new", "cigna", "humira", "step-therapy", "--site", str(root))
    assert result.exit_code == 0, result.output
    file = root / "content/cigna/humira/step-therapy.md"
    assert result.output.splitlines() == [
        f"Wrote {file}",
        "Page: https://denialhelp.com/help/cigna/humira/step-therapy/",
        "Preview: run `python build.py serve`, then open http://127.0.0.1:8000/help/cigna/humira/step-therapy/",
        "Replace each TODO line with what you know; `python build.py check` says when the page is too close "
        "to another.",
    ]
    front, body = front_and_body(file.read_text(encoding="utf-8"))
    assert front["description"].startswith("Cigna denied Humira for failing step therapy?")
    assert front["reviewed"] == SITE["reviewed"] and front["reviewer"] == SITE["reviewer"]
    assert front["sources"] == [{"title": "Coverage policies", "url": "https://cigna.example.com/policies"}]
    assert [line for line in body if line.startswith("#")] == HEADINGS
    prompts = [line for line in body if line.startswith("*TODO")]
    assert len(prompts) == 4 and all(p.endswith("*") and "<" not in p for p in prompts)

    check = run_cli("check", "--site", str(root))
    assert check.exit_code == 0, check.output
    listed = run_cli("list", "--site", str(root)).output
    assert "/help/cigna/humira/step-therapy/\tcigna\thumira\tstep-therapy\texact\t" in listed

    out = tmp_path / "out"
    assert run_cli("build", "--site", str(root), "--out", str(out)).exit_code == 0
    angle = parse(out / "help/cigna/humira/step-therapy/index.html").get_element_by_id("angle")
    assert [h.text for h in angle.cssselect("h3")][:4] == [h[3:] for h in HEADINGS]
    documents = [li.text_content() for li in angle.cssselect("div.prose ol li")]
    assert documents == ["The denial notice", "Notes on Humira"]  # the denial type's, then the procedure's
    rows = [[td.text_content() for td in tr.cssselect("td")] for tr in angle.cssselect("div.prose tbody tr")]
    assert rows == [["A confirmed diagnosis for Humira", "Clinic notes", "TODO"],
                    ["Earlier care tried before Humira", "Therapy notes", "TODO"]]
    heads = [th.text_content() for th in angle.cssselect("div.prose table thead th")]
    assert heads == ["What the reviewer looks for", "What shows it", "Where to find it"]


def test_the_same_data_scaffolds_the_same_bytes(make_site):
    root = make_site()
    assert run_cli("new", "humana", "cimt", "prior-authorization", "--site", str(root)).exit_code == 0
    file = root / "content/humana/cimt/prior-authorization.md"
    first = file.read_bytes()
    again = run_cli("new", "humana", "cimt", "prior-authorization", "--site", str(root), "--force")
    assert again.exit_code == 0
    assert file.read_bytes() == first


def test_unknown_slugs_fail_with_the_nearest_match_and_write_nothing(make_site):
    root = make_site()
    before = sorted(p for p in (root / "content").rglob("*"))
    result = run_cli("new", "cigan", "humria", "step-therapy", "--site", str(root))
    assert result.exit_code == 1
    assert "data/payers.yaml: no payer 'cigan'; did you mean 'cigna'?" in result.output
    assert "data/procedures.yaml: no procedure 'humria'; did you mean 'humira'?" in result.output
    assert "Traceback" not in result.output
    assert sorted(p for p in (root / "content").rglob("*")) == before


def test_an_existing_file_is_kept_unless_forced(make_site):
    root = make_site()
    file = root / "content/cigna/cimt/prior-authorization.md"
    hand_written = file.read_bytes()
    result = run_cli("new", "cigna", "cimt", "prior-authorization", "--site", str(root))
    assert result.exit_code == 1
    assert "content/cigna/cimt/prior-authorization.md already exists; pass --force" in result.output
    assert file.read_bytes() == hand_written
    forced = run_cli("new", "cigna", "cimt", "prior-authorization", "--site", str(root), "--force")
    assert forced.exit_code == 0
    assert file.read_bytes() != hand_written


def test_an_excluded_combination_is_refused(make_site):
    root = make_site()
    result = run_cli("new", "cigna", "tumor-genomic-profiling", "step-therapy", "--site", str(root))
    assert result.exit_code == 1
    assert "denial type 'step-therapy' exclude: test excludes it" in result.output
    assert not (root / "content/cigna/tumor-genomic-profiling").exists()


def test_markdown_and_html_in_data_stay_text(make_site, tmp_path):
    tricky = "Pain > 6 | for *weeks* <b>bold</b> [x](javascript:alert(1)) _y_ `z` # h"
    odd = procedure("odd", "Odd_name *star*", "surgery", documents=[tricky],
                    criteria=[{"criterion": tricky, "evidence": "a | b"}])
    root = make_site(site_files(**{"data/procedures.yaml": [*PROCEDURES, odd]}))
    assert run_cli("new", "cigna", "odd", "prior-authorization", "--site", str(root)).exit_code == 0
    check = run_cli("check", "--site", str(root))
    assert check.exit_code == 0, check.output
    out = tmp_path / "out"
    assert run_cli("build", "--site", str(root), "--out", str(out)).exit_code == 0
    angle = parse(out / "help/cigna/odd/prior-authorization/index.html").get_element_by_id("angle")
    assert [li.text_content() for li in angle.cssselect("div.prose ol li")][1] == tricky
    assert [td.text_content() for td in angle.cssselect("div.prose td")][:3] == [tricky, "a | b", "TODO"]
    assert not angle.cssselect("div.prose b, div.prose code, div.prose a, div.prose h1")
    prompts = [em.text_content() for em in angle.cssselect("div.prose em")]
    assert len(prompts) == 4 and all(p.startswith("TODO: ") for p in prompts)
    assert "Odd_name *star*" in prompts[0]


def test_a_slashless_site_prints_its_slashless_url(make_site):
    slashless = {**SITE, "url_pattern": "/help/{payer}/{procedure}/{denial_type}"}
    root = make_site(site_files(**{"data/site.yaml": slashless}))
    result = run_cli("new", "humana", "humira", "non-formulary", "--site", str(root))
    assert result.exit_code == 0, result.output
    assert "Page: https://denialhelp.com/help/humana/humira/non-formulary\n" in result.output
    assert run_cli("check", "--site", str(root)).exit_code == 0
