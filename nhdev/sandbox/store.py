"""The sandbox's object store: every API object, one global resourceVersion, watch history, persistence.

Objects live in memory (resource -> namespace -> name -> dict) and are written through to an
sqlite database in WAL mode under ``STATE/store/``, so a restarted server sees the same objects and
a resourceVersion that keeps increasing. Stored dicts are never mutated in place: every write
replaces the dict, so the history can keep references and readers get deep copies.

All methods are synchronous and run on the event loop thread (see ARCHITECTURE.md, Store contract).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import sqlite3
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nhdev.sandbox import admission
from nhdev.sandbox.resources import RESOURCE_TYPES, ResourceType, UnknownResourceError, resource_type
from nhdev.sandbox.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)

NODE_NAME = "nhdev-sandbox"
DEFAULT_STORAGE_CLASS = admission.DEFAULT_STORAGE_CLASS
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public")
HISTORY_SIZE = 10000
INITIAL_EVENTS_END_ANNOTATION = "k8s.io/initial-events-end"
_GENERATE_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

# Store.list shadows the builtin inside the class body; annotations there use this alias.
ObjectList = list[dict]


# --- errors --------------------------------------------------------------------------------------


class StoreError(Exception):
    """An API error; ``to_status()`` is the ``Status`` object the apiserver would send."""

    code = 500
    reason = "InternalError"

    def __init__(self, message: str, *, details: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_status(self) -> dict:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details:
            status["details"] = self.details
        status["code"] = self.code
        return status


class NotFoundError(StoreError):
    code, reason = 404, "NotFound"


class AlreadyExistsError(StoreError):
    code, reason = 409, "AlreadyExists"


class ConflictError(StoreError):
    code, reason = 409, "Conflict"


class InvalidError(StoreError):
    code, reason = 422, "Invalid"


class GoneError(StoreError):
    code, reason = 410, "Expired"


class BadRequestError(StoreError):
    code, reason = 400, "BadRequest"


class ForbiddenError(StoreError):
    code, reason = 403, "Forbidden"


def _resource_details(rt: ResourceType, name: str) -> dict:
    details = {"name": name}
    if rt.group:
        details["group"] = rt.group
    details["kind"] = rt.plural
    return details


def _qualified_resource(rt: ResourceType) -> str:
    return f"{rt.plural}.{rt.group}" if rt.group else rt.plural


def not_found(rt: ResourceType, name: str) -> NotFoundError:
    return NotFoundError(f'{_qualified_resource(rt)} "{name}" not found', details=_resource_details(rt, name))


def already_exists(rt: ResourceType, name: str) -> AlreadyExistsError:
    return AlreadyExistsError(
        f'{_qualified_resource(rt)} "{name}" already exists', details=_resource_details(rt, name)
    )


def conflict(rt: ResourceType, name: str, reason: str) -> ConflictError:
    return ConflictError(
        f'Operation cannot be fulfilled on {_qualified_resource(rt)} "{name}": {reason}',
        details=_resource_details(rt, name),
    )


def invalid(rt: ResourceType, name: str, causes: list[admission.Cause]) -> InvalidError:
    summary = str(causes[0]) if len(causes) == 1 else "[" + ", ".join(str(c) for c in causes) + "]"
    details: dict[str, Any] = {"name": name}
    if rt.group:
        details["group"] = rt.group
    details["kind"] = rt.kind
    details["causes"] = [c.as_dict() for c in causes]
    return InvalidError(f'{rt.qualified_kind} "{name}" is invalid: {summary}', details=details)


def forbidden(rt: ResourceType, name: str, reason: str) -> ForbiddenError:
    return ForbiddenError(
        f'{_qualified_resource(rt)} "{name}" is forbidden: {reason}', details=_resource_details(rt, name)
    )


STALE_OBJECT = "the object has been modified; please apply your changes to the latest version and try again"


# --- helpers -------------------------------------------------------------------------------------


def clone(value: Any) -> Any:
    """Deep copy of JSON-like data; much faster than copy.deepcopy for API objects."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def now_timestamp(offset_seconds: int = 0) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=offset_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _resolve(resource: str) -> ResourceType:
    try:
        return resource_type(resource)
    except UnknownResourceError:
        raise NotFoundError(f"the server could not find the requested resource ({resource})") from None


