"""Typed reads of one YAML record, each failure a Problem at the field's own line."""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import Location, Problem
from .yamlsrc import YamlList, YamlMap

SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
URL_UNSAFE = re.compile(r"[\s<>\"'`\\]")  # what a page could not carry inside an attribute
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufdd0-\ufdef\ufffe\uffff]")


def shown(value: object) -> str:
    """Return a value as a message may quote it: control characters escaped, on one line."""
    return CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", " ".join(str(value).split()))
T = TypeVar("T")


def type_name(value: object) -> str:
    """Return how a YAML value's type reads to a marketer."""
    if value is None:
        return "empty (null)"
    names = {bool: "true/false", int: "a number", float: "a number", str: "text"}
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return names.get(type(value), type(value).__name__)


class Record:
    """Reads the fields of one mapping, collecting a Problem for each bad or unknown field."""

    def __init__(self, raw: Any, path: str, label: str, problems: list[Problem], line: int = 0):
        self.path = path
        self.label = label
        self.problems = problems
        self.is_mapping = isinstance(raw, YamlMap)
        self.raw: YamlMap = raw if isinstance(raw, YamlMap) else YamlMap(line)
        self.line = self.raw.line if self.is_mapping else line
        self.seen: set[str] = set()
        if not self.is_mapping:
            self.fail(None, f"must be a mapping of fields, not {type_name(raw)}")

    @property
    def origin(self) -> Location:
        """Return where the record starts."""
        return Location(self.path, self.line)

    def at(self, key: str | None) -> Location:
        """Return the location of one field (the record's own line if it is missing)."""
        return Location(self.path, self.raw.lines.get(key, self.line) if key else self.line)

    def fail(self, key: str | None, message: str) -> None:
        """Record a problem with one field."""
        where = f"{self.label}: {key}: " if key else f"{self.label}: "
        self.problems.append(Problem(self.at(key), where + message))

    def get(self, key: str, required: bool) -> Any:
        """Return a field's raw value, reporting it when required and absent or empty."""
        self.seen.add(key)
        value = self.raw.get(key)
        if required and key not in self.raw:
            self.fail(None, f"the required field '{key}' is missing")
        elif required and value is None:
            self.fail(key, "must not be empty")
        return value

    def text(self, key: str, required: bool = True, default: str = "", paragraphs: bool = False) -> str:
        """Return a non-empty text field, on one line; with `paragraphs`, each of its lines (in a
        folded block, each run of text between blank lines) on a line of its own."""
        value = self.get(key, required)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.fail(key, f"must be text, not {type_name(value)}")
            return default
        control = CONTROL.search(str(value))
        if control:
            self.fail(key, f"contains the control character U+{ord(control.group()):04X}; remove it")
            return default
        lines = str(value).split("\n") if paragraphs else [str(value)]
        value = "\n".join(" ".join(line.split()) for line in lines if line.strip())  # as htmlmin would
        if required and not value:
            self.fail(key, "must not be empty")
        return value

    def optional_text(self, key: str) -> str | None:
        """Return a text field, or None when it is absent."""
        return self.text(key, required=False) or None

    def slug(self, key: str = "slug") -> str:
        """Return a slug field: lowercase letters, digits and single hyphens."""
        value = self.text(key)
        if value and not SLUG.fullmatch(value):
            self.fail(key, f"'{shown(value)}' must use only a-z, 0-9 and single hyphens between them")
        return value

    def choice(self, key: str, allowed: tuple[str, ...], required: bool = True) -> str:
        """Return a text field that must be one of `allowed`."""
        value = self.text(key, required)
        if value and value not in allowed:
            self.fail(key, f"'{value}' is not one of {', '.join(allowed)}")
        return value

    def number(self, key: str, minimum: float = 0) -> float:
        """Return a finite number no smaller than `minimum`."""
        value = self.get(key, True)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            if value is not None:
                self.fail(key, f"must be a number, not {type_name(value)}")
            return minimum
        if value < minimum:
            self.fail(key, f"must be at least {minimum}, not {value}")
        return value

    def date(self, key: str, required: bool = True) -> dt.date | None:
        """Return a date written as YYYY-MM-DD."""
        value = self.get(key, required)
        if value is None:
            return None
        if not isinstance(value, dt.date):
            self.fail(key, f"must be a date written YYYY-MM-DD, not {value!r}")
            return None
        return value

    def https_url(self, key: str, required: bool = True) -> str:
        """Return an absolute https URL."""
        value = self.text(key, required)
        if value and not is_https_url(value):
            self.fail(key, f"'{value}' must be an absolute https:// address")
        return value

    def items(self, key: str, required: bool = True) -> list[tuple[Any, int]]:
        """Return a list field's items with their lines."""
        value = self.get(key, required)
        if value is None:
            return []
        if not isinstance(value, YamlList):
            self.fail(key, f"must be a list, not {type_name(value)}")
            return []
        if required and not value:
            self.fail(key, "must not be an empty list")
        return list(zip(value, value.lines, strict=True))

    def texts(self, key: str, required: bool = True) -> tuple[str, ...]:
        """Return a list of non-empty texts."""
        out = []
        for item, line in self.items(key, required):
            if isinstance(item, str) and CONTROL.search(item):
                self.problems.append(Problem(Location(self.path, line), f"{self.label}: {key}: contains a control "
                                             "character; remove it"))
            elif isinstance(item, str) and item.strip():
                out.append(" ".join(item.split()))
            elif isinstance(item, (int, float)) and not isinstance(item, bool):
                out.append(str(item))
            else:
                self.problems.append(
                    Problem(Location(self.path, line), f"{self.label}: {key}: each item must be text")
                )
        return tuple(out)

    def records(self, key: str, read: Callable[[Record], T], required: bool = True) -> tuple[T, ...]:
        """Return a list of sub-records, each read by `read`."""
        out = []
        for index, (item, line) in enumerate(self.items(key, required)):
            sub = Record(item, self.path, f"{self.label}: {key}[{index + 1}]", self.problems, line)
            out.append(read(sub))
            sub.finish()
        return tuple(out)

    def mapping(self, key: str) -> Record | None:
        """Return a nested mapping as a Record, or None when absent."""
        self.seen.add(key)
        if self.raw.get(key) is None:
            return None
        return Record(self.raw[key], self.path, f"{self.label}: {key}", self.problems, self.at(key).line)

    def finish(self) -> None:
        """Report every field that no read asked for, naming the nearest known field."""
        for key in self.raw:
            if key not in self.seen:
                near = difflib.get_close_matches(key, sorted(self.seen), n=1)
                hint = f"; did you mean '{near[0]}'?" if near else f"; known: {', '.join(sorted(self.seen))}"
                self.fail(key, "is not a known field" + hint)


def is_https_url(value: str) -> bool:
    """Return True for an absolute https URL with a host and nothing a page could not carry."""
    parts = urllib.parse.urlsplit(value)
    return (
        parts.scheme == "https"
        and bool(parts.hostname)
        and not URL_UNSAFE.search(value)
    )
