"""Issue 5, fuzzing: random small catalogues with hostile text in every field build safely or say no.

Hypothesis writes a site of 1-3 payers, procedures and denial types whose every text field holds
a random mix of markup, template syntax, quotes, entities, emoji, right-to-left and combining
characters and arbitrary code points, and whose slugs sometimes break the slug rule. The build
either succeeds, and then every page parses, every internal link resolves, the JSON-LD and the
sitemap parse, and each hostile string shows as text where it was put; or it exits 1 with only
`path:line: message` lines. Never a traceback, never another exit code.

Control characters: a YAML stream may not hold most of them raw, but a double-quoted scalar may
escape any of them ("\\0", "\\x07", "\\u2028"), and PyYAML writes them that way, so a marketer
pasting from a word processor can get them into a field. They are generated too. HTML5 makes
control characters and noncharacters parse errors and XML forbids most of them outright, so a
build may refuse them with a `path:line:` message or drop them, but never publish them.
"""

from __future__ import annotations

import json
import re
import tempfile
import urllib.parse
from pathlib import Path

import lxml.etree
import lxml.html
import yaml
from conftest import REPO, SITE, denial, payer, procedure, run_cli
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

CATEGORIES = ("surgery", "drug", "therapy", "test", "imaging", "device")
PLAN_TYPES = ("employer", "marketplace", "medicare-advantage", "medicaid")
HOSTILE = [
    "<",
    ">",
    "&",
    '"',
    "'",
    "`",
    "</script>",
    "<script>alert(1)</script>",
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    "{{ 7*7 }}",
    "{% raw %}",
    "{#",
    "${x}",
    "&amp;",
    "&#60;",
    "&lt;b&gt;",
    "javascript:alert(1)",
    "\\u003c",
    "%3Cscript%3E",
    "../",
    "/",
    "?",
    "#",
    "\\",
    "é",
    "e\u0301",
    "עברית",
    "العربية",
    "\u202e",
    "\u200d",
    "🙅\u200d♀️",
    "👩🏽\u200d⚕️",
    "中文",
    "\ufeff",
    "\u00a0",
    "\u2028",
    "\x00",
    "\x07",
    "\x1b[31m",
    "\x85",
    "\ufffe",
    "\U0010ffff",
    "\n",
    "\t",
    " ",
]
# anything a UTF-8 file can hold: every code point but lone surrogates
CHARS = st.characters(exclude_categories=("Cs",))
hostile = st.lists(
    st.one_of(st.sampled_from(HOSTILE), st.text(CHARS, max_size=6)), min_size=1, max_size=6
).map("".join)
good_slug = st.from_regex(r"[a-z0-9]{1,6}(-[a-z0-9]{1,4}){0,2}", fullmatch=True)
slug = st.one_of(good_slug, good_slug, good_slug, st.text(CHARS, max_size=6))  # one time in four: anything
FORBIDDEN = re.compile(
    "[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufdd0-\ufdef\ufffe\uffff]"
)  # HTML5/XML-forbidden code points


@st.composite
def catalogue(draw: st.DrawFn) -> dict[str, object]:
    """Return a random valid-shaped site whose every text field is hostile."""
    text = lambda: draw(hostile)  # noqa: E731
    payers = [
        payer(
            draw(slug),
            text(),
            draw(st.lists(st.sampled_from(PLAN_TYPES), min_size=1, max_size=4, unique=True)),
            about=text(),
            policy_resources=[{"name": text(), "where": text(), "url": "https://p.example.com/a"}],
        )
        for _ in range(draw(st.integers(1, 3)))
    ]
    procedures = [
        procedure(
            draw(slug),
            text(),
            draw(st.sampled_from(CATEGORIES)),
            long_name=text(),
            summary=text(),
            ordered_by=text(),
            criteria=[{"criterion": text(), "evidence": text()}],
            documents=[text(), text()],
        )
        for _ in range(draw(st.integers(1, 3)))
    ]
    denials = [
        denial(
            draw(slug),
            text(),
            text(),
            lede=text(),
            why=text(),
            angle=text(),
            documents=[text()],
            mistakes=[text()],
            expedited=text(),
        )
        for _ in range(draw(st.integers(1, 3)))
    ]
    return {
        "data/site.yaml": {**SITE, "name": text(), "reviewer": text()},
        "data/payers.yaml": payers,
        "data/procedures.yaml": procedures,
        "data/denial_types.yaml": denials,
    }


class QuotingDumper(yaml.SafeDumper):
    """Writes every string double-quoted, the one YAML style that can escape any code point."""


QuotingDumper.add_representer(
    str, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
)


