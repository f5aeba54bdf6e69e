"""Publishing out/ to an S3 bucket behind CloudFront: the `aws` commands, run or printed (no SDK).

S3 reads neither `_headers` nor `_redirects`, so each object carries its own Content-Type and
Cache-Control, set per kind of file by one `aws s3 sync` pass each (`--exclude '*' --include
'*.html'`); every pass has `--delete`, so an object whose file left out/ (a page retired in
data/removed.yaml, an old sitemap) leaves the bucket, and one last pass syncs and deletes what no
kind names. Passes go assets first and sitemaps last, so a new page's links and a sitemap's
entries exist before anything points at them. Redirect pages are pages (meta refresh and
canonical); `--website-redirect` also gives their objects S3's own 301. CloudFront then forgets
the URLs out-changes.txt lists, or everything past MAX_INVALIDATION_PATHS.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import click

from .changes import HOST_FILES, Change
from .errors import UsageProblem
from .hosting import LONG_CACHE, TEXT_CACHE

# Browsers revalidate every visit, as on Netlify (hosting.HTML_CACHE); CloudFront may keep a page an
# hour (s-maxage), since each publish invalidates what changed: an hour bounds a missed invalidation.
PAGE_CACHE = "public, max-age=0, s-maxage=3600, must-revalidate"
# 1,000 invalidation paths a month are free, then each costs (aws.amazon.com/cloudfront/pricing), and a
# distribution takes at most 3,000 file paths in progress at once (CloudFront Developer Guide,
# "Concurrent invalidation request maximum"); past 1,000, "/*" counts as one path and clears everything.
MAX_INVALIDATION_PATHS = 1_000
EXCLUDED = tuple(url.lstrip("/") for url in HOST_FILES)  # Netlify's and Cloudflare Pages' files, never uploaded
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
PREFIX = re.compile(r"[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*")
DISTRIBUTION = re.compile(r"[A-Z0-9]{1,64}")


@dataclass(frozen=True, slots=True)
class FileKind:
    """Files that share one Content-Type and Cache-Control, named by an `aws` filter pattern."""

    pattern: str
    content_type: str
    cache_control: str


KINDS = (  # in upload order; no file is content-hashed (the CSS is inline), so nothing is immutable
    FileKind("*.css", "text/css; charset=utf-8", PAGE_CACHE),
    FileKind("*.ico", "image/x-icon", LONG_CACHE),
    FileKind("*.html", "text/html; charset=utf-8", PAGE_CACHE),
    FileKind("*.xml", "application/xml", TEXT_CACHE),
    FileKind("*.txt", "text/plain; charset=utf-8", TEXT_CACHE),  # robots.txt, the IndexNow key file
)
HTML = KINDS[2]


@dataclass(frozen=True, slots=True)
class Target:
    """Where out/ goes: a bucket, an optional key prefix, an optional CloudFront distribution."""

    bucket: str
    prefix: str = ""
    distribution: str | None = None
    website_redirect: bool = False

    @property
    def uri(self) -> str:
        """Return the s3:// address of the site's root."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def make_target(bucket: str, prefix: str | None, distribution: str | None, website_redirect: bool) -> Target:
    """Return the checked target, or raise UsageProblem naming the bad option."""
    if not BUCKET.fullmatch(bucket):
        raise UsageProblem(f"--bucket '{bucket}' is not an S3 bucket name (3-63 of a-z, 0-9, '.' and '-')")
    cleaned = (prefix or "").strip("/")
    if cleaned and (not PREFIX.fullmatch(cleaned) or ".." in cleaned.split("/")):
        raise UsageProblem(f"--prefix '{prefix}' must be folder names of letters, digits, '.', '_' and '-'")
    if distribution is not None and not DISTRIBUTION.fullmatch(distribution):
        raise UsageProblem(f"--distribution '{distribution}' is not a CloudFront distribution ID (like E2QWRUHAPOMQZL)")
    return Target(bucket, cleaned, distribution, website_redirect)


