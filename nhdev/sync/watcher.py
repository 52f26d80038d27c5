"""Local change detection: watchdog events coalesced into batches of relative paths.

A batch closes when no event arrived for ``quiet`` seconds (a few ms: an editor's save is several
events) or ``max_delay`` after its first event, whichever comes first, so a stream of writes cannot
hold a batch back. inotify needs one watch per directory: when the tree has more directories than
``fs.inotify.max_user_watches`` allows (or adding watches fails), the watcher polls instead and
``hint`` says how to raise the limit.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    DirAttribEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirModifiedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from nhdev.sync.rules import IgnoreRules

MAX_USER_WATCHES = Path("/proc/sys/fs/inotify/max_user_watches")
LIMIT_HINT = ("too few inotify watches for this tree ({dirs} directories, limit {limit}); polling instead. "
              "Raise the limit: sudo sysctl fs.inotify.max_user_watches=524288 "
              "(persist it in /etc/sysctl.d/)")
POLL_INTERVAL = 0.5
# What can change a synced entry. Leaving out opens and closes after reading keeps inotify from
# reporting every file anything reads (sync itself while sending, an IDE indexing the tree).
EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent, DirCreatedEvent, FileModifiedEvent, FileAttribEvent, DirAttribEvent, FileClosedEvent,
    FileDeletedEvent, DirDeletedEvent, FileMovedEvent, DirMovedEvent]
WATCH_SHARE = 0.8  # leave room for the editor's and other tools' watches


def inotify_limit() -> int | None:
    try:
        return int(MAX_USER_WATCHES.read_text().strip())
    except (OSError, ValueError):
        return None


def count_directories(root: Path, stop_after: int) -> int:
    """Directories under ``root`` (watchdog watches ignored ones too), up to ``stop_after``."""
    count = 0
    for _, dirs, _ in os.walk(root):
        count += len(dirs)
        if count > stop_after:
            break
    return count


class Watcher:
    def __init__(self, root: Path, rules: IgnoreRules, on_batch: Callable[[set[str]], None], *,
                 quiet: float = 0.004, max_delay: float = 0.040, force_polling: bool = False) -> None:
        self.root = root
        self.rules = rules
        self.on_batch = on_batch
        self.quiet, self.max_delay = quiet, max_delay
        self.mode = "inotify"
        self.hint = ""
        self._pending: set[str] = set()
        self._first = self._last = 0.0
        self._cond = threading.Condition()
        self._stopping = False
        self._observer = self._make_observer(force_polling)
        self._flusher = threading.Thread(target=self._flush_loop, name="nhdev-sync-coalesce", daemon=True)

    def _make_observer(self, force_polling: bool) -> BaseObserver:
        limit = inotify_limit()
        if force_polling:
            self.mode = "polling"
            return PollingObserver(timeout=POLL_INTERVAL)
        if limit is not None:
            dirs = count_directories(self.root, int(limit * WATCH_SHARE))
            if dirs > limit * WATCH_SHARE:
                self.mode, self.hint = "polling", LIMIT_HINT.format(dirs=f"more than {dirs - 1}", limit=limit)
                return PollingObserver(timeout=POLL_INTERVAL)
        return Observer()

    def start(self) -> None:
        handler = _Handler(self)
        self._observer.schedule(handler, str(self.root), recursive=True, event_filter=EVENTS)
        try:
            self._observer.start()
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EMFILE):
                raise
            self.mode = "polling"
            self.hint = LIMIT_HINT.format(dirs="this many", limit=inotify_limit())
            self._observer = PollingObserver(timeout=POLL_INTERVAL)
            self._observer.schedule(handler, str(self.root), recursive=True, event_filter=EVENTS)
            self._observer.start()
        self._flusher.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._observer.stop()
        self._observer.join(timeout=5)

    def add(self, paths: list[str]) -> None:
        now = time.monotonic()
        with self._cond:
            if not self._pending:
                self._first = now
            self._pending.update(paths)
            self._last = now
            self._cond.notify_all()

    def _flush_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                now = time.monotonic()
                due = min(self._last + self.quiet, self._first + self.max_delay)
                if now < due:
                    self._cond.wait(due - now)
                    continue
                batch, self._pending = self._pending, set()
            self.on_batch(batch)

    def relative(self, path: str | bytes) -> str | None:
        text = os.fsdecode(path)
        try:
            relative = Path(text).relative_to(self.root).as_posix()
        except ValueError:
            return None
        return None if relative == "." else relative


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        # A directory's own "modified" event only says its listing changed: its children's events
        # carry that, and refreshing the directory would walk its whole subtree.
        if isinstance(event, DirModifiedEvent) or event.event_type in ("opened", "closed_no_write"):
            return
        paths = [event.src_path] + ([event.dest_path] if getattr(event, "dest_path", "") else [])
        relatives = [r for r in (self.watcher.relative(p) for p in paths) if r is not None]
        if relatives:
            self.watcher.add(relatives)
