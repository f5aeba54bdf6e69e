"""The one shape of every problem a user sees: `path:line: message`."""

from __future__ import annotations

from dataclasses import dataclass

import click


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """A place in the site's source: a site-relative path and a 1-based line (0: the whole file)."""

    path: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One thing wrong with the input, where it is and what is allowed instead."""

    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class InputError(click.ClickException):
    """Bad input: every problem found at one stage, printed sorted, exit code 1."""

    exit_code = 1

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))

    def __reduce__(self) -> tuple[type[InputError], tuple[list[Problem]]]:
        return (InputError, (self.problems,))  # raised in a worker process, re-raised in the main one

    def format_message(self) -> str:
        count = len(self.problems)
        return f"{self.message}\n{count} problem{'s' if count != 1 else ''} found; nothing was written."

    def show(self, file: object = None) -> None:
        click.echo(self.format_message(), err=True)


class UsageProblem(click.UsageError):
    """Bad command-line usage (exit code 2)."""


class LockHeld(click.ClickException):
    """Another build holds the lock on the output folder (exit code 3)."""

    exit_code = 3
