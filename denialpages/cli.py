"""The command line: build, check, list. Maps errors to exit codes (SPEC §3)."""

from __future__ import annotations

import errno
import os
import sys
import traceback
from pathlib import Path

import click

from . import pipeline
from .errors import UsageProblem
from .progress import Progress
from .scaffold import write_scaffold
from .serve import serve_site

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


def parse_shard(ctx: click.Context, param: click.Parameter, value: str) -> pipeline.Shard:
    """Return the shard I/N named on the command line (1 <= I <= N)."""
    index, _, count = value.partition("/")
    if not (index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise click.BadParameter(f"'{value}' is not I/N with 1 <= I <= N (for example 2/4)")
    return pipeline.Shard(int(index), int(count))


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
def build(site: str | None, out: str | None, jobs: int, shard: pipeline.Shard, full: bool,
          quiet: bool, verbose: bool) -> None:
    """Build the site into --out (replaced only when the new build is complete)."""
    root = resolve_site(site)
    target = resolve_out(root, out)
    try:
        report = pipeline.build_site(root, target, jobs=jobs, shard=shard, full=full,
                                     progress=None if quiet else Progress())
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
    click.echo(f"  report: {pipeline.report_dir(target) / 'report.html'}")
    changes = target.parent / f"{target.name}-changes.txt"
    if verbose and report.files and changes.is_file():
        click.echo(changes.read_text(encoding="utf-8").rstrip())


@cli.command()
@site_option
@jobs_option
@quiet_option
def check(site: str | None, jobs: int, quiet: bool) -> None:
    """Validate data, content, templates, links and the quality gate; write nothing."""
    report = pipeline.check_site(resolve_site(site), jobs=jobs)
    for line in report.duplicates:
        click.echo(f"warning: {line}", err=True)
    if not quiet:
        click.echo(report.summary("Checked"))


@cli.command("list")
@site_option
def list_command(site: str | None) -> None:
    """Print every planned page: URL, payer, procedure, denial type, content layer."""
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
    written = write_scaffold(root, payer, procedure, denial, force)
    click.echo(f"Wrote {root / written.path}\nPage: {written.url}\n"
               f"Preview: run `python build.py serve`, then open {written.preview_url}\n"
               "Replace each TODO line with what you know; `python build.py check` says when the page "
               "is too close to another.")


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
