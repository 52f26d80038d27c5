"""Standard five-field cron schedules, as CronJob ``spec.schedule`` accepts them.

Fields: minute hour day-of-month month day-of-week, each a comma list of ``*``, ``N``, ``A-B``,
with an optional ``/STEP``; month and weekday names (``jan``, ``mon``); ``?`` as ``*`` in the day
fields; ``7`` as Sunday; the ``@yearly``/``@annually``/``@monthly``/``@weekly``/``@daily``/
``@midnight``/``@hourly`` shorthands. When both day fields are restricted a day matching either
runs (the Vixie cron rule). Times are naive wall-clock datetimes at minute resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {name: i + 1 for i, name in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
_WEEKDAYS = {name: i for i, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
# Far enough to cross any leap-year-only schedule (Feb 29) and give up on impossible ones (Feb 30).
_SEARCH_YEARS = 9
_MINUTE = timedelta(minutes=1)


class CronError(ValueError):
    pass


@dataclass(frozen=True)
class _FieldSpec:
    name: str
    low: int
    high: int
    names: dict[str, int]


_FIELDS = (
    _FieldSpec("minute", 0, 59, {}),
    _FieldSpec("hour", 0, 23, {}),
    _FieldSpec("day of month", 1, 31, {}),
    _FieldSpec("month", 1, 12, _MONTHS),
    _FieldSpec("day of week", 0, 7, _WEEKDAYS),
)


@dataclass(frozen=True)
class CronSchedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]  # 0 = Sunday
    any_day_of_month: bool
    any_day_of_week: bool

    @classmethod
    def parse(cls, text: str) -> CronSchedule:
        expression = text.strip()
        expression = _MACROS.get(expression.lower(), expression)
        if expression.startswith("@"):
            raise CronError(f"unrecognized descriptor: {expression}")
        parts = expression.split()
        if len(parts) != 5:
            raise CronError(f"expected exactly 5 fields, found {len(parts)}: {text!r}")
        parsed = [_parse_field(part, spec) for part, spec in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(0 if d == 7 else d for d in parsed[4][0])
        return cls(parsed[0][0], parsed[1][0], parsed[2][0], parsed[3][0], weekdays, parsed[2][1], parsed[4][1])

    def day_matches(self, moment: datetime) -> bool:
        in_month = moment.day in self.days_of_month
        in_week = moment.isoweekday() % 7 in self.days_of_week
        if self.any_day_of_month or self.any_day_of_week:
            return in_month and in_week
        return in_month or in_week

    def matches(self, moment: datetime) -> bool:
        return (
            moment.month in self.months
            and self.day_matches(moment)
            and moment.hour in self.hours
            and moment.minute in self.minutes
        )

    def next_after(self, moment: datetime) -> datetime | None:
        """The first matching minute strictly after ``moment``; None for a schedule that never fires."""
        candidate = moment.replace(second=0, microsecond=0) + _MINUTE
        give_up = candidate.year + _SEARCH_YEARS
        while candidate.year <= give_up:
            if candidate.month not in self.months:
                candidate = _first_of_next_month(candidate)
            elif not self.day_matches(candidate):
                candidate = candidate.replace(hour=0, minute=0) + timedelta(days=1)
            elif candidate.hour not in self.hours:
                candidate = candidate.replace(minute=0) + timedelta(hours=1)
            elif candidate.minute not in self.minutes:
                candidate += _MINUTE
            else:
                return candidate
        return None

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The last matching minute at or before ``moment``; None when there is none in reach."""
        candidate = moment.replace(second=0, microsecond=0)
        give_up = candidate.year - _SEARCH_YEARS
        while candidate.year >= give_up:
            if candidate.month not in self.months:
                candidate = candidate.replace(day=1, hour=0, minute=0) - _MINUTE
            elif not self.day_matches(candidate):
                candidate = candidate.replace(hour=0, minute=0) - _MINUTE
            elif candidate.hour not in self.hours:
                candidate = candidate.replace(minute=0) - _MINUTE
            elif candidate.minute not in self.minutes:
                candidate -= _MINUTE
            else:
                return candidate
        return None


def _first_of_next_month(moment: datetime) -> datetime:
    if moment.month == 12:
        return moment.replace(year=moment.year + 1, month=1, day=1, hour=0, minute=0)
    return moment.replace(month=moment.month + 1, day=1, hour=0, minute=0)


def _parse_field(text: str, spec: _FieldSpec) -> tuple[frozenset[int], bool]:
    """The values a field allows, and whether it is unrestricted (``*``)."""
    values: set[int] = set()
    unrestricted = True
    for item in text.split(","):
        if not item:
            raise CronError(f"empty item in {spec.name} field {text!r}")
        range_text, _, step_text = item.partition("/")
        step = _number(step_text, spec) if step_text else 1
        if step <= 0:
            raise CronError(f"step must be positive in {spec.name} field {text!r}")
        if range_text in ("*", "?"):
            if range_text == "?" and spec.name not in ("day of month", "day of week"):
                raise CronError(f"'?' is only allowed in the day fields, not in {spec.name}")
            low, high = spec.low, spec.high
            if step > 1:
                unrestricted = False
        else:
            unrestricted = False
            low_text, dash, high_text = range_text.partition("-")
            low = _value(low_text, spec)
            high = _value(high_text, spec) if dash else (spec.high if step_text else low)
            if low > high:
                raise CronError(f"beginning of range ({low}) beyond end of range ({high}): {text!r}")
        values.update(range(low, high + 1, step))
    return frozenset(values), unrestricted


def _value(text: str, spec: _FieldSpec) -> int:
    named = spec.names.get(text.lower())
    value = named if named is not None else _number(text, spec)
    if not spec.low <= value <= spec.high:
        raise CronError(f"{spec.name} value {value} out of range [{spec.low}-{spec.high}]")
    return value


def _number(text: str, spec: _FieldSpec) -> int:
    if not text.isdigit():
        raise CronError(f"failed to parse {text!r} in the {spec.name} field")
    return int(text)
