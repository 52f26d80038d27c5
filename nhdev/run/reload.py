"""Hot reload coalescing: a burst of changed paths becomes one restart request.

Sync reports batches of changed paths (already filtered by the hot-reload ignore rules). Saving
several files, or an editor writing a file in steps, gives several batches within milliseconds;
restarting the app for each would restart it mid-burst. :class:`ReloadDebouncer` is the pure
rule (no threads, time passed in): a restart is due once no change arrived for ``delay_ms``, or
``max_wait_ms`` after the first change of a burst that never quietens (a tool rewriting files
continuously must not postpone the restart forever). :class:`ReloadScheduler` drives it from a
thread and never runs two restarts at once: changes arriving during a restart give one more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable


class ReloadDebouncer:
    """The coalescing rule, with the clock passed in (``now`` in seconds, monotonic)."""

    def __init__(self, delay_ms: int = 300, *, max_wait_ms: int | None = None) -> None:
        if delay_ms < 0:
            raise ValueError("delay_ms must be >= 0")
        self.delay = delay_ms / 1000
        self.max_wait = (max_wait_ms if max_wait_ms is not None else max(5 * delay_ms, 1000)) / 1000
        self._paths: dict[str, None] = {}  # insertion-ordered set
        self._first: float | None = None
        self._last: float | None = None

    @property
    def pending(self) -> bool:
        return self._first is not None

    def changed(self, paths: Iterable[str], now: float) -> None:
        """Records a batch of changed paths; an empty batch is no change."""
        batch = list(paths)
        if not batch:
            return
        self._paths.update(dict.fromkeys(batch))
        if self._first is None:
            self._first = now
        self._last = now

    def deadline(self) -> float | None:
        """When the pending burst becomes due (None: nothing pending)."""
        if self._first is None or self._last is None:
            return None
        return min(self._last + self.delay, self._first + self.max_wait)

    def discard(self) -> None:
        """Forget the pending burst (a process just (re)started already runs that code)."""
        self._paths.clear()
        self._first = self._last = None

    def take_due(self, now: float) -> list[str] | None:
        """The paths of the burst if its restart is due at ``now`` (and forgets them), else None."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return None
        paths = list(self._paths)
        self.discard()
        return paths


class ReloadScheduler:
    """Runs ``restart(paths)`` in its own thread once per coalesced burst; see the module docstring."""

    def __init__(self, debouncer: ReloadDebouncer, restart: Callable[[list[str]], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._debouncer = debouncer
        self._restart = restart
        self._clock = clock
        self._wake = threading.Condition()
        self._stopped = False
        self.restarts = 0
        self._thread = threading.Thread(target=self._loop, daemon=True, name="hot reload")

    def start(self) -> ReloadScheduler:
        self._thread.start()
        return self

    def notify(self, paths: Iterable[str]) -> None:
        """Called by sync after each batch (thread-safe)."""
        with self._wake:
            self._debouncer.changed(paths, self._clock())
            self._wake.notify()

    def discard_pending(self) -> None:
        """Drop changes not yet acted on: called when run/debug is started by hand."""
        with self._wake:
            self._debouncer.discard()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            with self._wake:
                due = self._next_due()
                if due is None:
                    return
            self.restarts += 1
            self._restart(due)

    def _next_due(self) -> list[str] | None:
        """Waits (holding the condition) until a burst is due; None once stopped."""
        while not self._stopped:
            deadline = self._debouncer.deadline()
            now = self._clock()
            if deadline is not None and now >= deadline:
                return self._debouncer.take_due(now)
            self._wake.wait(None if deadline is None else deadline - now)
        return None
