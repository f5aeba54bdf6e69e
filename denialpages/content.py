"""Hand-written content: find each file's layer, read its front matter, render its Markdown.

Raw HTML is not allowed in content (it is reported with its line), and links may point only at
http(s) and mailto addresses or at paths on the site, so content cannot carry script.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

from .cache import ContentCache
from .errors import Location, Problem
from .fields import Record
from .minify import minify
from .model import Content, SiteData, Source
from .parallel import fork_map
from .yamlsrc import parse_yaml, read_text

SECTIONS = ("Why it was denied", "Appeal route", "Documents to gather", "Criteria mapping")
RAW_HTML = re.compile(r"<(?:[A-Za-z][A-Za-z0-9-]*(?:\s[^>]*)?/?|/[A-Za-z][A-Za-z0-9-]*\s*|!--.*?)>")
SAFE_LINK = re.compile(r"(?:https?:|mailto:|/|#|\.{0,2}/)", re.IGNORECASE)
HEADING = re.compile(r"^##\s+(.+?)\s*#*\s*$")
PARALLEL_FROM = 200  # content files; below this, starting processes costs more than it saves


class _LinkGuard(Treeprocessor):
    """Collects every link or image whose address could run script."""

    def __init__(self, md: markdown.Markdown) -> None:
        super().__init__(md)
        self.unsafe: list[str] = []

    def run(self, root: ET.Element) -> None:
        for element in root.iter():
            for attribute in ("href", "src"):
                value = element.get(attribute)
                if value is not None and not SAFE_LINK.match(value.strip()):
                    self.unsafe.append(value)
                    element.set(attribute, "#")


class _LinkGuardExtension(Extension):
    def extendMarkdown(self, md: markdown.Markdown) -> None:  # noqa: N802 (Markdown's API)
        md.treeprocessors.register(_LinkGuard(md), "link_guard", 0)


def make_markdown() -> markdown.Markdown:
    """Return the one Markdown converter content is rendered with (tables, sane lists)."""
    return markdown.Markdown(extensions=["tables", "sane_lists", _LinkGuardExtension()])


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
    md = make_markdown()
    results = []
    for file, path, key in work:
        problems: list[Problem] = []
        results.append((key, read_content(file, path, key, md, problems), problems))
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


def read_content(
    file: Path, path: str, key: tuple[str, ...], md: markdown.Markdown, problems: list[Problem]
) -> Content | None:
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
    sections = _render_sections(body, body_line, path, md, problems)
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
        sections=sections,
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


def _render_sections(
    body: str, first_line: int, path: str, md: markdown.Markdown, problems: list[Problem]
) -> tuple[tuple[str, str], ...]:
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
    for heading, number, chunk in chunks:
        guard = md.treeprocessors["link_guard"]
        html = minify(md.reset().convert("\n".join(chunk)))
        for bad in guard.unsafe:  # type: ignore[attr-defined]
            problems.append(Problem(Location(path, number), f"section '{heading}': link to '{bad}' is not allowed (http, https, mailto or a site path only)"))
        guard.unsafe.clear()  # type: ignore[attr-defined]
        rendered.append((heading, html))
    return tuple(rendered)
