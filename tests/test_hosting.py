"""_headers and _redirects parse in the hosts' documented formats; no page needs what the CSP blocks."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest

from conftest import parse, run_cli, site_files
from denialpages import pipeline
from denialpages.hosting import (
    HTML_CACHE,
    LONG_CACHE,
    TEXT_CACHE,
    extend_policy,
    hosting_files,
    parse_policy,
    read_csp,
    render_redirects,
)

HEADER_LINE = re.compile(r"^[ \t]+([A-Za-z0-9-]+):[ \t]*(\S.*)$")


def parse_headers(text: str) -> list[tuple[str, dict[str, str]]]:
    """Parse `_headers` as Netlify and Cloudflare Pages document it; fail on anything else."""
    rules: list[tuple[str, dict[str, str]]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            assert line.startswith("/") and " " not in line and line.count("*") <= 1, f"line {number}: {line}"
            rules.append((line, {}))
            continue
        match = HEADER_LINE.match(line)
        assert match and rules, f"line {number}: a header line must follow a path line: {line!r}"
        assert match.group(1) not in rules[-1][1], f"line {number}: header set twice in one rule"
        assert len(line) <= 2000, f"line {number}: longer than Cloudflare's 2,000 characters"
        rules[-1][1][match.group(1)] = match.group(2)
    return rules


def parse_redirects(text: str) -> list[tuple[str, str, int]]:
    """Parse `_redirects` (FROM TO [STATUS] per line, # comments) as both hosts document it."""
    rules = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        assert len(fields) == 3 and fields[0].startswith("/") and fields[2].isdigit(), line
        rules.append((fields[0], fields[1], int(fields[2])))
    return rules


def matches(pattern: str, path: str) -> bool:
    """Return True when a rule path (one optional `*` splat) matches a request path."""
    return re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), path) is not None


def request_paths(out: Path) -> dict[str, str]:
    """Return every URL a visitor can request from out/, with the file it is served from."""
    paths = {}
    for file in out.rglob("*"):
        if file.is_file() and not file.name.startswith("_"):
            rel = file.relative_to(out).as_posix()
            paths["/" + rel] = rel
            if rel.endswith("index.html"):
                paths["/" + rel[: -len("index.html")]] = rel
            elif rel.endswith(".html"):
                paths["/" + rel[: -len(".html")]] = rel
    return paths


OTHER_CACHE = {"favicon.ico": LONG_CACHE, "robots.txt": TEXT_CACHE, "sitemap.xml": TEXT_CACHE}
URL_ATTRIBUTES = {"href", "src", "srcset", "action", "formaction", "data", "poster"}
FOLLOWED_LINK = {"canonical", "alternate"}


def sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


SLASH, SLASHLESS = "/help/{payer}/{procedure}/{denial_type}/", "/help/{payer}/{procedure}/{denial_type}"


@pytest.fixture(params=[SLASH, SLASHLESS])
def built(request, make_site, tmp_path):
    """Build the small site (both URL forms) and return (root, out)."""
    site = {**site_files()["data/site.yaml"], "url_pattern": request.param}
    root = make_site(site_files(**{"data/site.yaml": site}))
    out = tmp_path / "out"
    result = run_cli("build", "--site", str(root), "--out", str(out))
    assert result.exit_code == 0, result.output
    return root, out


def hosted(out: Path) -> dict[str, str]:
    """Return the _headers and _redirects that the build wrote into out/."""
    return {name: (out / name).read_text(encoding="utf-8") for name in ("_headers", "_redirects")}


