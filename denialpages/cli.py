"""The command line: build, check, list. Maps errors to exit codes (SPEC §3).

Each command imports the stages it runs when it runs: a build that finds nothing changed
starts without loading Jinja, Markdown or YAML.
"""

from __future__ import annotations

import errno
import os
import shlex
import sys
import time
import traceback
from pathlib import Path

import click

from . import indexnow, lastbuild
from .changes import changes_path, read_changes
from .errors import UsageProblem
from .plan import Shard
from .progress import Progress

REPORT_BUGS = "This is a bug in the generator. Please report it with the traceback above to the DenialHelp site team."
SOURCE_FOLDERS = ("data", "content", "templates")
WRITE_FAILURES = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR}


def resolve_site(site: str | None) -> Path:
    """Return the site folder: --site, or the folder holding build.py (the current one)."""
    root = Path(site) if site else Path(sys.argv[0]).resolve().parent if sys.argv[0].endswith("build.py") else Path.cwd()
    root = root.resolve()
    if not root.is_dir():
        raise UsageProblem(f"--site {root} is not a folder")
    return root


def resolve_out(root: Path, out: str | None) -> Path:
    """Return the output folder, refusing one whose replacement would destroy something."""
    target = (Path(out) if out else root / "out").resolve()
    if target == Path(target.anchor):
        raise UsageProblem(f"--out {target} is the root of the file system; choose a folder of its own")
    if target.is_file():
        raise UsageProblem(f"--out {target} is a file; choose a folder")
    for parent in target.parents:
        if parent.exists() and not parent.is_dir():
            raise UsageProblem(f"--out {target}: {parent} is a file, not a folder")
    if target == root or target in root.parents:
        raise UsageProblem(f"--out {target} holds the site's own sources; choose a folder inside or beside it")
    for name in SOURCE_FOLDERS:
        if target == root / name or (root / name) in target.parents:
            raise UsageProblem(f"--out {target} is inside the site's {name}/ folder; choose another")
    return target


site_option = click.option("--site", type=click.Path(file_okay=False), help="Site folder holding data/, content/, templates/.")
out_option = click.option("--out", type=click.Path(), help="Output folder (default: SITE/out).")


@click.group()
def cli() -> None:
    """Build DenialHelp's landing pages from data/, content/ and templates/."""