def _content(obj: dict) -> dict:
    """Everything but metadata and status: what a change of bumps metadata.generation."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _without_resource_version(obj: dict) -> dict:
    metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "resourceVersion"}
    return {**obj, "metadata": metadata}


def _ready_to_remove(obj: dict) -> bool:
    """Deleted, no finalizer left and no grace period running: the object goes away."""
    metadata = obj.get("metadata") or {}
    if not metadata.get("deletionTimestamp") or metadata.get("finalizers"):
        return False
    if obj.get("kind") == "Namespace" and (obj.get("spec") or {}).get("finalizers"):
        return False
    return not metadata.get("deletionGracePeriodSeconds")


@dataclass
class WatchEvent:
    type: str  # "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK"
    object: dict
    resource: str


@dataclass(frozen=True)
class _Change:
    resource_version: int
    type: str
    resource: str
    object: dict  # the stored dict (never mutated)
    previous: dict | None  # the state before a MODIFIED/DELETED


# --- watch ---------------------------------------------------------------------------------------


class Watch:
    """An async iterator of WatchEvents for one resource (optionally one namespace and selectors)."""

    def __init__(
        self,
        store: Store,
        rt: ResourceType,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
    ) -> None:
        self._store = store
        self._rt = rt
        self._namespace = namespace
        self._labels = labels
        self._fields = fields
        self._queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()
        self._closed = False
        self.last_resource_version = 0

    @property
    def resource(self) -> str:
        return self._rt.plural

    @property
    def closed(self) -> bool:
        return self._closed

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> WatchEvent:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is None:
            raise StopAsyncIteration
        return event

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._store._watches.discard(self)
            self._queue.put_nowait(None)

    def bookmark(self) -> WatchEvent:
        """A BOOKMARK at the newest resourceVersion this watch is known to be complete up to."""
        if self._queue.empty():
            self.last_resource_version = max(self.last_resource_version, self._store.resource_version)
        return WatchEvent("BOOKMARK", self._bookmark_object(), self._rt.plural)

    def _bookmark_object(self, annotations: dict | None = None) -> dict:
        metadata: dict[str, Any] = {"resourceVersion": str(self.last_resource_version)}
        if annotations:
            metadata["annotations"] = annotations
        return {"kind": self._rt.kind, "apiVersion": self._rt.api_version, "metadata": metadata}

    def _selected(self, obj: dict | None) -> bool:
        if obj is None:
            return False
        metadata = obj.get("metadata") or {}
        if self._namespace is not None and metadata.get("namespace") != self._namespace:
            return False
        return self._labels.matches(metadata.get("labels")) and self._fields.matches(obj)

    def _emit(self, type_: str, obj: dict, resource_version: int) -> None:
        self.last_resource_version = resource_version
        self._queue.put_nowait(WatchEvent(type_, clone(obj), self._rt.plural))

    def _offer(self, change: _Change) -> None:
        """Deliver a change, translated for the selectors the way the apiserver's watch cache does."""
        if change.resource != self._rt.plural or self._closed:
            return
        now_selected = self._selected(change.object)
        before_selected = self._selected(change.previous)
        if change.type == "ADDED":
            if now_selected:
                self._emit("ADDED", change.object, change.resource_version)
        elif change.type == "DELETED":
            if before_selected or now_selected:
                self._emit("DELETED", change.object, change.resource_version)
        elif now_selected and before_selected:
            self._emit("MODIFIED", change.object, change.resource_version)
        elif now_selected:
            self._emit("ADDED", change.object, change.resource_version)
        elif before_selected:
            self._emit("DELETED", change.object, change.resource_version)

    def _send_initial(self, objects: list[dict], resource_version: int, with_end_bookmark: bool) -> None:
        for obj in objects:
            self._queue.put_nowait(WatchEvent("ADDED", obj, self._rt.plural))
        self.last_resource_version = resource_version
        if with_end_bookmark:
            bookmark = self._bookmark_object({INITIAL_EVENTS_END_ANNOTATION: "true"})
            self._queue.put_nowait(WatchEvent("BOOKMARK", bookmark, self._rt.plural))


