"""Garbage collection by ownerReferences: background, foreground and orphan deletion.

Two kinds of work items:
- a *dependent* check: are this object's owners all gone? Then it is deleted (or, when some owners
  remain, the dangling references are removed);
- an *owner* check: an owner being deleted with the ``orphan`` or ``foregroundDeletion`` finalizer
  gets its dependents released or deleted, and the finalizer removed once that is done.

An index (owner uid -> dependents), kept from the watches, tells which dependents to look at when
an owner disappears; the periodic resync rebuilds it and re-checks everything, so a missed event
costs at most one resync period.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import NamedTuple

from nhdev.sandbox.controllers.base import WorkQueue, store_error_level, watch_forever
from nhdev.sandbox.controllers.clock import Clock
from nhdev.sandbox.controllers.owners import owner_references, resource_type_for
from nhdev.sandbox.controllers.pods import is_terminating
from nhdev.sandbox.resources import RESOURCE_TYPES
from nhdev.sandbox.store import NotFoundError, Store, StoreError, WatchEvent

log = logging.getLogger(__name__)

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
# Events never own anything and are the most numerous objects; leaving them out keeps scans cheap.
COLLECTED_RESOURCES = tuple(rt.plural for rt in RESOURCE_TYPES if rt.plural != "events")


class Item(NamedTuple):
    role: str  # "dependent" | "owner"
    resource: str
    namespace: str
    name: str


class ObjectRef(NamedTuple):
    resource: str
    namespace: str
    name: str


class GarbageCollector:
    name = "garbagecollector"

    def __init__(self, store: Store, clock: Clock, resync_seconds: float) -> None:
        self.store = store
        self.resync_seconds = resync_seconds
        self.queue: WorkQueue[Item] = WorkQueue(clock)
        self._dependents: defaultdict[str, set[ObjectRef]] = defaultdict(set)
        self._owners_of: dict[ObjectRef, set[str]] = {}

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(watch_forever(self.store, resource, self._on_event, self.name))
            for resource in COLLECTED_RESOURCES
        ]
        tasks.append(asyncio.create_task(self._resync()))
        try:
            while True:
                item = await self.queue.get()
                self._process_safely(item)
                await asyncio.sleep(0)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.queue.close()

    # --- feeding the queue

    def _on_event(self, event: WatchEvent) -> None:
        obj = event.object
        ref = _ref(event.resource, obj)
        owners = owner_references(obj)
        if event.type == "DELETED":
            self._forget(ref)
            uid = obj["metadata"].get("uid", "")
            for dependent in list(self._dependents.get(uid, ())):
                self.queue.add(Item("dependent", *dependent))
            # An owner deleting in the foreground may have been waiting for this one.
            for owner in self._owner_refs(ref.namespace, owners):
                self.queue.add(Item("owner", *owner))
            return
        self._remember(ref, owners)
        if owners:
            self.queue.add(Item("dependent", *ref))
            if is_terminating(obj):
                for owner in self._owner_refs(ref.namespace, owners):
                    self.queue.add(Item("owner", *owner))
        if _has_deletion_finalizer(obj):
            self.queue.add(Item("owner", *ref))

    def _remember(self, ref: ObjectRef, owners: list[dict]) -> None:
        uids = {o["uid"] for o in owners if o.get("uid")}
        for uid in self._owners_of.get(ref, set()) - uids:
            self._dependents[uid].discard(ref)
        for uid in uids:
            self._dependents[uid].add(ref)
        if uids:
            self._owners_of[ref] = uids
        else:
            self._owners_of.pop(ref, None)

    def _forget(self, ref: ObjectRef) -> None:
        for uid in self._owners_of.pop(ref, set()):
            self._dependents[uid].discard(ref)
            if not self._dependents[uid]:
                del self._dependents[uid]

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.resync_seconds)
            self._dependents.clear()
            self._owners_of.clear()
            for resource in COLLECTED_RESOURCES:
                for obj in self.store.list(resource)[0]:
                    self._on_event(WatchEvent("ADDED", obj, resource))

    # --- processing

    def _process_safely(self, item: Item) -> None:
        try:
            if item.role == "dependent":
                self._check_dependent(item)
            else:
                self._check_owner(item)
        except StoreError as exc:
            log.log(store_error_level(exc), "%s: %s: %s", self.name, item, exc)
            self.queue.add_after(item, 0.5)
        except Exception:
            log.exception("%s: processing %s failed", self.name, item)
            self.queue.add_after(item, 5.0)

    def _check_dependent(self, item: Item) -> None:
        obj = self.store.try_get(item.resource, item.namespace or None, item.name)
        if obj is None or is_terminating(obj):
            return
        refs = owner_references(obj)
        if not refs:
            return
        states = {ref["uid"]: self._owner_state(ref, item.namespace) for ref in refs}
        solid = [uid for uid, state in states.items() if state == "solid"]
        if solid:
            self._drop_dead_references(item, states)
            return
        waiting = any(state == "waiting" for state in states.values())
        has_dependents = bool(self._dependents.get(obj["metadata"]["uid"]))
        finalizers = obj["metadata"].get("finalizers") or []
        if waiting and has_dependents:
            propagation = "Foreground"
        elif ORPHAN in finalizers:
            propagation = "Orphan"
        elif FOREGROUND in finalizers:
            propagation = "Foreground"
        else:
            propagation = "Background"
        self._delete(item.resource, item.namespace, item.name, obj["metadata"]["uid"], propagation)

    def _owner_state(self, ref: dict, namespace: str) -> str:
        """"absent", "waiting" (being deleted in the foreground) or "solid"."""
        rt = resource_type_for(ref.get("apiVersion", ""), ref.get("kind", ""))
        if rt is None:
            return "solid"  # a kind this server does not know: never collect on a guess
        if rt.namespaced and not namespace:
            return "absent"  # a cluster-scoped object cannot be owned by a namespaced one
        owner = self.store.try_get(rt.plural, namespace if rt.namespaced else None, ref.get("name", ""))
        if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
            return "absent"
        if is_terminating(owner) and FOREGROUND in (owner["metadata"].get("finalizers") or []):
            return "waiting"
        return "solid"

    def _drop_dead_references(self, item: Item, states: dict[str, str]) -> None:
        """Some owners remain: forget the gone ones, and stop blocking the ones deleting in foreground."""

        def edit(obj: dict) -> None:
            kept = []
            for ref in obj["metadata"].get("ownerReferences") or []:
                state = states.get(ref.get("uid"), "solid")
                if state == "absent":
                    continue
                if state == "waiting" and ref.get("blockOwnerDeletion"):
                    ref = {**ref, "blockOwnerDeletion": False}
                kept.append(ref)
            obj["metadata"]["ownerReferences"] = kept

        self.store.mutate(item.resource, item.namespace or None, item.name, edit)

    def _check_owner(self, item: Item) -> None:
        owner = self.store.try_get(item.resource, item.namespace or None, item.name)
        if owner is None or not is_terminating(owner):
            return
        finalizers = owner["metadata"].get("finalizers") or []
        uid = owner["metadata"]["uid"]
        if ORPHAN in finalizers:
            for ref, _ in self._find_dependents(owner, item):
                self.store.mutate(ref.resource, ref.namespace or None, ref.name, _without_owner(uid))
            self._remove_finalizer(item, ORPHAN)
        elif FOREGROUND in finalizers:
            blocking = 0
            for ref, dependent in self._find_dependents(owner, item):
                if _blocks(dependent, uid):
                    blocking += 1
                if not is_terminating(dependent):
                    self.queue.add(Item("dependent", *ref))
            if blocking == 0:
                self._remove_finalizer(item, FOREGROUND)

    def _find_dependents(self, owner: dict, item: Item) -> list[tuple[ObjectRef, dict]]:
        """Every object naming ``owner``, read from the store (the index may lag behind)."""
        uid = owner["metadata"]["uid"]
        namespace = item.namespace or None  # a cluster-scoped owner may own objects anywhere
        found = []
        for resource in COLLECTED_RESOURCES:
            for obj in self.store.list(resource, namespace)[0]:
                if any(ref.get("uid") == uid for ref in owner_references(obj)):
                    found.append((_ref(resource, obj), obj))
        return found

    def _remove_finalizer(self, item: Item, finalizer: str) -> None:
        def edit(obj: dict) -> None:
            obj["metadata"]["finalizers"] = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]

        self.store.mutate(item.resource, item.namespace or None, item.name, edit)

    def _delete(self, resource: str, namespace: str, name: str, uid: str, propagation: str) -> None:
        try:
            self.store.delete(resource, namespace or None, name, propagation=propagation,
                              preconditions={"uid": uid})
        except NotFoundError:
            return

    def _owner_refs(self, namespace: str, owners: list[dict]) -> list[ObjectRef]:
        refs = []
        for owner in owners:
            rt = resource_type_for(owner.get("apiVersion", ""), owner.get("kind", ""))
            if rt is not None:
                refs.append(ObjectRef(rt.plural, namespace if rt.namespaced else "", owner.get("name", "")))
        return refs


def _ref(resource: str, obj: dict) -> ObjectRef:
    meta = obj.get("metadata") or {}
    return ObjectRef(resource, meta.get("namespace") or "", meta.get("name", ""))


def _has_deletion_finalizer(obj: dict) -> bool:
    finalizers = (obj.get("metadata") or {}).get("finalizers") or []
    return is_terminating(obj) and (ORPHAN in finalizers or FOREGROUND in finalizers)


def _blocks(dependent: dict, owner_uid: str) -> bool:
    return any(
        ref.get("uid") == owner_uid and ref.get("blockOwnerDeletion") for ref in owner_references(dependent)
    )


def _without_owner(uid: str) -> Callable[[dict], None]:
    def edit(obj: dict) -> None:
        obj["metadata"]["ownerReferences"] = [r for r in owner_references(obj) if r.get("uid") != uid]

    return edit
