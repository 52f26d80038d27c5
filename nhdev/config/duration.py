"""Durations such as ``8h``, ``90m``, ``1h30m``, ``2d`` (nhdev's ``duplicate.ttl``)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(?:[0-9]{1,6}[smhd])+")
_PART = re.compile(r"([0-9]+)([smhd])")
_EXPECTED = 'expected a duration such as "8h", "90m", "1h30m" or "2d"'


def duration_seconds(text: str) -> int:
    """Seconds in a duration string; ValueError if it is not one."""
    if not _DURATION.fullmatch(text):
        raise ValueError(f"{text[:40]!r} is not a duration ({_EXPECTED})")
    return sum(int(amount) * _UNIT_SECONDS[unit] for amount, unit in _PART.findall(text))


def _as_duration_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a duration ({_EXPECTED})")
    if duration_seconds(value.strip()) <= 0:
        raise ValueError(f"{value!r} is zero ({_EXPECTED})")
    return value.strip()


Duration = Annotated[str, BeforeValidator(_as_duration_text)]