# --- persistence ---------------------------------------------------------------------------------


class _Database:
    """Write-through persistence: one row per object plus the resourceVersion counter."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash; only an OS crash can lose the last writes.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS objects (resource TEXT NOT NULL, namespace TEXT NOT NULL, "
            "name TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (resource, namespace, name))"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def load(self) -> tuple[int | None, list[tuple[str, dict]]]:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'resourceVersion'").fetchone()
        objects = [
            (resource, json.loads(body))
            for resource, body in self._db.execute("SELECT resource, body FROM objects")
        ]
        return (int(row[0]) if row else None), objects

    def put(self, resource: str, namespace: str, name: str, obj: dict, resource_version: int) -> None:
        body = json.dumps(obj, separators=(",", ":"))
        self._db.execute("BEGIN")
        self._db.execute(
            "INSERT OR REPLACE INTO objects (resource, namespace, name, body) VALUES (?, ?, ?, ?)",
            (resource, namespace, name, body),
        )
        self._set_resource_version(resource_version)
        self._db.execute("COMMIT")

    def remove(self, resource: str, namespace: str, name: str, resource_version: int) -> None:
        self._db.execute("BEGIN")
        self._db.execute(
            "DELETE FROM objects WHERE resource = ? AND namespace = ? AND name = ?", (resource, namespace, name)
        )
        self._set_resource_version(resource_version)
        self._db.execute("COMMIT")

    def _set_resource_version(self, resource_version: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('resourceVersion', ?)", (str(resource_version),)
        )

    def close(self) -> None:
        self._db.close()


# --- the store -----------------------------------------------------------------------------------


class Store:
    def __init__(self, state_dir: Path, *, history_size: int = HISTORY_SIZE) -> None:
        self._objects: dict[str, dict[str, dict[str, dict]]] = {rt.plural: {} for rt in RESOURCE_TYPES}
        self._history: deque[_Change] = deque()
        self._history_size = history_size
        self._watches: set[Watch] = set()
        self._db = _Database(Path(state_dir) / "store" / "objects.sqlite3")
        self._allocators = admission.Allocators(
            cluster_ip=self._allocate_cluster_ip,
            node_port=self._allocate_node_port,
            default_storage_class=self._default_storage_class,
        )
        persisted_rv, objects = self._db.load()
        for resource, obj in objects:
            if resource in self._objects:
                metadata = obj["metadata"]
                self._objects[resource].setdefault(metadata.get("namespace", ""), {})[metadata["name"]] = obj
        self._rv = persisted_rv or 0
        # Events at or before this resourceVersion are no longer in the history (410 Gone).
        self._compacted_rv = self._rv
        if persisted_rv is None:
            self._seed()

    # ---- reading

    @property
    def resource_version(self) -> int:
        return self._rv

    def get(self, resource: str, namespace: str | None, name: str) -> dict:
        rt = _resolve(resource)
        obj = self._stored(rt, namespace, name)
        if obj is None:
            raise not_found(rt, name)
        return clone(obj)

    def try_get(self, resource: str, namespace: str | None, name: str) -> dict | None:
        obj = self._stored(_resolve(resource), namespace, name)
        return None if obj is None else clone(obj)

    def list(
        self,
        resource: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[ObjectList, str]:
        rt = _resolve(resource)
        labels, fields = _parse_selectors(rt, label_selector, field_selector)
        return [clone(o) for o in self._select(rt, namespace, labels, fields)], str(self._rv)

    def _select(
        self, rt: ResourceType, namespace: str | None, labels: LabelSelector, fields: FieldSelector
    ) -> ObjectList:
        by_namespace = self._objects[rt.plural]
        if not rt.namespaced:
            namespaces = [""]
        elif namespace is None:
            namespaces = sorted(by_namespace)
        else:
            namespaces = [namespace]
        name = fields.exact_name()
        selected = []
        for ns in namespaces:
            objects = by_namespace.get(ns) or {}
            names = [name] if name is not None else sorted(objects)
            for candidate in names:
                obj = objects.get(candidate)
                if obj is None:
                    continue
                if labels.matches(obj["metadata"].get("labels")) and fields.matches(obj):
                    selected.append(obj)
        return selected

    def _stored(self, rt: ResourceType, namespace: str | None, name: str) -> dict | None:
        key = (namespace or "") if rt.namespaced else ""
        return self._objects[rt.plural].get(key, {}).get(name)

    # ---- writing

    def create(self, resource: str, namespace: str | None, obj: dict, *, dry_run: bool = False) -> dict:
        rt = _resolve(resource)
        obj = clone(obj)
        metadata = obj.get("metadata")
        if not isinstance(metadata, dict):
            metadata = obj["metadata"] = {}
        self._place_in_namespace(rt, namespace, metadata)
        if metadata.get("resourceVersion"):
            raise BadRequestError("resourceVersion should not be set on objects to be created")
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = self._generate_name(rt, metadata)
        name = metadata.get("name") or ""
        if rt.namespaced:
            self._check_namespace_accepts(rt, metadata["namespace"], name)
        for server_field in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
            metadata.pop(server_field, None)
        metadata["uid"] = str(uuid.uuid4())
        metadata["creationTimestamp"] = now_timestamp()
        metadata["generation"] = 1
        admission.prepare_for_create(rt, obj)
        admission.apply_defaults(rt, obj, self._allocators)
        causes = admission.validate_create(rt, obj)
        if causes:
            raise invalid(rt, name, causes)
        if self._stored(rt, metadata.get("namespace"), name) is not None:
            raise already_exists(rt, name)
        if dry_run:
            return obj
        self._write(rt, obj, "ADDED", None)
        if rt.plural == "namespaces":
            self._create_default_service_account(name)
        return clone(obj)

    def update(
        self,
        resource: str,
        namespace: str | None,
        obj: dict,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict:
        rt = _resolve(resource)
        incoming = clone(obj)
        metadata = incoming.get("metadata")
        if not isinstance(metadata, dict) or not metadata.get("name"):
            raise BadRequestError("name is required for an update")
        self._place_in_namespace(rt, namespace, metadata)
        current = self._stored(rt, metadata.get("namespace"), metadata["name"])
        if current is None:
            raise not_found(rt, metadata["name"])
        wanted_rv = metadata.get("resourceVersion")
        if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
            raise conflict(rt, metadata["name"], STALE_OBJECT)
        if subresource == "status":
            new = clone(current)
            new["status"] = incoming.get("status") or {}
        else:
            new = incoming
            self._keep_server_metadata(new, current)
            if rt.has_status:
                new["status"] = clone(current.get("status") or {})
        admission.apply_defaults(rt, new, self._allocators, current)
        if subresource is None:
            causes = admission.validate_update(rt, new, current)
            if causes:
                raise invalid(rt, metadata["name"], causes)
        return self._commit_update(rt, current, new, dry_run=dry_run)

    def mutate(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        fn: Callable[[dict], None],
        *,
        subresource: str | None = None,
    ) -> dict:
        """Read-modify-write for in-process writers; trusted, so only defaulting runs (no validation).

        With ``subresource="status"`` only the status ``fn`` produced is kept; otherwise everything
        ``fn`` changed (spec, metadata, status) is written.
        """
        rt = _resolve(resource)
        current = self._stored(rt, namespace, name)
        if current is None:
            raise not_found(rt, name)
        working = clone(current)
        fn(working)
        if subresource == "status":
            new = clone(current)
            new["status"] = working.get("status") or {}
        else:
            new = working
            self._keep_identity(new, current)
        admission.apply_defaults(rt, new, self._allocators, current)
        return self._commit_update(rt, current, new)

    def _commit_update(self, rt: ResourceType, current: dict, new: dict, *, dry_run: bool = False) -> dict:
        if _without_resource_version(new) == _without_resource_version(current):
            return clone(current)  # a no-op write neither bumps the resourceVersion nor notifies
        if _content(new) != _content(current):
            new["metadata"]["generation"] = int(current["metadata"].get("generation") or 0) + 1
        if dry_run:
            return new
        if _ready_to_remove(new):
            return self._remove(rt, new)
        self._write(rt, new, "MODIFIED", current)
        return clone(new)

    def delete(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        *,
        propagation: str = "Background",
        grace_period_seconds: int | None = None,
        preconditions: dict | None = None,
        dry_run: bool = False,
    ) -> dict:
        rt = _resolve(resource)
        current = self._stored(rt, namespace, name)
        if current is None:
            raise not_found(rt, name)
        self._check_preconditions(rt, current, preconditions or {})
        grace = self._grace_period(rt, current, grace_period_seconds)
        metadata = current["metadata"]
        if metadata.get("deletionTimestamp"):
            return self._delete_again(rt, current, grace, dry_run)
        finalizers = list(metadata.get("finalizers") or [])
        extra = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}.get(propagation)
        if extra and extra not in finalizers:
            finalizers.append(extra)
        keeps_object = bool(finalizers) or grace > 0 or (
            rt.plural == "namespaces" and (current.get("spec") or {}).get("finalizers")
        )
        if dry_run:
            return clone(current)
        if not keeps_object:
            return self._remove(rt, current)
        new = clone(current)
        new_meta = new["metadata"]
        new_meta["deletionTimestamp"] = now_timestamp(grace)
        new_meta["deletionGracePeriodSeconds"] = grace
        new_meta["generation"] = int(new_meta.get("generation") or 0) + 1
        if finalizers:
            new_meta["finalizers"] = finalizers
        if rt.plural == "namespaces":
            new.setdefault("status", {})["phase"] = "Terminating"
        self._write(rt, new, "MODIFIED", current)
        return clone(new)

    def delete_collection(
        self,
        resource: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        propagation: str = "Background",
        grace_period_seconds: int | None = None,
        dry_run: bool = False,
    ) -> ObjectList:
        """Delete every selected object; returns their last states (or the terminating ones)."""
        rt = _resolve(resource)
        labels, fields = _parse_selectors(rt, label_selector, field_selector)
        deleted = []
        for obj in self._select(rt, namespace, labels, fields):
            metadata = obj["metadata"]
            deleted.append(
                self.delete(
                    resource,
                    metadata.get("namespace"),
                    metadata["name"],
                    propagation=propagation,
                    grace_period_seconds=grace_period_seconds,
                    dry_run=dry_run,
                )
            )
        return deleted

    def _grace_period(self, rt: ResourceType, obj: dict, requested: int | None) -> int:
        """Only pods running on a node get a grace period; the kubelet ends it with a 0 delete."""
        if rt.plural != "pods":
            return 0
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        if requested is None:
            requested = spec.get("terminationGracePeriodSeconds")
        return max(0, int(requested if requested is not None else 30))

    def _delete_again(self, rt: ResourceType, current: dict, grace: int, dry_run: bool) -> dict:
        """Deleting an object already being deleted can only shorten its grace period."""
        running = current["metadata"].get("deletionGracePeriodSeconds") or 0
        if grace >= running or dry_run:
            return clone(current)
        new = clone(current)
        new["metadata"]["deletionGracePeriodSeconds"] = grace
        new["metadata"]["deletionTimestamp"] = now_timestamp(grace)
        if _ready_to_remove(new):
            return self._remove(rt, new)
        self._write(rt, new, "MODIFIED", current)
        return clone(new)

    def _check_preconditions(self, rt: ResourceType, obj: dict, preconditions: dict) -> None:
        metadata = obj["metadata"]
        name = metadata["name"]
        uid, rv = preconditions.get("uid"), preconditions.get("resourceVersion")
        if uid and uid != metadata.get("uid"):
            raise conflict(
                rt, name, f"Precondition failed: UID in precondition: {uid}, UID in object meta: {metadata.get('uid')}"
            )
        if rv and rv != metadata.get("resourceVersion"):
            raise conflict(
                rt,
                name,
                f"Precondition failed: ResourceVersion in precondition: {rv}, "
                f"ResourceVersion in object meta: {metadata.get('resourceVersion')}",
            )

    # ---- watching

    def watch(
        self,
        resource: str,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        send_initial_events: bool = False,
    ) -> Watch:
        rt = _resolve(resource)
        labels, fields = _parse_selectors(rt, label_selector, field_selector)
        watch = Watch(self, rt, namespace, labels, fields)
        if send_initial_events or resource_version in (None, "", "0"):
            current = [clone(o) for o in self._select(rt, namespace, labels, fields)]
            watch._send_initial(current, self._rv, with_end_bookmark=send_initial_events)
        else:
            self._replay(watch, _parse_resource_version(resource_version))
        self._watches.add(watch)
        return watch

    def _replay(self, watch: Watch, since: int) -> None:
        if since < self._compacted_rv:
            raise GoneError(f"too old resource version: {since} ({self._compacted_rv})")
        missed = []
        for change in reversed(self._history):
            if change.resource_version <= since:
                break
            missed.append(change)
        watch.last_resource_version = since
        for change in reversed(missed):
            watch._offer(change)

    # ---- lifecycle

    def close(self) -> None:
        for watch in list(self._watches):
            watch.close()
        self._db.close()

    # ---- internals

    def _write(self, rt: ResourceType, obj: dict, event_type: str, previous: dict | None) -> None:
        self._rv += 1
        metadata = obj["metadata"]
        metadata["resourceVersion"] = str(self._rv)
        namespace = metadata.get("namespace", "") if rt.namespaced else ""
        self._objects[rt.plural].setdefault(namespace, {})[metadata["name"]] = obj
        self._db.put(rt.plural, namespace, metadata["name"], obj, self._rv)
        self._record(_Change(self._rv, event_type, rt.plural, obj, previous))

    def _remove(self, rt: ResourceType, obj: dict) -> dict:
        self._rv += 1
        final = clone(obj)
        metadata = final["metadata"]
        metadata["resourceVersion"] = str(self._rv)
        namespace = metadata.get("namespace", "") if rt.namespaced else ""
        objects = self._objects[rt.plural].get(namespace, {})
        previous = objects.pop(metadata["name"], None)
        if not objects:
            self._objects[rt.plural].pop(namespace, None)
        self._db.remove(rt.plural, namespace, metadata["name"], self._rv)
        self._record(_Change(self._rv, "DELETED", rt.plural, final, previous))
        return clone(final)

    def _record(self, change: _Change) -> None:
        if len(self._history) >= self._history_size:
            self._compacted_rv = self._history.popleft().resource_version
        self._history.append(change)
        for watch in list(self._watches):
            watch._offer(change)

    def _place_in_namespace(self, rt: ResourceType, namespace: str | None, metadata: dict) -> None:
        if not rt.namespaced:
            metadata.pop("namespace", None)
            return
        declared = metadata.get("namespace")
        if declared and namespace and declared != namespace:
            raise BadRequestError(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        chosen = namespace or declared
        if not chosen:
            raise BadRequestError("the namespace of the object is required")
        metadata["namespace"] = chosen

    def _check_namespace_accepts(self, rt: ResourceType, namespace: str, name: str) -> None:
        ns = self._objects["namespaces"].get("", {}).get(namespace)
        if ns is None:
            raise not_found(resource_type("namespaces"), namespace)
        if ns["metadata"].get("deletionTimestamp") or (ns.get("status") or {}).get("phase") == "Terminating":
            raise forbidden(
                rt, name, f"unable to create new content in namespace {namespace} because it is being terminated"
            )

    def _keep_server_metadata(self, new: dict, current: dict) -> None:
        """On a full replace the server owns identity, timestamps and deletion state."""
        self._keep_identity(new, current)
        metadata, old = new["metadata"], current["metadata"]
        for key in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            if key in old:
                metadata[key] = old[key]
            else:
                metadata.pop(key, None)

    @staticmethod
    def _keep_identity(new: dict, current: dict) -> None:
        metadata = new.get("metadata")
        if not isinstance(metadata, dict):
            metadata = new["metadata"] = {}
        old = current["metadata"]
        for key in ("name", "namespace", "uid", "creationTimestamp", "generation", "resourceVersion"):
            if key in old:
                metadata[key] = old[key]
            else:
                metadata.pop(key, None)

    def _generate_name(self, rt: ResourceType, metadata: dict) -> str:
        prefix = metadata["generateName"]
        for _ in range(100):
            candidate = prefix + "".join(random.choices(_GENERATE_NAME_ALPHABET, k=5))
            if self._stored(rt, metadata.get("namespace"), candidate) is None:
                return str(candidate)
        raise AlreadyExistsError(f"could not generate a unique name for {prefix}")

    def _allocate_cluster_ip(self) -> str:
        used = {
            (svc.get("spec") or {}).get("clusterIP")
            for objects in self._objects["services"].values()
            for svc in objects.values()
        }
        for index in range(10, 256 * 256 - 1):
            address = f"10.96.{index // 256}.{index % 256}"
            if index % 256 not in (0, 255) and address not in used:
                return address
        raise InvalidError("no free cluster IP left in 10.96.0.0/16")

    def _allocate_node_port(self) -> int:
        used = {
            port.get("nodePort")
            for objects in self._objects["services"].values()
            for svc in objects.values()
            for port in (svc.get("spec") or {}).get("ports") or []
        }
        for port in range(30000, 32768):
            if port not in used:
                return port
        raise InvalidError("no free node port left in 30000-32767")

    def _default_storage_class(self) -> str | None:
        classes = self._objects["storageclasses"].get("", {}).values()
        for storage_class in classes:
            annotations = storage_class["metadata"].get("annotations") or {}
            if annotations.get(DEFAULT_CLASS_ANNOTATION) == "true":
                return str(storage_class["metadata"]["name"])
        return None

    def _create_default_service_account(self, namespace: str) -> None:
        """The service account controller's job on a real cluster; kubectl apply of real manifests wants it."""
        if self._stored(resource_type("serviceaccounts"), namespace, "default") is None:
            self.create("serviceaccounts", namespace, {"metadata": {"name": "default"}})

    def _seed(self) -> None:
        for name in INITIAL_NAMESPACES:
            self.create("namespaces", None, {"metadata": {"name": name}})
        self.create("nodes", None, _initial_node())
        self.create(
            "storageclasses",
            None,
            {
                "metadata": {"name": DEFAULT_STORAGE_CLASS, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
                "provisioner": "nhdev.io/local-path",
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "Immediate",
            },
        )


def _parse_selectors(
    rt: ResourceType, label_selector: str | None, field_selector: str | None
) -> tuple[LabelSelector, FieldSelector]:
    try:
        return parse_label_selector(label_selector), parse_field_selector(field_selector, rt.plural)
    except SelectorError as error:
        raise BadRequestError(str(error)) from None


def _parse_resource_version(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise BadRequestError(f'invalid resource version "{value}"') from None


def _initial_node() -> dict:
    now = now_timestamp()
    cpus = str(os.cpu_count() or 1)
    memory = f"{_memory_kib()}Ki"
    resources = {"cpu": cpus, "memory": memory, "pods": "110", "ephemeral-storage": "100Gi"}
    conditions = [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]
    return {
        "metadata": {
            "name": NODE_NAME,
            "labels": {
                "kubernetes.io/hostname": NODE_NAME,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": _architecture(),
                "node-role.kubernetes.io/control-plane": "",
            },
        },
        "spec": {},
        "status": {
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "conditions": [
                {"type": t, "status": s, "reason": r, "message": m, "lastHeartbeatTime": now,
                 "lastTransitionTime": now}
                for t, s, r, m in conditions
            ],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": NODE_NAME}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {
                "architecture": _architecture(),
                "operatingSystem": "linux",
                "osImage": platform.platform(),
                "kernelVersion": platform.release(),
                "kubeletVersion": "v1.33.0-nhdev",
                "kubeProxyVersion": "",
                "containerRuntimeVersion": "nhdev://0.1.0",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        },
    }


def _architecture() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _memory_kib() -> int:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 8 * 1024 * 1024
