"""What every controller shares: a keyed work queue, watch loops feeding it, a periodic resync.

A controller names its primary resource and, for every other resource it cares about, how an
object of that resource maps to primary keys (e.g. a pod to its owning ReplicaSet). Reconcile is
synchronous (the store is) and level-based: it reads the current state and converges, so running
it twice, or for a key whose object is gone, is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import ClassVar, Generic, TypeVar

from nhdev.sandbox.controllers.clock import Clock
from nhdev.sandbox.store import (
    AlreadyExistsError,
    ConflictError,
    GoneError,
    NotFoundError,
    Store,
    StoreError,
    WatchEvent,
)

log = logging.getLogger(__name__)

# (namespace, name); namespace is "" for cluster-scoped objects.
Key = tuple[str, str]
KeyMapper = Callable[[dict], Iterable[Key]]
K = TypeVar("K")

WATCH_RETRY_SECONDS = 1.0
MAX_ERROR_BACKOFF_SECONDS = 30.0


def key_of(obj: dict) -> Key:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name", ""))


class WorkQueue(Generic[K]):
    """FIFO of keys where a key waiting to be processed is held once, however often it is added."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._ready: asyncio.Queue[K] = asyncio.Queue()
        self._waiting: set[K] = set()
        self._timers: dict[K, tuple[datetime, asyncio.Task[None]]] = {}

    def add(self, key: K) -> None:
        if key not in self._waiting:
            self._waiting.add(key)
            self._ready.put_nowait(key)

    def add_after(self, key: K, seconds: float) -> None:
        """Add ``key`` once ``seconds`` have passed on the clock; an earlier pending timer wins."""
        if seconds <= 0:
            self.add(key)
            return
        due = self._clock.now() + timedelta(seconds=seconds)
        pending = self._timers.get(key)
        if pending is not None and not pending[1].done():
            if pending[0] <= due:
                return
            pending[1].cancel()
        self._timers[key] = (due, asyncio.get_running_loop().create_task(self._add_later(key, seconds)))

    async def get(self) -> K:
        key = await self._ready.get()
        self._waiting.discard(key)
        return key

    def close(self) -> None:
        for _, task in self._timers.values():
            task.cancel()
        self._timers.clear()

    async def _add_later(self, key: K, seconds: float) -> None:
        await self._clock.sleep(seconds)
        self._timers.pop(key, None)
        self.add(key)


class Controller(ABC):
    """A watch-driven reconcile loop over one primary resource."""

    name: ClassVar[str]
    resource: ClassVar[str]

    def __init__(self, store: Store, clock: Clock, resync_seconds: float) -> None:
        self.store = store
        self.clock = clock
        self.resync_seconds = resync_seconds
        self.queue: WorkQueue[Key] = WorkQueue(clock)
        self._failures: dict[Key, int] = {}

    def related(self) -> dict[str, KeyMapper]:
        """Other resources to watch, each with how one of its objects maps to primary keys."""
        return {}

    def keys_for(self, obj: dict) -> Iterable[Key]:
        return [key_of(obj)]

    @abstractmethod
    def reconcile(self, key: Key) -> float | None:
        """Converge the object at ``key``; return seconds after which to look again, if time matters."""

    def write_status(self, key: Key, status: dict) -> None:
        """Replace the primary object's status (no write at all when it is unchanged)."""

        def replace(obj: dict) -> None:
            obj["status"] = status

        namespace, name = key
        self.store.mutate(self.resource, namespace or None, name, replace, subresource="status")

    async def run(self) -> None:
        watched = {self.resource: self.keys_for, **self.related()}
        tasks = [asyncio.create_task(self._watch(resource, mapper)) for resource, mapper in watched.items()]
        tasks.append(asyncio.create_task(self._resync()))
        try:
            await self._work()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.queue.close()

    async def _work(self) -> None:
        while True:
            key = await self.queue.get()
            requeue_after = self._reconcile_safely(key)
            if requeue_after is not None:
                self.queue.add_after(key, requeue_after)
            # Reconcile is synchronous: give watches and the API a turn between keys.
            await asyncio.sleep(0)

    def _reconcile_safely(self, key: Key) -> float | None:
        try:
            requeue_after = self.reconcile(key)
        except StoreError as exc:
            log.log(store_error_level(exc), "%s: %s/%s: %s", self.name, *key, exc)
            return self._backoff(key)
        except Exception:
            log.exception("%s: reconciling %s/%s failed", self.name, *key)
            return self._backoff(key)
        self._failures.pop(key, None)
        return requeue_after

    def _backoff(self, key: Key) -> float:
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        return float(min(0.1 * 2**failures, MAX_ERROR_BACKOFF_SECONDS))

    async def _watch(self, resource: str, mapper: KeyMapper) -> None:
        def enqueue(event: WatchEvent) -> None:
            for key in mapper(event.object):
                self.queue.add(key)

        await watch_forever(self.store, resource, enqueue, self.name)

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.resync_seconds)
            try:
                items, _ = self.store.list(self.resource)
            except Exception:
                log.exception("%s: resync list failed", self.name)
                continue
            for obj in items:
                self.queue.add(key_of(obj))


def store_error_level(error: StoreError) -> int:
    """Races with other writers are expected (the retry sees the new state); anything else is news."""
    expected = isinstance(error, ConflictError | NotFoundError | AlreadyExistsError)
    return logging.DEBUG if expected else logging.WARNING


async def watch_forever(store: Store, resource: str, on_event: Callable[[WatchEvent], None], owner: str) -> None:
    """Feed every change of ``resource`` (all namespaces) to ``on_event``, re-watching after any break."""
    resource_version: str | None = None
    while True:
        watch = None
        try:
            watch = store.watch(resource, None, resource_version=resource_version)
            async for event in watch:
                resource_version = (event.object.get("metadata") or {}).get("resourceVersion")
                if event.type != "BOOKMARK":
                    on_event(event)
        except GoneError:
            resource_version = None
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: watching %s failed", owner, resource)
            resource_version = None
        finally:
            if watch is not None:
                watch.close()
        await asyncio.sleep(WATCH_RETRY_SECONDS)
