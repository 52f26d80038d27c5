"""Time as the controllers see it: the system clock, or a manual one tests move forward.

Only deadlines (minReadySeconds, progress deadlines, cron schedules, TTLs) go through the clock;
the periodic resync runs on real time so a manual clock never stalls the controllers.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))


class ManualClock:
    """A clock that only moves when told to; sleepers wake once it has been advanced past their deadline."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        wake_at = self._now + timedelta(seconds=seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((wake_at, future))
        await future

    def advance(self, seconds: float) -> None:
        self.set(self._now + timedelta(seconds=seconds))

    def set(self, moment: datetime) -> None:
        self._now = moment
        still_sleeping = []
        for wake_at, future in self._sleepers:
            if future.done():
                continue
            if wake_at <= moment:
                future.set_result(None)
            else:
                still_sleeping.append((wake_at, future))
        self._sleepers = still_sleeping
