"""The URL ledger: lastmod moves only with content; moved slugs redirect; vanished URLs are errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from conftest import PAYERS, parse, payer, run_cli, site_files
from denialpages.model import Site
from denialpages.render import RenderedPage
from denialpages.sitemap import sitemaps
from test_standing import long_site, page_md, prose

NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def build(root, out, epoch: str, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch)
    return run_cli("build", "--site", str(root), "--out", str(out))


def lastmods(out):
    tree = ET.parse(out / "sitemap.xml")
    return {u.findtext(NS + "loc"): u.findtext(NS + "lastmod") for u in tree.iter(NS + "url")}


DAY1, DAY2 = "1764000000", "1764864000"  # 2025-11-24, 2025-12-04
PAGE = "https://denialhelp.com/help/cigna/cimt/prior-authorization/"


def test_lastmod_moves_only_when_the_page_content_changes(make_site, tmp_path, monkeypatch):
    root = make_site(long_site())
    assert build(root, tmp_path / "out", DAY1, monkeypatch).exit_code == 0
    assert lastmods(tmp_path / "out")[PAGE] == "2025-11-24"
    assert build(root, tmp_path / "fresh", DAY2, monkeypatch).exit_code == 0  # a later build, a new out/
    assert lastmods(tmp_path / "fresh")[PAGE] == "2025-11-24"
    (root / "content/cigna/cimt/prior-authorization.md").write_text(page_md(prose(1) + " and one more fact"))
    assert build(root, tmp_path / "out", DAY2, monkeypatch).exit_code == 0
    dates = lastmods(tmp_path / "out")
    assert dates[PAGE] == "2025-12-04"
    assert dates["https://denialhelp.com/help/humana/humira/step-therapy/"] == "2025-11-24"


def test_a_renamed_slug_redirects_its_old_urls(make_site, tmp_path, monkeypatch):
    root = make_site(long_site())
    assert build(root, tmp_path / "out", DAY1, monkeypatch).exit_code == 0
    renamed = [payer("cigna-healthcare", "Cigna", ["employer", "marketplace"], previous_slugs=["cigna"]), PAYERS[1]]
    files = long_site(**{"data/payers.yaml": renamed})
    files["content/cigna-healthcare/cimt/prior-authorization.md"] = files.pop("content/cigna/cimt/prior-authorization.md")
    for path, value in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(value if isinstance(value, str) else __import__("yaml").safe_dump(value, sort_keys=False))
    (root / "content/cigna/cimt/prior-authorization.md").unlink()
    result = build(root, tmp_path / "out", DAY2, monkeypatch)
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    rules = [line.split() for line in (out / "_redirects").read_text().splitlines() if not line.startswith("#")]
    assert ["/help/cigna/cimt/prior-authorization/", "/help/cigna-healthcare/cimt/prior-authorization/", "301"] in rules
    assert ["/help/cigna/", "/help/cigna-healthcare/", "301"] in rules
    old = parse(out / "help/cigna/cimt/prior-authorization/index.html")
    assert old.cssselect("meta[http-equiv=refresh]")[0].get("content") == "0; url=/help/cigna-healthcare/cimt/prior-authorization/"
    assert old.cssselect("link[rel=canonical]")[0].get("href") == "https://denialhelp.com/help/cigna-healthcare/cimt/prior-authorization/"
    assert old.cssselect("meta[name=robots]")[0].get("content") == "noindex,follow"
    assert "redirect" in (root / "ledger/urls.tsv").read_text()


def test_a_url_that_vanishes_without_a_redirect_is_an_error_until_retired(make_site, tmp_path, monkeypatch):
    root = make_site(long_site())
    assert build(root, tmp_path / "out", DAY1, monkeypatch).exit_code == 0
    import yaml

    (root / "data/payers.yaml").write_text(yaml.safe_dump(PAYERS[:1], sort_keys=False))
    (root / "content/humana/humira/step-therapy.md").unlink()
    result = build(root, tmp_path / "out", DAY2, monkeypatch)
    assert result.exit_code == 1
    assert "ledger/urls.tsv: /help/humana/cimt/prior-authorization/ was published and would disappear" in result.output
    retired = [{"url": f"/help/humana/{p}/{d}/", "reason": "Humana pages retired"}
               for p, d in (("lumbar-spinal-fusion", "prior-authorization"), ("lumbar-spinal-fusion", "step-therapy"),
                            ("cimt", "prior-authorization"), ("cimt", "step-therapy"), ("humira", "prior-authorization"),
                            ("humira", "step-therapy"), ("humira", "non-formulary"),
                            ("tumor-genomic-profiling", "prior-authorization"))]
    (root / "data/removed.yaml").write_text(yaml.safe_dump(retired, sort_keys=False))
    result = build(root, tmp_path / "out", DAY2, monkeypatch)
    assert result.exit_code == 0, result.output
    gone = [line for line in (tmp_path / "out/_redirects").read_text().splitlines() if line.endswith(" 410")]
    assert "/help/humana/cimt/prior-authorization/ /404.html 410" in gone


def test_sitemap_splits_into_one_child_per_payer_past_the_limit():
    site = Site(name="x", language="en", base_url="https://a.example", checkout_url="https://a.example/c",
                price=None, promo_code="P", url_pattern="/h/{payer}/{procedure}/{denial_type}/",  # type: ignore[arg-type]
                reviewed=None, reviewer="r", thresholds=None, origin=None)  # type: ignore[arg-type]
    groups = {"site": [("https://a.example/", "")],
              "cigna": [(f"https://a.example/h/cigna/{i}/", "2026-01-01") for i in range(5)],
              "aetna": [(f"https://a.example/h/aetna/{i}/", "2026-01-01") for i in range(2)]}
    files = {f.path: f.body for f in sitemaps(site, groups, max_urls=3)}
    assert set(files) == {"sitemap.xml", "sitemaps/site.xml", "sitemaps/cigna.xml", "sitemaps/cigna-2.xml", "sitemaps/aetna.xml"}
    index = [e.text for e in ET.fromstring(files["sitemap.xml"]).iter(NS + "loc")]
    assert index == [f"https://a.example/{p}" for p in ("sitemaps/site.xml", "sitemaps/cigna.xml", "sitemaps/cigna-2.xml", "sitemaps/aetna.xml")]
    cigna = [e.text for e in ET.fromstring(files["sitemaps/cigna-2.xml"]).iter(NS + "loc")]
    assert cigna == ["https://a.example/h/cigna/3/", "https://a.example/h/cigna/4/"]
    assert isinstance(sitemaps(site, groups)[0], RenderedPage) and len(sitemaps(site, groups)) == 1


@pytest.mark.parametrize("line", ["not\ta ledger line", "/x/\t2026-01-01\thash\tmaybe\t"])
def test_a_damaged_ledger_is_reported_at_its_line(make_site, line):
    root = make_site()
    (root / "ledger").mkdir()
    (root / "ledger/urls.tsv").write_text("url\tlastmod\tcontent_hash\tstatus\ttarget\n" + line + "\n")
    result = run_cli("check", "--site", str(root))
    assert result.exit_code == 1
    assert "ledger/urls.tsv:2: not a ledger line" in result.output
