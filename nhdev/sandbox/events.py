"""core/v1 Events for any object, recorded best effort.

Like the real event recorder, an event identical to a recent one (same object, reason, message,
type and source) is not created again: the existing one gets its ``count`` and ``lastTimestamp``
bumped. Recording never raises: an event that cannot be written is only logged.
"""

from __future__ import annotations

import logging
import time
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any

from nhdev.sandbox.store import AlreadyExistsError, Store

log = logging.getLogger(__name__)

NODE_NAME = "nhdev-sandbox"
DEDUP_WINDOW = timedelta(minutes=10)
MAX_NAME_LENGTH = 253
_SUFFIX_LENGTH = 17  # "." + 16 hex digits

# (involved uid or namespace/name, reason, message, type, component) -> (event namespace, event name)
_DedupKey = tuple[str, str, str, str, str]
_recent_events: weakref.WeakKeyDictionary[Any, dict[_DedupKey, tuple[str, str]]] = (
    weakref.WeakKeyDictionary()
)


def record_event(
    store: Store,
    involved: dict,
    reason: str,
    message: str,
    *,
    type: str = "Normal",
    component: str = "kubelet",
) -> None:
    """Record an Event about ``involved``, or bump the count of an identical recent one."""
    try:
        _record(store, involved, reason, message, type, component, datetime.now(UTC))
    except Exception:  # events are best effort: never break the caller
        log.debug("could not record event %s for %s", reason, _describe(involved), exc_info=True)


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def involved_object_reference(obj: dict) -> dict:
    meta = obj.get("metadata") or {}
    ref = {
        "apiVersion": obj.get("apiVersion", ""),
        "kind": obj.get("kind", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    return ref


def _record(
    store: Store, involved: dict, reason: str, message: str, type_: str, component: str, now: datetime
) -> None:
    ref = involved_object_reference(involved)
    key = _dedup_key(ref, reason, message, type_, component)
    recent = _recent_index(store)
    if key in recent and _bump_if_recent(store, *recent[key], now):
        return
    namespace = ref.get("namespace") or "default"
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"namespace": namespace},
        "involvedObject": ref,
        "reason": reason,
        "message": message,
        "type": type_,
        "source": {"component": component, "host": NODE_NAME},
        "reportingComponent": component,
        "reportingInstance": NODE_NAME,
        "firstTimestamp": format_timestamp(now),
        "lastTimestamp": format_timestamp(now),
        "count": 1,
    }
    created = _create_with_unique_name(store, namespace, event, ref["name"])
    recent[key] = (namespace, created["metadata"]["name"])


def _create_with_unique_name(store: Store, namespace: str, event: dict, involved_name: str) -> dict:
    prefix = involved_name[: MAX_NAME_LENGTH - _SUFFIX_LENGTH]
    stamp = time.time_ns()
    for attempt in range(5):
        event["metadata"]["name"] = f"{prefix}.{stamp + attempt:016x}"
        try:
            return store.create("events", namespace, event)
        except AlreadyExistsError:
            continue
    raise RuntimeError(f"no free event name for {involved_name}")


def _bump_if_recent(store: Store, namespace: str, name: str, now: datetime) -> bool:
    existing = store.try_get("events", namespace, name)
    if existing is None:
        return False
    last = parse_timestamp(existing.get("lastTimestamp"))
    if last is None or now - last > DEDUP_WINDOW:
        return False

    def bump(event: dict) -> None:
        event["count"] = int(event.get("count") or 1) + 1
        event["lastTimestamp"] = format_timestamp(now)

    store.mutate("events", namespace, name, bump)
    return True


def _recent_index(store: Store) -> dict[_DedupKey, tuple[str, str]]:
    """The per-store index of recorded events, seeded once from the store so counts survive restarts."""
    index = _recent_events.get(store)
    if index is None:
        index = {}
        items, _ = store.list("events")
        for event in sorted(items, key=lambda e: e.get("lastTimestamp") or ""):
            key = _dedup_key(
                event.get("involvedObject") or {},
                event.get("reason", ""),
                event.get("message", ""),
                event.get("type", ""),
                (event.get("source") or {}).get("component", ""),
            )
            index[key] = (event["metadata"]["namespace"], event["metadata"]["name"])
        _recent_events[store] = index
    return index


def _dedup_key(ref: dict, reason: str, message: str, type_: str, component: str) -> _DedupKey:
    identity = ref.get("uid") or f"{ref.get('namespace', '')}/{ref.get('kind', '')}/{ref.get('name', '')}"
    return (identity, reason, message, type_, component)


def _describe(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind', '?')} {meta.get('namespace', '')}/{meta.get('name', '?')}"