def test_headers_parse_and_carry_the_pages_policy_plus_frame_ancestors(built):
    _, out = built
    rules = parse_headers(hosted(out)["_headers"])
    every = dict(rules)["/*"]
    meta = read_csp((out / "index.html").read_text())
    assert meta.startswith("default-src 'none'; connect-src 'self'; style-src 'sha256-")
    assert every["Content-Security-Policy"] == meta + "; frame-ancestors 'none'"
    assert "unsafe-inline" not in every["Content-Security-Policy"]
    assert every["X-Content-Type-Options"] == "nosniff"
    assert every["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert every["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains"


def test_every_served_path_gets_exactly_one_cache_header_of_its_kind(built):
    _, out = built
    rules = parse_headers(hosted(out)["_headers"])
    for path, file in request_paths(out).items():
        found = [h["Cache-Control"] for rule, h in rules if "Cache-Control" in h and matches(rule, path)]
        expected = OTHER_CACHE.get(file, HTML_CACHE)
        assert found == [expected], f"{path} ({file}): {found}"


def test_redirects_parse_and_keep_their_order():
    rules = [("/help/old-payer/cimt/step-therapy/", "/help/cigna/cimt/step-therapy/", 301),
             ("/help/gone/", "/404.html", 410)]
    text = render_redirects(rules).decode()
    assert parse_redirects(text) == rules
    assert text.startswith("# ")
    assert parse_redirects(render_redirects([]).decode()) == []


def test_a_policy_grows_the_way_a_browser_reads_it():
    assert extend_policy("default-src 'none'; img-src 'self'", {"script-src": ("'sha256-x'",)}) == (
        "default-src 'none'; img-src 'self'; script-src 'sha256-x'")
    added = {"connect-src": ("'self'",), "frame-ancestors": ("'none'",)}
    assert extend_policy("default-src 'self'", added) == (
        "default-src 'self'; connect-src 'self'; frame-ancestors 'none'")
    assert extend_policy("script-src 'none'; script-src 'unsafe-eval'", {"script-src": ("'sha256-y'",)}) == (
        "script-src 'sha256-y'")  # a repeated directive is ignored by browsers, and here dropped


@pytest.mark.parametrize("rule", [
    ("/a b/", "/x/", 301), ("help/x/", "/x/", 301), ("/x/", "javascript:alert(1)", 301),
    ("/x/", "http://evil.example/", 301), ("/x/", "/y/", 200), ("/x/", "/y z/", 301),
])
def test_a_redirect_no_host_would_read_is_refused(rule):
    with pytest.raises(ValueError):
        render_redirects([rule])


def test_the_build_writes_the_files_hosting_files_makes(built):
    root, out = built
    plan, _ = pipeline.list_pages(root)
    csp = read_csp((out / "index.html").read_text(encoding="utf-8"))
    expected = hosting_files(csp, [p.url for p in (*plan.pages, *plan.hubs)])
    assert {f.path: f.body.decode() for f in expected} == hosted(out)
    assert parse_redirects(hosted(out)["_redirects"]) == []  # a new site has no old URLs yet


def check_page_needs_nothing_the_policy_blocks(file: Path, policy: str) -> None:
    """Fail when a page carries script, style or a request that its CSP (no unsafe-inline) blocks."""
    doc = parse(file)
    assert read_csp(file.read_text(encoding="utf-8")) == policy, f"{file}: another policy"
    style_sources = parse_policy(policy)["style-src"]
    for script in doc.iter("script"):
        assert script.get("type") == "application/ld+json" and script.get("src") is None, f"{file}: a script"
    for style in doc.iter("style"):
        assert sha256_source(style.text or "") in style_sources, f"{file}: a style the CSP does not allow"
    for attribute in doc.xpath("//@*"):
        name, value, tag = attribute.attrname.lower(), attribute.strip().lower(), attribute.getparent().tag
        assert not name.startswith("on"), f"{file}: event handler {name} on <{tag}>"
        assert name != "style", f"{file}: style attribute on <{tag}>"
        if name in URL_ATTRIBUTES:
            assert not value.startswith(("javascript:", "data:", "vbscript:")), f"{file}: {name}={value}"
        if name in URL_ATTRIBUTES - {"href"} or (tag == "link" and name == "href" and not FOLLOWED_LINK & set(
                (attribute.getparent().get("rel") or "").split())):
            # what the browser loads (not a link it follows) comes from the site itself
            assert value.startswith("/") and not value.startswith("//"), f"{file}: <{tag} {name}={value}>"


def test_no_page_carries_inline_script_style_or_handlers_the_csp_would_block(built):
    _, out = built
    policy = read_csp((out / "index.html").read_text())
    pages = sorted(out.rglob("*.html"))
    assert len(pages) > 20
    for file in pages:
        check_page_needs_nothing_the_policy_blocks(file, policy)


def test_the_check_catches_what_it_looks_for(built, tmp_path):
    _, out = built
    policy = read_csp((out / "index.html").read_text())
    page = (out / "index.html").read_text()
    for bad in ('<p onclick="x()">', '<p style="color:red">', "<script>alert(1)</script>",
                "<style>p{color:red}</style>", '<a href="javascript:alert(1)">', '<img src="https://t.example/p">'):
        file = tmp_path / "bad.html"
        file.write_text(page.replace("</main>", bad + "</main>"))
        with pytest.raises(AssertionError):
            check_page_needs_nothing_the_policy_blocks(file, policy)


@pytest.mark.slow
def test_every_bundled_page_needs_nothing_the_csp_blocks(bundled_out):
    policy = read_csp((bundled_out / "index.html").read_text())
    pages = sorted(bundled_out.rglob("*.html"))
    assert len(pages) > 2000
    for file in pages:
        check_page_needs_nothing_the_policy_blocks(file, policy)
