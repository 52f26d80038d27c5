"""YAML text -> plain data plus the position of every node, safely.

PyYAML's ``compose`` (safe resolver) gives nodes with marks; we build the data ourselves
instead of using a constructor so that we know, for every path in the data, where its value
and its key are in the file. Only the YAML core types are built; any other tag, alias bombs,
recursive aliases, deep nesting, duplicate keys and non-text keys become located problems.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from nhdev.config.source_map import Position

Loc = tuple[str | int, ...]

MAX_DEPTH = 64
MAX_VALUES = 100_000

_CORE = "tag:yaml.org,2002:"
_BUILT_TAGS = {f"{_CORE}{name}" for name in ("null", "bool", "int", "float", "str")}
# Kept as written: Nocalhost (Go) reads them into string fields as text.
_TEXT_TAGS = {f"{_CORE}timestamp", f"{_CORE}binary"}
_MERGE_TAG = f"{_CORE}merge"
_PLAIN = "expected plain YAML: mappings, lists, text, numbers, booleans"


@dataclass
class LocatedDocument:
    """Plain data and, per path, where the value (and the key naming it) are."""

    data: Any
    value_positions: dict[Loc, Position] = field(default_factory=dict)
    key_positions: dict[Loc, Position] = field(default_factory=dict)

    def position(self, loc: Loc, *, of_key: bool = False) -> Position:
        """The position of ``loc``, or of its nearest ancestor present in the file."""
        for end in range(len(loc), -1, -1):
            prefix = loc[:end]
            if of_key and end == len(loc) and prefix in self.key_positions:
                return self.key_positions[prefix]
            if prefix in self.value_positions:
                return self.value_positions[prefix]
        return Position(1, 1)


class YamlProblem(Exception):
    """The text is not a YAML document we can read; carries where and why."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


@dataclass
class _Builder:
    to_position: Callable[[int], Position]
    document: LocatedDocument = field(default_factory=lambda: LocatedDocument(None))
    values_built: int = 0
    in_progress: set[int] = field(default_factory=set)
    scalars: yaml.SafeLoader = field(default_factory=lambda: yaml.SafeLoader(""))

    def build(self, node: Node, loc: Loc) -> Any:
        self.values_built += 1
        if self.values_built > MAX_VALUES:
            raise _problem(node, f"aliases expand to more than {MAX_VALUES} values (expected fewer)")
        if len(loc) > MAX_DEPTH:
            raise _problem(node, f"nesting too deep (expected at most {MAX_DEPTH} levels)")
        if id(node) in self.in_progress:
            raise _problem(node, "an alias refers to a node containing it (expected no loops)")
        self.document.value_positions[loc] = self.to_position(node.start_mark.index)
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        self.in_progress.add(id(node))
        try:
            if isinstance(node, SequenceNode) and node.tag == f"{_CORE}seq":
                return [self.build(item, (*loc, index)) for index, item in enumerate(node.value)]
            if isinstance(node, MappingNode) and node.tag == f"{_CORE}map":
                return self._mapping(node, loc)
        finally:
            self.in_progress.discard(id(node))
        raise _problem(node, f"unsupported YAML tag {node.tag} ({_PLAIN})")

    def _scalar(self, node: ScalarNode) -> Any:
        if node.tag in _TEXT_TAGS:
            return node.value
        if node.tag not in _BUILT_TAGS:
            raise _problem(node, f"unsupported YAML tag {node.tag} ({_PLAIN})")
        if node.tag in {f"{_CORE}int", f"{_CORE}float"} and ":" in node.value:
            # YAML 1.1 base-60 numbers: "30:80" is a port pair, not 1880.
            return node.value
        try:
            return self.scalars.construct_object(node)
        except (ValueError, OverflowError, yaml.YAMLError):
            raise _problem(node, f"cannot read {node.value[:40]!r} (expected a well-formed, smaller value)") from None

    def _mapping(self, node: MappingNode, loc: Loc) -> dict[str, Any]:
        result: dict[str, Any] = {}
        explicit: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self._merge(value_node, loc, result, explicit)
                continue
            key = self._key(key_node)
            if key in explicit:
                raise _problem(key_node, f"duplicate key {key!r} (expected each key once)")
            explicit.add(key)
            self.document.key_positions[(*loc, key)] = self.to_position(key_node.start_mark.index)
            result[key] = self.build(value_node, (*loc, key))
        return result

    def _merge(self, value_node: Node, loc: Loc, result: dict[str, Any], explicit: set[str]) -> None:
        """``<<: *base`` — keys written in the mapping itself win over merged ones."""
        sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
        for source in sources:
            if not isinstance(source, MappingNode):
                raise _problem(source, "'<<' merges only mappings (expected a mapping or a list of mappings)")
            own_position = self.document.value_positions[loc]
            merged = self.build(source, loc)
            self.document.value_positions[loc] = own_position
            for key, value in merged.items():
                if key not in explicit and key not in result:
                    result[key] = value

    def _key(self, node: Node) -> str:
        if not isinstance(node, ScalarNode):
            raise _problem(node, "a list or mapping used as a key (expected a text key)")
        value = self._scalar(node)
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        return node.value


def compose_located(text: str, to_position: Callable[[int], Position]) -> LocatedDocument:
    """Parse one YAML document; raise :class:`YamlProblem` (with an offset) if it cannot be read."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise YamlProblem(mark.index if mark else 0, _yaml_message(err)) from None
    except yaml.reader.ReaderError as err:
        raise YamlProblem(
            err.position, f"character {err.character!r} is not allowed (expected printable text)"
        ) from None
    except yaml.YAMLError as err:
        raise YamlProblem(0, f"invalid YAML: {err}") from None
    except RecursionError:
        raise YamlProblem(0, f"nesting too deep (expected at most {MAX_DEPTH} levels)") from None
    builder = _Builder(to_position)
    if root is None:
        return builder.document
    builder.document.data = builder.build(root, ())
    return builder.document


def _problem(node: Node, message: str) -> YamlProblem:
    return YamlProblem(node.start_mark.index, message)


def _yaml_message(err: yaml.MarkedYAMLError) -> str:
    parts = [part for part in (err.context, err.problem) if part]
    return "invalid YAML: " + ("; ".join(parts) if parts else "cannot parse")
