"""Safe YAML that remembers where every key and list item came from.

PyYAML composes the node tree (no object construction at all); this module turns nodes into
plain dicts, lists and scalars itself, so only the standard tags are accepted, aliases are
expanded under a size bound, and each mapping and list carries the line of each of its entries.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml

from .errors import Location, Problem

MAX_FILE_BYTES = 8 * 1024 * 1024
COMPOSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when the wheel has it: 5x faster
MAX_NODES = 500_000  # after alias expansion: a "billion laughs" file stops here
_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}


class YamlMap(dict[str, Any]):
    """A mapping that knows its own line and the line of each key."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.lines: dict[str, int] = {}


class YamlList(list[Any]):
    """A list that knows its own line and the line of each item."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.lines: list[int] = []


class _Refused(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


class _Converter:
    def __init__(self) -> None:
        self.nodes = 0
        self.constructor = yaml.SafeLoader("")
        self.active: set[int] = set()

    def convert(self, node: yaml.Node) -> Any:
        self.nodes += 1
        line = node.start_mark.line + 1
        if self.nodes > MAX_NODES:
            raise _Refused(line, f"more than {MAX_NODES:,} values after expanding aliases; refused")
        if id(node) in self.active:
            raise _Refused(line, "an alias refers to itself; refused")
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, line)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return self.sequence(node, line)
            return self.mapping(node, line)
        finally:
            self.active.discard(id(node))

    def scalar(self, node: yaml.ScalarNode, line: int) -> Any:
        if node.tag not in _SCALAR_TAGS:
            raise _Refused(line, f"the tag {node.tag} is not allowed (only plain YAML values)")
        value = self.constructor.construct_object(node)
        if isinstance(value, dt.datetime):
            return value.date()
        return value

    def sequence(self, node: yaml.SequenceNode, line: int) -> YamlList:
        if node.tag != "tag:yaml.org,2002:seq":
            raise _Refused(line, f"the tag {node.tag} is not allowed (only plain YAML values)")
        out = YamlList(line)
        for item in node.value:
            out.append(self.convert(item))
            out.lines.append(item.start_mark.line + 1)
        return out

    def mapping(self, node: yaml.MappingNode, line: int) -> YamlMap:
        if node.tag != "tag:yaml.org,2002:map":
            raise _Refused(line, f"the tag {node.tag} is not allowed (only plain YAML values)")
        out = YamlMap(line)
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _Refused(key_line, "merge keys (<<) are not allowed; write the fields out")
            key = self.convert(key_node)
            if not isinstance(key, str):
                raise _Refused(key_line, f"a key must be text, not {key!r}")
            if key in out:
                raise _Refused(key_line, f"the key '{key}' appears twice in one record")
            out[key] = self.convert(value_node)
            out.lines[key] = key_line
        return out


def parse_yaml(text: str, path: str) -> tuple[Any, list[Problem]]:
    """Return the document in `text` as YamlMap/YamlList/scalars, or None and its problems."""
    try:
        node = yaml.compose(text, Loader=COMPOSER)
    except RecursionError:
        return None, [Problem(Location(path, 1), "nested too deeply; refused")]
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 0
        reason = error.problem or error.context or "not valid YAML"
        if "nesting depth" in reason:  # libyaml's own bound on deep nesting
            return None, [Problem(Location(path, line), "nested too deeply; refused")]
        return None, [Problem(Location(path, line), f"not valid YAML: {reason}")]
    except yaml.YAMLError as error:
        return None, [Problem(Location(path), f"not valid YAML: {error}")]
    if node is None:
        return None, []
    try:
        return _Converter().convert(node), []
    except _Refused as refused:
        return None, [Problem(Location(path, refused.line), str(refused))]
    except yaml.constructor.ConstructorError as error:
        line = error.problem_mark.line + 1 if error.problem_mark else 0
        return None, [Problem(Location(path, line), f"not valid YAML: {error.problem}")]
    except RecursionError:
        return None, [Problem(Location(path, 1), "nested too deeply; refused")]


def read_text(file: Path, path: str) -> tuple[str | None, list[Problem]]:
    """Return a source file's text, or None and a problem if it is too large or not UTF-8."""
    try:
        raw = file.read_bytes()
    except OSError as error:
        return None, [Problem(Location(path), f"cannot be read: {error.strerror}")]
    if len(raw) > MAX_FILE_BYTES:
        return None, [Problem(Location(path), f"larger than {MAX_FILE_BYTES // 2**20} MB; refused")]
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        return None, [Problem(Location(path, line), "not UTF-8 text; save the file as UTF-8")]


def load_yaml_file(file: Path, path: str) -> tuple[Any, list[Problem]]:
    """Return the parsed YAML file, or None and every problem that stops it being read."""
    text, problems = read_text(file, path)
    if text is None:
        return None, problems
    return parse_yaml(text, path)
