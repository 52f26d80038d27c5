"""Dotenv files (``envFrom.envFile``): ``KEY=VALUE`` lines, ``export`` allowed, ``#`` comments, quotes."""

from __future__ import annotations

import re

_LINE = re.compile(r"(?:export\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(?P<value>.*)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def parse_dotenv(text: str) -> tuple[dict[str, str], list[tuple[int, str]]]:
    """The variables of a dotenv text, and (line number, message) for lines that are not ``KEY=VALUE``."""
    variables: dict[str, str] = {}
    problems: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            problems.append((number, f"{line[:40]!r} is not a variable (expected KEY=VALUE)"))
            continue
        variables[match.group("name")] = _value(match.group("value"))
    return variables, problems


def _value(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1]
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), text[1:-1])
    return re.sub(r"\s+#.*$", "", text).strip()
