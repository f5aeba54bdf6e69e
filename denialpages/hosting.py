"""Files that Netlify and Cloudflare Pages read from out/: `_headers` and `_redirects` (pure: bytes).

GitHub Pages and a plain S3 bucket read neither, so the pages carry the same Content-Security-Policy
in a <meta http-equiv> tag; `_headers` repeats that policy (read back from a built page, never
written twice) and adds what only a header can carry: `frame-ancestors`.

Each Cache-Control value is set by exactly one rule for any path. When two matching rules set one
header, Cloudflare Pages joins their values with a comma and Netlify keeps the last, so a header
set twice would mean different things on the two hosts.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping

from .render import RenderedPage

SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("Strict-Transport-Security", "max-age=63072000; includeSubDomains"),
)
HTML_CACHE = "public, max-age=0, must-revalidate"  # revalidated every visit: a corrected fact shows at once
TEXT_CACHE = "public, max-age=3600"  # robots.txt and sitemap.xml: crawlers re-read them often enough
LONG_CACHE = "public, max-age=2592000"  # the favicon: 30 days (its name never changes, so not immutable)
MAX_HTML_RULES = 60  # Cloudflare Pages reads at most 100 header rules
REDIRECT_STATUSES = (301, 302, 303, 307, 308, 410)  # 410 is Netlify's; Cloudflare Pages skips that line
CSP_META = re.compile(r"<meta\b[^>]*\bhttp-equiv\s*=\s*[\"']?content-security-policy\b[^>]*>", re.IGNORECASE)
CONTENT_ATTRIBUTE = re.compile(r"(\bcontent\s*=\s*)([\"'])(.*?)\2", re.IGNORECASE | re.DOTALL)


def read_csp(page: str) -> str:
    """Return the policy in a page's <meta http-equiv="Content-Security-Policy">, or ''."""
    tag = CSP_META.search(page)
    value = CONTENT_ATTRIBUTE.search(tag.group(0)) if tag else None
    return html.unescape(value.group(3)).strip() if value else ""


def parse_policy(policy: str) -> dict[str, list[str]]:
    """Return a policy's directives in order, each with its sources (the first of a name wins)."""
    directives: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            directives.setdefault(words[0].lower(), words[1:])
    return directives


def format_policy(directives: dict[str, list[str]]) -> str:
    """Return directives written as one policy string."""
    return "; ".join(" ".join((name, *sources)) for name, sources in directives.items())


def extend_policy(policy: str, additions: Mapping[str, tuple[str, ...]]) -> str:
    """Return `policy` with sources added to directives (a directive's 'none' gives way to them).

    A fetch directive that is absent starts from default-src's sources, as browsers would read it.
    """
    directives = parse_policy(policy)
    for name, sources in additions.items():
        inherited = directives.get("default-src", []) if name.endswith("-src") else []
        kept = [s for s in directives.get(name, inherited) if s != "'none'"]
        directives[name] = kept + [s for s in sources if s not in kept]
    return format_policy(directives)


def header_policy(meta_policy: str) -> str:
    """Return the pages' meta policy plus what only a header can carry: frame-ancestors."""
    return extend_policy(meta_policy, {"frame-ancestors": ("'none'",)})


def html_patterns(urls: Iterable[str]) -> list[str]:
    """Return header-rule paths covering every HTML page: home, the 404 page and /{first segment}/*."""
    segments = sorted({url.strip("/").split("/", 1)[0] for url in urls} - {""})
    if len(segments) > MAX_HTML_RULES:
        segments = []  # the hosts' own default for HTML is this same short cache
    return ["/", "/index.html", "/404", "/404.html", *(f"/{segment}/*" for segment in segments)]


def render_headers(csp: str, page_urls: Iterable[str] = ()) -> bytes:
    """Return `_headers`: security headers for every path, then one cache rule per kind of file."""
    rules: list[tuple[str, list[tuple[str, str]]]] = [
        ("/*", [("Content-Security-Policy", header_policy(csp)), *SECURITY_HEADERS]),
        ("/favicon.ico", [("Cache-Control", LONG_CACHE)]),
        ("/robots.txt", [("Cache-Control", TEXT_CACHE)]),
        ("/sitemap.xml", [("Cache-Control", TEXT_CACHE)]),
        *((pattern, [("Cache-Control", HTML_CACHE)]) for pattern in html_patterns(page_urls)),
    ]
    lines = [
        "# Response headers for Netlify and Cloudflare Pages, written by the build; do not edit.",
        "# A path line, then its headers indented. Every matching rule applies; no path gets one",
        "# header from two rules. The CSP is the pages' own <meta> policy plus frame-ancestors.",
    ]
    for path, headers in rules:
        lines += ["", path, *(f"  {name}: {value}" for name, value in headers)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def render_redirects(rules: list[tuple[str, str, int]]) -> bytes:
    """Return `_redirects`: one `FROM TO STATUS` line per rule, in order (the first match wins)."""
    lines = [
        "# Redirects for Netlify and Cloudflare Pages, written by the build from the URL ledger; do not",
        "# edit. One rule a line: FROM TO STATUS. The first matching rule wins. Cloudflare Pages reads",
        "# at most 2,000 of them and skips 410 lines; old URLs also get a redirect page inside out/.",
    ]
    for source, target, status in rules:
        check_redirect(source, target, status)
        lines.append(f"{source} {target} {status}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def check_redirect(source: str, target: str, status: int) -> None:
    """Raise ValueError for a rule no host would read as written (the ledger builds them: a bug)."""
    if not source.startswith("/") or re.search(r"[\s#]", source):
        raise ValueError(f"redirect source {source!r} must be a site path with no spaces or '#'")
    if not target.startswith(("/", "https://")) or re.search(r"\s", target):
        raise ValueError(f"redirect target {target!r} must be a site path or an https URL, with no spaces")
    if status not in REDIRECT_STATUSES:
        raise ValueError(f"redirect status {status} is not one of {REDIRECT_STATUSES}")


def hosting_files(csp: str, page_urls: Iterable[str] = (), redirects: Iterable[tuple[str, str, int]] = ()
                  ) -> list[RenderedPage]:
    """Return `_headers` and `_redirects` for out/; `csp` is the policy the pages' meta tag carries."""
    return [
        RenderedPage("_headers", render_headers(csp, page_urls)),
        RenderedPage("_redirects", render_redirects(list(redirects))),
    ]
