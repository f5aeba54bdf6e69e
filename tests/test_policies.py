"""Payer x procedure policy records (data/policies/*.yaml): loaded, checked, shown, counted."""

from __future__ import annotations

import datetime as dt

from conftest import parse, run_cli, site_files
from test_standing import page_md, prose

from denialpages.load import load_site
from denialpages.plan import plan_site
from denialpages.standing import assess


def policy(payer: str = "cigna", procedure: str = "cimt", **extra: object) -> dict[str, object]:
    record: dict[str, object] = {
        "payer": payer,
        "procedure": procedure,
        "policy": "Constraint-Induced Movement Therapy",
        "number": "0999",
        "publisher": "Cigna",
        "url": "https://cigna.example.com/policies/cimt",
        "checked": dt.date(2026, 11, 25),
        "plan_types": ["employer"],
        "summary": prose(7),
        "sources": [{"title": "Cigna CIMT policy", "url": "https://cigna.example.com/policies/cimt"}],
    }
    record.update(extra)
    return record


def test_a_policy_shows_on_every_page_of_its_payer_and_procedure_and_nowhere_else(make_site, tmp_path):
    out = tmp_path / "out"
    root = make_site(site_files(**{"data/policies/cimt.yaml": [policy()]}))
    result = run_cli("build", "--site", str(root), "--out", str(out))
    assert result.exit_code == 0, result.output
    for denial in ("prior-authorization", "step-therapy"):
        page = parse(out / f"help/cigna/cimt/{denial}/index.html")
        heading = page.cssselect("#requires h3")[0].text_content()
        assert heading == "Cigna's policy: Constraint-Induced Movement Therapy (0999)"
        link = page.cssselect("#requires .policy-link a")[0]
        assert link.get("href") == "https://cigna.example.com/policies/cimt"
        assert "It applies to Cigna's Employer plan (ERISA) coverage." in page.cssselect("#requires .policy-link")[0].text_content()
        assert page.cssselect("#requires .policy-link time")[0].get("datetime") == "2026-11-25"
        trust = [a.get("href") for a in page.cssselect("#trust .sources a")]
        assert "https://cigna.example.com/policies/cimt" in trust
    other = parse(out / "help/humana/cimt/step-therapy/index.html")
    assert other.cssselect("#requires h3") == []
    assert other.cssselect("#requires .policy-link") == []


def test_a_policy_is_distinctive_text_for_its_pages(make_site):
    without = load_site(make_site(site_files(), name="without"))
    with_policy = load_site(make_site(site_files(**{"data/policies/cimt.yaml": [policy()]}), name="with"))
    for data, expected in ((without, 0), (with_policy, 220)):
        plan = plan_site(data)
        standing = assess(data, plan)
        index = next(i for i, p in enumerate(plan.pages) if p.key == ("cigna", "cimt", "step-therapy"))
        assert standing.verdict(index).distinctive_words >= expected
        if expected == 0:
            assert standing.verdict(index).distinctive_words < 150


def test_policy_mistakes_are_reported_with_file_and_line_all_at_once(make_site):
    records = [
        policy(),
        policy(payer="aetna"),
        policy(procedure="knee"),
        policy(payer="humana", plan_types=["employer"]),
        policy(url="http://cigna.example.com/x", procedure="humira"),
        policy(),
    ]
    root = make_site(site_files(**{"data/policies/cimt.yaml": records}))
    result = run_cli("check", "--site", str(root))
    assert result.exit_code == 1
    lines = result.output.splitlines()

    def reported(fragment: str) -> str:
        found = [line for line in lines if fragment in line]
        assert found, f"{fragment!r} not in {result.output}"
        return found[0]

    assert reported("no payer 'aetna'").startswith("data/policies/cimt.yaml:")
    assert reported("no procedure 'knee'").startswith("data/policies/cimt.yaml:")
    assert "plan type 'employer' is not one Humana sells" in reported("Humana sells")
    assert reported("url").startswith("data/policies/cimt.yaml:")
    duplicate = reported("is already described at")
    assert duplicate.startswith("data/policies/cimt.yaml:")
    assert duplicate.split("described at ", 1)[1] == "data/policies/cimt.yaml:1"


def test_a_policy_edit_rewrites_only_the_pages_of_its_payer_and_procedure(make_site, tmp_path):
    import yaml

    out = tmp_path / "out"
    root = make_site(site_files(**{"data/policies/cimt.yaml": [policy()],
                                    "content/humana/humira/step-therapy.md": page_md(prose(2))}))
    assert run_cli("build", "--site", str(root), "--out", str(out)).exit_code == 0
    before = ledger_hashes(root)
    (root / "data/policies/cimt.yaml").write_text(yaml.safe_dump([policy(summary=prose(8))]))
    assert run_cli("build", "--site", str(root), "--out", str(out)).exit_code == 0
    changed = {line.split("\t")[1] for line in (tmp_path / "out-changes.txt").read_text().splitlines()
               if line.startswith("changed")}
    assert changed == {"/help/cigna/cimt/prior-authorization/", "/help/cigna/cimt/step-therapy/"}
    after = ledger_hashes(root)
    assert {url for url in after if after[url] != before[url]} == changed  # their lastmod moves, no other


def ledger_hashes(root) -> dict[str, str]:
    """Return each landing page's content hash in the site's URL ledger."""
    rows = [line.split("\t") for line in (root / "ledger/urls.tsv").read_text().splitlines()[1:]]
    return {row[0]: row[2] for row in rows if row[0].startswith("/help/")}


def test_each_paragraph_of_a_summary_is_its_own_paragraph_on_the_page(make_site, tmp_path):
    out = tmp_path / "out"
    first, second = prose(3).split(), " ".join(prose(4).split())
    folded = "\n".join(["- " + line for line in ["payer: cigna"]] + [f"  {k}: {v}" for k, v in {
        "procedure": "cimt", "policy": "Constraint-Induced Movement Therapy", "publisher": "Cigna",
        "url": "https://cigna.example.com/policies/cimt", "checked": "2026-11-25"}.items()]
        + ["  summary: >-", "    " + " ".join(first[:20]), "    " + " ".join(first[20:]), "", f"    {second}",
           "  sources:", '    - {title: "Cigna CIMT policy", url: "https://cigna.example.com/policies/cimt"}']) + "\n"
    root = make_site(site_files(**{"data/policies/cimt.yaml": folded}))
    result = run_cli("build", "--site", str(root), "--out", str(out))
    assert result.exit_code == 0, result.output
    page = parse(out / "help/cigna/cimt/step-therapy/index.html")
    shown = [p.text_content() for p in page.cssselect("#requires h3 ~ p:not(.policy-link)")][:2]
    assert shown == [" ".join(first), second]