def parse_shard(ctx: click.Context, param: click.Parameter, value: str) -> Shard:
    """Return the shard I/N named on the command line (1 <= I <= N)."""
    index, _, count = value.partition("/")
    if not (index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise click.BadParameter(f"'{value}' is not I/N with 1 <= I <= N (for example 2/4)")
    return Shard(int(index), int(count))


jobs_option = click.option("--jobs", type=click.IntRange(min=1, max=512), default=os.cpu_count() or 1,
                           show_default=True, help="Worker processes that render pages.")
quiet_option = click.option("--quiet", "-q", is_flag=True, help="Print only problems.")
verbose_option = click.option("--verbose", "-v", is_flag=True, help="Also list exclusions and the URLs that changed.")


@cli.command()
@site_option
@out_option
@jobs_option
@click.option("--shard", default="1/1", callback=parse_shard, metavar="I/N",
              help="Render only the pages of shard I of N (site-wide files come out the same from every shard).")
@click.option("--full", is_flag=True, help="Ignore the incremental cache and render every page.")
@quiet_option
@verbose_option
def build(site: str | None, out: str | None, jobs: int, shard: Shard, full: bool,
          quiet: bool, verbose: bool) -> None:
    """Build the site into --out (replaced only when the new build is complete)."""
    started = time.perf_counter()
    root = resolve_site(site)
    target = resolve_out(root, out)
    try:
        report, inputs = lastbuild.reusable_build(root, target, shard, True, full, started)
        if report is None:
            from . import pipeline

            report = pipeline.build_site(root, target, jobs=jobs, shard=shard, full=full,
                                         progress=None if quiet else Progress(), inputs=inputs)
    except OSError as error:
        if error.errno not in WRITE_FAILURES:
            raise
        raise click.ClickException(f"cannot write {error.filename or 'into ' + str(target.parent)}: "
                                   f"{error.strerror}; {target} was left as it was") from None
    if report.warning:
        click.echo(f"warning: {report.warning}", err=True)
    for line in report.duplicates:
        click.echo(f"warning: {line}", err=True)
    if quiet:
        return
    click.echo(report.summary("Built"))
    for exclusion in report.exclusions:
        click.echo(f"  excluded {exclusion.count:,}: {exclusion.rule}" + (f" ({exclusion.reason})" if exclusion.reason else ""))
    click.echo(f"  report: {lastbuild.report_dir(target) / 'report.html'}")
    changes = target.parent / f"{target.name}-changes.txt"
    if verbose and report.files and changes.is_file():
        click.echo(changes.read_text(encoding="utf-8").rstrip())


@cli.command()
@site_option
@jobs_option
@quiet_option
def check(site: str | None, jobs: int, quiet: bool) -> None:
    """Validate data, content, templates, links and the quality gate; write nothing."""
    from . import pipeline

    report = pipeline.check_site(resolve_site(site), jobs=jobs)
    for line in report.duplicates:
        click.echo(f"warning: {line}", err=True)
    if not quiet:
        click.echo(report.summary("Checked"))


@cli.command("list")
@site_option
def list_command(site: str | None) -> None:
    """Print every planned page: URL, payer, procedure, denial type, content layer."""
    from . import pipeline

    plan, standing = pipeline.list_pages(resolve_site(site))
    click.echo("url\tpayer\tprocedure\tdenial_type\tlayer\tindexable\twhy")
    for index, page in enumerate(plan.pages):
        indexable = "yes" if standing.is_indexable(index) else "no"
        click.echo(f"{page.url}\t{page.payer}\t{page.procedure}\t{page.denial_type}\t{page.layer}\t{indexable}"
                   f"\t{standing.reason(index, plan)}")


@cli.command()
@site_option
@out_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (any other gets a warning).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port (0: any free one).")
def serve(site: str | None, out: str | None, host: str, port: int) -> None:
    """Build, serve --out on 127.0.0.1, rebuild and reload the page on every edit."""
    root = resolve_site(site)
    from .serve import serve_site

    serve_site(root, resolve_out(root, out), host, port)


@cli.command()
@site_option
@click.argument("payer")
@click.argument("procedure")
@click.argument("denial")
@click.option("--force", is_flag=True, help="Replace the content file if it exists.")
def new(site: str | None, payer: str, procedure: str, denial: str, force: bool) -> None:
    """Write content/PAYER/PROCEDURE/DENIAL.md, pre-filled from the data."""
    root = resolve_site(site)
    from .scaffold import write_scaffold

    written = write_scaffold(root, payer, procedure, denial, force)
    click.echo(f"Wrote {root / written.path}\nPage: {written.url}\n"
               f"Preview: run `python build.py serve`, then open {written.preview_url}\n"
               "Replace each TODO line with what you know; `python build.py check` says when the page "
               "is too close to another.")


def built_out(root: Path, out: str | None) -> Path:
    """Return the output folder of a finished build, or raise ClickException when nothing was built there."""
    target = resolve_out(root, out)
    if not (target / "index.html").is_file():
        raise click.ClickException(f"{target} holds no built site; run `python build.py build` first")
    return target


@cli.command("publish-s3")
@site_option
@out_option
@click.option("--bucket", required=True, help="S3 bucket that serves the site.")
@click.option("--prefix", help="Key prefix (folder) inside the bucket; default: the bucket's root.")
@click.option("--distribution", help="CloudFront distribution ID whose cache to invalidate.")
@click.option("--website-redirect", is_flag=True, help="Also give redirect pages S3's own 301 (website endpoint).")
@click.option("--dry-run", is_flag=True, help="Print the aws commands instead of running them.")
def publish_s3_command(site: str | None, out: str | None, bucket: str, prefix: str | None,
                       distribution: str | None, website_redirect: bool, dry_run: bool) -> None:
    """Upload --out to S3 with each file's type and cache rule, delete what left, invalidate CloudFront."""
    started = time.perf_counter()
    from . import publish_s3

    target = publish_s3.make_target(bucket, prefix, distribution, website_redirect)
    folder = built_out(resolve_site(site), out)
    changes = read_changes(folder)
    if changes is None and distribution:
        click.echo(f"warning: no {changes_path(folder).name} beside {folder}; invalidating /*", err=True)
    if next(publish_s3.extensionless_pages(folder), None):
        click.echo("warning: pages are NAME.html files (url_pattern without a trailing '/'); S3 serves "
                   "/NAME only through a CloudFront Function that adds .html (see README, Publishing)", err=True)
    commands = publish_s3.publish_commands(folder, target, changes)
    if dry_run:
        click.echo("\n".join(shlex.join(argv) for argv in commands))
    else:
        publish_s3.run_commands(commands, click.echo)
    paths = commands[-1][6:] if distribution and commands[-1][1] == "cloudfront" else []
    click.echo(f"{'Would publish' if dry_run else 'Published'} {folder} to {target.uri} with {len(commands)} aws "
               f"commands ({len(paths):,} CloudFront paths invalidated) in {time.perf_counter() - started:.2f} s")


@cli.command("indexnow")
@site_option
@out_option
@click.option("--endpoint", default=indexnow.ENDPOINT, show_default=True, help="IndexNow endpoint to POST to.")
@click.option("--dry-run", is_flag=True, help="Print the JSON bodies instead of sending them.")
def indexnow_command(site: str | None, out: str | None, endpoint: str, dry_run: bool) -> None:
    """Tell search engines (IndexNow) which URLs the last build added, changed or removed."""
    started = time.perf_counter()
    root = resolve_site(site)
    if not endpoint.startswith(("https://", "http://")):
        raise UsageProblem(f"--endpoint '{endpoint}' must be an http:// or https:// address")
    from .load import load_site

    data = load_site(root)
    key = data.site.indexnow_key
    if not key:
        raise click.ClickException("data/site.yaml has no indexnow_key: add one (8-128 letters, digits and "
                                   "hyphens), build and publish, then run indexnow")
    folder = built_out(root, out)
    key_file = folder / indexnow.key_file_name(key)
    if not key_file.is_file() or key_file.read_text(encoding="ascii", errors="replace") != key:
        raise click.ClickException(f"{key_file} is missing or stale; build and publish the site before submitting")
    changes = read_changes(folder)
    if changes is None:
        raise click.ClickException(f"no {changes_path(folder)}; build first (it lists the URLs to submit)")
    urls = indexnow.submitted_urls(data.site, changes)
    batches = list(indexnow.submissions(data.site, urls))
    for batch in batches:
        if dry_run:
            click.echo(batch.body().decode("utf-8"))
            continue
        try:
            status = indexnow.submit(endpoint, batch)
        except RuntimeError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"{endpoint} answered {status} for {len(batch.urls):,} URLs")
    click.echo(f"{'Would submit' if dry_run else 'Submitted'} {len(urls):,} URLs in {len(batches)} requests "
               f"to {endpoint} in {time.perf_counter() - started:.2f} s")


def main() -> None:
    """Run the command line; a bug prints its traceback and exits 70."""
    try:
        cli.main(standalone_mode=True)
    except SystemExit:
        raise
    except OSError as error:
        if error.errno not in WRITE_FAILURES:
            traceback.print_exc()
            click.echo(REPORT_BUGS, err=True)
            sys.exit(70)
        click.echo(f"Error: cannot write {error.filename or 'the output'}: {error.strerror}; "
                   "the previous output folder was left as it was.", err=True)
        sys.exit(1)
    except Exception:  # a bug, never bad input: InputError is a ClickException handled above
        traceback.print_exc()
        click.echo(REPORT_BUGS, err=True)
        sys.exit(70)
