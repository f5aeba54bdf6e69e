"""The command line: exit codes, summaries, check writes nothing, list prints the plan."""

from __future__ import annotations

import re

import pytest

from conftest import run_cli, site_files


def test_build_prints_counts_exclusions_and_time(make_site, tmp_path):
    result = run_cli("build", "--site", str(make_site()), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    first = next(line for line in result.output.splitlines() if line.startswith("Built"))
    assert first.startswith(
        "Built 16 pages (16 noindex) and 10 hubs (1 exact, 0 procedure, 0 denial, 15 data; 8 combinations excluded by 2 rules; "
        "wrote 32 files) in "
    )
    assert "  excluded 6: denial type 'non-formulary' only: drug" in result.output


def test_check_validates_and_writes_nothing(make_site, tmp_path):
    root = make_site()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = run_cli("check", "--site", str(root))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Checked 16 pages")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_check_fails_with_every_problem_sorted(make_site):
    files = site_files(**{"data/payers.yaml": [{"slug": "Bad Slug"}], "data/procedures.yaml": "- [\n"})
    result = run_cli("check", "--site", str(make_site(files)))
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("data/")]
    assert lines == sorted(lines, key=lambda line: (line.split(":")[0], int(line.split(":")[1])))
    assert any(line.startswith("data/payers.yaml:1: payer 'Bad Slug'") for line in lines)
    assert any(line.startswith("data/procedures.yaml:") for line in lines)
    assert "Traceback" not in result.output


def test_list_prints_one_line_per_planned_page(make_site):
    result = run_cli("list", "--site", str(make_site()))
    assert result.exit_code == 0
    rows = [line.split("\t") for line in result.output.splitlines()]
    assert rows[0] == ["url", "payer", "procedure", "denial_type", "layer", "indexable", "why"]
    assert len(rows) == 1 + 16
    row = next(r for r in rows if r[0] == "/help/cigna/cimt/prior-authorization/")
    assert row[1:6] == ["cigna", "cimt", "prior-authorization", "exact", "no"]
    assert re.match(r"\d+ distinctive words \(needs 150\)", row[6]), row[6]


@pytest.mark.parametrize("out", ["/", ".", "data", "templates/x", "site.yaml"])
def test_dangerous_out_is_a_usage_error(make_site, out):
    root = make_site()
    (root / "site.yaml").write_text("a file")
    target = out if out == "/" else str(root / out)
    result = run_cli("build", "--site", str(root), "--out", target)
    assert result.exit_code == 2, result.output
    assert "--out" in result.output


def test_unknown_flag_is_a_usage_error(make_site):
    assert run_cli("build", "--sight", "x").exit_code == 2


def test_missing_site_folder_is_a_usage_error(tmp_path):
    result = run_cli("check", "--site", str(tmp_path / "nowhere"))
    assert result.exit_code == 2


def test_a_bug_prints_its_traceback_and_exits_70(monkeypatch, capsys, make_site):
    from denialpages import cli, pipeline

    def broken(root, **options):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(pipeline, "check_site", broken)
    monkeypatch.setattr("sys.argv", ["build.py", "check", "--site", str(make_site())])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: simulated bug" in err and "This is a bug" in err


def test_quiet_prints_nothing_and_verbose_lists_changed_urls(make_site, tmp_path):
    root = make_site()
    quiet = run_cli("build", "--site", str(root), "--out", str(tmp_path / "a"), "--quiet")
    assert quiet.exit_code == 0 and quiet.output == ""
    verbose = run_cli("build", "--site", str(root), "--out", str(tmp_path / "b"), "--verbose")
    assert "added\t/help/cigna/cimt/prior-authorization/" in verbose.output


def test_progress_is_a_bar_on_a_terminal_and_lines_in_a_log():
    import io

    from denialpages.progress import Progress

    log = io.StringIO()
    progress = Progress(log, interactive=False)
    for done in range(0, 1001, 50):
        progress(done, 1000)
    lines = log.getvalue().splitlines()
    assert 9 <= len(lines) <= 11 and all(re.match(r"rendered [\d,]+/1,000 pages \(\d+%\), [\d,]+ pages/s, [\d,]+ s left", x) for x in lines)
    bar = io.StringIO()
    Progress(bar, interactive=True)(1000, 1000)
    assert bar.getvalue().startswith("\r[" + "#" * 28 + "] 1,000/1,000 pages") and bar.getvalue().endswith("\n")
