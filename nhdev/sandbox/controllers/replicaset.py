"""ReplicaSet controller: keeps ``spec.replicas`` pods of the template alive and reports on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from nhdev.sandbox.controllers.base import Controller, Key
from nhdev.sandbox.controllers.owners import controller_keys, controller_reference, owner_reference
from nhdev.sandbox.controllers.pods import (
    create_pod,
    delete_pod,
    deletion_rank,
    is_active,
    is_available,
    is_ready,
    is_terminating,
    next_availability_check,
    pod_from_template,
)
from nhdev.sandbox.selectors import selector_from_label_selector_object

COMPONENT = "replicaset-controller"


@dataclass
class ReplicaSetPlan:
    create: int = 0
    delete: list[str] = field(default_factory=list)
    adopt: list[str] = field(default_factory=list)
    release: list[str] = field(default_factory=list)
    status: dict = field(default_factory=dict)
    requeue_after: float | None = None


def plan_replica_set(rs: dict, pods: list[dict], now: datetime) -> ReplicaSetPlan:
    """What to do so ``rs`` has its replicas, given every pod of its namespace."""
    spec = rs.get("spec") or {}
    uid = rs["metadata"]["uid"]
    selector = selector_from_label_selector_object(spec.get("selector"))
    plan = ReplicaSetPlan()
    owned = []
    for pod in pods:
        labels = pod["metadata"].get("labels") or {}
        ref = controller_reference(pod)
        if ref is None:
            if selector.matches(labels) and not is_terminating(pod) and not is_terminating(rs):
                plan.adopt.append(pod["metadata"]["name"])
                owned.append(pod)
        elif ref.get("uid") == uid:
            if selector.matches(labels):
                owned.append(pod)
            elif not is_terminating(pod):
                # Relabelled out of the set: let it go, a replacement is made.
                plan.release.append(pod["metadata"]["name"])
    active = [p for p in owned if is_active(p)]
    desired = int(spec.get("replicas", 1))
    if not is_terminating(rs):
        surplus = len(active) - desired
        if surplus < 0:
            plan.create = -surplus
        elif surplus > 0:
            doomed = sorted(active, key=deletion_rank)[:surplus]
            plan.delete = [p["metadata"]["name"] for p in doomed]
    min_ready = int(spec.get("minReadySeconds") or 0)
    plan.status = replica_set_status(rs, active, min_ready, now)
    plan.requeue_after = next_availability_check(active, min_ready, now)
    return plan


def replica_set_status(rs: dict, active: list[dict], min_ready_seconds: int, now: datetime) -> dict:
    template_labels = ((rs["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
    fully_labeled = [
        p for p in active if template_labels.items() <= (p["metadata"].get("labels") or {}).items()
    ]
    status = dict(rs.get("status") or {})
    status.update(
        replicas=len(active),
        fullyLabeledReplicas=len(fully_labeled),
        readyReplicas=sum(1 for p in active if is_ready(p)),
        availableReplicas=sum(1 for p in active if is_available(p, min_ready_seconds, now)),
        observedGeneration=rs["metadata"].get("generation", 1),
    )
    return status


class ReplicaSetController(Controller):
    name = "replicaset"
    resource = "replicasets"

    def related(self) -> dict:
        return {"pods": controller_keys("ReplicaSet")}

    def reconcile(self, key: Key) -> float | None:
        namespace, name = key
        rs = self.store.try_get("replicasets", namespace, name)
        if rs is None:
            return None
        pods, _ = self.store.list("pods", namespace)
        plan = plan_replica_set(rs, pods, self.clock.now())
        self._claim(rs, plan)
        template = rs["spec"].get("template") or {}
        for _ in range(plan.create):
            create_pod(self.store, rs, pod_from_template(template, rs), COMPONENT)
        for pod_name in plan.delete:
            delete_pod(self.store, rs, pod_name, COMPONENT)
        self.write_status(key, plan.status)
        return plan.requeue_after

    def _claim(self, rs: dict, plan: ReplicaSetPlan) -> None:
        namespace = rs["metadata"]["namespace"]
        reference = owner_reference(rs)

        def adopt(pod: dict) -> None:
            if controller_reference(pod) is None:
                pod["metadata"].setdefault("ownerReferences", []).append(reference)

        def release(pod: dict) -> None:
            refs = pod["metadata"].get("ownerReferences") or []
            pod["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != reference["uid"]]

        for name in plan.adopt:
            self.store.mutate("pods", namespace, name, adopt)
        for name in plan.release:
            self.store.mutate("pods", namespace, name, release)
