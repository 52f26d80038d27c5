"""Namespace controller: empties a namespace being deleted, then lets it go.

A deleted namespace keeps existing (phase Terminating) while ``spec.finalizers`` holds
``kubernetes``; this controller deletes everything in it, and removes that finalizer once nothing
is left. Pods are deleted gracefully, so the namespace waits for the kubelet to finish them.
"""

from __future__ import annotations

from nhdev.sandbox.controllers.base import Controller, Key
from nhdev.sandbox.controllers.pods import is_terminating
from nhdev.sandbox.events import format_timestamp
from nhdev.sandbox.resources import RESOURCE_TYPES
from nhdev.sandbox.store import NotFoundError

FINALIZER = "kubernetes"
NAMESPACED_RESOURCES = tuple(rt.plural for rt in RESOURCE_TYPES if rt.namespaced)
RECHECK_SECONDS = 1.0


class NamespaceController(Controller):
    name = "namespace"
    resource = "namespaces"

    def related(self) -> dict:
        # A pod finishing its termination is what a terminating namespace usually waits for.
        return {"pods": lambda pod: [("", pod["metadata"].get("namespace") or "")]}

    def reconcile(self, key: Key) -> float | None:
        _, name = key
        namespace = self.store.try_get("namespaces", None, name)
        if namespace is None or not is_terminating(namespace):
            return None
        remaining = self._delete_contents(name)
        if remaining:
            self._report_remaining(name, remaining)
            return RECHECK_SECONDS

        def finalize(obj: dict) -> None:
            spec = obj.setdefault("spec", {})
            spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != FINALIZER]

        self.store.mutate("namespaces", None, name, finalize)
        return None

    def _delete_contents(self, namespace: str) -> dict[str, int]:
        """Delete what is in ``namespace``; returns how many objects of each resource are still there."""
        remaining: dict[str, int] = {}
        for resource in NAMESPACED_RESOURCES:
            objects, _ = self.store.list(resource, namespace)
            for obj in objects:
                if not is_terminating(obj):
                    try:
                        self.store.delete(resource, namespace, obj["metadata"]["name"])
                    except NotFoundError:
                        continue
                if self.store.try_get(resource, namespace, obj["metadata"]["name"]) is not None:
                    remaining[resource] = remaining.get(resource, 0) + 1
        return remaining

    def _report_remaining(self, namespace: str, remaining: dict[str, int]) -> None:
        counts = ", ".join(f"{resource} has {count} resource instances" for resource, count in remaining.items())
        condition = {
            "type": "NamespaceContentRemaining",
            "status": "True",
            "reason": "SomeResourcesRemain",
            "message": f"Some resources are remaining: {counts}",
        }

        def set_condition(obj: dict) -> None:
            status = obj.setdefault("status", {})
            others = [c for c in status.get("conditions") or [] if c.get("type") != condition["type"]]
            previous: dict = next((c for c in status.get("conditions") or [] if c.get("type") == condition["type"]), {})
            stamp = previous.get("lastTransitionTime") if previous.get("message") == condition["message"] else None
            status["conditions"] = [*others, {**condition, "lastTransitionTime": stamp or format_timestamp(
                self.clock.now())}]

        self.store.mutate("namespaces", None, namespace, set_condition, subresource="status")
