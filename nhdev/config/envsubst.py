"""``${VAR}`` / ``${VAR:-default}`` expansion of the config text before YAML parsing.

Only these two forms are expanded (as Nocalhost does for the common cases); ``$${VAR}`` is an
escape for a literal ``${VAR}`` (e.g. a shell variable meant for the dev container). Anything
else that starts with ``$`` is left as written. YAML comments are left alone so that a
commented-out ``${VAR}`` never makes a file invalid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from nhdev.config.source_map import Position, SourceMap, Substitution

_PLACEHOLDER = re.compile(r"\$(?P<escape>\$)?\{(?P<body>[^}\n]*)\}")
_BODY = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<has_default>:-(?P<default>.*))?", re.DOTALL)
_INCLUDE = "_INCLUDE_"


@dataclass
class Expansion:
    """The expanded text, where it came from, and what could not be expanded."""

    text: str
    source_map: SourceMap
    problems: list[tuple[Position, str]] = field(default_factory=list)


def expand(text: str, env: Mapping[str, str]) -> Expansion:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in ``text`` from ``env``."""
    pieces: list[str] = []
    substitutions: list[Substitution] = []
    problems: list[tuple[Position, str]] = []
    source_map = SourceMap(text)
    copied_to = 0
    expanded_length = 0
    for match in _PLACEHOLDER.finditer(text):
        if _in_comment(text, match.start()):
            continue
        replacement = _replacement(match, env, source_map, problems)
        if replacement is None:
            continue
        literal = text[copied_to : match.start()]
        pieces.append(literal)
        expanded_length += len(literal)
        substitutions.append(
            Substitution(match.start(), match.end(), expanded_length, expanded_length + len(replacement))
        )
        pieces.append(replacement)
        expanded_length += len(replacement)
        copied_to = match.end()
    pieces.append(text[copied_to:])
    source_map.substitutions.extend(substitutions)
    return Expansion("".join(pieces), source_map, problems)


def _replacement(
    match: re.Match[str],
    env: Mapping[str, str],
    source_map: SourceMap,
    problems: list[tuple[Position, str]],
) -> str | None:
    """The text replacing one placeholder; None leaves it as written."""
    body = _BODY.fullmatch(match.group("body"))
    if match.group("escape"):
        return match.group(0)[1:]
    if body is None:
        return None
    name = body.group("name")
    where = source_map.position_of_original(match.start())
    if name == _INCLUDE:
        problems.append((where, "${_INCLUDE_:-...} includes are not supported (expected a self-contained file)"))
        return None
    value = env.get(name)
    if value:
        return value
    if body.group("has_default") is not None:
        return body.group("default")
    if value is not None:
        return ""
    # Left as written: the YAML still reads the same way, so other problems are still found.
    problems.append((where, f"${{{name}}} is not set (expected it in the environment, or write ${{{name}:-default}})"))
    return None


def _in_comment(text: str, offset: int) -> bool:
    """Whether ``offset`` lies in a YAML comment: after an unquoted ``#`` that starts a token."""
    line_start = text.rfind("\n", 0, offset) + 1
    quote: str | None = None
    previous = " "
    for ch in text[line_start:offset]:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'" and previous in " \t:[{,-":
            quote = ch
        elif ch == "#" and previous in " \t":
            return True
        previous = ch
    return False