def write_site(root: Path, files: dict[str, object]) -> None:
    """Write a site folder (the repo's templates and facts plus `files`), checking YAML round-trips."""
    (root / "data").mkdir(parents=True)
    (root / "templates").symlink_to(REPO / "templates")  # read only; a link keeps each example cheap
    (root / "data" / "facts.yaml").symlink_to(REPO / "data" / "facts.yaml")
    for path, value in files.items():
        text = yaml.dump(value, Dumper=QuotingDumper, sort_keys=False, allow_unicode=True)
        assert yaml.safe_load(text) == value  # the site holds exactly the hostile strings drawn
        (root / path).write_text(text, encoding="utf-8")


def shown(value: str) -> str:
    """Return a field as a page may show it: on one line, without HTML-forbidden code points."""
    return " ".join(FORBIDDEN.sub("", value).split())


def target_of(out: Path, href: str, base_url: str) -> Path | None:
    """Return the file an internal link is served from, or None for an external link or the checkout."""
    if href.startswith(SITE["checkout_url"]):
        return None
    if href.startswith(base_url + "/"):
        href = href[len(base_url) :]
    if not href.startswith("/") or href.startswith("//"):
        return None
    path = urllib.parse.unquote(urllib.parse.urlsplit(href).path).lstrip("/")
    if path == "" or path.endswith("/"):
        return out / path / "index.html"
    return out / path if Path(path).suffix else out / f"{path}.html"


def assert_site_is_sound(out: Path, files: dict[str, object]) -> None:
    """Assert every page parses and links home, and hostile strings landed as text."""
    base_url = SITE["base_url"]
    for file in out.rglob("*.html"):
        raw = file.read_bytes().decode("utf-8")
        assert not FORBIDDEN.search(raw), f"{file}: a control character or noncharacter was published"
        doc = lxml.html.fromstring(raw)
        scripts = doc.cssselect("script")
        assert [s.get("type") for s in scripts] == ["application/ld+json"], file
        json.loads(scripts[0].text)
        assert not [
            a for e in doc.iter() if isinstance(e.tag, str) for a in e.attrib if a.lower().startswith("on")
        ]
        for element in doc.cssselect("a[href], link[href]"):
            target = target_of(out, element.get("href"), base_url)
            assert target is None or target.is_file(), f"{file}: {element.get('href')} leads nowhere"
    lxml.etree.fromstring((out / "sitemap.xml").read_bytes())
    first_payer, first_procedure, first_denial = (
        files[f"data/{n}.yaml"][0] for n in ("payers", "procedures", "denial_types")
    )
    pattern = SITE["url_pattern"]
    url = pattern.format(
        payer=first_payer["slug"], procedure=first_procedure["slug"], denial_type=first_denial["slug"]
    )
    doc = lxml.html.fromstring((out / url.lstrip("/") / "index.html").read_bytes())
    h1 = doc.cssselect("h1")[0]
    assert len(h1) == 0, "markup inside the title: data became tags"
    names = {
        k: shown(v["name"] if k != "phrase" else v["phrase"])
        for k, v in (("payer", first_payer), ("procedure", first_procedure), ("phrase", first_denial))
    }
    assert h1.text_content() == f"{names['procedure']} denied for {names['phrase']} by {names['payer']}?"
    assert names["payer"] in doc.cssselect("meta[property='og:title']")[0].get("content")
    assert shown(first_denial["lede"]) == doc.cssselect("p.lede")[0].text_content()
    graph = json.loads(doc.cssselect("script")[0].text)["@graph"]
    assert names["payer"] in [
        item["name"]
        for node in graph
        if node["@type"] == "BreadcrumbList"
        for item in node["itemListElement"]
    ]


ERROR_LINE = re.compile(r"^[^:\n]+:\d+: ")


@settings(
    max_examples=40,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    report_multiple_bugs=False,  # shrink one failure, not each distinct one: a red run stays short
)
@given(files=catalogue())
def test_hostile_catalogues_build_safely_or_fail_with_path_and_line(files):
    with tempfile.TemporaryDirectory() as folder:
        root, out = Path(folder) / "site", Path(folder) / "out"
        write_site(root, files)
        result = run_cli("build", "--site", str(root), "--out", str(out), "--jobs", "1")
        assert "Traceback" not in result.output
        assert result.exit_code in (0, 1), result.output
        if result.exit_code == 0:
            assert_site_is_sound(out, files)
        else:
            lines = result.output.splitlines()
            assert lines[-1].endswith("nothing was written.")
            assert [line for line in lines[:-1] if not ERROR_LINE.match(line)] == [], result.output
            assert not out.exists()