def sync_commands(out: Path, target: Target) -> list[list[str]]:
    """Return one `aws s3 sync --delete` per kind of file, then one for every other file."""
    base = ["aws", "s3", "sync", str(out), target.uri, "--delete", "--no-progress"]
    excluded = [arg for name in EXCLUDED for arg in ("--exclude", name)]
    commands = [[*base, "--exclude", "*", "--include", kind.pattern, *excluded, "--content-type", kind.content_type,
                 "--cache-control", kind.cache_control] for kind in KINDS]
    others = [*base, *(arg for kind in KINDS for arg in ("--exclude", kind.pattern)), *excluded]
    return [*commands[:2], others, *commands[2:]]


def read_redirects(out: Path) -> list[tuple[str, str]]:
    """Return the (old URL, new URL) pairs of the 301 rules in out/_redirects."""
    path = out / "_redirects"
    if not path.is_file():
        return []
    rules = [line.split() for line in path.read_text(encoding="utf-8").splitlines()]
    return [(rule[0], rule[1]) for rule in rules if len(rule) == 3 and not rule[0].startswith("#") and rule[2] == "301"]


def object_key(out: Path, url: str) -> str | None:
    """Return the file under out/ served at `url` (its S3 key below the prefix), or None."""
    key = url.strip("/") + "/index.html" if url.endswith("/") else url.lstrip("/") + ".html"
    key = key.lstrip("/")
    return key if (out / key).is_file() else None


def redirect_commands(out: Path, target: Target) -> list[list[str]]:
    """Return an `aws s3 cp --website-redirect` per redirect page, so S3 also answers 301."""
    commands = []
    for old, new in read_redirects(out):
        key = object_key(out, old)
        if key:
            commands.append(["aws", "s3", "cp", str(out / key), f"{target.uri}/{key}", "--no-progress",
                             "--website-redirect", new, "--content-type", HTML.content_type,
                             "--cache-control", HTML.cache_control])
    return commands


def invalidation_paths(changes: tuple[Change, ...] | None) -> list[str]:
    """Return the viewer paths to invalidate: every URL the build touched, or '/*' when unknown or too many."""
    if changes is None:
        return ["/*"]
    paths = list(dict.fromkeys(c.url for c in changes if c.url not in HOST_FILES))
    return ["/*"] if len(paths) > MAX_INVALIDATION_PATHS else paths


def invalidation_command(target: Target, paths: list[str]) -> list[list[str]]:
    """Return the `aws cloudfront create-invalidation`, or nothing without a distribution or paths."""
    if not target.distribution or not paths:
        return []
    return [["aws", "cloudfront", "create-invalidation", "--distribution-id", target.distribution, "--paths", *paths]]


def publish_commands(out: Path, target: Target, changes: tuple[Change, ...] | None) -> list[list[str]]:
    """Return every `aws` command that publishes out/ to the target, in the order they must run."""
    redirects = redirect_commands(out, target) if target.website_redirect else []
    return [*sync_commands(out, target), *redirects, *invalidation_command(target, invalidation_paths(changes))]


def extensionless_pages(out: Path) -> Iterator[str]:
    """Yield pages written as NAME.html (a url_pattern without a trailing '/'), which S3 serves only as NAME.html."""
    for path in out.rglob("*.html"):
        if path.name not in ("index.html", "404.html"):
            yield path.relative_to(out).as_posix()


def run_commands(commands: list[list[str]], echo: Callable[[str], None]) -> None:
    """Run each command in order; the first that fails stops the publish with a ClickException."""
    if shutil.which("aws") is None:
        raise click.ClickException("the `aws` command line is not on PATH; install AWS CLI v2 "
                                   "(https://docs.aws.amazon.com/cli/) or use --dry-run to print the commands")
    for number, argv in enumerate(commands, start=1):
        echo(shlex.join(argv))
        code = subprocess.run(argv, check=False).returncode  # an argv list: no shell parses it
        if code:
            raise click.ClickException(
                f"`{' '.join(argv[:3])}` (command {number} of {len(commands)}) failed with exit code {code}; "
                f"the {len(commands) - number} later commands did not run. The bucket may hold part of the new "
                "site: fix the cause (credentials, permissions, bucket name) and publish again.")
