"""Map character offsets of the text YAML parsed back to line:column of the file the user wrote.

``${VAR}`` expansion happens before parsing, so a YAML mark points into the expanded text.
A :class:`SourceMap` remembers where each substitution happened so that every position we
report names the place in the user's file (a node inside a substituted value maps to the
start of the ``${...}`` that produced it).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Position:
    """A 1-based line and column in the user's file."""

    line: int
    column: int


@dataclass(frozen=True)
class Substitution:
    """``original[original_start:original_end]`` became ``expanded[expanded_start:expanded_end]``."""

    original_start: int
    original_end: int
    expanded_start: int
    expanded_end: int


@dataclass
class SourceMap:
    """Offsets in the expanded text -> positions in the original text."""

    original: str
    substitutions: list[Substitution] = field(default_factory=list)
    _line_starts: list[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._line_starts = [0] + [i + 1 for i, ch in enumerate(self.original) if ch == "\n"]

    def original_offset(self, expanded_offset: int) -> int:
        """The offset in the original text that produced ``expanded_offset``."""
        shift = 0
        for sub in self.substitutions:
            if expanded_offset < sub.expanded_start:
                break
            if expanded_offset < sub.expanded_end:
                return sub.original_start
            shift = sub.original_end - sub.expanded_end
        return max(0, expanded_offset + shift)

    def position_of_original(self, offset: int) -> Position:
        """Line and column (1-based) of an offset in the original text."""
        offset = min(max(offset, 0), len(self.original))
        line_index = bisect.bisect_right(self._line_starts, offset) - 1
        return Position(line_index + 1, offset - self._line_starts[line_index] + 1)

    def position(self, expanded_offset: int) -> Position:
        """Line and column (1-based) in the user's file of an offset in the expanded text."""
        return self.position_of_original(self.original_offset(expanded_offset))
