"""Hand-written content: find each file's layer, read its front matter, render its Markdown.

Raw HTML is not allowed in content (it is reported with its line), and links may point only at
http(s) and mailto addresses or at paths on the site, so content cannot carry script.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from pathlib import Path

from html import unescape

from cmarkgfm.cmark import Options

from .cache import ContentCache
from .cmark import markdown_to_html
from .errors import Location, Problem
from .fields import Record
from .minify import minify_markup
from .model import Content, SiteData, Source, pack_sections
from .parallel import fork_map
from .yamlsrc import parse_yaml, read_text

SECTIONS = ("Why it was denied", "Appeal route", "Documents to gather", "Criteria mapping")
RAW_HTML = re.compile(r"<(?:[A-Za-z][A-Za-z0-9-]*(?:\s[^>]*)?/?|/[A-Za-z][A-Za-z0-9-]*\s*|!--.*?)>")
SAFE_LINK = re.compile(r"(?:https?:|mailto:|/|#|\.{0,2}/)", re.IGNORECASE)
HEADING = re.compile(r"^##\s+(.+?)\s*#*\s*$")
PARALLEL_FROM = 500  # content files; below this, starting processes costs more than it saves
LINK_ADDRESS = re.compile(r'(href|src)="([^"]*)"')
RAW_HTML_OMITTED = "<!-- raw HTML omitted -->"
TEXT_QUOTE = re.compile(r">[^<]+")
SAFE_OPTIONS = Options.CMARK_OPT_TABLE_PREFER_STYLE_ATTRIBUTES  # align="" is obsolete HTML
UNSAFE_OPTIONS = SAFE_OPTIONS | Options.CMARK_OPT_UNSAFE


def render_markdown(text: str) -> tuple[str, list[str], bool]:
    """Return Markdown as minified HTML (GitHub's dialect, tables on), each link or image
    address that could run script or is not of an allowed kind (shown as '#' in the HTML), and
    whether raw HTML was left out.

    cmark's safe mode never passes raw HTML through and blanks javascript:, data: and file:
    addresses; for the message, the original address is read from an unsafe rendering.
    """
    html = _to_html(text, SAFE_OPTIONS)
    raw_html = RAW_HTML_OMITTED in html
    if all(_is_safe(value) for _, value in LINK_ADDRESS.findall(html)):
        return minify_markup(_plain_quotes(html)), [], raw_html
    originals = (unescape(value) for _, value in LINK_ADDRESS.findall(_to_html(text, UNSAFE_OPTIONS)))
    unsafe = [value for value in originals if not SAFE_LINK.match(value.strip())]
    guarded = LINK_ADDRESS.sub(lambda m: m.group(0) if _is_safe(m.group(2)) else f'{m.group(1)}="#"', html)
    return minify_markup(_plain_quotes(guarded)), unsafe, raw_html


def _to_html(text: str, options: int) -> str:
    return markdown_to_html(text, options, ("table",))


def _is_safe(escaped: str) -> bool:
    value = unescape(escaped).strip()
    return bool(value) and bool(SAFE_LINK.match(value))


def _plain_quotes(html: str) -> str:
    """Return cmark's HTML with '&quot;' in text written as '"' (htmlmin's form; attributes keep theirs)."""
    return TEXT_QUOTE.sub(lambda m: m.group(0).replace("&quot;", '"'), html) if "&quot;" in html else html


def load_content(root: Path, data: SiteData, jobs: int = 1,
                 cache: ContentCache | None = None) -> tuple[dict[tuple[str, ...], Content], list[Problem]]:
    """Return every content file by (layer, *slugs), and the problems found in them.

    Files rendered before with the same bytes come from `cache`; with `jobs` > 1 and many files
    left to render, that many processes render them.
    """
    folder = root / "content"
    problems: list[Problem] = []
    if not folder.is_dir():
        return {}, problems
    work: list[tuple[Path, str, tuple[str, ...]]] = []
    for file in sorted(folder.rglob("*")):
        if file.is_dir():
            continue
        path = file.relative_to(root).as_posix()
        key, where = locate(file.relative_to(folder).parts, data)
        if key is None:
            if where:
                problems.append(Problem(Location(path), where))
            continue
        work.append((file, path, key))
    cache_keys = {path: ContentCache.key(path, key, file.read_bytes()) for file, path, key in work} if cache else {}
    cached = cache.read(cache_keys.values()) if cache else {}
    todo = [item for item in work if cache_keys.get(item[1]) not in cached]
    results = [(key, cached[cache_keys[path]], []) for _, path, key in work if cache_keys.get(path) in cached]
    if jobs > 1 and len(todo) >= PARALLEL_FROM:
        batches = [todo[i::jobs * 4] for i in range(jobs * 4)]
        results += [r for batch in fork_map(read_batch, batches, jobs) for r in batch]
    else:
        results += read_batch(todo)
    found = {}
    for key, content, found_problems in sorted(results, key=lambda r: r[0]):
        problems += found_problems
        if content is not None:
            found[key] = content
    problems.sort(key=lambda p: (p.location.path, p.location.line or 0))
    if cache:
        cache.keep({cache_keys[c.origin.path]: c for c in found.values()}, (cache_keys[path] for _, path, _ in todo))
    return found, problems


def read_batch(work: list[tuple[Path, str, tuple[str, ...]]]) -> list[tuple[tuple[str, ...], Content | None, list[Problem]]]:
    """Return (key, content or None, problems) for each content file of `work`."""
    results = []
    for file, path, key in work:
        problems: list[Problem] = []
        results.append((key, read_content(file, path, key, problems), problems))
    return results


def locate(parts: tuple[str, ...], data: SiteData) -> tuple[tuple[str, ...] | None, str]:
    """Return a content file's key (layer, *slugs), or None and why it matches no page."""
    names = {
        "payer": [p.slug for p in data.payers],
        "procedure": [p.slug for p in data.procedures],
        "denial type": [d.slug for d in data.denial_types],
    }
    if not parts[-1].endswith(".md"):
        return None, "content files must end in .md"
    stem = (*parts[:-1], parts[-1][:-3])
    layouts = {
        3: ("exact", ("payer", "procedure", "denial type")),
        2: ("denial", ("_denial", "denial type")),
    }
    if len(stem) == 3 and stem[0] == "_procedure":
        layer, kinds = "procedure", ("_procedure", "procedure", "denial type")
    elif len(stem) in layouts and (len(stem) == 3) != (stem[0] == "_denial"):
        layer, kinds = layouts[len(stem)]
    else:
        return None, ("not in a known layer: use content/{payer}/{procedure}/{denial_type}.md, "
                      "content/_procedure/{procedure}/{denial_type}.md or content/_denial/{denial_type}.md")
    slugs = []
    for kind, part in zip(kinds, stem, strict=True):
        if kind.startswith("_"):
            continue
        if not names[kind]:
            return None, ""  # that data file did not load; its own problems say why
        if part not in names[kind]:
            near = difflib.get_close_matches(part, names[kind], n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            return None, f"no {kind} '{part}' in data/ (this file would never be shown){hint}"
        slugs.append(part)
    return (layer, *slugs), ""


def split_front_matter(text: str) -> tuple[str | None, str, int]:
    """Return (front matter or None, body, the body's first line number)."""
    if not text.startswith("---\n"):
        return None, text, 1
    end = text.find("\n---\n", 3)
    if end < 0:
        return text[4:], "", 0
    front = text[4 : end + 1]
    return front, text[end + 5 :], front.count("\n") + 3


def read_content(file: Path, path: str, key: tuple[str, ...], problems: list[Problem]) -> Content | None:
    """Return one content file, rendered, or None after adding its problems."""
    text, found = read_text(file, path)
    problems += found
    if text is None:
        return None
    text = text.replace("\r\n", "\n")
    front, body, body_line = split_front_matter(text)
    if body_line == 0:
        problems.append(Problem(Location(path, 1), "front matter opens with '---' but never closes"))
        return None
    meta = _read_front_matter(front, path, problems)
    before = len(problems)
    sections = _render_sections(body, body_line, path, problems)
    if meta is None or len(problems) > before:
        return None
    return Content(
        layer=key[0],
        key=key,
        title=meta.optional_text("title"),
        description=meta.optional_text("description"),
        reviewed=meta.date("reviewed", required=False),
        reviewer=meta.optional_text("reviewer"),
        sources=_sources(meta),
        packed_sections=pack_sections(sections),
        digest=hashlib.sha256(text.encode()).hexdigest(),
        origin=Location(path, 1),
    )


def _read_front_matter(front: str | None, path: str, problems: list[Problem]) -> Record | None:
    raw, found = parse_yaml(front, path) if front else (None, [])
    problems += [Problem(Location(p.location.path, p.location.line + 1), p.message) for p in found]
    if found:
        return None
    meta = Record(raw if raw is not None else _empty(), path, "front matter", problems, 2)
    for key in ("title", "description", "reviewed", "reviewer", "sources"):
        meta.seen.add(key)
    for key, line in meta.raw.lines.items():
        meta.raw.lines[key] = line + 1
    meta.finish()
    return meta


def _empty() -> object:
    from .yamlsrc import YamlMap

    return YamlMap(2)


def _sources(meta: Record) -> tuple[Source, ...]:
    return meta.records("sources", lambda r: Source(r.text("title"), r.https_url("url")), required=False)


def _render_sections(body: str, first_line: int, path: str, problems: list[Problem]) -> tuple[tuple[str, str], ...]:
    lines = body.split("\n")
    for number, line in enumerate(lines, start=first_line):
        if RAW_HTML.search(line):
            problems.append(Problem(Location(path, number), "raw HTML is not allowed in content; use Markdown"))
    chunks: list[tuple[str, int, list[str]]] = []
    for number, line in enumerate(lines, start=first_line):
        heading = HEADING.match(line)
        if heading:
            chunks.append((heading.group(1), number, []))
        elif chunks:
            chunks[-1][2].append(line)
        elif line.strip():
            problems.append(Problem(Location(path, number), f"text before the first heading; start with '## {SECTIONS[0]}'"))
    headings = [c[0] for c in chunks]
    if headings != list(SECTIONS):
        line = chunks[0][1] if chunks else first_line
        problems.append(Problem(Location(path, line), f"the headings must be, in order: {', '.join(SECTIONS)} (found: {', '.join(headings) or 'none'})"))
    rendered = []
    raw_html_found = any(p.message.startswith("raw HTML") for p in problems)
    for heading, number, chunk in chunks:
        html, unsafe, raw_html = render_markdown("\n".join(chunk))
        if raw_html and not raw_html_found:  # a tag split over lines, which the line check misses
            problems.append(Problem(Location(path, number), f"section '{heading}': raw HTML is not allowed in content; use Markdown"))
        for bad in unsafe:
            problems.append(Problem(Location(path, number), f"section '{heading}': link to '{bad}' is not allowed (http, https, mailto or a site path only)"))
        rendered.append((heading, html))
    return tuple(rendered)
